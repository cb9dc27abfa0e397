"""check_backprop_laws: passes on lawful types and structures, names the law that fails."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import hetgrad


def make_poly(
    zero: Callable[[Any], Any] | None = None,
    add: Callable[[Any, Any], Any] | None = None,
    one: Callable[[Any], Any] | None = None,
) -> type:
    """A fresh registered class holding coefficients; lawful unless a rule is replaced."""

    class Poly:
        def __init__(self, coef: Any) -> None:
            self.coef = np.asarray(coef, dtype=float)

        def __repr__(self) -> str:
            return f"Poly({self.coef.tolist()})"

    hetgrad.register_backprop(
        Poly,
        zero=zero or (lambda p: Poly(np.zeros_like(p.coef))),
        add=add or (lambda p, q: Poly(p.coef + q.coef)),
        one=one or (lambda p: Poly(np.ones_like(p.coef))),
    )
    return Poly


def examples(cls: type) -> list[Any]:
    return [cls([1.0, 2.0]), cls([0.5, -1.0]), cls([3.0, 0.25])]


class Pair(NamedTuple):
    a: float
    b: np.ndarray


@dataclasses.dataclass(frozen=True)
class Layer:
    w: np.ndarray
    b: float
    name: str = dataclasses.field(default="dense", metadata={"static": True})


@pytest.mark.parametrize(
    "values",
    [
        [1.5, -2.0, 0.1],
        [np.float32(1.5), np.float32(2.5)],
        [np.array([1.0, 2.0]), np.array([3.0, -4.0]), np.array([0.1, 0.2])],
        [np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)],
        [np.array(2.0), np.array(-1.0)],
        [{"w": 1.0, "n": 3}, {"w": 2.0, "n": 3}],
        [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
        [Pair(1.0, np.ones(2)), Pair(2.0, np.arange(2.0))],
        [Layer(np.ones(2), 0.5), Layer(np.arange(2.0), 1.5)],
        [0.1, 0.2, 0.3],  # associativity holds up to rounding
    ],
)
def test_builtin_structures_are_lawful(values: list[Any]) -> None:
    hetgrad.check_backprop_laws(*values)


def test_a_lawful_registered_type_passes_also_inside_structures() -> None:
    poly = make_poly()
    hetgrad.check_backprop_laws(*examples(poly))
    hetgrad.check_backprop_laws(poly([1.0]))
    nested = [{"p": p, "scale": float(i), "tag": "x"} for i, p in enumerate(examples(poly))]
    hetgrad.check_backprop_laws(*nested)


def test_gradients_of_a_lawful_type_flow_through_custom_ops() -> None:
    poly = make_poly()
    evaluate = hetgrad.op1(
        lambda p: (float(np.polyval(p.coef, 2.0)),
                   lambda g: poly(g * 2.0 ** np.arange(len(p.coef))[::-1]))
    )  # fmt: skip
    g = hetgrad.grad_bp(lambda p: evaluate(p) * evaluate(p), poly([1.0, 1.0]))
    assert isinstance(g, poly)
    np.testing.assert_allclose(g.coef, [12.0, 6.0])


def law_failure(cls: type) -> str:
    with pytest.raises(AssertionError) as info:
        hetgrad.check_backprop_laws(*examples(cls))
    return str(info.value)


def test_zero_that_is_not_zero() -> None:
    msg = law_failure(make_poly(zero=lambda p: type(p)(np.ones_like(p.coef))))
    assert "zero(zero(x)) == zero(x)" in msg or "add(x, zero(y)) == x" in msg


def test_zero_of_the_wrong_type_or_shape() -> None:
    assert "zero(x) has x's structure" in law_failure(make_poly(zero=lambda p: 0.0))
    # A zero of the wrong shape, even one that add broadcasts (one coefficient).
    for size in (3, 1):
        msg = law_failure(make_poly(zero=lambda p, size=size: type(p)(np.zeros(size))))
        assert "zero(x) has x's structure" in msg


def test_associativity_holds_up_to_rounding_for_an_exact_eq() -> None:
    class Exact:
        def __init__(self, c: Any) -> None:
            self.c = np.asarray(c, dtype=float)

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Exact) and bool(np.all(self.c == other.c))

    hetgrad.register_backprop(
        Exact, zero=lambda v: Exact(np.zeros_like(v.c)), add=lambda a, b: Exact(a.c + b.c),
        one=lambda v: Exact(np.ones_like(v.c)),
    )  # fmt: skip
    hetgrad.check_backprop_laws(Exact([0.1]), Exact([0.2]), Exact([0.3]))  # 0.6 either way


def test_one_of_the_wrong_type() -> None:
    assert "one(x) has x's structure" in law_failure(make_poly(one=lambda p: 1.0))


def test_add_that_is_not_an_identity_on_zero() -> None:
    msg = law_failure(make_poly(add=lambda p, q: type(p)(p.coef + 2.0 * q.coef)))
    assert "add(zero(y), x) == x" in msg
    assert "x = example 0, y = example 0" in msg


def test_add_that_does_not_commute() -> None:
    def cross(p: Any, q: Any) -> Any:
        c = p.coef + q.coef
        c[0] += p.coef[0] * q.coef[1] - p.coef[1] * q.coef[0]
        return type(p)(c)

    msg = law_failure(make_poly(add=cross))
    assert "add(x, y) == add(y, x)" in msg
    assert "x = example 0, y = example 1" in msg


def test_add_that_does_not_associate() -> None:
    msg = law_failure(
        make_poly(add=lambda p, q: type(p)(p.coef + q.coef + p.coef * q.coef * (p.coef + q.coef)))
    )
    assert "add(add(x, y), z) == add(x, add(y, z))" in msg
    assert "examples 0, 1, 2" in msg


def test_add_that_mutates_its_argument() -> None:
    def add_in_place(p: Any, q: Any) -> Any:
        p.coef += q.coef
        return p

    msg = law_failure(make_poly(add=add_in_place))
    assert "arguments unchanged" in msg and "argument 0 changed" in msg


def test_add_that_raises_is_reported_with_the_law() -> None:
    def broken(p: Any, q: Any) -> Any:
        raise RuntimeError("no addition today")

    msg = law_failure(make_poly(add=broken))
    assert "add(x, y) fails" in msg and "RuntimeError: no addition today" in msg


def test_types_with_eq_slots_and_a_custom_comparison() -> None:
    class Slotted:
        __slots__ = ("v",)

        def __init__(self, v: float) -> None:
            self.v = v

    hetgrad.register_backprop(
        Slotted, zero=lambda s: Slotted(0.0), add=lambda a, b: Slotted(a.v + b.v),
        one=lambda s: Slotted(1.0),
    )  # fmt: skip
    hetgrad.check_backprop_laws(Slotted(1.0), Slotted(2.0), Slotted(-3.0))

    class Off:
        def __init__(self, v: float) -> None:
            self.v = v

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Off) and self.v == other.v

    hetgrad.register_backprop(
        Off, zero=lambda s: Off(0.0), add=lambda a, b: Off(a.v + b.v + 1e-3),
        one=lambda s: Off(1.0),
    )  # fmt: skip
    with pytest.raises(AssertionError, match="add"):
        hetgrad.check_backprop_laws(Off(1.0), Off(2.0))
    hetgrad.check_backprop_laws(Off(1.0), Off(2.0), eq=lambda a, b: abs(a.v - b.v) < 0.1)


def test_static_leaves_must_agree() -> None:
    with pytest.raises(AssertionError, match="add"):
        hetgrad.check_backprop_laws({"w": 1.0, "n": 3}, {"w": 2.0, "n": 4})


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="at least one"):
        hetgrad.check_backprop_laws()
    with pytest.raises(TypeError, match=r"example 1"):
        hetgrad.check_backprop_laws({"w": 1.0}, {"w": object()})


def test_add_that_is_not_a_sum() -> None:
    """An elementwise max obeys every monoid law on non-negative values, but the gradients
    of a value used twice would be their max, not their sum."""
    poly = make_poly(add=lambda p, q: type(p)(np.maximum(p.coef, q.coef)))
    positive = [poly([1.0, 2.0]), poly([3.0, 0.5]), poly([0.25, 4.0])]
    with pytest.raises(AssertionError) as info:
        hetgrad.check_backprop_laws(*positive)
    msg = str(info.value)
    assert "add(x, x) != x" in msg and "x = example 0" in msg
    assert "must be their sum" in msg
    # Inside a structure the message names the leaf; a zero leaf is not a counterexample.
    with pytest.raises(AssertionError, match=r"x = example 1\['p'\]"):
        hetgrad.check_backprop_laws({"p": poly([0.0, 0.0]), "s": 1.0},
                                    {"p": poly([1.0, 2.0]), "s": 2.0})  # fmt: skip
    hetgrad.check_backprop_laws(poly([0.0, 0.0]))  # max(0, 0) is 0: nothing to see


def test_a_lawful_type_with_a_loose_eq_is_a_sum() -> None:
    class Rounded:
        def __init__(self, v: float) -> None:
            self.v = v

    hetgrad.register_backprop(
        Rounded, zero=lambda r: Rounded(0.0), add=lambda a, b: Rounded(a.v + b.v),
        one=lambda r: Rounded(1.0),
    )  # fmt: skip
    loose = lambda a, b: abs(a.v - b.v) < 0.5  # noqa: E731
    # 0.3 equals zero under this eq, so add(x, x) == x there is no failure; 0.6 is not.
    hetgrad.check_backprop_laws(Rounded(0.3), Rounded(0.6), eq=loose)


def test_a_registered_float_subclass() -> None:
    """A registered float subclass is an opaque leaf, not a real scalar grad_bp seeds;
    it is compared as a number (to the tolerance) and its add must still be a sum."""

    class Dollars(float):
        pass

    hetgrad.register_backprop(
        Dollars, zero=lambda d: Dollars(0.0), add=lambda a, b: Dollars(float(a) + float(b)),
        one=lambda d: Dollars(1.0),
    )  # fmt: skip
    hetgrad.check_backprop_laws(Dollars(0.1), Dollars(0.2), Dollars(0.3))  # rounding
    hetgrad.check_backprop_laws({"d": Dollars(2.0), "w": 1.0}, {"d": Dollars(-1.0), "w": 0.5})

    class Capped(float):
        pass

    hetgrad.register_backprop(
        Capped, zero=lambda d: Capped(0.0), add=lambda a, b: Capped(max(a, b)),
        one=lambda d: Capped(1.0),
    )  # fmt: skip
    with pytest.raises(AssertionError, match=r"add\(x, x\) != x"):
        hetgrad.check_backprop_laws(Capped(1.0), Capped(2.0))


def test_a_registered_array_subclass_is_checked_by_shape() -> None:
    class Vec(np.ndarray):
        pass

    def plus(a: Any, b: Any) -> Any:
        return (np.asarray(a) + np.asarray(b)).view(Vec)

    vecs = [np.array([1.0, 2.0]).view(Vec), np.array([0.1, 0.2]).view(Vec)]
    hetgrad.register_backprop(Vec, zero=lambda v: np.zeros(v.shape).view(Vec), add=plus,
                              one=lambda v: np.ones(v.shape).view(Vec))  # fmt: skip
    hetgrad.check_backprop_laws(*vecs)
    hetgrad.register_backprop(Vec, zero=lambda v: np.zeros(1).view(Vec), add=plus,
                              one=lambda v: np.ones(v.shape).view(Vec))  # fmt: skip
    with pytest.raises(AssertionError, match="zero\\(x\\) has x's structure"):
        hetgrad.check_backprop_laws(*vecs)
