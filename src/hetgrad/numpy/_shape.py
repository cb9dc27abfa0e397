"""Shapes, joining, splitting and indexing of BVars.

Most functions here are compositions of a few primitives (reshape, transpose, getitem,
concatenate, ...), so their gradients, and gradients of gradients, come for free.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import rules
from ..rules import getitem, prim, reshape
from ..tape import BVar, primal
from ._core import NP, apply1, constant, lift, ndim_of, record_many, shape_of, stand_in

# --------------------------------------------------------------------------------------
# Primitives with one-line rules.
# --------------------------------------------------------------------------------------


def _negated(shift: Any) -> Any:
    return tuple(-s for s in shift) if isinstance(shift, (tuple, list)) else -shift


def _tile_grad(g: Any, y: Any, a: Any, reps: Any) -> Any:
    """Sum the tiled copies: view ``g`` as (rep0, n0, rep1, n1, ...) and sum the reps."""
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    xs = shape_of(a)
    d = max(len(reps), len(xs))
    xs_full = (1,) * (d - len(xs)) + xs
    reps = (1,) * (d - len(reps)) + reps
    split = tuple(n for pair in zip(reps, xs_full) for n in pair)
    return np.reshape(np.sum(np.reshape(g, split), axis=tuple(range(0, 2 * d, 2))), xs)


def _pad_constant(a: Any, pad_width: Any, **kwargs: Any) -> Any:
    return np.pad(a, pad_width, mode="constant", **kwargs)


def _unpad(g: Any, y: Any, a: Any, pad_width: Any, **kwargs: Any) -> Any:
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (ndim_of(a), 2))
    return g[tuple(slice(int(lo), int(lo) + n) for (lo, _), n in zip(widths, shape_of(a)))]


def _diag_fn(v: Any, k: int = 0) -> Any:
    return np.diag(v, k)


moveaxis = prim(np.moveaxis, lambda g, y, a, s, d: np.moveaxis(g, d, s), name="moveaxis",
                nondiff=(1, 2))  # fmt: skip
flip = prim(np.flip, lambda g, y, a, axis=None: np.flip(g, axis), name="flip", nondiff=(1,))
roll = prim(np.roll, lambda g, y, a, shift, axis=None: np.roll(g, _negated(shift), axis),
            name="roll", nondiff=(1, 2))  # fmt: skip
tile = prim(np.tile, _tile_grad, name="tile", nondiff=(1,))
def _tri_grad(tri: Any) -> Any:
    """The rule of triu or tril: the same triangle of ``g``, summed over the rows a 1-D
    input was broadcast into."""

    def rule(g: Any, y: Any, a: Any, k: int = 0) -> Any:
        kept = tri(g, k)
        return np.sum(kept, axis=-2) if ndim_of(a) == 1 else kept

    return rule


triu = prim(np.triu, _tri_grad(np.triu), name="triu", nondiff=(1,))
tril = prim(np.tril, _tri_grad(np.tril), name="tril", nondiff=(1,))
pad_constant = prim(_pad_constant, _unpad, name="pad", nondiff=(1,))
diag_vector = prim(_diag_fn, lambda g, y, v, k=0: np.diagonal(g, k), name="diag", nondiff=(1,))

rules.FUNCTIONS.update({
    np.moveaxis: moveaxis, np.flip: flip, np.roll: roll, np.tile: tile,
    np.triu: apply1(triu), np.tril: apply1(tril),
})  # fmt: skip

# --------------------------------------------------------------------------------------
# Compositions.
# --------------------------------------------------------------------------------------


@lift(np.ravel)
def ravel(a: Any, order: str = "C") -> Any:
    if order == "F":
        return reshape(a, (-1,), order="F")
    if order != "C":
        raise NotImplementedError(f"numpy.ravel of a BVar with order={order!r}")
    return reshape(a, (-1,))


@lift(np.diff)
def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = None, append: Any = None) -> Any:
    """``numpy.diff``: ``n``-th differences along ``axis`` (``prepend``/``append`` too)."""
    nd = ndim_of(a)
    if nd == 0:
        raise ValueError("numpy.diff needs an input of at least one dimension")
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    if n == 0:
        return a  # (as NumPy: prepend and append are ignored)
    axis = axis % nd
    parts = [a]
    for value, at in ((prepend, 0), (append, 1)):
        if value is not None:
            if ndim_of(value) == 0:  # a scalar: one slice of that value
                value = np.broadcast_to(value, shape_of(a)[:axis] + (1,) + shape_of(a)[axis + 1:])
            parts.insert(len(parts) * at, value)
    if len(parts) > 1:
        a = NP.concatenate(parts, axis=axis)
    head = tuple(slice(1, None) if i == axis else slice(None) for i in range(nd))
    tail = tuple(slice(None, -1) if i == axis else slice(None) for i in range(nd))
    for _ in range(n):
        a = a[head] - a[tail]
    return a


@lift(np.squeeze)
def squeeze(a: Any, axis: Any = None) -> Any:
    return reshape(a, np.squeeze(np.empty(shape_of(a), dtype=bool), axis).shape)


@lift(np.atleast_1d)
def atleast_1d(*arys: Any) -> Any:
    out = [a if ndim_of(a) >= 1 else reshape(a, (1,)) for a in arys]
    return out[0] if len(out) == 1 else tuple(out)


@lift(np.atleast_2d)
def atleast_2d(*arys: Any) -> Any:
    out = [a if ndim_of(a) >= 2 else reshape(a, (1,) * (2 - ndim_of(a)) + shape_of(a))
           for a in arys]  # fmt: skip
    return out[0] if len(out) == 1 else tuple(out)


@lift(np.atleast_3d)
def atleast_3d(*arys: Any) -> Any:
    def to3(a: Any) -> Any:
        s = shape_of(a)
        shape = {0: (1, 1, 1), 1: (1, *s, 1), 2: (*s, 1)}.get(len(s), s)
        return reshape(a, shape)

    out = [to3(a) for a in arys]
    return out[0] if len(out) == 1 else tuple(out)


@lift(np.broadcast_arrays)
def broadcast_arrays(*args: Any) -> Any:
    shape = np.broadcast_shapes(*[shape_of(a) for a in args])
    return tuple(np.broadcast_to(a, shape) for a in args)


def _concatenate(*arrays: Any, axis: int = 0) -> Any:
    return np.concatenate(arrays, axis=axis)


_concatenate.__name__ = "concatenate"


def _concatenate_pullback(g: Any, y: Any, vals: list[Any], needed: list[bool],
                          axis: int) -> list[Any]:  # fmt: skip
    ax = axis % len(shape_of(y))
    lead = (slice(None),) * ax
    out, start = [], 0
    for v, need in zip(vals, needed):
        n = shape_of(v)[ax]
        out.append(g[lead + (slice(start, start + n),)] if need else None)
        start += n
    return out


@lift(np.concatenate)
def concatenate(arrays: Any, axis: Any = 0, out: Any = None, dtype: Any = None,
                casting: str = "same_kind") -> Any:  # fmt: skip
    """``numpy.concatenate`` of a sequence that may hold BVars."""
    if out is not None:
        raise NotImplementedError("numpy.concatenate with out= cannot be recorded")
    arrays = list(arrays)
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    if dtype is not None:
        arrays = [a if isinstance(a, BVar) else np.asarray(a, dtype=dtype) for a in arrays]

    def pullback(g: Any, y: Any, vals: list[Any], needed: list[bool]) -> list[Any]:
        return _concatenate_pullback(g, y, vals, needed, axis)

    return _as_dtype(record_many(_concatenate, pullback, arrays, {"axis": axis}), dtype,
                     "concatenate")  # fmt: skip


def _stack(*arrays: Any, axis: int = 0) -> Any:
    return np.stack(arrays, axis=axis)


_stack.__name__ = "stack"


def _stack_pullback(g: Any, y: Any, needed: list[bool], axis: int) -> list[Any]:
    lead = (slice(None),) * (axis % len(shape_of(y)))
    return [g[lead + (k,)] if need else None for k, need in enumerate(needed)]


@lift(np.stack)
def stack(arrays: Any, axis: int = 0, out: Any = None, dtype: Any = None,
          casting: str = "same_kind") -> Any:  # fmt: skip
    """``numpy.stack`` of a sequence that may hold BVars (backprop's ``collectVar``)."""
    if out is not None:
        raise NotImplementedError("numpy.stack with out= cannot be recorded")
    arrays = list(arrays)
    if dtype is not None:
        arrays = [a if isinstance(a, BVar) else np.asarray(a, dtype=dtype) for a in arrays]

    def pullback(g: Any, y: Any, vals: list[Any], needed: list[bool]) -> list[Any]:
        return _stack_pullback(g, y, needed, axis)

    return _as_dtype(record_many(_stack, pullback, arrays, {"axis": axis}), dtype, "stack")


def _as_dtype(out: Any, dtype: Any, name: str) -> Any:
    """``out`` of the ``dtype`` asked for (a float dtype: a recorded cast)."""
    if dtype is None or np.result_type(primal(out)) == np.dtype(dtype):
        return out
    if np.dtype(dtype).kind != "f":
        raise TypeError(
            f"numpy.{name} of BVars with dtype={np.dtype(dtype)} would drop their gradients; "
            "use hetgrad.stop_gradient first for a constant"
        )
    return rules.astype(out, np.dtype(dtype))


@lift(np.hstack)
def hstack(tup: Any, dtype: Any = None, casting: str = "same_kind") -> Any:
    arrs = [atleast_1d(a) for a in tup]
    return concatenate(arrs, axis=0 if ndim_of(arrs[0]) == 1 else 1, dtype=dtype)


@lift(np.vstack)
def vstack(tup: Any, dtype: Any = None, casting: str = "same_kind") -> Any:
    return concatenate([atleast_2d(a) for a in tup], axis=0, dtype=dtype)


@lift(np.dstack)
def dstack(tup: Any) -> Any:
    return concatenate([atleast_3d(a) for a in tup], axis=2)


@lift(np.column_stack)
def column_stack(tup: Any) -> Any:
    cols = [reshape(a, (-1, 1)) if ndim_of(a) < 2 else a for a in tup]
    return concatenate(cols, axis=1)


@lift(np.array_split)
def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """Pieces of ``ary`` as BVars (each a slice, so gradients flow back to ``ary``)."""
    n = shape_of(ary)[axis]
    pieces = np.array_split(np.arange(n), indices_or_sections)
    lead = (slice(None),) * (axis % ndim_of(ary))
    return [ary[lead + (slice(int(p[0]), int(p[-1]) + 1) if len(p) else slice(0, 0),)]
            for p in pieces]  # fmt: skip


@lift(np.split)
def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    if isinstance(indices_or_sections, (int, np.integer)):
        if shape_of(ary)[axis] % indices_or_sections:
            raise ValueError("array split does not result in an equal division")
    return array_split(ary, indices_or_sections, axis)


@lift(np.take)
def take(a: Any, indices: Any, axis: Any = None, out: Any = None, mode: str = "raise") -> Any:
    if out is not None or mode != "raise":
        raise NotImplementedError("numpy.take of a BVar supports neither out= nor mode=")
    indices = primal(indices)
    if axis is None:
        return getitem(ravel(a), indices)
    return getitem(a, (slice(None),) * (axis % ndim_of(a)) + (indices,))


@lift(np.take_along_axis)
def take_along_axis(arr: Any, indices: Any, axis: Any = -1) -> Any:
    indices = np.asarray(primal(indices))
    if axis is None:
        return getitem(ravel(arr), indices)
    ax = axis % ndim_of(arr)
    shape = np.broadcast_shapes(shape_of(arr)[:ax] + (1,) + shape_of(arr)[ax + 1 :], indices.shape)
    key = []
    for i, n in enumerate(shape):
        if i == ax:
            key.append(np.broadcast_to(indices, shape))
        else:  # (an axis of size 1 in arr, broadcast against indices: its index 0)
            own = np.arange(n) % shape_of(arr)[i]
            key.append(own.reshape((-1,) + (1,) * (len(shape) - i - 1)))
    return getitem(arr, tuple(key))


@lift(np.sort)
def sort(a: Any, axis: Any = -1, kind: Any = None, order: Any = None, *,
         stable: Any = None) -> Any:  # fmt: skip
    if order is not None:
        raise ValueError("Cannot specify order when the array has no fields.")  # (NumPy's)
    if axis is None:
        a, axis = ravel(a), -1
    return take_along_axis(a, np.argsort(primal(a), axis=axis, kind=kind, stable=stable), axis)


@lift(np.repeat)
def repeat(a: Any, repeats: Any, axis: Any = None) -> Any:
    if axis is None:
        a, axis = ravel(a), 0
    n = shape_of(a)[axis]
    return take(a, np.repeat(np.arange(n), primal(repeats)), axis=axis)


@lift(np.pad)
def pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Any:
    """``numpy.pad``: ``constant`` (constant values), and the copying modes ``edge``,
    ``reflect``, ``symmetric`` and ``wrap`` (by padding an array of indices)."""
    if isinstance(pad_width, dict):  # {axis: width}: the other axes unpadded, as NumPy
        widths = [(0, 0)] * ndim_of(array)
        for ax, w in pad_width.items():
            widths[ax % len(widths)] = (w, w) if np.ndim(w) == 0 else tuple(w)
        pad_width = widths
    if mode == "constant":
        return pad_constant(array, pad_width, **kwargs)
    if mode in ("reflect", "symmetric") and kwargs.get("reflect_type", "even") != "even":
        raise NotImplementedError(
            f"numpy.pad with mode={mode!r}, reflect_type={kwargs['reflect_type']!r} is not "
            "differentiable in hetgrad (only the even reflection copies elements)"
        )
    if mode in ("edge", "reflect", "symmetric", "wrap"):
        idx = np.arange(int(np.prod(shape_of(array)))).reshape(shape_of(array))
        return getitem(ravel(array), NP.pad(idx, pad_width, mode=mode, **kwargs))
    raise NotImplementedError(f"numpy.pad with mode={mode!r} is not differentiable in hetgrad")


@lift(np.diagonal)
def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    m = moveaxis(a, (axis1, axis2), (-2, -1))
    rows, cols = shape_of(m)[-2:]
    i = np.arange(max(0, -offset), min(rows, cols - offset))
    return getitem(m, (Ellipsis, i, i + offset))


@lift(np.diag)
def diag(v: Any, k: int = 0) -> Any:
    if ndim_of(v) == 1:
        return diag_vector(v, k)
    if ndim_of(v) == 2:
        return diagonal(v, k)
    raise ValueError("Input must be 1- or 2-d.")


@lift(np.fliplr)
def fliplr(m: Any) -> Any:
    return flip(m, 1)


@lift(np.flipud)
def flipud(m: Any) -> Any:
    return flip(m, 0)


@lift(np.copy)
def copy(a: Any, order: str = "K", subok: bool = False) -> Any:
    return a  # BVars are never written in place, so a copy is the value itself


@lift(np.rot90)
def rot90(m: Any, k: int = 1, axes: Any = (0, 1)) -> Any:
    """``numpy.rot90``: flips and a swap of the two axes."""
    np.rot90(stand_in(m), k, axes)  # (NumPy's own checks of k and axes)
    a0, a1 = (int(ax) % ndim_of(m) for ax in axes)
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, a0), a1)
    order = list(range(ndim_of(m)))
    order[a0], order[a1] = a1, a0
    if k == 1:
        return rules.transpose(flip(m, a1), tuple(order))
    return flip(rules.transpose(m, tuple(order)), a1)


def _gather(sources: list[Any], picked: np.ndarray) -> Any:
    """Elements of the flattened ``sources``, chained end to end, at the integer array
    ``picked`` (any shape): what ``append``, ``delete`` and ``insert`` return, with NumPy
    having worked out which element goes where on arrays of indices."""
    flat = concatenate([ravel(a) for a in sources]) if len(sources) > 1 else ravel(sources[0])
    return getitem(flat, picked)


def _indices(a: Any, offset: int = 0) -> np.ndarray:
    n = int(np.prod(shape_of(a)))
    return np.arange(offset, offset + n).reshape(shape_of(a))


@lift(np.append)
def append(arr: Any, values: Any, axis: Any = None) -> Any:
    """``numpy.append``: ``concatenate`` (of the flattened arrays when ``axis`` is None)."""
    if axis is None:
        return concatenate([ravel(arr), ravel(values)])
    return concatenate([arr, values], axis=axis)


@lift(np.delete)
def delete(arr: Any, obj: Any, axis: Any = None) -> Any:
    """``numpy.delete``: the kept elements, chosen by NumPy on an array of indices."""
    return _gather([arr], np.delete(_indices(arr), primal(obj), axis))


@lift(np.insert)
def insert(arr: Any, obj: Any, values: Any, axis: Any = None) -> Any:
    """``numpy.insert``: NumPy places the indices of ``arr`` and of ``values`` (after its
    own broadcasting), and the result gathers the elements; a value inserted several times
    gets the sum of their gradients.  The result has ``arr``'s dtype, as NumPy's."""
    values = values if isinstance(values, BVar) else np.asarray(values)
    n = int(np.prod(shape_of(arr)))
    placed = np.insert(_indices(arr), primal(obj), _indices(values, n), axis)
    out = _gather([arr, values], placed)
    want = np.result_type(primal(arr))
    return out if np.result_type(primal(out)) == want else rules.astype(out, want)


@lift(np.meshgrid)
def meshgrid(*xi: Any, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> Any:
    """``numpy.meshgrid`` of BVars: each input, flattened, along its own axis of the grid,
    then broadcast to the whole grid (unless ``sparse``)."""
    sizes = [int(np.prod(shape_of(x))) for x in xi]
    # The plain call on empty arrays: NumPy's checks, the axes and the container type.
    axes = NP.meshgrid(*[np.empty(n) for n in sizes], sparse=True, indexing=indexing)
    grid = np.broadcast_shapes(*[np.shape(a) for a in axes])
    out = []
    for x, a in zip(xi, axes):
        v = reshape(x, np.shape(a)) if isinstance(x, BVar) else np.reshape(x, np.shape(a))
        if not sparse:
            v = np.broadcast_to(v, grid)
        out.append(v.copy() if copy and not isinstance(v, BVar) else v)
    return type(axes)(out)


def unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    """``numpy.unstack`` (NumPy 2.1): the slices along ``axis``."""
    NP.unstack(stand_in(x), axis=axis)  # (NumPy's own checks)
    lead = (slice(None),) * (axis % ndim_of(x))
    return tuple(x[lead + (i,)] for i in range(shape_of(x)[axis]))


@lift(np.block)
def block(arrays: Any) -> Any:
    """``numpy.block``: the innermost lists joined along the last axis, the next ones
    along the axis before, and so on."""
    np.block(_stand_ins(arrays))  # (NumPy's own checks of the nesting)
    depth, ndim = _nesting(arrays)
    ndim = max(ndim, depth)

    def join(x: Any, level: int) -> Any:
        if isinstance(x, list):
            return concatenate([join(e, level + 1) for e in x], axis=level - depth)
        return reshape(x, (1,) * (ndim - ndim_of(x)) + shape_of(x))

    return join(arrays, 0)


def _stand_ins(x: Any) -> Any:
    """The nested lists of ``block`` with each array replaced by its stand-in."""
    if isinstance(x, list):
        return [_stand_ins(e) for e in x]
    if isinstance(x, tuple):
        return x  # (which NumPy refuses, naming it)
    return stand_in(x)


def _nesting(x: Any) -> tuple[int, int]:
    """(list depth, largest ndim of the arrays) of ``block``'s argument."""
    if isinstance(x, list):
        inner = [_nesting(e) for e in x]
        return 1 + inner[0][0], max(n for _, n in inner)
    return 0, ndim_of(x)


def _matrix_transpose(x: Any) -> Any:
    return rules.swapaxes(x, -1, -2)


_piecewise: list[Any] = [np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero, np.flatnonzero,
              np.count_nonzero, np.isclose, np.allclose, np.array_equal, np.searchsorted,
              np.round, np.around, np.isneginf, np.isposinf, np.any, np.all, np.fix,
              np.zeros_like, np.ones_like, np.empty_like, np.iscomplexobj,
              np.isrealobj]  # fmt: skip
# (np.isscalar is no dispatched function: a BVar of a number answers it as the number does,
# through its __class__.)
for _f in _piecewise:
    rules.FUNCTIONS[_f] = constant(_f)
# NumPy 2's array-API names.
rules.FUNCTIONS.update({
    np.matrix_transpose: _matrix_transpose, np.linalg.matrix_transpose: _matrix_transpose,
    np.concat: concatenate, np.permute_dims: rules.FUNCTIONS[np.transpose],
})  # fmt: skip
if hasattr(np, "unstack"):  # (NumPy 2.1)
    rules.FUNCTIONS[np.unstack] = unstack
rules.PIECEWISE_CONSTANT_UFUNCS.add(np.floor_divide)
