"""The engine's built-in primitives: a table of one-line gradient rules.

Each rule has the signature ``rule(g, y, *args, **kwargs)``: ``g`` is the output's
cotangent, ``y`` the output, ``args`` the inputs' values.  Rules are written with the same
operations users call, so when an outer derivative is being taken they are recorded too
(higher-order derivatives); on plain values they run at NumPy's speed.

Python floats stay Python floats: elementwise functions use :mod:`math` on them (several
times faster than NumPy scalars), with NumPy's results where :mod:`math` raises.

This module holds what BVar's operators and the common NumPy functions need.
:mod:`hetgrad.numpy` extends the dispatch tables below with the rest of NumPy.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from .tape import (
    BVar,
    Primitive,
    ShapeOf,
    _escaped,
    apply,
    binary_call,
    primal,
    record_whole,
    rule_number,
    unary,
)
from .tree import flatten

UFUNCS: dict[Any, Primitive] = {}
"""NumPy ufunc -> differentiable primitive, used by ``BVar.__array_ufunc__``."""

FUNCTIONS: dict[Any, Callable[..., Any]] = {}
"""NumPy function -> lifted implementation, used by ``BVar.__array_function__``."""

PIECEWISE_CONSTANT_UFUNCS: set[Any] = {
    np.sign, np.floor, np.ceil, np.rint, np.trunc, np.isnan, np.isinf, np.isfinite,
    np.signbit, np.floor_divide, np.greater, np.greater_equal, np.less, np.less_equal, np.equal,
    np.not_equal, np.logical_and, np.logical_or, np.logical_not, np.logical_xor,
}  # fmt: skip
"""Ufuncs with zero derivative: applied to the primal values, returning plain results."""

COMPOSED_UFUNCS: dict[Any, Callable[..., Any]] = {}
"""Generalized ufuncs lifted as compositions of other lifted functions (``vecdot``,
``matvec``): ufunc -> implementation, called with the inputs and keywords."""


def prim(
    fn: Callable[..., Any], *vjps: Callable[..., Any], name: str, nondiff: tuple[int, ...] = ()
) -> Primitive:
    """A built-in primitive with its rules (trusted: results are not re-checked)."""
    p = Primitive(fn, name, nondiff, checked=False)
    p.vjps = p.float_vjps = vjps
    p.node_rules = p.node_float_rules = rule_number(vjps)
    return p


def unread(p: Primitive, *positions: int) -> None:
    """Declare that ``p``'s rules never read these inputs' values (kept as ShapeOf)."""
    p.reads = tuple(k not in positions for k in range(max(*positions, 1) + 1))


def output_unread(*prims: Primitive) -> None:
    """Declare that these primitives' rules never read their output (nodes drop it)."""
    for p in prims:
        p.reads_output = False


def on_floats(p: Primitive, *vjps: Callable[..., Any]) -> None:
    """Give ``p`` rules for Python-float operands (the moons-style scalar fast path)."""
    p.float_vjps = vjps
    p.node_float_rules = rule_number(vjps)


# --------------------------------------------------------------------------------------
# Shapes of gradients.
# --------------------------------------------------------------------------------------


def shape_of(x: Any) -> tuple[int, ...]:
    t = type(x)
    if t is np.ndarray:
        return x.shape
    if t is float or t is np.float64 or t is int:
        return ()
    if t is BVar or t is ShapeOf:
        return x.shape
    return np.shape(x)


def ndim_of(x: Any) -> int:
    return x.ndim if type(x) is np.ndarray else len(shape_of(x))


def outer_product(a: Any, b: Any) -> Any:
    """``np.outer`` of two vectors, the gradient of a per-sample layer's matrix.

    A fast path: for two float64 (or two float32) vectors, BLAS computes it as a matrix
    product with an inner dimension of 1, 1.4-1.9x faster than NumPy's broadcast multiply
    from 32x32 to 2000x1000 on a 2-core x86_64 machine (784x300: 92 us against 139).  Each
    element is the one product ``a[i] * b[j]``, so the values are NumPy's, except that a
    zero product is +0.0 where NumPy may give -0.0.

    >>> outer_product(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    array([[3., 4.],
           [6., 8.]])
    """
    if type(a) is np.ndarray and type(b) is np.ndarray:
        if a.dtype is b.dtype and (a.dtype is _FLOAT64 or a.dtype is _FLOAT32):
            return np.dot(a[:, None], b[None, :])
        return np.multiply.outer(a, b)
    return np.outer(a, b)


_FLOAT64, _FLOAT32 = np.dtype(np.float64), np.dtype(np.float32)


def unbroadcast(g: Any, x: Any) -> Any:
    """Sum ``g`` down to the shape of ``x`` (undoing NumPy broadcasting)."""
    tx = type(x)
    if (tx is np.ndarray or tx is ShapeOf) and type(g) is np.ndarray and g.shape == x.shape:
        return g  # the usual case: nothing was broadcast
    if tx is float:
        return g if type(g) is float else _scalar(np.sum(g))
    xs = shape_of(x)
    gs = shape_of(g)
    if gs == xs:
        return g
    lead = len(gs) - len(xs)
    if lead > 0:
        g = sum_over(g, tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(xs) if n == 1 and gs[lead + i] != 1)
    if axes:
        g = sum_over(g, axes, keepdims=True)
    if not xs and type(g) is np.ndarray:
        g = g[()]
    return g


def sum_over(g: Any, axis: Any, keepdims: bool = False) -> Any:
    """``np.sum(g, axis)``; an array's own method where it can (a third of the overhead)."""
    if type(g) is np.ndarray:
        return g.sum(axis=axis, keepdims=keepdims)
    return np.sum(g, axis=axis, keepdims=keepdims)


def _scalar(g: Any) -> Any:
    return float(g) if type(g) is np.float64 else g


def safe_divide(a: Any, b: Any) -> Any:
    """``a / b`` with NumPy's inf/nan for floats, where Python would raise (BVars of
    floats too: a rule differentiated again divides them)."""
    tb = type(b)
    if tb is float and type(a) is float:  # (the scalar rules' case first)
        if b == 0.0:
            with np.errstate(divide="ignore", invalid="ignore"):
                return float(np.float64(a) / b)
        return a / b
    if tb is BVar or type(a) is BVar:
        return binary_call(np_divide, a, b)
    return a / b


# --------------------------------------------------------------------------------------
# Elementwise functions with a Python-float fast path.
# --------------------------------------------------------------------------------------


def float_fast(math_fn: Callable[[float], float], ufunc: Any) -> Callable[[Any], Any]:
    """``ufunc``, but through ``math_fn`` for Python floats (falls back where math raises)."""

    def f(x: Any) -> Any:
        if type(x) is float:
            try:
                return math_fn(x)
            except (ValueError, OverflowError, ZeroDivisionError):
                return float(ufunc(x))
        return ufunc(x)

    f.__name__ = ufunc.__name__
    f._array_fn = ufunc  # type: ignore[attr-defined]  # (Primitive.array_fn calls it)
    return f


exp_ = float_fast(math.exp, np.exp)
log_ = float_fast(math.log, np.log)
sin_ = float_fast(math.sin, np.sin)
cos_ = float_fast(math.cos, np.cos)
tanh_ = float_fast(math.tanh, np.tanh)
sqrt_ = float_fast(math.sqrt, np.sqrt)


def sign_(x: Any) -> Any:
    """Sign of the primal value (a constant: its derivative is zero)."""
    x = primal(x)
    if type(x) is float:
        return float((x > 0.0) - (x < 0.0))
    return np.sign(x)


def _tie_split(a: Any, b: Any, first: bool) -> Any:
    """1 where ``a`` wins, 0 where ``b`` wins, 0.5 at ties (for maximum and minimum)."""
    pa, pb = primal(a), primal(b)
    win = (pa > pb) if first else (pa < pb)
    if type(win) is not np.ndarray:
        return win + 0.5 * (pa == pb)
    tie = pa == pb
    if not tie.any():
        # The usual case (a relu away from 0): the boolean mask itself, which keeps the
        # cotangent's dtype when multiplied; two passes fewer than the float mask below
        # (the two-moons vectorised gradient, with three relus, ~3% faster).
        return win
    return _in_float_dtype(win + 0.5 * tie, pa, pb)


def _in_float_dtype(mask: np.ndarray, *operands: Any) -> np.ndarray:
    """A float ``mask`` (computed in float64) in the operands' float dtype, so a float32
    cotangent multiplied by it stays float32 (and its whole reverse pass with it)."""
    dtype = np.result_type(*operands)
    return mask.astype(dtype if dtype.kind == "f" else np.float64, copy=False)


def _pow_base(g: Any, y: Any, a: Any, b: Any) -> Any:
    """``b a^(b - 1)``, with ``a`` taken as 1 where ``b == 0`` and ``1 / a`` is not finite
    (at ``a = 0`` the formula is ``0 * 0 ** -1 = 0 * inf``; ``a ** 0`` is 1 everywhere, so
    the gradient is 0).  Only the base is replaced: the factor ``b`` stays, so the
    derivative in ``b`` (a second-order term, ``a^(b - 1)`` at ``b == 0``) is not lost."""
    if type(b) in (int, float) and b == 0:
        return unbroadcast(g * 0.0, a)
    return unbroadcast(g * b * _pow(_base_for_zero_exponent(a, b), b - 1), a)


def _base_for_zero_exponent(a: Any, b: Any) -> Any:
    """``a``, with 1 where ``b == 0`` and ``1 / a`` is not finite (``a`` zero, subnormal or
    NaN: there ``b a^(b - 1)`` would be ``0 * inf``)."""
    pa, pb = primal(a), primal(b)
    if type(pa) is float and type(pb) in (int, float):
        return 1.0 if pb == 0 and (pa == 0.0 or not math.isfinite(1.0 / pa)) else a
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        both = np.logical_and(pb == 0, ~np.isfinite(np.reciprocal(pa)))
    return np.where(both, 1.0, a) if np.any(both) else a


def _pow(a: Any, e: Any) -> Any:
    """``a ** e``, with NumPy's inf or nan where Python floats would raise (``0.0 ** -0.5``)
    or turn complex (``(-1.0) ** 0.5``)."""
    if type(a) is float and type(e) in (int, float) and (a == 0.0 and e < 0 or a < 0.0):
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.power(a, float(e)))
    return a ** e


def _log_where_positive(a: Any, dtype: Any = None) -> Any:
    """``log(a)`` where ``a > 0``, else 0 (the exponent's gradient of a power), in the
    power's float ``dtype`` (NumPy takes the log of an int8 or float16 base in float16)."""
    pa = primal(a)
    if type(pa) is float:
        return log_(a) if pa > 0.0 else 0.0
    if dtype is not None and dtype.kind == "f" and np.result_type(pa) != dtype:
        a = astype(a, dtype) if isinstance(a, BVar) else np.asarray(pa, dtype=dtype)
        pa = primal(a)
    if np.all(pa > 0):
        return np.log(a)
    return np.where(pa > 0, np.log(np.where(pa > 0, a, 1.0)), 0.0)


def _pow_exponent(g: Any, y: Any, a: Any, b: Any) -> Any:
    # d/db a**b = a**b log a; where a <= 0 we take 0 (at a = 0, b > 0 this is exact).
    return unbroadcast(g * y * _log_where_positive(a, np.result_type(primal(y))), b)


add = prim(operator.add, lambda g, y, a, b: unbroadcast(g, a),
           lambda g, y, a, b: unbroadcast(g, b), name="add")  # fmt: skip
subtract = prim(operator.sub, lambda g, y, a, b: unbroadcast(g, a),
                lambda g, y, a, b: unbroadcast(-g, b), name="subtract")  # fmt: skip
multiply = prim(operator.mul, lambda g, y, a, b: unbroadcast(g * b, a),
                lambda g, y, a, b: unbroadcast(g * a, b), name="multiply")  # fmt: skip
_divide_rules = (lambda g, y, a, b: unbroadcast(safe_divide(g, b), a),
                 lambda g, y, a, b: unbroadcast(-safe_divide(g * y, b), b))  # fmt: skip
divide = prim(operator.truediv, *_divide_rules, name="divide")
power = prim(operator.pow, _pow_base, _pow_exponent, name="power")
# numpy.divide and numpy.power themselves: on Python floats they give NumPy's inf and nan
# where the operators (Python's semantics, as your / and ** on floats) raise.
np_divide = prim(np.divide, *_divide_rules, name="divide")
np_power = prim(np.power, _pow_base, _pow_exponent, name="power")
on_floats(add, lambda g, y, a, b: g, lambda g, y, a, b: g)
on_floats(subtract, lambda g, y, a, b: g, lambda g, y, a, b: -g)
on_floats(multiply, lambda g, y, a, b: g * b, lambda g, y, a, b: g * a)
on_floats(divide, lambda g, y, a, b: safe_divide(g, b), lambda g, y, a, b: -safe_divide(g * y, b))
negative = prim(operator.neg, lambda g, y, a: -g, name="negative")
absolute = prim(abs, lambda g, y, a: g * sign_(a), name="absolute")
square = prim(np.square, lambda g, y, a: g * 2.0 * a, name="square")
exp = prim(exp_, lambda g, y, a: g * y, name="exp")
log = prim(log_, lambda g, y, a: safe_divide(g, a), name="log")
sin = prim(sin_, lambda g, y, a: g * cos_(a), name="sin")
cos = prim(cos_, lambda g, y, a: -g * sin_(a), name="cos")
tanh = prim(tanh_, lambda g, y, a: g * (1.0 - y * y), name="tanh")
sqrt = prim(sqrt_, lambda g, y, a: safe_divide(g, 2.0 * y), name="sqrt")
maximum = prim(np.maximum, lambda g, y, a, b: unbroadcast(g * _tie_split(a, b, True), a),
               lambda g, y, a, b: unbroadcast(g * _tie_split(b, a, True), b),
               name="maximum")  # fmt: skip
minimum = prim(np.minimum, lambda g, y, a, b: unbroadcast(g * _tie_split(a, b, False), a),
               lambda g, y, a, b: unbroadcast(g * _tie_split(b, a, False), b),
               name="minimum")  # fmt: skip


# --------------------------------------------------------------------------------------
# Matrix products.
# --------------------------------------------------------------------------------------


def _matmul_grad_a(g: Any, y: Any, a: Any, b: Any) -> Any:
    if type(b) is np.ndarray and b.ndim == 2 and type(a) is np.ndarray and a.ndim == 2:
        return g @ b.T  # the common case first: no batch axes to undo
    na, nb = ndim_of(a), ndim_of(b)
    if nb == 1:
        if na == 1:
            return g * b  # inner product: y is a scalar
        if na == 2:  # matrix @ vector, the per-sample layer: an outer product
            return outer_product(g, b)
        return unbroadcast(np.expand_dims(g, -1) * b, a)
    if na == 1:
        if nb == 2:  # vector @ matrix, the per-sample layer written x @ W: a mat-vec
            return b @ g
        return unbroadcast(np.matmul(b, np.expand_dims(g, -1))[..., 0], a)
    if na == 2 and nb == 2:
        return g @ b.T  # no batch axes to undo
    return unbroadcast(np.matmul(g, np.swapaxes(b, -1, -2)), a)


def _matmul_grad_b(g: Any, y: Any, a: Any, b: Any) -> Any:
    if type(a) is np.ndarray and a.ndim == 2 and type(b) is np.ndarray and b.ndim == 2:
        return a.T @ g  # the common case first
    na, nb = ndim_of(a), ndim_of(b)
    if na == 1:
        if nb == 1:
            return g * a
        if nb == 2:  # vector @ matrix, the per-sample layer written x @ W
            return outer_product(a, g)
        return unbroadcast(np.expand_dims(a, -1) * np.expand_dims(g, -2), b)
    if nb == 1:
        if na == 2:  # matrix @ vector: a vec-mat
            return g @ a
        return unbroadcast(np.matmul(np.expand_dims(g, -2), a)[..., 0, :], b)
    if na == 2 and nb == 2:
        return a.T @ g
    return unbroadcast(np.matmul(np.swapaxes(a, -1, -2), g), b)


matmul = prim(operator.matmul, _matmul_grad_a, _matmul_grad_b, name="matmul")


def _outer_fn(a: Any, b: Any) -> Any:
    return np.outer(a, b)


outer = prim(_outer_fn,
             lambda g, y, a, b: np.reshape(np.matmul(g, np.ravel(b)), shape_of(a)),
             lambda g, y, a, b: np.reshape(np.matmul(np.ravel(a), g), shape_of(b)),
             name="outer")  # fmt: skip


# --------------------------------------------------------------------------------------
# Shapes, reductions and indexing.
# --------------------------------------------------------------------------------------


def _kept_shape(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    if not shape:  # (a 0-d array's axis 0 or -1, which NumPy's reductions take)
        return shape
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(ax % len(shape) for ax in axes)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def spread(g: Any, shape: tuple[int, ...]) -> Any:
    """``g`` broadcast to ``shape``: the gradient of a reduction over the elements it read.

    A plain ``g`` is copied into a fresh array, ~0.5 us where ``np.broadcast_to`` takes
    ~3 us; the array is the gradient's own, so a leaf's gradient needs no further copy.
    """
    t = type(g)
    if t is np.ndarray or t is np.float64 or t is np.float32:
        out = np.empty(shape, g.dtype)
    elif t is float:
        out = np.empty(shape)
    else:  # a BVar being differentiated, or another type: the recorded broadcast
        return np.broadcast_to(g, shape)
    out[...] = g
    return out


def _sum_grad(g: Any, y: Any, a: Any, axis: Any = None, dtype: Any = None,
              out: Any = None, keepdims: bool = False, initial: Any = None,
              where: Any = True) -> Any:  # fmt: skip
    shape = shape_of(a)
    if type(a) is float:
        return g
    if axis is not None and not keepdims:
        kept = _kept_shape(shape, axis)
        g = g.reshape(kept) if type(g) is np.ndarray else np.reshape(g, kept)
    grad = spread(g, shape)
    if where is not True:  # the elements left out of the sum get nothing
        grad = np.where(primal(where), grad, 0.0)
    return grad


def _mean_grad(g: Any, y: Any, a: Any, axis: Any = None, dtype: Any = None,
               out: Any = None, keepdims: bool = False, where: Any = True) -> Any:  # fmt: skip
    shape = shape_of(a)
    if where is True:
        return _sum_grad(g, y, a, axis, keepdims=keepdims) / _count(shape, axis)
    mask = np.broadcast_to(primal(where), shape)
    # A group with nothing selected (its mean is NaN) gives its elements 0, not 0 / 0.
    counts = np.maximum(np.sum(mask, axis=axis, keepdims=True), 1)
    return _sum_grad(g, y, a, axis, keepdims=keepdims, where=mask) / counts


def _count(shape: tuple[int, ...], axis: Any) -> int:
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return math.prod(shape[ax] for ax in axes)


def _no_out(fn: Callable[..., Any], *unsupported: str) -> Callable[..., Any]:
    """``fn`` for BVars: refuses ``out=`` (and the keywords ``unsupported``), whose
    gradient the rules do not give, rather than record a wrong one."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("out") is not None:
            raise NotImplementedError(f"numpy.{fn.__name__} with out= cannot be recorded")
        for name in unsupported:
            value = kwargs.get(name, True)
            if value is not True and not (type(value) is np.bool_ and value):
                raise NotImplementedError(
                    f"numpy.{fn.__name__} with {name}= is not differentiable in hetgrad"
                )
        return fn(*args, **kwargs)

    checked.__name__ = fn.__name__
    return checked


def _sum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
         **kwargs: Any) -> Any:  # fmt: skip
    """``numpy.sum``; an array's own method where it can (a third of np.sum's overhead)."""
    if out is not None:
        raise NotImplementedError("numpy.sum with out= cannot be recorded")
    if type(a) is np.ndarray and not kwargs:
        return a.sum(axis, dtype, keepdims=keepdims)
    return np.sum(a, axis, dtype, keepdims=keepdims, **kwargs)


sum_ = prim(_sum, _sum_grad, name="sum", nondiff=(1,))
mean = prim(_no_out(np.mean), _mean_grad, name="mean", nondiff=(1,))


_np_reshape: Callable[..., Any] = np.reshape  # (its stubs want a literal order)


def _reshape(a: Any, *args: Any, order: str = "C", **kwargs: Any) -> Any:
    if order not in ("C", "F"):  # 'A' depends on the memory layout, which BVars do not keep
        raise NotImplementedError(f"numpy.reshape of a BVar with order={order!r}")
    return _np_reshape(a, *args, order=order, **kwargs)


reshape = prim(_reshape, lambda g, y, a, *r, order="C", **kw: np.reshape(g, shape_of(a),
               order=order), name="reshape", nondiff=(1,))  # fmt: skip
broadcast_to = prim(np.broadcast_to, lambda g, y, a, *r, **kw: unbroadcast(g, a),
                    name="broadcast_to", nondiff=(1,))  # fmt: skip
expand_dims = prim(np.expand_dims, lambda g, y, a, *r, **kw: np.reshape(g, shape_of(a)),
                   name="expand_dims", nondiff=(1,))  # fmt: skip
swapaxes = prim(np.swapaxes, lambda g, y, a, i, j: np.swapaxes(g, i, j),
                name="swapaxes", nondiff=(1, 2))  # fmt: skip


def _astype(a: Any, dtype: Any) -> Any:
    if isinstance(a, BVar):  # a BVar of an outer tape: record the cast there
        return a.astype(dtype)
    out = np.asarray(a).astype(dtype)
    return out if out.ndim or type(a) is np.ndarray else out[()]  # (0-d stays 0-d, as NumPy)


def _astype_grad(g: Any, y: Any, a: Any, dtype: Any) -> Any:
    """The cotangent cast back to the input's dtype (a float stays a float)."""
    if type(a) is float:
        return g if isinstance(g, BVar) else float(g)
    return (g if hasattr(g, "astype") else np.asarray(g)).astype(a.dtype)


astype = prim(_astype, _astype_grad, name="astype", nondiff=(1,))


def _transpose_grad(g: Any, y: Any, a: Any, axes: Any = None) -> Any:
    if axes is None:
        return np.transpose(g)
    n = ndim_of(a)
    return np.transpose(g, np.argsort([ax % n for ax in axes]))  # (negative axes counted)


transpose = prim(np.transpose, _transpose_grad, name="transpose", nondiff=(1,))
where = prim(np.where, None,  # type: ignore[arg-type]
             lambda g, y, c, a, b: unbroadcast(np.where(primal(c), g, 0.0), a),
             lambda g, y, c, a, b: unbroadcast(np.where(primal(c), 0.0, g), b),
             name="where", nondiff=(0,))  # fmt: skip


def _is_basic_index(key: Any) -> bool:
    """True if ``key`` selects each element at most once (no integer arrays or lists)."""
    parts = key if type(key) is tuple else (key,)
    return all(
        k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)) for k in parts
    )


def _scatter_fn(g: Any, key: Any, like: Any) -> Any:
    """Zeros shaped like ``like`` with ``g`` added at ``key`` (the gradient of indexing)."""
    if isinstance(g, BVar):  # a BVar of an outer tape (a higher derivative): record there
        return scatter_add(g, key, like)
    like = primal(like)
    tg = type(g)
    if type(like) is np.ndarray and (tg is float or tg is like.dtype.type):
        out = np.zeros(like.shape, like.dtype)  # (the usual case, without result_type)
    else:
        out = np.zeros(np.shape(like), dtype=np.result_type(like, g))
    if type(key) is int or _is_basic_index(key):
        out[key] = g
    else:
        np.add.at(out, key, g)  # repeated indices accumulate
    return out


def _getitem_grad(g: Any, y: Any, a: Any, key: Any) -> Any:
    # (a plain g needs no recording: the scatter is called directly, not through apply)
    return _scatter_fn(g, key, a) if type(g) is not BVar else scatter_add(g, key, a)


def unstack(a: BVar) -> Any:
    """``list(a)`` for a BVar of an array, as one node with an output per element: its
    pullback assembles the n gradients into one array, where n ``a[i]`` nodes would each
    scatter into an array of n zeros (``sum(v)`` over 64,000 elements took 3.6 s)."""
    tape = a._tape
    if tape.nodes is None:
        raise _escaped(tape)
    av = a._value
    rows = list(av)
    leaves, td = flatten(rows)

    def pullback(parts: list[Any]) -> tuple[Any]:
        if any(isinstance(p, BVar) for p in parts):  # being differentiated: recorded
            return (np.stack([np.zeros_like(r) if p is None else p for r, p in zip(rows, parts)]),)
        g = np.zeros(av.shape, av.dtype)
        for i, p in enumerate(parts):
            if p is not None:
                g[i] = p
        return (g,)

    return record_whole(tape, (a._index,), pullback, td, leaves, "iter")


scatter_add = prim(_scatter_fn, lambda h, y, g, key, like: h[key], name="scatter_add",
                   nondiff=(1, 2))  # fmt: skip
getitem = prim(operator.getitem, _getitem_grad, name="getitem", nondiff=(1,))


# --------------------------------------------------------------------------------------
# More elementwise functions (the rest of NumPy's differentiable ufuncs).
# --------------------------------------------------------------------------------------

LN2 = math.log(2.0)
LN10 = math.log(10.0)


def float_fast2(math_fn: Callable[[float, float], float], ufunc: Any) -> Callable[..., Any]:
    """Binary ``ufunc``, through ``math_fn`` when both operands are Python floats."""

    def f(a: Any, b: Any) -> Any:
        if type(a) is float and type(b) is float:
            try:
                return math_fn(a, b)
            except (ValueError, OverflowError, ZeroDivisionError):
                return float(ufunc(a, b))
        return ufunc(a, b)

    f.__name__ = ufunc.__name__
    return f


def _math_cbrt(x: float) -> float:
    return math.copysign(abs(x) ** (1.0 / 3.0), x)


def _math_exp2(x: float) -> float:
    return 2.0**x


# math.cbrt and math.exp2 are new in Python 3.11.
_cbrt_float: Callable[[float], float] = getattr(math, "cbrt", _math_cbrt)
_exp2_float: Callable[[float], float] = getattr(math, "exp2", _math_exp2)


def _math_reciprocal(x: float) -> float:
    return 1.0 / x


def safe_quotient(a: Any, b: Any) -> Any:
    """``a / b``, but 0 where ``b`` is 0 (for gradients whose numerator vanishes there)."""
    pb = primal(b)
    if type(pb) is float:
        return a / b if pb != 0.0 else 0.0 * a
    nz = pb != 0
    if np.all(nz):
        return a / b
    return np.where(nz, a, 0.0) / np.where(nz, b, 1.0)


def _fmax_split(a: Any, b: Any, first: bool) -> Any:
    """Like :func:`_tie_split`, but a NaN operand loses (``fmax``/``fmin`` ignore NaN)."""
    pa, pb = primal(a), primal(b)
    with np.errstate(invalid="ignore"):
        win = (pa > pb) if first else (pa < pb)
    split = (win | np.isnan(pb)) * ~np.isnan(pa) + 0.5 * (pa == pb)
    return _in_float_dtype(split, pa, pb) if type(split) is np.ndarray else split


# |y| <= 4096 everywhere (a sum of squares <= 4096 ** 2): then exp(x - y) is accurate to
# ~1e-12, though y = logaddexp(...) is rounded; beyond, x - y loses the ulp of y.
EXACT_SHIFT_SQUARES = 4096.0**2


def _logaddexp_weight(x: Any, other: Any, y: Any, base_exp: Callable[[Any], Any],
                      base_logaddexp: Any) -> Any:  # fmt: skip
    """The share of ``x`` in ``y = logaddexp(x, other)``: ``base_exp(x - y)``.

    For small ``|y|`` that formula; otherwise ``1 / (1 + base^(other - x))``, computed
    stably, which needs no rounded ``y``.  Where ``x`` and ``other`` are the same infinity
    it is undefined; the limit is 1/2 (they share it).
    """
    py = primal(y)
    if type(py) is float and -4096.0 <= py <= 4096.0:
        return base_exp(x - y)
    with np.errstate(invalid="ignore"):  # (the same infinities: NaN, replaced below)
        w = base_exp(-base_logaddexp(0.0, other - x))
    px = primal(x)
    same_infinity = (px == primal(other)) & np.isinf(px)
    return np.where(same_infinity, 0.5, w) if np.any(same_infinity) else w


def exact_shift(y: Any) -> bool:
    """True if ``exp(x - y)``, with ``y`` a rounded log-sum-exp, is accurate: float64 with
    every ``|y| <= 4096`` (one vdot).  Never in float32 or float16, whose ulp of ``y`` is
    far larger; there the callers take the formula that needs no ``y``."""
    return y.dtype == np.float64 and np.vdot(y, y) <= EXACT_SHIFT_SQUARES


def _shift_by_max(a: Any, m: Any) -> Any:
    if isinstance(a, BVar):  # a BVar of an outer tape: record there
        return shift_by_max_p(a, m)
    if all_finite(m):
        return a - m
    with np.errstate(invalid="ignore"):
        d = a - m
    return np.where(a == m, 0.0, d)


# The shift is a constant, so the gradient is g itself, at the infinite entries too.
shift_by_max_p = prim(_shift_by_max, lambda g, y, a, m: g, name="shift_by_max", nondiff=(1,))


def shift_by_max(a: Any, m: Any) -> Any:
    """``a - m``, ``m`` being the (constant) maximum of ``a`` along some axes, kept, with 0
    where both are the same infinity: a row of ``-inf``, or the ``+inf`` entries of a row.
    Those are the limits along ``a = c * ones`` (softmax is uniform there, and shares 1
    among the ``+inf`` entries), where the plain difference is NaN."""
    return shift_by_max_p(a, m) if isinstance(a, BVar) else _shift_by_max(a, m)


def all_finite(a: np.ndarray) -> bool:
    """True if every element of ``a`` is finite, or False (then the caller takes its careful
    path) if the sum of squares overflows.  One BLAS call: cheaper than ``isfinite().all()``."""
    return math.isfinite(np.vdot(a, a))


def _fp_base(g: Any, y: Any, a: Any, b: Any) -> Any:
    # as _pow_base
    return unbroadcast(g * b * np.float_power(_base_for_zero_exponent(a, b), b - 1.0), a)


def _in_dtype_of(y: Any, v: Any) -> Any:
    """``v`` in the float dtype of the output ``y`` where it is narrower (a rule squaring a
    float16 constant in float16 would lose a float64 output's digits)."""
    want = np.result_type(primal(y))
    pv = primal(v)
    if type(pv) is float or want.kind != "f" or np.result_type(pv) == want:
        return v
    return v.astype(want) if isinstance(v, BVar) else np.asarray(pv, dtype=want)


def _arctan2_norm(y: Any, a: Any, b: Any) -> Any:
    """``a * a + b * b`` in the output's dtype."""
    a, b = _in_dtype_of(y, a), _in_dtype_of(y, b)
    return a * a + b * b


tan_ = float_fast(math.tan, np.tan)
arcsin_ = float_fast(math.asin, np.arcsin)
arccos_ = float_fast(math.acos, np.arccos)
arctan_ = float_fast(math.atan, np.arctan)
sinh_ = float_fast(math.sinh, np.sinh)
cosh_ = float_fast(math.cosh, np.cosh)
arcsinh_ = float_fast(math.asinh, np.arcsinh)
arccosh_ = float_fast(math.acosh, np.arccosh)
arctanh_ = float_fast(math.atanh, np.arctanh)
exp2_ = float_fast(_exp2_float, np.exp2)
expm1_ = float_fast(math.expm1, np.expm1)
log2_ = float_fast(math.log2, np.log2)
log10_ = float_fast(math.log10, np.log10)
log1p_ = float_fast(math.log1p, np.log1p)
cbrt_ = float_fast(_cbrt_float, np.cbrt)
reciprocal_ = float_fast(_math_reciprocal, np.reciprocal)
arctan2_ = float_fast2(math.atan2, np.arctan2)
hypot_ = float_fast2(math.hypot, np.hypot)

tan = prim(tan_, lambda g, y, a: g * (1.0 + y * y), name="tan")
# (safe_divide: at the domain's edge a Python float divides by 0.0, and gets NumPy's inf.)
arcsin = prim(arcsin_, lambda g, y, a: safe_divide(g, sqrt_(1.0 - a * a)), name="arcsin")
arccos = prim(arccos_, lambda g, y, a: safe_divide(-g, sqrt_(1.0 - a * a)), name="arccos")
arctan = prim(arctan_, lambda g, y, a: g / (1.0 + a * a), name="arctan")
sinh = prim(sinh_, lambda g, y, a: g * cosh_(a), name="sinh")
cosh = prim(cosh_, lambda g, y, a: g * sinh_(a), name="cosh")
arcsinh = prim(arcsinh_, lambda g, y, a: g / sqrt_(a * a + 1.0), name="arcsinh")
arccosh = prim(arccosh_, lambda g, y, a: safe_divide(g, sqrt_(a * a - 1.0)), name="arccosh")
arctanh = prim(arctanh_, lambda g, y, a: safe_divide(g, 1.0 - a * a), name="arctanh")
exp2 = prim(exp2_, lambda g, y, a: g * y * LN2, name="exp2")
expm1 = prim(expm1_, lambda g, y, a: g * (y + 1.0), name="expm1")
log2 = prim(log2_, lambda g, y, a: safe_divide(g, a * LN2), name="log2")
log10 = prim(log10_, lambda g, y, a: safe_divide(g, a * LN10), name="log10")
log1p = prim(log1p_, lambda g, y, a: safe_divide(g, 1.0 + a), name="log1p")
cbrt = prim(cbrt_, lambda g, y, a: safe_divide(g, 3.0 * y * y), name="cbrt")
reciprocal = prim(reciprocal_, lambda g, y, a: -g * y * y, name="reciprocal")
float_power = prim(np.float_power, _fp_base,
                   lambda g, y, a, b: unbroadcast(
                       g * y * _log_where_positive(a, np.result_type(primal(y))), b),
                   name="float_power")  # fmt: skip
arctan2 = prim(arctan2_,
               lambda g, y, a, b: unbroadcast(safe_divide(g * b, _arctan2_norm(y, a, b)), a),
               lambda g, y, a, b: unbroadcast(safe_divide(-g * a, _arctan2_norm(y, a, b)), b),
               name="arctan2")  # fmt: skip
hypot = prim(hypot_, lambda g, y, a, b: unbroadcast(g * safe_quotient(a, y), a),
             lambda g, y, a, b: unbroadcast(g * safe_quotient(b, y), b), name="hypot")  # fmt: skip
fmax = prim(np.fmax, lambda g, y, a, b: unbroadcast(g * _fmax_split(a, b, True), a),
            lambda g, y, a, b: unbroadcast(g * _fmax_split(b, a, True), b),
            name="fmax")  # fmt: skip
fmin = prim(np.fmin, lambda g, y, a, b: unbroadcast(g * _fmax_split(a, b, False), a),
            lambda g, y, a, b: unbroadcast(g * _fmax_split(b, a, False), b),
            name="fmin")  # fmt: skip


def _logaddexp_grad(k: int, ufunc: Any, base_exp: Callable[[Any], Any],
                    base_logaddexp: Any) -> Callable[..., Any]:  # fmt: skip
    """The rule for operand ``k`` of ``logaddexp`` (``ufunc``) or ``logaddexp2``.

    Plain arrays whose output is finite and at most 4096 in size (nearly every call) take
    a short path, the textbook ``g * exp(x - y)``: half the cost of the general one.  The
    guard, one ``vdot``, is what keeps the gradient right at infinities and large values.
    """

    def general(g: Any, y: Any, x: Any, other: Any) -> Any:
        if type(y) is np.ndarray and type(x) is np.ndarray and exact_shift(y):
            gx = g * ufunc(x - y)
            return gx if gx.shape == x.shape else unbroadcast(gx, x)
        return unbroadcast(g * _logaddexp_weight(x, other, y, base_exp, base_logaddexp), x)

    if k == 0:
        return general
    return lambda g, y, a, b: general(g, y, b, a)


# x mod c = x - c * floor(x / c) (fmod: trunc); the quotient is piecewise constant.
def _quotient(y: Any, a: Any, b: Any) -> Any:
    """The integer ``q`` of ``y = a - q b`` as NumPy's own ``y`` has it: ``floor(a / b)``
    can round to the next integer (``1.0 % 0.1`` is ``0.0999...``, with q = 9, not 10)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.round(np.divide(np.subtract(primal(a), primal(y)), primal(b)))


remainder = prim(np.remainder, lambda g, y, a, b: unbroadcast(g, a),
                 lambda g, y, a, b: unbroadcast(-g * _quotient(y, a, b), b),
                 name="remainder")  # fmt: skip
fmod = prim(np.fmod, lambda g, y, a, b: unbroadcast(g, a),
            lambda g, y, a, b: unbroadcast(-g * _quotient(y, a, b), b), name="fmod")  # fmt: skip
# Angles: scalings by a constant.
DEGREE = math.pi / 180.0
deg2rad = prim(np.deg2rad, lambda g, y, a: g * DEGREE, name="deg2rad")
rad2deg = prim(np.rad2deg, lambda g, y, a: g * (1.0 / DEGREE), name="rad2deg")
fabs = prim(np.fabs, *absolute.vjps, name="fabs")
conjugate = prim(np.conjugate, lambda g, y, a: g, name="conjugate")  # (of real values)


def _copysign_grad(g: Any, y: Any, a: Any, b: Any) -> Any:
    """``copysign(a, b)`` is ``a`` or ``-a``: the sign flip where ``a`` and the result
    differ in sign, and 0 at ``a = 0`` (the subgradient ``abs`` has there)."""
    pa, py = primal(a), primal(y)
    flip = _in_float_dtype(np.sign(pa) * np.copysign(1.0, py), pa, primal(b))
    return unbroadcast(g * flip, a)


def _no_grad(g: Any, y: Any, a: Any, b: Any) -> Any:
    """The zero gradient of an operand that only selects (the sign in ``copysign``)."""
    return np.zeros(shape_of(b), np.result_type(primal(g)))


copysign = prim(np.copysign, _copysign_grad, _no_grad, name="copysign")
ldexp = prim(np.ldexp, lambda g, y, a, n: unbroadcast(np.ldexp(g, n), a), name="ldexp",
             nondiff=(1,))  # fmt: skip
PIECEWISE_CONSTANT_UFUNCS.update({np.heaviside, np.spacing})
logaddexp = prim(np.logaddexp, _logaddexp_grad(0, np.exp, exp_, np.logaddexp),
                 _logaddexp_grad(1, np.exp, exp_, np.logaddexp), name="logaddexp")  # fmt: skip
logaddexp2 = prim(np.logaddexp2, _logaddexp_grad(0, np.exp2, exp2_, np.logaddexp2),
                  _logaddexp_grad(1, np.exp2, exp2_, np.logaddexp2), name="logaddexp2")  # fmt: skip


# Rules that read no input values (only shapes, or the output): the tape keeps ShapeOf.
unread(add, 0, 1)
unread(subtract, 0, 1)
for _p in (negative, exp, tanh, sqrt, sum_, mean, reshape, broadcast_to, expand_dims,
           swapaxes, transpose, astype, shift_by_max_p):  # fmt: skip
    unread(_p, 0)
# Rules that do not read the output.
output_unread(add, subtract, multiply, negative, absolute, square, log, sin, cos, maximum,
              minimum, matmul, outer, sum_, mean, reshape, broadcast_to, expand_dims,
              swapaxes, transpose, where, getitem, astype, shift_by_max_p)  # fmt: skip


# --------------------------------------------------------------------------------------
# Dispatch from NumPy.
# --------------------------------------------------------------------------------------

UFUNCS.update({
    np.add: add, np.subtract: subtract, np.multiply: multiply, np.divide: np_divide,
    np.true_divide: np_divide, np.power: np_power, np.negative: negative, np.absolute: absolute,
    np.square: square, np.exp: exp, np.log: log, np.sin: sin, np.cos: cos, np.tanh: tanh,
    np.sqrt: sqrt, np.maximum: maximum, np.minimum: minimum, np.matmul: matmul,
    np.tan: tan, np.arcsin: arcsin, np.arccos: arccos, np.arctan: arctan, np.sinh: sinh,
    np.cosh: cosh, np.arcsinh: arcsinh, np.arccosh: arccosh, np.arctanh: arctanh,
    np.exp2: exp2, np.expm1: expm1, np.log2: log2, np.log10: log10, np.log1p: log1p,
    np.cbrt: cbrt, np.reciprocal: reciprocal, np.float_power: float_power,
    np.arctan2: arctan2, np.hypot: hypot, np.fmax: fmax, np.fmin: fmin,
    np.remainder: remainder, np.fmod: fmod,
    np.logaddexp: logaddexp, np.logaddexp2: logaddexp2,
    np.deg2rad: deg2rad, np.radians: deg2rad, np.rad2deg: rad2deg, np.degrees: rad2deg,
    np.fabs: fabs, np.conjugate: conjugate, np.copysign: copysign, np.ldexp: ldexp,
})  # fmt: skip


def _positive(x: Any) -> Any:
    return x


UFUNCS[np.positive] = prim(_positive, lambda g, y, a: g, name="positive")

FUNCTIONS.update({
    np.sum: sum_, np.mean: mean, np.outer: outer, np.reshape: reshape,
    np.transpose: transpose, np.swapaxes: swapaxes, np.broadcast_to: broadcast_to,
    np.expand_dims: expand_dims, np.where: where,
    np.shape: lambda a: np.shape(primal(a)), np.ndim: lambda a: np.ndim(primal(a)),
    np.size: lambda a, axis=None: np.size(primal(a), axis),
    np.result_type: lambda *xs: np.result_type(*[primal(x) for x in xs]),
})  # fmt: skip


def dispatch_ufunc(ufunc: Any, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A NumPy ufunc called with a BVar among its inputs."""
    p = UFUNCS.get(ufunc)
    if p is not None:
        if kwargs:  # where=, dtype=, casting=, ...: rules for the plain call only
            raise NotImplementedError(
                f"numpy.{ufunc.__name__}(..., {', '.join(f'{k}=' for k in kwargs)}) is not "
                "differentiable in hetgrad; call it without keywords (for where=, use "
                "numpy.where on the result)"
            )
        if len(inputs) == 1 and type(inputs[0]) is BVar:
            return unary(p, inputs[0])
        if len(inputs) == 2:
            return binary_call(p, inputs[0], inputs[1])
        return apply(p, inputs, kwargs)
    if ufunc in PIECEWISE_CONSTANT_UFUNCS:
        return ufunc(*[primal(x) for x in inputs], **kwargs)
    composed = COMPOSED_UFUNCS.get(ufunc)
    if composed is not None:
        return composed(*inputs, **kwargs)
    raise NotImplementedError(
        f"numpy.{ufunc.__name__} is not differentiable in hetgrad yet; lift it with "
        "hetgrad.primitive and defvjp, or apply it to bvar.value if no gradient should flow"
    )


# What to use instead, where NumPy reaches an unlifted function from a lifted one:
# np.full_like(array, bvar) dispatches on its first argument only, then copies the BVar in.
_DISPATCH_HINTS = {
    np.copyto: "for np.full_like(array, bvar) use hetgrad.numpy.full_like or full; ",
}


def dispatch_function(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A NumPy function (``__array_function__`` protocol) called with a BVar argument."""
    impl = FUNCTIONS.get(func)
    if impl is None:
        name = getattr(func, "__module__", "numpy") or "numpy"
        full = f"{name}.{func.__name__}".replace("numpy._core", "numpy").replace(
            "numpy.core", "numpy"
        )
        hint = _DISPATCH_HINTS.get(func, "")
        raise NotImplementedError(
            f"{full} is not differentiable in hetgrad yet (calling it on a BVar would drop "
            f"the tape); {hint}lift it with hetgrad.primitive and defvjp, or apply it to "
            "bvar.value if no gradient should flow"
        )
    return impl(*args, **kwargs)
