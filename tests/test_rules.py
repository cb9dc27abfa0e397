"""The engine's built-in rules against central finite differences, first and second order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import hetgrad
from finite_diff import assert_close_tree, numeric_grad
from hetgrad import backprop, grad, grad_bp

BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "add": lambda a, b: a + b,
    "subtract": lambda a, b: a - b,
    "multiply": lambda a, b: a * b,
    "divide": lambda a, b: a / b,
    "power": lambda a, b: a**b,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "np.add": np.add,
    "np.multiply": np.multiply,
}

UNARY: dict[str, Callable[[Any], Any]] = {
    "negative": lambda a: -a,
    "abs": abs,
    "square": np.square,
    "exp": np.exp,
    "log": np.log,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "sqrt": np.sqrt,
    "positive": np.positive,
    "sum": np.sum,
    "mean": np.mean,
    "sum axis 0": lambda a: np.sum(a, axis=0),
    "mean keepdims": lambda a: np.mean(a, axis=-1, keepdims=True),
    "transpose": lambda a: a.T,
    "reshape": lambda a: np.reshape(a, (-1,)),
    "getitem": lambda a: a[..., ::2],
    "where": lambda a: np.where(a.value > 1.0 if hasattr(a, "value") else a > 1.0, a, 2 * a),
    "broadcast_to": lambda a: np.broadcast_to(a, (2,) + np.shape(a)),
    "expand_dims": lambda a: np.expand_dims(a, 0),
}

POSITIVE = {"log", "sqrt", "power"}


def _weights(shape: tuple[int, ...]) -> np.ndarray:
    return np.cos(np.arange(int(np.prod(shape))) + 1.0).reshape(shape)


def _scalarise(fn: Callable[..., Any]) -> Callable[..., Any]:
    def f(*xs: Any) -> Any:
        y = fn(*xs)
        return np.sum(y * _weights(np.shape(y.value if hasattr(y, "value") else y)))

    return f


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)


def _values(shape: tuple[int, ...], positive: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 2.0, size=shape) if positive else rng.normal(size=shape)
    return np.asarray(x, dtype=np.float64)


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=15, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3), seed=st.integers(0, 99))
def test_binary_rules(name: str, shapes: Any, seed: int) -> None:
    a = _values(shapes.input_shapes[0], name in POSITIVE, seed)
    b = _values(shapes.input_shapes[1], name in POSITIVE, seed + 1)
    if name in {"maximum", "minimum"}:
        b = b + 0.01  # keep clear of ties, where the derivative does not exist
    f = _scalarise(BINARY[name])
    got = grad_bp(f, a, b)
    np.testing.assert_allclose(f(a, b), _scalarise(BINARY[name])(a, b))
    for g, want, x in zip(got, numeric_grad(f, (a, b)), (a, b)):
        assert g.shape == x.shape and g.dtype == x.dtype
        assert_close_tree(g, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", sorted(UNARY))
@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=st.integers(0, 99))
def test_unary_rules(name: str, shape: tuple[int, ...], seed: int) -> None:
    a = _values(shape, name in POSITIVE, seed)
    if name == "abs":
        a = a + np.where(a >= 0, 0.1, -0.1)
    if name in {"transpose", "getitem", "sum axis 0", "mean keepdims"} and a.ndim == 0:
        a = a.reshape(1)
    f = _scalarise(UNARY[name])
    got = grad_bp(f, a)
    assert got.shape == a.shape and got.dtype == a.dtype
    assert_close_tree(got, numeric_grad(f, (a,))[0], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["exp", "log", "sin", "cos", "tanh", "sqrt", "square", "abs"])
def test_second_order_elementwise(name: str) -> None:
    x0 = np.array([0.4, 1.3, 2.1])
    fn = UNARY[name]
    d1 = lambda x: grad(lambda z: np.sum(fn(z)))(x)
    f = lambda x: np.sum(d1(x) * np.array([1.0, -2.0, 0.5]))
    assert_close_tree(grad_bp(f, x0), numeric_grad(f, (x0,))[0], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "sa,sb", [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 2)),
              ((3,), (2, 3, 4)), ((2, 1, 2, 3), (4, 3, 2))],
)  # fmt: skip
def test_matmul_shapes_first_and_second_order(sa: tuple[int, ...], sb: tuple[int, ...]) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=sa), rng.normal(size=sb)
    f = _scalarise(lambda a, b: np.tanh(a @ b))
    for g, want in zip(grad_bp(f, a, b), numeric_grad(f, (a, b))):
        assert_close_tree(g, want, rtol=1e-5, atol=1e-7)
    second = lambda a, b: np.sum(grad(f)(a, b) ** 2)
    for g, want in zip(grad_bp(second, a, b), numeric_grad(second, (a, b))):
        assert_close_tree(g, want, rtol=1e-5, atol=1e-6)


def test_dot_and_outer() -> None:
    rng = np.random.default_rng(4)
    m, v, w = rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=3)
    f = lambda m, v, w: np.sum(np.dot(m, v) * w) + np.sum(np.outer(v, w) ** 2) + np.dot(v, v)
    for g, want in zip(grad_bp(f, m, v, w), numeric_grad(f, (m, v, w))):
        assert_close_tree(g, want)


@pytest.mark.parametrize(
    "da,db", [("f8", "f8"), ("f4", "f4"), ("f4", "f8"), ("i8", "f8"), (">f8", ">f8")]
)
def test_the_per_sample_layer_gradient_is_numpys_outer_product(da: str, db: str) -> None:
    # The matrix gradient of ``x @ W`` (and of ``W @ x``) with a vector x is an outer
    # product, computed by BLAS for two float vectors of one dtype: NumPy's values and
    # dtype, whichever path computes it (NumPy's ``outer`` of a strided vector included).
    rng = np.random.default_rng(5)
    x = (rng.normal(size=24)[::2] * 4).astype(da)
    w = rng.normal(size=(12, 7))
    for f, weights in ((lambda w: x @ w, w), (lambda w: w @ x, w.T.copy())):
        out = f(weights)
        g = (rng.normal(size=out.shape) * 4).astype(db)
        got = hetgrad.vjp(f, weights)[1](g)
        want = np.outer(x, g) if weights is w else np.outer(g, x)
        assert got.dtype == np.result_type(weights, want)
        np.testing.assert_array_equal(got, want.astype(got.dtype))


@pytest.mark.parametrize("name", ["exp", "log", "sin", "cos", "tanh", "sqrt"])
def test_python_float_fast_path_matches_numpy(name: str) -> None:
    f = UNARY[name]
    for x in (0.3, 1.7):
        g = grad_bp(f, x)
        assert type(g) is float
        assert g == pytest.approx(float(grad_bp(f, np.array(x))), rel=1e-12)


def test_float_edge_values_follow_numpy() -> None:
    # Where math raises (overflow, domain errors, division by zero) NumPy's values are used.
    with np.errstate(all="ignore"):
        assert grad_bp(np.sqrt, 0.0) == np.inf
        value, g = backprop(np.log, -1.0)
        assert np.isnan(value) and g == -1.0
        value, g = backprop(np.exp, 1000.0)
        assert value == np.inf and g == np.inf
        assert backprop(np.log, 0.0) == (-np.inf, np.inf)


def test_power_edge_cases() -> None:
    assert grad_bp(lambda x: x**0, 0.0) == 0.0
    assert grad_bp(lambda b: 0.0**b, 2.0) == 0.0  # d/db 0**b at b = 2: 0, not nan
    assert grad_bp(lambda b: 2.0**b, 3.0) == pytest.approx(8.0 * np.log(2.0))


def test_maximum_ties_split_evenly() -> None:
    assert grad_bp(lambda a, b: np.maximum(a, b), 1.0, 1.0) == (0.5, 0.5)
    assert grad_bp(lambda a: np.minimum(a, 2.0), 2.0) == 0.5


def test_rules_with_a_narrower_constant_keep_the_output_precision() -> None:
    # float64 results whose rules read a float16 or int8 constant: exact to float64
    g = grad_bp(lambda v: np.float_power(np.int8(3), v), np.float64(0.8))
    assert abs(g - 3.0**0.8 * np.log(3.0)) < 1e-13
    c = float(np.float16(0.7))
    g = grad_bp(lambda v: np.arctan2(v, np.float16(0.7)), np.float64(0.8))
    assert abs(g - c / (0.8**2 + c**2)) < 1e-13
