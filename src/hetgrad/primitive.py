"""Primitives and custom operations: how functions get gradients.

Two ways to give a function a gradient:

* ``@primitive`` plus ``.defvjp(rule, ...)``: one rule per positional argument,
  ``rule(g, ans, *args, **kwargs)`` returning the gradient for that argument.  This is how
  hetgrad's own operations are written (see :mod:`hetgrad.rules`).
* ``op1`` / ``op2`` / ``op3`` / ``opN`` (Haskell backprop's ``op1``, ``op2``, ``liftOp``):
  ``fn(*xs)`` returns ``(y, pullback)`` and ``pullback(g)`` returns the gradients for all
  inputs at once.  Inputs and outputs may be structures.

Gradients returned by user code are checked against the inputs: a wrong structure, shape
or dtype kind raises an error naming the operation and the argument position.

>>> import math, hetgrad
>>> @hetgrad.op1
... def square(x):
...     return x * x, lambda g: 2.0 * x * g
>>> hetgrad.grad_bp(square, 3.0)
6.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import tree
from .protocol import instance_for
from .tape import (
    LEAF_DEF,
    BVar,
    Primitive,
    _escaped,
    active_tapes,
    assemble,
    computed_with_own_bvar,
    find_tape,
    missing_rule,
    primal,
    read_only,
    record_whole,
    unbox,
)
from .tree import TreeDef, flatten, unflatten

__all__ = [
    "Primitive",
    "primitive",
    "op1",
    "op2",
    "op3",
    "opN",
    "no_grad",
    "stop_gradient",
    "const",
    "auto",
]


def primitive(fn: Callable[..., Any]) -> Primitive:
    """Decorator: make ``fn`` a primitive; attach its gradients with ``.defvjp``.

    >>> import hetgrad
    >>> @hetgrad.primitive
    ... def cube(x):
    ...     return x ** 3
    >>> _ = cube.defvjp(lambda g, ans, x: 3.0 * x ** 2 * g)
    >>> hetgrad.grad_bp(cube, 2.0)
    12.0
    """
    if not callable(fn):
        raise TypeError(f"hetgrad.primitive decorates a function; got {type(fn).__name__}")
    p = Primitive(fn)
    p.vjps = tuple(missing_rule(p.name, k) for k in range(_positional_count(fn)))
    return p


def _positional_count(fn: Callable[..., Any]) -> int:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 8
    n = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return 32
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


# --------------------------------------------------------------------------------------
# Checking user-supplied gradients.
# --------------------------------------------------------------------------------------


def check_gradient(name: str, k: int, arg: Any, grad: Any) -> None:
    """Raise if ``grad`` cannot be a gradient for ``arg`` (argument ``k`` of op ``name``)."""
    if grad is None:
        return
    try:
        leaves, td = flatten(arg)
    except tree.UnsupportedLeafError as e:
        raise TypeError(f"{name}: argument {k} at {e.path('arg')}: {e.reason}") from None
    checked_leaves(name, k, td, leaves, grad)


def checked_leaves(name: str, k: int, td: TreeDef, leaves: list[Any], grad: Any) -> list[Any]:
    """The leaves of ``grad``, a gradient for the argument flattened to ``td`` and
    ``leaves``; raises if it has the wrong structure, or a leaf the wrong shape or kind."""
    try:
        gleaves, gtd = flatten(grad)
    except tree.UnsupportedLeafError as e:
        raise TypeError(
            f"{name}: the gradient for argument {k} at {e.path('grad')}: {e.reason}"
        ) from None
    if gtd is not td and not td.same_structure(gtd):
        hint = (
            "; integers are constants to hetgrad, never gradients: return floats (2.0, "
            "not 2; a.astype(float) for an integer array)"
            if _has_integer(gtd)
            else ""
        )
        raise TypeError(
            f"{name}: the gradient for argument {k} has the wrong structure: expected "
            f"{_describe(unflatten(td, leaves))}, got {_describe(grad)}{hint}"
        )
    paths = None
    for i, (x, g) in enumerate(zip(leaves, gleaves)):
        problem = _leaf_problem(x, g)
        if problem is not None:
            if paths is None:
                paths = tree.leaf_paths(td, "")
            where = f" at {paths[i]}" if paths[i] else ""
            exc = ValueError if problem.startswith("shape") else TypeError
            raise exc(f"{name}: the gradient for argument {k}{where} has the wrong {problem}")
    return gleaves


def _has_integer(td: TreeDef) -> bool:
    """True if a (static) leaf of ``td`` is an integer or an integer array."""
    for c in td.children:
        if type(c) is tree.Static:
            v = c.value
            if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
                return True
            if isinstance(v, np.ndarray) and v.dtype.kind in "iu":
                return True
        elif type(c) is TreeDef and _has_integer(c):
            return True
    return False


def _describe(x: Any) -> str:
    if isinstance(x, BVar):
        x = primal(x)
    if isinstance(x, np.ndarray):
        return f"ndarray of shape {x.shape} ({x.dtype})"
    try:
        _, td = flatten(x)
    except tree.UnsupportedLeafError:
        return type(x).__name__
    return type(x).__name__ if td is LEAF_DEF else f"{type(x).__name__} {td!r}"


def _leaf_problem(x: Any, g: Any) -> str | None:
    if type(x) is np.ndarray and type(g) is np.ndarray:  # the usual leaf, checked directly
        if g.shape == x.shape and g.dtype.kind in "fiu":
            return None
    x = primal(x)
    g = primal(g)
    if tree.kind_of(type(x)) is tree.LEAF and not isinstance(x, (float, np.floating)):
        # A registered type: its gradient is a value of its type (its shape is its own
        # business).
        if instance_for(type(g)) is not instance_for(type(x)):
            return f"type: expected a {type(x).__name__}, got {type(g).__name__}"
        return None
    xs = np.shape(x)
    try:
        gs = np.shape(g)
        kind = np.result_type(g).kind
    except (TypeError, ValueError):
        return f"type: expected an array or number, got {type(g).__name__}"
    if gs != xs:
        return f"shape: expected {xs}, got {gs}"
    if kind not in "fiu":
        return f"dtype kind: expected real numbers, got {np.result_type(g)}"
    return None


# --------------------------------------------------------------------------------------
# Custom operations with a whole pullback.
# --------------------------------------------------------------------------------------


def call_custom(
    name: str, fn: Callable[..., Any], args: Sequence[Any], arity: int | None
) -> Any:
    """Run a custom op ``fn`` (returning ``(y, pullback)``) on ``args``, recording a node."""
    if not active_tapes() and not any(isinstance(a, BVar) for a in args):
        # Nothing is being differentiated (eval_bp, plain calls): no structure to walk.
        # (A BVar argument here has escaped its runner: the full path names the error.)
        return _pair(name, fn(*args))[0]
    flat = [flatten(a) for a in args]
    tape = find_tape(leaf for leaves, _ in flat for leaf in leaves)
    if tape is None:
        return _pair(name, fn(*args))[0]
    if tape.nodes is None:
        raise _escaped(tape)
    parents: list[int | None] = []
    primals = []
    arg_info: list[tuple[TreeDef, list[Any]]] = []
    opaque: type | None = None  # the registered type of an argument given as an outer BVar
    for leaves, td in flat:
        vals, arg_parents = unbox(leaves, tape)
        for i, (v, p) in enumerate(zip(vals, arg_parents)):
            if type(v) is not np.ndarray:
                if type(v) is BVar and opaque is None:  # a BVar of an outer tape
                    opaque = _registered_type(v)
                continue
            if p is None:
                tape.lock(v)  # the pullback may read it: no writes while the tape lives
            else:  # the tape's own array: read-only for the op (other nodes read it)
                vals[i] = read_only(v)
        parents.extend(arg_parents)
        primals.append(unflatten(td, vals))
        arg_info.append((td, vals))
    if opaque is None:
        y, user_pullback = _pair(name, fn(*primals))
    else:
        y, user_pullback = _pair(name, _guarded(name, "function", opaque, fn, primals))
    try:
        out_leaves, out_td = flatten(y)
    except tree.UnsupportedLeafError as e:
        raise TypeError(f"{name}: its value at {e.path('value')}: {e.reason}") from None
    if any(isinstance(v, BVar) and v._tape is tape for v in out_leaves):
        raise computed_with_own_bvar(name)
    for v in out_leaves:  # the pullback's closure holds them: read-only while the tape lives
        if type(v) is np.ndarray:
            tape.lock(v)
    nargs = len(args)

    def pullback(g: Any) -> list[Any]:
        # Read-only: the same cotangent arrays may go to other nodes too.
        ct = assemble(out_td, out_leaves, g)
        ct = read_only(ct) if type(ct) is np.ndarray else tree.tree_map(read_only, ct)
        # (Checked only for a BVar or structured cotangent: plain arrays skip the call.)
        ct_opaque = _outer_registered_type(g) if type(g) is BVar or type(g) is list else None
        if ct_opaque is None:
            grads = user_pullback(ct)
        else:
            grads = _guarded(name, "pullback", ct_opaque, user_pullback, (ct,))
        if arity == 1:
            grads = (grads,)
        elif not isinstance(grads, (tuple, list)) or len(grads) != nargs:
            got = (
                f"{len(grads)} items"
                if isinstance(grads, (tuple, list))
                else type(grads).__name__
            )
            raise TypeError(
                f"{name}: the pullback must return a tuple of {nargs} gradients (one per "
                f"input), got {got}"
            )
        out: list[Any] = []
        for k, (gk, (td, vals)) in enumerate(zip(grads, arg_info)):
            if gk is None:
                out.extend([None] * td.num_leaves)
                continue
            out.extend(checked_leaves(name, k, td, vals, gk))
        return out

    return record_whole(tape, tuple(parents), pullback, out_td, out_leaves, name)


def _registered_type(v: BVar) -> type | None:
    """The registered (opaque) type beneath ``v``, or None."""
    t = type(primal(v))
    return t if instance_for(t) is not None else None


def _outer_registered_type(g: Any) -> type | None:
    """The registered type beneath a BVar in ``g``, a node's cotangent (a value, or a list
    of per-leaf values for a structured output), or None."""
    if type(g) is BVar:
        return _registered_type(g)
    if type(g) is list:
        for v in g:
            if type(v) is BVar and (t := _registered_type(v)) is not None:
                return t
    return None


def _guarded(
    name: str, what: str, opaque: type, fn: Callable[..., Any], args: Sequence[Any]
) -> Any:
    """``fn(*args)``, where one of ``args`` holds a BVar of an outer derivative in place of
    a value of the registered type ``opaque``: an AttributeError or TypeError from reading
    it is re-raised saying why."""
    try:
        return fn(*args)
    except (AttributeError, TypeError) as e:
        t = opaque.__name__
        given = t if what == "function" else f"{t} cotangent"
        raise TypeError(
            f"{name}: differentiating a second time through this custom op on a {t} is not "
            f"supported: its {what} is given a BVar of the outer derivative in place of the "
            f"{given}, which hetgrad cannot see inside (a type registered with "
            "register_backprop is opaque); differentiate with respect to floats or float "
            f"arrays, or hold the {t} constant"
        ) from e


def _pair(name: str, result: Any) -> tuple[Any, Callable[[Any], Any]]:
    """A custom op's ``(value, pullback)``, checked."""
    if not isinstance(result, tuple) or len(result) != 2:
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise TypeError(f"{name} must return a pair (value, pullback), got {got}")
    if not callable(result[1]):
        raise TypeError(f"{name} must return (value, pullback); the second item is not callable")
    return result


def _make_op(fn: Callable[..., Any], arity: int | None) -> Callable[..., Any]:
    if not callable(fn):
        raise TypeError(f"hetgrad.op1/op2/op3/opN lift a function; got {type(fn).__name__}")
    name = getattr(fn, "__name__", "op")

    @functools.wraps(fn)
    def op(*args: Any) -> Any:
        if arity is not None and len(args) != arity:
            raise TypeError(f"{name} takes {arity} argument(s), got {len(args)}")
        return call_custom(name, fn, args, arity)

    return op


def op1(fn: Callable[[Any], tuple[Any, Callable[[Any], Any]]]) -> Callable[[Any], Any]:
    """Lift ``fn(x) -> (y, pullback)``; ``pullback(g)`` returns the gradient for ``x``.

    >>> import hetgrad, numpy as np
    >>> softplus = hetgrad.op1(lambda x: (np.logaddexp(0.0, x), lambda g: g / (1 + np.exp(-x))))
    >>> hetgrad.grad_bp(softplus, 0.0)
    0.5
    """
    return _make_op(fn, 1)


def op2(fn: Callable[[Any, Any], tuple[Any, Callable[[Any], Any]]]) -> Callable[..., Any]:
    """Lift ``fn(x, y) -> (z, pullback)``; ``pullback(g)`` returns ``(gx, gy)``.

    >>> import hetgrad, numpy as np
    >>> matvec = hetgrad.op2(lambda m, v: (m @ v, lambda g: (np.outer(g, v), m.T @ g)))
    >>> hetgrad.grad_bp(lambda v: matvec(np.eye(2), v).sum(), np.array([1.0, 2.0]))
    array([1., 1.])
    """
    return _make_op(fn, 2)


def op3(fn: Callable[..., tuple[Any, Callable[[Any], Any]]]) -> Callable[..., Any]:
    """Lift ``fn(x, y, z) -> (w, pullback)``; ``pullback(g)`` returns three gradients.

    >>> import hetgrad
    >>> fma = hetgrad.op3(lambda a, b, c: (a * b + c, lambda g: (g * b, g * a, g)))
    >>> hetgrad.grad_bp(fma, 2.0, 3.0, 4.0)
    (3.0, 2.0, 1.0)
    """
    return _make_op(fn, 3)


def opN(fn: Callable[..., tuple[Any, Callable[[Any], Any]]]) -> Callable[..., Any]:
    """Lift ``fn(*xs) -> (y, pullback)``; ``pullback(g)`` returns one gradient per input.

    Inputs and outputs may be structures; a gradient may be None for "no gradient".

    >>> import hetgrad
    >>> dot3 = hetgrad.opN(lambda *xs: (sum(xs), lambda g: tuple(g for _ in xs)))
    >>> hetgrad.grad_bp(lambda a, b, c: dot3(a, b, c), 1.0, 2.0, 3.0)
    (1.0, 1.0, 1.0)
    """
    return _make_op(fn, None)


def no_grad(fn: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """A forward-only op: runs on primal values; demanding a gradient through it raises.

    Not a context manager (PyTorch's ``with torch.no_grad():``): hetgrad records only
    inside a runner, so code outside one records nothing already.

    >>> import hetgrad
    >>> rounded = hetgrad.no_grad(round)
    >>> hetgrad.eval_bp(lambda x: rounded(x) + x, 2.4)
    4.4
    """
    if fn is None or not callable(fn):
        raise TypeError(
            "hetgrad.no_grad wraps a function, no_grad(f)(x): a forward-only op whose "
            "gradient is an error. It is not a context manager like torch.no_grad(): "
            "hetgrad records only inside a runner (grad_bp, grad, ...), so code outside one "
            "records nothing; inside one, hetgrad.stop_gradient(x) makes a value a constant"
        )
    name = getattr(fn, "__name__", "function")

    def forward(*xs: Any) -> tuple[Any, Callable[[Any], Any]]:
        def pullback(g: Any) -> Any:
            raise TypeError(
                f"{name} was wrapped with hetgrad.no_grad, but a gradient flowed through it; "
                "give it a gradient with hetgrad.op1/opN or defvjp, or wrap its result in "
                "hetgrad.stop_gradient if zero is what you mean"
            )

        return fn(*xs), pullback

    forward.__name__ = name
    return _make_op(forward, None)


def stop_gradient(x: Any) -> Any:
    """The value of ``x`` as a constant, at every nesting level; works on structures.

    >>> import hetgrad
    >>> hetgrad.grad_bp(lambda x: x * hetgrad.stop_gradient(x), 3.0)
    3.0
    """
    t = type(x)
    if t is np.ndarray or t is float:  # already a constant (the common call, kept cheap)
        return x
    if t is BVar:
        return read_only(primal(x))
    leaves, td = flatten(x)
    return unflatten(_constant_statics(td), [read_only(primal(v)) for v in leaves])


def _constant_statics(td: TreeDef) -> TreeDef:
    """``td`` with every BVar held in a static leaf (a field declared static, given a
    BVar) made a constant too; ``td`` itself if there is none."""
    children = []
    for c in td.children:
        if type(c) is tree.Static and _holds_bvar(c.value):
            c = tree.Static(stop_gradient(c.value))
        elif type(c) is TreeDef:
            c = _constant_statics(c)
        children.append(c)
    if all(a is b for a, b in zip(children, td.children)):
        return td
    return TreeDef(td.container, td.aux, tuple(children))


def _holds_bvar(x: Any) -> bool:
    if isinstance(x, BVar):
        return True
    try:
        leaves, td = flatten(x)
    except tree.UnsupportedLeafError:  # (a static field may hold anything)
        return False
    if td.container is None:  # a number, string or array: no BVar
        return False
    return any(isinstance(v, BVar) for v in leaves) or _constant_statics(td) is not td


def const(x: Any) -> Any:
    """Mark a plain value as a constant (backprop's ``auto``/``constVar``).

    Plain values already are constants, so this returns ``x``; it exists to make intent
    explicit.  Passing a BVar is an error: use :func:`stop_gradient` to cut a gradient.

    >>> import hetgrad
    >>> hetgrad.grad_bp(lambda w: w * hetgrad.const(2.0), 1.0)
    2.0
    """
    for leaf in flatten(x)[0]:
        if isinstance(leaf, BVar):
            raise TypeError(
                "hetgrad.const was given a BVar; it marks plain values as constants. Use "
                "hetgrad.stop_gradient(x) to treat a BVar's value as a constant"
            )
    return x


auto = const
