"""Lenses on BVars: reading, setting and matching parts of a BVar of a structure.

These are Haskell backprop's lens operators as functions: ``view_var`` (``^^.``),
``set_var`` (``.~~``), ``over_var`` (``%~~``), ``preview_var`` (``^^?``),
``preview_var_or_raise`` (``^^?!``), ``to_list_of_var`` (``^^..``), ``sequence_var``,
``collect_var``, ``split_bv``, ``join_bv`` and ``iso_var``.  The optics come from
:mod:`hetgrad.lens`.

Each function also accepts a plain value and then does what the plain operation of
:mod:`hetgrad.lens` does, so one function body serves ``eval_bp`` and ``grad_bp``.

A BVar of a structure holds one BVar per field, so none of these record anything on the
tape when they focus on whole fields: reading m of n fields costs O(m), and gradients
accumulate per leaf.  Focusing inside an array (``item(3)`` on a BVar of an array) records
NumPy indexing; a type registered with ``register_backprop`` is treated as opaque (its
pullback fills the rest of the value with zero).

>>> import dataclasses, hetgrad
>>> from hetgrad.lens import attr
>>> @dataclasses.dataclass(frozen=True)
... class Net:
...     w: float
...     b: float
>>> hetgrad.grad_bp(lambda n: hetgrad.view_var(n, attr("w")) ** 2, Net(3.0, 1.0))
Net(w=6.0, b=0.0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .lens import (
    NOTHING,
    RECORD,
    Optic,
    accessor,
    family,
    focus_error,
    focused,
    focused_over,
    found,
    join,
    not_an_optic,
    type_of,
)
from .primitive import call_custom
from .tape import BVar, TreeVar, primal

__all__ = [
    "view_var",
    "set_var",
    "over_var",
    "preview_var",
    "preview_var_or_raise",
    "to_list_of_var",
    "sequence_var",
    "collect_var",
    "split_bv",
    "join_bv",
    "iso_var",
]


def view_var(v: Any, lens: Optic) -> Any:
    """The focus of ``lens`` in ``v`` (backprop's ``^^.``); ``v.field`` is sugar for it.

    >>> import hetgrad
    >>> from hetgrad.lens import item
    >>> hetgrad.grad_bp(lambda d: hetgrad.view_var(d, item("a")) * 3.0, {"a": 1.0, "b": 2.0})
    {'a': 3.0, 'b': 0.0}
    """
    # Written out rather than through accessor/focused: this is the hot path of lenses.
    try:
        get = lens._vget
    except AttributeError:
        raise not_an_optic(lens) from None
    try:
        return get(v)
    except (KeyError, IndexError, AttributeError) as e:
        raise focus_error(lens, e) from e


def set_var(v: Any, optic: Optic, x: Any) -> Any:
    """``v`` with every focus of ``optic`` replaced by ``x`` (backprop's ``.~~``).

    The gradient flows to ``x`` from the focus and to ``v`` from everything else; ``v``
    gets zero at the focus.

    >>> import hetgrad
    >>> from hetgrad.lens import item
    >>> f = lambda xs, y: hetgrad.set_var(xs, item(0), y)[0] * xs[1]
    >>> hetgrad.grad_bp(f, [1.0, 2.0], 5.0)
    ([0.0, 5.0], 2.0)
    """
    return focused(optic, accessor(optic, "_vset"), v, x)


def over_var(v: Any, optic: Optic, fn: Callable[[Any], Any]) -> Any:
    """``v`` with ``fn`` applied to every focus of ``optic`` (backprop's ``%~~``).

    >>> import hetgrad
    >>> from hetgrad.lens import item
    >>> f = lambda d: hetgrad.over_var(d, item("a"), lambda a: a * a)["a"]
    >>> hetgrad.grad_bp(f, {"a": 3.0})
    {'a': 6.0}
    """
    return focused_over(optic, accessor(optic, "_vover"), v, fn)


def preview_var(v: Any, prism: Optic) -> Any:
    """The (first) focus of ``prism`` in ``v``, or None when it does not match (``^^?``).

    No gradient flows through a branch that does not match.

    >>> import hetgrad
    >>> from hetgrad.lens import item, just
    >>> hetgrad.eval_bp(lambda xs: hetgrad.preview_var(xs, item(0) / just), [None, 1.0])
    """
    return found(focused(prism, accessor(prism, "_vpreview"), v))


def preview_var_or_raise(v: Any, prism: Optic) -> Any:
    """The focus of ``prism`` in ``v``; raises LookupError when it does not match (``^^?!``).

    >>> import hetgrad
    >>> from hetgrad.lens import instance
    >>> hetgrad.grad_bp(lambda x: hetgrad.preview_var_or_raise(x, instance(float)) * 2.0, 1.0)
    2.0
    """
    focus = focused(prism, accessor(prism, "_vpreview"), v)
    if focus is NOTHING:
        what = type_of(v) if isinstance(v, TreeVar) else type(primal(v))
        raise LookupError(f"{prism!r} does not match this {what.__name__}")
    return focus


def to_list_of_var(v: Any, traversal: Optic) -> list[Any]:
    """Every focus of ``traversal`` in ``v``, as a list of BVars (backprop's ``^^..``).

    >>> import hetgrad
    >>> from hetgrad.lens import each
    >>> hetgrad.grad_bp(lambda d: sum(hetgrad.to_list_of_var(d, each)), {"a": 1.0, "b": 2.0})
    {'a': 1.0, 'b': 1.0}
    """
    return focused(traversal, accessor(traversal, "_vfold"), v)


def sequence_var(v: Any) -> Any:
    """A BVar of a list, tuple or dict as a list, tuple or dict of BVars.

    Records nothing: the BVar already holds one BVar per element.

    >>> import hetgrad
    >>> f = lambda x, xs: sum(hetgrad.sequence_var(xs)[i] ** 2 for i in range(3)) / x
    >>> hetgrad.grad_bp(f, 9.0, [1.0, 6.0, 2.0])[1]
    [0.222..., 1.333..., 0.444...]
    """
    if isinstance(v, TreeVar):
        if family(v) is RECORD:
            raise TypeError(
                f"sequence_var takes a BVar of a list, tuple or dict; got a BVar of a "
                f"{type_of(v).__name__} (use split_bv for records)"
            )
        return v._split()
    if isinstance(v, BVar):
        raise TypeError(
            f"sequence_var takes a BVar of a list, tuple or dict; got a BVar of a "
            f"{type(primal(v)).__name__} (index it, or iterate over it, instead)"
        )
    return v


def collect_var(xs: Any) -> Any:
    """A list, tuple or dict of BVars as one BVar (the inverse of :func:`sequence_var`).

    >>> import hetgrad
    >>> hetgrad.grad_bp(lambda a, b: hetgrad.collect_var([a, b])[1] * a, 2.0, 3.0)
    (3.0, 2.0)
    """
    if isinstance(xs, TreeVar):
        return xs
    if not isinstance(xs, (list, tuple, dict)):
        raise TypeError(f"collect_var takes a list, tuple or dict, got {type(xs).__name__}")
    return join(xs)


def split_bv(v: Any) -> Any:
    """A BVar of a structure as a value of the structure's own type whose fields are BVars.

    The result is an instance of your class, so ``match`` works on it (backprop's
    ``splitBV``); only the top level is split.

    >>> import dataclasses, hetgrad
    >>> @dataclasses.dataclass
    ... class Line:
    ...     slope: float
    ...     intercept: float
    >>> def loss(line):
    ...     match hetgrad.split_bv(line):
    ...         case Line(slope=a, intercept=b):
    ...             return a * 2.0 + b
    >>> hetgrad.grad_bp(loss, Line(1.0, 0.5))
    Line(slope=2.0, intercept=1.0)
    """
    if isinstance(v, TreeVar):
        return v._split()
    if isinstance(v, BVar):
        raise TypeError(
            f"split_bv takes a BVar of a structure (dataclass, NamedTuple, tuple, list, "
            f"dict); got a BVar of a {type(primal(v)).__name__}"
        )
    return v


def join_bv(s: Any) -> Any:
    """A structure whose leaves are BVars (or constants) as one BVar (backprop's ``joinBV``).

    >>> import hetgrad
    >>> hetgrad.grad_bp(lambda a: hetgrad.join_bv({"x": a, "y": 1.0})["x"] * 4.0, 2.0)
    4.0
    """
    return join(s)


def iso_var(to: Callable[[Any], Any], from_: Callable[[Any], Any], v: Any) -> Any:
    """Apply an isomorphism with derivative 1: ``to`` forwards, ``from_`` on the gradient.

    Both functions see plain values only: ``to`` maps the value of ``v`` and ``from_``
    maps the output's gradient back to the shape of ``v`` (backprop's ``isoVar``), as when
    wrapping or unwrapping a single-field type or turning a tuple into a NamedTuple.

    >>> import hetgrad
    >>> from typing import NamedTuple
    >>> class P(NamedTuple):
    ...     x: float
    ...     y: float
    >>> f = lambda t: hetgrad.iso_var(lambda t: P(*t), tuple, t).y * 3.0
    >>> hetgrad.grad_bp(f, (1.0, 2.0))
    (0.0, 3.0)
    """

    def fn(a: Any) -> tuple[Any, Callable[[Any], Any]]:
        return to(a), from_

    return call_custom(f"iso_var({getattr(to, '__name__', 'to')})", fn, (v,), 1)
