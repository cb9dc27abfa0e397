"""``hetgrad.numpy``: NumPy's names and signatures, differentiable on BVars.

Switch one import and NumPy code becomes differentiable::

    import hetgrad.numpy as hnp      # instead of: import numpy as np

Most names here *are* NumPy's own functions and ufuncs (``hnp.sin is numpy.sin``): on
plain arrays they run at NumPy's speed with no overhead at all, and when one of their
arguments is a BVar, NumPy hands the call to hetgrad (``__array_ufunc__`` and
``__array_function__``), which records it.  So plain ``numpy.sin(bvar)`` is
differentiable too.  A few names NumPy cannot dispatch on BVars are hetgrad's own:
``array``/``asarray`` and ``full``/``full_like`` (which build BVars from lists of BVars
and BVar fill values), plus :func:`logsumexp` and :func:`safe_where`.  Names that are not
lifted fall through to NumPy; calling one on a BVar raises ``NotImplementedError`` naming
the function, never a silently wrong gradient.

Which names are lifted is listed in the API reference ("What is differentiable"), read
from hetgrad's dispatch tables.

Conventions: ``max``/``min`` (and ``nanmax``, ``ptp``, and the order statistics
``median``, ``quantile``, ``percentile``) split the gradient evenly among ties; ``sign``,
``floor``, ``ceil``, ``round``, ``rint``, ``heaviside``, ``floor_divide`` (``//``) and
comparisons have zero gradient (they return plain values); ``remainder`` (``%``) and
``fmod`` have the one-sided gradients of ``x - c * floor(x / c)``; ``abs``, ``fabs``,
``copysign`` and ``norm`` have the subgradient 0 at 0; ``nan`` functions and
``nan_to_num`` give replaced elements a zero gradient; an element that ``insert``,
``repeat`` or ``meshgrid`` copies gets the sum of its copies' gradients.  Levels ``q`` of
quantiles are constants (a BVar ``q`` raises ``TypeError``).  NumPy hands a call to hetgrad
only when a BVar is among the arguments it dispatches on, the arrays: a BVar given only as
an option (``interp``'s ``left``, ``polyint``'s ``k``, ``select``'s ``default``) while the
arrays are plain never reaches hetgrad: NumPy's own code then meets the BVar and fails
with hetgrad's error about dropping a BVar from the tape.
Reductions differentiate their keywords (``sum``/``mean`` with ``where=``,
``prod``/``max``/``min`` with ``initial=``, ``var``/``std`` with ``ddof=`` or
``correction=``); a keyword without a rule (``prod(where=)``, ``var(mean=)``, ``out=``
anywhere) raises ``NotImplementedError``.  A BVar of an array also has the ndarray methods
that compute something (``v.max()``, ``v.prod(axis=0)``, ``v.clip(0, 1)``,
``v.transpose()``, ``v.astype(np.float32)``, ...).

``where`` and NaN: ``where(c, f(x), g(x))`` sends a zero cotangent into the untaken
branch, and if that branch's derivative is infinite there (``sqrt`` at 0, ``1/x`` at 0)
``0 * inf`` is NaN, which leaks into the gradient.  No ``where`` can prevent this after
the branch has been computed; use :func:`safe_where`, which evaluates each branch only
where it is taken.

The operations of Haskell's ``hmatrix-backprop`` map as follows: ``#>`` and ``<>`` are
``@`` (``matmul``), ``<.>`` is ``dot``, ``konst`` is ``full`` or broadcasting,
``sumElements`` is ``sum``, ``norm_1``/``norm_2``/``norm_Inf`` are ``linalg.norm(x, 1)``,
``linalg.norm(x)``, ``linalg.norm(x, inf)``, ``outer`` is ``outer``, ``tr`` is
``transpose``, ``inv``/``det``/``eigenvalues``/``svd`` are ``linalg.inv``, ``linalg.det``,
``linalg.eigvalsh``, ``linalg.svd`` (which here also differentiates U and V),
``vec``/``flatten`` is ``ravel``, ``(===)``/``(|||)`` are ``vstack``/``hstack``, and
``collectVar`` is ``array``/``stack``.

>>> import numpy as np, hetgrad, hetgrad.numpy as hnp
>>> def loss(w):
...     return hnp.sum(hnp.tanh(w @ np.array([1.0, 2.0])) ** 2)
>>> hetgrad.grad_bp(loss, np.array([[0.5, 0.0], [0.0, 0.0]]))
array([[0.72686198, 1.45372396],
       [0.        , 0.        ]])
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
from numpy import (  # noqa: F401  (re-exported: NumPy's own objects, dispatched on BVars)
    abs,
    absolute,
    add,
    all,
    allclose,
    amax,
    amin,
    any,
    append,
    arange,
    arccos,
    arccosh,
    arcsin,
    arcsinh,
    arctan,
    arctan2,
    arctanh,
    argmax,
    argmin,
    argsort,
    around,
    array_split,
    atleast_1d,
    atleast_2d,
    atleast_3d,
    average,
    block,
    broadcast_arrays,
    broadcast_to,
    cbrt,
    ceil,
    clip,
    column_stack,
    concat,
    concatenate,
    conj,
    conjugate,
    convolve,
    copy,
    copysign,
    corrcoef,
    correlate,
    cos,
    cosh,
    cov,
    cross,
    cumprod,
    cumsum,
    deg2rad,
    degrees,
    delete,
    diag,
    diagonal,
    diff,
    divide,
    dot,
    dstack,
    e,
    ediff1d,
    einsum,
    empty,
    empty_like,
    exp,
    exp2,
    expand_dims,
    expm1,
    eye,
    fabs,
    flip,
    fliplr,
    flipud,
    float32,
    float64,
    float_power,
    floor,
    fmax,
    fmin,
    gradient,
    heaviside,
    hstack,
    hypot,
    identity,
    imag,
    inf,
    inner,
    insert,
    interp,
    isfinite,
    isinf,
    isnan,
    kron,
    ldexp,
    linspace,
    log,
    log1p,
    log2,
    log10,
    logaddexp,
    logaddexp2,
    matmul,
    max,
    maximum,
    mean,
    median,
    meshgrid,
    min,
    minimum,
    moveaxis,
    multiply,
    nan,
    nan_to_num,
    nancumprod,
    nancumsum,
    nanmax,
    nanmean,
    nanmedian,
    nanmin,
    nanpercentile,
    nanprod,
    nanquantile,
    nanstd,
    nansum,
    nanvar,
    ndim,
    negative,
    newaxis,
    ones,
    ones_like,
    outer,
    pad,
    percentile,
    permute_dims,
    pi,
    polyder,
    polyfit,
    polyint,
    polyval,
    positive,
    power,
    prod,
    ptp,
    quantile,
    rad2deg,
    radians,
    ravel,
    real,
    reciprocal,
    repeat,
    reshape,
    rint,
    roll,
    rot90,
    round,
    select,
    shape,
    sign,
    sin,
    sinc,
    sinh,
    size,
    sort,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    subtract,
    sum,
    swapaxes,
    take,
    take_along_axis,
    tan,
    tanh,
    tensordot,
    tile,
    trace,
    transpose,
    trapezoid,
    tril,
    triu,
    true_divide,
    vander,
    var,
    vdot,
    vecdot,
    vstack,
    where,
    zeros,
    zeros_like,
)

from .. import rules
from ..tape import BVar, primal
from . import (  # noqa: F401  (registration)
    _elementwise,
    _products,
    _reductions,
    _sequences,
    _shape,
    _statistics,
    linalg,
)
from ._core import NP
from ._reductions import logsumexp

__all__ = [
    "abs", "absolute", "add", "all", "allclose", "amax", "amin", "any", "append", "arange",
    "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh", "argmax",
    "argmin", "argsort", "around", "array", "array_split", "asarray", "atleast_1d",
    "atleast_2d", "atleast_3d", "average", "block", "broadcast_arrays", "broadcast_to", "cbrt",
    "ceil", "clip", "column_stack", "concat", "concatenate", "conj", "conjugate", "convolve",
    "copy", "copysign", "corrcoef", "correlate", "cos", "cosh", "cov", "cross", "cumprod",
    "cumsum", "deg2rad", "degrees", "delete", "diag", "diagonal", "diff", "divide", "dot",
    "dstack", "e", "ediff1d", "einsum", "empty", "empty_like", "exp", "exp2", "expand_dims",
    "expm1", "eye", "fabs", "flip", "fliplr", "flipud", "float32", "float64", "float_power",
    "floor", "fmax", "fmin", "full", "full_like", "gradient", "heaviside", "hstack", "hypot",
    "identity", "imag", "inf", "inner", "insert", "interp", "isfinite", "isinf", "isnan",
    "kron", "ldexp", "linalg", "linspace", "log", "log10", "log1p", "log2", "logaddexp",
    "logaddexp2", "logsumexp", "matmul", "max", "maximum", "mean", "median", "meshgrid", "min",
    "minimum", "moveaxis", "multiply", "nan", "nan_to_num", "nancumprod", "nancumsum", "nanmax",
    "nanmean", "nanmedian", "nanmin", "nanpercentile", "nanprod", "nanquantile", "nanstd",
    "nansum", "nanvar", "ndim", "negative", "newaxis", "ones", "ones_like", "outer", "pad",
    "percentile", "permute_dims", "pi", "polyder", "polyfit", "polyint", "polyval", "positive",
    "power", "prod", "ptp", "quantile", "rad2deg", "radians", "ravel", "real", "reciprocal",
    "repeat", "reshape", "rint", "roll", "rot90", "round", "safe_where", "select", "shape",
    "sign", "sin", "sinc", "sinh", "size", "sort", "split", "sqrt", "square", "squeeze",
    "stack", "std", "subtract", "sum", "swapaxes", "take", "take_along_axis", "tan", "tanh",
    "tensordot", "tile", "trace", "transpose", "trapezoid", "tril", "triu", "true_divide",
    "vander", "var", "vdot", "vecdot", "vstack", "where", "zeros", "zeros_like",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    """Everything else is NumPy's (on a BVar it raises NotImplementedError, naming it)."""
    return getattr(np, name)


def _has_bvar(obj: Any) -> bool:
    if isinstance(obj, BVar):
        return True
    if isinstance(obj, (list, tuple)):
        return builtins.any(_has_bvar(x) for x in obj)
    return False


def _collect(obj: Any) -> Any:
    """Nested lists holding BVars as one BVar (backprop's ``collectVar``)."""
    if isinstance(obj, (list, tuple)) and _has_bvar(obj):
        return _shape.stack([_collect(x) for x in obj])
    return obj


def array(object: Any, dtype: Any = None, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
    """``numpy.array``; a (nested) list holding BVars becomes one BVar.

    >>> import numpy as np, hetgrad, hetgrad.numpy as hnp
    >>> hetgrad.grad_bp(lambda x, y: hnp.sum(hnp.array([x, 2.0 * y, 3.0]) ** 2), 1.0, 1.0)
    (2.0, 8.0)
    """
    try:
        if dtype is None and not args and not kwargs:  # the usual call, kept cheap
            return _np_array(object)
        return _np_array(object, dtype, *args, **kwargs)
    except TypeError:
        if not _has_bvar(object):
            raise
    ndmin = kwargs.pop("ndmin", 0)
    kwargs.pop("copy", None)  # (a BVar is a new value whatever it is)
    kwargs.pop("order", None)
    if args or kwargs:
        raise NotImplementedError(
            f"hetgrad.numpy.array of BVars with {sorted(kwargs) or 'positional options'}"
        )
    out = _collect(object)
    if dtype is not None and np.result_type(primal(out)) != np.dtype(dtype):
        if np.dtype(dtype).kind != "f":
            raise TypeError(
                f"hetgrad.numpy.array cannot make BVars {np.dtype(dtype)}: that would drop "
                "their gradients; use hetgrad.stop_gradient first for a constant"
            )
        out = rules.astype(out, np.dtype(dtype))
    ndim = np.ndim(primal(out))
    if ndmin > ndim:
        out = _shape.reshape(out, (1,) * (ndmin - ndim) + np.shape(primal(out)))
    return out


def asarray(a: Any, dtype: Any = None, *args: Any, **kwargs: Any) -> Any:
    """``numpy.asarray``; a BVar is returned as is, a list holding BVars is stacked.

    >>> import hetgrad.numpy as hnp
    >>> hnp.asarray([1.0, 2.0])
    array([1., 2.])
    """
    if isinstance(a, BVar):
        if dtype is not None and np.result_type(primal(a)) != np.dtype(dtype):
            raise TypeError("hetgrad.numpy.asarray cannot change the dtype of a BVar")
        return a
    return array(a, dtype, *args, copy=None, **kwargs)


def full(shape: Any, fill_value: Any, dtype: Any = None, order: str = "C", **kw: Any) -> Any:
    """``numpy.full``; a BVar fill value broadcasts into a BVar (backprop's ``konst``).

    >>> import hetgrad, hetgrad.numpy as hnp
    >>> hetgrad.grad_bp(lambda c: hnp.sum(hnp.full((2, 3), c)), 1.0)
    6.0
    """
    if kw or order != "C":
        return NP.full(shape, fill_value, dtype, order, **kw)
    if isinstance(fill_value, BVar):
        return _konst(fill_value, shape, dtype)
    return _np_full(shape, fill_value, dtype)


_np_full = np.full
_np_array = np.array


def _konst(fill: Any, shape: Any, dtype: Any) -> Any:
    """``fill`` broadcast to ``shape`` (a fresh array), cast to ``dtype`` as NumPy casts a
    fill value (a cast to another float type is recorded; to an integer, a constant)."""
    if dtype is not None and np.result_type(primal(fill)) != np.dtype(dtype):
        fill = fill.astype(dtype)
        if not isinstance(fill, BVar):
            return _np_full(shape, fill, dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return _shape.copy(rules.broadcast_to(fill, shape))


def full_like(a: Any, fill_value: Any, dtype: Any = None, order: str = "K", subok: bool = True,
              shape: Any = None, **kw: Any) -> Any:  # fmt: skip
    """``numpy.full_like``; a BVar fill value broadcasts into a BVar.

    >>> import numpy as np, hetgrad.numpy as hnp
    >>> hnp.full_like(np.zeros(2), 7.0)
    array([7., 7.])
    """
    if isinstance(fill_value, BVar):
        return _konst(fill_value, np.shape(primal(a)) if shape is None else shape,
                      np.asarray(primal(a)).dtype if dtype is None else dtype)
    return NP.full_like(primal(a), fill_value, dtype, order, subok, shape, **kw)


def _linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
              retstep: bool = False, dtype: Any = None, axis: int = 0,
              **kw: Any) -> Any:  # fmt: skip
    """``numpy.linspace`` with BVar endpoints, computed as NumPy computes it (``k * step +
    start``, the last point ``stop`` itself) in the endpoints' float type, and cast to
    ``dtype`` (an integer ``dtype`` gives NumPy's own result, a constant)."""
    if kw:
        raise NotImplementedError(f"numpy.linspace of BVars with {sorted(kw)}")
    ps, pe = primal(start), primal(stop)
    if dtype is not None and np.dtype(dtype).kind != "f":  # integers: no derivative
        return np.linspace(ps, pe, num, endpoint=endpoint, retstep=retstep,  # type: ignore[call-overload]
                           dtype=dtype, axis=axis)  # fmt: skip
    div = num - 1 if endpoint else num
    delta = stop - start
    k = np.arange(num, dtype=np.result_type(ps, pe, float(num)))
    k = k.reshape((-1,) + (1,) * np.broadcast(ps, pe).ndim)
    if div > 0 and not np.any(primal(delta) / div == 0):
        out = k * (delta / div) + start
    else:  # (a step of 0, subnormal steps, or no step: NumPy's order of operations)
        out = (k / div if div > 0 else k) * delta + start
    if endpoint and num > 1:  # (the last point is stop exactly, even where delta is not finite)
        out = np.where(np.arange(num).reshape(k.shape) == num - 1, stop, out)
    if dtype is not None and np.result_type(primal(out)) != np.dtype(dtype):
        out = rules.astype(out, np.dtype(dtype))
    if axis != 0:
        out = _shape.moveaxis(out, 0, axis)
    if retstep:
        div = num - 1 if endpoint else num
        return out, ((stop - start) / div if div > 0 else np.nan)  # (NaN: as NumPy)
    return out


def safe_where(condition: Any, if_true: Any, if_false: Any, *args: Any) -> Any:
    """``where(condition, if_true(*args), if_false(*args))`` without NaN leaking.

    Each elementwise branch function is evaluated only where it is taken: elsewhere its
    inputs are replaced by a value where it is taken, so its derivative there is finite
    and the zero cotangent stays zero.  Use it when a branch is infinite or NaN (or has
    an infinite derivative) where it is not taken.

    >>> import numpy as np, hetgrad, hetgrad.numpy as hnp
    >>> f = lambda x: hnp.sum(hnp.safe_where(x > 0, np.sqrt, lambda v: 0.0 * v, x))
    >>> hetgrad.grad_bp(f, np.array([0.0, 4.0]))
    array([0.  , 0.25])
    """
    cond = np.asarray(primal(condition), dtype=bool)
    shape = np.broadcast_shapes(cond.shape, *[np.shape(primal(a)) for a in args])
    cond = np.broadcast_to(cond, shape)
    args = tuple(np.broadcast_to(a, shape) for a in args)

    def branch(fn: Any, taken: np.ndarray) -> Any:
        if not taken.any():
            return None
        if taken.all():
            return fn(*args)
        first = int(np.argmax(taken.ravel()))
        return fn(*[np.where(taken, a, np.ravel(primal(a))[first]) for a in args])

    if not cond.size:  # nothing is taken: the (empty) result of either branch
        return if_true(*args)
    t = branch(if_true, cond)
    f = branch(if_false, ~cond)
    if t is None or f is None:  # one branch everywhere: its result, of the full shape
        out = f if t is None else t
        return out if np.shape(primal(out)) == shape else np.broadcast_to(out, shape)
    return np.where(cond, t, f)


def _clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, **kwargs: Any) -> Any:
    """``numpy.clip`` as ``minimum(maximum(a, a_min), a_max)`` (ties share the gradient)."""
    if out is not None:
        raise NotImplementedError("numpy.clip with out= cannot be recorded")
    lo = kwargs.pop("min", a_min)
    hi = kwargs.pop("max", a_max)
    if kwargs:
        raise NotImplementedError(f"numpy.clip of a BVar with {sorted(kwargs)}")
    if lo is not None and not (np.ndim(primal(lo)) == 0 and np.isneginf(primal(lo))):
        a = rules.maximum(a, lo)
    if hi is not None:
        a = rules.minimum(a, hi)
    return a


rules.FUNCTIONS.update({
    np.clip: _clip, np.linspace: _linspace, np.full_like: full_like,
})  # fmt: skip
