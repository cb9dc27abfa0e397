"""Order statistics, NaN-ignoring reductions and covariances: median, percentile, quantile
and their ``nan`` forms; nanmax, nanmin, nanprod, nanvar, nanstd, nancumsum, nancumprod;
ptp, cov and corrcoef.

An order statistic is a sort followed by a linear interpolation between two neighbouring
sorted values, so the gradient of a quantile goes to the one or two elements it reads,
weighted as it interpolates them.  Tied values share: the gradient reaching a sorted
position is split evenly among all the elements equal to its value, whichever of them the
sort put there (as ``max`` splits among tied maxima), so ``np.median([1.0, 2.0, 2.0])``
sends half of its gradient to each 2.0.  The methods are ``linear`` (the default),
``lower``, ``higher``, ``nearest``, ``midpoint``, ``weibull``, ``hazen``,
``median_unbiased``, ``normal_unbiased`` and ``interpolated_inverted_cdf``; the other three
(and ``weights=``) raise ``NotImplementedError``.  The levels ``q`` are constants: a BVar
``q`` raises ``TypeError`` rather than lose its gradient silently.  ``overwrite_input`` is
accepted and has no effect (a BVar is never written to).

The ``nan`` functions skip NaNs, which get a zero gradient.  A slice holding nothing but
NaNs gives NaN, with NumPy's RuntimeWarning, and a zero gradient; so does a ``nanvar`` or
``nanstd`` slice with ``ddof`` at least its count.  ``nanmax``/``nanmin`` and ``ptp`` split
the gradient evenly among ties, as ``max`` does.  ``cov`` and ``corrcoef`` are
compositions (centring and a matrix product), differentiable in every data argument and
in ``aweights``; ``fweights`` are whole numbers, so constants.

>>> import numpy as np, hetgrad
>>> hetgrad.grad_bp(np.median, np.array([2.0, 1.0, 2.0]))
array([0.5, 0. , 0.5])
>>> hetgrad.grad_bp(lambda a: np.percentile(a, 25), np.array([4.0, 1.0, 3.0, 2.0]))
array([0.  , 0.25, 0.  , 0.75])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..rules import prim, safe_quotient
from ..tape import BVar, primal
from ._core import kept, lift, ndim_of, shape_of
from ._reductions import _extremum_grad, average, nanmean
from ._shape import reshape

_normalize_axes: Callable[..., tuple[int, ...]] = np.lib.array_utils.normalize_axis_tuple

# Hyndman and Fan's (alpha, beta) of the continuous methods, as NumPy writes them.
_CONTINUOUS = {"weibull": (0, 0), "hazen": (0.5, 0.5), "median_unbiased": (1 / 3.0, 1 / 3.0),
               "normal_unbiased": (3 / 8.0, 3 / 8.0), "interpolated_inverted_cdf": (0, 1)}
_ROUNDED: dict[str, Any] = {"lower": np.floor, "higher": np.ceil, "nearest": np.around}
_METHODS = {"linear", "midpoint", *_CONTINUOUS, *_ROUNDED}
_CDF_METHODS = {"inverted_cdf", "averaged_inverted_cdf", "closest_observation"}


def _refuse(name: str, **unsupported: Any) -> None:
    """Raise for any keyword given a value (``out=``, ``weights=``, ...) with no rule."""
    for key, value in unsupported.items():
        if value is not None:
            verb = "cannot be recorded" if key == "out" else "is not differentiable in hetgrad"
            raise NotImplementedError(f"numpy.{name} with {key}= {verb}")


# --------------------------------------------------------------------------------------
# Ties: a sorted position's gradient shared among the elements of equal value.
# --------------------------------------------------------------------------------------


def _tie_mean(x: Any, keys: np.ndarray) -> Any:
    """``x`` with each run of equal ``keys`` (sorted along axis 0) replaced by its mean: a
    symmetric linear map, so its own adjoint."""
    if isinstance(x, BVar):  # a gradient being differentiated: record the map
        return _tie_mean_p(x, keys)
    starts = np.ones(keys.shape, dtype=bool)
    starts[1:] = keys[1:] != keys[:-1]
    if starts.all():
        return x
    cols = keys.size // keys.shape[0]
    run = np.cumsum(starts, axis=0).reshape(-1, cols) - 1
    ids = (run * cols + np.arange(cols)).ravel()
    sums = np.bincount(ids, weights=np.ravel(x), minlength=keys.size)
    counts = np.bincount(ids, minlength=keys.size)
    return (sums[ids] / counts[ids]).reshape(keys.shape).astype(np.result_type(x))


def _share_ties(s: Any, keys: np.ndarray) -> Any:
    """``s`` itself, recorded so that its gradient is shared among tied ``keys`` (at every
    level of nesting: a higher derivative differentiates the sort again)."""
    return _share_ties_p(s, keys) if isinstance(s, BVar) else s


_tie_mean_p = prim(_tie_mean, lambda g, y, x, keys: _tie_mean(g, keys), name="tie_mean",
                   nondiff=(1,))  # fmt: skip
_share_ties_p = prim(_share_ties, lambda g, y, s, keys: _tie_mean(g, keys), name="share_ties",
                     nondiff=(1,))  # fmt: skip

# --------------------------------------------------------------------------------------
# median, percentile, quantile and their nan forms
# --------------------------------------------------------------------------------------


def _columns(a: Any, axis: Any) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
    """``a`` with its reduced axes flattened into axis 0, the others after it in order;
    and the shape of a reduction over them, without and with ``keepdims``."""
    shape = shape_of(a)
    nd = len(shape)
    axes = tuple(sorted(_normalize_axes(tuple(range(nd)) if axis is None else axis, nd)))
    rest = tuple(i for i in range(nd) if i not in axes)
    if axes + rest != tuple(range(nd)):
        a = np.transpose(a, axes + rest)
    out = tuple(shape[i] for i in rest)
    a = reshape(a, (math.prod(shape[i] for i in axes), *out))
    return a, out, tuple(1 if i in axes else n for i, n in enumerate(shape))


def _sorted(t: Any) -> Any:
    """``t`` sorted along axis 0, NaNs last, its ties sharing their gradients."""
    s = np.take_along_axis(t, np.argsort(primal(t), axis=0), axis=0)
    return _share_ties(s, primal(s))


def _at(s: Any, index: Any) -> Any:
    """``s[index[k, ...], ...]`` along axis 0."""
    return np.take_along_axis(s, np.asarray(index, dtype=np.intp), axis=0)


def _quantiles(s: Any, count: np.ndarray, q: np.ndarray, method: str, weak: bool) -> Any:
    """The quantiles ``q`` (1-D) of the first ``count`` values of each column of ``s``
    (sorted along axis 0), as NumPy computes them; shaped ``(len(q),) + count.shape``."""
    q = q.reshape((-1,) + (1,) * count.ndim)
    n = count.astype(q.dtype if q.dtype.kind == "f" else np.intp)
    last = np.maximum(count - 1, 0)  # (0 in an empty column, whose result is replaced)
    if method in _ROUNDED or (method == "linear" and q.dtype.kind != "f"):
        return _at(s, np.clip(_ROUNDED.get(method, np.floor)((n - 1) * q), 0, last))
    if method == "linear":
        vi = (n - 1) * q
    elif method == "midpoint":
        vi = 0.5 * (np.floor((n - 1) * q) + np.ceil((n - 1) * q))
    else:
        alpha, beta = _CONTINUOUS[method]
        vi = n * q + (alpha + q * (1 - alpha - beta)) - 1
    i = np.floor(vi)
    lo, hi = _at(s, np.clip(i, 0, last)), _at(s, np.clip(i + 1, 0, last))
    if method == "midpoint":
        gamma = np.where(vi % 1 == 0, 0.0, 0.5).astype(vi.dtype)
    else:  # (past either end NumPy reads index -1 or 0 and measures from there)
        gamma = vi - np.where(vi >= n - 1, -1, np.where(vi < 0, 0, i))
    t, u = gamma, 1 - gamma
    if weak:  # a Python float q: weights in the input's dtype
        t, u = t.astype(primal(s).dtype), u.astype(primal(s).dtype)
    d = hi - lo
    return np.where(gamma >= 0.5, hi - d * u, lo + d * t)


def _middle(s: Any, count: np.ndarray) -> Any:
    """The median of the first ``count`` values of each column of ``s`` (sorted along
    axis 0): the middle one, or the mean of the middle two."""
    lo = _at(s, np.maximum(count - 1, 0)[None] // 2)
    if np.all(count % 2 == 1):
        return lo[0]
    hi = _at(s, (count // 2)[None])  # (arrays, not scalars: NumPy 1 would promote those)
    return np.where(count % 2 == 1, lo, (lo + hi) / 2)[0]


def _levels(q: Any, name: str) -> tuple[np.ndarray, bool]:
    """The levels as an array in [0, 1] (percentiles divided by 100), and whether ``q`` was
    a Python number (whose type does not count in the result's dtype)."""
    if isinstance(q, BVar):
        raise TypeError(
            f"numpy.{name}: q is a BVar, but quantile levels are constants in hetgrad; pass "
            "hetgrad.stop_gradient(q)"
        )
    if name.endswith("percentile"):
        levels, kind, top = np.true_divide(q, 100), "Percentiles", 100
    else:
        levels, kind, top = np.asanyarray(q), "Quantiles", 1
    if not np.all((levels >= 0) & (levels <= 1)):
        raise ValueError(f"{kind} must be in the range [0, {top}]")
    if levels.ndim > 2:
        raise ValueError("q must be a scalar or 1d")
    return np.asarray(levels), type(q) in (int, float)


def _no_values() -> Any:
    """What a quantile of no values is in NumPy: an IndexError."""
    raise IndexError("index -1 is out of bounds for axis 0 with size 0")  # (NumPy's)


def _nan_mean(a: Any, axis: Any, keepdims: bool) -> Callable[[], Any]:
    """What the nan forms give for an empty ``a``: its ``nanmean`` (NaN, or empty)."""
    return lambda: nanmean(a, axis=axis, keepdims=keepdims)


def _order_statistic(a: Any, axis: Any, keepdims: bool, skip_nan: bool,
                     stat: Callable[[Any, np.ndarray], Any], lead: tuple[int, ...],
                     empty: Callable[[], Any]) -> Any:  # fmt: skip
    """``stat(sorted columns, counts)`` over ``axis``, NaN where NumPy gives NaN (a column
    with a NaN, or if ``skip_nan`` with nothing else), shaped ``lead`` + the reduction's
    shape; ``empty()`` for a reduction over no elements (if ``skip_nan``, for any empty
    ``a``, as NumPy)."""
    if skip_nan and not math.prod(shape_of(a)):
        return empty()
    t, out, kept_shape = _columns(a, axis)
    if not shape_of(t)[0]:
        return empty()
    nan = np.isnan(primal(t))
    count = np.sum(~nan, axis=0) if skip_nan else np.full(out, shape_of(t)[0])
    r = stat(_sorted(t), count)
    bad = count == 0 if skip_nan else np.any(nan, axis=0)
    if np.any(bad):
        if skip_nan:
            warnings.warn("All-NaN slice encountered", RuntimeWarning, stacklevel=4)
        r = np.where(bad, np.array(np.nan, _dtype(r)), r)  # (typed: NumPy 1 promotes scalars)
        if skip_nan and bad.flat[0]:  # (NumPy: the dtype of the first slice's result, a's)
            r = _cast(r, _dtype(t))
    return reshape(r, lead + (kept_shape if keepdims else out))


def _quantile(name: str, a: Any, q: Any, axis: Any, out: Any, method: str, keepdims: bool,
              weights: Any, skip_nan: bool) -> Any:  # fmt: skip
    """The four quantile functions: checks, then the order statistic."""
    _refuse(name, out=out, weights=weights)
    if method in _CDF_METHODS:
        raise NotImplementedError(f"numpy.{name} with method={method!r}")
    if method not in _METHODS:
        valid = sorted(_METHODS | _CDF_METHODS)
        raise ValueError(f"{method!r} is not a valid method. Use one of: {valid}")
    levels, weak = _levels(q, name)

    def stat(s: Any, count: np.ndarray) -> Any:
        return _quantiles(s, count, levels.ravel(), method, weak)

    empty = _nan_mean(a, axis, keepdims) if skip_nan else _no_values
    r = _order_statistic(a, axis, keepdims, skip_nan, stat, levels.shape, empty)
    return r[()] if type(primal(r)) is np.ndarray and not shape_of(r) else r  # (a scalar)


@lift(np.median)
def median(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
           keepdims: bool = False) -> Any:  # fmt: skip
    """``numpy.median``: the middle value, or the mean of the middle two."""
    _refuse("median", out=out)
    return _order_statistic(a, axis, keepdims, False, _middle, (),
                            lambda: np.mean(a, axis=axis, keepdims=keepdims))  # fmt: skip


@lift(np.nanmedian)
def nanmedian(a: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
              keepdims: bool = False) -> Any:  # fmt: skip
    """``numpy.nanmedian``: the median of the values that are not NaN."""
    _refuse("nanmedian", out=out)
    return _order_statistic(a, axis, keepdims, True, _middle, (), _nan_mean(a, axis, keepdims))


@lift(np.quantile)
def quantile(a: Any, q: Any, axis: Any = None, out: Any = None, overwrite_input: bool = False,
             method: str = "linear", keepdims: bool = False, *, weights: Any = None) -> Any:
    """``numpy.quantile``: sorted values, or interpolations between two neighbours."""
    return _quantile("quantile", a, q, axis, out, method, keepdims, weights, False)


@lift(np.percentile)
def percentile(a: Any, q: Any, axis: Any = None, out: Any = None,
               overwrite_input: bool = False, method: str = "linear", keepdims: bool = False,
               *, weights: Any = None) -> Any:  # fmt: skip
    """``numpy.percentile``: ``quantile`` at ``q / 100``."""
    return _quantile("percentile", a, q, axis, out, method, keepdims, weights, False)


@lift(np.nanquantile)
def nanquantile(a: Any, q: Any, axis: Any = None, out: Any = None,
                overwrite_input: bool = False, method: str = "linear", keepdims: bool = False,
                *, weights: Any = None) -> Any:  # fmt: skip
    """``numpy.nanquantile``: the quantiles of the values that are not NaN."""
    return _quantile("nanquantile", a, q, axis, out, method, keepdims, weights, True)


@lift(np.nanpercentile)
def nanpercentile(a: Any, q: Any, axis: Any = None, out: Any = None,
                  overwrite_input: bool = False, method: str = "linear",
                  keepdims: bool = False, *, weights: Any = None) -> Any:  # fmt: skip
    """``numpy.nanpercentile``: the percentiles of the values that are not NaN."""
    return _quantile("nanpercentile", a, q, axis, out, method, keepdims, weights, True)


# --------------------------------------------------------------------------------------
# NaN-ignoring reductions and scans, and ptp
# --------------------------------------------------------------------------------------


def _without_nan(a: Any, fill: float, where: Any = True) -> Any:
    """``a`` with ``fill`` at its NaNs (and outside ``where``), which get no gradient."""
    skip = np.isnan(primal(a)) | ~np.asarray(where, dtype=bool)
    return np.where(skip, fill, a) if np.any(skip) else a


def _dtype(a: Any) -> np.dtype[Any]:
    """The dtype of ``a``'s value (float64 for a Python float)."""
    return np.result_type(primal(a))


def _nan_centred(a: Any, axis: Any, where: Any) -> tuple[Any, np.ndarray]:
    """``a`` minus the mean of its values that are not NaN (0 at NaNs and outside
    ``where``), and the number of those values, kept along ``axis``."""
    keep = ~np.isnan(primal(a)) & np.asarray(where, dtype=bool)
    count = np.sum(keep, axis=axis, keepdims=True)
    clean = np.where(keep, a, 0.0)
    mean = np.sum(clean, axis=axis, keepdims=True) / np.maximum(count, 1).astype(_dtype(a))
    return np.where(keep, clean - mean, 0.0), count


def _dof(count: np.ndarray, ddof: float, dtype: Any) -> np.ndarray:
    """The degrees of freedom of each slice, 0 where not positive (a NaN result)."""
    dof = count - ddof
    return np.where(dof > 0, dof, 0).astype(dtype)


def _nanvar_grad(g: Any, y: Any, a: Any, axis: Any = None, dtype: Any = None, ddof: float = 0,
                 keepdims: bool = False, where: Any = True) -> Any:  # fmt: skip
    """``2 (a - mean) / dof`` at the values used, 0 elsewhere and where dof <= 0."""
    centred, count = _nan_centred(a, axis, where)
    dof = _dof(count, ddof, _dtype(a))
    return kept(g, shape_of(a), axis, keepdims) * safe_quotient(2.0 * centred, dof)


def _nanstd_grad(g: Any, y: Any, a: Any, axis: Any = None, dtype: Any = None, ddof: float = 0,
                 keepdims: bool = False, where: Any = True) -> Any:  # fmt: skip
    """``(a - mean) / (dof std)`` at the values used, 0 elsewhere."""
    centred, count = _nan_centred(a, axis, where)
    dof = _dof(count, ddof, _dtype(a))
    # A NaN result (dof <= 0) and a zero one (all values equal) both get the gradient 0.
    std = np.where(dof > 0, kept(y, shape_of(a), axis, keepdims), 0.0)
    return kept(g, shape_of(a), axis, keepdims) * safe_quotient(centred, std * dof)


_nanmax = prim(np.nanmax, _extremum_grad, name="nanmax")
_nanmin = prim(np.nanmin, _extremum_grad, name="nanmin")
_nanvar = prim(np.nanvar, _nanvar_grad, name="nanvar")
_nanstd = prim(np.nanstd, _nanstd_grad, name="nanstd")


def _ddof(ddof: float, correction: float | None) -> float:
    """``ddof``, or NumPy 2's other name for it, ``correction``."""
    if correction is None:
        return ddof
    if ddof != 0:
        raise ValueError("ddof and correction can't be provided simultaneously.")
    return correction


@lift(np.nanmax)
def nanmax(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
           initial: Any = None, where: Any = True) -> Any:  # fmt: skip
    """``numpy.nanmax``: the maximum of the values that are not NaN; ties share."""
    _refuse("nanmax", out=out)
    return _nanmax(a, axis=axis, keepdims=keepdims, initial=initial, where=where)


@lift(np.nanmin)
def nanmin(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
           initial: Any = None, where: Any = True) -> Any:  # fmt: skip
    """``numpy.nanmin``: the minimum of the values that are not NaN; ties share."""
    _refuse("nanmin", out=out)
    return _nanmin(a, axis=axis, keepdims=keepdims, initial=initial, where=where)


@lift(np.nanprod)
def nanprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, initial: Any = None, where: Any = True) -> Any:  # fmt: skip
    """``numpy.nanprod``: NaNs (and elements outside ``where``) count as one."""
    _refuse("nanprod", out=out)
    start = {} if initial is None else {"initial": initial}
    return np.prod(_without_nan(a, 1.0, where), axis=axis, dtype=dtype, keepdims=keepdims,
                   **start)  # fmt: skip


@lift(np.nanvar)
def nanvar(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
           keepdims: bool = False, *, where: Any = True, mean: Any = None,
           correction: float | None = None) -> Any:  # fmt: skip
    """``numpy.nanvar``: the variance of the values that are not NaN."""
    _refuse("nanvar", out=out, mean=mean)
    return _nanvar(a, axis=axis, dtype=dtype, ddof=_ddof(ddof, correction), keepdims=keepdims,
                   where=where)  # fmt: skip


@lift(np.nanstd)
def nanstd(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: float = 0,
           keepdims: bool = False, *, where: Any = True, mean: Any = None,
           correction: float | None = None) -> Any:  # fmt: skip
    """``numpy.nanstd``: the standard deviation of the values that are not NaN."""
    _refuse("nanstd", out=out, mean=mean)
    return _nanstd(a, axis=axis, dtype=dtype, ddof=_ddof(ddof, correction), keepdims=keepdims,
                   where=where)  # fmt: skip


@lift(np.nancumsum)
def nancumsum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    """``numpy.nancumsum``: NaNs count as zero."""
    _refuse("nancumsum", out=out)
    return np.cumsum(_without_nan(a, 0.0), axis=axis, dtype=dtype)


@lift(np.nancumprod)
def nancumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    """``numpy.nancumprod``: NaNs count as one."""
    _refuse("nancumprod", out=out)
    return np.cumprod(_without_nan(a, 1.0), axis=axis, dtype=dtype)


@lift(np.ptp)
def ptp(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
    """``numpy.ptp``: ``max - min``, each splitting its gradient among ties."""
    _refuse("ptp", out=out)
    return np.max(a, axis=axis, keepdims=keepdims) - np.min(a, axis=axis, keepdims=keepdims)


# --------------------------------------------------------------------------------------
# cov and corrcoef
# --------------------------------------------------------------------------------------


def _cast(v: Any, dtype: np.dtype[Any]) -> Any:
    """``v`` in ``dtype`` (for a BVar, a recorded cast): what an in-place NumPy op keeps."""
    return v if _dtype(v) == dtype else v.astype(dtype)


def _rows(v: Any, dtype: np.dtype[Any]) -> Any:
    """``v`` as a 2-D array of ``dtype`` (a 1-D one as a single row)."""
    if ndim_of(v) < 2:
        v = reshape(v, (1,) * (2 - ndim_of(v)) + shape_of(v))
    return _cast(v, dtype)


def _weights(w: Any, name: str, n: int) -> Any:
    """Observation weights, checked as NumPy checks them, in float64."""
    pw = np.asarray(primal(w), dtype=float)
    if name == "fweights":
        if isinstance(w, BVar):
            raise TypeError(
                "numpy.cov: fweights are whole numbers, never differentiated; pass "
                "hetgrad.stop_gradient(fweights)"
            )
        if not np.all(pw == np.around(pw)):
            raise TypeError("fweights must be integer")
    if pw.ndim > 1:
        raise RuntimeError(f"cannot handle multidimensional {name}")
    if pw.shape[0] != n:
        raise RuntimeError(f"incompatible numbers of samples and {name}")
    if np.any(pw < 0):
        raise ValueError(f"{name} cannot be negative")
    return _cast(w, pw.dtype) if isinstance(w, BVar) else pw


def _variables(m: Any, y: Any, rowvar: bool, dtype: Any) -> Any:
    """The variables of ``m`` and ``y`` as the rows of one 2-D array, checked and cast as
    NumPy does (float64, or the wider input dtype, by default)."""
    data = [v if isinstance(v, BVar) else np.asarray(v) for v in (m, y) if v is not None]
    for name, v in zip("my", data):
        if ndim_of(v) > 2:
            raise ValueError(f"{name} has more than 2 dimensions")
    dt = np.dtype(np.result_type(*[primal(v) for v in data], np.float64) if dtype is None
                  else dtype)  # fmt: skip
    if dt.kind != "f":
        raise TypeError(f"numpy.cov with dtype={dt} would drop the gradients of BVars")
    x = _rows(data[0], dt)
    if not rowvar and ndim_of(data[0]) != 1:
        x = x.T
    if y is None or not shape_of(x)[0]:
        return x
    other = _rows(data[1], dt)
    return np.concatenate((x, other if rowvar or shape_of(other)[0] == 1 else other.T))


def _normalizer(n: int, ddof: int, w: Any, aw: Any, w_sum: Any) -> Any:
    """What NumPy divides the sums of products by: the (weighted) number of observations
    less ``ddof``, or 0 (with its warning) where that is not positive."""
    if w is None:
        fact = n - ddof
    elif ddof == 0:
        fact = w_sum
    elif aw is None:
        fact = w_sum - ddof
    else:
        fact = w_sum - ddof * np.sum(w * aw) / w_sum
    if primal(fact) > 0:
        return fact
    warnings.warn("Degrees of freedom <= 0 for slice", RuntimeWarning, stacklevel=3)
    return 0.0


@lift(np.cov)
def cov(m: Any, y: Any = None, rowvar: bool = True, bias: bool = False, ddof: int | None = None,
        fweights: Any = None, aweights: Any = None, *, dtype: Any = None) -> Any:  # fmt: skip
    """``numpy.cov``: the covariance matrix of the rows (``rowvar``) or the columns."""
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    x = _variables(m, y, rowvar, dtype)
    if not shape_of(x)[0]:
        return np.array([]).reshape(0, 0)
    ddof = (0 if bias else 1) if ddof is None else ddof
    n = shape_of(x)[1]
    w = None if fweights is None else _weights(fweights, "fweights", n)
    aw = None if aweights is None else _weights(aweights, "aweights", n)
    if aw is not None:
        w = aw if w is None else w * aw
    avg, w_sum = average(x, axis=1, weights=w, returned=True)
    fact = _normalizer(n, ddof, w, aw, w_sum[0])
    x = _cast(x - avg[:, None], _dtype(x))
    c = np.dot(x, (x if w is None else x * w).T)
    return np.squeeze(_cast(c * np.true_divide(1, fact), _dtype(c)))


@lift(np.corrcoef)
def corrcoef(x: Any, y: Any = None, rowvar: bool = True, *, dtype: Any = None) -> Any:
    """``numpy.corrcoef``: covariances over both standard deviations, clipped to [-1, 1]."""
    c = cov(x, y, rowvar, dtype=dtype)
    if ndim_of(c) != 2:  # one variable: 1, or NaN where its variance is 0, inf or NaN
        return c / c
    d = np.sqrt(np.diagonal(c))
    return np.clip(c / d[:, None] / d[None, :], -1, 1)
