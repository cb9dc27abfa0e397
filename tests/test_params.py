"""Parameter arithmetic with hetgrad.Params: net - lr * grad."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import hetgrad


@dataclasses.dataclass(frozen=True)
class Net(hetgrad.Params):
    w: np.ndarray
    b: float
    name: str = dataclasses.field(default="net", metadata={"static": True})


def test_descent_step_as_written() -> None:
    net = Net(np.array([1.0, 2.0]), 0.5)
    x = np.array([3.0, -1.0])
    loss = lambda n: (np.sum(n.w * x) + n.b - 2.0) ** 2
    g = hetgrad.grad_bp(loss, net)
    assert type(g) is Net
    new = net - 0.02 * g
    assert type(new) is Net and new.name == "net"
    np.testing.assert_allclose(new.w, net.w - 0.02 * g.w)
    assert new.b == pytest.approx(net.b - 0.02 * g.b)
    assert loss(new) < loss(net)


def test_all_operators() -> None:
    a = Net(np.array([2.0]), 4.0)
    b = Net(np.array([1.0]), 2.0)
    assert (a + b).b == 6.0 and (a - b).b == 2.0 and (a * b).b == 8.0 and (a / b).b == 2.0
    assert (a * 2).b == 8.0 and (2 * a).b == 8.0 and (a / 2).b == 2.0 and (8 / a).b == 2.0
    assert (1 - a).b == -3.0 and (a + 1).b == 5.0 and (-a).b == -4.0
    np.testing.assert_array_equal((a - b).w, [1.0])


def test_mismatched_types_are_rejected() -> None:
    @dataclasses.dataclass
    class Other(hetgrad.Params):
        b: float

    with pytest.raises(TypeError):
        Net(np.ones(1), 1.0) + Other(1.0)  # type: ignore[operator]
    with pytest.raises(TypeError):
        Net(np.ones(1), 1.0) + [1.0]  # type: ignore[operator]


def _total(n: Net) -> object:
    return np.sum(n.w) + n.b


@pytest.mark.parametrize("op", ["*", "+", "-", "/"])
@pytest.mark.parametrize("scalar_left", [True, False])
def test_a_differentiated_scalar_with_params(op: str, scalar_left: bool) -> None:
    """``s * net`` (the scalar a BVar) acts leaf by leaf, as with a plain scalar."""
    net = Net(np.array([1.0, 2.0]), 3.0)
    fns = {"*": lambda a, b: a * b, "+": lambda a, b: a + b, "-": lambda a, b: a - b,
           "/": lambda a, b: a / b}  # fmt: skip
    fn = fns[op]

    def f(s: object, n: Net) -> object:
        out = fn(s, n) if scalar_left else fn(n, s)
        assert type(out) is Net
        return _total(out)

    hetgrad.check_grads(f, 1.7, net, order=2)
    value, (gs, gn) = hetgrad.value_and_grad(f, argnums=(0, 1))(1.7, net)
    assert type(gn) is Net and gn.name == "net"
    assert value == pytest.approx(_total(fn(1.7, net) if scalar_left else fn(net, 1.7)))


def test_a_scalar_times_params_inside_a_nested_gradient() -> None:
    """The perturbation through ``s * net`` reaches the outer gradient (it was lost)."""
    net = Net(np.array([1.0, 2.0]), 3.0)

    def outer(s: object) -> object:
        h = hetgrad.grad(lambda n: np.sum((s * n).w ** 2))(net)  # 2 s^2 w
        return np.sum(h.w)  # 6 s^2

    assert hetgrad.grad(outer)(2.0) == pytest.approx(24.0)
    hetgrad.check_grads(outer, 2.0)


def test_hypergradient_of_a_descent_step() -> None:
    net = Net(np.array([1.0, 2.0]), 3.0)
    g = Net(np.array([0.5, 0.5]), 1.0)
    assert hetgrad.grad(lambda lr: _total(net - lr * g))(0.1) == pytest.approx(-2.0)


def test_a_lifted_function_given_a_structure_raises() -> None:
    import hetgrad.numpy as hnp

    net = Net(np.array([1.0, 2.0]), 3.0)
    with pytest.raises(TypeError, match="Net"):
        hetgrad.grad(lambda s: _total(hnp.multiply(s, net)))(2.0)
    with pytest.raises(TypeError, match="structure"):
        hetgrad.grad(lambda s: np.sum(hnp.einsum("i,i->i", s, net)))(np.ones(2))
    # Plain lists and tuples stay NumPy's business: an array operand.
    assert hetgrad.grad(lambda x: np.sum(x * [1.0, 2.0]))(np.ones(2)).tolist() == [1.0, 2.0]


def test_params_on_a_namedtuple_must_come_first() -> None:
    from typing import NamedTuple

    class _Pair(NamedTuple):
        a: float
        b: float

    class Pair(hetgrad.Params, _Pair):
        __slots__ = ()

    assert Pair(1.0, 2.0) + Pair(1.0, 2.0) == Pair(2.0, 4.0)
    assert Pair(1.0, 2.0) * 2.0 == Pair(2.0, 4.0)
    with pytest.raises(TypeError, match="put hetgrad.Params before the NamedTuple"):

        class Wrong(_Pair, hetgrad.Params):  # tuple's + would concatenate
            __slots__ = ()


def test_an_array_operand_is_refused_not_broadcast_into_every_leaf() -> None:
    net = Net(np.ones((2, 2), np.float32), 1.0)
    for combine in (lambda: net * np.array([2.0, 3.0]), lambda: np.array([2.0, 3.0]) * net):
        with pytest.raises(TypeError, match="shape \\(2,\\)"):
            combine()
    scaled = net * np.array(2.0)  # a 0-d array is a number
    assert scaled.b == 2.0 and type(scaled.b) is float


def test_numpy_scalars_combine_alike_on_either_side() -> None:
    net = Net(np.ones(2, np.float32), 1.0)
    for scaled in (net * np.float64(2.0), np.float64(2.0) * net):
        # NumPy's promotion (float32 array times a float64 scalar is float64), and a
        # Python float leaf stays a Python float.
        assert scaled.w.dtype == np.float64 and type(scaled.b) is float and scaled.b == 2.0
    for scaled in (net * 2.0, 2.0 * net, net * np.float32(2.0), np.float32(2.0) * net):
        assert scaled.w.dtype == np.float32


def test_a_float_leaf_stays_a_float_with_any_numpy_scalar() -> None:
    net = Net(np.ones(2, np.float32), 1.0)
    for lr in (np.float32(0.1), np.float16(0.5), np.float64(0.25)):
        assert type((net - lr * net).b) is float


def test_params_divided_by_a_numpy_zero_follow_numpy() -> None:
    @dataclasses.dataclass
    class P(hetgrad.Params):
        w: np.ndarray
        b: float

    with np.errstate(divide="ignore"):
        out = P(np.ones(2), 1.0) / np.float64(0.0)
    assert out.w.tolist() == [np.inf, np.inf] and out.b == np.inf and type(out.b) is float


def test_a_zero_dimensional_array_leaf_stays_an_array() -> None:
    @dataclasses.dataclass
    class P(hetgrad.Params):
        scale: np.ndarray
        b: float

    p = P(np.array(2.0, np.float32), 1.0)
    for out in (p * 2.0, 2.0 * p, p + p, p - p, p / np.float32(2.0), -p):
        assert type(out.scale) is np.ndarray and out.scale.shape == ()
        assert out.scale.dtype == np.float32 and type(out.b) is float
