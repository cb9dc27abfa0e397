"""Lenses on BVars: gradients against finite differences, prisms, splitting and joining."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hetgrad
from finite_diff import assert_close_tree, numeric_grad
from hetgrad import (
    BVar,
    collect_var,
    eval_bp,
    grad,
    grad_bp,
    iso_var,
    join_bv,
    lens,
    over_var,
    preview_var,
    preview_var_or_raise,
    sequence_var,
    set_var,
    split_bv,
    to_list_of_var,
    view_var,
)
from hetgrad.lens import attr, each, instance, item, just, leaves, where
from hetgrad.tape import primal
from hetgrad.tree import flatten
from test_lens import structure_and_path


@dataclasses.dataclass(frozen=True, slots=True)
class Layer:
    w: np.ndarray
    b: float
    act: str = dataclasses.field(default="tanh", metadata={"static": True})


@dataclasses.dataclass(frozen=True)
class Net:
    layers: list[Layer]
    scale: float


class Point(NamedTuple):
    x: float
    y: float


@dataclasses.dataclass(frozen=True)
class Circle:
    r: float


@dataclasses.dataclass(frozen=True)
class Rect:
    w: float
    h: float


@dataclasses.dataclass(frozen=True)
class Scene:
    shape: Circle | Rect
    gain: float


def net() -> Net:
    return Net(
        [Layer(np.array([0.5, -1.0, 2.0]), 0.3), Layer(np.array([1.5, 0.25, -0.5]), -0.7)], 1.2
    )


def check(f: Callable[..., Any], *args: Any) -> Any:
    """grad_bp of ``f`` equals central differences in float64; eval_bp agrees with grad's run."""
    got = grad_bp(f, *args)
    want = numeric_grad(lambda *a: float(eval_bp(f, *a)), args)
    assert_close_tree(got, want[0] if len(args) == 1 else tuple(want))
    return got


# -- the documented example ------------------------------------------------------------


def test_backprops_documented_sequence_var_example() -> None:
    f = lambda x, xs: sum(sequence_var(xs)[i] ** 2 for i in range(3)) / x  # noqa: E731
    gx, gxs = grad_bp(f, 9.0, [1.0, 6.0, 2.0])
    assert gx == pytest.approx(-41 / 81)
    assert gxs == pytest.approx([2 / 9, 4 / 3, 4 / 9])
    assert eval_bp(f, 9.0, [1.0, 6.0, 2.0]) == pytest.approx(41 / 9)


# -- each operation against finite differences -------------------------------------------


def test_view_var_through_records_lists_and_arrays() -> None:
    def f(n: Any) -> Any:
        w = view_var(n, attr("layers") / item(1) / attr("w"))
        b = view_var(n, where(lambda m: m.layers[0].b))
        first = view_var(n, attr("layers") / item(0) / attr("w") / item(2))  # inside an array
        return np.sum(w * w) * b + first * view_var(n, attr("scale"))

    g = check(f, net())
    assert g.layers[0].act == "tanh" and g.layers[0].w[0] == 0.0


def test_set_var_gradient_goes_to_the_structure_and_the_new_field() -> None:
    def f(n: Any, new_b: Any) -> Any:
        m = set_var(n, attr("layers") / item(0) / attr("b"), new_b * 2.0)
        total = 0.0
        for layer in m.layers:
            total = total + np.sum(layer.w) * layer.b
        return total * m.scale

    g_net, g_b = check(f, net(), 0.9)
    assert g_net.layers[0].b == 0.0  # the replaced field gets nothing
    assert g_net.layers[1].b != 0.0 and g_b != 0.0


@pytest.mark.parametrize(
    "structure, lens",
    [
        (Point(1.5, -2.0), attr("y")),
        (Point(1.5, -2.0), item(0)),
        ({"a": 1.5, "b": -2.0, "c": 0.5}, item("b")),
        (Layer(np.array([1.0, 2.0]), 0.5), attr("b")),
        ((0.5, [1.0, 2.0]), item(1) / item(-1)),
    ],
)
def test_set_var_on_namedtuples_dicts_slots_dataclasses_and_tuples(
    structure: Any, lens: Any
) -> None:
    def f(s: Any, x: Any) -> Any:
        new = set_var(s, lens, x * x)
        return sum(
            v * (i + 1.0) for i, v in enumerate(to_list_of_var(new, leaves)) if np.ndim(v) == 0
        )

    g_s, g_x = check(f, structure, 1.25)
    assert view_var(g_s, lens) == 0.0 and g_x != 0.0
    assert type(g_s) is type(structure)


def test_set_var_inside_an_array() -> None:
    c = np.array([1.0, -2.0, 3.0, 0.5])
    g_a, g_x = check(lambda a, x: np.sum(set_var(a, item(2), x * 3.0) * c * a), np.arange(4.0), 0.7)
    assert g_x == pytest.approx(3.0 * 3.0 * 2.0)
    # a slice, set from a scalar (broadcast) and from a BVar array into a plain array
    check(lambda a, x: np.sum(set_var(a, item(slice(1, 3)), x) * c), np.arange(4.0), 0.7)
    check(lambda x: np.sum(set_var(np.ones(4), item(slice(0, 2)), x * x) * c), np.array([2.0, 3.0]))
    check(lambda a, x: np.sum(set_var(a, item(np.array([0, 3])), x) ** 2), np.arange(4.0), 0.7)
    with pytest.raises(ValueError, match="repeats a position"):
        grad_bp(lambda a: np.sum(set_var(a, item(np.array([1, 1])), 0.0)), np.arange(4.0))


def test_over_var() -> None:
    def f(n: Any) -> Any:
        m = over_var(n, attr("layers") / each / attr("w"), lambda w: np.tanh(w) * n.scale)
        m = over_var(m, attr("scale"), lambda s: s * s)
        return np.sum(m.layers[0].w * m.layers[1].w) * m.scale

    check(f, net())
    # over a prism and over every leaf
    check(lambda s: over_var(s, attr("shape") / instance(Circle) / attr("r"), np.exp).shape.r,
          Scene(Circle(0.3), 2.0))  # fmt: skip
    check(lambda d: sum(to_list_of_var(over_var(d, leaves, lambda v: v**3), leaves)),
          {"a": [0.5, 1.5], "b": (2.0, "name")})  # fmt: skip


def test_traversals_over_lists_and_dicts() -> None:
    def f(d: Any) -> Any:
        xs = to_list_of_var(d, item("xs") / each)
        ys = to_list_of_var(d, item("ys") / each)
        return sum(x * y for x, y in zip(xs, ys)) + sum(v * v for v in to_list_of_var(d, leaves))

    check(f, {"xs": [1.0, 2.0, 3.0], "ys": {"p": 0.5, "q": -1.0, "r": 2.0}})


def test_a_field_used_twice_through_different_lenses_accumulates() -> None:
    def f(n: Any) -> Any:
        a = view_var(n, attr("layers") / item(1) / attr("b"))
        b = view_var(n, where(lambda m: m.layers[-1].b))
        c = split_bv(sequence_var(n.layers)[1]).b  # and a third way
        return a * b + 3.0 * c

    g = check(f, net())
    assert g.layers[1].b == pytest.approx(2 * -0.7 + 3.0)


# -- prisms: matching and not matching -----------------------------------------------------


def area(s: Any) -> Any:
    circle = preview_var(s, attr("shape") / instance(Circle))
    if circle is not None:
        return 3.0 * circle.r**2 * s.gain
    rect = preview_var_or_raise(s, attr("shape") / instance(Rect))
    return rect.w * rect.h * s.gain


def test_prism_that_matches_and_one_that_does_not() -> None:
    g = check(area, Scene(Circle(2.0), 1.5))
    assert g == Scene(Circle(3.0 * 2 * 2.0 * 1.5), 12.0)
    g = check(area, Scene(Rect(2.0, 3.0), 1.5))
    assert g == Scene(Rect(4.5, 3.0), 6.0)
    assert eval_bp(area, Scene(Rect(2.0, 3.0), 1.5)) == 9.0


def test_no_gradient_flows_through_a_branch_that_does_not_match() -> None:
    shapes = [Circle(1.0), Rect(2.0, 3.0), Circle(4.0), None]

    def f(xs: Any) -> Any:
        radii = to_list_of_var(xs, each / instance(Circle) / attr("r"))
        assert preview_var(xs, item(1) / instance(Circle)) is None
        assert preview_var(xs, item(3) / just) is None
        return sum(r * r for r in radii)

    g = grad_bp(f, shapes)
    assert g == [Circle(2.0), Rect(0.0, 0.0), Circle(8.0), None]
    with pytest.raises(LookupError, match=r"instance\(Circle\) does not match this Rect"):
        grad_bp(lambda xs: preview_var_or_raise(xs[1], instance(Circle)).r, shapes)


def test_prisms_on_leaves_and_optional_fields() -> None:
    assert grad_bp(lambda x: preview_var_or_raise(x, instance(float)) * 2.0, 1.0) == 2.0
    assert grad_bp(lambda x: preview_var(x, just) * 2.0, 1.0) == 2.0
    assert grad_bp(lambda x: x * (preview_var(x, instance(np.ndarray)) is None), 1.0) == 1.0
    # set_var through a prism that does not match leaves the value as it is
    s = Scene(Rect(1.0, 2.0), 3.0)
    assert eval_bp(lambda v: set_var(v, attr("shape") / instance(Circle), 0.0), s) == s


# -- split, join, sequence, collect, iso -------------------------------------------------


def test_match_on_a_split_dataclass() -> None:
    def loss(layer: Any) -> Any:
        match split_bv(layer):
            case Layer(w=w, b=b, act="tanh"):
                return np.sum(np.tanh(w)) + b * b
            case _:
                raise AssertionError("no match")

    check(loss, Layer(np.array([0.1, 0.2]), 0.5))

    def shape_area(s: Any) -> Any:
        match split_bv(s):
            case Circle(r=r):
                return 3.0 * r * r
            case Rect(w, h):
                return w * h
        raise AssertionError("no match")

    assert grad_bp(shape_area, Rect(2.0, 5.0)) == Rect(5.0, 2.0)
    assert grad_bp(shape_area, Circle(1.0)) == Circle(6.0)
    assert eval_bp(shape_area, Rect(2.0, 5.0)) == 10.0


def test_split_and_join_round_trips() -> None:
    def f(n: Any) -> Any:
        parts = split_bv(n)
        assert type(parts) is Net
        again = join_bv(Net([split_bv(layer) for layer in parts.layers], parts.scale))
        return np.sum(again.layers[0].w * again.layers[1].w) * again.scale + again.layers[1].b

    check(f, net())
    n = net()
    assert split_bv(n) is n and join_bv(n) is n  # plain values pass through

    def g(p: Any, q: Any) -> Any:
        joined = join_bv({"p": split_bv(p), "q": [q, 2.0], "tag": "t"})
        plain = hetgrad.stop_gradient(joined)
        assert plain["tag"] == "t" and plain["q"][1] == 2.0 and type(plain["p"]) is Point
        return joined["p"].x * joined["q"][0] + joined["p"].y

    check(g, Point(1.0, 2.0), 3.0)


def test_sequence_and_collect_on_lists_tuples_and_dicts() -> None:
    def f(xs: Any, t: Any, d: Any) -> Any:
        a = sequence_var(xs)
        b = sequence_var(t)
        c = sequence_var(d)
        assert type(a) is list and type(b) is tuple and type(c) is dict
        back = collect_var({"a": a, "b": b[0]})
        return back["a"][0] * back["b"] + c["k"] * sum(a) + sequence_var(collect_var(b))[1]

    check(f, [1.0, 2.0], (3.0, 4.0), {"k": 5.0})
    assert collect_var([1.0, 2.0]) == [1.0, 2.0]  # no BVars: plain


def test_iso_var() -> None:
    to_point = lambda t: Point(*t)  # noqa: E731
    check(lambda t: iso_var(to_point, tuple, t).y * iso_var(to_point, tuple, t).x, (1.5, 2.0))

    @dataclasses.dataclass(frozen=True)
    class Meters:
        value: float

    wrap = lambda x: Meters(x)  # noqa: E731
    unwrap = lambda m: m.value  # noqa: E731
    f = lambda x: iso_var(unwrap, wrap, iso_var(wrap, unwrap, x)) ** 2  # noqa: E731
    assert grad_bp(f, 3.0) == 6.0
    arr = lambda a: iso_var(lambda v: v.reshape(2, 2), np.ravel, a)  # noqa: E731
    check(lambda a: np.sum(arr(a) @ np.array([1.0, 2.0])), np.arange(4.0))
    assert eval_bp(lambda x: iso_var(wrap, unwrap, x), 2.0) == Meters(2.0)


def test_registered_opaque_types_use_a_zero_filling_lens() -> None:
    class Money:
        def __init__(self, amount: float, fee: float) -> None:
            self.amount = amount
            self.fee = fee

    hetgrad.register_backprop(
        Money,
        zero=lambda m: Money(0.0, 0.0),
        add=lambda a, b: Money(a.amount + b.amount, a.fee + b.fee),
        one=lambda m: Money(1.0, 1.0),
    )

    def f(m: Any, x: Any) -> Any:
        n = set_var(m, attr("fee"), x * x)
        return view_var(n, attr("amount")) * view_var(n, attr("fee"))

    g_m, g_x = grad_bp(f, Money(3.0, 5.0), 2.0)
    assert (g_m.amount, g_m.fee, g_x) == (4.0, 0.0, 12.0)


# -- cost: whole-field reads record nothing -------------------------------------------------


def test_reading_fields_records_nothing_on_the_tape() -> None:
    sizes = {}

    def f(d: Any) -> Any:
        nodes = d["f0"]._tape.nodes
        before = len(nodes)
        parts = [view_var(d, item(f"f{i}")) for i in range(0, 200, 20)]
        seq = sequence_var(collect_var(sequence_var(d)))
        sizes["recorded"] = len(nodes) - before
        assert len(seq) == 200 and parts[1] is seq["f20"]
        assert all(type(p) is BVar for p in parts)
        return sum(parts)

    g = grad_bp(f, {f"f{i}": float(i) for i in range(200)})
    assert sizes["recorded"] == 0
    assert sum(g.values()) == 10.0 and g["f20"] == 1.0 and g["f21"] == 0.0


# -- gradients of view_var and set_var on random nested structures ---------------------------


def _ones(s: Any) -> Any:
    return hetgrad.tree_map(lambda a: np.ones_like(a) if isinstance(a, np.ndarray) else 1.0, s)


def _zeros(s: Any) -> Any:
    return hetgrad.tree_map(lambda a: np.zeros_like(a) if isinstance(a, np.ndarray) else 0.0, s)


def _sum_leaves(v: Any) -> Any:
    return sum((np.sum(a) for a in to_list_of_var(v, leaves)), 0.0)


@settings(max_examples=120, deadline=None)
@given(structure_and_path().filter(lambda sp: bool(flatten(sp[0])[0])))
def test_view_and_set_gradients_on_random_structures(sp: tuple[Any, lens.Optic]) -> None:
    s, path = sp
    focus = lens.view(s, path)
    # view_var: ones inside the focus, zero everywhere else
    g = grad_bp(lambda v: _sum_leaves(view_var(v, path)), s)
    assert_close_tree(g, lens.set(_zeros(s), path, _ones(focus)))
    if repr(path).endswith("attr('tag')"):
        return  # D.tag is a static field: nothing set there is differentiated
    # set_var: ones everywhere except inside the focus; the new value gets the focus's share
    g_s, g_x = grad_bp(lambda v, x: _sum_leaves(set_var(v, path, x * 3.0)), s, 2.0)
    assert_close_tree(g_s, lens.set(_ones(s), path, _zeros(focus)))
    assert g_x == 3.0


# -- one body for eval_bp and grad_bp; nesting; errors ---------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=1, max_size=5), st.integers(0, 4), st.floats(-3, 3))
def test_same_body_serves_eval_and_grad(xs: list[float], i: int, x: float) -> None:
    i %= len(xs)

    def f(v: Any, y: Any) -> Any:
        w = set_var(v, item(i), y * 2.0)
        w = over_var(w, each, lambda a: a * a)
        return sum(to_list_of_var(w, each)) + view_var(w, item(i))

    value, (g_xs, g_y) = hetgrad.backprop(f, xs, x)
    assert value == pytest.approx(eval_bp(f, xs, x))
    assert g_y == pytest.approx(16.0 * x)
    assert g_xs == pytest.approx([0.0 if j == i else 2.0 * a for j, a in enumerate(xs)])


def test_nested_derivatives_through_lenses() -> None:
    def inner(x: Any) -> Any:
        return grad(lambda d: view_var(d, item("a")) ** 2 * x)({"a": x, "b": 1.0})["a"]

    assert grad(inner)(3.0) == pytest.approx(12.0)  # d/dx of 2 x * x

    def through_array(x: Any) -> Any:
        return grad(lambda a: np.sum(set_var(a, item(0), x * x) * a))(np.array([1.0, 2.0]))[0]

    assert grad(through_array)(3.0) == pytest.approx(6.0)  # d/dx of x ** 2


def test_errors() -> None:
    with pytest.raises(TypeError, match="expected an optic"):
        grad_bp(lambda d: view_var(d, "a"), {"a": 1.0})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="use preview"):
        grad_bp(lambda d: view_var(d, item("a") / just), {"a": 1.0})
    with pytest.raises(TypeError, match="split_bv for records"):
        grad_bp(lambda p: sequence_var(p), Circle(1.0))
    with pytest.raises(TypeError, match="BVar of a ndarray"):
        grad_bp(lambda a: sequence_var(a), np.ones(2))
    with pytest.raises(TypeError, match="split_bv takes a BVar of a structure"):
        grad_bp(lambda a: split_bv(a), 1.0)
    with pytest.raises(TypeError, match="focuses a field of a structure"):
        grad_bp(lambda a: view_var(a, attr("T")), np.ones(2))
    with pytest.raises(TypeError, match="each traverses"):
        grad_bp(lambda a: to_list_of_var(a, each), np.ones(2))
    with pytest.raises(TypeError, match="each traverses"):
        grad_bp(lambda c: to_list_of_var(c, each), Circle(1.0))
    with pytest.raises(TypeError, match="collect_var takes"):
        collect_var(1.0)


@dataclasses.dataclass(frozen=True)
class Bounds:
    min: float
    max: np.ndarray


def test_fields_named_like_array_methods_are_read_as_fields() -> None:
    # BVars of arrays have ndarray methods (v.max(), v.min(), ...); on a BVar of a
    # structure a field of that name wins.
    g = grad_bp(lambda b: np.sum(b.max * b.max) - 3.0 * b.min + b.max.max(),
                Bounds(2.0, np.array([1.0, 4.0])))
    assert g.min == -3.0
    np.testing.assert_allclose(g.max, [2.0, 9.0])


def test_isinstance_and_match_see_the_record_type_inside_a_runner() -> None:
    """Code that branches on the type takes the same branch under differentiation."""

    @dataclasses.dataclass
    class Dense:
        w: float

    @dataclasses.dataclass
    class Scale:
        s: float

    def apply(layer: Any, x: float) -> Any:
        if isinstance(layer, Dense):
            return layer.w * x
        return layer.s + x

    def by_match(layer: Any) -> Any:
        match layer:
            case Dense(w=w):
                return w * w
        return 0.0

    assert hetgrad.grad_bp(lambda layer: apply(layer, 3.0), Dense(2.0)) == Dense(3.0)
    assert hetgrad.grad_bp(lambda layer: apply(layer, 3.0), Scale(2.0)) == Scale(1.0)
    assert hetgrad.grad_bp(by_match, Dense(3.0)) == Dense(6.0)

    def kinds(layer: Any) -> Any:
        assert isinstance(layer, BVar) and type(layer) is not Dense  # still the engine's
        return layer.w

    grad_bp(kinds, Dense(1.0))


def test_dataclass_functions_see_a_dataclass_inside_a_runner() -> None:
    """is_dataclass, fields, replace, asdict and astuple work on a BVar of a dataclass as on
    the dataclass (a regularizer looping over ``fields(net)`` is common)."""

    @dataclasses.dataclass
    class Pair:
        w: float
        b: float

    p = Pair(1.0, 2.0)

    def branch(v: Any) -> Any:  # takes the same side under differentiation
        return v.w * (2.0 if dataclasses.is_dataclass(v) else 1.0)

    def squares(v: Any) -> Any:
        return sum(getattr(v, f.name) ** 2 for f in dataclasses.fields(v))

    def replaced(v: Any) -> Any:  # your class with BVar fields, as split_bv: 3 w^2
        r = dataclasses.replace(v, b=v.w * 3.0)
        return r.w * r.b

    def as_dict(v: Any) -> Any:
        return dataclasses.asdict(v)["w"] * dataclasses.astuple(v)[1]

    assert grad_bp(branch, p) == Pair(2.0, 0.0)
    assert grad_bp(squares, p) == Pair(2.0, 4.0)
    assert grad_bp(replaced, p) == Pair(6.0, 0.0)
    assert grad_bp(as_dict, p) == Pair(2.0, 1.0)

    class Point(NamedTuple):
        x: float
        y: float

    @dataclasses.dataclass
    class Holder:  # asdict and astuple rebuild container fields with their own type
        w: np.ndarray
        meta: dict[str, float]
        xs: list[float]
        pt: Point

    def nested(h: Any) -> Any:
        d, t = dataclasses.asdict(h), dataclasses.astuple(h)
        return np.sum(d["w"]) * d["meta"]["k"] + d["xs"][1] * t[3].y

    h = Holder(np.ones(2), {"k": 3.0}, [1.0, 2.0], Point(5.0, 6.0))
    g = grad_bp(nested, h)
    assert g.meta == {"k": 2.0} and g.xs == [0.0, 6.0] and g.pt == Point(0.0, 2.0)
    np.testing.assert_array_equal(g.w, [3.0, 3.0])


def test_get_and_in_are_lookups_on_a_bvar_of_any_plain_dict_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from collections import OrderedDict, defaultdict

    from hetgrad.tape import TreeVar

    def no_split(self: Any) -> Any:
        raise AssertionError("the whole dict was rebuilt for one key")

    class Mine(dict):  # type: ignore[type-arg]
        pass

    def f(v: Any) -> Any:
        monkeypatch.setattr(TreeVar, "_split", no_split)
        total = v.get("k1") * 2.0 + v.get("missing", 1.0) + ("k2" in v) * v["k2"] + ("zz" in v)
        monkeypatch.undo()
        return total

    for kind in (OrderedDict, lambda items: defaultdict(float, items), Mine):
        g = grad_bp(f, kind((f"k{i}", float(i)) for i in range(3)))
        assert dict(g) == {"k0": 0.0, "k1": 2.0, "k2": 1.0}

    class Lower(dict):  # type: ignore[type-arg]
        """A subclass with its own lookup keeps it."""

        def get(self, key: Any, default: Any = None) -> Any:
            return super().get(key.lower(), default)

        def __contains__(self, key: Any) -> bool:
            return super().__contains__(key.lower())

    assert grad_bp(lambda v: v.get("A") * ("A" in v), Lower(a=2.0)) == Lower(a=1.0)


def test_a_field_named_like_an_engine_attribute_is_refused_by_name() -> None:
    Clash = dataclasses.make_dataclass("Clash", [("_value", float), ("b", float)])
    with pytest.raises(TypeError, match="field '_value' of Clash .* rename the field"):
        grad_bp(lambda c: c.b, Clash(1.0, 2.0))


def test_a_focus_that_is_none_is_found_not_missing() -> None:
    assert hetgrad.eval_bp(lambda d: preview_var_or_raise(d, item("opt")), {"opt": None}) is None
    with pytest.raises(LookupError, match="does not match"):
        hetgrad.eval_bp(lambda d: preview_var_or_raise(d, item("opt") / just), {"opt": None})


def test_setting_a_class_attribute_under_a_runner_is_refused() -> None:
    @dataclasses.dataclass
    class Model:
        w: float
        temperature: ClassVar[float] = 1.0

    def f(m: Any, t: Any) -> Any:
        return view_var(set_var(m, attr("temperature"), t), attr("temperature")) * m.w

    assert f(Model(1.5), 5.0) == 7.5  # plain values: a copy with the attribute set
    with pytest.raises(TypeError, match="'temperature' is not a field of Model"):
        hetgrad.backprop(f, Model(1.5), 5.0)  # it used to give (1.5, (Model(1.0), 0.0))


def test_a_numpy_number_times_a_bvar_of_params() -> None:
    @dataclasses.dataclass(frozen=True)
    class Line(hetgrad.Params):
        slope: float
        intercept: float

    def loss(p: Any) -> Any:
        half, double = np.float64(0.5) * p, np.array(2.0) * p
        return half.slope * (p * np.float64(0.5)).intercept * double.slope

    g = hetgrad.grad_bp(loss, Line(2.0, 3.0))
    assert g == Line(6.0, 2.0)  # loss = 0.5 s^2 i
    hetgrad.check_grads(loss, Line(2.0, 3.0))


def test_view_and_set_on_a_registered_type_at_second_order() -> None:
    class V2:
        def __init__(self, x: Any, y: Any) -> None:
            self.x, self.y = x, y

    hetgrad.register_backprop(
        V2, zero=lambda v: V2(0.0, 0.0), add=lambda a, b: V2(a.x + b.x, a.y + b.y),
        one=lambda v: V2(1.0, 1.0),
    )  # fmt: skip

    def inner(v: Any) -> Any:  # x^3 y, its gradient (3 x^2 y, x^3)
        return view_var(v, attr("x")) ** 3 * view_var(v, attr("y"))

    def outer(v: Any) -> Any:  # d/dv of 3 x^2 y
        return view_var(hetgrad.grad_bp(inner, v), attr("x"))

    g = hetgrad.grad_bp(outer, V2(1.5, 2.0))
    assert (g.x, g.y) == (18.0, 6.75)

    def through_set(v: Any) -> Any:  # (2x)^2 y, set back into v
        w = set_var(v, attr("x"), view_var(v, attr("x")) * 2.0)
        return view_var(w, attr("x")) ** 2 * view_var(w, attr("y"))

    h = hetgrad.grad_bp(lambda v: hetgrad.grad_bp(through_set, v).y, V2(1.5, 2.0))
    assert (h.x, h.y) == (12.0, 0.0)  # d/dv of 4 x^2


def test_set_var_into_an_array_keeps_numpy_assignment_semantics() -> None:
    a32 = np.array([1.0, 2.0, 3.0], dtype=np.float32)

    def f(a: Any, x: Any) -> Any:
        out = set_var(a, item(slice(0, 2)), x)
        assert np.result_type(primal(out)) == np.float32  # as plain assignment keeps it
        return np.sum(out * out)

    ga, gx = hetgrad.grad_bp(f, a32, np.array([[5.0, 6.0]]))  # leading 1-axis dropped
    assert ga.dtype == np.float32 and ga.tolist() == [0.0, 0.0, 6.0]
    assert gx.shape == (1, 2) and gx.tolist() == [[10.0, 12.0]]
    with pytest.raises(TypeError, match="dtype int64, so the value would be truncated"):
        hetgrad.grad_bp(lambda v: np.sum(set_var(np.array([1, 2, 3]), item(0), v)), 2.5)


def test_a_bvar_set_into_a_static_field_does_not_escape() -> None:
    @dataclasses.dataclass(frozen=True)
    class Scaled:
        w: float
        scale: float = dataclasses.field(default=2.0, metadata={"static": True})

    def f(s: Any) -> Any:
        return set_var(s, attr("scale"), s.w * 3.0)

    out, pullback = hetgrad.backprop_with(f, Scaled(1.5))
    assert out == Scaled(1.5, 4.5) and type(out.scale) is float
    assert pullback(Scaled(1.0, 4.5)) == Scaled(1.0, 2.0)  # a static field is not differentiated
    assert hetgrad.jacobian(f)(Scaled(1.5)).scale == 4.5
    aux = hetgrad.grad(lambda s: (s.w * 1.0, f(s)), has_aux=True)(Scaled(1.5))[1]
    assert aux == Scaled(1.5, 4.5) and type(aux.scale) is float


def test_changing_a_bvar_of_a_structure_in_place_is_refused() -> None:
    # Each of these changed a throwaway copy: the value and the gradient differed from the
    # plain call, silently.
    def two_smallest(xs: Any) -> Any:
        xs.sort()
        return xs[0] + 2.0 * xs[1]

    def pop_last(xs: Any) -> Any:
        xs.pop()
        return sum(xs)

    def update(d: Any) -> Any:
        d.update(a=0.0)
        return d["a"] + d["b"]

    @dataclasses.dataclass
    class Unit:
        w: np.ndarray

        def normalize(self) -> None:
            self.w = self.w / np.sqrt(np.sum(self.w**2))

    def normalized(m: Any) -> Any:
        m.normalize()
        return np.sum(m.w * np.array([1.0, 0.0]))

    def assign(m: Any) -> Any:
        m.w = m.w * 2.0
        return np.sum(m.w)

    cases = [(two_smallest, [4.0, 1.0, 2.0], "sort()"), (pop_last, [1.0, 2.0, 3.0], "pop()"),
             (update, {"a": 1.0, "b": 2.0}, "update()"),
             (normalized, Unit(np.array([3.0, 4.0])), "normalize()"),
             (assign, Unit(np.array([3.0, 4.0])), "assigning .w")]  # fmt: skip
    for f, x, what in cases:
        with pytest.raises(TypeError, match=rf"{re.escape(what)} would change a BVar of a"):
            hetgrad.backprop(f, x)
    # Methods that read are answered as before.
    assert grad_bp(lambda d: d.get("a") * sum(d.values()), {"a": 2.0, "b": 1.0}) == {
        "a": 5.0, "b": 2.0}  # fmt: skip
    assert grad_bp(lambda xs: xs.index(3.0) * xs[0] + xs.count(1.0), [1.0, 3.0]) == [1.0, 0.0]


def test_printing_and_rounding_a_bvar() -> None:
    def f(x: Any) -> Any:
        assert f"{x:.2f}" == "1.50" and round(x) == 2 and round(x, 1) == 1.5
        return x * x

    assert grad_bp(f, 1.5) == 3.0
    assert grad_bp(lambda v: np.sum(v.copy() * v), np.array([1.0, 2.0])).tolist() == [2.0, 4.0]


def test_get_and_in_on_a_bvar_of_a_dict_are_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    from hetgrad.tape import TreeVar

    def no_split(self: Any) -> Any:
        raise AssertionError("the whole dict was rebuilt for one key")

    d = {f"k{i}": float(i) for i in range(100)}

    def f(v: Any) -> Any:
        monkeypatch.setattr(TreeVar, "_split", no_split)
        total = v.get("k1") * 2.0 + v.get("missing", 1.0) + ("k3" in v) + ("zz" in v)
        monkeypatch.undo()
        return total

    g = hetgrad.grad_bp(f, d)
    assert g["k1"] == 2.0 and sum(g.values()) == 2.0
    with pytest.raises(TypeError, match="unhashable"):
        hetgrad.grad_bp(lambda v: [] in v, {"a": 1.0})


def test_over_var_of_leaves_returning_structures_keeps_the_value_plain() -> None:
    def f(v: Any) -> Any:
        t = over_var(v, leaves, lambda a: {"x": a, "y": [a * 2.0]})
        # .value is the primal structure: it held the BVars themselves.
        assert t.value == {"a": {"x": 1.0, "y": [2.0]}, "b": {"x": 3.0, "y": [6.0]}}
        assert all(type(a) is float for a in flatten(t.value)[0])
        return view_var(t, item("a") / item("y") / item(0)) * t["b"]["x"]

    assert grad_bp(f, {"a": 1.0, "b": 3.0}) == {"a": 6.0, "b": 2.0}
