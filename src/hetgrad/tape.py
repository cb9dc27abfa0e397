"""The Wengert tape, BVars, and the reverse sweep.

A runner (``grad_bp`` and friends) opens a :class:`Tape`, wraps each differentiable leaf of
its arguments in a :class:`BVar`, calls the user's function, and sweeps the tape backwards
from the output's node.  Every operation on a BVar appends one *node* to the tape::

    (vjps, parents, args, y, kwargs, name)  a primitive: vjps[k](g, y, *args) is the
                                            gradient for argument k; parents[k] is its
                                            node or None; y is None if no rule reads it
                                            (a built-in's vjps is its RULE_TABLE number)
    (WHOLE, parents, pullback, _, _, name)  a custom op: pullback(g) returns one gradient
                                            per parent (None for "no gradient")
    (PROJECT, (op,), position, n, leaf, name)  output ``position`` (of ``n``) of a
                                            structure-valued node
    None                                    an input leaf

NumPy arrays the tape saves are protected from in-place writes while it may need them:
the user's arrays (inputs and constants) are made read-only until the runner is done, and
``BVar.value`` gives a read-only view of the tape's own arrays.

Tapes nest: each knows the tape that was active when it opened (``outer``) and its
``level``.  An operation mixing BVars of two tapes records on the innermost one and treats
the outer BVar as a constant whose value is itself a BVar, so derivatives of derivatives
are recorded on the outer tape (no perturbation confusion).  Tapes are per thread; a
tape closes when its runner returns, after which its BVars cannot be used.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import operator
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from . import tree
from .debug import CheckedNodes, debugging
from .protocol import instance_for, one, register_backprop, zero
from .tree import LEAF_DEF, VIEW, Container, Static, TreeDef, flatten, unflatten

__all__ = ["BVar", "Primitive", "Tape", "TapeError", "active_tapes"]


class TapeError(RuntimeError):
    """A BVar used outside the runner call that created it."""


WHOLE = "whole"
PROJECT = "project"

_local = threading.local()


def active_tapes() -> list[Tape]:
    """The stack of tapes open in this thread, innermost last."""
    try:
        return _local.stack
    except AttributeError:
        _local.stack = []
        return _local.stack


# The user's arrays that tapes hold read-only, with how many tapes hold each: a tape's
# release gives an array its writability back only when no other tape (an outer runner, a
# live ``backprop_with`` pullback, another thread's runner) still reads it.
_locks_guard = threading.RLock()  # (an RLock only to ask whether this thread holds it)
# id(array) -> the number of tapes holding it (each keeps the array alive in its ``locked``)
_lock_counts: dict[int, int] = {}
# Views released while another tape held their base (NumPy refuses a writeable view of a
# read-only base), by id: made writeable by a later release.  Weak: a view nobody else holds
# (a fresh ``data[i]`` each step) leaves on its own, so the table stays as small as the
# views your code keeps.
_unlock_later: weakref.WeakValueDictionary[int, np.ndarray] = weakref.WeakValueDictionary()


class Tape:
    """One runner call's record of operations (a Wengert list)."""

    __slots__ = ("nodes", "closed_nodes", "outer", "level", "locked", "seen", "__weakref__")

    def __init__(self) -> None:
        stack = active_tapes()
        self.outer: Tape | None = stack[-1] if stack else None
        self.level: int = 1 if self.outer is None else self.outer.level + 1
        self.nodes: list[Any] | None = [] if not debugging() else CheckedNodes()
        self.closed_nodes: list[Any] | None = None
        self.locked: list[np.ndarray] = []  # the arrays this tape holds read-only
        # The arrays given to lock, by id (kept alive here, so an id is never reused): a
        # constant used in every step of a loop is held once.
        self.seen: dict[int, np.ndarray] = {}

    def lock(self, a: np.ndarray) -> None:
        """Keep a user's array read-only while this tape may read it again."""
        key = id(a)
        if key not in self.seen:
            self.seen[key] = a
            with _locks_guard:
                self._hold(a, key)

    def _hold(self, a: np.ndarray, key: int) -> None:
        """Hold ``a`` (whose id is ``key``) and its chain of bases (a view's data can be
        written through its base too: ``data[1, 0] = x`` under a saved ``data[1]``).
        The caller holds ``_locks_guard``.  (``id`` is called once per array: it is an
        audited builtin, slower than it looks.)"""
        locked = self.locked
        while True:
            count = _lock_counts.get(key)
            if count is not None:
                _lock_counts[key] = count + 1
                locked.append(a)
                if a.flags.writeable:
                    # Held, yet writeable: the count is left over from a tape never
                    # released (an interrupt in its bookkeeping) and this is a new array
                    # with the old one's id.  Lock it all the same.
                    a.setflags(write=False)
            elif a.flags.writeable or _waiting(a) or _base_held(a):
                a.setflags(write=False)  # (twice as fast as assigning flags.writeable)
                _lock_counts[key] = 1
                locked.append(a)
            # (else read-only by its owner's choice: never ours to unlock)
            base = a.base
            if type(base) is not np.ndarray:
                return
            a, key = base, id(base)

    # -- recording ---------------------------------------------------------------------

    def watch(self, x: Any) -> tuple[Any, TreeDef, list[BVar]]:
        """Wrap every differentiable leaf of ``x``; return the view, its TreeDef, the leaves."""
        leaves, td = flatten(x)
        nodes = self.nodes
        assert nodes is not None
        inputs = []
        locked = self.locked
        with _locks_guard:
            for v in leaves:
                if type(v) is np.ndarray:  # (an array twice in x is simply held twice)
                    key = id(v)
                    if v.base is None and key not in _lock_counts and v.flags.writeable:
                        # The usual input, an array of its own that no tape holds: _hold's
                        # first step, without the call.
                        v.setflags(write=False)
                        _lock_counts[key] = 1
                        locked.append(v)
                    else:
                        self._hold(v, key)
                inputs.append(_new_bvar(v, self, len(nodes)))
                nodes.append(None)
        if td is LEAF_DEF:
            return inputs[0], td, inputs
        return build_view(td, iter(inputs), self), td, inputs

    def close(self) -> None:
        """Stop recording; keep the nodes only while a pullback may still need them."""
        self.closed_nodes = self.nodes
        self.nodes = None

    def release(self) -> None:
        """Drop every node and give the user's arrays their writability back (those no
        other tape holds)."""
        self.nodes = None
        self.closed_nodes = None
        held, self.locked = self.locked, []
        self.seen = {}
        if held or _unlock_later:  # (with nothing held, a sweep of waiting views may be due)
            self._unlock(held)
        while _released_later:  # (tapes whose release had to wait: see release_when_free)
            try:
                tape = _released_later.pop()
            except IndexError:  # (another thread took the last)
                break
            tape.release()

    def _unlock(self, held: list[np.ndarray]) -> None:
        """Undo this tape's holds on ``held``."""
        with _locks_guard:
            refused = []
            freed = []
            for a in reversed(held):  # (a view was held before its base: bases come first)
                key = id(a)
                count = _lock_counts[key]
                if count == 1:
                    del _lock_counts[key]
                    try:
                        a.setflags(write=True)
                        freed.append(key)
                    except ValueError:  # a view whose base is still held
                        refused.append(a)
                else:
                    _lock_counts[key] = count - 1
            waiting = _views_waiting_on(freed) if _waiting_on else []
            if _unlock_later and _sweep_due():  # (bases the user made writeable)
                waiting = list(_unlock_later.values())
                _waiting_on.clear()
            if refused or waiting:
                _make_writeable(refused[::-1] + waiting)

    # -- the reverse sweep ---------------------------------------------------------------

    def backward(self, seeds: Sequence[tuple[int, Any]]) -> list[Any]:
        """Propagate the seed gradients to every node; return the gradient per node.

        Starts at the highest seeded node (the output's own node, not the last recorded),
        skips nodes that received nothing, and never recurses.
        """
        nodes = self.nodes if self.nodes is not None else self.closed_nodes
        assert nodes is not None
        gs: list[Any] = [None] * len(nodes)
        top = -1
        for i, g in seeds:
            old = gs[i]
            gs[i] = g if old is None else accumulate(old, g)
            if i > top:
                top = i
        for i in range(top, -1, -1):
            g = gs[i]
            if g is None:
                continue
            node = nodes[i]
            if node is None:  # an input leaf: keep its gradient
                continue
            gs[i] = None
            rule, parents, args, y, kw, _ = node
            if type(rule) is int:
                rule = RULE_TABLE[rule]
            if type(rule) is tuple:
                # Binary and unary primitives without keywords are nearly every node; they
                # get a loop-free path (no enumerate, no star-call, floats added inline).
                if kw is None and len(args) == 2:
                    p, q = parents
                    a, b = args
                    if p is not None:
                        gp = rule[0](g, y, a, b)
                        old = gs[p]
                        gs[p] = gp if old is None else (
                            old + gp if type(old) is float else accumulate(old, gp))
                    if q is not None:
                        gq = rule[1](g, y, a, b)
                        old = gs[q]
                        gs[q] = gq if old is None else (
                            old + gq if type(old) is float else accumulate(old, gq))
                elif kw is None and len(args) == 1:
                    p = parents[0]
                    gp = rule[0](g, y, args[0])
                    old = gs[p]
                    gs[p] = gp if old is None else (
                        old + gp if type(old) is float else accumulate(old, gp))
                else:
                    for k, p in enumerate(parents):
                        if p is not None:
                            gp = rule[k](g, y, *args, **kw) if kw else rule[k](g, y, *args)
                            old = gs[p]
                            gs[p] = gp if old is None else accumulate(old, gp)
            elif rule is PROJECT:  # here `args` is the position and `y` the output count
                op = parents[0]
                slot = gs[op]
                if slot is None:
                    slot = gs[op] = [None] * y
                old = slot[args]
                slot[args] = g if old is None else accumulate(old, g)
            else:
                for p, gp in zip(parents, args(g)):
                    if p is not None and gp is not None:
                        old = gs[p]
                        gs[p] = gp if old is None else accumulate(old, gp)
        return gs


# Tapes whose pullback was collected while _locks_guard was held (see release_when_free).
_released_later: list[Tape] = []


def release_when_free(tape: Tape) -> None:
    """``tape.release()`` for a finalizer.  The garbage collector runs finalizers at any
    allocation, also while this thread holds ``_locks_guard`` (in ``watch`` or ``release``),
    where releasing would change the lock table under the code holding it: then the tape
    waits for the end of that code's release, or the next one."""
    if _locks_guard._is_owned():  # type: ignore[attr-defined]
        _released_later.append(tape)
    else:  # (another thread holding it is only a wait)
        tape.release()


def _waiting(a: np.ndarray) -> bool:
    """True if ``a`` is read-only only because it waits in ``_unlock_later`` (then it is
    taken out: the tape locking it now holds it)."""
    if _unlock_later.get(id(a)) is a:
        del _unlock_later[id(a)]
        return True
    return False


def _base_held(a: np.ndarray) -> bool:
    """True if ``a`` is a view of an array a tape holds (so read-only because of it)."""
    base = a.base
    while type(base) is np.ndarray:
        if id(base) in _lock_counts:
            return True
        base = base.base
    return False


def _make_writeable(arrays: list[np.ndarray]) -> None:
    """Make ``arrays`` writeable, bases before their views (NumPy refuses a writeable view
    of a read-only base); a view whose base another tape still holds waits in
    ``_unlock_later`` for a later release."""
    pending = arrays
    while pending:
        left = []
        for a in reversed(pending):
            try:
                a.setflags(write=True)
            except ValueError:
                left.append(a)
        if len(left) == len(pending):
            break
        pending = left[::-1]
    for a in pending:
        _unlock_later[id(a)] = a
        base = a.base
        while type(base) is np.ndarray:  # (retried when any array it is a view of is freed)
            ids = _waiting_on.setdefault(id(base), set())
            ids.add(id(a))
            if len(ids) > 64 and len(ids) > 2 * len(_unlock_later):
                ids.intersection_update(_unlock_later.keys())  # (views that went away)
            base = base.base


# id(array) -> ids of the views in ``_unlock_later`` that wait on it: a release retries only
# the views of the arrays it freed, not every waiting view (with thousands of rows of a
# dataset waiting on one held base, each release would otherwise scan them all).
_waiting_on: dict[int, set[int]] = {}


_releases_since_sweep = 0


def _sweep_due() -> bool:
    """True once releases have been as many as the views waiting: then every waiting view
    is retried (its base may have been made writeable by its owner, not by a release),
    which costs each release O(1) on average."""
    global _releases_since_sweep
    _releases_since_sweep += 1
    if _releases_since_sweep < len(_unlock_later):
        return False
    _releases_since_sweep = 0
    return True


def _views_waiting_on(freed: list[int]) -> list[np.ndarray]:
    """Take out of ``_unlock_later`` the views waiting on the arrays (ids) ``freed``."""
    out = []
    for key in freed:
        ids = _waiting_on.pop(key, None)
        if ids:
            for view_id in ids:
                v = _unlock_later.pop(view_id, None)
                if v is not None:
                    out.append(v)
    return out


def accumulate(a: Any, b: Any) -> Any:
    """Add two gradients of one leaf (never in place: either may be seen elsewhere)."""
    t = type(a)
    if t is float or t is np.ndarray or t is BVar:
        return a + b
    inst = instance_for(t)
    return a + b if inst is None else inst.add(a, b)


# --------------------------------------------------------------------------------------
# Primitives and recording
# --------------------------------------------------------------------------------------


class Primitive:
    """A function whose gradient is given by one rule per positional argument.

    Calling it on plain values calls the function; calling it with BVars records a node.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        nondiff: Sequence[int] = (),
        checked: bool = True,
    ) -> None:
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", repr(fn)))
        self.nondiff = frozenset(nondiff)
        self.checked = checked
        # What a node stores for the rules: the tuple, or for a built-in primitive its
        # number in RULE_TABLE (see there); setting ``vjps`` sets it to the tuple.
        self.node_rules: tuple[Callable[..., Any], ...] | int = ()
        self.node_float_rules: tuple[Callable[..., Any], ...] | int = ()
        self.vjps = ()
        # Rules for Python-float operands (no broadcasting to undo); set for the operators.
        self.float_vjps = ()
        # Which of the first positional inputs the rules read (None: all; positions past
        # the end are read; at least two entries, for the binary fast path).  An array
        # input they do not read is stored on the tape as its ShapeOf, so it can be freed
        # after the forward pass (unless it is small: see SMALL_ARRAY_BYTES).
        self.reads: tuple[bool, ...] | None = None
        # Whether the rules read the output ``y``.  If not, the node stores None in its
        # place, so an intermediate array is freed once the code is done with it (except
        # under debug_nans, whose CheckedNodes inspects every output).
        self.reads_output = True
        # What to call on a plain array: the ufunc itself where ``fn`` only wraps one with
        # a Python-float fast path (see ``rules.float_fast``), saving a Python call.
        self.array_fn: Callable[..., Any] = getattr(fn, "_array_fn", fn)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return apply(self, args, kwargs)

    def __repr__(self) -> str:
        return f"<hetgrad primitive {self.name}>"

    @property
    def vjps(self) -> tuple[Callable[..., Any], ...]:
        """The gradient rules, one per positional argument (set them with ``defvjp``)."""
        return self._vjps

    @vjps.setter
    def vjps(self, rules: tuple[Callable[..., Any], ...]) -> None:
        self._vjps = self.node_rules = tuple(rules)

    @property
    def float_vjps(self) -> tuple[Callable[..., Any], ...]:
        """The rules for Python-float operands."""
        return self._float_vjps

    @float_vjps.setter
    def float_vjps(self, rules: tuple[Callable[..., Any], ...]) -> None:
        self._float_vjps = self.node_float_rules = tuple(rules)

    def defvjp(self, *rules: Callable[..., Any] | None) -> Primitive:
        """Attach gradient rules, one per positional argument (None: not differentiable).

        ``rule(g, ans, *args, **kwargs)`` returns the gradient for its argument given the
        output cotangent ``g`` and the output ``ans``.  Rules written with operations
        hetgrad can differentiate support higher derivatives.

        >>> import hetgrad, numpy as np
        >>> @hetgrad.primitive
        ... def logistic(x):
        ...     return 1.0 / (1.0 + np.exp(-x))
        >>> _ = logistic.defvjp(lambda g, ans, x: g * ans * (1.0 - ans))
        >>> round(hetgrad.grad_bp(logistic, 0.0), 6)
        0.25
        """
        for k, rule in enumerate(rules):
            if rule is not None and not callable(rule):
                raise TypeError(
                    f"{self.name}.defvjp: the rule for argument {k} must be a function "
                    f"rule(g, ans, *args) or None, got {type(rule).__name__}"
                )
        made = []
        missing = max(0, len(self.vjps) - len(rules))  # positions without a rule
        for k, rule in enumerate(tuple(rules) + (None,) * missing):
            if rule is None:
                made.append(missing_rule(self.name, k))
            elif self.checked:
                made.append(checked_rule(self.name, k, rule))
            else:
                made.append(rule)
        self.vjps = self.float_vjps = tuple(made)
        return self


# The rules of the built-in primitives, by number.  A node names its rules by this int
# rather than by the tuple of functions, so a node of floats and arrays holds nothing the
# cyclic garbage collector tracks: the collector untracks it at its first look instead of
# walking the whole tape again and again (a third of a scalar training step's time).
RULE_TABLE: list[tuple[Callable[..., Any], ...]] = []


def rule_number(vjps: tuple[Callable[..., Any], ...]) -> int:
    """Enter a built-in primitive's rules in RULE_TABLE; their number."""
    RULE_TABLE.append(vjps)
    return len(RULE_TABLE) - 1


# Arrays of at most this many bytes stay on the tape even when no rule reads them: making
# their ShapeOf costs more time than their memory is worth (a node is ~270 bytes itself).
SMALL_ARRAY_BYTES = 1024


class ShapeOf:
    """Stands in, on the tape, for an array input whose value no gradient rule reads.

    Rules such as ``add``'s or ``exp``'s need only the input's shape (to undo
    broadcasting) or nothing at all; keeping the array itself alive until the backward
    pass would only raise peak memory.
    """

    __slots__ = ("shape", "dtype")

    def __init__(self, a: np.ndarray) -> None:
        self.shape = a.shape
        self.dtype = a.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


def stored(reads: tuple[bool, ...], args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` as a node keeps them: arrays the rules do not read become ShapeOf."""
    kept = list(args)
    for k, read in enumerate(reads[: len(kept)]):
        a = kept[k]
        if not read and type(a) is np.ndarray and a.nbytes > SMALL_ARRAY_BYTES:
            kept[k] = ShapeOf(a)
    return tuple(kept)


def missing_rule(name: str, k: int) -> Callable[..., Any]:
    def rule(g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{name}: argument {k} has no gradient rule, but a gradient was asked for it; "
            f"attach one with {name}.defvjp(...), or pass that argument as a constant"
        )

    return rule


def checked_rule(name: str, k: int, rule: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a user's gradient rule so its result is checked against argument ``k``."""
    from .primitive import check_gradient

    def checked(g: Any, ans: Any, *args: Any, **kwargs: Any) -> Any:
        # The cotangent and the output read-only: the same g may go to other nodes too.
        out = rule(read_only(g), read_only(ans), *args, **kwargs)
        if out is None:  # "no gradient"
            return zero(primal(args[k]))
        check_gradient(name, k, args[k], out)
        return out

    return checked


def _escaped(tape: Tape) -> TapeError:
    return TapeError(
        "this BVar belongs to a runner call (grad_bp, backprop, grad, ...) that has already "
        "returned; a BVar kept in a global, a closure or a list cannot be used later. Return "
        "its .value from the function instead, or compute with the new call's own BVars"
    )


def _mixed() -> TapeError:
    return TapeError(
        "this operation mixes BVars of two runner calls that are not nested in one another "
        "(for example from another thread, or from a sibling call); each BVar can only be "
        "combined with BVars of its own call or of calls enclosing it"
    )


def innermost(t1: Tape, t2: Tape) -> Tape:
    """Of two tapes met in one operation, the one to record on; errors for illegal mixes."""
    if t1.nodes is None:
        raise _escaped(t1)
    if t2.nodes is None:
        raise _escaped(t2)
    inner, outer = (t1, t2) if t1.level > t2.level else (t2, t1)
    if inner.level == outer.level:
        raise _mixed()
    t = inner.outer
    while t is not None and t is not outer:
        t = t.outer
    if t is None:
        raise _mixed()
    return inner


def find_tape(values: Iterable[Any]) -> Tape | None:
    """The innermost tape among the BVars in ``values`` (None if there are none)."""
    tape = None
    for a in values:
        if isinstance(a, BVar):
            t = a._tape
            if tape is None:
                tape = t
            elif t is not tape:
                tape = innermost(tape, t)
    return tape


def unbox(values: Iterable[Any], tape: Tape) -> tuple[list[Any], list[int | None]]:
    """``values`` as ``tape`` records them: its BVars give their value and node; anything
    else (a constant, or a BVar of an outer tape) is itself, with no node."""
    vals: list[Any] = []
    parents: list[int | None] = []
    for a in values:
        if isinstance(a, BVar) and a._tape is tape:
            vals.append(a._value)
            parents.append(a._index)
        else:
            vals.append(a)
            parents.append(None)
    return vals, parents


def _new_bvar(value: Any, tape: Tape, index: int) -> BVar:
    # object.__new__ plus three slot stores: cheaper than a call to __init__.
    v = object.__new__(BVar)
    v._value = value
    v._tape = tape
    v._index = index
    return v


_CONSTANT_TYPES = frozenset({float, int, np.ndarray, np.float64, np.float32, bool})


def is_structure_operand(x: Any) -> bool:
    """True if ``x`` is a structure that an operator with a BVar must leave to ``x``'s own
    type: a BVar of a structure, or a registered container other than a plain list, tuple
    or dict (which NumPy reads as an array).  ``s * params`` then scales every leaf of a
    ``Params`` instead of recording the whole structure as one opaque constant."""
    if isinstance(x, BVar):
        return type(x) is not BVar
    t = type(x)
    return t is not list and t is not tuple and t is not dict and type(
        tree.kind_of(t)) is tree.Container


def binary(prim: Primitive, a: Any, b: Any) -> Any:
    """Record ``prim(a, b)``: the fast path behind BVar's arithmetic operators.

    Exists because the generic :func:`apply` loops over arguments; operators always have
    two, one of which is a BVar, and this path handles the common cases (both on one
    tape, or one a plain number or array) in a few attribute reads.  Returns
    ``NotImplemented`` if an operand is a structure (see :func:`is_structure_operand`);
    callers that are not operators use :func:`binary_call`.
    """
    tb = type(b)
    reads = prim.reads
    # A constant array is locked only if the rules read it (add and subtract need shapes),
    # and only once the tape is known to be recording.
    constant = None
    if type(a) is BVar:
        tape = a._tape
        av = a._value
        if tb is BVar:
            if b._tape is not tape:
                return apply(prim, (a, b), {})
            bv = b._value
            parents: tuple[int | None, int | None] = (a._index, b._index)
        elif tb in _CONSTANT_TYPES:
            bv = b
            parents = (a._index, None)
            if tb is np.ndarray:
                if b.dtype.kind == "c":
                    return apply(prim, (a, b), {})  # (which refuses the complex result)
                if (reads is None or reads[1]) and id(b) not in tape.seen:
                    constant = b
        elif tb is list or tb is tuple:  # an array written as a list: as NumPy reads it
            return binary(prim, a, np.asarray(b))
        else:
            return NotImplemented if is_structure_operand(b) else apply(prim, (a, b), {})
    elif tb is BVar and type(a) in _CONSTANT_TYPES:
        tape = b._tape
        av = a
        bv = b._value
        parents = (None, b._index)
        if type(a) is np.ndarray:
            if a.dtype.kind == "c":
                return apply(prim, (a, b), {})
            if (reads is None or reads[0]) and id(a) not in tape.seen:
                constant = a
    elif tb is BVar and (type(a) is list or type(a) is tuple):
        return binary(prim, np.asarray(a), b)  # (an array written as a list, as above)
    elif is_structure_operand(a) or is_structure_operand(b):
        return NotImplemented  # (for an operator: Python then asks the structure)
    else:
        return apply(prim, (a, b), {})
    nodes = tape.nodes
    if nodes is None:
        raise _escaped(tape)
    if constant is not None:
        tape.lock(constant)
    y = prim.fn(av, bv)
    # A float result means both operands were Python numbers: no broadcasting to undo.
    node: tuple[Any, ...]
    if type(y) is float:
        node = (prim.node_float_rules, parents, (av, bv), y, None, prim.name)
    else:
        if reads is not None:  # (``stored`` inlined for two arguments: the hot path)
            if not reads[0] and type(av) is np.ndarray and av.nbytes > SMALL_ARRAY_BYTES:
                av = ShapeOf(av)
            if not reads[1] and type(bv) is np.ndarray and bv.nbytes > SMALL_ARRAY_BYTES:
                bv = ShapeOf(bv)
        kept = y if prim.reads_output or type(nodes) is not list else None
        node = (prim.node_rules, parents, (av, bv), kept, None, prim.name)
    i = len(nodes)  # (``append_node`` inlined, as is ``_new_bvar`` below)
    nodes.append(node)
    if nodes[i] is not node:
        i = index_of(nodes, node, i)
    v = object.__new__(BVar)  # (``_new_bvar`` inlined: this is the hottest path)
    v._value = y
    v._tape = tape
    v._index = i
    return v


def index_of(nodes: list[Any], node: Any, start: int) -> int:
    """Where ``node`` went in ``nodes``, at ``start`` or after: another thread may have
    appended one of its own between our ``len`` and ``append`` (threads may record on an
    outer runner's tape), or ``nodes`` stores a checked copy (under ``debug_nans``)."""
    given = getattr(nodes, "origins", nodes)
    for i in range(start, len(given)):
        if given[i] is node:
            return i
    raise AssertionError("a recorded node is missing from its tape")


def append_node(nodes: list[Any], node: Any) -> int:
    """Append ``node``; its index (right when other threads record on the same tape)."""
    i = len(nodes)
    nodes.append(node)
    return i if nodes[i] is node else index_of(nodes, node, i)


def binary_call(prim: Primitive, a: Any, b: Any) -> Any:
    """:func:`binary` for a function call, where a structure operand is an error."""
    y = binary(prim, a, b)
    if y is NotImplemented:
        raise _structure_operand(prim.name)
    return y


def _structure_operand(name: str) -> TypeError:
    return TypeError(
        f"{name} was given a structure (a container, or a BVar of one) as an operand; it "
        "takes arrays and numbers: apply it to the fields, or with hetgrad.tree_map"
    )


def unary(prim: Primitive, a: BVar) -> Any:
    """Record ``prim(a)`` for a leaf BVar (fast path for unary operators and ufuncs)."""
    tape = a._tape
    nodes = tape.nodes
    if nodes is None:
        raise _escaped(tape)
    av = a._value
    if type(av) is np.ndarray:
        y = prim.array_fn(av)
        reads = prim.reads
        if reads is not None and not reads[0] and av.nbytes > SMALL_ARRAY_BYTES:
            av = ShapeOf(av)
    else:
        y = prim.fn(av)
    kept = y if prim.reads_output or type(nodes) is not list else None
    node = (prim.node_rules, (a._index,), (av,), kept, None, prim.name)
    i = len(nodes)  # (``append_node`` inlined)
    nodes.append(node)
    if nodes[i] is not node:
        i = index_of(nodes, node, i)
    v = object.__new__(BVar)  # (``_new_bvar`` inlined, as in ``binary``)
    v._value = y
    v._tape = tape
    v._index = i
    return v


def apply(prim: Primitive, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """Call ``prim`` on ``args``, recording a node if any argument is a BVar.

    Arguments that are BVars of outer tapes are constants here; their values stay BVars,
    so ``prim.fn`` records on the outer tape in turn.
    """
    if kwargs:
        check_keywords(prim.name, kwargs)
    tape = find_tape(args)
    if tape is None:
        return prim.fn(*args, **kwargs)
    nodes = tape.nodes
    if nodes is None:
        raise _escaped(tape)
    vals = []
    parents: list[int | None] = []
    for pos, a in enumerate(args):
        if isinstance(a, BVar) and a._tape is tape:
            if type(a) is not BVar:
                raise TypeError(
                    f"{prim.name}: argument {pos} is a BVar of a {_kind_name(a)}, not of "
                    "an array or number; pass its fields, or lift the function with "
                    "hetgrad.opN to take structures"
                )
            if pos in prim.nondiff:
                vals.append(a._value)
                parents.append(None)
                continue
            # A user's primitive sees the tape's arrays read-only: writing into one would
            # change the intermediate that other nodes' rules read.
            vals.append(read_only(a._value) if prim.checked else a._value)
            parents.append(a._index)
        else:
            if type(a) is np.ndarray:
                tape.lock(a)
            elif type(a) not in _CONSTANT_TYPES and is_structure_operand(a):
                raise _structure_operand(prim.name)  # never a silent opaque constant
            vals.append(a)
            parents.append(None)
    tvals = tuple(vals)
    if prim.checked and any(isinstance(v, BVar) for v in tvals):
        # A user's primitive given a BVar of an outer runner (a higher derivative): the
        # outer runner records the same primitive with the same rules, so the function
        # only ever sees plain values, as in autograd (an opaque or stop_gradient'ed
        # forward stays right), and the rules are what is differentiated again.
        y = apply(prim, tvals, kwargs)
    else:
        y = prim.fn(*tvals, **kwargs)
    if prim.reads is not None:
        tvals = stored(prim.reads, tvals)
    vjps: Any = prim.vjps
    if len(parents) > len(vjps):  # (varargs beyond the rules given: no rule, said if used)
        vjps = vjps + tuple(missing_rule(prim.name, k) for k in range(len(vjps), len(parents)))
    else:
        vjps = prim.node_rules
    return record(tape, vjps, tuple(parents), tvals, y, kwargs or None, prim.name,
                  prim.reads_output)  # fmt: skip


def check_keywords(name: str, kwargs: dict[str, Any]) -> None:
    """Raise if a keyword argument is a BVar: keywords are never differentiated, and one
    reaching a primitive's function would be recorded nowhere (a lost gradient)."""
    for key, value in kwargs.items():
        if isinstance(value, BVar):
            raise TypeError(
                f"{name}: the keyword argument {key}= is a BVar, but keywords are never "
                f"differentiated; pass it by position if {name} takes it so, or pass "
                f"hetgrad.stop_gradient({key}) for a constant"
            )


def _kind_name(v: Any) -> str:
    return v._container.name if isinstance(v, TreeVar) else type(v._value).__name__


def is_integral(y: Any) -> bool:
    """True for a boolean or integer result, which has no derivative."""
    t = type(y)
    if t is np.ndarray:
        return y.dtype.kind in "biu"
    return t is bool or t is int or isinstance(y, (np.integer, np.bool_))


def is_complex(y: Any) -> bool:
    t = type(y)
    if t is np.ndarray:
        return y.dtype.kind == "c"
    return t is complex or isinstance(y, np.complexfloating)


def complex_result(name: str) -> TypeError:
    return TypeError(
        f"{name} gave a complex result: complex values are not supported by hetgrad (a "
        "complex constant operand, or a cast to a complex dtype); keep the real and "
        "imaginary parts as separate float arrays"
    )


def is_leaf_value(y: Any) -> bool:
    t = type(y)
    return t is float or t is np.ndarray or t is BVar or tree.kind_of(t) in (tree.LEAF, tree.ARRAY)


def record(
    tape: Tape,
    vjps: tuple[Callable[..., Any], ...] | int,
    parents: tuple[int | None, ...],
    args: tuple[Any, ...],
    y: Any,
    kw: dict[str, Any] | None,
    name: str,
    reads_output: bool = True,
) -> Any:
    """Append a primitive's node; structure-valued outputs get one node per output leaf."""
    nodes = tape.nodes
    assert nodes is not None
    t = type(y)
    if t is BVar:
        if y._tape is tape:
            raise computed_with_own_bvar(name)
    elif t is not float:
        if is_integral(y):  # (x > 0, argmax: a constant, as op1 has it)
            return y
        if is_complex(y):
            raise complex_result(name)
    if is_leaf_value(y):
        kept = y if reads_output or type(nodes) is not list else None
        return _new_bvar(y, tape, append_node(nodes, (vjps, parents, args, kept, kw, name)))
    try:
        leaves, td = flatten(y)
    except tree.UnsupportedLeafError as e:
        raise TypeError(f"{name} returned a value hetgrad cannot record: {e}") from None
    if any(isinstance(v, BVar) and v._tape is tape for v in leaves):
        raise computed_with_own_bvar(name)
    rules = RULE_TABLE[vjps] if isinstance(vjps, int) else vjps

    def pullback(parts: list[Any]) -> list[Any]:
        g = assemble(td, leaves, parts)
        return [
            None if p is None else (rules[k](g, y, *args, **kw) if kw else rules[k](g, y, *args))
            for k, p in enumerate(parents)
        ]

    return record_whole(tape, parents, pullback, td, leaves, name)


def computed_with_own_bvar(name: str) -> TypeError:
    """The error for an op whose forward pass computed with a BVar of the tape recording
    it: that BVar was not an argument, so the op's rules would cut its gradient."""
    return TypeError(
        f"{name}: its forward pass computed with a BVar of the runner recording it, one "
        "that is not an argument of its own (held in a list or dict argument, in a field "
        "declared static, or in a closure), so that BVar's gradient would be lost; pass it "
        "as an argument"
    )


def record_whole(
    tape: Tape,
    parents: tuple[int | None, ...],
    pullback: Callable[[Any], Sequence[Any]],
    out_def: TreeDef,
    out_leaves: list[Any],
    name: str,
) -> Any:
    """Append a custom op's node; returns BVars shaped like its output.

    A leaf output gets one node whose gradient is passed to ``pullback`` as is; a
    structured output gets one PROJECT node per leaf, and ``pullback`` receives the list
    of the leaves' gradients (None where nothing flowed).
    """
    nodes = tape.nodes
    assert nodes is not None
    if out_def is LEAF_DEF:
        i = append_node(nodes, (WHOLE, parents, pullback, out_leaves[0], None, name))
        return _new_bvar(out_leaves[0], tape, i)
    op = append_node(nodes, (WHOLE, parents, pullback, None, None, name))
    n = len(out_leaves)
    outs = []
    for pos, leaf in enumerate(out_leaves):
        i = append_node(nodes, (PROJECT, (op,), pos, n, leaf, name))
        outs.append(_new_bvar(leaf, tape, i))
    return build_view(out_def, iter(outs), tape)


def assemble(td: TreeDef, leaves: list[Any], parts: Any) -> Any:
    """The structured cotangent of a multi-output node, zeros where nothing flowed."""
    if type(parts) is not list:  # a leaf-valued output
        return parts
    return unflatten(td, [zero(primal(v)) if g is None else g for v, g in zip(leaves, parts)])


def primal(x: Any) -> Any:
    """The plain value beneath any number of BVar levels (the tape's own object)."""
    while isinstance(x, BVar):
        x = x.value if isinstance(x, TreeVar) else x._value
    return x


def read_only(x: Any) -> Any:
    """``x``, or a read-only view of it if it is an array (the tape may still read it)."""
    if type(x) is np.ndarray and x.flags.writeable:
        x = x.view()
        x.setflags(write=False)
    return x


class BVar:
    """A value being differentiated: a number or array recorded on a tape.

    ``.value`` is the primal value.  Arithmetic operators, NumPy ufuncs and the NumPy
    functions hetgrad lifts record on the tape; comparisons compare the primal values and
    return plain results, so data-dependent ``if`` and ``while`` work.

    ``float(v)`` and ``np.asarray(v)`` raise ``TypeError`` (they would silently drop the
    value from the tape): use ``v.value`` when you mean the primal.  ``int(v)`` and
    ``bool(v)`` are allowed: they are piecewise constant, so no gradient is lost.

    >>> import hetgrad
    >>> hetgrad.grad_bp(lambda x: x * x + 3.0 * x, 2.0)
    7.0
    """

    __slots__ = ("_value", "_tape", "_index")
    __array_priority__ = 1000.0
    _value: Any
    _tape: Tape
    _index: int

    @property
    def value(self) -> Any:
        """The primal value (arrays as read-only views: the tape still reads them)."""
        return read_only(self._value)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: PLE0307  (what isinstance asks after type(v))
        # A BVar of a number is a number to isinstance, as the number is: np.isscalar(v)
        # and isinstance(v, numbers.Number) do not change under differentiation (a branch
        # on them would, and the gradient with it).  type(v) stays BVar.
        v = self._value
        while type(v) is BVar:  # (a BVar of an outer tape's BVar)
            v = v._value
        if type(v) is float or isinstance(v, np.generic):
            return ScalarBVar
        return type(self)

    def __repr__(self) -> str:
        return f"BVar({self._value!r})"

    # -- primal information --------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self._value)

    @property
    def ndim(self) -> int:
        return np.ndim(self._value)

    @property
    def size(self) -> int:
        return int(np.size(self._value))

    @property
    def dtype(self) -> Any:
        v = self._value
        return np.result_type(v) if not isinstance(v, BVar) else v.dtype

    def __len__(self) -> int:
        return len(self._value)

    def __iter__(self) -> Any:
        av = self._value
        if type(av) is np.ndarray and av.ndim and len(av) > 1:
            return iter(_r.unstack(self)._children)
        return (self[i] for i in range(len(av)))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __int__(self) -> int:
        return int(primal(self))

    def __float__(self) -> float:
        raise TypeError(
            "float() of a BVar would drop it from the tape and silently zero its gradient "
            "(math.exp and the other math functions call it, and so does storing a BVar "
            "into a NumPy array); use NumPy's functions (np.exp, or hetgrad.numpy), which "
            "record, and build arrays from BVars with hetgrad.numpy.stack or .array. "
            "bvar.value is the value as a constant, with no gradient"
        )

    # A BVar is never changed in place: a copy (copy.copy, copy.deepcopy, a structure
    # holding it deep-copied) is the BVar itself, on its own tape.
    def __copy__(self) -> BVar:
        return self

    def __deepcopy__(self, memo: Any) -> BVar:
        return self

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            "a BVar cannot be pickled: it belongs to the runner call recording it; pickle "
            "bvar.value (or the structure your function was given) instead"
        )

    def __format__(self, spec: str) -> str:  # (f"{loss:.3f}" in a progress message)
        return format(primal(self), spec)

    def __round__(self, ndigits: Any = None) -> Any:  # piecewise constant: a plain result
        return round(primal(self), ndigits)

    def copy(self, order: str = "K") -> Any:
        """A BVar is never changed in place, so its copy is itself (``np.copy`` alike)."""
        return self

    def item(self, *args: Any) -> Any:
        raise TypeError(
            "bvar.item() would drop it from the tape; index the BVar instead (v[i]), or "
            "use bvar.value.item() for the value as a constant"
        )

    def tolist(self) -> Any:
        raise TypeError(
            "bvar.tolist() would drop it from the tape; iterate over the BVar instead "
            "(list(v)), or use bvar.value.tolist() for the values as constants"
        )

    def __complex__(self) -> complex:
        raise TypeError("complex values are not supported by hetgrad")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(
            "converting a BVar to a NumPy array would drop it from the tape; use bvar.value "
            "for the primal value, hetgrad.numpy.stack / hetgrad.numpy.array to build a "
            "differentiable array from BVars, or a lifted function (hetgrad.numpy)"
        )

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TypeError(
            "item assignment into a BVar is not differentiable in place; build a new value "
            "with hetgrad.numpy.where, concatenate or stack, or set_var for structures"
        )

    # -- comparisons: primal values, plain results ---------------------------------------

    def __lt__(self, other: Any) -> Any:
        return self._value < primal(other)

    def __le__(self, other: Any) -> Any:
        return self._value <= primal(other)

    def __gt__(self, other: Any) -> Any:
        return self._value > primal(other)

    def __ge__(self, other: Any) -> Any:
        return self._value >= primal(other)

    def __eq__(self, other: Any) -> Any:
        return self._value == primal(other)

    def __ne__(self, other: Any) -> Any:
        return self._value != primal(other)

    __hash__ = None  # type: ignore[assignment]

    # -- arithmetic ---------------------------------------------------------------------

    def __add__(self, other: Any) -> Any:
        return binary(_r.add, self, other)

    def __radd__(self, other: Any) -> Any:
        return binary(_r.add, other, self)

    def __sub__(self, other: Any) -> Any:
        return binary(_r.subtract, self, other)

    def __rsub__(self, other: Any) -> Any:
        return binary(_r.subtract, other, self)

    def __mul__(self, other: Any) -> Any:
        return binary(_r.multiply, self, other)

    def __rmul__(self, other: Any) -> Any:
        return binary(_r.multiply, other, self)

    def __truediv__(self, other: Any) -> Any:
        return binary(_r.divide, self, other)

    def __rtruediv__(self, other: Any) -> Any:
        return binary(_r.divide, other, self)

    def __pow__(self, other: Any) -> Any:
        return binary(_r.power, self, other)

    def __rpow__(self, other: Any) -> Any:
        return binary(_r.power, other, self)

    def __matmul__(self, other: Any) -> Any:
        return binary(_r.matmul, self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return binary(_r.matmul, other, self)

    def __neg__(self) -> Any:
        return unary(_r.negative, self)

    def __pos__(self) -> Any:
        return self

    def __abs__(self) -> Any:
        return unary(_r.absolute, self)

    def __mod__(self, other: Any) -> Any:
        return binary(_r.remainder, self, other)

    def __rmod__(self, other: Any) -> Any:
        return binary(_r.remainder, other, self)

    def __floordiv__(self, other: Any) -> Any:  # piecewise constant: a plain result
        return primal(self) // primal(other)

    def __rfloordiv__(self, other: Any) -> Any:
        return primal(other) // primal(self)

    def __divmod__(self, other: Any) -> Any:
        return self // other, self % other

    def __rdivmod__(self, other: Any) -> Any:
        return other // self, other % self

    def __contains__(self, x: Any) -> bool:  # (as NumPy's: any element equal)
        return primal(x) in self._value

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> Any:
        """The value cast to ``dtype``: a float dtype keeps the gradient (cast back), any
        other kind is a constant, like ``floor``."""
        kind = np.dtype(dtype).kind
        if kind == "c":
            raise complex_result(f"astype({np.dtype(dtype)})")
        if kind != "f":
            return np.asarray(primal(self)).astype(dtype, *args, **kwargs)
        return _r.astype(self, np.dtype(dtype))

    def __getitem__(self, key: Any) -> Any:
        return apply(_r.getitem, (self, key), {})

    @property
    def T(self) -> Any:
        return _r.transpose(self)

    # (ndarray's signatures: sum(axis, dtype, out, keepdims); the usual call kept direct)
    def sum(self, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, **kwargs: Any) -> Any:  # fmt: skip
        if dtype is None and out is None and not kwargs:
            return _reduce(_r.FUNCTIONS[np.sum], self, axis, keepdims)
        return np.sum(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kwargs)

    def mean(self, axis: Any = None, dtype: Any = None, out: Any = None,
             keepdims: bool = False, **kwargs: Any) -> Any:  # fmt: skip
        if dtype is None and out is None and not kwargs:
            return _reduce(_r.FUNCTIONS[np.mean], self, axis, keepdims)
        return np.mean(self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kwargs)

    def reshape(self, *shape: Any, order: str = "C") -> Any:
        if len(shape) == 1:  # reshape(6), reshape(np.int64(6)) or reshape((2, 3))
            try:
                shape = (operator.index(shape[0]),)
            except TypeError:
                shape = tuple(shape[0])  # type: ignore[arg-type]
        return _r.reshape(self, shape, order=order) if order != "C" else _r.reshape(self, shape)

    def transpose(self, *axes: Any) -> Any:
        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = axes[0]  # a.transpose((1, 0)) or a.transpose(None)
        return np.transpose(self, None if axes is None or len(axes) == 0 else axes)

    def dot(self, other: Any) -> Any:
        return np.dot(self, other)

    # -- NumPy dispatch -----------------------------------------------------------------

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # Fast path (NumPy already spends ~0.4 us getting here): a plain call of a lifted
        # ufunc on one or two operands, ``np.sin(v)`` or ``np.add(v, c)``.
        if method == "__call__" and not kwargs:
            p = _r.UFUNCS.get(ufunc)
            if p is not None:
                if len(inputs) == 2:
                    return binary(p, inputs[0], inputs[1])
                if len(inputs) == 1 and type(self) is BVar:
                    return unary(p, self)
        if method != "__call__" or "out" in kwargs:
            how = "" if method == "__call__" else f".{method}"
            raise NotImplementedError(
                f"numpy.{ufunc.__name__}{how}"
                + (" with out=" if "out" in kwargs else "")
                + " is not differentiable in hetgrad (in-place and ufunc methods cannot be "
                "recorded); use the plain call or hetgrad.numpy's reductions"
            )
        return _r.dispatch_ufunc(ufunc, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        impl = _r.FUNCTIONS.get(func)  # (the lookup inlined: saves a call per function)
        if impl is not None:
            return impl(*args, **kwargs)
        return _r.dispatch_function(func, args, kwargs)  # which names what is not lifted


def _reduce(impl: Callable[..., Any], a: BVar, axis: Any, keepdims: bool) -> Any:
    """``impl(a, axis=axis, keepdims=keepdims)``, the defaults left out: a node without
    keywords takes the reverse sweep's short path (``loss.sum()`` is in most losses)."""
    if keepdims:
        return impl(a, axis=axis, keepdims=True)
    return impl(a) if axis is None else impl(a, axis=axis)


class TreeVar(BVar):
    """A BVar of a structure (dataclass, NamedTuple, tuple, list, dict).

    It holds one BVar (or nested TreeVar, or static value) per field, so reading a field
    records nothing and costs a lookup: gradients are accumulated per leaf, and reading m of
    n fields costs O(m).  Anything else (methods, properties, ``.items()``) is answered by
    the *split* value: an instance of your own type whose fields are BVars.  ``.value`` is
    the primal structure; a field that is itself called ``value`` is read as
    ``v["value"]`` or with ``hetgrad.lens.attr("value")``.
    """

    __slots__ = ("_container", "_aux", "_children", "_lookup")
    _container: Container
    _aux: Any
    _children: list[Any]
    _lookup: dict[Any, int] | None

    @property
    def value(self) -> Any:
        v = self._value
        if v is None:
            v = self._value = self._container.rebuild(
                self._aux, [primal_level(c) for c in self._children]
            )
        return v

    def __repr__(self) -> str:
        return f"BVar({self._split()!r})"

    def _split(self) -> Any:
        """This structure as your own type with BVar fields (see ``split_bv``)."""
        return self._container.rebuild(self._aux, self._children)

    def _index_of(self, key: Any) -> int | None:
        lookup = self._lookup
        if lookup is None:
            keys = self._container.keys(self._aux)
            lookup = self._lookup = {
                (k.name if isinstance(k, tree._Attr) else k): i for i, k in enumerate(keys)
            }
        return lookup.get(key)

    def __getattr__(self, name: str) -> Any:
        i = self._container.attributes.get(name)
        if i is not None:
            return self._children[i]
        if name.startswith("__"):
            raise AttributeError(name)
        if name == "get" and _dict_lookup(self._container.record):
            return self._get  # (one lookup, where the split dict costs O(n) per call)
        split = self._split()
        found = getattr(split, name)
        if callable(found) and not isinstance(found, type):
            return _method_of_split(self, split, found, name)
        return found

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)) and self._container.name in ("list", "tuple"):
            return self._children[key]
        if type(key) is not slice and self._container.keys is not None:
            try:
                i = self._index_of(key)
            except TypeError:  # unhashable key
                i = None
            if i is not None:
                return self._children[i]
        return self._split()[key]

    def __len__(self) -> int:
        return len(self._children)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._split()(*args, **kwargs)

    def __iter__(self) -> Any:
        return iter(self._split())

    def __contains__(self, key: Any) -> bool:
        if _dict_lookup(self._container.record):
            return self._index_of(key) is not None  # (O(1), as for a dict)
        return key in self._split()

    def _get(self, key: Any, default: Any = None) -> Any:
        """``dict.get`` on a BVar of a dict."""
        i = self._index_of(key)
        return default if i is None else self._children[i]

    def __bool__(self) -> bool:
        return bool(self._children)

    def __eq__(self, other: Any) -> Any:
        return self.value == primal(other)

    def __ne__(self, other: Any) -> Any:
        return self.value != primal(other)

    # Arithmetic on a structure is whatever your type defines (hetgrad.Params gives
    # elementwise + - * /); a list concatenates, as it would without hetgrad.
    def __add__(self, other: Any) -> Any:
        return operator.add(self._split(), other)

    def __radd__(self, other: Any) -> Any:
        return operator.add(other, self._split())

    def __sub__(self, other: Any) -> Any:
        return operator.sub(self._split(), other)

    def __rsub__(self, other: Any) -> Any:
        return operator.sub(other, self._split())

    def __mul__(self, other: Any) -> Any:
        return operator.mul(self._split(), other)

    def __rmul__(self, other: Any) -> Any:
        return operator.mul(other, self._split())

    def __truediv__(self, other: Any) -> Any:
        return operator.truediv(self._split(), other)

    def __rtruediv__(self, other: Any) -> Any:
        return operator.truediv(other, self._split())

    def __neg__(self) -> Any:
        return operator.neg(self._split())

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        # NumPy asks a structure only where it is an argument itself: the sequences that
        # stack, concatenate and the like take are asked element by element.  Of the
        # lifted functions, only those below read a BVar of a list as NumPy reads a list;
        # the others would fail inside NumPy with an error about something else.
        if func in _READ_A_STRUCTURE:
            return super().__array_function__(func, types, args, kwargs)
        module = getattr(func, "__module__", None) or "numpy"
        raise TypeError(
            f"{module}.{func.__name__} was given a BVar of a {self._container.name}; NumPy "
            "functions take BVars of arrays or numbers (a BVar of a list of numbers "
            "becomes one with hetgrad.numpy.array(v); or use hetgrad.tree_map over the "
            "fields)"
        )

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # A NumPy number or array on the left of an operator (np.float64(0.5) * params)
        # reaches here: it is the structure's own arithmetic, as with a Python number.
        op = _STRUCTURE_OPERATORS.get(ufunc)
        if op is not None and method == "__call__" and not kwargs and len(inputs) == 2:
            a, b = inputs
            return op(a._split() if a is self else a, b._split() if b is self else b)
        raise TypeError(
            f"numpy.{ufunc.__name__} was given a BVar of a {self._container.name}; NumPy "
            "functions take BVars of arrays or numbers (use hetgrad.tree_map over the fields)"
        )


class ScalarBVar(BVar):
    """The class a BVar of a Python or NumPy number reports (``v.__class__``): registered
    as a ``numbers.Number``.  Never instantiated; ``type(v)`` is ``BVar``."""

    __slots__ = ()


numbers.Number.register(ScalarBVar)


def _dict_lookup(t: type | None) -> bool:
    """True if ``t`` is a dict type whose ``get`` and ``in`` are dict's own, which a BVar
    of it answers by key (a subclass's own methods need the split value)."""
    return (t is not None and issubclass(t, dict) and t.get is dict.get
            and t.__contains__ is dict.__contains__)  # fmt: skip


# polyval: a list of coefficients; block: nested lists of blocks; and the shape queries.
_READ_A_STRUCTURE = frozenset({np.polyval, np.block, np.shape, np.ndim, np.size})

_STRUCTURE_OPERATORS = {
    np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
    np.true_divide: operator.truediv,
}  # fmt: skip


def _method_of_split(v: TreeVar, split: Any, method: Any, name: str) -> Any:
    """``method`` of the split value, checked not to change it: ``xs.sort()`` or a method
    assigning ``self.w`` would change a copy, and the change would be lost silently."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        out = method(*args, **kwargs)
        try:
            aux, kids = v._container.split(split)
            same = (aux is v._aux or aux == v._aux) and len(kids) == len(v._children) and all(
                a is b for a, b in zip(kids, v._children)
            )
        except Exception:  # noqa: BLE001  (a value that cannot be compared: let it be)
            same = True
        if not same:
            raise _changed_in_place(f"{name}()", v)
        return out

    return call


class _FieldFirst:
    """A BVar attribute that a TreeVar gives up to a field of the same name.

    ``shape``, ``sum``, ``T`` and the like mean something for a BVar of an array; on a BVar
    of a structure, a field with that name wins, and otherwise the name is looked up on the
    structure itself (your type's own attribute, method or property).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        i = obj._container.attributes.get(self.name)
        if i is not None:
            return obj._children[i]
        return TreeVar.__getattr__(obj, self.name)  # (a method of yours: checked not to mutate)


def _array_method(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """The ndarray method ``name`` of a BVar: ``fn(self, ...)``, recorded like ``fn``."""

    def method(self: BVar, *args: Any, **kwargs: Any) -> Any:
        return fn(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``numpy.{fn.__name__}(v, ...)`` as a method, as on an ndarray."
    return method


# The ndarray methods that compute something (argmax, argsort, any, ...: constants).
_ARRAY_METHODS: dict[str, Callable[..., Any]] = {
    "max": np.max, "min": np.min, "prod": np.prod, "std": np.std, "var": np.var,
    "cumsum": np.cumsum, "cumprod": np.cumprod, "clip": np.clip, "ravel": np.ravel,
    "flatten": np.ravel, "swapaxes": np.swapaxes, "squeeze": np.squeeze, "trace": np.trace,
    "diagonal": np.diagonal, "round": np.round, "argmax": np.argmax, "argmin": np.argmin,
    "repeat": np.repeat, "take": np.take, "any": np.any, "all": np.all,
    "argsort": np.argsort, "nonzero": np.nonzero, "conj": np.conjugate,
    "conjugate": np.conjugate,
}  # fmt: skip
for _name, _fn in _ARRAY_METHODS.items():
    setattr(BVar, _name, _array_method(_name, _fn))


def _sort_in_place(self: BVar, *args: Any, **kwargs: Any) -> None:
    """``ndarray.sort`` sorts in place, which a BVar never is: use ``np.sort(v)``."""
    raise TypeError(
        "v.sort() would sort a BVar in place, and the change would be lost; use "
        "np.sort(v), which returns a sorted BVar (and records its gradient)"
    )


BVar.sort = _sort_in_place  # type: ignore[attr-defined]

for _name in ("shape", "ndim", "size", "dtype", "T", "sum", "mean", "reshape", "dot",
              "transpose", "astype", "sort", *_ARRAY_METHODS):  # fmt: skip
    setattr(TreeVar, _name, _FieldFirst(_name))


def primal_level(x: Any) -> Any:
    """The value one level down: a BVar's ``.value``, anything else itself."""
    return x.value if isinstance(x, BVar) else x


def raw_level(x: Any) -> Any:
    """Like :func:`primal_level`, but the tape's own object (no read-only view)."""
    if type(x) is BVar:
        return x._value
    return x.value if isinstance(x, BVar) else x


def build_view(td: TreeDef, leaves: Any, tape: Tape | None) -> Any:
    """A TreeVar shaped like ``td`` whose leaves are taken from the iterator ``leaves``."""
    if td.container is None:
        c = td.children[0]
        return next(leaves) if c is None else c.value
    kids = []
    for c in td.children:
        if c is None:
            kids.append(next(leaves))
        elif type(c) is Static:
            kids.append(c.value)
        else:
            kids.append(build_view(c, leaves, tape))
    return make_view(td.container, td.aux, kids, tape)


def view_class(container: Container) -> type[TreeVar]:
    """The class of TreeVars of ``container``: for a record type, a subclass with one
    property per field, so ``v.field`` is a property read (~0.2 us) where TreeVar alone
    would fail a lookup and fall back to ``__getattr__`` (~0.8 us)."""
    cls = container.view
    if cls is None:
        _refuse_internal_names(container)
        fields = {n: i for n, i in container.attributes.items() if not hasattr(TreeVar, n)}
        cls = TreeVar
        record = container.record
        if fields or record is not None:
            namespace: dict[str, Any] = {"__slots__": ()}
            for name, i in fields.items():
                namespace[name] = _field(i)
            if record is not None:
                # isinstance(v, Layer) is True for a BVar of a Layer, as for the Layer your
                # code gets outside a runner: a branch on the type must not change under
                # differentiation (and ``case Layer(w=w)`` matches).  type(v) is unchanged,
                # and calling it builds your type (dataclasses.asdict rebuilds a list field
                # as type(v)(items)); the engine makes its views with object.__new__.
                namespace["__class__"] = _record_class(record)
                namespace["__new__"] = _record_constructor(record)
            if record is not None and dataclasses.is_dataclass(record):
                # And dataclasses.is_dataclass, fields, replace and asdict see a dataclass
                # (replace and asdict then build your class with BVar fields, as split_bv).
                namespace["__dataclass_fields__"] = record.__dataclass_fields__
                namespace["__dataclass_params__"] = record.__dataclass_params__  # type: ignore[attr-defined]
            cls = type(f"TreeVar[{container.name}]", (TreeVar,), namespace)
            tree._kinds[cls] = VIEW
        container.view = cls
    return cls


# Attributes of the engine's own on every BVar of a structure: a field of that name could
# not be read as an attribute (the engine's would answer), so such a type is refused.
_INTERNAL_NAMES = frozenset(
    n for n in dir(TreeVar) if n.startswith("_") and not n.startswith("__")
)


def _refuse_internal_names(container: Container) -> None:
    clash = sorted(_INTERNAL_NAMES.intersection(container.attributes))
    if clash:
        raise TypeError(
            f"the field {clash[0]!r} of {container.name} has the name of an attribute "
            f"hetgrad's BVars keep for themselves ({', '.join(sorted(_INTERNAL_NAMES))}), "
            "so it could not be read as an attribute under differentiation; rename the "
            "field"
        )


def _record_class(record: type) -> property:
    return property(lambda v: record)


def _record_constructor(record: type) -> Callable[..., Any]:
    def __new__(cls: type, *args: Any, **kwargs: Any) -> Any:  # noqa: N807
        return record(*args, **kwargs)

    return __new__


def _field(i: int) -> property:
    def read(v: TreeVar) -> Any:
        return v._children[i]

    def write(v: TreeVar, x: Any) -> None:
        raise _changed_in_place(f"assigning .{_field_name(v, i)}", v)

    return property(read, write)


def _field_name(v: TreeVar, i: int) -> str:
    return next(n for n, j in v._container.attributes.items() if j == i)


def _changed_in_place(what: str, v: TreeVar) -> TypeError:
    return TypeError(
        f"{what} would change a BVar of a {v._container.name} in place, and the change "
        "would be lost (the structure your function was given is not changed under "
        "differentiation); build a new value instead: hetgrad.set_var(v, attr('w'), x), "
        "dataclasses.replace(hetgrad.split_bv(v), w=x), sorted(xs), {**d, k: x}"
    )


def make_view(container: Container, aux: Any, children: list[Any], tape: Tape | None) -> TreeVar:
    v: TreeVar = object.__new__(container.view or view_class(container))
    v._value = None
    v._tape = tape  # type: ignore[assignment]
    v._index = None  # type: ignore[assignment]
    v._container = container
    v._aux = aux
    v._children = children
    v._lookup = None
    return v


tree._kinds[BVar] = tree.LEAF
tree._kinds[TreeVar] = VIEW
tree.set_bvar_type(BVar)
register_backprop(
    BVar, zero=lambda v: zero(primal(v)), add=operator.add, one=lambda v: one(primal(v))
)

# The primitives behind the operators; imported last because they build on this module.
from . import rules as _r  # noqa: E402
