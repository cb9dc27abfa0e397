"""Custom operations: op1..opN, primitive/defvjp, checks on pullbacks, no_grad, constants."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import hetgrad
from finite_diff import assert_close_tree, numeric_grad
from hetgrad import grad, grad_bp, op1, op2, op3, opN
from opaque import Poly, from_poly, to_poly

rng = np.random.default_rng(7)


# -- the helpers lift functions with hand-written pullbacks ------------------------------

logistic = op1(lambda x: (y := 1.0 / (1.0 + np.exp(-x)), lambda g: g * y * (1.0 - y)))
matvec = op2(lambda m, v: (m @ v, lambda g: (np.outer(g, v), m.T @ g)))
affine = op3(lambda m, v, b: (m @ v + b, lambda g: (np.outer(g, v), m.T @ g, g)))
weighted = opN(lambda *xs: (sum((i + 1) * x for i, x in enumerate(xs)),
                            lambda g: tuple((i + 1) * g for i in range(len(xs)))))  # fmt: skip


def test_op1_matches_finite_differences() -> None:
    x = rng.normal(size=4)
    f = lambda x: np.sum(logistic(x) ** 2)
    assert_close_tree(grad_bp(f, x), numeric_grad(f, (x,))[0])


def test_op2_and_op3_match_finite_differences() -> None:
    m, v, b = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=3)
    f2 = lambda m, v: np.sum(np.tanh(matvec(m, v)))
    for got, want in zip(grad_bp(f2, m, v), numeric_grad(f2, (m, v))):
        assert_close_tree(got, want)
    f3 = lambda m, v, b: np.sum(np.sin(affine(m, v, b)))
    for got, want in zip(grad_bp(f3, m, v, b), numeric_grad(f3, (m, v, b))):
        assert_close_tree(got, want)


def test_opN_any_arity() -> None:
    assert grad_bp(lambda a, b, c: weighted(a, b, c) ** 2, 1.0, 1.0, 1.0) == (12.0, 24.0, 36.0)


def test_ops_work_on_plain_values_and_constants() -> None:
    assert logistic(0.0) == 0.5
    np.testing.assert_allclose(matvec(np.eye(2), np.array([1.0, 2.0])), [1.0, 2.0])
    # m constant, v differentiated
    g = grad_bp(lambda v: np.sum(matvec(np.eye(2) * 2.0, v)), np.ones(2))
    np.testing.assert_allclose(g, [2.0, 2.0])


@dataclasses.dataclass(frozen=True)
class Lin:
    w: np.ndarray
    b: np.ndarray


def _layer_fwd(p: Lin, x: np.ndarray) -> tuple[np.ndarray, object]:
    y = p.w @ x + p.b
    return y, lambda g: (Lin(np.outer(g, x), g), p.w.T @ g)


layer = op2(_layer_fwd)


def test_op_with_structured_input() -> None:
    p = Lin(rng.normal(size=(2, 3)), rng.normal(size=2))
    x = rng.normal(size=3)
    f = lambda p, x: np.sum(np.tanh(layer(p, x)))
    got = grad_bp(f, p, x)
    assert type(got[0]) is Lin
    for a, b in zip(got, numeric_grad(f, (p, x))):
        assert_close_tree(a, b)


split_sum = op1(lambda x: ((np.sum(x), np.sum(x * x)), lambda g: g[0] + 2.0 * g[1] * x))


def test_op_with_structured_output_and_unused_part() -> None:
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(grad_bp(lambda x: split_sum(x)[1], x), 2.0 * x)
    np.testing.assert_allclose(grad_bp(lambda x: split_sum(x)[0], x), [1.0, 1.0])
    s, q = (lambda t: (t[0], t[1]))(split_sum(x))
    assert (s, q) == (3.0, 5.0)


def test_hand_written_pullback_of_differentiable_ops_supports_second_order() -> None:
    cube = op1(lambda x: (x**3, lambda g: 3.0 * x**2 * g))
    assert grad(grad(cube))(2.0) == 12.0


# -- primitive / defvjp ---------------------------------------------------------------------


@hetgrad.primitive
def scaled_softplus(x: object, scale: float = 1.0) -> object:
    return scale * np.logaddexp(0.0, x)


scaled_softplus.defvjp(lambda g, ans, x, scale=1.0: g * scale / (1.0 + np.exp(-x)))


def test_primitive_defvjp_with_kwargs() -> None:
    x = rng.normal(size=3)
    f = lambda x: np.sum(scaled_softplus(x, scale=3.0))
    assert_close_tree(grad_bp(f, x), numeric_grad(f, (x,))[0])
    assert scaled_softplus.__name__ == "scaled_softplus"
    assert float(scaled_softplus(0.0)) == pytest.approx(np.log(2.0))


@hetgrad.primitive
def two_args(a: object, b: object) -> object:
    return a * b


two_args.defvjp(lambda g, ans, a, b: g * b)  # no rule for b


def test_missing_rule_only_fails_when_needed() -> None:
    assert grad_bp(lambda a: two_args(a, 3.0), 2.0) == 3.0
    with pytest.raises(TypeError, match=r"two_args: argument 1 has no gradient rule"):
        grad_bp(lambda b: two_args(2.0, b), 3.0)


# -- pullback results are checked ------------------------------------------------------------


def test_wrong_shape_from_pullback() -> None:
    bad = op1(lambda x: (np.sum(x), lambda g: np.ones(5)))
    with pytest.raises(ValueError, match=r"<lambda>: the gradient for argument 0.*shape"):
        grad_bp(bad, np.ones(3))


def test_wrong_structure_from_pullback() -> None:
    def fwd(p: Lin, x: np.ndarray) -> tuple[object, object]:
        return np.sum(p.w @ x), lambda g: ((np.ones((2, 3)), np.ones(2)), np.ones(3))

    with pytest.raises(TypeError, match=r"fwd: the gradient for argument 0 has the wrong struct"):
        grad_bp(lambda p: op2(fwd)(p, np.ones(3)), Lin(np.ones((2, 3)), np.ones(2)))


@pytest.mark.parametrize(
    ("x", "gradient"),
    [(1.5, 2), (np.ones(2), np.array([2, 2])), (np.ones(2), [np.int64(2), 2.0])],
    ids=["int for float", "int array for float array", "int in a list"],
)
def test_integer_gradient_from_pullback_says_so(x: object, gradient: object) -> None:
    bad = op1(lambda v: (np.sum(v), lambda g: gradient))
    with pytest.raises(TypeError, match="integers are constants to hetgrad"):
        grad_bp(bad, x if not isinstance(gradient, list) else [1.0, 2.0])


def test_wrong_dtype_kind_from_pullback() -> None:
    bad = op1(lambda x: (np.sum(x), lambda g: np.ones(3, dtype=complex)))
    with pytest.raises(TypeError, match=r"<lambda>: the gradient for argument 0.*complex"):
        grad_bp(bad, np.ones(3))


def test_wrong_count_from_pullback() -> None:
    bad = op2(lambda a, b: (a * b, lambda g: g))
    with pytest.raises(TypeError, match="tuple of 2 gradients"):
        grad_bp(lambda a: bad(a, 2.0), 1.0)


def test_defvjp_rule_is_checked() -> None:
    @hetgrad.primitive
    def f(x: object) -> object:
        return np.sum(x)

    f.defvjp(lambda g, ans, x: np.ones(2))
    with pytest.raises(ValueError, match=r"f: the gradient for argument 0.*shape"):
        grad_bp(f, np.ones(4))


def test_wrong_arity_call() -> None:
    with pytest.raises(TypeError, match="takes 2 argument"):
        matvec(np.eye(2))


def test_pullback_returning_none_means_no_gradient() -> None:
    gate = op2(lambda a, mask: (a * mask, lambda g: (g * mask, None)))
    assert grad_bp(lambda a, m: gate(a, m), 2.0, 3.0) == (3.0, 0.0)


# -- no_grad, stop_gradient, const ------------------------------------------------------------


def test_no_grad_forward_only() -> None:
    argmax = hetgrad.no_grad(lambda x: np.argmax(x).astype(float))
    # used only in control flow: fine
    f = lambda x: x[int(argmax(x).value)] * 2.0
    np.testing.assert_array_equal(grad_bp(f, np.array([1.0, 5.0, 2.0])), [0.0, 2.0, 0.0])
    with pytest.raises(TypeError, match="no_grad"):
        grad_bp(lambda x: argmax(x) * x[0], np.array([1.0, 5.0]))


def test_stop_gradient_and_const() -> None:
    assert grad_bp(lambda x: x * hetgrad.stop_gradient(x), 3.0) == 3.0
    assert grad_bp(lambda x: x * hetgrad.const(4.0), 3.0) == 4.0
    assert hetgrad.auto is hetgrad.const
    with pytest.raises(TypeError, match="stop_gradient"):
        grad_bp(lambda x: hetgrad.const(x), 1.0)
    # stop_gradient at every level of nesting
    f = lambda x: grad(lambda y: y * hetgrad.stop_gradient(x))(1.0) * x
    assert grad(f)(2.0) == 2.0
    # plain values are constants already and come back as they are; a BVar's value comes
    # back read-only (the tape still reads it)
    a = np.ones(3)
    assert hetgrad.stop_gradient(a) is a and hetgrad.stop_gradient(2.5) == 2.5

    def loss(x: Any) -> Any:
        s = hetgrad.stop_gradient(x)
        assert type(s) is np.ndarray and not s.flags.writeable
        return np.sum(x * s)

    np.testing.assert_array_equal(grad_bp(loss, np.array([1.0, 2.0])), [1.0, 2.0])


def test_stop_gradient_cuts_a_bvar_held_in_a_static_field() -> None:
    @dataclasses.dataclass
    class Sized:
        w: float
        size: Any = dataclasses.field(default=1.0, metadata={"static": True})

    # The static field was given a BVar: stop_gradient makes it a constant like the rest.
    assert grad_bp(lambda y: hetgrad.stop_gradient(Sized(1.0, y * 1.0)).size * 2.0, 3.0) == 0.0
    nested = lambda y: hetgrad.stop_gradient([Sized(y, [y * 1.0])])[0].size[0] * 2.0 + y
    assert grad_bp(nested, 3.0) == 1.0
    # Static values without BVars are kept as they are.
    tag = ["a"]
    assert hetgrad.stop_gradient(Sized(1.0, tag)).size is tag


def test_a_bvar_keyword_argument_is_an_error_not_a_lost_gradient() -> None:
    @hetgrad.primitive
    def shift(x: Any, a: float = 0.0) -> Any:
        return x + a

    shift.defvjp(lambda g, ans, x, a=0.0: g)
    with pytest.raises(TypeError, match="keyword argument a= is a BVar"):
        grad_bp(lambda x, a: shift(x, a=a), 2.0, 3.0)
    with pytest.raises(TypeError, match="keyword argument initial= is a BVar"):
        grad_bp(lambda a, b: np.max(a, initial=b), np.array([1.0, 2.0]), 3.0)
    # A constant keyword is fine, and stop_gradient makes one.
    assert grad_bp(lambda x, a: shift(x, a=hetgrad.stop_gradient(a)), 2.0, 3.0) == (1.0, 0.0)


# -- what a custom operation may not do ----------------------------------------------


def test_a_bvar_reaching_an_op_other_than_as_an_argument_is_an_error() -> None:
    @hetgrad.primitive
    def add_all(x: Any, ys: Any) -> Any:
        return x + ys[0] + ys[1]

    add_all.defvjp(lambda g, ans, x, ys: g, lambda g, ans, x, ys: [g, g])
    with pytest.raises(TypeError, match="add_all: its forward pass computed with a BVar"):
        grad_bp(lambda x, a: add_all(x, [a, 2.0 * a]), 2.0, 3.0)  # was (1.0, 0.0)

    def scaled(x: Any, c: Any) -> Any:
        op = op1(lambda y: (y * c, lambda g: g * hetgrad.stop_gradient(c)))
        return op(x)

    with pytest.raises(TypeError, match="its forward pass computed with a BVar"):
        grad_bp(scaled, 2.0, 3.0)  # was (3.0, 0.0)


def test_an_op_cannot_write_into_the_tapes_arrays() -> None:
    @hetgrad.primitive
    def double_in_place(x: Any) -> Any:
        x *= 2.0
        return x

    double_in_place.defvjp(lambda g, ans, x: 2.0 * g)

    def softmax_in_place(x: Any) -> Any:
        x -= x.max()
        e = np.exp(x)
        y = e / e.sum()
        return y, lambda g: y * (g - np.sum(g * y))

    x = np.array([0.0, 1.0])
    for f in (lambda x: double_in_place(np.exp(x)), lambda x: op1(softmax_in_place)(np.exp(x))):
        with pytest.raises(ValueError, match="read-only"):
            grad_bp(lambda x, f=f: np.sum(f(x) * np.arange(2.0)), x)  # was silently wrong


def test_a_pullback_cannot_edit_its_cotangent() -> None:
    # The cotangent of relu(x) + x goes to both terms: editing it in place corrupted x's.
    def relu_forward(x: Any) -> Any:
        def pullback(g: Any) -> Any:
            g[x < 0] = 0.0
            return g

        return np.maximum(x, 0.0), pullback

    relu = op1(relu_forward)
    with pytest.raises(ValueError, match="read-only"):
        grad_bp(lambda x: np.sum(relu(x) + x), np.array([-1.0, 2.0, -3.0]))  # was [0, 2, 0]

    @hetgrad.primitive
    def relu_p(x: Any) -> Any:
        return np.maximum(x, 0.0)

    def rule(g: Any, ans: Any, x: Any) -> Any:
        g[x < 0] = 0.0
        return g

    relu_p.defvjp(rule)
    with pytest.raises(ValueError, match="read-only"):
        grad_bp(lambda x: np.sum(relu_p(x) + x), np.array([-1.0, 2.0, -3.0]))


def test_the_gradient_of_a_registered_type_must_be_of_that_type() -> None:
    total = op1(lambda p: (float(p.c.sum()), lambda g: g))  # should return a Poly
    with pytest.raises(TypeError, match="expected a Poly, got float"):
        grad_bp(total, Poly([1.0, 2.0]))
    right = op1(lambda p: (float(p.c.sum()), lambda g: Poly(g * np.ones_like(p.c))))
    assert grad_bp(right, Poly([1.0, 2.0])).c.tolist() == [1.0, 1.0]


def test_a_rule_returning_none_means_no_gradient_in_any_order() -> None:
    @hetgrad.primitive
    def doubled(x: Any) -> Any:
        return x * 2.0

    doubled.defvjp(lambda g, ans, x: None)
    assert grad_bp(lambda x: x * x + doubled(x), 3.0) == 6.0
    assert grad_bp(lambda x: doubled(x) + x * x, 3.0) == 6.0  # used to raise


def test_varargs_beyond_the_rules_given_name_the_missing_rule() -> None:
    @hetgrad.primitive
    def total(*xs: Any) -> Any:
        return sum(xs)

    total.defvjp(*([lambda g, ans, *xs: g] * 32))
    assert grad_bp(lambda v: total(*v), [1.0] * 32) == [1.0] * 32
    with pytest.raises(TypeError, match="total: argument 32 has no gradient rule"):
        grad_bp(lambda v: total(*v), [1.0] * 40)  # used to be a bare IndexError


def test_a_boolean_result_of_a_primitive_is_a_constant() -> None:
    @hetgrad.primitive
    def positive(x: Any) -> Any:
        return x > 0

    positive.defvjp(lambda g, ans, x: g)
    g = grad_bp(lambda x: np.sum(x * positive(x)), np.array([-1.0, 2.0]))
    assert g.tolist() == [0.0, 1.0]


def test_an_ops_own_output_is_read_only_for_its_pullback() -> None:
    # A pullback that reuses its output's memory corrupted every later call of it
    # (jacobian's rows, a backprop_with pullback called twice).
    @op1
    def softmax(x: Any) -> Any:
        e = np.exp(x - x.max())
        y = e / e.sum()

        def pullback(g: Any) -> Any:
            s = g @ y
            y[...] = y * (g - s)  # in place: refused
            return y.copy()

        return y, pullback

    with pytest.raises(ValueError, match="read-only"):
        hetgrad.jacobian(lambda x: softmax(x) * 2.0)(np.array([0.1, 0.5, -0.3]))


def test_a_pullback_returning_an_array_it_keeps_gives_the_caller_a_copy() -> None:
    slope = np.array([1.0, 2.0, 3.0])

    @hetgrad.primitive
    def lin(x: Any) -> Any:
        return np.sum(x * slope)

    lin.defvjp(lambda g, ans, x: slope)
    plain = hetgrad.op1(lambda x: (np.sum(x * slope), lambda g: slope))
    for f in (lin, plain):
        g1, g2 = hetgrad.grad_bp(f, np.zeros(3)), hetgrad.grad_bp(f, np.ones(3))
        assert g1 is not slope and g1 is not g2
        g1 *= 0.0  # the caller's own array
        assert slope.tolist() == [1.0, 2.0, 3.0] and g2.tolist() == [1.0, 2.0, 3.0]


def test_rules_set_on_vjps_directly_are_used() -> None:
    p = hetgrad.Primitive(lambda x: x * x)
    p.vjps = (lambda g, y, x: 2.0 * g * x,)
    assert hetgrad.grad_bp(p, 3.0) == 6.0


# -- second order through custom ops on an opaque registered type ------------------------


@op1
def poly_cubes(p: Any) -> Any:
    """Passes the Poly on to a lifted op only, so it can be differentiated twice."""
    c = from_poly(p)
    return np.sum(c**3), lambda g: to_poly(3.0 * g * c**2)


@op1
def scaled_poly(x: Any) -> Any:
    """Returns a Poly (built by a lifted op); its pullback reads the cotangent's field."""
    return to_poly(2.0 * x), lambda g: 2.0 * g.c


def _refusal(info: pytest.ExceptionInfo[TypeError], op: str, what: str) -> None:
    msg = str(info.value)
    assert msg.startswith(f"{op}: differentiating a second time through this custom op on a Poly")
    assert f"its {what} is given a BVar of the outer derivative in place of the Poly" in msg
    assert isinstance(info.value.__cause__, AttributeError)  # the user's error, chained


def test_second_order_through_an_op_reading_a_registered_value_says_why() -> None:
    p = Poly([1.0, 2.0])
    gg = grad(lambda p: np.sum(from_poly(grad(lambda q: np.sum(from_poly(q) ** 3))(p))))
    with pytest.raises(TypeError) as info:
        gg(p)
    _refusal(info, "<lambda>", "function")
    with pytest.raises(TypeError) as info:
        hetgrad.check_grads(lambda d: np.sum(from_poly(d["p"]) ** 3) * d["x"],
                            {"x": 2.0, "p": p}, order=2)  # fmt: skip
    _refusal(info, "<lambda>", "function")


def test_second_order_through_a_pullback_reading_a_registered_cotangent_says_why() -> None:
    x = np.array([1.0, -2.0])
    with pytest.raises(TypeError) as info:
        hetgrad.jvp(scaled_poly, (x,), (np.ones(2),))
    _refusal(info, "scaled_poly", "pullback")
    # A mixed second derivative: the cotangent of the Poly depends on the outer variable s.
    inner = lambda s: grad(lambda x: np.sum(from_poly(scaled_poly(x)) ** 3) * s)(x)
    with pytest.raises(TypeError) as info:
        grad(lambda s: np.sum(inner(s)))(2.0)
    _refusal(info, "scaled_poly", "pullback")


def test_an_op_passing_a_registered_value_on_to_lifted_ops_works_at_second_order() -> None:
    p = Poly([1.0, -2.0, 0.5])
    # d/dp sum(3 c^2) = 6 c
    gg = grad(lambda p: np.sum(from_poly(grad(poly_cubes)(p))))(p)
    np.testing.assert_allclose(gg.c, 6.0 * p.c)


def test_a_primitive_function_sees_plain_values_at_every_order() -> None:
    """Under an outer derivative, the outer runner records the primitive itself with the same
    rules (as autograd does): an opaque forward differentiates twice, a stable forward gives
    finite Hessians, and a forward wrapped in stop_gradient no longer loses a term."""
    import math

    opaque = np.vectorize(math.erf, otypes=[float])

    def erf_rule(g: Any, ans: Any, x: Any) -> Any:
        return g * 2.0 / np.sqrt(np.pi) * np.exp(-x * x)

    @hetgrad.primitive
    def erf(x: Any) -> Any:
        return opaque(x)

    @hetgrad.primitive
    def erf_cut(x: Any) -> Any:
        return opaque(hetgrad.stop_gradient(x))

    erf.defvjp(erf_rule)
    erf_cut.defvjp(erf_rule)
    want = -2.0 * 0.3 * 2.0 / np.sqrt(np.pi) * np.exp(-0.09)
    assert np.isclose(grad(grad(erf))(0.3), want)  # raised a TypeError (np.asarray of a BVar)
    hetgrad.check_grads(erf, np.array([0.3, -1.2]), order=3)
    hetgrad.check_grads(lambda x: erf_cut(x) * x, 0.3, order=2)  # gave 0.8456 for 1.8769

    @hetgrad.primitive
    def sigmoid(x: Any) -> Any:  # stable on plain values; differentiated, a NaN Hessian
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    sigmoid.defvjp(lambda g, ans, x: g * ans * (1.0 - ans))
    h = hetgrad.hessian(lambda x: np.sum(sigmoid(x)))(np.array([800.0, -800.0, 0.5]))
    assert np.isfinite(h).all()
    s = 1.0 / (1.0 + np.exp(-0.5))
    assert np.isclose(h[2, 2], s * (1 - s) * (1 - 2 * s))


def test_no_grad_used_as_a_context_manager_says_what_it_is() -> None:
    with pytest.raises(TypeError, match="not a context manager like torch.no_grad"):
        with hetgrad.no_grad():  # type: ignore[attr-defined]
            pass
    with pytest.raises(TypeError, match="wraps a function"):
        hetgrad.no_grad(3.0)  # type: ignore[arg-type]
