"""Higher-order and forward-mode derivatives: jacobian, hessian, hvp, jvp.

All of them are built from the reverse mode by nesting runners, which the tape supports
to any order (each runner records on its own tape; an outer runner records the inner
backward pass):

* ``jacobian`` runs one reverse pass per output element;
* ``hessian(f)`` is ``jacobian(grad(f))``;
* ``hvp`` is reverse-over-reverse: the gradient of ``<grad f(x), v>``, never forming the
  Hessian (cost: about two gradients);
* ``jvp`` is the transpose of the VJP: the pullback is linear in its cotangent ``u``, so the
  gradient of ``<pullback(u), t>`` with respect to ``u`` is ``J t``.  It costs one forward
  pass and two reverse passes, and is exact (no finite differences).

>>> import numpy as np, hetgrad
>>> hetgrad.hessian(lambda x: x[0] ** 2 * x[1])(np.array([1.0, 2.0]))
array([[4., 2.],
       [2., 0.]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import tree
from .protocol import instance_for, one, zero
from .runners import (
    _argnums,
    _callable,
    _has_static_leaf,
    _plain_argnums,
    backprop_with,
    grad_bp,
    gradient_of,
    pullback_of,
)
from .tape import primal
from .tree import flatten, unflatten

__all__ = ["jacobian", "hessian", "hvp", "jvp"]


def _partial(
    f: Callable[..., Any], args: Sequence[Any], nums: tuple[int, ...], kwargs: dict[str, Any]
) -> Callable[..., Any]:
    """``f`` as a function of the arguments in ``nums`` only."""

    def g(*diff_args: Any) -> Any:
        full = list(args)
        for i, a in zip(nums, diff_args):
            full[i] = a
        return f(*full, **kwargs)

    return g


def _one_hot_cotangents(out_leaves: list[Any], which: int) -> list[Any]:
    """Every one-hot cotangent for output leaf ``which`` (zeros elsewhere), in C order."""
    base = [zero(primal(v)) for v in out_leaves]
    leaf = primal(out_leaves[which])
    if np.ndim(leaf) == 0:
        cts = list(base)
        cts[which] = 1.0 if isinstance(leaf, float) else np.ones_like(leaf)
        return [cts]
    rows = []
    for k in np.ndindex(np.shape(leaf)):
        e = np.zeros_like(leaf)
        e[k] = 1.0
        cts = list(base)
        cts[which] = e
        rows.append(cts)
    return rows


def _check_differentiable_output(name: str, leaves: list[Any], td: Any, y: Any) -> None:
    """An output with static leaves and no float leaf (``x > 0``, ``argmax``) has no
    derivative: say so, rather than hand its value back as one."""
    if not leaves and _has_static_leaf(td):
        raise TypeError(
            f"{name}: the output ({type(y).__name__}) has no float leaf to differentiate "
            "(booleans, integers and strings are constants); return a float value"
        )


def _stack_block(rows: list[Any], out_shape: tuple[int, ...]) -> Any:
    """Rows of input-shaped gradients -> one array of shape out_shape + in_shape."""
    if out_shape == ():
        return rows[0]
    stacked = np.stack(rows)
    return np.reshape(stacked, out_shape + np.shape(primal(rows[0])))


def jacobian(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The Jacobian of ``f`` (reverse mode: one pass per output element).

    For arrays the result has shape ``out.shape + in.shape``.  For structures it is a
    structure of structures: the output's structure outside, the input's inside (a tuple of
    them when ``argnums`` is a tuple).  Outputs are floats and float arrays: an output of a
    type registered with ``register_backprop`` is a TypeError (pull a cotangent of that type
    back with :func:`backprop_with` instead).

    >>> import numpy as np, hetgrad
    >>> hetgrad.jacobian(lambda x: x * x)(np.array([1.0, 2.0]))
    array([[2., 0.],
           [0., 4.]])
    >>> hetgrad.jacobian(lambda d: (d["a"] * d["b"], d["a"]))({"a": 2.0, "b": 3.0})
    ({'a': 3.0, 'b': 2.0}, {'a': 1.0, 'b': 0.0})
    """

    _callable(f, "jacobian")
    return _jacobian(f, argnums, "jacobian")


def _jacobian(f: Callable[..., Any], argnums: int | Sequence[int], runner: str) -> Any:
    argnums = _plain_argnums(argnums)

    def jac(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums(argnums, len(args), runner)
        g = _partial(f, args, nums, kwargs)
        y, pullback = pullback_of(g, [args[i] for i in nums], runner)
        out_leaves, out_def = flatten(y)
        _check_differentiable_output(runner, out_leaves, out_def, y)
        blocks = []
        for j, leaf in enumerate(out_leaves):
            # One reverse pass per element of this output leaf: the rows of its block.
            rows = [pullback(unflatten(out_def, c)) for c in _one_hot_cotangents(out_leaves, j)]
            out_shape = np.shape(primal(leaf))
            if not rows:  # an empty output leaf: an empty block for every input leaf
                rows = [pullback(unflatten(out_def, [zero(primal(v)) for v in out_leaves]))]
                if len(nums) == 1:
                    rows = [(row,) for row in rows]
                blocks.append(_empty_blocks(rows[0], out_shape, argnums))
                continue
            if len(nums) == 1:
                rows = [(row,) for row in rows]
            per_arg = []
            for a in range(len(nums)):
                in_def = flatten(rows[0][a])[1]
                columns = [flatten(row[a])[0] for row in rows]
                leaves = [_stack_block(list(col), out_shape) for col in zip(*columns)]
                per_arg.append(unflatten(in_def, leaves))
            blocks.append(per_arg[0] if isinstance(argnums, int) else tuple(per_arg))
        return unflatten(out_def, blocks)

    return jac


def _empty_blocks(row: tuple[Any, ...], out_shape: tuple[int, ...], argnums: Any) -> Any:
    """Jacobian blocks of an output leaf with no elements: arrays of shape out + in."""
    per_arg = []
    for g in row:
        leaves, td = flatten(g)
        blocks = [np.zeros(out_shape + np.shape(primal(v)), np.result_type(primal(v)))
                  for v in leaves]  # fmt: skip
        per_arg.append(unflatten(td, blocks))
    return per_arg[0] if isinstance(argnums, int) else tuple(per_arg)


def _check_tangents(who: str, primals: Any, tangents: Any) -> tuple[Any, Any]:
    """``primals`` and ``tangents`` as tuples, each tangent shaped like its primal."""
    for name, x in (("primals", primals), ("tangents", tangents)):
        if not isinstance(x, (tuple, list)):
            raise TypeError(
                f"{who}: {name} must be a tuple with one entry per argument of f, got "
                f"{type(x).__name__} (write ({name[:-1]},) for one argument)"
            )
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"{who}: primals and tangents must have one entry per argument each")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        try:
            pl, ptd = flatten(p)
            tl, ttd = flatten(t)
        except tree.UnsupportedLeafError as e:
            raise TypeError(f"{who}: argument {i}: {e}") from None
        if not ptd.same_structure(ttd):
            raise ValueError(
                f"{who}: tangents[{i}] has a different structure from primals[{i}]: a "
                "tangent has the primal's structure, with a float (1.0, not 1) or float "
                f"array for each float leaf ({ttd!r} vs {ptd!r})"
            )
        paths = tree.leaf_paths(ptd, f"primals[{i}]")
        _refuse_registered(who, paths, pl)
        for path, a, b in zip(paths, pl, tl):
            if np.shape(primal(a)) != np.shape(primal(b)):
                raise ValueError(
                    f"{who}: the tangent for {path} has shape {np.shape(primal(b))}, "
                    f"the primal {np.shape(primal(a))}"
                )
    return primals, tangents


_PAIRING = (
    "{who} pairs the gradient of each input with its tangent (an inner product), which the "
    "Backprop protocol (zero, add, one) does not define"
)
_SECOND_ORDER = (
    "a second derivative runs the custom ops (op1, ...) that take it on a BVar of the outer "
    "derivative instead of a {type}, and hetgrad cannot see inside an opaque type to record "
    "what they do with it"
)
_WHY = {
    "jvp": _PAIRING + "; pass floats or float arrays instead (its coordinates, for "
    "example, turned into a {type} inside f by a lifted op or hetgrad.iso_var)",
    "hvp": _PAIRING + ", and " + _SECOND_ORDER + "; pass floats or float arrays and compute "
    "f with operations hetgrad can differentiate twice",
    "hessian": _SECOND_ORDER + "; differentiate with respect to floats or float arrays "
    "and compute f with operations hetgrad can differentiate twice",
}


def _refuse_registered(who: str, paths: list[str], leaves: list[Any]) -> None:
    """Raise a TypeError naming the first leaf of a registered (opaque) type."""
    for path, v in zip(paths, leaves):
        name = type(primal(v)).__name__
        if instance_for(type(primal(v))) is not None:
            why = _WHY[who].format(who=who, type=name)
            raise TypeError(
                f"{who}: {path} is a {name}, a type registered with register_backprop "
                f"(opaque to hetgrad): {why}"
            )


def hessian(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The Hessian of scalar ``f``: ``jacobian(grad(f))``.

    Differentiating with respect to a value of a registered (opaque) type is a TypeError:
    custom ops on such a type are differentiable once only.

    >>> import numpy as np, hetgrad
    >>> a = np.array([[1.0, 2.0], [0.0, 3.0]])
    >>> hetgrad.hessian(lambda x: x @ a @ x)(np.ones(2))
    array([[2., 2.],
           [2., 6.]])
    """
    _callable(f, "hessian")
    jac = _jacobian(gradient_of(f, argnums, False, "hessian"), argnums, "hessian")

    def hess(*args: Any, **kwargs: Any) -> Any:
        for i in _argnums(argnums, len(args), "hessian"):
            try:
                leaves, td = flatten(args[i])
            except tree.UnsupportedLeafError:
                break  # the Jacobian reports it, with its path
            _refuse_registered("hessian", tree.leaf_paths(td, f"args[{i}]"), leaves)
        return jac(*args, **kwargs)

    return hess


def _vdot(xs: Any, ys: Any) -> Any:
    """Sum over leaves of ``sum(x * y)``; differentiable in both."""
    total: Any = 0.0
    for x, y in zip(flatten(xs)[0], flatten(ys)[0]):
        prod = x * y
        total = total + (np.sum(prod) if np.ndim(primal(prod)) else prod)
    return total


def hvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, ...]:
    """Hessian-vector product of scalar ``f`` at ``primals`` along ``tangents``.

    ``primals`` and ``tangents`` are tuples of ``f``'s arguments; the result is a tuple with
    one entry per argument, each in that argument's structure.  An argument holding a value
    of a registered (opaque) type is a TypeError: the protocol has no inner product, and
    custom ops on such a type are differentiable once only.

    >>> import numpy as np, hetgrad
    >>> hetgrad.hvp(lambda x: np.sum(x ** 3), (np.array([1.0, 2.0]),), (np.array([1.0, 0.0]),))
    (array([6., 0.]),)
    """
    _callable(f, "hvp")
    primals, tangents = _check_tangents("hvp", primals, tangents)
    nums = tuple(range(len(primals)))

    def directional(*xs: Any) -> Any:
        return _vdot(gradient_of(f, nums, False, "hvp")(*xs), tangents)

    out = grad_bp(directional, *primals)
    return (out,) if len(primals) == 1 else tuple(out)


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """Forward-mode product ``(f(*primals), J @ tangents)``, by transposing the VJP.

    The tangent output has the output's structure.  Cost: one forward pass and two
    reverse passes.  An argument holding a value of a registered (opaque) type is a
    TypeError: pairing its gradient with its tangent needs an inner product, which the
    Backprop protocol does not define; pass its coordinates instead.

    >>> import numpy as np, hetgrad
    >>> hetgrad.jvp(np.sin, (0.0,), (2.0,))
    (0.0, 2.0)
    """
    _callable(f, "jvp")
    primals, tangents = _check_tangents("jvp", primals, tangents)
    y, pullback = backprop_with(f, *primals)
    _check_differentiable_output("jvp", *flatten(y), y)
    n = len(primals)

    def linear(u: Any) -> Any:
        grads = pullback(u)
        return _vdot(grads if n > 1 else (grads,), tangents)

    # ``linear`` is linear in ``u``, so any point gives the same gradient; ones, not zeros,
    # so that a rule checking its cotangent (no gradient into an arbitrary basis) sees one.
    return y, grad_bp(linear, one(y))
