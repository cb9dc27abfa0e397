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

from .tree import flatten, tree_map

__all__ = ["Params", "tree_map"]

P = TypeVar("P", bound="Params")


def _is_scalar(x: Any) -> bool:
    leaves, td = flatten(x) if not isinstance(x, (int, float)) else ([x], None)
    return td is None or (td.container is None and len(leaves) == 1)


class Params:
    """Mixin: elementwise arithmetic over a structure's differentiable leaves.

    On a NamedTuple, ``Params`` must come first among the bases (``class P(Params, _P)``
    with ``_P`` the NamedTuple), or tuple's own ``+`` and ``*`` (concatenation,
    repetition) would win; the other order is refused when the class is defined.
    """

    __slots__ = ()

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
            fn = (lambda a, b: op(b, a)) if reflected else op
            return tree_map(fn, self, other)
        if isinstance(other, Params) or not _is_scalar(other):
            return NotImplemented
        if reflected:
            return tree_map(lambda a: op(other, a), self)
        return tree_map(lambda a: op(a, other), self)

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
        return tree_map(operator.neg, self)
