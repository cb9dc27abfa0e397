"""Optics: lenses, prisms and traversals that focus on parts of a structure.

An *optic* names where a part lives inside a value:

* lenses focus on exactly one part: :func:`attr` (a field or attribute), :func:`item` (a
  dict key, a list or tuple index, an array index) and :func:`where` (a path read off a
  selector function such as ``lambda net: net.layers[1].w``);
* prisms focus on zero or one part: :func:`instance` (a value of one type of a union) and
  :data:`just` (a value that is not None);
* traversals focus on any number of parts: :data:`each` (the elements of a list or tuple,
  the values of a dict) and :data:`leaves` (every differentiable leaf, in flatten order).

Optics compose with :func:`compose`, or with ``/``, which reads like a path from the
outside in: ``attr("layers") / item(1) / attr("w")``.  A composition is a lens if all its
parts are lenses, a prism if its parts are lenses and prisms, and a traversal otherwise.

The operations here take plain values and never mutate them: setting a field of a frozen
dataclass or a NamedTuple returns a new value (built without calling ``__init__``, like
every structure hetgrad rebuilds).  The same optics work on BVars through
:func:`hetgrad.view_var`, :func:`hetgrad.set_var` and friends.

Each optic is compiled once, when it is built, into a few direct accessor functions, so
using it costs a call or two, not a walk over its description.

>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class Layer:
...     w: float
...     b: float
>>> net = {"layers": [Layer(1.0, 2.0), Layer(3.0, 4.0)]}
>>> view(net, item("layers") / item(1) / attr("w"))
3.0
>>> set(net, where(lambda n: n["layers"][0].b), 0.0)["layers"][0]
Layer(w=1.0, b=0.0)
>>> to_list_of(net, leaves)
[1.0, 2.0, 3.0, 4.0]
"""

from __future__ import annotations

import copy
import dataclasses
import operator
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import rules, tree
from .primitive import call_custom
from .protocol import zero
from .tape import BVar, TreeVar, build_view, find_tape, make_view, primal
from .tree import Container, flatten, unflatten

__all__ = [
    "Optic",
    "attr",
    "item",
    "where",
    "compose",
    "instance",
    "just",
    "each",
    "leaves",
    "view",
    "set",
    "over",
    "preview",
    "to_list_of",
]

LENS, PRISM, TRAVERSAL = 0, 1, 2
_KIND_NAMES = ("lens", "prism", "traversal")


class _Nothing:
    """The result of a prism that does not match (distinct from a focus that is None)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


NOTHING: Any = _Nothing()


# --------------------------------------------------------------------------------------
# Rebuilding plain values with one part replaced (never in place).
# --------------------------------------------------------------------------------------

_attr_replacers: dict[type, Callable[[Any, str, Any], Any]] = {}


def replace_attr(s: Any, name: str, x: Any) -> Any:
    """A copy of ``s`` whose attribute ``name`` is ``x`` (frozen types included)."""
    t = type(s)
    r = _attr_replacers.get(t)
    if r is None:
        r = _attr_replacers[t] = _attr_replacer(t)
    return r(s, name, x)


def _no_attr(s: Any, name: str) -> AttributeError:
    return AttributeError(f"{type(s).__name__} has no attribute {name!r} to set")


def _attr_replacer(t: type) -> Callable[[Any, str, Any], Any]:
    setter = object.__setattr__
    if issubclass(t, tuple) and hasattr(t, "_fields"):
        positions = {f: i for i, f in enumerate(t._fields)}
        make = t._make  # type: ignore[attr-defined]

        def replace_field(s: Any, name: str, x: Any) -> Any:
            i = positions.get(name)
            if i is None:
                raise _no_attr(s, name)
            items = list(s)
            items[i] = x
            return make(items)

        return replace_field
    if dataclasses.is_dataclass(t):
        fields = frozenset(f.name for f in dataclasses.fields(t))
        slots = _slot_names(t)

        # object.__new__ plus copied state: no __init__/__post_init__, frozen or not.
        def replace_dataclass(s: Any, name: str, x: Any) -> Any:
            if name not in fields and not hasattr(s, name):
                raise _no_attr(s, name)
            new = object.__new__(t)
            d = getattr(s, "__dict__", None)
            if d is not None:
                new.__dict__.update(d)
            for n in slots:
                try:
                    setter(new, n, getattr(s, n))
                except AttributeError:  # a slot that was never assigned
                    pass
            setter(new, name, x)
            return new

        return replace_dataclass

    def replace_object(s: Any, name: str, x: Any) -> Any:
        if not hasattr(s, name):
            raise _no_attr(s, name)
        new = copy.copy(s)
        setter(new, name, x)
        return new

    return replace_object


def _slot_names(t: type) -> tuple[str, ...]:
    names = []
    for base in t.__mro__:
        slots = vars(base).get("__slots__", ())
        for n in (slots,) if isinstance(slots, str) else slots:
            if n in ("__dict__", "__weakref__"):
                continue
            if n.startswith("__") and not n.endswith("__"):
                n = f"_{base.__name__.lstrip('_')}{n}"  # name mangling of private slots
            names.append(n)
    return tuple(names)


def replace_item(s: Any, key: Any, x: Any) -> Any:
    """A copy of ``s`` with ``s[key]`` replaced by ``x`` (a dict gains a missing key)."""
    t = type(s)
    if t is dict or t is list:
        new = s.copy()
        new[key] = x
        return new
    if isinstance(s, tuple):
        items = list(s)
        items[key] = x
        if t is tuple:
            return tuple(items)
        make = getattr(t, "_make", None)
        return make(items) if make is not None else t(items)
    if isinstance(s, np.ndarray):
        if isinstance(x, BVar):
            return array_set(s, key, x)
        new = s.copy()
        new[key] = x
        return new
    new = copy.copy(s)
    new[key] = x
    return new


def array_set(a: Any, key: Any, x: Any) -> Any:
    """``a`` with ``a[key]`` replaced by ``x``, differentiable in both (either may be a BVar).

    Built from recorded primitives: ``where(mask, scatter(x), a)``, so the gradient of
    ``a`` is zero at the replaced positions and ``x`` gets the gradient found there.
    """
    pa = primal(a)
    mask = np.zeros(np.shape(pa), dtype=bool)
    mask[key] = True
    if not rules._is_basic_index(key):
        hits = np.zeros(np.shape(pa), dtype=np.intp)
        np.add.at(hits, key, 1)
        if hits.max(initial=0) > 1:
            raise ValueError(f"setting through item({key!r}): the index repeats a position")
    dtype = np.result_type(pa)
    if dtype.kind != "f":
        raise TypeError(
            f"setting through item({key!r}): the array is of dtype {dtype}, so the value "
            "would be truncated and its gradient lost; make the array a float array"
        )
    target = np.shape(pa[key])
    shape = np.shape(primal(x))
    extra = len(shape) - len(target)
    if extra > 0 and all(n == 1 for n in shape[:extra]):  # as NumPy's assignment drops them
        x = rules.reshape(x, shape[extra:])
        shape = shape[extra:]
    if shape != target:
        x = rules.broadcast_to(x, target)
    out = rules.where(mask, rules.scatter_add(x, key, pa), a)
    # The array keeps its dtype, as NumPy's assignment keeps it (float32 stays float32).
    return out if np.result_type(primal(out)) == dtype else rules.astype(out, dtype)


# --------------------------------------------------------------------------------------
# What kind of structure a TreeVar holds (cached per container).
# --------------------------------------------------------------------------------------

SEQUENCE, MAPPING, RECORD = "sequence", "mapping", "record"

_container_types: dict[Container, type] = {
    tree.TUPLE: tuple,
    tree.LIST: list,
    tree.DICT: dict,
    tree.ORDERED_DICT: OrderedDict,
    tree.DEFAULT_DICT: defaultdict,
}
_families: dict[Container, str] = {}


def type_of(v: TreeVar) -> type:
    """The type of the structure a TreeVar holds, without rebuilding its value."""
    c = v._container
    t = _container_types.get(c)
    if t is None:
        aux = v._aux
        t = _container_types[c] = aux if isinstance(aux, type) else type(v._split())
    return t


def family(v: TreeVar) -> str:
    """SEQUENCE (list, tuple, NamedTuple), MAPPING (dict) or RECORD (dataclass)."""
    f = _families.get(v._container)
    if f is None:
        t = type_of(v)
        f = SEQUENCE if issubclass(t, (list, tuple)) else MAPPING if issubclass(t, dict) else RECORD
        _families[v._container] = f
    return f


def _replace_child(v: TreeVar, i: int, x: Any) -> TreeVar:
    kids = v._children.copy()
    kids[i] = as_child(x)
    return make_view(v._container, v._aux, kids, v._tape)


def as_child(x: Any) -> Any:
    """``x`` fit to be a TreeVar's child: a plain structure holding BVars is joined."""
    t = type(x)
    if t is BVar or t is float or isinstance(x, TreeVar):
        return x
    if isinstance(tree.kind_of(t), Container):
        return join(x)
    return x


def join(s: Any) -> Any:
    """A structure whose leaves are BVars or constants, as one TreeVar (``join_bv``)."""
    if isinstance(s, BVar):
        return s
    leaves_, td = flatten(s)
    tape = find_tape(leaves_)
    if tape is None:
        return s
    return build_view(td, iter(leaves_), tape)


def _is_numeric(v: BVar) -> bool:
    p = primal(v)
    return type(p) is float or isinstance(p, (np.ndarray, np.floating))


# --------------------------------------------------------------------------------------
# Steps: the primitive optics.  Each works on plain values (get, put, match, fold, over)
# and on BVars (vget, vput, vmatch, vfold, vover; these fall back to the plain methods for
# plain values, so one function body serves eval_bp and grad_bp).
# --------------------------------------------------------------------------------------


class _Step:
    __slots__ = ()
    kind: int = LENS

    def fast_get(self) -> Callable[[Any], Any]:
        return self.get

    def get(self, s: Any) -> Any:
        raise NotImplementedError

    def put(self, s: Any, x: Any) -> Any:
        raise NotImplementedError

    def match(self, s: Any) -> Any:
        raise NotImplementedError

    def fold(self, s: Any) -> list[Any]:
        raise NotImplementedError

    def over(self, s: Any, f: Callable[[Any], Any]) -> Any:
        raise NotImplementedError

    def vget(self, s: Any) -> Any:
        raise NotImplementedError

    def vput(self, s: Any, x: Any) -> Any:
        raise NotImplementedError

    def vmatch(self, s: Any) -> Any:
        raise NotImplementedError

    def vfold(self, s: Any) -> list[Any]:
        raise NotImplementedError

    def vover(self, s: Any, f: Callable[[Any], Any]) -> Any:
        raise NotImplementedError


class _LensStep(_Step):
    __slots__ = ()
    kind = LENS

    def match(self, s: Any) -> Any:
        return self.get(s)

    def fold(self, s: Any) -> list[Any]:
        return [self.get(s)]

    def over(self, s: Any, f: Callable[[Any], Any]) -> Any:
        old = self.get(s)
        new = f(old)
        return s if new is old else self.put(s, new)  # unchanged parts are not copied

    def vmatch(self, s: Any) -> Any:
        return self.vget(s)

    def vfold(self, s: Any) -> list[Any]:
        return [self.vget(s)]

    def vover(self, s: Any, f: Callable[[Any], Any]) -> Any:
        old = self.vget(s)
        new = f(old)
        return s if new is old else self.vput(s, new)

    # An opaque leaf (a type registered with register_backprop): a custom op whose
    # pullback fills the rest of the value with zero, as Haskell backprop does.
    def leaf_view(self, v: BVar) -> Any:
        # (vget and vput: under nesting the values are BVars of an outer runner's tape)
        get, put = self.vget, self.vput

        def fn(a: Any) -> tuple[Any, Callable[[Any], Any]]:
            return get(a), lambda g: put(zero(a), g)

        return call_custom(f"view_var({self!r})", fn, (v,), 1)

    def leaf_set(self, v: BVar, x: Any) -> Any:
        get, put = self.vget, self.vput

        def fn(a: Any, b: Any) -> tuple[Any, Callable[[Any], Any]]:
            return put(a, b), lambda g: (put(g, zero(get(g))), get(g))

        return call_custom(f"set_var({self!r})", fn, (v, x), 2)


class _Attr(_LensStep):
    __slots__ = ("name", "_index")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"attr takes an attribute name, got {name!r}; use item for keys")
        if "." in name:
            path = " / ".join(f"attr({n!r})" for n in name.split("."))
            raise ValueError(f"attr takes one attribute name, got {name!r}; for a path use {path}")
        self.name = name
        self._index: dict[Container, int] = {}  # per container: the field's position or -1

    def __repr__(self) -> str:
        return f"attr({self.name!r})"

    def fast_get(self) -> Callable[[Any], Any]:
        return operator.attrgetter(self.name)

    def get(self, s: Any) -> Any:
        return getattr(s, self.name)

    def put(self, s: Any, x: Any) -> Any:
        return replace_attr(s, self.name, x)

    def _position(self, v: TreeVar) -> int:
        i = self._index.get(v._container)
        if i is None:
            i = -1
            for j, k in enumerate(v._container.keys(v._aux)):
                if isinstance(k, tree._Attr) and k.name == self.name:
                    i = j
                    break
            # Only records (dataclass, NamedTuple) have attribute keys, fixed per container.
            self._index[v._container] = i
        return i

    def _not_a_record(self, v: BVar) -> TypeError:
        return TypeError(
            f"{self!r} focuses a field of a structure, but this BVar holds a "
            f"{type(primal(v)).__name__}; use the BVar's own operations"
        )

    def vget(self, s: Any) -> Any:
        if isinstance(s, TreeVar):
            i = self._index.get(s._container)
            if i is None:
                i = self._position(s)
            if i >= 0:
                return s._children[i]
            return getattr(s._split(), self.name)  # a property or method of the record
        if isinstance(s, BVar):
            if _is_numeric(s):
                raise self._not_a_record(s)
            return self.leaf_view(s)
        return getattr(s, self.name)

    def vput(self, s: Any, x: Any) -> Any:
        if isinstance(s, TreeVar):
            i = self._position(s)
            if i >= 0:
                return _replace_child(s, i, x)
            raise TypeError(
                f"{self!r}: {self.name!r} is not a field of {type_of(s).__name__}, so a value "
                "set there would be lost when the structure is rebuilt (a ClassVar or a "
                "property is not part of it); make it a field"
            )
        if isinstance(s, BVar):
            if _is_numeric(s):
                raise self._not_a_record(s)
            return self.leaf_set(s, x)
        return replace_attr(s, self.name, x)


class _Item(_LensStep):
    __slots__ = ("key", "_int", "_hashable")

    def __init__(self, key: Any) -> None:
        self.key = key
        self._int = type(key) is int or isinstance(key, np.integer)
        try:
            hash(key)
            self._hashable = True
        except TypeError:
            self._hashable = False

    def __repr__(self) -> str:
        return f"item({self.key!r})"

    def fast_get(self) -> Callable[[Any], Any]:
        if self._int or not self._hashable:  # an index or slice: no mapping's default to fear
            return operator.itemgetter(self.key)
        return self.get

    def get(self, s: Any) -> Any:
        key = self.key
        if isinstance(s, defaultdict) and key not in s:
            # Reading must not insert the default, as s[key] would.
            if s.default_factory is None:
                raise KeyError(key)
            return s.default_factory()
        return s[key]

    def put(self, s: Any, x: Any) -> Any:
        return replace_item(s, self.key, x)

    def _position(self, v: TreeVar) -> int | None:
        f = _families.get(v._container) or family(v)
        if f is SEQUENCE:
            return int(self.key) if self._int else None
        if f is MAPPING and self._hashable:
            lookup = v._lookup
            return v._index_of(self.key) if lookup is None else lookup.get(self.key)
        return None

    def vget(self, s: Any) -> Any:
        if isinstance(s, TreeVar):  # _position inlined: this is the hot path of view_var
            f = _families.get(s._container) or family(s)
            if f is SEQUENCE and self._int:
                return s._children[self.key]
            if f is MAPPING and self._hashable:
                lookup = s._lookup
                i = s._index_of(self.key) if lookup is None else lookup.get(self.key)
                if i is not None:
                    return s._children[i]
            return s._split()[self.key]
        if isinstance(s, BVar):
            return s[self.key] if _is_numeric(s) else self.leaf_view(s)
        return self.get(s)

    def vput(self, s: Any, x: Any) -> Any:
        if isinstance(s, TreeVar):
            i = self._position(s)
            if i is not None:
                return _replace_child(s, i, x)
            return join(replace_item(s._split(), self.key, x))
        if isinstance(s, BVar):
            return array_set(s, self.key, x) if _is_numeric(s) else self.leaf_set(s, x)
        return replace_item(s, self.key, x)


class _PrismStep(_Step):
    __slots__ = ()
    kind = PRISM

    def put(self, s: Any, x: Any) -> Any:
        return s if self.match(s) is NOTHING else x

    def fold(self, s: Any) -> list[Any]:
        m = self.match(s)
        return [] if m is NOTHING else [m]

    def over(self, s: Any, f: Callable[[Any], Any]) -> Any:
        m = self.match(s)
        return s if m is NOTHING else f(m)

    def vput(self, s: Any, x: Any) -> Any:
        return s if self.vmatch(s) is NOTHING else x

    def vfold(self, s: Any) -> list[Any]:
        m = self.vmatch(s)
        return [] if m is NOTHING else [m]

    def vover(self, s: Any, f: Callable[[Any], Any]) -> Any:
        m = self.vmatch(s)
        return s if m is NOTHING else f(m)


class _Instance(_PrismStep):
    __slots__ = ("cls",)

    def __init__(self, cls: Any) -> None:
        self.cls = cls

    def __repr__(self) -> str:
        return f"instance({getattr(self.cls, '__name__', self.cls)})"

    def match(self, s: Any) -> Any:
        return s if isinstance(s, self.cls) else NOTHING

    def vmatch(self, s: Any) -> Any:
        if isinstance(s, TreeVar):
            return s if issubclass(type_of(s), self.cls) else NOTHING
        if isinstance(s, BVar):
            return s if isinstance(primal(s), self.cls) else NOTHING
        return s if isinstance(s, self.cls) else NOTHING


class _Just(_PrismStep):
    __slots__ = ()

    def __repr__(self) -> str:
        return "just"

    def match(self, s: Any) -> Any:
        return NOTHING if s is None else s

    vmatch = match  # a BVar is never None


def _each_error(s: Any) -> TypeError:
    what = (
        f"a BVar of a {type(primal(s)).__name__}"
        if isinstance(s, BVar)
        else f"a {type(s).__name__}"
    )
    return TypeError(f"each traverses lists, tuples and dicts; got {what}")


class _Each(_Step):
    __slots__ = ()
    kind = TRAVERSAL

    def __repr__(self) -> str:
        return "each"

    def fold(self, s: Any) -> list[Any]:
        if isinstance(s, dict):
            return list(s.values())
        if isinstance(s, (list, tuple)):
            return list(s)
        raise _each_error(s)

    def over(self, s: Any, f: Callable[[Any], Any]) -> Any:
        t = type(s)
        if t is list:
            return [f(a) for a in s]
        if t is dict:
            return {k: f(a) for k, a in s.items()}
        if isinstance(s, tuple):
            items = [f(a) for a in s]
            if t is tuple:
                return tuple(items)
            make = getattr(t, "_make", None)
            return make(items) if make is not None else t(items)
        if isinstance(s, (list, dict)):
            new = copy.copy(s)
            for k in range(len(s)) if isinstance(s, list) else list(s):
                new[k] = f(new[k])
            return new
        raise _each_error(s)

    def put(self, s: Any, x: Any) -> Any:
        return self.over(s, lambda _: x)

    def vfold(self, s: Any) -> list[Any]:
        if isinstance(s, TreeVar):
            if family(s) is RECORD:
                raise TypeError(f"each traverses lists, tuples and dicts; got a BVar of a "
                                f"{type_of(s).__name__}")  # fmt: skip
            return list(s._children)
        if isinstance(s, BVar):
            raise _each_error(s)
        return self.fold(s)

    def vover(self, s: Any, f: Callable[[Any], Any]) -> Any:
        if isinstance(s, TreeVar):
            kids = [as_child(f(c)) for c in self.vfold(s)]
            return make_view(s._container, s._aux, kids, s._tape)
        if isinstance(s, BVar):
            raise _each_error(s)
        return self.over(s, f)

    def vput(self, s: Any, x: Any) -> Any:
        return self.vover(s, lambda _: x)


class _Leaves(_Step):
    __slots__ = ()
    kind = TRAVERSAL

    def __repr__(self) -> str:
        return "leaves"

    def fold(self, s: Any) -> list[Any]:
        return flatten(s)[0]

    def over(self, s: Any, f: Callable[[Any], Any]) -> Any:
        found, td = flatten(s)
        return unflatten(td, [f(a) for a in found])

    def put(self, s: Any, x: Any) -> Any:
        return self.over(s, lambda _: x)

    vfold = fold  # flatten sees through TreeVars; a leaf BVar is one leaf

    def vover(self, s: Any, f: Callable[[Any], Any]) -> Any:
        if not isinstance(s, BVar):
            return self.over(s, f)
        found, td = flatten(s)
        return build_view(td, iter([as_child(f(a)) for a in found]), s._tape)

    def vput(self, s: Any, x: Any) -> Any:
        return self.vover(s, lambda _: x)


# --------------------------------------------------------------------------------------
# Optics: a tuple of steps compiled into accessor functions.
# --------------------------------------------------------------------------------------


def _chain_get(gets: Sequence[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    if len(gets) == 1:
        return gets[0]
    if len(gets) == 2:
        g1, g2 = gets
        return lambda s: g2(g1(s))

    def get(s: Any) -> Any:
        for g in gets:
            s = g(s)
        return s

    return get


def _chain_set(
    gets: Sequence[Callable[[Any], Any]], puts: Sequence[Callable[[Any, Any], Any]]
) -> Callable[[Any, Any], Any]:
    # set(s, x) = put_0(s, set_rest(get_0(s), x)), built from the inside out.
    setter = puts[-1]
    for g, p in zip(reversed(gets[:-1]), reversed(puts[:-1])):
        setter = _set_through(g, p, setter)
    return setter


def _set_through(
    get: Callable[[Any], Any], put: Callable[[Any, Any], Any], inner: Callable[[Any, Any], Any]
) -> Callable[[Any, Any], Any]:
    return lambda s, x: put(s, inner(get(s), x))


def _chain_over(
    overs: Sequence[Callable[[Any, Callable[[Any], Any]], Any]],
) -> Callable[[Any, Callable[[Any], Any]], Any]:
    over = overs[-1]
    for outer in reversed(overs[:-1]):
        over = _over_through(outer, over)
    return over


def _over_through(
    outer: Callable[[Any, Callable[[Any], Any]], Any],
    inner: Callable[[Any, Callable[[Any], Any]], Any],
) -> Callable[[Any, Callable[[Any], Any]], Any]:
    return lambda s, f: outer(s, lambda a: inner(a, f))


def _chain_fold(folds: Sequence[Callable[[Any], list[Any]]]) -> Callable[[Any], list[Any]]:
    fold = folds[-1]
    for outer in reversed(folds[:-1]):
        fold = _fold_through(outer, fold)
    return fold


def _fold_through(
    outer: Callable[[Any], list[Any]], inner: Callable[[Any], list[Any]]
) -> Callable[[Any], list[Any]]:
    return lambda s: [b for a in outer(s) for b in inner(a)]


def _chain_preview(kind: int, steps: Sequence[_Step], var: bool) -> Callable[[Any], Any]:
    if kind == TRAVERSAL:
        fold = _chain_fold([s.vfold if var else s.fold for s in steps])

        def first(s: Any) -> Any:
            found = fold(s)
            return found[0] if found else NOTHING

        return first
    matches = [s.vmatch if var else s.match for s in steps]

    def preview(s: Any) -> Any:
        for m in matches:
            s = m(s)
            if s is NOTHING:
                return NOTHING
        return s

    return preview


class Optic:
    """A composable path to parts of a value: a lens, a prism or a traversal.

    Build optics with :func:`attr`, :func:`item`, :func:`where`, :func:`instance`,
    :data:`just`, :data:`each` and :data:`leaves`; compose them with ``/`` or
    :func:`compose`.  ``kind`` is ``"lens"``, ``"prism"`` or ``"traversal"``.

    >>> (attr("layers") / each / attr("w")).kind
    'traversal'
    """

    __slots__ = (
        "steps", "_kind", "_get", "_set", "_over", "_fold", "_preview",
        "_vget", "_vset", "_vover", "_vfold", "_vpreview",
    )  # fmt: skip

    def __init__(self, steps: Sequence[_Step]) -> None:
        self.steps = tuple(steps)
        kind = self._kind = max(s.kind for s in self.steps)
        steps = self.steps
        over = self._over = _chain_over([s.over for s in steps])
        vover = self._vover = _chain_over([s.vover for s in steps])
        self._fold = _chain_fold([s.fold for s in steps])
        self._vfold = _chain_fold([s.vfold for s in steps])
        self._preview = _chain_preview(kind, steps, var=False)
        self._vpreview = _chain_preview(kind, steps, var=True)
        if kind == LENS:
            gets = [s.fast_get() for s in steps]
            vgets = [s.vget for s in steps]
            self._get = _chain_get(gets)
            self._vget = _chain_get(vgets)
            self._set = _chain_set(gets, [s.put for s in steps])
            self._vset = _chain_set(vgets, [s.vput for s in steps])
        else:
            self._get = self._vget = self._not_a_lens
            self._set = lambda s, x: over(s, lambda _: x)
            self._vset = lambda s, x: vover(s, lambda _: x)

    @property
    def kind(self) -> str:
        return _KIND_NAMES[self._kind]

    def _not_a_lens(self, s: Any) -> Any:
        use = "preview" if self._kind == PRISM else "to_list_of"
        raise TypeError(
            f"{self!r} is a {self.kind}, which may not have exactly one focus; view needs a "
            f"lens: use {use} (or {use}_var on BVars)"
        )

    def __truediv__(self, inner: Optic) -> Optic:
        if not isinstance(inner, Optic):
            return NotImplemented
        return Optic(self.steps + inner.steps)

    def __repr__(self) -> str:
        return " / ".join(repr(s) for s in self.steps)


def attr(name: str) -> Optic:
    """A lens on the attribute ``name`` (a dataclass or NamedTuple field, any attribute).

    >>> from typing import NamedTuple
    >>> class P(NamedTuple):
    ...     x: float
    ...     y: float
    >>> view(P(1.0, 2.0), attr("y")), set(P(1.0, 2.0), attr("y"), 5.0)
    (2.0, P(x=1.0, y=5.0))
    """
    return Optic((_Attr(name),))


def item(key: Any) -> Optic:
    """A lens on ``s[key]``: a dict key, a list or tuple index, or an array index.

    >>> set({"a": 1.0, "b": 2.0}, item("b"), 0.0)
    {'a': 1.0, 'b': 0.0}
    >>> set((1.0, 2.0), item(-1), 0.0)
    (1.0, 0.0)
    """
    return Optic((_Item(key),))


class _PathRecorder:
    """Stands in for a structure while a selector runs; remembers what it reads."""

    __slots__ = ("_path_steps",)

    def __init__(self, steps: tuple[_Step, ...]) -> None:
        object.__setattr__(self, "_path_steps", steps)

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            return object.__getattribute__(self, name)
        steps = object.__getattribute__(self, "_path_steps")
        return _PathRecorder(steps + (_Attr(name),))

    def __getitem__(self, key: Any) -> Any:
        # A key read off the argument (n.w[n.i]) would put the stand-in itself in the path.
        if any(type(k) is _PathRecorder for k in (key if type(key) is tuple else (key,))):
            raise TypeError(
                "the selector indexes with a part of its argument, so its path depends on "
                "the value; read the index outside the selector"
            )
        steps = object.__getattribute__(self, "_path_steps")
        return _PathRecorder(steps + (_Item(key),))

    # A selector that tests, compares or iterates its argument would record one branch of
    # a choice made on a stand-in (or never end): refused.
    def _refuse(self, *args: Any) -> Any:
        raise TypeError(
            "the selector tests, compares or iterates its argument, so its path could "
            "depend on the value; write that choice outside the selector"
        )

    __bool__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __iter__ = __len__ = __contains__ = __index__ = __int__ = __float__ = _refuse
    __hash__ = None  # type: ignore[assignment]


_SELECTOR_RULE = (
    "where(selector): the selector must return a part of its argument reached by attribute "
    "and item reads only (like lambda net: net.layers[1].w)"
)


def where(selector: Callable[[Any], Any]) -> Optic:
    """A lens on the part of a structure that ``selector`` reads.

    The selector may only read attributes and items, as in ``lambda net:
    net.layers[1].w``; it runs once, on a stand-in, and the path it reads becomes a
    composition of :func:`attr` and :func:`item` lenses.  A selector that tests, compares
    or iterates its argument (``n.b if n.use_b else n.a``) is refused: its path would
    depend on a value the stand-in does not have.

    >>> where(lambda net: net.layers[1].w)
    attr('layers') / item(1) / attr('w')
    >>> view({"a": [1.0, (2.0, 3.0)]}, where(lambda s: s["a"][1][0]))
    2.0
    """
    try:
        result = selector(_PathRecorder(()))
    except TypeError as e:
        raise TypeError(_SELECTOR_RULE + f" ({e})") from None
    if type(result) is not _PathRecorder:
        raise TypeError(_SELECTOR_RULE)
    steps = object.__getattribute__(result, "_path_steps")
    if not steps:
        raise TypeError("where(selector): the selector returned its argument itself")
    return Optic(steps)


def compose(*optics: Optic) -> Optic:
    """The optic focusing through each of ``optics`` in turn, outermost first.

    ``compose(a, b, c)`` is ``a / b / c``.

    >>> view({"w": [1.0, 2.0]}, compose(item("w"), item(1)))
    2.0
    """
    if not optics:
        raise TypeError("compose needs at least one optic")
    steps: list[_Step] = []
    for o in optics:
        if not isinstance(o, Optic):
            raise TypeError(f"compose takes optics, got {type(o).__name__}")
        steps.extend(o.steps)
    return Optic(steps)


def instance(cls: Any) -> Optic:
    """A prism focusing a value when it is an instance of ``cls`` (a union case).

    >>> preview(2.0, instance(float)), preview("a", instance(float))
    (2.0, None)
    """
    try:
        isinstance(None, cls)
    except TypeError:
        raise TypeError(f"instance takes a class (or a tuple of classes), got {cls!r}") from None
    return Optic((_Instance(cls),))


just = Optic((_Just(),))
"""A prism focusing a value when it is not None: ``preview(None, just)`` is None."""

each = Optic((_Each(),))
"""A traversal of every element of a list or tuple and every value of a dict."""

leaves = Optic((_Leaves(),))
"""A traversal of every differentiable leaf of a structure, in flatten order."""


# --------------------------------------------------------------------------------------
# Operations on plain values.
# --------------------------------------------------------------------------------------


def not_an_optic(optic: Any) -> TypeError:
    return TypeError(f"expected an optic from hetgrad.lens (attr, item, where, ...), got {optic!r}")


def focus_error(optic: Optic, e: BaseException) -> BaseException:
    """The lookup error of a missing focus, of the same type, naming the optic."""
    detail = e.args[0] if len(e.args) == 1 else str(e)
    return type(e)(f"{optic!r}: the focus is missing ({type(e).__name__}: {detail!r})")


def accessor(optic: Any, name: str) -> Callable[..., Any]:
    """The compiled accessor ``name`` of ``optic``; TypeError if it is not an optic."""
    try:
        return getattr(optic, name)
    except AttributeError:
        raise not_an_optic(optic) from None


def focused(optic: Optic, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, with a missing focus reported as the same lookup error naming the optic."""
    try:
        return fn(*args)
    except (KeyError, IndexError, AttributeError) as e:
        raise focus_error(optic, e) from e


def focused_over(optic: Optic, over: Callable[..., Any], s: Any, fn: Callable[[Any], Any]) -> Any:
    """``over(s, fn)`` as :func:`focused` runs it; an error raised by ``fn`` itself passes
    as it is (a KeyError in your function is not a missing focus)."""
    from_fn: list[BaseException] = []

    def tracked(a: Any) -> Any:
        try:
            return fn(a)
        except (KeyError, IndexError, AttributeError) as e:
            from_fn.append(e)
            raise

    try:
        return over(s, tracked)
    except (KeyError, IndexError, AttributeError) as e:
        if any(e is f for f in from_fn):
            raise
        raise focus_error(optic, e) from e


def found(x: Any) -> Any:
    """A preview's result as users see it: None when nothing matched."""
    return None if x is NOTHING else x


def view(s: Any, lens: Optic) -> Any:
    """The focus of ``lens`` in ``s``.

    >>> view({"w": [1.0, 2.0]}, item("w") / item(0))
    1.0
    """
    return focused(lens, accessor(lens, "_get"), s)


def set(s: Any, optic: Optic, x: Any) -> Any:
    """A copy of ``s`` with every focus of ``optic`` replaced by ``x``; ``s`` is unchanged.

    >>> set([1.0, 2.0, 3.0], each, 0.0)
    [0.0, 0.0, 0.0]
    """
    return focused(optic, accessor(optic, "_set"), s, x)


def over(s: Any, optic: Optic, fn: Callable[[Any], Any]) -> Any:
    """A copy of ``s`` with ``fn`` applied to every focus of ``optic``.

    >>> over({"a": 1.0, "b": 2.0}, each, lambda v: 10.0 * v)
    {'a': 10.0, 'b': 20.0}
    """
    return focused_over(optic, accessor(optic, "_over"), s, fn)


def preview(s: Any, optic: Optic) -> Any:
    """The (first) focus of ``optic`` in ``s``, or None when there is none.

    >>> preview([None, 3.0], item(0) / just), preview([None, 3.0], item(1) / just)
    (None, 3.0)
    """
    return found(focused(optic, accessor(optic, "_preview"), s))


def to_list_of(s: Any, optic: Optic) -> list[Any]:
    """Every focus of ``optic`` in ``s``, in order.

    >>> to_list_of({"a": [1.0, 2.0], "b": [3.0]}, each / each)
    [1.0, 2.0, 3.0]
    """
    return focused(optic, accessor(optic, "_fold"), s)
