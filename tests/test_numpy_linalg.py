"""``hetgrad.numpy.linalg`` at the points the table tests do not reach: cut-off singular
values, refused axes, empty matrices and result types."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import hetgrad

AxisError = getattr(np, "exceptions", np).AxisError


def _with_singular_values(rng: np.random.Generator, m: int, n: int, s: list[float]) -> Any:
    u = np.linalg.qr(rng.standard_normal((m, m)))[0][:, : len(s)]
    v = np.linalg.qr(rng.standard_normal((n, n)))[0][:, : len(s)]
    return (u * s) @ v.T


def test_pinv_and_lstsq_gradients_where_the_cut_off_drops_a_nonzero_singular_value() -> None:
    # rcond=0.1 drops 0.2 (and 0.05): pinv is smooth there, and its gradient was the
    # constant-rank one, as if the dropped singular values were 0 (off by about 10%).
    rng = np.random.default_rng(0)
    tall = _with_singular_values(rng, 4, 3, [3.0, 1.0, 0.2])
    stack = np.stack([_with_singular_values(rng, 3, 3, s)
                      for s in ([3.0, 1.0, 0.2], [3.0, 1.0, 0.5], [2.0, 0.1, 0.05])])  # fmt: skip
    q = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    sym = (q * [3.0, -1.0, 0.2, -0.1]) @ q.T
    hetgrad.check_grads(lambda a: np.linalg.pinv(a, rcond=0.1), tall, order=2, rng=0)
    hetgrad.check_grads(lambda a: np.linalg.pinv(a, rcond=0.1), tall.T, rng=0)
    hetgrad.check_grads(lambda a: np.linalg.pinv(a, rcond=0.1), stack, rng=0)
    hetgrad.check_grads(lambda a: np.linalg.pinv(a, rcond=0.1, hermitian=True), sym, rng=0)
    b = rng.standard_normal((4, 2))
    hetgrad.check_grads(lambda a, c: np.linalg.lstsq(a, c, rcond=0.1)[0], tall, b, rng=0)


def test_pinv_of_a_rank_deficient_matrix_keeps_the_constant_rank_gradient() -> None:
    # (JAX's convention: the zero singular values stay zero)
    a = np.array([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]])
    w = np.arange(6.0).reshape(2, 3)
    y = np.linalg.pinv(a)
    want = -(y.T @ w @ y.T) + (np.eye(3) - a @ y) @ w.T @ y @ y.T
    want += y.T @ y @ w.T @ (np.eye(2) - y @ a)
    got = hetgrad.grad(lambda m: np.sum(np.linalg.pinv(m) * w))(a)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ord_", [None, 1, 2, 3, np.inf, -np.inf])
@pytest.mark.parametrize("axis", [2, -3, (0, 2), (-3, 1)])
def test_norm_refuses_an_axis_out_of_range(ord_: Any, axis: Any) -> None:
    # axis 2 of a matrix was taken as axis 0: a norm (and gradient) along the wrong axis
    with pytest.raises(AxisError):
        hetgrad.grad(lambda a: np.sum(np.linalg.norm(a, ord_, axis=axis)))(np.ones((2, 3)))


@pytest.mark.parametrize("ord_", [None, "fro", 1, -1, 2, np.inf, -np.inf])
@pytest.mark.parametrize("axis", [(0, 0), (1, -1)])
def test_norm_refuses_duplicate_axes(ord_: Any, axis: Any) -> None:
    with pytest.raises(ValueError, match="Duplicate axes"):
        hetgrad.grad(lambda a: np.sum(np.linalg.norm(a, ord_, axis=axis)))(np.ones((2, 3)))


@pytest.mark.parametrize(("ord_", "axis", "shape"), [
    (np.inf, 1, (2, 0)), (1, (1, 2), (2, 0, 0)), (np.inf, (1, 2), (2, 0, 3)),
    (2, (1, 2), (2, 0, 0)), ("nuc", (1, 2), (2, 3, 0)),
])  # fmt: skip
def test_norms_of_empty_vectors_and_matrices_are_numpys_zeros(
    ord_: Any, axis: Any, shape: tuple[int, ...]
) -> None:
    x = np.zeros(shape)
    try:
        want = np.linalg.norm(x, ord_, axis=axis)
    except ValueError:  # (NumPy 2.0 raised here: no identity for an empty maximum)
        pytest.skip("this NumPy has no norm of an empty slice to compare with")
    got, pullback = hetgrad.vjp(lambda a: np.linalg.norm(a, ord_, axis=axis), x)
    np.testing.assert_array_equal(got, want)
    assert pullback(np.ones(2)).shape == shape


@pytest.mark.parametrize("ord_", [None, "fro", "f", "nuc", 1, -1, 2, -2, np.inf, -np.inf])
def test_matrix_norms_return_numpys_types(ord_: Any) -> None:
    x = np.array([[0.3, -1.2, 2.0], [-0.7, 0.4, 1.1]])
    got = hetgrad.vjp(lambda a: np.linalg.norm(a, ord_), x)[0]
    want = np.linalg.norm(x, ord_)
    assert type(got) is type(want) and got == pytest.approx(want)
    hetgrad.check_grads(lambda a: np.linalg.norm(a, ord_), x)


@pytest.mark.parametrize("p", [None, 2, -2, 1, -1, np.inf, -np.inf, "fro"])
def test_cond_of_a_singular_matrix_is_numpys_inf_with_no_gradient(p: Any) -> None:
    good = np.array([[2.0, 1.0], [0.5, 3.0]])
    x = np.stack([good, np.array([[1.0, 2.0], [2.0, 4.0]]), np.zeros((2, 2))])
    with np.errstate(all="ignore"):
        want = np.linalg.cond(x, p)
    got, pullback = hetgrad.vjp(lambda a: np.linalg.cond(a, p), x)  # (was NaN, or raised)
    np.testing.assert_array_equal(got, want)
    g = pullback(np.ones(3))
    np.testing.assert_array_equal(g[np.isinf(want)], 0.0)  # (rounding leaves some finite)
    np.testing.assert_allclose(g[0], hetgrad.grad(lambda a: np.linalg.cond(a, p))(good))


def test_gufuncs_check_their_core_dimensions_and_keywords_as_numpy() -> None:
    v = np.arange(3.0)
    if hasattr(np, "matvec"):  # (NumPy 2.2)
        with pytest.raises(ValueError, match="matvec"):  # (was a dot product, silently)
            hetgrad.grad_bp(lambda b: np.matvec(np.ones(3), b), v)
        with pytest.raises(ValueError, match="vecmat"):
            hetgrad.grad_bp(lambda b: np.vecmat(b, np.ones(3)), v)
    with pytest.raises(NotImplementedError, match="vecdot.*axes="):
        hetgrad.grad_bp(lambda b: np.vecdot(b, b, axes=[(0,), (0,), ()]), v)
    x = np.arange(6.0).reshape(2, 3)
    got = hetgrad.vjp(lambda a: np.vecdot(a, a, keepdims=True), x)[0]
    np.testing.assert_array_equal(got, np.vecdot(x, x, keepdims=True))
    np.testing.assert_array_equal(hetgrad.grad(lambda a: np.sum(np.vecdot(a, a, axis=0)))(x), 2 * x)


def test_multi_dot_multiplies_in_numpys_order_and_checks_as_numpy_does() -> None:
    # NumPy picks the order with the fewest multiplications; the same order gives the same
    # values to the bit (left to right differs in the last places), and the same errors.
    rng = np.random.default_rng(7)
    for _ in range(60):
        n = int(rng.integers(3, 7))
        dims = rng.integers(1, 6, n + 1)
        arrays = [rng.normal(size=(dims[i], dims[i + 1])) for i in range(n)]
        if rng.random() < 0.3:
            arrays[0] = arrays[0][0]
        if rng.random() < 0.3:
            arrays[-1] = arrays[-1][:, 0]
        got = hetgrad.backprop_with(lambda *xs: np.linalg.multi_dot(list(xs)), *arrays)[0]
        want = np.linalg.multi_dot(arrays)
        assert np.shape(got) == np.shape(want)
        np.testing.assert_array_equal(got, want)
    chain = [rng.normal(size=s) for s in ((3,), (3, 4), (4, 2), (2,))]
    hetgrad.check_grads(lambda a, b, c, d: np.linalg.multi_dot([a, b, c, d]), *chain, order=2,
                        rng=0)  # fmt: skip
    with pytest.raises(ValueError, match="at least two"):
        hetgrad.grad_bp(lambda a: np.sum(np.linalg.multi_dot([a])), np.ones((2, 2)))
    with pytest.raises(np.linalg.LinAlgError, match="two-dimensional"):
        hetgrad.grad_bp(lambda a: np.sum(np.linalg.multi_dot([a, np.ones(2), a])), np.ones((2, 2)))
