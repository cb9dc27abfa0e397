"""Reductions and scans: prod, max/min, var/std, cumsum/cumprod, trace, logsumexp.

``max``/``min`` (and ``amax``/``amin``) split the gradient evenly among tied maxima:
``np.max([1.0, 3.0, 3.0])`` sends half of its gradient to each 3.0.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .. import rules
from ..rules import _no_out, all_finite, exact_shift, mean, prim, safe_quotient, shift_by_max, sum_
from ..tape import BVar, primal
from ._core import apply1, axes_of, kept, lift, shape_of
from ._shape import concatenate as _concat
from ._shape import diagonal, flip, moveaxis, ravel, reshape


def _count(shape: tuple[int, ...], axis: Any) -> int:
    return math.prod(shape[ax] for ax in axes_of(axis, len(shape)))


def _kept_args(g: Any, y: Any, a: Any, axis: Any, keepdims: bool) -> tuple[Any, Any]:
    s = shape_of(a)
    return kept(g, s, axis, keepdims), kept(y, s, axis, keepdims)


# --------------------------------------------------------------------------------------
# prod (correct with zeros in the input)
# --------------------------------------------------------------------------------------


def _exclusive_cumprod(x: Any) -> Any:
    """Products of the elements before each one along the last axis (1 for the first)."""
    ones = np.ones(shape_of(x)[:-1] + (1,), dtype=np.result_type(primal(x)))
    return np.cumprod(_concat([ones, x[..., :-1]], axis=-1), axis=-1)


def _prod_of_others(a: Any, axis: Any) -> Any:
    """For each element, the product of the other elements of its reduction group."""
    shape = shape_of(a)
    axes = axes_of(axis, len(shape))
    rest = tuple(i for i in range(len(shape)) if i not in axes)
    t = np.transpose(a, rest + axes)
    moved = shape_of(t)
    t = reshape(t, moved[: len(rest)] + (-1,))
    others = _exclusive_cumprod(t) * flip(_exclusive_cumprod(flip(t, -1)), -1)
    return np.transpose(reshape(others, moved), np.argsort(rest + axes))


def _prod_grad(g: Any, y: Any, a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
               keepdims: bool = False, initial: Any = None, where: Any = True,
               ) -> Any:  # fmt: skip  (where: True, the only value the forward takes)
    if type(a) is float:
        return g if initial is None else g * initial
    gk, yk = _kept_args(g, y, a, axis, keepdims)
    if np.all(primal(a) != 0):
        return gk * yk / a
    others = _prod_of_others(a, axis)
    return gk * (others if initial is None else others * initial)


prod = prim(_no_out(np.prod, "where"), _prod_grad, name="prod", nondiff=(1,))

# --------------------------------------------------------------------------------------
# max and min: ties share the gradient evenly.
# --------------------------------------------------------------------------------------


def _extremum_grad(g: Any, y: Any, a: Any, axis: Any = None, out: Any = None,
                   keepdims: bool = False, initial: Any = None,
                   where: Any = True) -> Any:  # fmt: skip
    gk, yk = _kept_args(g, y, a, axis, keepdims)
    hit = primal(a) == primal(yk)
    if where is not True:
        hit = hit & primal(where)
    count = np.sum(hit, axis=axes_of(axis, len(shape_of(a))), keepdims=True)
    # No hit where the constant ``initial`` won, or where the extremum is NaN: no element
    # gets anything (and 0 / 1, not 0 / 0, keeps NaN out of the other groups' gradient).
    share = hit / np.maximum(count, 1)
    if type(share) is np.ndarray:  # (float64: made the input's float dtype)
        share = rules._in_float_dtype(share, primal(a))
    return gk * share


amax = prim(_no_out(np.max), _extremum_grad, name="max", nondiff=(1,))
amin = prim(_no_out(np.min), _extremum_grad, name="min", nondiff=(1,))

# --------------------------------------------------------------------------------------
# var and std
# --------------------------------------------------------------------------------------


def _centred(a: Any, axis: Any) -> Any:
    return a - np.mean(a, axis=axis, keepdims=True)


def _var_grad(g: Any, y: Any, a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
              ddof: float = 0, keepdims: bool = False, *, correction: float | None = None,
              where: Any = True, mean: Any = None) -> Any:  # fmt: skip  (both only as given)
    gk = kept(g, shape_of(a), axis, keepdims)
    ddof = ddof if correction is None else correction
    # (A NumPy division: with ddof = n the variance is inf or NaN, and so is its gradient.)
    # (A Python float factor: a NumPy float64 one would promote a float32 gradient.)
    factor = float(np.float64(2.0) / (_count(shape_of(a), axis) - ddof))
    return gk * factor * _centred(a, axis)


def _std_grad(g: Any, y: Any, a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
              ddof: float = 0, keepdims: bool = False, *, correction: float | None = None,
              where: Any = True, mean: Any = None) -> Any:  # fmt: skip  (both only as given)
    gk, yk = _kept_args(g, y, a, axis, keepdims)
    ddof = ddof if correction is None else correction
    # At std == 0 every centred value is 0 as well: the subgradient 0, never NaN.
    return gk * safe_quotient(_centred(a, axis), yk * (_count(shape_of(a), axis) - ddof))


var = prim(_no_out(np.var, "where", "mean"), _var_grad, name="var", nondiff=(1,))
std = prim(_no_out(np.std, "where", "mean"), _std_grad, name="std", nondiff=(1,))

# --------------------------------------------------------------------------------------
# cumsum and cumprod
# --------------------------------------------------------------------------------------


def _cumsum_grad(g: Any, y: Any, a: Any, axis: Any = None, *_: Any, **__: Any) -> Any:
    if axis is None or not shape_of(a):  # (a 0-d input's axis 0 scans it as one element)
        return reshape(flip(np.cumsum(flip(g, 0)), 0), shape_of(a))
    return flip(np.cumsum(flip(g, axis), axis=axis), axis)


def _cumprod_grad_last(g: Any, y: Any, a: Any) -> Any:
    """The cumprod gradient along the last axis (O(n^2) where the input has zeros)."""
    if np.all(primal(a) != 0):
        return flip(np.cumsum(flip(g * y, -1), axis=-1), -1) / a
    n = shape_of(a)[-1]
    # c[..., i, j] = product of a[..., k] for k <= j, k != i
    c = np.cumprod(np.where(np.eye(n, dtype=bool), 1.0, a[..., None, :]), axis=-1)
    return np.sum(c * np.triu(np.ones((n, n))) * g[..., None, :], axis=-1)


def _cumprod_grad(g: Any, y: Any, a: Any, axis: Any = None, *_: Any, **__: Any) -> Any:
    if axis is None or not shape_of(a):
        return reshape(_cumprod_grad_last(g, y, ravel(a)), shape_of(a))
    g, y, a_last = (moveaxis(x, axis, -1) for x in (g, y, a))
    return moveaxis(_cumprod_grad_last(g, y, a_last), -1, axis)


cumsum = prim(_no_out(np.cumsum), _cumsum_grad, name="cumsum", nondiff=(1,))
cumprod = prim(_no_out(np.cumprod), _cumprod_grad, name="cumprod", nondiff=(1,))

# --------------------------------------------------------------------------------------
# logsumexp
# --------------------------------------------------------------------------------------


def _logsumexp(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    if isinstance(a, BVar):  # a BVar of an outer tape: record there, with the safe rule
        return logsumexp_p(a, axis=axis, keepdims=keepdims)
    # (Array methods and all_finite: a third of the overhead of np.max, np.sum, np.all.)
    a = np.asarray(a)
    m = a.max(axis=axis, keepdims=True, initial=-np.inf)  # (-inf over an empty axis)
    if all_finite(m):
        s = np.exp(a - m).sum(axis=axis, keepdims=keepdims)
        y = np.log(s)  # s >= 1
    else:  # rows of -inf (or +inf): shift by 0 there, and log(0) = -inf without a warning
        m = np.where(np.isfinite(m), m, 0.0)
        s = np.exp(a - m).sum(axis=axis, keepdims=keepdims)
        with np.errstate(divide="ignore"):
            y = np.log(s)
    return y + (m if keepdims else m.reshape(np.shape(s)))


def _logsumexp_grad(g: Any, y: Any, a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    gk, yk = _kept_args(g, y, a, axis, keepdims)
    py = primal(yk)
    # float64 with every |y| <= 4096: exp(a - y) is accurate, though y is rounded.
    if type(py) is np.ndarray and exact_shift(py):
        return gk * np.exp(a - yk)
    # Otherwise the softmax of a shifted by its (constant) maximum, which needs no y; a
    # row of -inf is uniform there, and +inf entries share 1 (see shift_by_max).
    m = np.max(primal(a), axis=axis, keepdims=True, initial=-np.inf)
    e = np.exp(shift_by_max(a, m))
    return gk * (e / np.sum(e, axis=axis, keepdims=True))


logsumexp_p = prim(_logsumexp, _logsumexp_grad, name="logsumexp", nondiff=(1,))


def logsumexp(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``log(sum(exp(a), axis))``, computed stably; works on arrays and BVars.

    Where every input along ``axis`` is ``-inf`` the value is ``-inf`` and the gradient
    is uniform (``1/n`` each), never NaN.

    Args:
        a: values.
        axis: axis or axes to reduce (all by default).
        keepdims: keep the reduced axes with size 1.

    >>> import numpy as np, hetgrad, hetgrad.numpy as hnp
    >>> float(hnp.logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    >>> hetgrad.grad_bp(hnp.logsumexp, np.array([-np.inf, -np.inf]))
    array([0.5, 0.5])
    """
    if type(a) is np.ndarray:
        return _logsumexp(a, axis, keepdims)
    return logsumexp_p(a, axis=axis, keepdims=keepdims)


@lift(np.trace)
def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: Any = None) -> Any:  # fmt: skip
    if out is not None:
        raise NotImplementedError("numpy.trace with out= cannot be recorded")
    return np.sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


@lift(np.average)
def average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False, *,
            keepdims: bool = False) -> Any:  # fmt: skip
    """``numpy.average``: the weighted mean ``sum(a * w) / sum(w)`` (weights may be BVars)."""
    if weights is None:
        avg = np.mean(a, axis=axis, keepdims=keepdims)
        scale = _count(shape_of(a), axis) if shape_of(a) else 1
        if not returned:
            return avg
        return avg, np.full(shape_of(avg), float(scale), dtype=np.result_type(primal(avg)))
    shape = shape_of(a)
    if shape_of(weights) != shape:
        # Weights along the axes given (in that order), broadcast over the others.
        given = () if axis is None else (axis,) if np.ndim(axis) == 0 else tuple(axis)
        axes = tuple(int(ax) % len(shape) for ax in given)  # (in the order given, as NumPy)
        if shape_of(weights) != tuple(shape[ax] for ax in axes) or not axes:
            raise ValueError(
                "numpy.average: weights of a shape other than a's must have the shape of a "
                "along the axis (or axes) given"
            )
        k = len(axes)
        weights = reshape(weights, shape_of(weights) + (1,) * (len(shape) - k))
        weights = np.broadcast_to(moveaxis(weights, tuple(range(k)), axes), shape)
    scale = np.sum(weights, axis=axis, keepdims=keepdims)
    avg = np.sum(a * weights, axis=axis, keepdims=keepdims) / scale
    return (avg, scale) if returned else avg


@lift(np.nansum)
def nansum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
           **kwargs: Any) -> Any:  # fmt: skip
    """``numpy.nansum``: NaNs count as zero and get a zero gradient."""
    if out is not None:
        raise NotImplementedError("numpy.nansum with out= cannot be recorded")
    clean = np.where(np.isnan(primal(a)), 0.0, a)
    return np.sum(clean, axis=axis, dtype=dtype, keepdims=keepdims, **kwargs)


@lift(np.nanmean)
def nanmean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, **kwargs: Any) -> Any:  # fmt: skip
    """``numpy.nanmean``: the mean of the values that are not NaN."""
    if out is not None:
        raise NotImplementedError("numpy.nanmean with out= cannot be recorded")
    # As NumPy computes it (the sum of the non-NaN values over their count), so the value
    # is NumPy's to the last bit.
    present = ~np.isnan(primal(a))
    total = np.sum(np.where(present, a, 0.0), axis=axis, dtype=dtype, keepdims=keepdims,
                   **kwargs)  # fmt: skip
    count = np.sum(present, axis=axis, dtype=np.intp, keepdims=keepdims, **kwargs)
    count = np.asarray(count, dtype=np.result_type(primal(total)))
    if np.all(count):
        return total / count
    # An all-NaN slice: NaN and NumPy's warning, and no 0/0 in the reverse pass either.
    warnings.warn("Mean of empty slice", RuntimeWarning, stacklevel=3)
    return np.where(count == 0, np.nan, total / np.where(count == 0, 1.0, count))


rules.FUNCTIONS.update({
    np.sum: apply1(sum_), np.mean: apply1(mean), np.prod: apply1(prod),
    np.max: apply1(amax), np.amax: apply1(amax), np.min: apply1(amin),
    np.amin: apply1(amin), np.var: apply1(var), np.std: apply1(std),
    np.cumsum: apply1(cumsum), np.cumprod: apply1(cumprod),
})  # fmt: skip
