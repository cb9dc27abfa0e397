"""Helpers shared by the lifted NumPy modules: registration and fast recording paths."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import rules
from ..tape import (
    LEAF_DEF,
    BVar,
    Primitive,
    _escaped,
    apply,
    check_keywords,
    find_tape,
    primal,
    record,
    record_whole,
    stored,
    unbox,
)
from ..tree import flatten

NP: Any = np
"""NumPy without its type stubs: for calls passing options through (``np.pad(**kw)``)."""

__all__ = ["NP", "lift", "apply1", "record_many", "shape_of", "ndim_of", "axes_of", "kept",
           "stand_in"]


def lift(*numpy_funcs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``impl`` as what the NumPy functions do when given a BVar."""

    def register(impl: Callable[..., Any]) -> Callable[..., Any]:
        for f in numpy_funcs:
            rules.FUNCTIONS[f] = impl
        return impl

    return register


def apply1(p: Primitive) -> Callable[..., Any]:
    """``p`` called as ``p(a, **kwargs)``: records a BVar ``a`` without the generic loop."""

    def impl(a: Any, *args: Any, **kwargs: Any) -> Any:
        if args or type(a) is not BVar:
            return apply(p, (a, *args), kwargs)
        if kwargs:
            check_keywords(p.name, kwargs)
        tape = a._tape
        if tape.nodes is None:
            raise _escaped(tape)
        av = a._value
        y = p.fn(av, **kwargs)
        kept = (av,) if p.reads is None else stored(p.reads, (av,))
        return record(tape, p.node_rules, (a._index,), kept, y, kwargs or None, p.name,
                      p.reads_output)  # fmt: skip

    impl.__name__ = p.name
    return impl


def record_many(
    fn: Callable[..., Any],
    pullback: Callable[[Any, Any, list[Any], list[bool]], Sequence[Any]],
    args: Sequence[Any],
    kwargs: dict[str, Any],
) -> Any:
    """Call ``fn(*args, **kwargs)`` for any number of arguments, recording one node.

    ``pullback(g, y, vals, needed)`` returns one gradient per positional argument (None
    where not ``needed``); ``vals`` are the arguments with this tape's BVars replaced by
    their values.
    Used where a table of one rule per position does not fit (concatenate, einsum).
    """
    tape = find_tape(args)
    if tape is None:
        return fn(*args, **kwargs)
    if tape.nodes is None:
        raise _escaped(tape)
    vals, parents = unbox(args, tape)
    y = fn(*vals, **kwargs)
    if type(y) is np.ndarray:  # the usual output: no need to flatten it
        leaves, td = [y], LEAF_DEF
    else:
        leaves, td = flatten(y)
    if td is not LEAF_DEF:
        raise TypeError(f"{fn.__name__}: a structured output is not supported")
    name = str(getattr(fn, "__name__", "op"))
    needed = [p is not None for p in parents]
    return record_whole(
        tape, tuple(parents), lambda g: pullback(g, y, vals, needed), td, leaves, name
    )


def constant(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` applied to primal values: for functions with zero derivative (argmax, round)."""

    def impl(*args: Any, **kwargs: Any) -> Any:
        args = tuple(primal(a) for a in args)
        kwargs = {k: primal(v) for k, v in kwargs.items()}
        return fn(*args, **kwargs)

    impl.__name__ = getattr(fn, "__name__", "constant")
    return impl


def shape_of(x: Any) -> tuple[int, ...]:
    return rules.shape_of(x)


def stand_in(x: Any) -> np.ndarray:
    """Zeros of ``x``'s shape and dtype that take no memory (a read-only broadcast of one
    zero): what a lifted function hands NumPy to have it check its arguments, and raise
    its own errors, without computing on the values."""
    return np.broadcast_to(np.zeros((), np.result_type(primal(x))), shape_of(x))


def ndim_of(x: Any) -> int:
    return len(rules.shape_of(x))


def axes_of(axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple) as a sorted tuple of non-negative axes."""
    if axis is None or not ndim:  # (NumPy's reductions take axis 0 or -1 of a 0-d array)
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    return tuple(sorted(int(ax) % ndim for ax in axis))


def kept(g: Any, shape: tuple[int, ...], axis: Any, keepdims: bool) -> Any:
    """The reduction output ``g`` reshaped so it broadcasts against the input ``shape``."""
    if keepdims or not shape:
        return g
    axes = axes_of(axis, len(shape))
    return np.reshape(g, tuple(1 if i in axes else n for i, n in enumerate(shape)))
