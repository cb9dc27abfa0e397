"""Runners: evaluate a function and get its gradient in the structure of its inputs.

``eval_bp``, ``grad_bp``, ``backprop`` and ``backprop_with`` mirror Haskell backprop's
``evalBP``, ``gradBP``, ``backprop`` and ``backpropWith`` and take any number of
arguments; ``grad`` and ``value_and_grad`` are JAX-style transforms returning functions.

>>> import hetgrad
>>> hetgrad.backprop(lambda x, y: x * y + y, 3.0, 4.0)
(16.0, (4.0, 4.0))
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import tree
from .protocol import instance_for, one, zero
from .tape import (
    BVar,
    Tape,
    TapeError,
    _escaped,
    active_tapes,
    primal,
    primal_level,
    raw_level,
    release_when_free,
)
from .tree import TreeDef, flatten, unflatten

__all__ = ["eval_bp", "grad_bp", "backprop", "backprop_with", "vjp", "grad", "value_and_grad"]


def eval_bp(f: Callable[..., Any], *args: Any) -> Any:
    """The value of ``f(*args)``, recording nothing (backprop's ``evalBP``).

    >>> import hetgrad
    >>> hetgrad.eval_bp(lambda v: v[0] * v[1], [2.0, 5.0])
    10.0
    """
    return f(*args)


class _Run:
    """One runner call: the tape, the watched arguments, and the output."""

    __slots__ = ("tape", "watched", "out")

    def __init__(
        self, f: Callable[..., Any], args: Sequence[Any], argnums: Sequence[int],
        kwargs: dict[str, Any], runner: str,
    ) -> None:  # fmt: skip
        tape = self.tape = Tape()
        inputs = list(args)
        self.watched: list[tuple[int, TreeDef, list[BVar]]] = []
        try:
            for i in argnums:
                try:
                    view, td, leaves = tape.watch(args[i])
                except tree.UnsupportedLeafError as e:
                    raise TypeError(f"{runner}: at {e.path(f'args[{i}]')}: {e.reason}") from None
                if not leaves and td.num_leaves == 0 and _has_static_leaf(td):
                    fix = "leave it out of argnums, or " if runner in _WITH_ARGNUMS else ""
                    raise TypeError(
                        f"{runner}: args[{i}] ({type(args[i]).__name__}) has nothing to "
                        f"differentiate (no float leaf); {fix}close over it (lambda x: f(x, n))"
                    )
                inputs[i] = view
                self.watched.append((i, td, leaves))
            stack = active_tapes()
            stack.append(tape)
            try:
                self.out = f(*inputs, **kwargs)
            finally:
                stack.pop()
            tape.close()
        except BaseException:
            tape.release()
            raise

    def seeds_for(self, out: Any, ct: Any) -> list[tuple[int, Any]]:
        """Seed the output leaves that belong to this tape with cotangent ``ct``."""
        out_leaves, out_def = flatten(out)
        ct_leaves, ct_def = flatten(ct)
        out_def = settled(out_def, self.tape)
        if not out_def.same_structure(ct_def):
            raise TypeError(
                f"the cotangent's structure {ct_def!r} does not match the output's "
                f"{out_def!r}; a cotangent has the output's structure, with a float (1.0, "
                "not 1) or float array for each float leaf, and the output's own values "
                "for its static leaves"
            )
        seeds = []
        for v, c in zip(out_leaves, ct_leaves):
            if np.shape(primal(c)) != np.shape(primal(v)):
                raise ValueError(
                    f"cotangent of shape {np.shape(primal(c))} for an output of shape "
                    f"{np.shape(primal(v))}"
                )
            if isinstance(v, BVar) and v._tape is self.tape:
                # A view: a gradient that is the cotangent itself is then copied, not
                # handed back as the caller's own array.
                seeds.append((v._index, c.view() if type(c) is np.ndarray else c))
            elif isinstance(v, BVar):
                _check_enclosing(self.tape, v)
        return seeds

    def gradients(self, seeds: list[tuple[int, Any]]) -> list[Any]:
        """Run the reverse sweep; one gradient (in the input's structure) per watched arg."""
        flat = self.leaf_gradients(seeds)
        return [unflatten(td, gs) for (_, td, _), gs in zip(self.watched, flat)]

    def leaf_gradients(self, seeds: list[tuple[int, Any]]) -> list[list[Any]]:
        """Run the reverse sweep; the gradients of each watched arg's leaves, flat."""
        gs = self.tape.backward(seeds) if seeds else None
        returned: set[int] = set()
        return [
            [_finish(v._value, None if gs is None else gs[v._index], returned) for v in leaves]
            for _, _, leaves in self.watched
        ]


# The runners that take ``argnums`` (an argument with nothing to differentiate can be left out).
_WITH_ARGNUMS = frozenset({"grad", "value_and_grad", "jacobian", "hessian"})


def _has_static_leaf(td: TreeDef) -> bool:
    return any(
        type(c) is tree.Static or (type(c) is TreeDef and _has_static_leaf(c))
        for c in td.children
    )


# References to a gradient array that nothing else holds, as _finish sees it: the list of
# gradients, _finish's argument, and getrefcount's own.  More means someone else holds it
# (a custom rule returning an array it keeps): then the caller gets a copy, so writing
# into one gradient cannot change another, or the rule's array.  The count is exact on
# CPython up to 3.13 with the GIL (the test suite runs on 3.11); CPython 3.14 may skip
# counting references it borrows, and a free-threaded build counts per thread, so there
# every gradient array is copied (REFCOUNTS_EXACT is False): slower, never shared.
_UNSHARED = 3
REFCOUNTS_EXACT = (
    sys.implementation.name == "cpython" and sys.version_info < (3, 14)
    and getattr(sys, "_is_gil_enabled", lambda: True)()
)  # fmt: skip


def _finish(x: Any, g: Any, returned: set[int]) -> Any:
    """Give a leaf's gradient the exact type, shape and dtype of the leaf."""
    t = type(x)
    if t is np.ndarray and type(g) is np.ndarray:
        if (g.shape == x.shape and g.dtype == x.dtype and id(g) not in returned
                and sys.getrefcount(g) <= _UNSHARED and REFCOUNTS_EXACT):  # fmt: skip
            flags = g.flags  # (which holds a reference to g: counted before it)
            if flags.owndata and flags.writeable:
                returned.add(id(g))
                return g  # a fresh array of the engine's: hand it over as it is
    if g is None:  # a leaf the function never read
        if t is np.ndarray:
            return np.zeros(x.shape, x.dtype)  # (zero's tree walk costs ~10x more)
        if t is float:
            return 0.0
        if isinstance(x, np.ndarray):  # a subclass (np.memmap, ...): an array of x's type
            return np.zeros(x.shape, x.dtype).view(t)
        return zero(x)
    if isinstance(g, BVar) or isinstance(x, BVar):
        return _recorded_cast(x, g)  # a gradient being differentiated by an outer runner
    if t is float:
        return g if type(g) is float else float(g)
    if t is np.ndarray:
        if type(g) is not np.ndarray or g.dtype != x.dtype or g.shape != x.shape:
            g = np.asarray(g, dtype=x.dtype)
            if g.shape != x.shape:
                g = np.broadcast_to(g, x.shape)
        if (not g.flags.writeable or id(g) in returned or not g.flags.owndata
                or sys.getrefcount(g) > _UNSHARED or not REFCOUNTS_EXACT):  # fmt: skip
            g = g.copy()
        returned.add(id(g))
        return g
    if isinstance(x, np.ndarray):  # a subclass (np.memmap, ...): an array of x's type
        return _finish(x.view(np.ndarray), g, returned).view(t)
    if instance_for(t) is not None:
        return g
    return t(g)  # NumPy float scalars


def _recorded_cast(x: Any, g: Any) -> Any:
    """``g`` cast to the dtype of the leaf ``x``, where one of them is a BVar of an outer
    runner (a BVar ``g`` is cast on that tape): a float32 leaf's gradient stays float32
    under differentiation, as it is without."""
    px, pg = primal(x), primal(g)
    numeric = (float, np.ndarray, np.floating)
    if not isinstance(px, numeric) or not isinstance(pg, numeric):
        return g  # a registered type's gradient: its own business
    want = np.dtype(np.float64) if type(px) is float else np.result_type(px)
    if np.result_type(pg) != want:
        return g.astype(want) if hasattr(g, "astype") else want.type(g)
    return g


def _scalar_seed(out: Any, runner: str, tape: Tape) -> tuple[Any, Any]:
    """Check that ``out`` is a real scalar; return (its value at this level, the seed).

    The value is ``out`` one level down if ``out`` is a BVar of ``tape``; a BVar of an
    outer runner's tape (an output that depends on the outer variables only) is kept
    whole, so the outer runner still differentiates it."""
    if type(out) is BVar and out._tape is tape:  # the common cases first
        t = type(out._value)
        if t is float:
            return out._value, 1.0
        if t is np.float64:
            return out._value, np.float64(1.0)
    value = own_level(tape, out)
    p = primal(out)
    t = type(p)
    if t is float or isinstance(p, (np.floating, int, np.integer)) and not isinstance(p, bool):
        return value, one(p) if not isinstance(p, (int, np.integer)) else 1.0
    if isinstance(p, np.ndarray) and p.shape == () and p.dtype.kind in "fiu":
        return value, np.ones_like(p, dtype=p.dtype if p.dtype.kind == "f" else float)
    if isinstance(out, BVar) and type(out) is not BVar:
        what = f"a BVar of a {out._container.name}"  # type: ignore[attr-defined]
    elif isinstance(p, np.ndarray):
        what = f"an array of shape {p.shape} and dtype {p.dtype}"
    else:
        what = f"a value of type {t.__name__}"
    raise TypeError(
        f"{runner} needs a function returning a real scalar (a float, a NumPy scalar, a 0-d "
        f"array, or a BVar of one), but it returned {what}; for other outputs use "
        "hetgrad.backprop_with (alias hetgrad.vjp) with a cotangent, or hetgrad.jacobian"
    )


def own_level(tape: Tape, x: Any) -> Any:
    """``x`` one level down if it is a BVar of ``tape``; anything else as it is.

    A runner hands back its output and ``aux`` this way: a BVar of an *outer* runner (a
    value computed from the outer variables alone) stays a BVar, so the outer runner's
    derivative of it is not lost.
    """
    if isinstance(x, BVar):
        if x._tape is tape:
            return raw_level(x)
        _check_enclosing(tape, x)
    return x


def _check_enclosing(tape: Tape, x: BVar) -> None:
    """Raise unless ``x`` belongs to a runner call enclosing ``tape``'s, still recording: a
    BVar kept from an earlier call would otherwise come back with a gradient of zero."""
    outer = x._tape
    if outer is None:  # (a view built outside any tape)
        return
    t = tape.outer
    while t is not None:
        if t is outer:
            if outer.nodes is None:
                raise _escaped(outer)
            return
        t = t.outer
    if outer.nodes is None:
        raise _escaped(outer)
    raise TapeError(
        "the function returned a BVar of another runner call, neither this one nor one "
        "enclosing it (kept from an earlier call, or from another thread); its gradient "
        "would be lost: return a value computed from this call's own arguments"
    )


def own_values(tape: Tape, x: Any) -> Any:
    """``x`` with every BVar of ``tape`` one level down (see :func:`own_level`), those held
    in static leaves included: a value set into a static field is not differentiated, and
    its BVar must not outlive the runner."""
    leaves, td = flatten(x)
    return unflatten(settled(td, tape), [own_level(tape, v) for v in leaves])


def settled(td: TreeDef, tape: Tape) -> TreeDef:
    """``td`` with the BVars of ``tape`` in its static leaves one level down (``td`` itself
    when there are none, the usual case)."""
    kids = []
    changed = False
    for c in td.children:
        if type(c) is tree.Static and _holds_bvar(c.value):
            c = tree.Static(own_values(tape, c.value))
            changed = True
        elif type(c) is TreeDef:
            new = settled(c, tape)
            changed = changed or new is not c
            c = new
        kids.append(c)
    return TreeDef(td.container, td.aux, tuple(kids)) if changed else td


def _holds_bvar(x: Any) -> bool:
    """True if the static value ``x`` is a BVar or a structure holding one."""
    if isinstance(x, BVar):
        return True
    if type(x) in (str, int, bool, type(None)) or isinstance(x, np.ndarray):
        return False
    try:
        leaves, td = flatten(x)
    except tree.UnsupportedLeafError:
        return False
    if td.container is None:  # a leaf, or a static value (not a structure to look into)
        return False
    return any(isinstance(v, BVar) for v in leaves) or _settled_needed(td)


def _settled_needed(td: TreeDef) -> bool:
    """True if a static leaf anywhere in ``td`` holds a BVar."""
    return any(
        (type(c) is tree.Static and _holds_bvar(c.value))
        or (type(c) is TreeDef and _settled_needed(c))
        for c in td.children
    )


def _aux_values(x: Any, tape: Tape) -> Any:
    """``has_aux``'s ``aux`` with the BVars of ``tape`` replaced by their values.  It is
    never differentiated by this runner, so objects hetgrad does not know (a set, a
    logger) pass as they are."""
    try:
        return own_values(tape, x)
    except tree.UnsupportedLeafError:
        pass
    if isinstance(x, BVar):
        return own_level(tape, x)
    if type(x) in (list, tuple):
        return type(x)(_aux_values(v, tape) for v in x)
    if type(x) is dict:
        return {k: _aux_values(v, tape) for k, v in x.items()}
    return x


def _argnums(argnums: int | Sequence[int], n: int, runner: str) -> tuple[int, ...]:
    nums = argnums if isinstance(argnums, (tuple, list)) else (argnums,)
    for i in nums:
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"{runner}: argnums must be an int or a tuple of ints, got {argnums!r}")
        if not -n <= i < n:
            raise ValueError(f"{runner}: argnums {argnums!r} out of range for {n} argument(s)")
    out = tuple(int(i) % n for i in nums)
    if len(set(out)) != len(out):
        # Watching one argument twice would give the gradient to the second copy only.
        raise ValueError(f"{runner}: argnums {argnums!r} names an argument twice")
    return out


def _plain_argnums(argnums: Any) -> Any:
    """``argnums`` with a NumPy integer made an int (JAX takes any index)."""
    return int(argnums) if isinstance(argnums, np.integer) else argnums


def _callable(f: Any, runner: str) -> None:
    if not callable(f):
        raise TypeError(f"{runner} differentiates a function; got {type(f).__name__} {f!r}")


def _value_and_gradients(
    f: Callable[..., Any], args: Sequence[Any], argnums: tuple[int, ...],
    kwargs: dict[str, Any], has_aux: bool, runner: str,
) -> tuple[Any, Any, list[Any]]:  # fmt: skip
    run = _Run(f, args, argnums, kwargs, runner)
    try:
        out, aux = run.out, None
        if has_aux:
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise TypeError(f"{runner}(has_aux=True) needs f to return a pair (output, aux)")
            out, aux = out
            aux = _aux_values(aux, run.tape)
        value, seed = _scalar_seed(out, runner, run.tape)
        seeds = [(out._index, seed)] if isinstance(out, BVar) and out._tape is run.tape else []
        return value, aux, run.gradients(seeds)
    finally:
        run.tape.release()


def grad_bp(f: Callable[..., Any], *args: Any) -> Any:
    """The gradient of scalar ``f`` at ``args``, in the structure of the arguments.

    One argument: its gradient.  Several: a tuple with one gradient per argument.

    >>> import hetgrad, numpy as np
    >>> hetgrad.grad_bp(lambda v: v[0] * v[1] + np.sin(v[0]), [1.0, 2.0])
    [2.5403023058681398, 1.0]
    """
    _callable(f, "grad_bp")
    nums = tuple(range(len(args)))
    _, _, grads = _value_and_gradients(f, args, nums, {}, False, "grad_bp")
    return grads[0] if len(args) == 1 else tuple(grads)


def backprop(f: Callable[..., Any], *args: Any) -> tuple[Any, Any]:
    """``(f(*args), gradient)`` in one pass; gradients as in :func:`grad_bp`.

    >>> import hetgrad
    >>> hetgrad.backprop(lambda x: x ** 2 + 3, 9.0)
    (84.0, 18.0)
    """
    _callable(f, "backprop")
    nums = tuple(range(len(args)))
    value, _, grads = _value_and_gradients(f, args, nums, {}, False, "backprop")
    return value, grads[0] if len(args) == 1 else tuple(grads)


def backprop_with(f: Callable[..., Any], *args: Any) -> tuple[Any, Callable[[Any], Any]]:
    """``(f(*args), pullback)``: ``pullback(cotangent)`` gives the gradient(s).

    The output may be any structure; the cotangent has the output's structure.  The
    pullback can be called many times; the tape lives as long as it does, and until then
    the arguments' arrays stay read-only (writing into them would corrupt the gradient).

    >>> import hetgrad, numpy as np
    >>> y, pullback = hetgrad.backprop_with(lambda x: (x * 2.0, x * x), 3.0)
    >>> y, pullback((1.0, 0.0)), pullback((0.0, 1.0))
    ((6.0, 9.0), 2.0, 6.0)
    """
    _callable(f, "backprop_with")
    return pullback_of(f, args, "backprop_with")


def pullback_of(f: Callable[..., Any], args: Sequence[Any], runner: str) -> tuple[Any, Any]:
    """:func:`backprop_with`, its errors naming ``runner`` (``jacobian``, ``hessian``)."""
    n = len(args)
    run = _Run(f, args, range(n), {}, runner)

    def pullback(cotangent: Any) -> Any:
        grads = run.gradients(run.seeds_for(run.out, cotangent))
        return grads[0] if n == 1 else tuple(grads)

    try:
        try:
            leaves, td = flatten(run.out)
            if runner in _ELEMENTWISE:
                _refuse_registered_output(runner, leaves, td)
            value = unflatten(settled(td, run.tape), [_value_view(run.tape, x) for x in leaves])
        except tree.UnsupportedLeafError as e:
            raise TypeError(f"{runner}: the output at {e.path('out')}: {e.reason}") from None
        # The tape (and the read-only lock on the arguments' arrays) lives as long as this.
        weakref.finalize(pullback, release_when_free, run.tape)
    except BaseException:  # (an escaped BVar in the output, an interrupt: nothing kept)
        run.tape.release()
        raise
    return value, pullback


vjp = backprop_with

# The runners that pull back one-hot cotangents, one per element of each output leaf.
_ELEMENTWISE = frozenset({"jacobian", "hessian"})


def _refuse_registered_output(runner: str, leaves: list[Any], td: TreeDef) -> None:
    """Raise a TypeError naming the first output leaf of a registered (opaque) type: it
    has no elements to take one-hot cotangents of."""
    for path, v in zip(tree.leaf_paths(td, "out"), leaves):
        t = type(primal(v))
        if instance_for(t) is not None:
            raise TypeError(
                f"{runner}: the output at {path} is a {t.__name__}, a type registered with "
                f"register_backprop (opaque to hetgrad): {runner} pulls back one cotangent "
                "per output element, so it needs outputs made of floats and float arrays; "
                "return its coordinates instead (an array read out of it by a lifted op), "
                f"or pull back a {t.__name__} cotangent with hetgrad.backprop_with"
            )


def _value_view(tape: Tape, x: Any) -> Any:
    """``x`` one level down; an array as a view that stays read-only while ``tape`` lives
    (the pullback may read the array) and becomes writeable when it is released."""
    if type(x) is BVar and x._tape is tape and type(x._value) is np.ndarray:
        v = x._value.view()
        tape.lock(v)
        return v
    return own_level(tape, x) if isinstance(x, BVar) and x._tape is not tape else (
        primal_level(x))


def value_and_grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """A function returning ``(value, gradient)`` of scalar ``f`` (JAX's signature).

    With ``has_aux``, ``f`` returns ``(value, aux)`` and the result is
    ``((value, aux), gradient)``.  A tuple ``argnums`` gives a tuple of gradients.

    >>> import hetgrad
    >>> hetgrad.value_and_grad(lambda x, y: x * y, argnums=(0, 1))(2.0, 5.0)
    (10.0, (5.0, 2.0))
    """

    _callable(f, "value_and_grad")
    argnums = _plain_argnums(argnums)

    def value_and_grad_f(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums(argnums, len(args), "value_and_grad")
        value, aux, grads = _value_and_gradients(
            f, args, nums, kwargs, has_aux, "value_and_grad"
        )
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return ((value, aux), g) if has_aux else (value, g)

    return value_and_grad_f


def grad(
    f: Callable[..., Any], argnums: int | Sequence[int] = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """A function returning the gradient of scalar ``f`` (JAX's signature).

    >>> import hetgrad
    >>> hetgrad.grad(lambda x: x ** 3)(2.0)
    12.0
    >>> hetgrad.grad(hetgrad.grad(lambda x: x ** 3))(2.0)
    12.0
    """

    _callable(f, "grad")
    return gradient_of(f, argnums, has_aux, "grad")


def gradient_of(
    f: Callable[..., Any], argnums: int | Sequence[int], has_aux: bool, runner: str
) -> Callable[..., Any]:
    """:func:`grad`, its errors naming ``runner`` (``hessian``, ``hvp``)."""
    argnums = _plain_argnums(argnums)

    def grad_f(*args: Any, **kwargs: Any) -> Any:
        nums = _argnums(argnums, len(args), runner)
        _, aux, grads = _value_and_gradients(f, args, nums, kwargs, has_aux, runner)
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return (g, aux) if has_aux else g

    return grad_f
