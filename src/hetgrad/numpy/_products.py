"""Products: dot, vdot, inner, tensordot, einsum, kron, cross (matmul and outer: rules)."""

from __future__ import annotations

import functools
import string
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import rules
from ..rules import multiply, output_unread, prim, unbroadcast
from ..tape import BVar, Primitive, apply, binary_call
from ._core import lift, ndim_of, shape_of
from ._shape import moveaxis, ravel, reshape, stack

# --------------------------------------------------------------------------------------
# tensordot
# --------------------------------------------------------------------------------------


def _axes_pair(axes: Any, na: int, nb: int) -> tuple[list[int], list[int]]:
    if isinstance(axes, (int, np.integer)):
        return list(range(na - int(axes), na)), list(range(int(axes)))
    xa, xb = axes
    xa = [xa] if isinstance(xa, (int, np.integer)) else list(xa)
    xb = [xb] if isinstance(xb, (int, np.integer)) else list(xb)
    return [int(i) % na for i in xa], [int(i) % nb for i in xb]


def _tensordot_grad_a(g: Any, y: Any, a: Any, b: Any, axes: Any = 2) -> Any:
    na, nb = ndim_of(a), ndim_of(b)
    xa, xb = _axes_pair(axes, na, nb)
    free_a = [i for i in range(na) if i not in xa]
    free_b = [i for i in range(nb) if i not in xb]
    t = np.tensordot(g, b, axes=(list(range(len(free_a), ndim_of(g))), free_b))
    order = free_a + [xa[xb.index(i)] for i in sorted(xb)]  # the a-axis of each axis of t
    return np.transpose(t, np.argsort(order))


def _tensordot_grad_b(g: Any, y: Any, a: Any, b: Any, axes: Any = 2) -> Any:
    na, nb = ndim_of(a), ndim_of(b)
    xa, xb = _axes_pair(axes, na, nb)
    free_a = [i for i in range(na) if i not in xa]
    free_b = [i for i in range(nb) if i not in xb]
    t = np.tensordot(a, g, axes=(free_a, list(range(len(free_a)))))
    order = [xb[xa.index(i)] for i in sorted(xa)] + free_b
    return np.transpose(t, np.argsort(order))


tensordot = prim(np.tensordot, _tensordot_grad_a, _tensordot_grad_b, name="tensordot",
                 nondiff=(2,))  # fmt: skip


@lift(np.dot)
def dot(a: Any, b: Any, out: Any = None) -> Any:
    """``numpy.dot``: scalars multiply, up to 2-D uses matmul, beyond that tensordot."""
    if out is not None:
        raise NotImplementedError("numpy.dot with out= cannot be recorded")
    a, b = _array_if_list(a), _array_if_list(b)
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        return multiply(a, b)
    if na <= 2 and nb <= 2:
        return rules.matmul(a, b)
    return tensordot(a, b, axes=([-1], [0 if nb == 1 else -2]))


def _array_if_list(x: Any) -> Any:
    """A constant written as a list or tuple, as the array NumPy reads it as (the rules
    compute with it)."""
    return np.asarray(x) if type(x) is list or type(x) is tuple else x


@lift(np.vdot)
def vdot(a: Any, b: Any) -> Any:
    return rules.matmul(ravel(a), ravel(b))


@lift(np.inner)
def inner(a: Any, b: Any) -> Any:
    if ndim_of(a) == 0 or ndim_of(b) == 0:
        return multiply(a, b)
    out = tensordot(a, b, axes=([-1], [-1]))
    return out[()] if ndim_of(a) == ndim_of(b) == 1 else out  # a scalar, as NumPy gives


@lift(np.kron)
def kron(a: Any, b: Any) -> Any:
    """Kronecker product as an interleaved outer product, reshaped."""
    d = max(ndim_of(a), ndim_of(b))
    sa = (1,) * (d - ndim_of(a)) + shape_of(a)
    sb = (1,) * (d - ndim_of(b)) + shape_of(b)
    ai = reshape(a, tuple(n for s in sa for n in (s, 1)))
    bi = reshape(b, tuple(n for s in sb for n in (1, s)))
    return reshape(ai * bi, tuple(x * y for x, y in zip(sa, sb)))


@lift(np.cross)
def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: Any = None) -> Any:  # fmt: skip
    """Cross product of 3-vectors (2-vectors give the z component, as in NumPy)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = moveaxis(a, axisa, -1), moveaxis(b, axisb, -1)
    na, nb = shape_of(a)[-1], shape_of(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("incompatible dimensions for cross product (dimension must be 2 or 3)")
    if na == 2 and nb == 2:
        return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    a0, a1 = a[..., 0], a[..., 1]
    b0, b1 = b[..., 0], b[..., 1]
    a2 = a[..., 2] if na == 3 else 0.0
    b2 = b[..., 2] if nb == 3 else 0.0
    c = stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return moveaxis(c, -1, axisc)


# --------------------------------------------------------------------------------------
# einsum
# --------------------------------------------------------------------------------------


def _parse_einsum(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """Explicit per-operand subscripts and output, with ``...`` replaced by fresh letters."""
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        ins, out = subscripts.split("->")
    else:
        ins = subscripts
        letters = ins.replace("...", "").replace(",", "")
        out = ("..." if "..." in ins else "") + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1)
        )
    inputs = ins.split(",")
    if len(inputs) != len(shapes):
        raise ValueError("einsum: the number of subscripts does not match the operands")
    unused = [c for c in string.ascii_letters if c not in subscripts]
    ell = max([len(s) - (len(sub) - 3) for sub, s in zip(inputs, shapes) if "..." in sub],
              default=0)  # fmt: skip
    fresh = "".join(unused[:ell])
    explicit = []
    for sub, s in zip(inputs, shapes):
        if "..." in sub:
            k = len(s) - (len(sub) - 3)
            sub = sub.replace("...", fresh[ell - k :])
        explicit.append(sub)
    return explicit, out.replace("...", fresh)


class _OperandPlan(NamedTuple):
    """How one operand's gradient is computed from the cotangent and the other operands."""

    spec: str  # the einsum over ``[g] + others`` giving the operand's distinct letters
    others: tuple[int, ...]  # the other operands' positions
    full: tuple[tuple[int, ...], ...] | None  # shapes to broadcast [g] + others to, if needed
    expand: tuple[tuple[int, ...], tuple[int, ...]] | None  # letters summed away: a reshape
    diagonal: tuple[str, tuple[int, ...]] | None  # repeated letters: a spec and eye sizes
    unbroadcast: bool  # the operand was broadcast (a size-1 axis against a longer one)

    @property
    def direct(self) -> bool:
        """The gradient is one einsum of ``[g] + others``, with nothing to undo."""
        return (self.full is None and self.expand is None and self.diagonal is None
                and not self.unbroadcast)  # fmt: skip


@functools.lru_cache(maxsize=256)
def _einsum_plan(subscripts: str, shapes: tuple[tuple[int, ...], ...]) -> list[_OperandPlan]:
    """Per operand, the plan for its gradient (made once per subscripts and shapes)."""
    subs, out = _parse_einsum(subscripts, list(shapes))
    sizes: dict[str, int] = {}
    for sub, s in zip(subs, shapes):
        for c, n in zip(sub, s):
            sizes[c] = n if sizes.get(c, 1) == 1 else sizes[c]  # (broadcast 1s; 0 stays 0)
    spare = [c for c in string.ascii_letters if c not in sizes]
    plans = []
    for k, sub_k in enumerate(subs):
        others = tuple(j for j in range(len(subs)) if j != k)
        specs = [out] + [subs[j] for j in others]
        full = tuple(tuple(sizes[c] for c in sp) for sp in specs)
        broadcast = any(shapes[j] != f for j, f in zip(others, full[1:]))
        unique = "".join(dict.fromkeys(sub_k))
        present = set("".join(specs))
        keep = "".join(c for c in unique if c in present)
        expand = None
        if keep != unique:  # letters summed away in the forward pass: broadcast back
            expand = (tuple(sizes[c] if c in keep else 1 for c in unique),
                      tuple(sizes[c] for c in unique))  # fmt: skip
        diagonal = None
        if unique != sub_k:  # repeated letters (a diagonal): put the result on it
            eyes, target, seen, fresh = [], "", set(), iter(spare)
            for c in sub_k:
                if c in seen:
                    f = next(fresh)
                    eyes.append((c + f, sizes[c]))
                    target += f
                else:
                    seen.add(c)
                    target += c
            spec = ",".join([unique] + [e for e, _ in eyes]) + "->" + target
            diagonal = (spec, tuple(n for _, n in eyes))
        plans.append(_OperandPlan(
            ",".join(specs) + "->" + keep, others, full if broadcast else None, expand,
            diagonal, shapes[k] != tuple(sizes[c] for c in sub_k),
        ))  # fmt: skip
    return plans


# NumPy's einsum minus its __array_function__ dispatch, for operands that are plain values
# (about 0.6 us a call on small arrays); BVars of an outer tape need the dispatching one.
_plain_einsum = getattr(np.einsum, "_implementation", np.einsum)
# The C function that ``numpy.einsum(..., optimize=False)`` calls: another 0.3 us less.
_c_einsum: Callable[..., Any] = getattr(
    getattr(getattr(np, "_core", None), "multiarray", None), "c_einsum", _plain_einsum
)


def _einsum_call(spec: str, ops: Sequence[Any], optimize: Any, **kwargs: Any) -> Any:
    for x in ops:
        if isinstance(x, BVar):
            return np.einsum(spec, *ops, optimize=optimize, **kwargs)
    if optimize is False:
        return _c_einsum(spec, *ops, **kwargs)
    return _plain_einsum(spec, *ops, optimize=optimize, **kwargs)


def _operand_grad(g: Any, vals: tuple[Any, ...], plan: _OperandPlan, optimize: Any) -> Any:
    """One operand's gradient, following its plan (before undoing its broadcasting)."""
    ops = [g] + [vals[j] for j in plan.others]
    if plan.full is not None:
        ops = [x if shape_of(x) == s else np.broadcast_to(x, s) for x, s in zip(ops, plan.full)]
    r = _einsum_call(plan.spec, ops, optimize)
    if plan.expand is not None:
        r = np.broadcast_to(reshape(r, plan.expand[0]), plan.expand[1])
    if plan.diagonal is not None:
        spec, sizes = plan.diagonal
        r = _einsum_call(spec, [r, *[np.eye(n) for n in sizes]], optimize)
    return r


@functools.lru_cache(maxsize=256)
def _einsum_primitive(subscripts: str, n: int) -> Primitive:
    """``einsum(subscripts, *operands)`` for ``n`` operands as a primitive, so it is recorded
    (and, with two operands, dispatched) like any other operation."""

    def fn(*ops: Any, optimize: Any = False, **kwargs: Any) -> Any:
        return _einsum_call(subscripts, ops, optimize, **kwargs)

    def rule(k: int) -> Any:
        def vjp(g: Any, y: Any, *vals: Any, optimize: Any = False, **kwargs: Any) -> Any:
            plan = _einsum_plan(subscripts, tuple([shape_of(v) for v in vals]))[k]
            grad = _operand_grad(g, vals, plan, optimize)
            return unbroadcast(grad, vals[k]) if plan.unbroadcast else grad

        return vjp

    if n == 2:
        return _einsum2_primitive(subscripts, fn, rule)
    p = prim(fn, *[rule(k) for k in range(n)], name="einsum")
    output_unread(p)  # the rules read the operands only
    return p


def _einsum2_primitive(subscripts: str, fn: Any, rule: Any) -> Primitive:
    """Two operands, the usual case, with fast paths that cost a third of the general ones:
    the forward pass and each gradient are one call of NumPy's C einsum when the values are
    plain arrays and the gradient needs no broadcasting undone (the plan says ``direct``)."""
    slow = (rule(0), rule(1))

    def fn2(a: Any, b: Any, **kwargs: Any) -> Any:
        if not kwargs and type(a) is np.ndarray and type(b) is np.ndarray:
            return _c_einsum(subscripts, a, b)
        return fn(a, b, **kwargs)

    def fast(k: int) -> Any:
        def vjp(g: Any, y: Any, a: Any, b: Any, **kwargs: Any) -> Any:
            if not kwargs and type(a) is np.ndarray and type(b) is np.ndarray \
                    and type(g) is np.ndarray:  # fmt: skip
                plan = _einsum_plan(subscripts, (a.shape, b.shape))[k]
                if plan.direct:
                    return _c_einsum(plan.spec, g, b if k == 0 else a)
            return slow[k](g, y, a, b, **kwargs)

        return vjp

    p = prim(fn2, fast(0), fast(1), name="einsum")
    output_unread(p)  # the rules read the operands only
    return p


# NumPy's letters for sublist labels: 0-25 are A-Z, 26-51 are a-z (so an implicit output
# in alphabetical order is in the labels' numeric order).
_SUBLIST_LETTERS = string.ascii_uppercase + string.ascii_lowercase


def _sublist_subscripts(args: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """NumPy's interleaved form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as a subscripts
    string and the operands (``Ellipsis`` in a sublist is ``...``)."""
    output = args[-1] if len(args) % 2 else None
    if output is not None:
        args = args[:-1]
    operands, sublists = args[0::2], args[1::2]
    given = sublists if output is None else (*sublists, output)
    if not operands or not all(type(sub) in (list, tuple) for sub in given):
        raise ValueError("einsum: each operand needs a sublist of subscripts (a list of ints)")

    def letters(sub: Any) -> str:
        out = []
        for i in sub:
            if i is Ellipsis:
                out.append("...")
            elif isinstance(i, (int, np.integer)) and 0 <= i < 52:
                out.append(_SUBLIST_LETTERS[int(i)])
            else:
                raise ValueError(f"einsum: a subscript must be an int in [0, 52), got {i!r}")
        return "".join(out)

    spec = ",".join(letters(sub) for sub in sublists)
    return (spec if output is None else f"{spec}->{letters(output)}"), operands


@lift(np.einsum)
def einsum(subscripts: Any, *operands: Any, out: Any = None, optimize: Any = False,
           **kwargs: Any) -> Any:  # fmt: skip
    """``numpy.einsum``: string subscripts (explicit ``->`` or implicit), or NumPy's
    interleaved operand/sublist form."""
    if out is not None:
        raise NotImplementedError("numpy.einsum(..., out=) of BVars is not lifted (in place)")
    if not isinstance(subscripts, str):
        subscripts, operands = _sublist_subscripts((subscripts, *operands))
    p = _einsum_primitive(subscripts, len(operands))
    if len(operands) == 2 and optimize is False and not kwargs:
        return binary_call(p, operands[0], operands[1])
    return apply(p, operands, dict(kwargs, optimize=optimize))


rules.FUNCTIONS[np.tensordot] = tensordot
