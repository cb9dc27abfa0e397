"""The Backprop protocol: ``zero``, ``add`` and ``one`` for every differentiable type.

Gradients are accumulated with ``add``, missing ones are filled with ``zero``, and a
scalar output is seeded with ``one``.  They obey these laws for every value ``x``, ``y``,
``z`` of one type:

* ``add(x, zero(y)) == x`` and ``add(zero(y), x) == x``;
* ``add(x, y) == add(y, x)`` and ``add(add(x, y), z) == add(x, add(y, z))``;
* ``zero(zero(x)) == zero(x)``;
* ``add`` is a sum: ``add(x, x) != x`` unless ``x == zero(x)`` (not ``max``);
* for scalars, ``one(x) == grad_bp(lambda v: v, x)``.

Lists add elementwise and keep the tail of the longer one; dicts add over the union of
their keys (first the left keys in order, then the new right keys).  Static leaves pass
through unchanged; adding two different static values is an error.

>>> add({"a": 1.0, "n": 3}, {"a": 2.0, "b": 5.0, "n": 3})
{'a': 3.0, 'n': 3, 'b': 5.0}
>>> add([1.0], [2.0, 3.0])
[3.0, 3.0]
>>> zero((2.0, np.ones(2), "tag"))
(0.0, array([0., 0.]), 'tag')
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np

from . import tree
from .tree import ARRAY, LEAF, LIST, STATIC, VIEW, Container, UnsupportedLeafError, kind_of

__all__ = ["zero", "add", "one", "register_backprop", "Backprop"]

T = TypeVar("T")


class Backprop(NamedTuple):
    """The protocol's three functions for one user type."""

    zero: Callable[[Any], Any]
    add: Callable[[Any, Any], Any]
    one: Callable[[Any], Any]


_instances: dict[type, Backprop] = {}


def register_backprop(
    cls: type,
    *,
    zero: Callable[[Any], Any],
    add: Callable[[Any, Any], Any],
    one: Callable[[Any], Any],
) -> None:
    """Make values of ``cls`` (and its subclasses) differentiable leaves.

    The gradient of such a value is again a value of ``cls``, built by your functions.

    >>> class Money:
    ...     def __init__(self, amount): self.amount = amount
    >>> register_backprop(Money, zero=lambda m: Money(0.0),
    ...                   add=lambda a, b: Money(a.amount + b.amount),
    ...                   one=lambda m: Money(1.0))
    >>> add(Money(2.0), Money(3.0)).amount
    5.0
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_backprop needs a class, got {cls!r}")
    for name, fn in (("zero", zero), ("add", add), ("one", one)):
        if not callable(fn):
            raise TypeError(f"register_backprop({cls.__name__}): {name} must be callable")
    inst = Backprop(zero, add, one)
    tree.registered_leaves[cls] = inst
    _instances.clear()
    tree.clear_kind_cache()


def instance_for(t: type) -> Backprop | None:
    """The registered protocol for type ``t`` (honouring subclasses), cached per type."""
    inst = _instances.get(t)
    if inst is None:
        for base in t.__mro__:
            inst = tree.registered_leaves.get(base)
            if inst is not None:
                _instances[t] = inst
                break
    return inst


def _raise_unsupported(x: Any, fn: str) -> None:
    raise TypeError(f"hetgrad.{fn}: {tree.unsupported_reason(x)}")


def _zero_leaf(x: Any) -> Any:
    t = type(x)
    if t is float:
        return 0.0
    if t is np.ndarray:
        return np.zeros(x.shape, x.dtype)  # (zeros_like's Python wrapper costs 5x more)
    inst = instance_for(t)
    if inst is not None:
        return inst.zero(x)
    if isinstance(x, np.ndarray):  # a subclass (np.memmap, your own): an array of its type
        return np.zeros(x.shape, x.dtype).view(t)
    return t(0)  # NumPy float scalars


def _one_leaf(x: Any) -> Any:
    t = type(x)
    if t is float:
        return 1.0
    if t is np.ndarray:
        return np.ones(x.shape, x.dtype)
    inst = instance_for(t)
    if inst is not None:
        return inst.one(x)
    if isinstance(x, np.ndarray):  # a subclass, as in _zero_leaf
        return np.ones(x.shape, x.dtype).view(t)
    return t(1)


def zero(x: T) -> T:
    """The additive identity of ``x``'s type and structure; static leaves are kept.

    >>> zero({"w": np.array([1.0, 2.0]), "n": 3})
    {'w': array([0., 0.]), 'n': 3}
    """
    return _map(_zero_leaf, x, "zero")


def one(x: T) -> T:
    """The seed of reverse mode: ones in ``x``'s type and structure; static leaves kept.

    >>> one(np.float32(3.0)), one([2.0, 5])
    (np.float32(1.0), [1.0, 5])
    """
    return _map(_one_leaf, x, "one")


def _map(fn: Callable[[Any], Any], x: Any, name: str) -> Any:
    try:
        return tree.tree_map(fn, x)
    except UnsupportedLeafError as e:
        raise TypeError(f"hetgrad.{name}: at {e.path('x')}: {e.reason}") from None


def add(x: T, y: T) -> T:
    """Add two values of one type and structure (lists pad, dicts take the union).

    >>> add((1.0, np.array([1.0, 2.0])), (2.0, np.array([3.0, 4.0])))
    (3.0, array([4., 6.]))
    """
    try:
        return _add(x, y)
    except _Mismatch as e:
        raise ValueError(f"hetgrad.add: at {e.path('x')}: {e.reason}") from None
    except UnsupportedLeafError as e:
        raise TypeError(f"hetgrad.add: at {e.path('x')}: {e.reason}") from None


class _Mismatch(UnsupportedLeafError):
    """Two values that cannot be added; carries the path like UnsupportedLeafError."""


def _add(x: Any, y: Any) -> Any:
    tx = type(x)
    k = kind_of(tx)
    if k is None:
        raise UnsupportedLeafError(x, tree.unsupported_reason(x))
    if k is LEAF:
        inst = instance_for(tx)
        if inst is not None:
            return inst.add(x, y)
        if kind_of(type(y)) not in (LEAF, ARRAY) or np.shape(y) != ():
            raise _Mismatch(y, f"cannot add {tx.__name__} and {type(y).__name__}")
        return x + y
    if k is ARRAY:
        if x.dtype.kind == "f":
            if np.shape(y) != x.shape:
                raise _Mismatch(y, f"cannot add arrays of shapes {x.shape} and {np.shape(y)}")
            return x + y
        return _add_static(x, y)
    if k is STATIC:
        return _add_static(x, y)
    if k is VIEW:
        k, aux, kids = x._container, x._aux, x._children
    else:
        aux, kids = k.split(x)
    ky = kind_of(type(y))
    if ky is VIEW:
        ky, auy, kidsy = y._container, y._aux, y._children
    elif isinstance(ky, Container):
        auy, kidsy = ky.split(y)
    else:
        raise _Mismatch(y, f"cannot add a {k.name} and a {type(y).__name__}")
    if k.name != ky.name:
        raise _Mismatch(y, f"cannot add a {k.name} and a {ky.name}")
    if k is LIST:
        n = min(len(kids), len(kidsy))
        out = [_add_child(kids[i], kidsy[i], i) for i in range(n)]
        return out + list(kids[n:]) + list(kidsy[n:])
    if isinstance(x, dict):
        return _add_dicts(x, y)
    keys = list(k.keys(aux))
    if keys != list(ky.keys(auy)):
        other_keys = list(ky.keys(auy))
        raise _Mismatch(y, f"cannot add values with different fields: {keys} and {other_keys}")
    static = k.static
    out = [
        a if static is not None and static[i] else _add_child(a, b, keys[i])
        for i, (a, b) in enumerate(zip(kids, kidsy))
    ]
    return k.rebuild(aux, out)


def _add_child(a: Any, b: Any, key: Any) -> Any:
    try:
        return _add(a, b)
    except UnsupportedLeafError as e:
        e.keys.append(key)
        raise


def _add_dicts(x: Any, y: Any) -> Any:
    out = defaultdict(x.default_factory) if isinstance(x, defaultdict) else type(x)()
    for key, a in x.items():
        out[key] = _add_child(a, y[key], key) if key in y else a
    for key, b in y.items():
        if key not in x:
            out[key] = b
    return out


def _add_static(x: Any, y: Any) -> Any:
    same = x is y
    if not same:
        try:
            same = bool(np.all(x == y)) and type(x) is type(y)
        except (TypeError, ValueError):
            same = False
    if not same:
        raise _Mismatch(y, f"cannot add different static values {x!r} and {y!r}")
    return x
