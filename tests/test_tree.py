"""Structures: flatten/unflatten round trips, static leaves, paths, tree_map."""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections import Counter, OrderedDict, defaultdict
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings

import hetgrad
from hetgrad.tree import flatten, leaf_keys, leaf_paths, tree_map, unflatten
from strategies import same, structures


@settings(max_examples=150, deadline=None)
@given(structures)
def test_flatten_unflatten_round_trip(x: Any) -> None:
    leaves, td = flatten(x)
    assert same(unflatten(td, leaves), x)
    assert td.num_leaves == len(leaves)
    assert len(leaf_paths(td)) == len(leaves)


class Color(enum.Enum):
    RED = 1


class Pt(NamedTuple):
    x: float
    label: str


@dataclasses.dataclass(frozen=True)
class Cfg:
    w: np.ndarray
    steps: int
    act: Any = dataclasses.field(default=np.tanh, metadata={"static": True})
    fn: Any = None


def test_static_leaves() -> None:
    value = [
        1, True, "s", b"b", None, Color.RED, np.arange(3), np.array([True]), len,
        functools.partial(max, 1), np.int64(3), 2.0,
    ]  # fmt: skip
    leaves, td = flatten(value)
    assert leaves == [2.0]
    assert unflatten(td, [5.0])[-1] == 5.0


def test_dataclass_static_field_is_not_a_leaf_even_if_float() -> None:
    @dataclasses.dataclass
    class Scaled:
        w: float
        scale: float = dataclasses.field(default=2.0, metadata={"static": True})

    leaves, td = flatten(Scaled(1.0))
    assert leaves == [1.0]
    assert unflatten(td, [3.0]) == Scaled(3.0, 2.0)


def test_rebuild_bypasses_init_validation() -> None:
    @dataclasses.dataclass(frozen=True)
    class Positive:
        v: float

        def __post_init__(self) -> None:
            if self.v <= 0:
                raise ValueError("must be positive")

    _, td = flatten(Positive(1.0))
    assert unflatten(td, [-1.0]).v == -1.0  # a gradient may well be negative


@dataclasses.dataclass(frozen=True, slots=True)
class SlotPair:
    a: float
    b: np.ndarray


class Base:
    __slots__ = ("a",)  # a field stored in a parent's slot, under a dataclass with a __dict__


@dataclasses.dataclass
class MixedPair(Base):
    a: float
    b: float


@dataclasses.dataclass
class WithProperty:
    a: float
    _b: float = 0.0

    @property
    def b(self) -> float:
        return self._b


def test_rebuild_of_slots_mixed_and_plain_dataclasses() -> None:
    for value in (SlotPair(1.0, np.ones(2)), MixedPair(1.0, 2.0), WithProperty(1.0, 2.0)):
        doubled = tree_map(lambda x: 2.0 * x, value)
        assert type(doubled) is type(value)
        for got, was in zip(flatten(doubled)[0], flatten(value)[0]):
            np.testing.assert_array_equal(got, 2.0 * was)
    assert tree_map(lambda x: -x, MixedPair(1.0, 2.0)).a == -1.0
    assert tree_map(lambda x: -x, WithProperty(1.0, 2.0)).b == -2.0


def test_paths_and_keys() -> None:
    value = {"cfg": Cfg(np.ones(2), 3), "pts": [Pt(1.0, "a"), Pt(2.0, "b")]}
    _, td = flatten(value)
    assert leaf_paths(td, "p") == ["p['cfg'].w", "p['pts'][0].x", "p['pts'][1].x"]
    assert leaf_keys(td) == [("cfg", "w"), ("pts", 0, "x"), ("pts", 1, "x")]


def test_tree_map_several_trees_and_mismatch() -> None:
    a = {"w": np.ones(2), "n": 3}
    b = {"w": np.full(2, 2.0), "n": 3}
    out = tree_map(lambda x, y: x + y, a, b)
    np.testing.assert_array_equal(out["w"], [3.0, 3.0])
    assert out["n"] == 3
    with pytest.raises(ValueError, match="different structure"):
        tree_map(lambda x, y: x, a, {"w": np.ones(2)})


def test_dict_subclasses_rebuild_right_or_are_refused() -> None:
    from collections import Counter

    import hetgrad

    assert hetgrad.grad_bp(lambda c: c["a"] ** 2, Counter(a=2.0)) == Counter(a=4.0)
    assert type(hetgrad.zero(Counter(a=2.0, b=1.0))) is Counter

    class Plain(dict):  # dict's own constructor: rebuilt as Plain(items)
        pass

    g = hetgrad.grad_bp(lambda c: c["a"] ** 2, Plain(a=2.0))
    assert type(g) is Plain and g == {"a": 4.0}

    class Config(dict):  # a constructor of its own: hetgrad cannot know how to call it
        def __init__(self, name: str, **items: float) -> None:
            super().__init__(**items)
            self.name = name

    with pytest.raises(TypeError, match="dict subclass with its own constructor"):
        hetgrad.grad_bp(lambda c: c["a"] ** 2, Config("x", a=2.0))


def test_unflatten_checks_the_number_of_leaves() -> None:
    leaves, td = flatten({"a": 1.0, "b": [2.0, 3.0]})
    for wrong in (leaves[:1], leaves + [4.0]):
        with pytest.raises(ValueError, match="the TreeDef has 3 leaves, got"):
            unflatten(td, wrong)


class _Tally(dict):
    """A dict subclass that keeps dict's constructor."""


def _sum_of_squares(x: Any) -> Any:
    """A generic walk over a structure, branching on the container's type."""
    if isinstance(x, dict):
        return sum(_sum_of_squares(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return sum(_sum_of_squares(v) for v in x)
    return x * x


@pytest.mark.parametrize(
    "x",
    [
        [1.0, 2.0],
        (1.0, [2.0, (3.0,)]),
        {"a": 1.0, 7: {"b": 2.0}},
        OrderedDict(a=1.0, b=2.0),
        defaultdict(float, {"a": 1.0}),
        Counter(a=1.0),
        _Tally(a=1.0),
    ],
)
def test_a_bvar_of_a_container_is_an_instance_of_its_type(x: Any) -> None:
    # A branch on isinstance(x, list/dict) must take the same way under differentiation
    # as without it: it once took the other, and the gradient was silently wrong.
    g = hetgrad.grad_bp(_sum_of_squares, x)
    assert same(g, tree_map(lambda v: 2.0 * v, x))
    assert hetgrad.grad_bp(lambda v: v[0] * (2.0 if isinstance(v, list) else 1.0), [1.0]) == [2.0]


def test_a_dataclass_field_never_assigned_is_named() -> None:
    @dataclasses.dataclass
    class Unset:
        w: float
        c: float = dataclasses.field(init=False)

    # It was the bare AttributeError "'Unset' object has no attribute 'c'", with no path.
    with pytest.raises(TypeError, match=r"at args\[0\]\['x'\]: field 'c' of this Unset was never"):
        hetgrad.grad_bp(lambda d: d["x"].w * 2.0, {"x": Unset(1.0)})
