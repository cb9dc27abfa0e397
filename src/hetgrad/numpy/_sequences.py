"""Functions of sampled sequences: convolution and correlation, interpolation, numerical
integration and differentiation, and polynomials.

``convolve`` and ``correlate`` are one primitive, the full convolution, whose gradient for
each input is a correlation of the cotangent with the other input (NumPy's own, O(n m) in
C, and lifted again for a second derivative); their ``'same'`` and ``'valid'`` modes are
slices of it.  The others are compositions of lifted operations (indexing, ``diff``,
``cumprod``, ``concatenate``, ``where``, ``lstsq``), so their gradients come for free.

``interp`` is piecewise linear: its gradient in ``x`` is the slope of the segment holding
``x`` (at a knot, the segment to its right; at the last knot, the last segment), and 0
outside ``xp``'s range, where the constants ``left`` and ``right`` apply.

>>> import numpy as np, hetgrad
>>> hetgrad.grad_bp(lambda a: np.sum(np.convolve(a, [1.0, 2.0])), np.array([1.0, 1.0, 1.0]))
array([3., 3., 3.])
>>> float(hetgrad.grad_bp(lambda x: np.interp(x, [0.0, 1.0, 3.0], [0.0, 2.0, 3.0]), 2.0))
0.5
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..rules import output_unread, prim, safe_quotient
from ..tape import BVar, primal
from ._core import lift, ndim_of, shape_of
from ._shape import concatenate, moveaxis, ravel

_AxisError = np.exceptions.AxisError
_RankWarning = np.exceptions.RankWarning


def _lift_present(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``lift`` for those of the NumPy functions ``names`` that the installed NumPy has."""
    return lift(*[getattr(np, name) for name in names if hasattr(np, name)])


def _array(x: Any) -> Any:
    """``x`` itself if it is a BVar, else as a NumPy array."""
    return x if isinstance(x, BVar) else np.asarray(x)


def _dtype(x: Any) -> np.dtype[Any]:
    return np.result_type(primal(x))


def _cast(x: Any, dtype: Any) -> Any:
    """``x`` in ``dtype`` (a BVar cast keeps its gradient)."""
    return x if _dtype(x) == dtype else x.astype(dtype)


def _real(name: str, *xs: Any) -> None:
    if any(np.iscomplexobj(primal(x)) for x in xs):
        raise NotImplementedError(f"numpy.{name} of complex values is not differentiable in "
                                  "hetgrad")  # fmt: skip


def _along(axis: int, index: Any) -> tuple[Any, ...]:
    """A key applying ``index`` along ``axis`` (a negative axis counts from the end)."""
    if axis < 0:
        return (Ellipsis, index) + (slice(None),) * (-axis - 1)
    return (slice(None),) * axis + (index,)


# --------------------------------------------------------------------------------------
# convolve and correlate
# --------------------------------------------------------------------------------------


def _correlated(g: Any, other: Any, like: Any) -> Any:
    """The gradient of a full convolution for its input ``like``: the cotangent correlated
    with the other input where they overlap fully."""
    return np.reshape(np.correlate(g, np.atleast_1d(other), "valid"), shape_of(like))


_full_convolution = prim(np.convolve, lambda g, y, a, v: _correlated(g, v, a),
                        lambda g, y, a, v: _correlated(g, a, v), name="convolve")  # fmt: skip
output_unread(_full_convolution)

_MODES = {"valid": "valid", "same": "same", "full": "full", 0: "valid", 1: "same", 2: "full"}


def _mode(mode: Any) -> str:
    name = _MODES.get(mode)
    if name is None:
        raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")
    return name


def _window(full: Any, mode: str, n_a: int, n_v: int, centred: int) -> Any:
    """The part of a full convolution ``mode`` keeps; ``'same'`` starts at ``centred``."""
    short, long = sorted((n_a, n_v))
    if mode == "valid":
        return full[short - 1 : long]
    if mode == "same":
        return full[centred : centred + long]
    return full


def _length(x: Any) -> int:
    return (shape_of(x) or (1,))[0]  # (a 0-d input is read as one element)


@lift(np.convolve)
def convolve(a: Any, v: Any, mode: Any = "full") -> Any:
    """``numpy.convolve``: discrete linear convolution of two 1-D sequences."""
    mode = _mode(mode)
    _real("convolve", a, v)
    full = _full_convolution(_array(a), _array(v))
    n_a, n_v = _length(a), _length(v)
    return _window(full, mode, n_a, n_v, (min(n_a, n_v) - 1) // 2)


@lift(np.correlate)
def correlate(a: Any, v: Any, mode: Any = "valid") -> Any:
    """``numpy.correlate``: cross-correlation of two 1-D sequences, ``convolve(a, v[::-1])``."""
    mode = _mode(mode)
    _real("correlate", a, v)
    if ndim_of(a) == 0 or ndim_of(v) == 0:  # (unlike convolve, NumPy's takes no scalars)
        raise ValueError("object of too small depth for desired array")
    full = _full_convolution(_array(a), np.flip(_array(v)))
    n_a, n_v = _length(a), _length(v)
    # NumPy swaps a shorter ``a`` with ``v`` and reverses the result: 'same' then starts
    # one later when the shorter length is even.
    short = min(n_a, n_v)
    return _window(full, mode, n_a, n_v, (short - 1) // 2 if n_a >= n_v else short // 2)


# --------------------------------------------------------------------------------------
# interp
# --------------------------------------------------------------------------------------


def _wrapped(x: Any, xp: Any, fp: Any, period: Any) -> tuple[Any, Any, Any]:
    """``x`` and the samples reduced modulo ``period``, the samples sorted and extended by
    one on each side from the neighbouring periods (how NumPy reads ``period``)."""
    if primal(period) == 0:
        raise ValueError("period must be a non-zero value")
    period = abs(period)
    x, xp = x % period, xp % period
    order = np.argsort(primal(xp))
    xp, fp = xp[order], fp[order]
    xp = concatenate([xp[-1:] - period, xp, xp[:1] + period])
    fp = concatenate([fp[-1:], fp, fp[:1]])
    return x, xp, fp


def _linear(x: Any, xp: Any, fp: Any) -> Any:
    """The line through the segment of ``(xp, fp)`` that holds each ``x`` (the first and
    the last segment beyond the ends), at ``x``."""
    xv, xpv = primal(x), primal(xp)
    j = np.clip(np.searchsorted(xpv, xv, side="right") - 1, 0, len(xpv) - 2)
    # (0 for a segment of zero width: only reached at a repeated last knot, where x - xp[k]
    # is 0 and NumPy gives fp[-1].)
    slope = safe_quotient(fp[j + 1] - fp[j], xp[j + 1] - xp[j])
    k = j + (xv == xpv[-1])  # the line's anchor: at the last knot, that knot (fp[-1] exactly)
    y = fp[k] + slope * (x - xp[k])
    if np.isnan(primal(y)).any():  # (rare: an infinite sample, or a NaN)
        y = _numpy_where_nan(y, x, xp, fp, j, k, slope)
    return y


def _numpy_where_nan(y: Any, x: Any, xp: Any, fp: Any, j: Any, k: Any, slope: Any) -> Any:
    """``y`` with NumPy's value where the line gave NaN (``inf * 0`` or ``inf - inf`` next
    to an infinite sample): the sample itself where ``x`` is a knot, else the line from
    the segment's other end, else the sample where both ends hold the same value (NaN
    where ``x`` is NaN)."""
    xv, xpv, fpv = primal(x), primal(xp), primal(fp)
    nan = np.isnan(primal(y))
    y = np.where(nan & (xv == xpv[k]), fp[k], y)
    nan = np.isnan(primal(y))
    y = np.where(nan, fp[j + 1] + slope * (x - xp[j + 1]), y)
    same = (fpv[j] == fpv[j + 1]) & ~np.isnan(xv)  # (a NaN x stays NaN)
    return np.where(np.isnan(primal(y)) & same, fp[j], y)


@lift(np.interp)
def interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None,
           period: Any = None) -> Any:  # fmt: skip
    """``numpy.interp``: piecewise linear interpolation of the samples ``(xp, fp)`` at ``x``
    (``xp`` increasing), in float64; gradients in ``x``, ``xp``, ``fp``, ``left`` and
    ``right`` (and ``period``)."""
    _real("interp", x, xp, fp, left, right)
    x, xp, fp = (_cast(_array(v), np.float64) for v in (x, xp, fp))
    if ndim_of(xp) != 1 or ndim_of(fp) != 1:
        raise ValueError("numpy.interp: xp and fp must be 1-D")
    if shape_of(xp) != shape_of(fp):
        raise ValueError("fp and xp are not of the same length.")
    if shape_of(xp) == (0,):
        raise ValueError("array of sample points is empty")
    if period is not None:  # (left and right are ignored, as NumPy does)
        x, xp, fp = _wrapped(x, xp, fp, period)
        left = right = None
    if ndim_of(left) or ndim_of(right):
        raise TypeError("numpy.interp: left and right must be scalars")
    xv, xpv = primal(x), primal(xp)
    inside = fp[0] if len(xpv) == 1 else _linear(x, xp, fp)
    above = np.where(xv > xpv[-1], fp[-1] if right is None else right, inside)
    y = np.where(xv < xpv[0], fp[0] if left is None else left, above)
    return y if ndim_of(y) else y[()]  # (a scalar x: a NumPy scalar, as NumPy gives)


# --------------------------------------------------------------------------------------
# trapezoid, gradient, ediff1d, cumulative_sum and cumulative_prod
# --------------------------------------------------------------------------------------


@_lift_present("trapezoid", "trapz")
def trapezoid(y: Any, x: Any = None, dx: Any = 1.0, axis: int = -1) -> Any:
    """``numpy.trapezoid`` (and ``numpy.trapz`` where NumPy has it): the trapezoidal rule
    along ``axis``, with sample points ``x`` or the spacing ``dx``."""
    y = _array(y)
    if x is None:
        d = dx
    elif ndim_of(x) == 1:  # the points along ``axis``
        d = np.diff(_array(x))
        shape = [1] * ndim_of(y)
        shape[axis] = shape_of(d)[0]
        d = np.reshape(d, tuple(shape))
    else:
        d = np.diff(_array(x), axis=axis)
    return np.sum(d * (y[_along(axis, slice(1, None))] + y[_along(axis, slice(None, -1))])
                  / 2.0, axis=axis)  # fmt: skip


def _axes(axis: Any, nd: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a sequence) as non-negative axes, in the order given."""
    if axis is None:
        return tuple(range(nd))
    given = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    for ax in given:
        if not -nd <= ax < nd:
            raise _AxisError(ax, nd)
    axes = tuple(int(ax) % nd for ax in given)
    if len(set(axes)) != len(axes):
        raise ValueError("repeated axis")
    return axes


def _spacing(h: Any, n: int) -> Any:
    """A spacing argument of np.gradient for an axis of ``n`` samples: a scalar, or the
    differences of its coordinates (one scalar where they are all equal and constant)."""
    if ndim_of(h) == 0:
        return h
    if ndim_of(h) != 1:
        raise ValueError("distances must be either scalars or 1d")
    if shape_of(h)[0] != n:
        raise ValueError("when 1d, distances must match the length of the corresponding "
                         "dimension")  # fmt: skip
    d = np.diff(_array(h))
    if isinstance(d, BVar):  # the general formulas, which have the gradient in each point
        return d
    d = d.astype(np.float64) if d.dtype.kind in "iub" else d
    return d[0] if np.all(d == d[0]) else d


def _three_point(f0: Any, f1: Any, f2: Any, h1: Any, h2: Any, at: int) -> Any:
    """The slope at sample ``at`` (0, 1 or 2) of the parabola through the samples ``f0``,
    ``f1``, ``f2`` (spaced ``h1`` and ``h2``): its Lagrange form differentiated."""
    s = h1 + h2
    if at == 0:
        return -(2.0 * h1 + h2) / (h1 * s) * f0 + s / (h1 * h2) * f1 - h1 / (h2 * s) * f2
    if at == 1:
        return -h2 / (h1 * s) * f0 + (h2 - h1) / (h1 * h2) * f1 + h1 / (h2 * s) * f2
    return h2 / (h1 * s) * f0 - s / (h1 * h2) * f1 + (2.0 * h2 + h1) / (h2 * s) * f2


def _slopes_last(f: Any, h: Any, edge_order: int) -> list[Any]:
    """np.gradient along the last axis of ``f``, in three parts: the first sample, the
    interior (central differences) and the last sample."""
    if ndim_of(h) == 0:  # a uniform spacing
        inner = (f[..., 2:] - f[..., :-2]) / (2.0 * h)
        if edge_order == 1:
            return [(f[..., 1] - f[..., 0]) / h, inner, (f[..., -1] - f[..., -2]) / h]
        first = -1.5 / h * f[..., 0] + 2.0 / h * f[..., 1] - 0.5 / h * f[..., 2]
        last = 0.5 / h * f[..., -3] - 2.0 / h * f[..., -2] + 1.5 / h * f[..., -1]
        return [first, inner, last]
    inner = _three_point(f[..., :-2], f[..., 1:-1], f[..., 2:], h[:-1], h[1:], 1)
    if edge_order == 1:
        return [(f[..., 1] - f[..., 0]) / h[0], inner, (f[..., -1] - f[..., -2]) / h[-1]]
    first = _three_point(f[..., 0], f[..., 1], f[..., 2], h[0], h[1], 0)
    last = _three_point(f[..., -3], f[..., -2], f[..., -1], h[-2], h[-1], 2)
    return [first, inner, last]


@lift(np.gradient)
def gradient(f: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> Any:
    """``numpy.gradient``: second-order central differences inside, first- or second-order
    one-sided ones at the ends; spacings as scalars or coordinates (BVars too)."""
    f = _array(f)
    axes = _axes(axis, ndim_of(f))
    if not varargs:
        spacings: list[Any] = [1.0] * len(axes)
    elif len(varargs) == 1 and ndim_of(varargs[0]) == 0:
        spacings = [varargs[0]] * len(axes)
    elif len(varargs) == len(axes):
        spacings = list(varargs)
    else:
        raise TypeError("invalid number of arguments")
    if edge_order > 2:
        raise ValueError("'edge_order' greater than 2 not supported")
    dtype = _dtype(f) if _dtype(f).kind == "f" else np.dtype(np.float64)
    f = _cast(f, dtype)
    out = []
    for ax, h in zip(axes, spacings):
        n = shape_of(f)[ax]
        if n < edge_order + 1:
            raise ValueError("Shape of array too small to calculate a numerical gradient, at "
                             "least (edge_order + 1) elements are required.")  # fmt: skip
        first, inner, last = _slopes_last(moveaxis(f, ax, -1), _spacing(h, n), edge_order)
        d = concatenate([first[..., None], inner, last[..., None]], axis=-1)
        out.append(_cast(moveaxis(d, -1, ax), dtype))
    return out[0] if len(out) == 1 else tuple(out)


@lift(np.ediff1d)
def ediff1d(ary: Any, to_end: Any = None, to_begin: Any = None) -> Any:
    """``numpy.ediff1d``: the differences of the flattened ``ary``, with ``to_begin`` and
    ``to_end`` (flattened, in ``ary``'s dtype) around them."""
    ary = ravel(_array(ary))
    dtype = _dtype(ary)
    parts = [ary[1:] - ary[:-1]]
    for name, extra, at in (("to_begin", to_begin, 0), ("to_end", to_end, 1)):
        if extra is not None:
            extra = ravel(_array(extra))
            if not np.can_cast(_dtype(extra), dtype, "same_kind"):
                raise TypeError(f"dtype of `{name}` must be compatible with input `ary` under "
                                "the `same_kind` rule.")  # fmt: skip
            parts.insert(len(parts) * at, _cast(extra, dtype))
    return concatenate(parts) if len(parts) > 1 else parts[0]


def _cumulative(scan: Any, identity: float, name: str, x: Any, axis: Any, dtype: Any,
                out: Any, include_initial: bool) -> Any:  # fmt: skip
    """``scan`` (np.cumsum or np.cumprod) as the Array API's cumulative functions read it."""
    if out is not None:
        raise NotImplementedError(f"numpy.{name} with out= cannot be recorded")
    x = _array(x)
    if ndim_of(x) == 0:
        x = np.reshape(x, (1,))
    if axis is None:
        if ndim_of(x) > 1:
            raise ValueError("For arrays which have more than one dimension ``axis`` "
                             "argument is required.")  # fmt: skip
        axis = 0
    y = scan(x, axis=axis, dtype=dtype)
    if not include_initial:
        return y
    shape = list(shape_of(y))
    shape[axis] = 1
    return concatenate([np.full(shape, identity, dtype=_dtype(y)), y], axis=axis)


@_lift_present("cumulative_sum")
def cumulative_sum(x: Any, /, *, axis: Any = None, dtype: Any = None, out: Any = None,
                   include_initial: bool = False) -> Any:  # fmt: skip
    """``numpy.cumulative_sum`` (NumPy 2.1+): ``cumsum``, with a first 0 if
    ``include_initial``."""
    return _cumulative(np.cumsum, 0.0, "cumulative_sum", x, axis, dtype, out, include_initial)


@_lift_present("cumulative_prod")
def cumulative_prod(x: Any, /, *, axis: Any = None, dtype: Any = None, out: Any = None,
                    include_initial: bool = False) -> Any:  # fmt: skip
    """``numpy.cumulative_prod`` (NumPy 2.1+): ``cumprod``, with a first 1 if
    ``include_initial``."""
    return _cumulative(np.cumprod, 1.0, "cumulative_prod", x, axis, dtype, out,
                       include_initial)  # fmt: skip


# --------------------------------------------------------------------------------------
# polynomials (coefficients from the highest power down, as np.polyval reads them)
# --------------------------------------------------------------------------------------


@lift(np.polyval)
def polyval(p: Any, x: Any) -> Any:
    """``numpy.polyval``: the polynomial ``p`` at ``x``, by Horner's rule."""
    if isinstance(x, np.poly1d):
        raise NotImplementedError("numpy.polyval of BVar coefficients at a poly1d is not "
                                  "differentiable in hetgrad")  # fmt: skip
    p, x = _array(p), _array(x)
    if ndim_of(p) == 0:
        raise TypeError("iteration over a 0-d array")
    y = np.zeros(shape_of(x), dtype=_dtype(x))  # (NumPy's start: x's shape and dtype)
    for k in range(shape_of(p)[0]):
        y = y * x + p[k]
    return y


@lift(np.vander)
def vander(x: Any, N: Any = None, increasing: bool = False) -> Any:  # noqa: N803  (NumPy's)
    """``numpy.vander``: the powers of ``x`` as columns (decreasing unless ``increasing``),
    each the product of the one before with ``x``."""
    x = _array(x)
    if ndim_of(x) != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    m = shape_of(x)[0]
    n = m if N is None else operator.index(N)
    dtype = np.promote_types(_dtype(x), int)
    x = _cast(x, dtype)
    powers = np.cumprod(np.broadcast_to(x[:, None], (m, max(n - 1, 0))), axis=1)
    v = concatenate([np.ones((m, min(n, 1)), dtype), powers], axis=1)
    return v if increasing else np.flip(v, axis=1)


@lift(np.polyfit)
def polyfit(x: Any, y: Any, deg: int, rcond: Any = None, full: bool = False, w: Any = None,
            cov: Any = False) -> Any:  # fmt: skip
    """``numpy.polyfit``: least-squares polynomial coefficients, through the lifted
    ``lstsq`` (gradients in ``x``, ``y`` and ``w``; ``cov=`` is not supported)."""
    if cov is not False:
        raise NotImplementedError("numpy.polyfit with cov= is not differentiable in hetgrad")
    order = int(deg) + 1
    x, y = _array(x) + 0.0, _array(y) + 0.0
    if deg < 0:
        raise ValueError("expected deg >= 0")
    if ndim_of(x) != 1:
        raise TypeError("expected 1D vector for x")
    if shape_of(x) == (0,):
        raise TypeError("expected non-empty vector for x")
    if not 1 <= ndim_of(y) <= 2:
        raise TypeError("expected 1D or 2D array for y")
    if shape_of(x)[0] != shape_of(y)[0]:
        raise TypeError("expected x and y to have same length")
    if rcond is None:
        rcond = shape_of(x)[0] * np.finfo(_dtype(x)).eps
    lhs, rhs = vander(x, order), y
    if w is not None:
        w = _array(w) + 0.0
        if ndim_of(w) != 1:
            raise TypeError("expected a 1-d array for weights")
        if shape_of(w)[0] != shape_of(y)[0]:
            raise TypeError("expected w and y to have the same length")
        lhs = lhs * w[:, None]
        rhs = rhs * (w if ndim_of(y) == 1 else w[:, None])
    scale = np.sqrt(np.sum(lhs * lhs, axis=0))  # (columns scaled to norm 1: conditioning)
    c, resids, rank, s = np.linalg.lstsq(lhs / scale, rhs, rcond)
    c = c / (scale if ndim_of(c) == 1 else scale[:, None])
    if full:
        return c, resids, rank, s, rcond
    if rank != order:
        warnings.warn("Polyfit may be poorly conditioned", _RankWarning, stacklevel=3)
    return c


@lift(np.polyder)
def polyder(p: Any, m: int = 1) -> Any:
    """``numpy.polyder``: the coefficients of the ``m``-th derivative of ``p``."""
    m = int(m)
    if m < 0:
        raise ValueError("Order of derivative must be positive (see polyint)")
    p = _array(p)
    if ndim_of(p) == 0:
        raise TypeError("len() of unsized object")  # (NumPy's error for a 0-d p)
    for _ in range(m):
        n = shape_of(p)[0] - 1
        p = p[:-1] * np.arange(n, 0, -1)
    return p


@lift(np.polyint)
def polyint(p: Any, m: int = 1, k: Any = None) -> Any:
    """``numpy.polyint``: the coefficients of the ``m``-th antiderivative of ``p``, with
    the integration constants ``k`` (a scalar for all, or one per integration)."""
    m = int(m)
    if m < 0:
        raise ValueError("Order of integral must be positive (see polyder)")
    k = np.zeros(m) if k is None else np.atleast_1d(_array(k))
    if shape_of(k)[0] == 1 and m > 1:
        k = k[0] * np.ones(m)
    if shape_of(k)[0] < m:
        raise ValueError("k must be a scalar or a rank-1 array of length 1 or >m.")
    p = _array(p)
    if m and ndim_of(p) == 0:
        raise TypeError("len() of unsized object")  # (NumPy's error for a 0-d p)
    for i in range(m):
        p = concatenate([p / np.arange(shape_of(p)[0], 0, -1), k[i : i + 1]])
    return p
