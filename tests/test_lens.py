"""Optics on plain values: lens, prism and traversal laws over random nested structures."""

from __future__ import annotations

import copy
import dataclasses
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetgrad import lens
from hetgrad.lens import (
    attr,
    compose,
    each,
    instance,
    item,
    just,
    leaves,
    over,
    preview,
    to_list_of,
    view,
    where,
)
from hetgrad.tree import flatten
from strategies import D, M, P, containers, same


@dataclasses.dataclass(frozen=True, slots=True)
class S:
    u: Any
    v: Any


@dataclasses.dataclass(frozen=True)
class Circle:
    r: float


@dataclasses.dataclass(frozen=True)
class Rect:
    w: float
    h: float


class Pair(NamedTuple):
    left: Any
    right: Any


# -- random nested structures and random paths into them -------------------------------

small = st.integers(-8, 8).map(float)
leaf_values = st.one_of(
    small,
    st.lists(small, min_size=1, max_size=3).map(np.array),
    st.sampled_from(["s", 3, None]),
)


structures = st.recursive(leaf_values, lambda c: containers(c, S), max_leaves=10)


def child_steps(s: Any) -> list[tuple[lens.Optic, Any]]:
    """One lens per child of ``s`` (both attr and item for NamedTuples), with the child."""
    if dataclasses.is_dataclass(s) and not isinstance(s, type):
        return [(attr(f.name), getattr(s, f.name)) for f in dataclasses.fields(s)]
    if isinstance(s, tuple) and hasattr(s, "_fields"):
        return [(attr(n), getattr(s, n)) for n in s._fields] + [
            (item(i), c) for i, c in enumerate(s)
        ]
    if isinstance(s, dict):
        return [(item(k), c) for k, c in s.items()]
    if isinstance(s, (list, tuple)):
        return [(item(i), c) for i, c in enumerate(s)] + [
            (item(i - len(s)), c) for i, c in enumerate(s)
        ]
    return []


def all_paths(s: Any) -> list[tuple[lens.Optic, ...]]:
    """Every path (as a tuple of one-step lenses) from ``s`` to one of its parts."""
    out: list[tuple[lens.Optic, ...]] = []
    for step, child in child_steps(s):
        out.append((step,))
        out.extend((step,) + rest for rest in all_paths(child))
    return out


@st.composite
def structure_and_path(draw: Any) -> tuple[Any, lens.Optic]:
    s = draw(structures.filter(lambda x: bool(all_paths(x))))
    paths = all_paths(s)
    return s, compose(*paths[draw(st.integers(0, len(paths) - 1))])


def frozen_copy(s: Any) -> Any:
    return copy.deepcopy(s)


# -- lens laws ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(structure_and_path(), leaf_values, leaf_values)
def test_lens_laws(sp: tuple[Any, lens.Optic], x: Any, y: Any) -> None:
    s, ln = sp
    before = frozen_copy(s)
    focus = view(s, ln)
    assert same(lens.set(s, ln, focus), s)  # get-set
    assert view(lens.set(s, ln, x), ln) is x  # set-get
    assert same(lens.set(lens.set(s, ln, x), ln, y), lens.set(s, ln, y))  # set-set
    assert same(over(s, ln, lambda a: a), s)
    assert to_list_of(s, ln) == [focus] or same(to_list_of(s, ln), [focus])
    assert preview(s, ln) is focus
    assert same(s, before)  # nothing was mutated


@settings(max_examples=60, deadline=None)
@given(structure_and_path())
def test_where_reads_the_same_path_as_composed_lenses(sp: tuple[Any, lens.Optic]) -> None:
    s, ln = sp

    def selector(root: Any) -> Any:
        for step in ln.steps:
            root = getattr(root, step.name) if isinstance(step, lens._Attr) else root[step.key]
        return root

    w = where(selector)
    assert repr(w) == repr(ln)
    assert view(s, w) is view(s, ln)
    assert same(lens.set(s, w, 99.0), lens.set(s, ln, 99.0))


# -- prism laws --------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(structure_and_path(), st.sampled_from([float, list, dict, tuple, P, D, M, S, str]))
def test_prism_laws(sp: tuple[Any, lens.Optic], cls: type) -> None:
    s, ln = sp
    for prism in (ln / instance(cls), ln / just):
        found = preview(s, prism)
        focus = view(s, ln)
        matches = (
            isinstance(focus, cls) if prism.steps[-1] is not just.steps[0] else (focus is not None)
        )
        assert prism.kind == "prism"
        if matches:
            assert found is focus
            assert same(lens.set(s, prism, found), s)  # set what you saw: unchanged
            new = 7.0 if cls is float or prism.steps[-1] is just.steps[0] else focus
            assert preview(lens.set(s, prism, new), prism) is new  # set then preview
            assert to_list_of(s, prism) == [focus] or same(to_list_of(s, prism), [focus])
        else:
            assert found is None
            assert lens.set(s, prism, 7.0) is s  # no match: the very same value back
            assert over(s, prism, lambda a: 1 / 0) is s  # the function is never called
            assert to_list_of(s, prism) == []
        if cls is float or prism.steps[-1] is just.steps[0]:  # 1.0 and 2.0 are in the prism
            set_twice = lens.set(lens.set(s, prism, 1.0), prism, 2.0)
            assert same(set_twice, lens.set(s, prism, 2.0))  # set-set


def test_instance_matches_a_case_of_a_union() -> None:
    shapes = [Circle(1.0), Rect(2.0, 3.0), Circle(4.0)]
    assert to_list_of(shapes, each / instance(Circle) / attr("r")) == [1.0, 4.0]
    assert to_list_of(shapes, each / instance(Circle | Rect)) == shapes
    grown = over(shapes, each / instance(Rect) / attr("w"), lambda w: w * 10)
    assert grown == [Circle(1.0), Rect(20.0, 3.0), Circle(4.0)]
    assert shapes[1] == Rect(2.0, 3.0)  # the original is untouched
    assert preview(shapes, item(0) / instance(Rect)) is None
    assert preview(shapes, item(0) / instance(Circle) / attr("r")) == 1.0


def test_just_focuses_values_that_are_not_none() -> None:
    xs = [None, 2.0, None, 3.0]
    assert to_list_of(xs, each / just) == [2.0, 3.0]
    assert over(xs, each / just, lambda v: -v) == [None, -2.0, None, -3.0]
    assert preview(xs, item(0) / just) is None
    assert preview({"k": 0.0}, item("k") / just) == 0.0  # a falsy focus still matches


# -- traversal laws ----------------------------------------------------------------------


def _part(s: Any, path: tuple[lens.Optic, ...]) -> Any:
    return view(s, compose(*path)) if path else s


@st.composite
def structure_and_traversal(draw: Any) -> tuple[Any, lens.Optic]:
    s = draw(structures)
    paths = [()] + all_paths(s)
    targets = [p for p in paths if isinstance(_part(s, p), (list, tuple, dict))]
    choices: list[lens.Optic] = [leaves] + [compose(*p, each) if p else each for p in targets]
    choices += [compose(*p, leaves) for p in paths if p]
    return s, choices[draw(st.integers(0, len(choices) - 1))]


def _tag(name: str) -> Callable[[Any], Any]:
    return lambda a: (name, a)


@settings(max_examples=150, deadline=None)
@given(structure_and_traversal(), small)
def test_traversal_laws(st_: tuple[Any, lens.Optic], x: float) -> None:
    s, t = st_
    before = frozen_copy(s)
    foci = to_list_of(s, t)
    assert same(over(s, t, lambda a: a), s)  # identity
    f, g = _tag("f"), _tag("g")
    if t.steps[-1] is not leaves.steps[0]:  # each can change a focus's type freely
        assert same(over(over(s, t, f), t, g), over(s, t, lambda a: g(f(a))))  # composition
        assert same(to_list_of(over(s, t, f), t), [f(a) for a in foci])
    else:
        double = lambda a: a * 2.0 + 1.0  # noqa: E731
        assert same(to_list_of(over(s, t, double), t), [double(a) for a in foci])
        assert same(over(over(s, t, double), t, double), over(s, t, lambda a: double(double(a))))
    assert same(to_list_of(lens.set(s, t, x), t), [x] * len(foci))  # set then read
    assert preview(s, t) is (foci[0] if foci else None)
    assert same(s, before)


@settings(max_examples=80, deadline=None)
@given(structures)
def test_leaves_are_the_flatten_leaves(s: Any) -> None:
    found = to_list_of(s, leaves)
    assert same(found, flatten(s)[0])
    assert all(a is b for a, b in zip(found, flatten(s)[0]))


# -- the types being viewed and set --------------------------------------------------------


def test_frozen_slots_dataclass_set_returns_a_new_value() -> None:
    s = S(1.0, [2.0])
    t = lens.set(s, attr("u"), 5.0)
    assert t == S(5.0, [2.0]) and s == S(1.0, [2.0])
    assert type(t) is S and t.v is s.v  # the rest is shared, not copied
    deep = lens.set(s, attr("v") / item(0), 9.0)
    assert deep == S(1.0, [9.0]) and s.v == [2.0]
    with pytest.raises(AttributeError, match="has no attribute 'zz'"):
        lens.set(s, attr("zz"), 1.0)


def test_setting_bypasses_init_and_keeps_fields_not_in_init() -> None:
    @dataclasses.dataclass(frozen=True)
    class Checked:
        a: float
        n: int = dataclasses.field(init=False, default=3)

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")

    c = Checked(1.0)
    d = lens.set(c, attr("a"), -2.0)  # a gradient or an update is not validated
    assert d.a == -2.0 and d.n == 3 and c.a == 1.0


def test_namedtuple_by_name_and_by_index() -> None:
    p = Pair(1.0, 2.0)
    assert lens.set(p, attr("right"), 5.0) == Pair(1.0, 5.0)
    assert lens.set(p, item(0), 5.0) == Pair(5.0, 2.0)
    assert type(lens.set(p, item(-1), 0.0)) is Pair and p == Pair(1.0, 2.0)
    assert over(p, each, lambda v: v + 1) == Pair(2.0, 3.0)
    with pytest.raises(AttributeError):
        lens.set(p, attr("middle"), 1.0)


def test_dicts_keep_their_type_and_gain_missing_keys() -> None:
    od = OrderedDict(b=1.0, a=2.0)
    new = lens.set(od, item("a"), 0.0)
    assert type(new) is OrderedDict and list(new) == ["b", "a"] and od["a"] == 2.0
    dd: defaultdict[str, float] = defaultdict(float, x=1.0)
    new_dd = over(dd, each, lambda v: v * 3)
    assert type(new_dd) is defaultdict and new_dd.default_factory is float
    assert new_dd == {"x": 3.0} and dd["x"] == 1.0
    d = {"a": 1.0}
    assert lens.set(d, item("b"), 2.0) == {"a": 1.0, "b": 2.0} and d == {"a": 1.0}
    with pytest.raises(KeyError):
        view(d, item("b"))


def test_lists_tuples_and_arrays_are_copied() -> None:
    xs = [1.0, 2.0, 3.0]
    assert lens.set(xs, item(1), 0.0) == [1.0, 0.0, 3.0] and xs == [1.0, 2.0, 3.0]
    assert lens.set(tuple(xs), item(slice(0, 2)), (7.0,)) == (7.0, 3.0)
    a = np.arange(4.0)
    b = lens.set(a, item(2), 10.0)
    np.testing.assert_array_equal(b, [0.0, 1.0, 10.0, 3.0])
    np.testing.assert_array_equal(a, np.arange(4.0))
    np.testing.assert_array_equal(over(a, item(slice(1, 3)), lambda v: -v), [0.0, -1.0, -2.0, 3.0])


def test_plain_objects_are_copied() -> None:
    class Box:
        def __init__(self, content: float) -> None:
            self.content = content

    b = Box(1.0)
    c = lens.set(b, attr("content"), 2.0)
    assert type(c) is Box and c.content == 2.0 and b.content == 1.0


# -- building and composing optics --------------------------------------------------------


def test_composition_operator_and_kinds() -> None:
    path = attr("layers") / item(1) / attr("w")
    assert repr(path) == repr(compose(attr("layers"), item(1), attr("w")))
    assert repr(compose(path, each)) == "attr('layers') / item(1) / attr('w') / each"
    assert path.kind == "lens"
    assert (path / just).kind == "prism" and (just / path).kind == "prism"
    assert (instance(float) / each).kind == "traversal" and (leaves / just).kind == "traversal"
    # composition is associative
    a, b, c = item("x"), item(0), each
    s = {"x": [[1.0, 2.0]]}
    assert to_list_of(s, (a / b) / c) == to_list_of(s, a / (b / c)) == [1.0, 2.0]


def test_where_records_attribute_and_item_reads() -> None:
    net = {"layers": [S(1.0, 2.0), S(3.0, np.array([4.0, 5.0]))]}
    w = where(lambda n: n["layers"][1].v[0])
    assert view(net, w) == 4.0
    new = lens.set(net, w, 0.0)
    np.testing.assert_array_equal(new["layers"][1].v, [0.0, 5.0])
    assert net["layers"][1].v[0] == 4.0
    # names that are also methods or properties elsewhere are just names here
    assert repr(where(lambda s: s.value.keys)) == "attr('value') / attr('keys')"


def test_errors_say_what_to_do() -> None:
    with pytest.raises(TypeError, match="attribute and item reads"):
        where(lambda n: n.w * 2)
    with pytest.raises(TypeError, match="argument itself"):
        where(lambda n: n)
    with pytest.raises(TypeError, match="use preview"):
        view([1.0], item(0) / just)
    with pytest.raises(TypeError, match="use to_list_of"):
        view([1.0], each)
    with pytest.raises(TypeError, match="each traverses lists, tuples and dicts"):
        to_list_of(S(1.0, 2.0), each)
    with pytest.raises(TypeError, match="use item for keys"):
        attr(0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="at least one"):
        compose()
    with pytest.raises(TypeError):
        compose(item(0), "w")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "selector",
    [
        lambda n: n.b if n.use_b else n.a,  # a branch on the value
        lambda n: n.a if n.kind == "x" else n.b,
        lambda n: list(n.layers)[0],  # iteration (it used to read index after index forever)
        lambda n: [layer.w for layer in n.layers][1],
        lambda n: n.a if "x" in n else n.b,
        lambda n: n.layers[len(n.layers) - 1],
    ],
)
def test_a_selector_that_depends_on_the_value_is_refused(selector: Any) -> None:
    with pytest.raises(TypeError, match="tests, compares or iterates its argument"):
        lens.where(selector)


@pytest.mark.parametrize(
    "selector", [lambda n: n.w[n.i], lambda n: n["w"][(0, n["i"])], lambda n: n.d[n.key]]
)
def test_a_selector_indexing_with_a_part_of_its_argument_is_refused(selector: Any) -> None:
    # It used to build a lens whose key was the stand-in, failing only when used (with
    # "unhashable type: '_PathRecorder'" on a dict).
    with pytest.raises(TypeError, match="indexes with a part of its argument"):
        lens.where(selector)


def test_attr_takes_one_name_not_a_dotted_path() -> None:
    with pytest.raises(ValueError, match=r"for a path use attr\('inner'\) / attr\('w'\)"):
        attr("inner.w")


def test_reading_a_defaultdict_does_not_insert_its_default() -> None:
    counts = defaultdict(float, {"a": 1.0})
    assert view(counts, item("z")) == 0.0
    bumped = over(counts, item("q"), lambda v: v + 1.0)
    assert dict(counts) == {"a": 1.0}  # unchanged
    assert type(bumped) is defaultdict and dict(bumped) == {"a": 1.0, "q": 1.0}
    with pytest.raises(KeyError, match="item\\('z'\\): the focus is missing"):
        view(defaultdict(None, {"a": 1.0}), item("z"))


def test_every_operation_names_a_missing_focus() -> None:
    for call in (
        lambda: over([1.0, 2.0], item(5), lambda v: v),
        lambda: preview({"a": 1.0}, item("b") / just),
        lambda: to_list_of({"a": [1.0]}, item("b") / each),
    ):
        with pytest.raises(LookupError, match="the focus is missing"):
            call()

    def failing(v: float) -> float:
        raise KeyError("inside the function")

    with pytest.raises(KeyError) as e:  # a KeyError of the function is its own
        over({"a": 1.0}, item("a"), failing)
    assert e.value.args == ("inside the function",)
