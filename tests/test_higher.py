"""Higher-order and forward-mode derivatives against closed forms and finite differences."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import hetgrad
from finite_diff import numeric_grad
from hetgrad import grad, hessian, hvp, jacobian, jvp
from hetgrad.lens import item
from opaque import Poly, from_poly, to_poly


def rosenbrock(x: object) -> object:
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def rosenbrock_hessian(x: np.ndarray) -> np.ndarray:
    a, b = x
    return np.array([[2.0 - 400.0 * (b - a * a) + 800.0 * a * a, -400.0 * a],
                     [-400.0 * a, 200.0]])  # fmt: skip


@pytest.mark.parametrize("point", [(1.0, 1.0), (-1.2, 1.0), (0.3, -0.5), (2.0, 3.0)])
def test_rosenbrock_hessian_closed_form(point: tuple[float, float]) -> None:
    x = np.array(point)
    np.testing.assert_allclose(hessian(rosenbrock)(x), rosenbrock_hessian(x), rtol=1e-12)


def test_quadratic_form_hessian() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    np.testing.assert_allclose(hessian(lambda x: x @ a @ x)(rng.normal(size=4)), a + a.T)


def test_third_derivative_of_sin() -> None:
    for x in (0.1, 1.0, -2.5):
        assert grad(grad(grad(np.sin)))(x) == pytest.approx(-np.cos(x), rel=1e-12)


def test_perturbation_confusion() -> None:
    assert grad(lambda x: x * grad(lambda y: x + y)(1.0))(1.0) == 1.0


@dataclasses.dataclass(frozen=True)
class Tiny:
    w: np.ndarray
    b: float


def _loss(net: Tiny) -> object:
    x = np.array([0.5, -1.0, 2.0])
    return np.tanh(net.w @ x + net.b) ** 2 + 0.1 * net.b**2


def test_hessian_over_a_dataclass_against_finite_differences_of_the_gradient() -> None:
    net = Tiny(np.array([0.3, -0.2, 0.1]), 0.4)
    h = hessian(_loss)(net)
    # outer structure: the gradient's (a Tiny); inner: the input's (a Tiny)
    assert type(h) is Tiny and type(h.w) is Tiny and type(h.b) is Tiny
    assert h.w.w.shape == (3, 3) and h.w.b.shape == (3,) and h.b.w.shape == (3,)
    eps = 1e-6
    for field, k in [("w", 0), ("w", 1), ("w", 2), ("b", None)]:
        def grad_at(delta: float, field: str = field, k: int | None = k) -> Tiny:
            if field == "w":
                w = net.w.copy()
                w[k] += delta
                return hetgrad.grad_bp(_loss, Tiny(w, net.b))
            return hetgrad.grad_bp(_loss, Tiny(net.w, net.b + delta))

        plus, minus = grad_at(eps), grad_at(-eps)
        col_w = (plus.w - minus.w) / (2 * eps)
        col_b = (plus.b - minus.b) / (2 * eps)
        got_w = h.w.w[:, k] if field == "w" else h.w.b
        got_b = h.b.w[k] if field == "w" else h.b.b
        np.testing.assert_allclose(got_w, col_w, rtol=1e-5, atol=1e-8)
        assert got_b == pytest.approx(col_b, rel=1e-5, abs=1e-8)


def test_jacobian_dict_to_tuple_structure() -> None:
    def f(d: dict) -> tuple:
        return (d["a"] * d["v"], np.sum(d["v"] ** 2) * d["a"])

    d = {"a": 2.0, "v": np.array([1.0, 2.0, 3.0])}
    j = jacobian(f)(d)
    assert type(j) is tuple and len(j) == 2
    assert set(j[0]) == {"a", "v"}
    assert j[0]["a"].shape == (3,) and j[0]["v"].shape == (3, 3)
    assert type(j[1]["a"]) is float and j[1]["v"].shape == (3,)
    np.testing.assert_allclose(j[0]["a"], d["v"])
    np.testing.assert_allclose(j[0]["v"], 2.0 * np.eye(3))
    assert j[1]["a"] == pytest.approx(14.0)
    np.testing.assert_allclose(j[1]["v"], 2.0 * 2.0 * d["v"])


def test_jacobian_several_argnums_and_arrays() -> None:
    rng = np.random.default_rng(1)
    a, x = rng.normal(size=(2, 3)), rng.normal(size=3)
    ja, jx = jacobian(lambda a, x: np.tanh(a @ x), argnums=(0, 1))(a, x)
    assert ja.shape == (2, 2, 3) and jx.shape == (2, 3)
    for i in range(2):
        num_a, num_x = numeric_grad(lambda a, x, i=i: np.tanh(a @ x)[i], (a, x))
        np.testing.assert_allclose(ja[i], num_a, rtol=1e-6)
        np.testing.assert_allclose(jx[i], num_x, rtol=1e-6)


def test_jvp_agrees_with_jacobian_times_tangent() -> None:
    rng = np.random.default_rng(2)
    m = rng.normal(size=(3, 4))
    f = lambda x: np.sin(m @ x) * np.sum(x)
    for _ in range(3):
        x, t = rng.normal(size=4), rng.normal(size=4)
        y, jt = jvp(f, (x,), (t,))
        np.testing.assert_allclose(y, f(x))
        np.testing.assert_allclose(jt, jacobian(f)(x) @ t, rtol=1e-10)


def test_jvp_structured() -> None:
    y, t = jvp(lambda d: {"p": d["a"] * d["b"]}, ({"a": 2.0, "b": 3.0},), ({"a": 1.0, "b": 0.5},))
    assert y == {"p": 6.0} and t == {"p": pytest.approx(3.0 * 1.0 + 2.0 * 0.5)}


def test_hvp_agrees_with_hessian() -> None:
    rng = np.random.default_rng(3)
    x, v = rng.normal(size=2), rng.normal(size=2)
    (hv,) = hvp(rosenbrock, (x,), (v,))
    np.testing.assert_allclose(hv, rosenbrock_hessian(x) @ v, rtol=1e-12)


def test_hvp_several_arguments() -> None:
    f = lambda x, y: x**2 * y**3
    hx, hy = hvp(f, (1.0, 2.0), (1.0, 0.0))
    # H = [[2y^3, 6xy^2], [6xy^2, 6x^2 y]] at (1, 2): [[16, 24], [24, 12]]
    assert (hx, hy) == (pytest.approx(16.0), pytest.approx(24.0))


@pytest.mark.parametrize(
    ("f", "order"),
    [
        (lambda a: np.sum(a[1:] ** 4), 3),
        (lambda a: np.sum(a[[0, 0, 2]] ** 4), 3),
        (lambda a: np.sum(hetgrad.set_var(a, item(1), a[0] * a[2]) ** 2), 2),
        (lambda a: np.sum(hetgrad.set_var(a, item([0, 2]), a[1:] * a[:2]) ** 3), 3),
        (lambda a: np.sum(hetgrad.over_var(a, item(1), lambda v: v * v) ** 3), 3),
    ],
    ids=["slice", "repeated indices", "set_var", "set_var fancy", "over_var"],
)
def test_indexing_and_lens_writes_at_higher_order(f: Any, order: int) -> None:
    """The gradient of indexing is a scatter; at third order it is itself differentiated."""
    hetgrad.check_grads(f, np.array([0.3, -1.2, 2.0]), order=order)


def test_an_inner_gradient_keeps_the_leaf_dtype_under_differentiation() -> None:
    """MAML-style: the step x - 0.1 grad(f)(x) is float32 with or without an outer runner."""
    x32 = np.array([1.0, 2.0], np.float32)

    def inner(y: Any) -> Any:
        return np.sum(y * np.float64(2.0)) + np.sum(y * y)  # a float64 constant

    def step(x: Any) -> Any:
        return x - 0.1 * hetgrad.grad(inner)(x)

    value, _ = hetgrad.backprop_with(step, x32)
    assert step(x32).dtype == value.dtype == np.float32
    np.testing.assert_array_equal(value, step(x32))


@pytest.mark.parametrize(
    "f", [lambda x: x > 0, lambda x: np.argmax(x)], ids=["bool array", "argmax"]
)
def test_an_output_with_nothing_to_differentiate_is_an_error(f: Any) -> None:
    x = np.array([1.0, -2.0])
    with pytest.raises(TypeError, match="jacobian: the output .* no float leaf"):
        jacobian(f)(x)
    with pytest.raises(TypeError, match="jvp: the output .* no float leaf"):
        jvp(f, (x,), (x,))
    # Static parts of a structured output still pass through, as in gradients.
    _, tangent = jvp(lambda x: (2.0 * x, f(x)), (x,), (x,))
    np.testing.assert_array_equal(tangent[0], 2.0 * x)


def test_a_cotangent_of_the_wrong_kind_names_the_fix() -> None:
    _, pullback = hetgrad.vjp(lambda x: 2.0 * x, 1.0)
    with pytest.raises(TypeError, match="1.0, not 1"):
        pullback(1)
    assert pullback(1.0) == 2.0


def test_second_derivative_at_a_python_float_singularity() -> None:
    # d2/dx2 sqrt(x) at 0: NumPy's -inf, as for np.float64(0.0), not a ZeroDivisionError.
    with np.errstate(divide="ignore"):
        assert grad(grad(np.sqrt))(0.0) == -np.inf
        assert grad(grad(np.log))(0.0) == -np.inf


def test_power_keeps_the_mixed_second_derivative_where_the_exponent_is_zero() -> None:
    # d2/da db a**b = a**(b-1) (1 + b log a): 0.5 at a = 2, b = 0, from either order
    a, b = np.array([2.0, 3.0]), np.array([0.0, 1.5])
    for power in (np.power, np.float_power):
        h = hetgrad.hessian(lambda a, b, p=power: np.sum(p(a, b)), argnums=(0, 1))(a, b)
        expected = np.diag(a ** (b - 1) * (1 + b * np.log(a)))
        np.testing.assert_allclose(h[0][1], expected, rtol=1e-12)
        np.testing.assert_allclose(h[1][0], expected, rtol=1e-12)
    # and the gradient at 0 ** 0 is still 0, not 0 * inf
    assert hetgrad.grad_bp(lambda v: np.sum(v ** np.zeros(2)), np.zeros(2)).tolist() == [0, 0]


@pytest.mark.parametrize("f", [
    lambda a: np.linalg.svd(a, full_matrices=True)[0],
    lambda a: np.linalg.qr(a, mode="complete")[0],
], ids=["svd U", "qr Q"])  # fmt: skip
def test_jvp_into_an_arbitrary_basis_is_an_error_as_for_grad(f: Any) -> None:
    a, t = np.random.default_rng(0).normal(size=(2, 4, 2))
    with pytest.raises(ValueError, match="arbitrary orthonormal basis"):
        hetgrad.jvp(f, (a,), (t,))
    # the reduced factors have a tangent, equal to the Jacobian's
    g = lambda a: np.linalg.svd(a, full_matrices=False)[0]  # noqa: E731
    _, tangent = hetgrad.jvp(g, (a,), (t,))
    np.testing.assert_allclose(tangent, np.tensordot(hetgrad.jacobian(g)(a), t, 2), atol=1e-12)


@pytest.mark.parametrize("runner", ["hessian", "jacobian"])
def test_errors_of_hessian_and_jacobian_name_them(runner: str) -> None:
    with pytest.raises(TypeError, match=f"^{runner}: args\\[0\\] .* leave it out of argnums"):
        getattr(hetgrad, runner)(lambda x: x * x)(2)


def test_hessian_and_hvp_of_a_non_scalar_function_name_themselves() -> None:
    x = np.ones(2)
    with pytest.raises(TypeError, match="^hessian needs a function returning a real scalar"):
        hessian(lambda v: v * v)(x)  # (was: "grad needs ...", a runner not called)
    with pytest.raises(TypeError, match="^hvp needs a function returning a real scalar"):
        hvp(lambda v: v * v, (x,), (x,))


def test_an_integer_tangent_is_told_to_be_a_float() -> None:
    with pytest.raises(ValueError, match="a float \\(1.0, not 1\\)"):
        hetgrad.jvp(lambda x: x * x, (2.0,), (1,))


def test_power_with_a_zero_exponent_has_a_zero_gradient_at_subnormal_and_nan_bases() -> None:
    a = np.array([1e-40, 0.0, 2.0], np.float32)
    g = grad(lambda a: np.sum(a ** np.zeros(3, np.float32)))(a)
    assert g.tolist() == [0.0, 0.0, 0.0]
    for power in (np.power, np.float_power):
        g = grad(lambda a, p=power: np.sum(p(a, np.zeros(2))))(np.array([1e-320, np.nan]))
        assert g.tolist() == [0.0, 0.0]


def cubic(p: Any) -> Any:
    return np.sum(from_poly(p) ** 3)


@pytest.mark.parametrize("runner", [jvp, hvp])
def test_jvp_and_hvp_refuse_an_argument_of_a_registered_type(runner: Any) -> None:
    name = runner.__name__
    with pytest.raises(TypeError) as info:
        runner(cubic, (Poly([1.0, 2.0]),), (Poly([1.0, 0.5]),))
    msg = str(info.value)
    assert msg.startswith(f"{name}: primals[0] is a Poly, a type registered with")
    assert "inner product" in msg and "pass floats or float arrays" in msg
    with pytest.raises(TypeError, match=rf"{name}: primals\[1\]\['p'\] is a Poly"):
        runner(lambda x, d: cubic(d["p"]) * x, (2.0, {"p": Poly([1.0])}),
               (1.0, {"p": Poly([1.0])}))  # fmt: skip


def test_jvp_through_a_registered_type_built_from_its_coordinates() -> None:
    c, t = np.array([1.0, -2.0, 0.5]), np.array([0.3, 1.0, -1.0])

    def f(c: Any) -> Any:
        return from_poly(to_poly(c)) * np.sum(from_poly(to_poly(c)))

    y, jt = jvp(f, (c,), (t,))
    eps = 1e-6
    fd = (f(c + eps * t) - f(c - eps * t)) / (2 * eps)
    np.testing.assert_allclose(jt, fd, rtol=1e-6)
    np.testing.assert_allclose(y, c * np.sum(c))


def test_second_order_with_respect_to_a_registered_type_is_refused_clearly() -> None:
    with pytest.raises(TypeError) as info:
        hessian(cubic)(Poly([1.0, 2.0]))
    msg = str(info.value)
    assert msg.startswith("hessian: args[0] is a Poly, a type registered with")
    assert "second derivative" in msg and "instead of a Poly" in msg
    with pytest.raises(TypeError, match=r"hessian: args\[1\]\['p'\] is a Poly"):
        hessian(lambda x, d: cubic(d["p"]) * x, argnums=(0, 1))(2.0, {"p": Poly([1.0])})
    with pytest.raises(TypeError, match=r"hessian: at args\[0\]: .*builtins.object"):
        hessian(lambda x: 1.0)(object())  # an unsupported value: still the Jacobian's message
    # Held constant (not differentiated), a registered value is fine at second order.
    assert hessian(lambda p, x: cubic(p) * x**2, argnums=1)(Poly([1.0, 2.0]), 3.0) == 18.0
