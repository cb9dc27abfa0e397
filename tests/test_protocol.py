"""The Backprop protocol: zero/add/one laws over random structures, padding, registration."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

import hetgrad
from hetgrad import add, grad_bp, one, zero
from hetgrad.tree import flatten, tree_map
from strategies import same, structures


def other(x: Any, k: float) -> Any:
    return tree_map(lambda v: v * k + 1.0, x)


@settings(max_examples=150, deadline=None)
@given(structures)
def test_add_zero_is_identity(x: Any) -> None:
    y = other(x, 3.0)
    assert same(add(x, zero(y)), x)
    assert same(add(zero(y), x), x)


@settings(max_examples=150, deadline=None)
@given(structures)
def test_add_commutative_and_associative(x: Any) -> None:
    y, z = other(x, 2.0), other(x, -1.0)
    assert same(add(x, y), add(y, x))
    assert same(add(add(x, y), z), add(x, add(y, z)))


@settings(max_examples=150, deadline=None)
@given(structures)
def test_zero_idempotent_and_types_preserved(x: Any) -> None:
    assert same(zero(zero(x)), zero(x))
    for leaf, z, o in zip(flatten(x)[0], flatten(zero(x))[0], flatten(one(x))[0]):
        assert type(z) is type(leaf) and type(o) is type(leaf)
        assert np.shape(z) == np.shape(leaf) and np.all(z == 0) and np.all(o == 1)
        if isinstance(leaf, np.ndarray):
            assert z.dtype == leaf.dtype and o.dtype == leaf.dtype


@pytest.mark.parametrize("x", [2.5, np.float32(1.5), np.float64(3.0), np.array(2.0)])
def test_one_is_gradient_of_identity(x: Any) -> None:
    g = grad_bp(lambda v: v, x)
    assert g == one(x) and type(g) is type(one(x))


def test_lists_pad_and_dicts_union() -> None:
    assert add([1.0, 2.0], [10.0]) == [11.0, 2.0]
    assert add([1.0], [2.0, 3.0]) == [3.0, 3.0]
    assert add({"a": 1.0}, {"b": 2.0, "a": 1.0}) == {"a": 2.0, "b": 2.0}
    assert list(add({"b": 1.0, "a": 1.0}, {"c": 1.0})) == ["b", "a", "c"]


def test_add_errors_name_the_path() -> None:
    with pytest.raises(ValueError, match=r"x\['w'\]: cannot add arrays of shapes"):
        add({"w": np.ones(2)}, {"w": np.ones(3)})
    with pytest.raises(ValueError, match="different static values"):
        add((1.0, "a"), (1.0, "b"))
    with pytest.raises(ValueError, match="cannot add a tuple and a list"):
        add((1.0,), [1.0])


def test_unknown_type_in_zero() -> None:
    class Thing:
        pass

    with pytest.raises(TypeError, match=r"hetgrad.zero: at x\[1\].*Thing.*register_backprop"):
        zero([1.0, Thing()])


def test_registration_honours_subclasses() -> None:
    class Base:
        def __init__(self, v: float) -> None:
            self.v = v

    class Child(Base):
        pass

    hetgrad.register_backprop(
        Base, zero=lambda b: type(b)(0.0), add=lambda a, b: type(a)(a.v + b.v),
        one=lambda b: type(b)(1.0),
    )  # fmt: skip
    r = add(Child(1.0), Child(2.0))
    assert type(r) is Child and r.v == 3.0
    assert type(zero(Child(5.0))) is Child and one(Child(5.0)).v == 1.0
    with pytest.raises(TypeError, match="must be callable"):
        hetgrad.register_backprop(Base, zero=1, add=lambda a, b: a, one=lambda a: a)  # type: ignore[arg-type]


def test_add_of_a_float_and_an_array_is_refused_on_either_side() -> None:
    for x, y in ((1.0, np.ones(3)), (np.ones(3), 1.0)):
        with pytest.raises(ValueError, match="cannot add"):
            add(x, y)
    assert add(1.0, np.float64(2.0)) == 3.0


def test_zero_and_one_of_an_array_subclass_are_arrays_of_its_type_and_shape() -> None:
    class Sub(np.ndarray):
        pass

    x = np.array([[1.0, 2.0, 3.0]], np.float32).view(Sub)
    for made, fill in ((zero(x), 0.0), (one(x), 1.0)):
        assert type(made) is Sub and made.shape == (1, 3) and made.dtype == np.float32
        assert (np.asarray(made) == fill).all()
    # jvp seeds with one(output): a subclass argument works end to end.
    value, tangent = hetgrad.jvp(lambda v: v * 2.0, (x,), (np.ones((1, 3), np.float32),))
    np.testing.assert_array_equal(tangent, [[2.0, 2.0, 2.0]])
