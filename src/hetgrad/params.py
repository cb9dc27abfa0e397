"""Parameter arithmetic: ``net - 0.02 * grad`` for your own parameter types.

:class:`Params` is a mixin for dataclasses (and NamedTuples, listed after it) of
parameters: it adds elementwise ``+ - * /`` between two values of the type and between a
value and a scalar, over the differentiable leaves; static leaves are kept from the left
operand.

>>> import dataclasses, numpy as np, hetgrad
>>> @dataclasses.dataclass(frozen=True)
... class Line(hetgrad.Params):
...     slope: float
...     intercept: float
>>> Line(1.0, 2.0) - 0.5 * Line(2.0, 2.0)
Line(slope=0.0, intercept=1.0)
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from .tape import BVar, primal
from .tree import tree_map

__all__ = ["Params", "tree_map"]

P = TypeVar("P", bound="Params")


def _is_scalar(x: Any) -> bool:
    """A real number to combine with every leaf: a Python or NumPy number, a 0-d array,
    or a BVar of one.  An array of more dimensions is refused: it would broadcast into
    every leaf (and turn float leaves into arrays)."""
    v = primal(x)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return True
    return type(v) is np.ndarray and v.ndim == 0 and v.dtype.kind in "biuf"


def _keep_type(leaf: Any, y: Any) -> Any:
    """A Python float leaf stays a Python float (``1.0 * np.float32(2)`` is a NumPy one),
    and a 0-d array a 0-d array (``np.array(1.0) * 2`` is a NumPy scalar).

    >>> _keep_type(np.array(1.0), np.array(1.0) * 2)
    array(2.)
    """
    if type(leaf) is float and isinstance(y, np.floating):
        return float(y)
    if type(leaf) is np.ndarray and isinstance(y, np.generic):
        return np.asarray(y)
    return y


class Params:
    """Mixin: elementwise arithmetic over a structure's differentiable leaves.

    On a NamedTuple, ``Params`` must come first among the bases (``class P(Params, _P)``
    with ``_P`` the NamedTuple), or tuple's own ``+`` and ``*`` (concatenation,
    repetition) would win; the other order is refused when the class is defined.
    """

    __slots__ = ()
    # NumPy scalars and arrays defer to Params' reflected operators (``np.float64(2) * p``
    # is ``p.__rmul__``), so both orders follow the same rules and promote alike.
    __array_ufunc__ = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        mro = cls.__mro__
        if tuple in mro and mro.index(tuple) < mro.index(Params):
            raise TypeError(
                f"{cls.__name__}: put hetgrad.Params before the NamedTuple among the bases "
                f"(class {cls.__name__}(hetgrad.Params, ...)), or tuple's + and * "
                "(concatenation and repetition) would be used instead of Params'"
            )

    def _combine(self: P, other: Any, op: Callable[[Any, Any], Any], reflected: bool) -> P:
        if type(other) is type(self):
            if reflected:
                return tree_map(lambda a, b: _keep_type(a, op(b, a)), self, other)
            return tree_map(lambda a, b: _keep_type(a, op(a, b)), self, other)
        if isinstance(other, Params) or not _is_scalar(other):
            if isinstance(other, np.ndarray):
                raise TypeError(
                    f"{type(self).__name__}: arithmetic with an array of shape "
                    f"{other.shape} would broadcast it into every leaf; use a number, a "
                    f"{type(self).__name__}, or hetgrad.tree_map"
                )
            return NotImplemented
        # A Python float leaf meets a NumPy scalar as a float64 one: np.float32(2) would
        # round the leaf to float32 and _keep_type hide it behind the float type (and a
        # NumPy float64, unlike a Python float, divides by 0 as NumPy does).
        v = primal(other)
        exact = np.float64(v) if not isinstance(other, BVar) and isinstance(
            v, (np.floating, np.ndarray)) else other  # fmt: skip

        def leaf(a: Any) -> Any:
            b = exact if type(a) is float else other
            return _keep_type(a, op(b, a) if reflected else op(a, b))

        return tree_map(leaf, self)

    def __add__(self: P, other: Any) -> P:
        return self._combine(other, operator.add, False)

    def __radd__(self: P, other: Any) -> P:
        return self._combine(other, operator.add, True)

    def __sub__(self: P, other: Any) -> P:
        return self._combine(other, operator.sub, False)

    def __rsub__(self: P, other: Any) -> P:
        return self._combine(other, operator.sub, True)

    def __mul__(self: P, other: Any) -> P:
        return self._combine(other, operator.mul, False)

    def __rmul__(self: P, other: Any) -> P:
        return self._combine(other, operator.mul, True)

    def __truediv__(self: P, other: Any) -> P:
        return self._combine(other, operator.truediv, False)

    def __rtruediv__(self: P, other: Any) -> P:
        return self._combine(other, operator.truediv, True)

    def __neg__(self: P) -> P:
        return tree_map(lambda a: _keep_type(a, -a), self)
