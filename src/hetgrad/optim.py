"""Optimizers over parameters of any structure.

An optimizer is a pair of pure functions, so it fits immutable parameter structures:

>>> import numpy as np, hetgrad
>>> params = {"w": np.array([1.0, -2.0]), "b": 0.5, "name": "line"}
>>> opt = hetgrad.optim.adam(0.1)
>>> state = opt.init(params)
>>> grads = {"w": np.array([0.5, -0.5]), "b": 1.0, "name": "line"}
>>> updates, state = opt.update(grads, state, params)
>>> params = hetgrad.optim.apply_updates(params, updates)
>>> params["w"], round(params["b"], 6), params["name"]
(array([ 0.9, -1.9]), 0.4, 'line')

Updates are *added* to the parameters (they already carry the minus sign).  Static leaves
(ints, strings, integer arrays, callables, fields declared static) are never changed.  The
optimizer state is itself a structure (NamedTuples of floats and of structures shaped like
the parameters), so :mod:`hetgrad.checkpoint` saves and restores it; its step count ``k``
is stored as a float for that reason.  Parameter dtypes are preserved: float32 arrays stay
float32 and Python floats stay floats.  A leaf of a type registered with
``register_backprop`` is stepped with the type's own operators (``+``, ``*``, ...; the
Backprop protocol has no scaling): without them, the step raises a ``TypeError`` naming
the leaf.

The learning rate ``lr`` (and the momentum ``mu``) may be a number or a *schedule*, a
function of the step count ``k = 0, 1, 2, ...``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from . import tree
from .protocol import instance_for, zero
from .runners import REFCOUNTS_EXACT, _recorded_cast, _Run, _scalar_seed
from .tape import BVar
from .tree import LEAF_DEF, TreeDef, flatten, unflatten

__all__ = [
    "GradientTransformation",
    "Schedule",
    "SgdState",
    "MomentumState",
    "AdamState",
    "sgd",
    "momentum",
    "adam",
    "apply_updates",
    "descend",
    "linear_schedule",
    "goal_momentum",
]

#: A function from the step count ``k`` (0, 1, 2, ...) to a value such as a learning rate.
Schedule = Callable[[int], float]
ScalarOrSchedule = float | Schedule


class GradientTransformation(NamedTuple):
    """An optimizer: ``init(params) -> state`` and ``update(grads, state, params) -> (updates,
    state)``.

    ``params`` is optional in ``update`` (none of the optimizers here needs it).  Where
    the state holds values shaped like the parameters (momentum, adam), the gradients must
    have the structure of the parameters it was made for (the same containers, dict keys
    in the same order): ``update`` raises ``ValueError`` otherwise, rather than pair one
    parameter's gradient with another's state.
    """

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


class SgdState(NamedTuple):
    """State of :func:`sgd`: the step count."""

    step: float


class MomentumState(NamedTuple):
    """State of :func:`momentum`: the step count and the velocity ``v`` (shaped like the
    parameters)."""

    step: float
    velocity: Any


class AdamState(NamedTuple):
    """State of :func:`adam`: the step count and the first and second moment estimates
    ``m`` and ``v`` (shaped like the parameters)."""

    step: float
    mu: Any
    nu: Any


def _schedule(x: ScalarOrSchedule, name: str) -> Schedule:
    if callable(x):
        # A Python float: a NumPy float64 from the schedule would turn float32 steps and
        # state into float64.
        return lambda k: float(x(k))
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number or a schedule k -> value, got {x!r}")
    value = float(x)
    return lambda k: value


def _grads_leaves(grads: Any, state_def: TreeDef, who: str) -> tuple[list[Any], TreeDef]:
    """The gradients' leaves, checked to have the structure the state was made for (a
    state is paired with gradients leaf by leaf: a dict with other keys would silently
    feed one parameter's gradient into another's state)."""
    leaves, td = flatten(grads)
    if len(leaves) != state_def.num_leaves:
        hint = (
            f" (the gradients are a tuple of {len(grads)}: the gradients of several "
            "arguments, as backprop and grad_bp give them? take the parameters' own, or "
            "use hetgrad.grad(loss), which differentiates the first argument only)"
            if type(grads) is tuple else ""
        )  # fmt: skip
        raise ValueError(
            f"{who}: the gradients have {len(leaves)} differentiable leaves but the "
            f"optimizer state was made for parameters with {state_def.num_leaves}{hint}"
        )
    if not td.same_structure(state_def):
        raise ValueError(
            f"{who}: the gradients' structure {td!r} differs from that of the parameters "
            f"the optimizer state was made for, {state_def!r} (dict keys count in order)"
        )
    return leaves, td


def _check_state(state: Any, cls: type, who: str) -> None:
    if not isinstance(state, cls):
        raise TypeError(
            f"{who}: expected the {cls.__name__} made by this optimizer's init (or returned "
            f"by its last update), got {type(state).__name__}"
        )


def _check_shapes(gs: list[Any], ss: list[Any], td: TreeDef, who: str) -> None:
    """Each gradient leaf has the shape of the state's leaf (no silent broadcasting)."""
    for i, (g, v) in enumerate(zip(gs, ss)):
        if np.shape(g) != np.shape(v):
            path = tree.leaf_paths(td, "grads")[i]
            raise ValueError(
                f"{who}: the gradient at {path} has shape {np.shape(g)} but the optimizer "
                f"state was made for a parameter of shape {np.shape(v)}"
            )


def _leafwise(
    who: str, ops: str, td: TreeDef, fn: Callable[..., Any], *columns: list[Any]
) -> list[Any]:
    """``[fn(*xs) for xs in zip(*columns)]``, the columns holding a value per leaf of the
    gradients ``td``.  If ``fn`` raises TypeError on a leaf of a registered type (which
    has no arithmetic of its own), the error names that leaf."""
    try:
        return [fn(*xs) for xs in zip(*columns)]
    except TypeError as e:
        for i, xs in enumerate(zip(*columns)):
            t = next((type(x) for x in xs if instance_for(type(x)) is not None), None)
            if t is not None:
                try:
                    fn(*xs)  # (fn is pure: running it again changes nothing)
                except TypeError:
                    path = tree.leaf_paths(td, "grads")[i]
                    raise _no_arithmetic(who, f"gradient at {path}", t, ops, e) from e
        raise


def _no_arithmetic(who: str, where: str, t: type, ops: str, e: TypeError) -> TypeError:
    """The error for a leaf of the registered type ``t`` that lacks the operators ``ops``."""
    name = t.__name__
    return TypeError(
        f"{who}: the {where} is a {name}, a type registered with register_backprop, "
        f"without the arithmetic {who.split('.')[0]} needs on every leaf it updates "
        f"({ops}): {e}. The Backprop protocol (zero, add, one) has no scaling; define these "
        f"operators on {name}, or express the parameters as float arrays"
    )


def _refuse_registered(who: str, td: TreeDef, i: int, p: Any, e: TypeError) -> None:
    """If ``p``, leaf ``i`` of the parameters ``td``, whose ``+`` raised ``e``, is of a
    registered type, raise the error naming it."""
    t = type(p)
    if instance_for(t) is not None:
        where = f"parameter at {tree.leaf_paths(td, 'params')[i]}"
        raise _no_arithmetic(who, where, t, f"+ of two {t.__name__} values", e) from e


def sgd(lr: ScalarOrSchedule) -> GradientTransformation:
    """Plain stochastic gradient descent.

    At step ``k`` (counting from 0), for every differentiable leaf ``p`` with gradient ``g``::

        u_k = -lr_k * g_k
        p_{k+1} = p_k + u_k

    Args:
        lr: the learning rate, a number or a schedule ``k -> lr_k``.

    Returns:
        The optimizer; its state is an :class:`SgdState`.

    >>> opt = sgd(0.1)
    >>> state = opt.init([1.0, 2.0])
    >>> updates, state = opt.update([1.0, -1.0], state)
    >>> apply_updates([1.0, 2.0], updates)
    [0.9, 2.1]
    """
    lr_k = _schedule(lr, "lr")

    def init(params: Any) -> SgdState:
        flatten(params)  # reject unsupported leaves early
        return SgdState(0.0)

    def update(grads: Any, state: SgdState, params: Any = None) -> tuple[Any, SgdState]:
        _check_state(state, SgdState, "sgd.update")
        leaves, td = flatten(grads)
        scale = -lr_k(int(state.step))
        us = _leafwise("sgd.update", "multiplication by a float", td, lambda g: scale * g, leaves)
        return unflatten(td, us), SgdState(state.step + 1.0)

    return GradientTransformation(init, update)


def momentum(lr: ScalarOrSchedule, mu: ScalarOrSchedule) -> GradientTransformation:
    """Gradient descent with (heavy-ball) momentum.

    At step ``k`` (counting from 0), with the velocity starting at ``v_0 = 0``::

        v_{k+1} = lr_k * g_k + mu_k * v_k
        u_k = -v_{k+1}
        p_{k+1} = p_k + u_k

    With a constant ``lr`` this is PyTorch's ``SGD(momentum=mu)``; under a schedule it
    differs, as the velocity keeps the learning rates of past steps (PyTorch multiplies
    the current one into the whole velocity).

    Args:
        lr: the learning rate, a number or a schedule ``k -> lr_k``.
        mu: the momentum, a number or a schedule ``k -> mu_k`` such as
            :func:`goal_momentum`.

    Returns:
        The optimizer; its state is a :class:`MomentumState`.

    >>> opt = momentum(0.1, 0.5)
    >>> p = {"x": 1.0}
    >>> state = opt.init(p)
    >>> for _ in range(2):
    ...     updates, state = opt.update({"x": 1.0}, state)
    ...     p = apply_updates(p, updates)
    >>> round(p["x"], 6), round(state.velocity["x"], 6)  # v = 0.1, then 0.1 + 0.05
    (0.75, 0.15)
    """
    lr_k = _schedule(lr, "lr")
    mu_k = _schedule(mu, "mu")

    def init(params: Any) -> MomentumState:
        return MomentumState(0.0, zero(params))

    def update(grads: Any, state: MomentumState, params: Any = None) -> tuple[Any, MomentumState]:
        _check_state(state, MomentumState, "momentum.update")
        vs, vtd = flatten(state.velocity)
        gs, gtd = _grads_leaves(grads, vtd, "momentum.update")
        _check_shapes(gs, vs, gtd, "momentum.update")
        k = int(state.step)
        a, b = lr_k(k), mu_k(k)
        ops = "+, unary - and multiplication by a float"
        new_v = _leafwise(
            "momentum.update", ops, gtd, lambda g, v: _as_state(v, a * g + b * v), gs, vs
        )
        updates = unflatten(gtd, _leafwise("momentum.update", ops, gtd, lambda v: -v, new_v))
        return updates, MomentumState(state.step + 1.0, unflatten(vtd, new_v))

    return GradientTransformation(init, update)


def adam(
    lr: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
) -> GradientTransformation:
    """Adam: gradient descent scaled by bias-corrected moment estimates.

    At step ``k`` (counting from 0), with ``t = k + 1`` and ``m_0 = v_0 = 0``::

        m_{k+1} = b1 * m_k + (1 - b1) * g_k
        v_{k+1} = b2 * v_k + (1 - b2) * g_k ** 2
        mhat = m_{k+1} / (1 - b1 ** t)
        vhat = v_{k+1} / (1 - b2 ** t)
        u_k = -lr_k * mhat / (sqrt(vhat) + eps)
        p_{k+1} = p_k + u_k

    Args:
        lr: the learning rate, a number or a schedule ``k -> lr_k``.
        b1: decay rate of the first moment estimate.
        b2: decay rate of the second moment estimate.
        eps: added to ``sqrt(vhat)`` for numerical stability.

    Returns:
        The optimizer; its state is an :class:`AdamState`.

    >>> opt = adam(0.01)
    >>> state = opt.init(np.array([1.0, 1.0], dtype=np.float32))
    >>> updates, state = opt.update(np.array([3.0, -0.5], dtype=np.float32), state)
    >>> updates  # the first step moves every coordinate by about lr
    array([-0.01,  0.01], dtype=float32)
    """
    lr_k = _schedule(lr, "lr")
    for name, x in (("b1", b1), ("b2", b2), ("eps", eps)):
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
            raise TypeError(f"adam: {name} must be a number, got {x!r}")
    # Python floats: NumPy scalars would make float32 state and updates float64.
    b1, b2, eps = float(b1), float(b2), float(eps)
    for name, x in (("b1", b1), ("b2", b2)):
        if not 0.0 <= x < 1.0:
            raise ValueError(f"adam: {name} must be in [0, 1), got {x!r}")
    if not eps >= 0.0:
        raise ValueError(f"adam: eps must be at least 0, got {eps!r}")
    c1, c2 = 1.0 - b1, 1.0 - b2

    def init(params: Any) -> AdamState:
        moments = tree.tree_map(_moment_zero, params)
        return AdamState(0.0, moments, tree.tree_map(_moment_zero, params))

    def update(grads: Any, state: AdamState, params: Any = None) -> tuple[Any, AdamState]:
        _check_state(state, AdamState, "adam.update")
        moments, std = flatten((state.mu, state.nu))
        n = len(moments) // 2
        mu_def = std.children[0]  # (mu's own TreeDef: None if a leaf, Static if static)
        if mu_def is None:
            mu_def = LEAF_DEF
        elif type(mu_def) is not TreeDef:
            mu_def = TreeDef(None, None, (mu_def,))
        gs, gtd = _grads_leaves(grads, mu_def, "adam.update")
        _check_shapes(gs, moments[:n], gtd, "adam.update")
        k = int(state.step)
        t = k + 1
        scale = -lr_k(k) / (1.0 - b1**t)
        vscale = 1.0 / (1.0 - b2**t)
        # (each moment keeps its own dtype: a float64 gradient for a float32 parameter
        # would otherwise turn the state float64, and it would no longer load into
        # opt.init(params); float16 parameters have float32 moments, see _moment_zero)
        ws = [_wide(g) for g in gs]
        ops = "+, *, / and ** with floats and with itself"

        def first(w: Any, m: Any) -> Any:
            return _as_state(m, b1 * m + c1 * w)

        def second(w: Any, v: Any) -> Any:
            return _as_state(v, b2 * v + c2 * (w * w))

        def step(g: Any, m: Any, v: Any) -> Any:
            return _adam_step(m, v, scale, vscale, eps, g)

        ms = _leafwise("adam.update", ops, gtd, first, ws, moments[:n])
        vs = _leafwise("adam.update", ops, gtd, second, ws, moments[n:])
        us = _leafwise("adam.update", ops, gtd, step, gs, ms, vs)
        mu, nu = unflatten(std, ms + vs)
        return unflatten(gtd, us), AdamState(state.step + 1.0, mu, nu)

    return GradientTransformation(init, update)


def _adam_step(m: Any, v: Any, scale: float, vscale: float, eps: float, g: Any) -> Any:
    """``scale * m / (sqrt(v * vscale) + eps)``, in the gradient ``g``'s type and dtype
    (a float16 parameter's moments are float32: see ``_moment_zero``)."""
    u = scale * m / ((v * vscale) ** 0.5 + eps)
    return _like(g, u) if _is_half(g) else u


def _is_half(x: Any) -> bool:
    t = type(x)
    return (t is np.ndarray and x.dtype.type is np.float16) or t is np.float16


def _wide(g: Any) -> Any:
    """A float16 gradient as float32: its square overflows float16 from 256 on (and the
    moment would be inf, freezing the parameter), and underflows below 6e-8."""
    return np.asarray(g, np.float32) if _is_half(g) else g


def _moment_zero(p: Any) -> Any:
    """An Adam moment's zero for parameter leaf ``p``: float32 for a float16 parameter (its
    moments are kept wider than the parameter, as the update is computed)."""
    z = zero(p)
    return np.zeros(np.shape(p), np.float32) if _is_half(p) else z


def _as_state(s: Any, x: Any) -> Any:
    """``x``, the new value of the state leaf ``s``, in ``s``'s type and dtype (a float64
    gradient for a float32 parameter would otherwise make its state float64)."""
    t = type(s)
    if type(x) is t and (t is not np.ndarray or x.dtype is s.dtype):
        return x  # (the usual case, without _like's conversions)
    return _like(s, x)


def _like(p: Any, x: Any) -> Any:
    """``x`` converted to the type and dtype of the parameter leaf ``p``."""
    if isinstance(x, BVar):  # a step an outer runner differentiates: cast on its tape
        return _recorded_cast(p, x)
    t = type(p)
    if t is np.ndarray:
        return np.asarray(x, p.dtype)
    if t is float:
        return float(x)
    if issubclass(t, np.generic):
        return t(x)
    return x


def apply_updates(params: Any, updates: Any) -> Any:
    """Add ``updates`` to ``params`` leaf by leaf, keeping each leaf's type and dtype.

    Static leaves (and the containers) come from ``params``.

    Args:
        params: the parameters, a structure.
        updates: the updates from an optimizer's ``update``, shaped like ``params``.

    Returns:
        The new parameters, ``p + u`` for every differentiable leaf.

    >>> params = {"w": np.ones(2, np.float32), "act": "relu"}
    >>> apply_updates(params, {"w": np.ones(2), "act": "relu"})
    {'w': array([2., 2.], dtype=float32), 'act': 'relu'}
    """
    ps, ptd = flatten(params)
    us, utd = flatten(updates)
    if len(us) != len(ps):
        raise ValueError(
            f"apply_updates: the updates have {len(us)} differentiable leaves but the "
            f"parameters have {len(ps)}"
        )
    if not ptd.same_structure(utd):
        raise ValueError(
            f"apply_updates: the updates' structure {utd!r} differs from the parameters' "
            f"{ptd!r}"
        )
    out = []
    for i, (p, u) in enumerate(zip(ps, us)):
        if (type(p) is not float or type(u) is not float) and np.shape(u) != np.shape(p):
            raise ValueError(
                f"apply_updates: the update at {tree.leaf_paths(ptd, 'params')[i]} has shape "
                f"{np.shape(u)}, the parameter {np.shape(p)}"
            )
        if type(p) is float and isinstance(u, (np.floating, np.ndarray)):
            u = float(u)  # (p + np.float32(u) would round p to float32)
        try:
            x = p + u
        except TypeError as e:
            _refuse_registered("apply_updates", ptd, i, p, e)
            raise
        t = type(p)
        if type(x) is not t or (t is np.ndarray and x.dtype != p.dtype):
            x = _like(p, x)
        out.append(x)
    return unflatten(ptd, out)


def descend(f: Callable[..., Any], params: Any, lr: float, *args: Any, **kwargs: Any) -> Any:
    """One step of gradient descent on scalar ``f(params, *args, **kwargs)``, fused.

    Returns ``(value, new_params)`` with ``new_params = params - lr * gradient``: the
    result of ``backprop`` followed by :func:`sgd`'s update, at less cost.  The reverse
    pass is seeded with ``-lr`` instead of 1, so the gradient arrives already scaled, and
    each new parameter array is written into the memory of its own gradient when nothing
    else can see that gradient (CPython's reference count tells).  A step then costs one
    pass over each parameter and no allocation, where ``p - lr * g`` costs two passes and
    two arrays.  ``params`` itself is never modified; the result may differ from
    ``params - lr * grad_bp(f, params)`` in the last bit, from rounding in another order.

    Args:
        f: the objective; its first argument is differentiated.
        params: the parameters, a structure.
        lr: the learning rate, a number.
        *args: further positional arguments of ``f``, held constant.
        **kwargs: further keyword arguments of ``f``, held constant.

    Returns:
        ``(f(params, *args, **kwargs), new_params)``.

    >>> loss = lambda p, target: np.sum((p["w"] - target) ** 2)
    >>> value, params = descend(loss, {"w": np.array([1.0, -2.0]), "tag": "w"}, 0.25, 1.0)
    >>> float(value), params
    (9.0, {'w': array([ 1. , -0.5]), 'tag': 'w'})
    """
    if not callable(f):
        raise TypeError(f"descend differentiates a function; got {type(f).__name__} {f!r}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)):
        raise TypeError(f"descend: lr must be a number, got {lr!r}")
    run = _Run(f, (params, *args), (0,), kwargs, "descend")
    try:
        value, seed = _scalar_seed(run.out, "descend", run.tape)
        out = run.out
        own = isinstance(out, BVar) and out._tape is run.tape
        steps = run.leaf_gradients([(out._index, _scaled_seed(seed, lr, run))] if own else [])[0]
    finally:
        run.tape.release()
    ps, td = flatten(params)
    for i, p in enumerate(ps):
        # (No local name for steps[i]: it would count as one more reference.)
        if type(p) is np.ndarray and type(steps[i]) is np.ndarray and _sole_reference(steps, i):
            ps[i] = np.add(steps[i], p, out=steps[i])  # the step's memory: the new parameter
        else:
            try:
                x = p + steps[i]
            except TypeError as e:
                _refuse_registered("descend", td, i, p, e)
                raise
            ps[i] = x if type(x) is type(p) and not _dtype_changed(p, x) else _like(p, x)
    return value, unflatten(td, ps)


def _scaled_seed(seed: Any, lr: Any, run: _Run) -> Any:
    """``-lr * seed``, in float64 if the seed is a narrower float (a float32 loss) and a
    parameter is float64: ``-0.1 * np.float32(1)`` is float32, and every step of the
    float64 parameters would use lr rounded to float32."""
    scaled = -float(lr) * seed
    if type(scaled) is float or np.result_type(scaled) == np.float64:
        return scaled
    for v in run.watched[0][2]:
        x = v._value
        if type(x) is float or getattr(x, "dtype", None) == np.float64:
            return -float(lr) * np.asarray(seed, np.float64)[()]
    return scaled


def _dtype_changed(p: Any, x: Any) -> bool:
    return type(p) is np.ndarray and x.dtype != p.dtype


def _references(items: list[Any], i: int) -> int:
    return sys.getrefcount(items[i])


# What CPython's reference count of an array held by one list alone reads as through
# _references (the interpreter's own borrowed references vary between versions).
_ONE_LIST_REFERENCE = _references([np.empty(1)], 0)


def _sole_reference(items: list[Any], i: int) -> bool:
    """True if nothing but ``items`` can see ``items[i]``, an array, or its memory.

    The array must own its memory (no base that others may hold), be writeable, and be
    referenced by the list alone: a user's array, a gradient a custom op's pullback also
    keeps, or a view of it all add references.  This is the test NumPy itself makes
    before it reuses a temporary's memory.
    """
    if _references(items, i) != _ONE_LIST_REFERENCE or not REFCOUNTS_EXACT:
        return False
    flags = items[i].flags  # (counted after: a flags object holds its array)
    return bool(flags.owndata and flags.writeable)


def linear_schedule(start: float, end: float, steps: int) -> Schedule:
    """A value moving linearly from ``start`` to ``end`` over ``steps`` steps, then held.

    ``value_k = start + (end - start) * min(k, steps) / steps``

    Args:
        start: the value at ``k = 0``.
        end: the value from ``k = steps`` on.
        steps: the number of steps of the ramp (positive).

    Returns:
        The schedule ``k -> value_k``.

    >>> s = linear_schedule(1.0, 0.1, 150)
    >>> s(0), round(s(75), 6), round(s(150), 6), round(s(1000), 6)
    (1.0, 0.55, 0.1, 0.1)
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise ValueError(f"linear_schedule: steps must be a positive int, got {steps!r}")
    start, end = float(start), float(end)
    return lambda k: end if k >= steps else start + (end - start) * k / steps


def goal_momentum(mu_max: float) -> Schedule:
    """The momentum schedule of the Goal library's tutorials.

    ``mu_k = min(mu_max, 1 - 1 / (2 * (k // 250 + 1)))``: 0.5 for the first 250 steps,
    then 0.75, 0.8333..., approaching 1 and capped at ``mu_max``.

    Args:
        mu_max: the largest momentum the schedule returns.

    Returns:
        The schedule ``k -> mu_k``.

    >>> s = goal_momentum(0.999)
    >>> s(0), s(249), s(250), s(500)
    (0.5, 0.5, 0.75, 0.8333333333333334)
    """
    mu_max = float(mu_max)
    return lambda k: min(mu_max, 1.0 - 1.0 / (2 * (k // 250 + 1)))
