"""Structures: flattening values into differentiable leaves and rebuilding them.

Every runner flattens its arguments once on the way in and rebuilds the gradient once on
the way out.  A *structure* is any nesting of the built-in containers (tuple, list, dict and
its subclasses, NamedTuple, dataclasses) around *leaves*:

* differentiable leaves: Python ``float``, NumPy float scalars, float arrays, and values of
  types registered with :func:`hetgrad.register_backprop`;
* static leaves, which pass through unchanged and never receive gradient: ``None``, bool,
  int, str, bytes, Enum members, integer and bool arrays, callables, and dataclass fields
  declared with ``field(metadata={"static": True})``.

>>> leaves, treedef = flatten({"w": 1.0, "name": "net", "b": [2.0, 3.0]})
>>> leaves
[1.0, 2.0, 3.0]
>>> unflatten(treedef, [10.0, 20.0, 30.0])
{'w': 10.0, 'name': 'net', 'b': [20.0, 30.0]}
>>> leaf_paths(treedef)
["['w']", "['b'][0]", "['b'][1]"]
"""

from __future__ import annotations

import dataclasses
import enum
import operator
import types
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "TreeDef",
    "flatten",
    "unflatten",
    "leaf_paths",
    "leaf_keys",
    "tree_map",
    "is_static_field",
]


class UnsupportedLeafError(TypeError):
    """A value that is neither a known container nor a known leaf.

    ``keys`` is filled in from the inside out while the error travels up through the
    containers, so the final message can name the leaf's path, e.g.
    ``args[0].layers[2].activation``.
    """

    def __init__(self, value: Any, reason: str) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
        self.keys: list[Any] = []

    def path(self, root: str) -> str:
        return root + format_path(reversed(self.keys))

    def __str__(self) -> str:
        # Caught by a runner, the path is named from its argument (``args[0].w``); raised
        # through anything else (tree_map, optimizers, checkpoint), it names it from the
        # value given (``value['layers'][2].activation``).
        if not self.keys:
            return self.reason
        return f"at {self.path('value')}: {self.reason}"


def format_path(keys: Any) -> str:
    """Python-looking path suffix for a sequence of keys: attributes as ``.name``."""
    out = []
    for k in keys:
        if isinstance(k, _Attr):
            out.append("." + k.name)
        else:
            out.append(f"[{k!r}]")
    return "".join(out)


class _Attr:
    """A key that is an attribute name (dataclass or NamedTuple field)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Attr) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("attr", self.name))


# --------------------------------------------------------------------------------------
# Container handlers: how to take one container apart and put it back together.
# --------------------------------------------------------------------------------------


class Container:
    """How one kind of container is split into children and rebuilt.

    ``split(x)`` returns ``(aux, children)``; ``rebuild(aux, children)`` inverts it.
    ``keys(aux)`` names each child (for paths and lenses); ``static`` marks children that
    are static whatever their type (dataclass fields declared static).  ``attributes``
    maps field names to child positions for records (dataclasses, NamedTuples), whose
    fields are read as attributes; ``record`` is the type of the values split, which the
    engine's BVars of them claim as their ``__class__``, so ``isinstance`` answers for them
    as for the value (a list, a dict, your dataclass); ``view`` is the class of those BVars.
    """

    __slots__ = ("name", "split", "rebuild", "keys", "static", "attributes", "record", "view")

    def __init__(
        self,
        name: str,
        split: Callable[[Any], tuple[Any, Sequence[Any]]],
        rebuild: Callable[[Any, Sequence[Any]], Any],
        keys: Callable[[Any], Sequence[Any]],
        static: tuple[bool, ...] | None = None,
        attributes: dict[str, int] | None = None,
        record: type | None = None,
    ) -> None:
        self.name = name
        self.split = split
        self.rebuild = rebuild
        self.keys = keys
        self.static = static
        self.attributes: dict[str, int] = attributes or {}
        self.record = record
        # The engine's BVar class for views of this container (made on first use).
        self.view: type | None = None

    def __repr__(self) -> str:
        return f"Container({self.name})"


def _seq_keys(aux: Any) -> range:
    return range(aux)


TUPLE = Container(
    "tuple", lambda x: (len(x), x), lambda aux, ch: tuple(ch), _seq_keys, record=tuple
)
LIST = Container("list", lambda x: (len(x), x), lambda aux, ch: list(ch), _seq_keys, record=list)
DICT = Container(
    "dict",
    lambda x: (tuple(x), tuple(x.values())),
    lambda aux, ch: dict(zip(aux, ch)),
    lambda aux: aux,
    record=dict,
)
ORDERED_DICT = Container(
    "OrderedDict",
    lambda x: (tuple(x), tuple(x.values())),
    lambda aux, ch: OrderedDict(zip(aux, ch)),
    lambda aux: aux,
    record=OrderedDict,
)
DEFAULT_DICT = Container(
    "defaultdict",
    lambda x: ((x.default_factory, tuple(x)), tuple(x.values())),
    lambda aux, ch: defaultdict(aux[0], zip(aux[1], ch)),
    lambda aux: aux[1],
    record=defaultdict,
)


def _namedtuple_container(cls: type) -> Container:
    names = tuple(_Attr(f) for f in cls._fields)  # type: ignore[attr-defined]
    return Container(
        cls.__name__,
        lambda x: (cls, x),
        lambda aux, ch: cls._make(ch),  # type: ignore[attr-defined]
        lambda aux: names,
        attributes={f: i for i, f in enumerate(cls._fields)},  # type: ignore[attr-defined]
        record=cls,
    )


def is_static_field(f: dataclasses.Field) -> bool:
    """True for a dataclass field declared ``field(metadata={"static": True})``.

    >>> @dataclasses.dataclass
    ... class Layer:
    ...     w: float
    ...     size: float = dataclasses.field(default=1.0, metadata={"static": True})
    >>> [is_static_field(f) for f in dataclasses.fields(Layer)]
    [False, True]
    """
    return bool(f.metadata.get("static", False))


def _dataclass_container(cls: type) -> Container:
    fields = dataclasses.fields(cls)
    names = tuple(f.name for f in fields)
    keys = tuple(_Attr(n) for n in names)
    marks = tuple(is_static_field(f) for f in fields)
    static = marks if any(marks) else None  # (None: flatten skips the per-field test)
    setter = object.__setattr__
    # attrgetter reads every field in one C call (it returns a bare value for one name).
    get = operator.attrgetter(*names) if len(names) > 1 else None

    def split(x: Any) -> tuple[Any, list[Any]]:
        try:
            if get is not None:
                return cls, list(get(x))
            return cls, [getattr(x, n) for n in names]
        except AttributeError:
            unset = [n for n in names if not hasattr(x, n)]
            if not unset:
                raise
            raise UnsupportedLeafError(
                x,
                f"field {unset[0]!r} of this {cls.__name__} was never assigned (a field with "
                "init=False and no default must be set in __post_init__); give it a default "
                "or assign it",
            ) from None

    # Rebuilding bypasses __init__ and __post_init__: a gradient or an optimizer update is
    # not a valid "parameter set" for validators, and init=False fields must survive too.
    # Instances with a __dict__ get their fields stored into it directly (no __setattr__,
    # which a frozen dataclass overrides to raise).
    with_dict = cls.__dictoffset__ != 0 and not any(
        hasattr(type(getattr(cls, n, None)), "__set__") for n in names  # slots, properties
    )

    def rebuild(aux: Any, children: Sequence[Any]) -> Any:
        obj: Any = object.__new__(cls)
        if with_dict:
            fields = obj.__dict__
            for n, c in zip(names, children):
                fields[n] = c
        else:
            for n, c in zip(names, children):
                setter(obj, n, c)
        return obj

    attributes = {n: i for i, n in enumerate(names)}
    return Container(cls.__name__, split, rebuild, lambda aux: keys, static, attributes, cls)


# --------------------------------------------------------------------------------------
# Classifying types (cached per type).
# --------------------------------------------------------------------------------------

LEAF = "leaf"  # a differentiable leaf: float, NumPy float scalar, float array, registered
STATIC = "static"  # passes through, never receives gradient
ARRAY = "array"  # a leaf or static depending on the dtype
VIEW = "view"  # a BVar of a structure: carries its own container, aux and children

_kinds: dict[type, Any] = {
    float: LEAF,
    np.float64: LEAF,
    np.float32: LEAF,
    np.float16: LEAF,
    np.longdouble: LEAF,
    np.ndarray: ARRAY,
    int: STATIC,
    bool: STATIC,
    str: STATIC,
    bytes: STATIC,
    type(None): STATIC,
    tuple: TUPLE,
    list: LIST,
    dict: DICT,
    OrderedDict: ORDERED_DICT,
    defaultdict: DEFAULT_DICT,
}

#: Types registered as differentiable leaves by :func:`hetgrad.register_backprop`; the
#: protocol module fills it.  Looked up along the MRO.
registered_leaves: dict[type, Any] = {}


def clear_kind_cache() -> None:
    """Forget classifications made on the fly (after a new registration)."""
    for t in _classified:
        _kinds.pop(t, None)
    _classified.clear()


_classified: set[type] = set()


def kind_of(t: type) -> Any:
    """The cached classification of a type: LEAF, STATIC, ARRAY, a Container or None."""
    k = _kinds.get(t)
    if k is None:
        k = _classify(t)
        if k is not None:
            _kinds[t] = k
            _classified.add(t)
    return k


def _classify(t: type) -> Any:
    for base in t.__mro__:
        if base in registered_leaves:
            return LEAF
    if issubclass(t, complex) or issubclass(t, np.complexfloating):
        return None
    if issubclass(t, np.floating):
        return LEAF
    if issubclass(t, (np.integer, np.bool_, enum.Enum, int, str, bytes)):
        return STATIC
    if issubclass(t, tuple) and hasattr(t, "_fields"):
        return _namedtuple_container(t)
    if dataclasses.is_dataclass(t):
        return _dataclass_container(t)
    if issubclass(t, np.ndarray):
        return ARRAY
    if issubclass(t, dict):
        # Rebuilt as t(mapping): right for dict's own constructor, and for Counter (given
        # a mapping, not an iterable it would count).  Another constructor may mean anything.
        if t is not Counter and (t.__init__ is not dict.__init__ or t.__new__ is not dict.__new__):
            return None
        return Container(
            t.__name__,
            lambda x: (tuple(x), tuple(x.values())),
            lambda aux, ch: t(dict(zip(aux, ch))),
            lambda aux: aux,
            record=t,
        )
    if issubclass(t, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)):
        return STATIC
    if any("__call__" in vars(base) for base in t.__mro__[:-1]):
        # Instances of callable classes (functools.partial, a user's activation object).
        return STATIC
    return None


def unsupported_reason(x: Any) -> str:
    t = type(x)
    if isinstance(x, dict):
        return (
            f"{t.__module__}.{t.__qualname__} is a dict subclass with its own constructor, "
            "so hetgrad cannot rebuild it with new values; pass dict(x), or make it a "
            "dataclass"
        )
    if isinstance(x, (complex, np.complexfloating)) or (
        isinstance(x, np.ndarray) and x.dtype.kind == "c"
    ):
        return (
            f"complex values are not supported yet (got {t.__name__}"
            + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else "")
            + "); split them into real and imaginary parts"
        )
    return (
        f"hetgrad does not know how to differentiate a value of type "
        f"{t.__module__}.{t.__qualname__}; make it a dataclass or NamedTuple of supported "
        f"leaves, register it with hetgrad.register_backprop({t.__qualname__}, zero=..., "
        f"add=..., one=...), or mark the field static with "
        f'dataclasses.field(metadata={{"static": True}})'
    )


# --------------------------------------------------------------------------------------
# Tree definitions.
# --------------------------------------------------------------------------------------


class Static:
    """A static leaf inside a TreeDef, carrying its value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Static({self.value!r})"


class TreeDef:
    """The shape of a structure with its differentiable leaves taken out.

    ``children`` holds, per child, either ``None`` (a differentiable leaf), a
    :class:`Static` (a static leaf) or a nested ``TreeDef``.
    """

    __slots__ = ("container", "aux", "children", "num_leaves")
    num_leaves: int

    def __init__(self, container: Container | None, aux: Any, children: tuple[Any, ...]) -> None:
        self.container = container
        self.aux = aux
        self.children = children
        n: int = 0
        for c in children:
            if c is None:
                n += 1
            elif type(c) is TreeDef:
                n += c.num_leaves
        self.num_leaves = n

    def same_structure(self, other: Any) -> bool:
        """Same containers, keys and static leaves' types (values of statics may differ)."""
        if type(other) is not TreeDef:
            return False
        if self.container is not other.container and (
            self.container is None
            or other.container is None
            or self.container.name != other.container.name
        ):
            return False
        if len(self.children) != len(other.children):
            return False
        if self.container is not None and _aux_key(self) != _aux_key(other):
            return False
        for a, b in zip(self.children, other.children):
            if a is None or b is None:
                if a is not b:
                    return False
            elif type(a) is Static:
                if type(b) is not Static or type(a.value) is not type(b.value):
                    return False
            elif not a.same_structure(b):
                return False
        return True

    def describe(self) -> str:
        if self.container is None:
            return "leaf"
        return self.container.name

    def __repr__(self) -> str:
        if self.container is None:
            return f"TreeDef({self.describe()}, {self.children!r})"
        # Keys shown, so two structures that differ only in their keys read differently.
        keys = self.container.keys(self.aux)
        kids = ", ".join(
            f"{format_path([k])}={'leaf' if c is None else repr(c)}"
            for k, c in zip(keys, self.children)
        )
        return f"TreeDef({self.describe()}, ({kids}))"


def _aux_key(td: TreeDef) -> Any:
    assert td.container is not None
    return tuple(td.container.keys(td.aux))


#: The treedef of a structure that is itself a single differentiable leaf.
LEAF_DEF = TreeDef(None, None, (None,))


def flatten(x: Any) -> tuple[list[Any], TreeDef]:
    """Split ``x`` into its differentiable leaves (in a fixed order) and a TreeDef.

    A BVar of a plain value is a leaf; a BVar of a structure flattens like the structure.

    >>> flatten((1.0, 2, [3.0]))[0]
    [1.0, 3.0]
    """
    leaves: list[Any] = []
    child = _flatten_into(x, leaves)
    if child is None:
        return leaves, LEAF_DEF
    if type(child) is Static:
        return leaves, TreeDef(None, None, (child,))
    return leaves, child


def _flatten_into(x: Any, leaves: list[Any]) -> Any:
    t = type(x)
    k = _kinds.get(t)
    if k is None:
        k = kind_of(t)
        if k is None:
            raise UnsupportedLeafError(x, unsupported_reason(x))
    if k is LEAF:
        leaves.append(x)
        return None
    if k is STATIC:
        return Static(x)
    if k is ARRAY:
        dk = x.dtype.kind
        if dk == "f":
            leaves.append(x)
            return None
        if dk == "c" or dk == "O":
            raise UnsupportedLeafError(
                x,
                unsupported_reason(x)
                if dk == "c"
                else "object arrays are not supported; use a float array or a list",
            )
        return Static(x)
    if k is VIEW:
        k, aux, kids = x._container, x._aux, x._children
    else:
        aux, kids = k.split(x)
    static = k.static
    out: list[Any] = []
    try:
        for c in kids:
            tc = type(c)
            if static is not None and static[len(out)]:
                out.append(Static(c))
            # Leaves of the common types are handled here rather than by a recursive call.
            elif tc is float or (tc is np.ndarray and c.dtype.kind == "f") or tc is _bvar_type:
                leaves.append(c)
                out.append(None)
            else:
                out.append(_flatten_into(c, leaves))
    except UnsupportedLeafError as e:
        e.keys.append(list(k.keys(aux))[len(out)])  # (``out`` holds the children before it)
        raise
    return TreeDef(k, aux, tuple(out))


class _NoType:
    """Placeholder until the engine declares its BVar type (see ``set_bvar_type``)."""


_bvar_type: type = _NoType


def set_bvar_type(t: type) -> None:
    """Let the engine declare BVar, so flatten takes its fast path for BVar leaves."""
    global _bvar_type
    _bvar_type = t


def unflatten(treedef: TreeDef, leaves: Sequence[Any]) -> Any:
    """Rebuild a structure from a TreeDef and its leaves (inverse of :func:`flatten`).

    >>> leaves, treedef = flatten((1.0, {"b": 2.0, "tag": "x"}))
    >>> unflatten(treedef, [3.0, 4.0])
    (3.0, {'b': 4.0, 'tag': 'x'})
    """
    if len(leaves) != treedef.num_leaves:
        raise ValueError(
            f"unflatten: the TreeDef has {treedef.num_leaves} leaves, got {len(leaves)}"
        )
    return _unflatten(treedef, iter(leaves))


def _unflatten(td: TreeDef, it: Iterator[Any]) -> Any:
    if td.container is None:
        c = td.children[0]
        return next(it) if c is None else c.value
    kids = []
    for c in td.children:
        if c is None:
            kids.append(next(it))
        elif type(c) is Static:
            kids.append(c.value)
        else:
            kids.append(_unflatten(c, it))
    return td.container.rebuild(td.aux, kids)


def leaf_keys(treedef: TreeDef) -> list[tuple[Any, ...]]:
    """The key path of every differentiable leaf, in flatten order.

    Attribute keys are returned as their names, item keys as themselves.

    >>> leaf_keys(flatten({"a": [1.0, 2.0]})[1])
    [('a', 0), ('a', 1)]
    """
    return [tuple(k.name if isinstance(k, _Attr) else k for k in p) for p in _raw_keys(treedef)]


def _raw_keys(td: TreeDef) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    _walk_keys(td, (), out)
    return out


def _walk_keys(d: TreeDef, prefix: tuple[Any, ...], out: list[tuple[Any, ...]]) -> None:
    # (a module function: a recursive closure is a reference cycle, left to the collector)
    if d.container is None:
        if d.children[0] is None:
            out.append(prefix)
        return
    for key, c in zip(d.container.keys(d.aux), d.children):
        if c is None:
            out.append(prefix + (key,))
        elif type(c) is TreeDef:
            _walk_keys(c, prefix + (key,), out)


def leaf_paths(treedef: TreeDef, root: str = "") -> list[str]:
    """Python-looking paths of every differentiable leaf, e.g. ``root.layers[0].w``.

    >>> leaf_paths(flatten({"layers": [(1.0, 2.0)]})[1], "net")
    ["net['layers'][0][0]", "net['layers'][0][1]"]
    """
    return [root + format_path(p) for p in _raw_keys(treedef)]


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``fn`` to every differentiable leaf; static leaves are kept from ``tree``.

    Further trees must have the same structure; their leaves become extra arguments.

    >>> tree_map(lambda p, g: p - 0.5 * g, {"w": 1.0, "n": 3}, {"w": 2.0, "n": 3})
    {'w': 0.0, 'n': 3}
    """
    try:
        return _map(fn, tree, rest)
    except _Mismatch as e:
        raise ValueError(
            f"tree_map: argument {e.index + 2} has a different structure from the first: "
            f"{flatten(rest[e.index])[1]!r} vs {flatten(tree)[1]!r}"
        ) from None


class _Mismatch(Exception):
    """Tree ``index`` of ``rest`` differs from the first tree (tree_map)."""

    def __init__(self, index: int) -> None:
        self.index = index


def _is_diff_leaf(y: Any) -> bool:
    k = _kinds.get(type(y)) or kind_of(type(y))
    return k is LEAF or (k is ARRAY and y.dtype.kind == "f")


def _parts(x: Any, k: Any) -> tuple[Container, Any, Sequence[Any]]:
    if k is VIEW:
        return x._container, x._aux, x._children
    aux, kids = k.split(x)
    return k, aux, kids


def _map(fn: Callable[..., Any], x: Any, ys: tuple[Any, ...]) -> Any:
    """tree_map in one walk over all the trees (no TreeDefs built): the optimizers' and
    ``Params``' hot path."""
    t = type(x)
    k = _kinds.get(t)
    if k is None:
        k = kind_of(t)
        if k is None:
            raise UnsupportedLeafError(x, unsupported_reason(x))
    if k is LEAF or (k is ARRAY and x.dtype.kind == "f"):
        for j, y in enumerate(ys):
            if not _is_diff_leaf(y):
                raise _Mismatch(j)
        return fn(x, *ys)
    if k is ARRAY and x.dtype.kind in "cO":
        _flatten_into(x, [])  # raises the same error flatten gives
    if k is STATIC or k is ARRAY:
        for j, y in enumerate(ys):
            if type(y) is not t:
                raise _Mismatch(j)
        return x
    k, aux, kids = _parts(x, k)
    others = []
    for j, y in enumerate(ys):
        ky = _kinds.get(type(y)) or kind_of(type(y))
        if not isinstance(ky, Container) and ky is not VIEW:
            raise _Mismatch(j)
        ky, auy, kidsy = _parts(y, ky)
        if len(kidsy) != len(kids) or (
            (ky is not k or auy is not aux)
            and (ky.name != k.name or list(ky.keys(auy)) != list(k.keys(aux)))
        ):
            raise _Mismatch(j)
        others.append(kidsy)
    static = k.static
    out = []
    i = 0
    try:
        for i, c in enumerate(kids):
            if static is not None and static[i]:
                out.append(c)
                continue
            # Float and float-array leaves, with zero or one other tree (Params arithmetic,
            # the optimizers), are mapped here rather than by a recursive call.
            tc = type(c)
            if tc is float or (tc is np.ndarray and c.dtype.kind == "f"):
                if not others:
                    out.append(fn(c))
                    continue
                if len(others) == 1:
                    y = others[0][i]
                    ty = type(y)
                    if ty is float or (ty is np.ndarray and y.dtype.kind == "f"):
                        out.append(fn(c, y))
                        continue
            out.append(_map(fn, c, tuple([o[i] for o in others])))
    except UnsupportedLeafError as e:
        e.keys.append(list(k.keys(aux))[i])
        raise
    return k.rebuild(aux, out)
