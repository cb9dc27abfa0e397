"""hetgrad.nn: values against direct formulas, gradients by check_grads (first and second
order), and the special values where naive formulas overflow or give NaN."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import hetgrad
import hetgrad.numpy as hnp
from hetgrad import nn

ONE_HOT = np.eye(4)[[0, 2, 3]]


def _targets(shape: tuple[int, ...]) -> np.ndarray:
    t = np.abs(np.cos(np.arange(int(np.prod(shape))))).reshape(shape) + 0.1
    return t / np.sum(t, axis=-1, keepdims=True)


FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "sigmoid": nn.sigmoid,
    "logistic": nn.logistic,
    "relu": nn.relu,
    "softplus": nn.softplus,
    "softmax": nn.softmax,
    "softmax axis 0": lambda x: nn.softmax(x, axis=0),
    "log_softmax": nn.log_softmax,
    "logsumexp": lambda x: nn.logsumexp(x, axis=-1),
    "cross_entropy one-hot": lambda x: nn.cross_entropy(x, np.eye(x.shape[-1])[0]),
    "cross_entropy probabilities": lambda x: nn.cross_entropy(x, _targets(x.shape)),
    "hinge": lambda x: nn.hinge(x, np.sign(np.cos(np.arange(x.size))).reshape(x.shape)),
    "mse": lambda x: nn.mse(x, np.ones_like(x) * 0.3),
}

REFERENCE: dict[str, Callable[[np.ndarray], Any]] = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relu": lambda x: np.where(x > 0, x, 0.0),
    "softplus": lambda x: np.log(1.0 + np.exp(x)),
    "softmax": lambda x: np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True),
    "log_softmax": lambda x: x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True)),
    "mse": lambda x: np.mean((x - 0.3) ** 2),
}

shapes = array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@settings(max_examples=10, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31))
def test_gradients(name: str, shape: tuple[int, ...], seed: int) -> None:
    x = np.random.default_rng(seed).uniform(-3.0, 3.0, shape)
    f = FUNCTIONS[name]
    value, _ = hetgrad.vjp(f, x)
    np.testing.assert_allclose(value, f(x), rtol=1e-12)
    if name in REFERENCE:
        np.testing.assert_allclose(f(x), REFERENCE[name](x), rtol=1e-10, atol=1e-12)
    hetgrad.check_grads(f, x, order=1 if name in ("relu", "hinge") else 2, rtol=1e-4)


@pytest.mark.parametrize("fn", [nn.sigmoid, nn.relu, nn.softplus])
def test_float_fast_paths_keep_python_floats(fn: Callable[[float], Any]) -> None:
    for x in (-2.5, 0.3, 4.0):
        value, g = hetgrad.backprop(fn, x)
        assert type(value) is float and type(g) is float
        np.testing.assert_allclose(value, fn(np.array(x)))
        np.testing.assert_allclose(g, hetgrad.grad_bp(fn, np.array(x)))


def test_float32_stays_float32() -> None:
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    for f in (nn.sigmoid, nn.relu, nn.softplus, nn.softmax, nn.log_softmax):
        value, g = hetgrad.backprop(lambda v, f=f: np.sum(f(v)), x)
        assert f(x).dtype == np.float32 and g.dtype == np.float32


def test_softmax_and_log_softmax_at_plus_minus_1000() -> None:
    x = np.array([1000.0, -1000.0, 1000.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no invalid value
        p = nn.softmax(x)
        lp = nn.log_softmax(x)
        gp = hetgrad.grad_bp(lambda v: nn.softmax(v)[0], x)
        glp = hetgrad.grad_bp(lambda v: nn.log_softmax(v)[1], x)
    np.testing.assert_allclose(p, [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(lp, [-math.log(2), -2000.0 - math.log(2), -math.log(2), -1000.0
                                    - math.log(2)])  # fmt: skip
    np.testing.assert_allclose(gp, [0.25, 0.0, -0.25, 0.0])
    np.testing.assert_allclose(glp, [-0.5, 1.0, -0.5, 0.0])
    assert np.all(np.isfinite(gp)) and np.all(np.isfinite(glp))


@pytest.mark.parametrize(
    ("dtype", "shift"),
    [(np.float32, 300.0), (np.float32, -1000.0),
     (np.float64, 300.0), (np.float64, -1000.0), (np.float64, 1e12)],
)  # fmt: skip
def test_log_softmax_keeps_full_precision_far_from_zero(dtype: Any, shift: float) -> None:
    """log_softmax(x + c) = log_softmax(x): no digits lost to the size of c."""
    x = np.array([0.0, 1.0, -1.0], dtype)
    want = np.log(np.exp(x.astype(float)) / np.sum(np.exp(x.astype(float))))
    want_grad = np.eye(3)[0] - np.exp(want)  # of log_softmax(x)[0]
    tol = 2e-7 if dtype is np.float32 else 1e-15
    lp = nn.log_softmax(x + dtype(shift))
    assert lp.dtype == dtype
    np.testing.assert_allclose(lp, want, rtol=tol * 4)
    g = hetgrad.grad_bp(lambda v: nn.log_softmax(v)[0], x + dtype(shift))
    np.testing.assert_allclose(g, want_grad, rtol=tol * 4, atol=tol)


def test_log_softmax_rows_of_minus_infinity() -> None:
    lp = nn.log_softmax(np.array([[-np.inf, 0.0], [-np.inf, -np.inf]]))
    assert lp[0, 0] == -np.inf and lp[0, 1] == 0.0
    # A row of -inf: the limit along x = c * ones, uniform (scipy gives NaN, from 0/0);
    # the same distribution as softmax there and as logsumexp's gradient.
    np.testing.assert_allclose(lp[1], np.log([0.5, 0.5]), rtol=1e-15)


def test_sigmoid_and_softplus_at_extremes() -> None:
    x = np.array([-1000.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(nn.sigmoid(x), [0.0, 1.0])
        np.testing.assert_array_equal(nn.softplus(x), [0.0, 1000.0])
        np.testing.assert_array_equal(hetgrad.grad_bp(lambda v: np.sum(nn.softplus(v)), x),
                                      [0.0, 1.0])  # fmt: skip
        assert nn.sigmoid(-1000.0) == 0.0 and nn.softplus(1000.0) == 1000.0


def test_logsumexp_of_all_minus_infinity_has_a_finite_gradient() -> None:
    x = np.full((2, 3), -np.inf)
    x[1] = [0.0, 1.0, 2.0]
    value = nn.logsumexp(x, axis=1)
    assert value[0] == -np.inf
    g = hetgrad.grad_bp(lambda v: nn.logsumexp(v, axis=1)[0], x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[0], [1 / 3] * 3)  # uniform: the limit along x = c * ones
    np.testing.assert_array_equal(g[1], 0.0)
    g_all = hetgrad.grad_bp(hnp.logsumexp, np.full(4, -np.inf))
    np.testing.assert_allclose(g_all, 0.25)


def test_logsumexp_values_and_keepdims() -> None:
    x = np.array([[1000.0, 1000.0], [-1000.0, -1000.0]])
    np.testing.assert_allclose(nn.logsumexp(x, axis=1), [1000 + math.log(2), -1000 + math.log(2)])
    assert nn.logsumexp(x, axis=1, keepdims=True).shape == (2, 1)
    np.testing.assert_allclose(nn.logsumexp(x), 1000 + math.log(2))


def test_cross_entropy_gradient_is_softmax_minus_targets_summed_over_batch() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 3, 4))
    targets = np.stack([ONE_HOT, _targets((3, 4))])
    value, g = hetgrad.backprop(lambda z: nn.cross_entropy(z, targets), logits)
    assert np.shape(value) == ()
    np.testing.assert_allclose(value, -np.sum(targets * nn.log_softmax(logits)))
    np.testing.assert_allclose(g, nn.softmax(logits) - targets, atol=1e-12)
    hetgrad.check_grads(nn.cross_entropy, logits, targets, order=2)
    # The usual call (constant targets) is one node keeping its forward softmax; the same
    # gradients, first and second order, and under debug_nans.
    hetgrad.check_grads(lambda z: nn.cross_entropy(z, targets), logits, order=2)
    hetgrad.check_grads(lambda z: 3.0 * nn.cross_entropy(z, 0.5 * targets), logits)
    with hetgrad.debug_nans():
        np.testing.assert_allclose(
            hetgrad.grad_bp(lambda z: nn.cross_entropy(z, targets), logits), g, atol=1e-12
        )


def test_cross_entropy_at_extreme_logits_is_finite() -> None:
    logits = np.array([[1000.0, -1000.0, 0.0]])
    targets = np.array([[0.0, 1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, g = hetgrad.backprop(lambda z: nn.cross_entropy(z, targets), logits)
    assert value == pytest.approx(2000.0)
    np.testing.assert_allclose(g, [[1.0, -1.0, 0.0]])


def test_where_with_a_nan_branch_value_does_not_leak() -> None:
    # The untaken branch's *value* is NaN: plain where is enough.
    def f(x: Any) -> Any:
        return np.sum(np.where(x > 0, x * 2.0, np.log(x)))

    with np.errstate(invalid="ignore"):
        g = hetgrad.grad_bp(f, np.array([-1.0, 3.0]))
    np.testing.assert_array_equal(g, [-1.0, 2.0])  # d/dx log(x) = 1/x at -1: finite
    assert not np.any(np.isnan(g))


def test_where_with_an_infinite_branch_derivative_needs_safe_where() -> None:
    x = np.array([0.0, 4.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        leaky = hetgrad.grad_bp(lambda v: np.sum(np.where(v > 0, np.sqrt(v), 0.0)), x)
        inverse = hetgrad.grad_bp(lambda v: np.sum(np.where(v != 0, 1.0 / v, 0.0)), x)
    assert np.isnan(leaky[0]) and np.isnan(inverse[0])  # 0 * inf, as in every tape AD
    safe = hetgrad.grad_bp(lambda v: np.sum(hnp.safe_where(v > 0, np.sqrt, np.zeros_like, v)), x)
    np.testing.assert_array_equal(safe, [0.0, 0.25])
    safe_inv = hetgrad.grad_bp(
        lambda v: np.sum(hnp.safe_where(v != 0, lambda u: 1.0 / u, lambda u: 0.0 * u, v)), x
    )
    np.testing.assert_array_equal(safe_inv, [0.0, -1.0 / 16.0])
    np.testing.assert_array_equal(hnp.safe_where(x > 0, np.sqrt, np.zeros_like, x), [0.0, 2.0])


def test_safe_where_broadcasts_and_takes_all_or_none() -> None:
    x = np.array([[1.0, 4.0], [9.0, 16.0]])
    out = hnp.safe_where(np.array([True, False]), np.sqrt, lambda v: -v, x)
    np.testing.assert_array_equal(out, [[1.0, -4.0], [3.0, -16.0]])
    np.testing.assert_array_equal(hnp.safe_where(True, np.sqrt, None, x), np.sqrt(x))
    hetgrad.check_grads(lambda v: hnp.safe_where(v > 2.0, np.log, np.square, v), x, order=2)


@pytest.mark.parametrize("ord_", [None, 1, 2, np.inf, -np.inf, 3, 0.5, 0])
def test_vector_norm_at_zero_has_subgradient_zero(ord_: Any) -> None:
    g = hetgrad.grad_bp(lambda v: np.linalg.norm(v, ord_), np.zeros(3))
    np.testing.assert_array_equal(g, np.zeros(3))


@pytest.mark.parametrize("ord_", [None, "fro", "nuc", 1, -1, np.inf, -np.inf])
def test_matrix_norm_at_zero_is_not_nan(ord_: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = hetgrad.grad_bp(lambda m: np.linalg.norm(m, ord_), np.zeros((2, 2)))
    assert not np.any(np.isnan(g))


def test_norm_at_zero_second_order_and_rows() -> None:
    rows = np.array([[0.0, 0.0], [3.0, 4.0]])
    g = hetgrad.grad_bp(lambda m: np.sum(np.linalg.norm(m, axis=1)), rows)
    np.testing.assert_allclose(g, [[0.0, 0.0], [0.6, 0.8]])
    h = hetgrad.hessian(lambda v: np.linalg.norm(v))(np.zeros(2))
    assert not np.any(np.isnan(h))


def test_hinge_and_mse_values() -> None:
    scores = np.array([2.0, 0.5, -1.0])
    labels = np.array([1.0, -1.0, -1.0])
    assert nn.hinge(scores, labels) == pytest.approx(1.5)
    np.testing.assert_array_equal(hetgrad.grad_bp(lambda s: nn.hinge(s, labels), scores),
                                  [0.0, 1.0, 0.0])  # fmt: skip
    assert nn.mse(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == pytest.approx(2.5)


def test_cross_entropy_broadcasts_like_numpy_and_its_gradient_sums_back() -> None:
    logits = np.array([0.1, 0.5, -0.3])  # one row of logits for two target rows
    targets = np.eye(3)[[0, 1]]
    hetgrad.check_grads(lambda z: nn.cross_entropy(z, targets), logits, order=2)
    hetgrad.check_grads(lambda t: nn.cross_entropy(np.outer([1.0, 2.0], logits), t),
                        np.array([0.2, 0.3, 0.5]), order=2)  # fmt: skip
    hetgrad.check_grads(nn.cross_entropy, logits, targets)


def test_relu_of_nan_is_nan_for_floats_as_for_arrays() -> None:
    assert np.isnan(nn.relu(float("nan"))) and np.isnan(nn.relu(np.array([np.nan]))[0])
    assert np.isnan(hetgrad.backprop(nn.relu, float("nan"))[0])


@pytest.mark.parametrize("targets", [np.array([1.0]), np.array([[1.0], [0.5]]), 1.0])
def test_cross_entropy_with_targets_broadcast_along_the_classes(targets: Any) -> None:
    logits = np.array([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]])
    ce = lambda z: nn.cross_entropy(z, targets)  # noqa: E731
    want = -np.sum(np.broadcast_to(targets, logits.shape) * nn.log_softmax(logits))
    assert float(ce(logits)) == pytest.approx(want, rel=1e-14)
    hetgrad.check_grads(ce, logits)  # the residual counts a broadcast target once per class


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("v", [300.0, 1500.0, 4000.0])
def test_logsumexp_and_logaddexp_gradients_in_low_precision(dtype: Any, v: float) -> None:
    x = np.array([v, v], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no overflow in a cast either)
        g = hetgrad.grad_bp(nn.logsumexp, x)
        h = hetgrad.grad_bp(lambda a: np.sum(np.logaddexp(a, dtype(v))), x[:1])
    assert g.dtype == dtype and g.tolist() == [0.5, 0.5]
    assert h.dtype == dtype and h.tolist() == [0.5]


def test_rows_of_infinities_have_the_limit_distribution() -> None:
    # Along x = c * ones the distribution is uniform; +inf entries share 1.  softmax,
    # log_softmax, cross_entropy and logsumexp's gradient agree, and nothing is NaN.
    rows = np.array([[-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 1.0], [np.inf, np.inf, 0.0]])
    want = np.array([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(nn.softmax(rows), want, rtol=1e-15)
        np.testing.assert_allclose(np.exp(nn.log_softmax(rows)), want, rtol=1e-15)
        np.testing.assert_allclose(hetgrad.grad_bp(nn.logsumexp, rows[1]), want[1])
        t = np.eye(3)[[0, 0, 2]]
        g = hetgrad.grad_bp(lambda z: nn.cross_entropy(z, t), rows)
        np.testing.assert_allclose(g, want - t, rtol=1e-15)
        # The gradient through the shift is the limit's too: I - softmax, at second order.
        g0 = hetgrad.grad_bp(lambda z: nn.log_softmax(z)[0], rows[0])
        np.testing.assert_allclose(g0, np.eye(3)[0] - want[0], rtol=1e-15)
        hess = hetgrad.hessian(nn.logsumexp)(rows[0])
        np.testing.assert_allclose(hess, np.diag(want[0]) - np.outer(want[0], want[0]))


def test_sigmoid_with_a_nan_still_guards_against_overflow() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = nn.sigmoid(np.array([np.nan, -100.0], np.float32))
    assert np.isnan(y[0]) and y[1] == np.float32(np.exp(np.float32(-100.0)))
    # Python floats and arrays take one formula.  math.exp and np.exp may differ in the
    # last bit, which the reciprocal can double; the two formulas used to differ for a
    # fifth of the negative inputs, one exp's rounding for a few percent now.
    xs = np.linspace(-720.0, 40.0, 2001)
    on_floats = np.array([nn.sigmoid(float(v)) for v in xs])
    np.testing.assert_array_max_ulp(on_floats, nn.sigmoid(xs), 2)
    assert np.mean(on_floats != nn.sigmoid(xs)) < 0.1


def test_odd_inputs_of_the_elementwise_functions() -> None:
    np.testing.assert_allclose(nn.softplus(np.array([True, False])), [np.log1p(np.e), np.log(2)])
    assert nn.logsumexp(np.zeros((0, 3))) == -np.inf
    assert nn.softmax(np.zeros((3, 0))).shape == (3, 0)


@pytest.mark.parametrize(
    ("logits", "targets"),
    [(np.array([[0.5], [-1.0]]), np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])),
     (np.array([0.1, 0.2, 0.3]), np.array([[2.0], [3.0], [1.0]]))],
)  # fmt: skip
def test_cross_entropy_broadcast_along_the_classes_either_way(logits: Any, targets: Any) -> None:
    """One-class logits against many-class targets (log_softmax is 0: no gradient), and
    targets broadcast along the classes of logits with fewer axes."""
    if logits.shape[-1] == 1:
        assert hetgrad.grad_bp(lambda z: nn.cross_entropy(z, targets), logits).tolist() == [
            [0.0], [0.0]]  # fmt: skip
    hetgrad.check_grads(nn.cross_entropy, logits, targets, order=2)


def test_softmax_family_takes_integers_and_booleans_as_sigmoid_does() -> None:
    ints, floats = np.array([[1, 2, 3]]), np.array([[1.0, 2.0, 3.0]])
    for f in (nn.softmax, nn.log_softmax, lambda z: nn.cross_entropy(z, np.eye(3)[[1]])):
        np.testing.assert_array_equal(f(ints), f(floats))
    np.testing.assert_array_equal(nn.softmax(np.array([True, False])), nn.softmax([1.0, 0.0]))
