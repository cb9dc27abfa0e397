"""hetgrad.numpy beyond the table: dispatch, indexing that accumulates, zeros in prod and
cumprod, ties, constructors, building BVars from lists, and clear errors."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

import hetgrad
import hetgrad.numpy as hnp
from hetgrad import rules


def test_same_objects_as_numpy_and_fallthrough() -> None:
    assert hnp.sin is np.sin and hnp.sum is np.sum and hnp.linalg.svd is np.linalg.svd
    assert hnp.pi == np.pi and hnp.newaxis is None
    assert hnp.fft is np.fft  # not lifted: NumPy's own


def test_every_exported_function_is_registered_or_a_constructor() -> None:
    constructors = {"arange", "empty", "eye", "identity", "ones", "zeros", "array", "asarray",
                    "full", "full_like", "logsumexp", "safe_where", "linalg"}  # fmt: skip
    for name in hnp.__all__:
        obj = getattr(hnp, name)
        if name in constructors or not callable(obj) or isinstance(obj, type):
            continue
        assert (
            obj in rules.UFUNCS
            or obj in rules.FUNCTIONS
            or obj in rules.PIECEWISE_CONSTANT_UFUNCS
            or obj in rules.COMPOSED_UFUNCS
        ), name
    for name in hnp.linalg.__all__:
        obj = getattr(hnp.linalg, name)
        if name not in ("LinAlgError", "eig", "eigvals"):
            assert obj in rules.FUNCTIONS, name


def test_plain_numpy_dispatches_on_bvars() -> None:
    def f(x: Any) -> Any:
        return np.sum(np.exp2(x) * np.arctan(x)) + np.max(np.cumsum(x))

    x = np.array([0.1, -0.2, 0.3])
    hetgrad.check_grads(f, x, order=2)


def test_repeated_integer_indices_accumulate() -> None:
    g = hetgrad.grad_bp(lambda x: np.sum(x[[0, 0, 2]]), np.arange(4.0))
    np.testing.assert_array_equal(g, [2.0, 0.0, 1.0, 0.0])
    g = hetgrad.grad_bp(lambda x: np.sum(np.take(x, [1, 1, 1])), np.arange(4.0))
    np.testing.assert_array_equal(g, [0.0, 3.0, 0.0, 0.0])
    g = hetgrad.grad_bp(lambda x: np.sum(x[[0, 0], [1, 1]] * np.array([2.0, 3.0])), np.ones((2, 2)))
    np.testing.assert_array_equal(g, [[0.0, 5.0], [0.0, 0.0]])


def test_masks_none_and_ellipsis() -> None:
    x = np.arange(6.0).reshape(2, 3)
    g = hetgrad.grad_bp(lambda v: np.sum(v[v > 2.0] ** 2), x)
    np.testing.assert_array_equal(g, np.where(x > 2.0, 2 * x, 0.0))
    g = hetgrad.grad_bp(lambda v: np.sum(v[None, ..., 1:] * 3.0), x)
    np.testing.assert_array_equal(g, [[0.0, 3.0, 3.0], [0.0, 3.0, 3.0]])


@pytest.mark.parametrize("x", [[2.0, 0.0, 3.0], [0.0, 0.0, 3.0], [0.0, 5.0]])
def test_prod_with_zeros(x: list[float]) -> None:
    a = np.array(x)
    g = hetgrad.grad_bp(np.prod, a)
    want = [np.prod(np.delete(a, i)) for i in range(len(a))]
    np.testing.assert_array_equal(g, want)
    hetgrad.check_grads(np.prod, a, order=2)
    hetgrad.check_grads(lambda v: np.prod(v.reshape(1, -1), axis=1), a, order=2)


def test_cumprod_with_zeros() -> None:
    a = np.array([[1.5, 0.0, 2.0, 3.0], [0.0, 1.0, 0.0, 2.0]])
    hetgrad.check_grads(lambda v: np.cumprod(v, axis=1), a, order=2)
    hetgrad.check_grads(np.cumprod, a, order=2)


def test_max_ties_share_the_gradient() -> None:
    g = hetgrad.grad_bp(np.max, np.array([1.0, 3.0, 3.0, 2.0]))
    np.testing.assert_array_equal(g, [0.0, 0.5, 0.5, 0.0])
    g = hetgrad.grad_bp(lambda m: np.sum(np.min(m, axis=0)), np.array([[1.0, 2.0], [1.0, 0.0]]))
    np.testing.assert_array_equal(g, [[0.5, 0.0], [0.5, 1.0]])
    g = hetgrad.grad_bp(lambda a: np.maximum(a, 1.0), 1.0)
    assert g == 0.5


def test_std_and_hypot_at_degenerate_points_are_zero() -> None:
    np.testing.assert_array_equal(hetgrad.grad_bp(np.std, np.full(3, 2.0)), 0.0)
    assert hetgrad.grad_bp(lambda a, b: np.hypot(a, b), 0.0, 0.0) == (0.0, 0.0)
    assert hetgrad.grad_bp(lambda a: np.logaddexp(a, -np.inf), -np.inf) == 0.5


def test_logaddexp_of_arrays_at_infinities_and_huge_values() -> None:
    # Equal infinities share the gradient; huge finite values (whose sum of squares
    # overflows, sending the rule down its careful path) give the exact weights.
    a = np.array([np.inf, -np.inf, 1e200, 0.0])
    b = np.array([np.inf, -np.inf, 0.0, np.log(3.0)])
    _, pullback = hetgrad.backprop_with(np.logaddexp, a, b)
    ga, gb = pullback(np.ones(4))
    np.testing.assert_allclose(ga, [0.5, 0.5, 1.0, 0.25])
    np.testing.assert_allclose(gb, [0.5, 0.5, 0.0, 0.75])
    # One infinite operand takes the whole gradient (the limit), as a float and in arrays.
    ga = hetgrad.grad_bp(lambda a: np.sum(np.logaddexp(a, 0.0)), np.array([-np.inf, np.inf]))
    np.testing.assert_array_equal(ga, [0.0, 1.0])
    assert hetgrad.grad_bp(lambda a, b: np.logaddexp(a, b), np.inf, 0.0) == (1.0, 0.0)
    assert hetgrad.grad_bp(lambda a, b: np.logaddexp2(a, b), 3.0, np.inf) == (0.0, 1.0)


SUBLIST_FORMS = [
    (lambda a, b: np.einsum(a, [0, 1, 2], b, [2, 3], [0, 1, 3]), "ijk,kl->ijl"),
    (lambda a, b: np.einsum(a, [Ellipsis, 2], b, [2, 3]), "...k,kl"),
    (lambda a, b: np.einsum(a, (0, 1, 2), b, (2, 0), []), "ijk,ki->"),
]


@pytest.mark.parametrize(("sublist", "subscripts"), SUBLIST_FORMS)
def test_einsum_sublist_form_matches_the_string_form(sublist: Any, subscripts: str) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 2))
    want = hetgrad.grad_bp(lambda a, b: np.sum(np.einsum(subscripts, a, b) ** 2), a, b)
    got = hetgrad.grad_bp(lambda a, b: np.sum(sublist(a, b) ** 2), a, b)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    hetgrad.check_grads(lambda a, b: np.sum(sublist(a, b) ** 2), a, b)


def test_einsum_sublist_form_needs_a_sublist_per_operand() -> None:
    with pytest.raises(ValueError, match="sublist"):
        hetgrad.grad_bp(lambda a: np.sum(np.einsum(a, [0, 1], a)), np.ones((2, 2)))


def test_einsum_optimize_and_keyword_forms_have_gradients() -> None:
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 4)), rng.normal(size=(4, 2)), rng.normal(size=(2, 3))
    for optimize in (True, "greedy", False):
        hetgrad.check_grads(
            lambda a, b, c, optimize=optimize: np.einsum("ij,jk,kl->il", a, b, c,
                                                         optimize=optimize),
            a, b, c,
        )  # fmt: skip
    hetgrad.check_grads(lambda a, b: np.einsum("ij,jk", a, b, optimize=True), a, b)
    hetgrad.check_grads(lambda a: np.einsum("ij,jk->ik", a, b, dtype=np.float64), a)


def test_constructors_return_constants() -> None:
    for arr in (hnp.zeros(3), hnp.ones((2, 2)), hnp.full(2, 7.0), hnp.eye(2), hnp.arange(3),
                hnp.linspace(0.0, 1.0, 4)):  # fmt: skip
        assert type(arr) is np.ndarray

    def f(x: Any) -> Any:
        z = np.zeros_like(x)
        o = np.ones_like(x)
        e = hnp.full_like(x, 2.0)
        assert all(type(c) is np.ndarray for c in (z, o, e))
        return np.sum(x * (o + e) + z)

    np.testing.assert_array_equal(hetgrad.grad_bp(f, np.arange(3.0)), [3.0, 3.0, 3.0])


def test_array_and_stack_of_lists_with_bvars() -> None:
    def f(a: float, b: Any) -> Any:
        m = hnp.array([[a, 1.0], [b[0], a * b[1]]])
        assert isinstance(m, hetgrad.BVar) == isinstance(a, hetgrad.BVar) and m.shape == (2, 2)
        s = hnp.stack([b, b * 2.0], axis=1)
        return np.linalg.det(m) + np.sum(s) + np.sum(hnp.asarray(b))

    a, b = 2.0, np.array([3.0, 4.0])
    hetgrad.check_grads(f, a, b, order=2)
    assert hnp.array([1.0, 2.0]).tolist() == [1.0, 2.0]
    with pytest.raises(TypeError):
        hnp.array([object()], dtype=float)


def test_full_of_a_bvar_is_konst() -> None:
    g = hetgrad.grad_bp(lambda c: np.sum(hnp.full((2, 3), c) * np.arange(6.0).reshape(2, 3)), 1.0)
    assert g == 15.0


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda x: np.prod(x, where=x > 0), NotImplementedError, "numpy.prod with where="),
    (lambda x: np.var(x, where=x > 0), NotImplementedError, "numpy.var with where="),
    (lambda x: np.std(x, mean=np.mean(x.value, keepdims=True)), NotImplementedError,
     "numpy.std with mean="),
    (lambda x: np.nansum(x, out=np.empty(())), NotImplementedError, "nansum with out="),
    (lambda x: np.nanmean(x, out=np.empty(())), NotImplementedError, "nanmean with out="),
    (lambda x: np.reshape(x, (2, 1), order="A"), NotImplementedError, "order='A'"),
    (lambda x: np.ravel(x, order="K"), NotImplementedError, "order='K'"),
    (lambda x: np.einsum(x, [60]), ValueError, "a subscript must be an int"),
    (lambda x: np.average(x[None, :], weights=[1.0]), ValueError, "along the axis"),
    (lambda x: np.diff(x[0]), ValueError, "at least one dimension"),
])  # fmt: skip
def test_keywords_without_a_rule_raise(call: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        hetgrad.grad_bp(lambda x: np.sum(call(x)), np.array([0.5, 1.5]))


def test_unlifted_functions_raise_naming_themselves() -> None:
    def call(fn: Any) -> Any:
        return hetgrad.grad_bp(lambda x: np.sum(fn(x)), np.array([0.5, 1.5]))

    with pytest.raises(NotImplementedError, match="numpy.i0"):
        call(np.i0)
    with pytest.raises(NotImplementedError, match="numpy.fft.fft"):
        call(np.fft.fft)
    with pytest.raises(NotImplementedError, match="numpy.nextafter"):
        call(lambda x: np.nextafter(x, 2.0))
    with pytest.raises(NotImplementedError, match="numpy.add.reduce"):
        call(np.add.reduce)
    with pytest.raises(NotImplementedError, match="numpy.einsum.*out="):
        call(lambda x: np.einsum("i->i", x, out=np.empty(2)))
    with pytest.raises(NotImplementedError, match="qr"):
        hetgrad.grad_bp(lambda m: np.sum(np.linalg.qr(m, mode="raw")[1]), np.ones((2, 3)))
    with pytest.raises(TypeError, match="drop it from the tape"):
        hetgrad.grad_bp(lambda x: np.sum(np.asarray(x)), np.ones(2))


@pytest.mark.parametrize("shape", [(4, 2), (2, 4), (2, 3, 2)])
def test_extra_columns_of_full_svd_and_complete_qr_have_no_gradient(shape: Any) -> None:
    # The columns past min(m, n) are an arbitrary basis: reading them raises, reading the
    # others gives the same gradient as the reduced factorization.
    a = np.random.default_rng(1).normal(size=shape)
    m, n = shape[-2:]
    k = min(m, n)
    extra = (lambda u, s, vh: u[..., :, k:]) if m > n else (lambda u, s, vh: vh[..., k:, :])
    with pytest.raises(ValueError, match="arbitrary orthonormal basis.*full_matrices=False"):
        hetgrad.grad_bp(lambda x: np.sum(extra(*np.linalg.svd(x)) ** 3), a)
    full = hetgrad.grad_bp(lambda x: np.sum(np.linalg.svd(x)[0][..., :, :k] ** 3), a)
    reduced = hetgrad.grad_bp(
        lambda x: np.sum(np.linalg.svd(x, full_matrices=False)[0] ** 3), a
    )
    np.testing.assert_allclose(full, reduced, rtol=1e-12, atol=1e-12)
    if m > n:
        with pytest.raises(ValueError, match="arbitrary orthonormal basis.*mode='reduced'"):
            hetgrad.grad_bp(lambda x: np.sum(np.linalg.qr(x, mode="complete")[0] ** 3), a)


def test_operators_mod_floordiv_and_astype() -> None:
    x = np.array([0.25, 1.5, 2.75])
    g = hetgrad.grad_bp(lambda v: np.sum(v % 1.0 + 2.0 * (v // 1.0)) + 5.0 % v[1], x)
    np.testing.assert_allclose(g, [1.0, 1.0 - np.floor(5.0 / 1.5), 1.0])  # // is constant
    g32 = hetgrad.grad_bp(lambda v: np.sum(v.astype(np.float32) ** 2), x)
    assert g32.dtype == np.float64
    np.testing.assert_allclose(g32, 2 * x)
    assert hetgrad.grad_bp(lambda v: np.sum(v.astype(int) * v), x).tolist() == [0.0, 1.0, 2.0]


def test_nn_is_reachable_from_the_package() -> None:
    assert hetgrad.nn.sigmoid(0.0) == 0.5


def test_piecewise_constant_functions_give_zero_gradient() -> None:
    def f(x: Any) -> Any:
        k = int(np.argmax(x))
        return x[k] * np.sum(np.sign(x) + np.floor(x) + np.round(x, 1))

    x = np.array([0.25, 1.5, -0.75])
    value, g = hetgrad.backprop(f, x)
    np.testing.assert_array_equal(g, [0.0, np.sum(np.sign(x) + np.floor(x) + np.round(x, 1)), 0.0])


def test_eigh_and_svd_reconstruct_with_gradients() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 3))

    def reconstruct(m: Any) -> Any:
        u, s, vh = np.linalg.svd(m, full_matrices=False)
        return (u * s) @ vh

    value, pullback = hetgrad.vjp(reconstruct, a)
    np.testing.assert_allclose(value, a)
    ct = rng.normal(size=a.shape)
    np.testing.assert_allclose(pullback(ct), ct, atol=1e-10)  # d(identity) = identity

    sym = a.T @ a

    def rebuild(m: Any) -> Any:
        w, v = np.linalg.eigh(m)
        return (v * w) @ v.T

    _, pullback = hetgrad.vjp(rebuild, sym)
    ct = rng.normal(size=sym.shape)
    np.testing.assert_allclose(pullback(ct), np.tril(ct + ct.T, -1) + np.diag(np.diag(ct)),
                               atol=1e-10)  # fmt: skip


def test_second_derivative_of_reductions_in_nested_grad() -> None:
    def f(x: Any) -> Any:
        return np.sum(np.var(x, axis=0)) + np.sum(np.std(x, axis=1) + hnp.logsumexp(x, axis=1) ** 2)

    x = np.array([[0.1, 0.5, -0.3], [1.0, 0.2, 0.4]])
    hetgrad.check_grads(f, x, order=3)


# -- edge cases found by an audit (each was a wrong value, a NaN or a crash) ---------------


def test_transpose_with_negative_axes() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 4)), rng.standard_normal((4, 2, 3))
    g = hetgrad.grad(lambda v: np.sum(np.transpose(v, (-1, 0, -2)) * w))(x)
    np.testing.assert_array_equal(g, np.transpose(w, (1, 2, 0)))
    hetgrad.check_grads(lambda v: np.sum(v.transpose(-1, 0, 1) ** 2 * w), x, order=2)


@pytest.mark.parametrize("mode", ["reflect", "symmetric"])
def test_pad_odd_reflection_raises(mode: str) -> None:
    with pytest.raises(NotImplementedError, match="reflect_type='odd'"):
        hetgrad.grad(lambda v: np.sum(np.pad(v, (2, 1), mode=mode, reflect_type="odd")))(
            np.arange(1.0, 5.0)
        )


def test_lstsq_cuts_small_singular_values_as_numpy_does() -> None:
    b = np.ones(3)
    for a, rcond in ((np.array([[1.0, 0.0], [0.0, 1e-5], [0.0, 0.0]]), 1e-3),
                     (np.array([[1.0, 0.0], [0.0, 8e-16], [0.0, 0.0]]), None)):  # fmt: skip
        want = np.linalg.lstsq(a, b, rcond=rcond)[0]
        got, _ = hetgrad.backprop_with(lambda m, r=rcond: np.linalg.lstsq(m, b, rcond=r)[0], a)
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("shape", [(3, 2), (2, 3)], ids=["tall", "wide"])
@pytest.mark.parametrize("full", [False, True])
def test_svd_singular_values_of_a_rank_deficient_rectangular_matrix(
    shape: tuple[int, int], full: bool
) -> None:
    """sum(s^2) = |A|_F^2 is smooth: its gradient 2A, also where a singular value is 0."""
    a = np.zeros(shape)
    a[0, 0] = 1.0
    g = hetgrad.grad(lambda m: np.sum(np.linalg.svd(m, full_matrices=full)[1] ** 2))(a)
    np.testing.assert_allclose(g, 2.0 * a)


def test_max_of_a_row_with_nan_gives_other_rows_no_nan() -> None:
    x = np.array([[1.0, 2.0], [np.nan, 0.0]])
    np.testing.assert_array_equal(hetgrad.grad(lambda v: np.max(v, axis=1)[0])(x),
                                  [[0.0, 1.0], [0.0, 0.0]])  # fmt: skip


@pytest.mark.filterwarnings("ignore:Mean of empty slice")
def test_mean_where_with_an_empty_group_gives_its_elements_zero() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    mask = np.array([[True, True], [False, False]])
    with np.errstate(invalid="ignore"):
        g = hetgrad.grad(lambda v: np.mean(v, axis=1, where=mask)[0])(x)
    np.testing.assert_array_equal(g, [[0.5, 0.5], [0.0, 0.0]])


@pytest.mark.filterwarnings("ignore:Degrees of freedom")
def test_var_with_ddof_equal_to_the_count_is_nan_not_a_crash() -> None:
    x = np.array([[1.0], [2.0]])
    with np.errstate(invalid="ignore", divide="ignore"):
        g = hetgrad.grad(lambda v: np.sum(np.var(v, axis=1, ddof=1)))(x)
    assert np.all(np.isnan(g))  # as NumPy's value: 0 / 0


@pytest.mark.parametrize(
    "a",
    [np.array([[1.0, 2.0], [2.0, 4.0]]),
     np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]),
     np.zeros((3, 3)),
     np.stack([np.array([[1.0, 2.0], [2.0, 4.0]]), np.eye(2) + 0.5])],
    ids=["2x2 rank 1", "3x3 rank 2", "zero", "a stack with one singular"],
)  # fmt: skip
def test_det_gradient_at_singular_matrices_is_the_cofactor_matrix(a: np.ndarray) -> None:
    hetgrad.check_grads(lambda m: np.sum(np.linalg.det(m)), a, order=2)
    if a.shape == (2, 2):
        np.testing.assert_array_equal(hetgrad.grad(np.linalg.det)(a), [[4.0, -2.0], [-2.0, 1.0]])


@pytest.mark.parametrize(
    "call",
    [lambda v: np.exp(v, where=v > 0), lambda v: np.add(v, 1.0, where=v > 0),
     lambda v: np.multiply(v, v, dtype=np.float32), lambda v: np.sin(v, casting="unsafe")],
    ids=["exp where", "add where", "multiply dtype", "sin casting"],
)  # fmt: skip
def test_ufunc_keywords_on_bvars_raise(call: Any) -> None:
    with pytest.raises(NotImplementedError, match=r"numpy\.\w+\(\.\.\., (where|dtype|casting)="):
        hetgrad.grad(lambda v: np.sum(call(v)))(np.ones(3))


@pytest.mark.parametrize("order", ["fro", "nuc"])
def test_vector_norm_with_a_matrix_order_says_so(order: str) -> None:
    with pytest.raises(ValueError, match=f"Invalid norm order '{order}' for vectors"):
        hetgrad.grad(lambda v: np.linalg.norm(v, order))(np.ones(3))


def test_remainder_and_fmod_divisor_gradient_uses_numpy_quotient() -> None:
    """1.0 % 0.1 is 0.0999...: the quotient is 9 (floor(1.0 / 0.1) would say 10)."""
    assert hetgrad.grad_bp(lambda b: np.remainder(1.0, b), 0.1) == -9.0
    assert hetgrad.grad_bp(lambda b: np.fmod(-1.0, b), 0.1) == 9.0
    a = np.array([1.0, 2.0, 0.7])
    np.testing.assert_array_equal(hetgrad.grad_bp(lambda b: np.sum(a % b), np.full(3, 0.1)),
                                  -np.floor_divide(a, 0.1))  # fmt: skip


@pytest.mark.parametrize("size", [3e15, 1e17, 5000.0])
def test_logaddexp_and_logsumexp_gradients_far_from_zero(size: float) -> None:
    assert hetgrad.grad_bp(lambda x, y: np.logaddexp(x, y), size, size) == (0.5, 0.5)
    gx, gy = hetgrad.grad_bp(lambda x, y: np.sum(np.logaddexp2(x, y)),
                             np.array([size, 1.0]), np.array([size, 2.0]))  # fmt: skip
    np.testing.assert_allclose(gx + gy, [1.0, 1.0], rtol=1e-15)
    np.testing.assert_allclose(gx[0], 0.5, rtol=1e-15)
    np.testing.assert_allclose(hetgrad.grad_bp(hnp.logsumexp, np.array([size, size])), 0.5)
    h = hetgrad.hessian(lambda v: np.logaddexp(v[0], v[1]))(np.array([size, size]))
    np.testing.assert_allclose(h, [[0.25, -0.25], [-0.25, 0.25]])


@pytest.mark.parametrize(
    "f",
    [lambda x: np.sum(x ** np.float64(0)), lambda x: np.sum(x ** np.array([0.0, 2.0])),
     lambda x: np.sum(np.float_power(x, 0.0)), lambda x: np.sum(np.power(x, np.int64(0)))],
    ids=["np.float64 0", "array with 0", "float_power 0.0", "np.int64 0"],
)  # fmt: skip
def test_power_with_a_zero_exponent_has_a_zero_base_gradient_at_zero(f: Any) -> None:
    g = hetgrad.grad_bp(f, np.array([0.0, 1.0]))
    assert g[0] == 0.0 and np.all(np.isfinite(g))


def test_numpy_ufuncs_on_python_floats_follow_numpy() -> None:
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        assert hetgrad.backprop(lambda x: np.divide(x, 0.0), 1.0)[0] == np.inf
        assert hetgrad.backprop(lambda x: np.power(x, 2.0), 1e308)[0] == np.inf
        assert np.isnan(hetgrad.backprop_with(lambda y: np.power(y, 0.5), -1.0)[0])
        assert hetgrad.backprop(np.reciprocal, 0.0)[0] == np.inf


@pytest.mark.parametrize(
    ("f", "x"),
    [(lambda x: x ** 0.5, 0.0), (np.arcsin, 1.0), (np.arccos, -1.0), (np.arccosh, 1.0),
     (np.arctanh, 1.0)],
    ids=["sqrt by **", "arcsin", "arccos", "arccosh", "arctanh"],
)  # fmt: skip
def test_gradients_at_the_edge_of_the_domain_are_infinite_not_an_error(f: Any, x: float) -> None:
    with np.errstate(divide="ignore"):
        g = hetgrad.grad(f)(x)
        ga = hetgrad.grad(lambda v: np.sum(f(v)))(np.array([x]))
    assert np.isinf(g) and np.isinf(ga[0]) and np.sign(g) == np.sign(ga[0])


def test_result_types_match_numpy() -> None:
    value, _ = hetgrad.backprop_with(lambda v: np.inner(v, v), np.ones(3))
    assert type(value) is type(np.inner(np.ones(3), np.ones(3)))
    value, _ = hetgrad.backprop_with(lambda v: v.astype(np.float16), np.array(1.5))
    assert type(value) is np.ndarray and value.dtype == np.float16 and value.shape == ()


# -- unusual but legal arguments (an audit's findings) ------------------------------------


def _value(f: Any, *args: Any) -> Any:
    """``f``'s value under differentiation (a BVar of each argument)."""
    return hetgrad.backprop_with(f, *args)[0]


def test_einsum_sublists_use_numpys_letters() -> None:
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    for f in (lambda a: np.einsum(a, [0, 30]), lambda a: np.einsum(a, [27, 1], b, [1, 2])):
        np.testing.assert_array_equal(_value(f, a), f(a))  # was transposed
        hetgrad.check_grads(f, a)


def test_linspace_of_bvars_follows_numpy() -> None:
    ints = _value(lambda s, e: np.linspace(s, e, 5, dtype=int), 0.0, 4.0)
    assert ints.tolist() == [0, 1, 2, 3, 4]
    assert _value(lambda s, e: np.linspace(s, e, 3, dtype=np.float32), 0.0, 4.0).dtype == np.float32
    start, stop = np.array([1.0]), np.array([[2.0, 3.0]])
    assert _value(lambda s: np.linspace(s, stop, 2), start).shape == (2, 1, 2)
    assert np.isnan(_value(lambda s: np.linspace(s, 2.0, 1, retstep=True)[1], 1.0))
    ends = np.array([0.5, 1.0]), np.array([2.0, 3.0])
    hetgrad.check_grads(lambda s, e: np.linspace(s, e, 4), *ends)
    hetgrad.check_grads(lambda s, e: np.linspace(s, e, 4, endpoint=False), *ends, order=2)


def test_linspace_of_bvars_is_numpys_to_the_bit_at_special_values() -> None:
    # NumPy computes k * step + start and sets the last point to stop itself (so an
    # infinite start still ends at a finite stop), with its own order for a zero step.
    special = [0.0, -2.5, 3.3, 1e-310, 1e300, np.inf, -np.inf, np.nan]
    with np.errstate(all="ignore"):
        for a, b in itertools.product(special, repeat=2):
            for num, endpoint, dtype in itertools.product((1, 2, 5), (True, False),
                                                          (np.float64, np.float32)):
                s, e = dtype(a), dtype(b)
                got = _value(lambda s, e, n=num, end=endpoint: np.linspace(s, e, n, endpoint=end),
                             s, e)
                want = np.linspace(s, e, num, endpoint=endpoint)
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)


def test_dtype_and_ndmin_are_applied_to_bvars() -> None:
    x = np.ones(2)
    joined = _value(lambda a: np.concatenate([a, np.ones(1)], dtype=np.float32), x)
    assert joined.dtype == np.float32
    assert _value(lambda a: np.stack([a, a], dtype=np.float32), x).dtype == np.float32
    assert _value(lambda a: hnp.array([a[0], a[1]], ndmin=2), x).shape == (1, 2)
    assert _value(lambda a: hnp.array(a, ndmin=3), x).shape == (1, 1, 2)
    with pytest.raises(TypeError, match="would drop their gradients"):
        _value(lambda a: np.concatenate([a, a], dtype=int), x)


def test_pinv_hermitian_reads_the_lower_triangle() -> None:
    x = np.array([[2.0, 0.3], [0.7, 3.0]])
    hetgrad.check_grads(lambda a: np.linalg.pinv(a, hermitian=True), x)  # was the full formula
    with pytest.raises(NotImplementedError, match="multi_dot with out="):
        _value(lambda a: np.linalg.multi_dot([a, a], out=np.empty((2, 2))), x)


def _pads_by_dict() -> bool:
    try:
        np.pad(np.ones(1), {0: (1, 0)})
    except TypeError:
        return False
    return True


def test_shape_functions_with_broadcasting_and_one_dimension() -> None:
    row = np.arange(4.0).reshape(1, 4)
    idx = np.array([[0], [1], [0]])
    take = lambda a: np.take_along_axis(a, idx, axis=1)  # noqa: E731
    np.testing.assert_array_equal(_value(take, row), take(row))
    hetgrad.check_grads(take, row)
    v = np.arange(1.0, 4.0)
    for f in (lambda v: np.triu(v), lambda v: np.tril(v, -1)):
        hetgrad.check_grads(f, v)  # a 1-D input is broadcast into rows
    pad = lambda a: np.pad(a, {1: (1, 0)})  # noqa: E731
    if _pads_by_dict():  # (NumPy 2.0 took no dict)
        np.testing.assert_array_equal(_value(pad, row), pad(row))
        hetgrad.check_grads(pad, row)
    with pytest.raises(ValueError, match="Cannot specify order"):
        _value(lambda a: np.sort(a, order="f"), v)


def test_average_and_nanmean_with_axes_and_masks() -> None:
    a = np.arange(24.0).reshape(2, 3, 4) + 1.0
    cases = [((1,), np.arange(1.0, 4.0)), ((0, 2), np.ones((2, 4))),
             ((2, 0), np.ones((4, 2)) * np.arange(1.0, 3.0))]  # fmt: skip
    for axis, w in cases:
        f = lambda a, axis=axis, w=w: np.average(a, axis=axis, weights=w)  # noqa: E731
        np.testing.assert_allclose(_value(f, a), f(a))
        hetgrad.check_grads(f, a)
    scale = _value(lambda a: np.average(a, returned=True), np.ones(3, np.float32))[1]
    assert scale.dtype == np.float32
    x, mask = np.array([1.0, np.nan, 3.0, 4.0]), np.array([True, True, False, True])
    assert _value(lambda a: np.nanmean(a, where=mask), x) == np.nanmean(x, where=mask)


def test_safe_where_always_has_the_full_shape() -> None:
    assert hnp.safe_where(np.zeros(0) > 0, np.sqrt, np.exp, np.zeros(0)).shape == (0,)
    out = hnp.safe_where(np.array([False] * 3), np.sqrt, lambda v: 0.0, np.ones(3))
    assert np.shape(out) == (3,)


def test_power_of_a_low_precision_constant_base() -> None:
    g = hetgrad.grad_bp(lambda u: np.sum(np.power(np.array([3], np.int8), u)), np.array([1.0]))
    np.testing.assert_allclose(g, [3.0 * np.log(3.0)], rtol=1e-15)  # was computed in float16


def test_bvar_methods_take_ndarrays_signatures() -> None:
    v = np.arange(6.0).reshape(2, 3)
    assert _value(lambda v: v.sum(0, np.float32), v).dtype == np.float32
    assert _value(lambda v: v.mean(1, np.float32), v).dtype == np.float32
    assert _value(lambda v: v.reshape(np.int64(6)), v).shape == (6,)


def test_full_like_with_a_bvar_fill_takes_the_template_dtype() -> None:
    def f(c: Any) -> Any:
        y = hnp.full_like(np.zeros(3, np.float32), c)
        assert y.dtype == np.float32
        return hnp.sum(y)

    assert hetgrad.grad_bp(f, 1.0) == 3.0
    # an integer dtype makes a constant, as NumPy casts the fill
    assert hetgrad.grad_bp(lambda c: hnp.sum(hnp.full((2,), c, dtype=int)) + c, 1.5) == 1.0


def test_diff_of_order_zero_is_the_input_and_a_negative_order_is_refused() -> None:
    a = np.arange(4.0)
    value, g = hetgrad.backprop(lambda x: np.sum(np.diff(x, n=0, append=5.0)), a)
    assert value == np.sum(np.diff(a, n=0, append=5.0)) == 6.0
    assert g.tolist() == [1.0] * 4
    with pytest.raises(ValueError, match="non-negative"):
        hetgrad.grad_bp(lambda x: np.sum(np.diff(x, n=-1)), a)


@pytest.mark.parametrize("f", [np.var, np.std, np.prod])
def test_reductions_take_where_true(f: Any) -> None:
    x = np.arange(1.0, 7.0).reshape(2, 3)
    want = hetgrad.grad_bp(f, x)
    for where in (True, np.True_):
        np.testing.assert_allclose(hetgrad.grad_bp(lambda v, w=where: f(v, where=w), x), want)


@pytest.mark.parametrize("f", [np.sum, np.max, np.min, np.prod, np.cumsum, np.cumprod])
@pytest.mark.parametrize("axis", [0, -1])
def test_reductions_of_a_0d_array_along_axis_0(f: Any, axis: int) -> None:
    value, g = hetgrad.backprop(lambda x: np.sum(f(x, axis=axis)), np.array(2.0))
    assert value == np.sum(f(np.array(2.0), axis=axis)) and g == 1.0 and g.shape == ()


def test_einsum_with_an_axis_of_size_zero() -> None:
    _, pullback = hetgrad.backprop_with(lambda a: np.einsum("ab->b", a), np.ones((1, 0)))
    assert pullback(np.ones(0)).shape == (1, 0)
    ga, gb = hetgrad.grad_bp(lambda a, b: np.sum(np.einsum("ij,jk->ik", a, b)),
                             np.ones((2, 0)), np.ones((0, 3)))  # fmt: skip
    assert ga.shape == (2, 0) and gb.shape == (0, 3)


def test_divmod_in_and_transpose_by_an_array_on_bvars() -> None:
    # d/dv [2 (v mod 3) + (7 mod v)] = 2 - floor(7 / v)
    assert hetgrad.grad_bp(lambda v: divmod(v, 3.0)[1] * 2.0 + divmod(7.0, v)[1], 5.0) == 1.0
    x = np.arange(6.0).reshape(2, 3)
    assert hetgrad.grad_bp(lambda v: float(2.0 in v) * np.sum(v), x).tolist() == [[1.0] * 3] * 2
    g = hetgrad.grad_bp(lambda v: np.sum(v.transpose(np.array([1, 0])) * x.T), x)
    np.testing.assert_array_equal(g, x)


def test_numpy_full_like_of_a_bvar_fill_names_the_lifted_one() -> None:
    with pytest.raises(NotImplementedError, match="hetgrad.numpy.full_like"):
        hetgrad.grad_bp(lambda c: np.sum(np.full_like(np.zeros(2), c)), 1.0)


def test_full_like_of_a_list_template_with_a_bvar_fill() -> None:
    # an int template makes an int array, a constant, as NumPy's full_like does
    assert hetgrad.grad_bp(lambda x: np.sum(hnp.full_like([1, 2], x)) + x, 2.0) == 1.0
    assert hetgrad.grad_bp(lambda x: np.sum(hnp.full_like([1.0, 2.0], x)), 2.0) == 2.0


def test_float32_cotangents_stay_float32_through_ties_and_variances() -> None:
    """The rules of max, min, maximum, minimum, clip, fmax and var used to make float64
    masks and factors: a float32 model's whole reverse pass then ran in float64 (the final
    gradient was cast back, so only the time showed it)."""
    seen: list[Any] = []

    @hetgrad.primitive
    def spy(x: Any) -> Any:
        return x

    spy.defvjp(lambda g, ans, x: (seen.append(np.result_type(g)), g)[1])
    z = np.array([[1.0, 3.0, 3.0], [2.0, -1.0, 0.5]], np.float32)
    cases = [
        lambda z: np.sum(np.max(spy(z), axis=1)),
        lambda z: np.max(spy(z)),
        lambda z: np.sum(np.min(spy(z), axis=0)),
        lambda z: np.sum(np.maximum(spy(z), 0.0)),
        lambda z: np.sum(np.minimum(spy(z), z[0])),
        lambda z: np.sum(np.clip(spy(z), 0.0, 2.0)),
        lambda z: np.sum(np.fmax(spy(z), 1.0)),
        lambda z: np.sum(np.var(spy(z), axis=1)),
    ]
    for f in cases:
        seen.clear()
        g = hetgrad.grad_bp(f, z)
        assert seen == [np.float32] and g.dtype == np.float32
        hetgrad.check_grads(f, z.astype(np.float64) + np.array([0.0, 0.1, 0.2]))


def test_constants_written_as_lists_in_products_and_operators() -> None:
    """NumPy reads a list as an array; the forward pass did, the reverse pass crashed
    (``np.dot([1.0, 3.0], x)``: 'can't multiply sequence by non-int')."""
    m = np.array([[1.0, 2.0], [3.0, 4.0]])
    cases = [
        (lambda x: np.dot([1.0, 3.0], x), np.ones(2), [1.0, 3.0]),
        (lambda x: np.dot(x, (1.0, 3.0)), np.ones(2), [1.0, 3.0]),
        (lambda x: x @ [1.0, 3.0], np.ones(2), [1.0, 3.0]),
        (lambda x: [1.0, 3.0] @ x, np.ones(2), [1.0, 3.0]),
        (lambda x: np.sum(np.dot([[1.0, 3.0], [0.0, 1.0]], x)), m, [[1.0, 1.0], [4.0, 4.0]]),
        (lambda x: np.sum(np.matmul(x, [[1.0, 3.0], [0.0, 1.0]])), m, [[4.0, 1.0], [4.0, 1.0]]),
        (lambda x: np.sum([1.0, 2.0] * x), np.ones(2), [1.0, 2.0]),
    ]
    for f, x, want in cases:
        np.testing.assert_array_equal(hetgrad.grad_bp(f, x), want)
        hetgrad.check_grads(f, x)


def test_select_and_nan_to_num_results_are_numpys_types() -> None:
    c = np.array([True, False])
    a32 = np.array([1.0, 2.0], np.float32)
    got = hetgrad.vjp(lambda a: np.select([c, ~c], [a, 3.0]), a32)[0]
    assert got.dtype == np.select([c, ~c], [a32, 3.0]).dtype == np.float32  # (was float64)
    got = hetgrad.vjp(lambda a: np.select([c, ~c], [a, [5.0, 6.0]]), a32)[0]  # (a list: float64)
    np.testing.assert_array_equal(got, np.select([c, ~c], [a32, [5.0, 6.0]]))
    assert got.dtype == np.float64
    for x in (np.float64(np.nan), np.array(np.inf)):
        got = hetgrad.vjp(np.nan_to_num, x)[0]
        assert type(got) is type(np.nan_to_num(x)) is np.float64 and got == np.nan_to_num(x)


@pytest.mark.skipif(not hasattr(np, "unstack"), reason="numpy.unstack is new in NumPy 2.1")
def test_unstack_refuses_what_numpy_refuses() -> None:
    with pytest.raises(ValueError, match="at least 1-d"):  # (was ZeroDivisionError)
        hetgrad.grad_bp(lambda x: np.unstack(x)[0], 2.0)
    with pytest.raises(np.exceptions.AxisError):
        hetgrad.grad_bp(lambda x: np.unstack(x, axis=2)[0].sum(), np.ones((2, 2)))
