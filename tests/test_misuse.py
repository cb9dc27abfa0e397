"""Misuse is caught, never silently computed (issue 8), and the peers' open bugs stay fixed.

The misuse table below lists every misuse the issue names with the error type and a phrase
of its message.  What hetgrad does in the cases it had to decide:

* ``float(bvar)``, ``complex(bvar)``, ``np.asarray(bvar)``, ``np.array(bvar)`` and
  ``math.sin(bvar)`` (which calls ``float``) raise ``TypeError``: each would drop the value
  from the tape and silently zero its gradient.  ``bvar.value`` is the explicit way.
* ``int(bvar)``, ``bool(bvar)`` and ``round(bvar)`` are allowed: they are piecewise
  constant, so no gradient is lost (tested in ``test_tape.py`` and below).
* Item assignment into a BVar raises ``TypeError``; assigning a BVar into a plain array
  (``a[0] = bvar``) raises NumPy's ``ValueError`` "setting an array element with a
  sequence" (NumPy swallows the ``TypeError`` of the conversion and raises its own).
* A BVar used as a dict key or put in a set: ``TypeError`` (BVars are unhashable, since
  ``==`` compares primal values).

Tests that already cover a row live elsewhere and are not repeated: ``test_tape.py``
(escapes, another thread's runner, sibling calls, ``float``/``int``/``asarray``/item
assignment, unlifted NumPy functions, writes into inputs and constants, arrays writable
again after the runner), ``test_primitive.py`` (pullbacks with the wrong shape, structure,
dtype or count), ``test_runners.py`` (unsupported leaves naming their path, non-scalar
outputs) and ``test_nn.py`` (norm at 0, logsumexp over -inf, ``where`` with a NaN branch
and ``safe_where``).  This file adds the table, writes into arrays the tape saved in the
forms those tests do not try (intermediates through ``.value`` of every kind of saved
array, views, inside ``backprop_with`` while its pullback lives, in nested runners), and
the peer-bug regressions in the form the issue states them.

Known limit: NumPy has no write hook, so locking is by the ``writeable`` flag of the
arrays the tape saw (and of their base, the array owning the memory).  Another view of
the same memory made *before* the runner (``v2 = data[:2]`` next to a saved ``data[1:]``)
keeps its own flag and can still be written through.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import hetgrad
import hetgrad.numpy as hnp
from hetgrad import BVar, TapeError, backprop_with, grad, grad_bp


@dataclasses.dataclass
class Holder:
    w: float
    act: Any


class Opaque:
    pass


def _leak() -> BVar:
    box: list[BVar] = []
    grad_bp(lambda x: (box.append(x), x * x)[1], 3.0)
    return box[0]


def _sibling() -> BVar:
    box: list[BVar] = []

    def outer(x: BVar) -> BVar:
        grad_bp(lambda y: (box.append(y), y)[1], 1.0)
        return x * box[0]  # the sibling's BVar while the outer tape is still open

    grad_bp(outer, 2.0)
    raise AssertionError("unreachable: mixing must raise")


def _other_thread(use: Callable[[BVar], Any]) -> None:
    """Run ``use`` on a BVar of a runner that is live in another thread."""
    ready, done = threading.Event(), threading.Event()
    box: list[BVar] = []

    def other(x: BVar) -> BVar:
        box.append(x)
        ready.set()
        done.wait(5)
        return x

    t = threading.Thread(target=lambda: grad_bp(other, 1.0))
    t.start()
    try:
        assert ready.wait(5)
        grad_bp(lambda y: use(box[0]) * y, 2.0)
    finally:
        done.set()
        t.join()


def _in_runner(body: Callable[[BVar], Any], x: Any = 2.0) -> Callable[[], Any]:
    def run() -> Any:
        if np.ndim(x) == 0:
            return grad_bp(lambda v: (body(v), v)[1], x)
        return grad_bp(lambda v: np.sum(body(v) * 0.0 + v), x)

    return run


def _custom_op(pullback: Callable[[Any], Any]) -> Callable[[], Any]:
    op = hetgrad.op1(lambda x: (x * 2.0, pullback))
    return lambda: grad_bp(lambda v: np.sum(op(v)), np.ones(2))


def _bad_rule(rule: Callable[..., Any]) -> Callable[[], Any]:
    p = hetgrad.primitive(lambda x: x * 2.0)
    p.defvjp(rule)
    return lambda: grad_bp(lambda v: np.sum(p(v)), np.ones(2))


# (what is misused, the call, the error type, a phrase of the message)
MISUSES: list[tuple[str, Callable[[], Any], type[BaseException], str]] = [
    # a BVar used after its runner returned
    ("escaped BVar in a new runner", lambda: grad_bp(lambda y: _leak() * y, 1.0),
     TapeError, "already returned"),
    ("escaped BVar on its own", lambda: _leak() + 1.0, TapeError, "already returned"),
    ("escaped BVar in a lifted function", lambda: hnp.tanh(_leak()), TapeError, "already returned"),
    ("escaped BVar in a custom op", lambda: hetgrad.op1(lambda x: (x, lambda g: g))(_leak()),
     TapeError, "already returned"),
    # BVars of two runner calls mixed outside nesting
    ("sibling runner's BVar", _sibling, TapeError, "already returned"),
    ("another thread's BVar", lambda: _other_thread(lambda b: b + 1.0), TapeError, "not nested"),
    ("another thread's BVar in a lifted function",
     lambda: _other_thread(lambda b: hnp.sum(b * np.ones(2))), TapeError, "not nested"),
    # NumPy functions hetgrad does not lift
    ("unlifted numpy function", _in_runner(lambda v: np.fft.rfft(v), np.ones(4)),
     NotImplementedError, "numpy.fft.rfft is not differentiable"),
    ("unlifted ufunc", _in_runner(lambda v: np.frexp(v)), NotImplementedError,
     "numpy.frexp is not differentiable"),
    ("ufunc method", _in_runner(lambda v: np.multiply.accumulate(v), np.ones(3)),
     NotImplementedError, "numpy.multiply.accumulate"),
    ("ufunc out=", _in_runner(lambda v: np.sin(v, out=np.empty(2)), np.ones(2)),
     NotImplementedError, "with out="),
    # conversions that would drop the tape
    ("float(bvar)", _in_runner(float), TypeError, "float() of a BVar"),
    ("math.sin(bvar)", _in_runner(math.sin), TypeError, "float() of a BVar"),
    ("complex(bvar)", _in_runner(complex), TypeError, "complex"),
    ("np.asarray(bvar)", _in_runner(np.asarray, np.ones(2)), TypeError, "drop it from the tape"),
    ("np.array(bvar)", _in_runner(np.array, np.ones(2)), TypeError, "drop it from the tape"),
    ("array[i] = bvar", _in_runner(lambda v: np.zeros(2).__setitem__(0, v)), ValueError,
     "setting an array element"),
    ("bvar[i] = x", _in_runner(lambda v: v.__setitem__(0, 1.0), np.ones(2)), TypeError,
     "item assignment"),
    ("float(BVar of a structure)", lambda: grad_bp(lambda d: float(d), {"a": 1.0}), TypeError,
     "float() of a BVar"),
    ("numpy ufunc on a BVar of a structure", lambda: grad_bp(np.sin, {"a": 1.0}), TypeError,
     "BVar of a dict"),
    # NumPy functions given a BVar of a list where they read an array: named, with the fix
    ("np.median of a BVar of a list", lambda: grad_bp(np.median, [1.0, 2.0]), TypeError,
     "numpy.median was given a BVar of a list"),
    ("np.interp with fp a BVar of a list",
     lambda: grad_bp(lambda v: np.interp(0.5, [0.0, 1.0], v), [1.0, 2.0]), TypeError,
     "numpy.interp was given a BVar of a list"),
    ("np.cov of a BVar of a list", lambda: grad_bp(lambda v: np.sum(np.cov(v)), [1.0, 2.0]),
     TypeError, "hetgrad.numpy.array(v)"),
    ("np.trapezoid of a BVar of a list", lambda: grad_bp(np.trapezoid, [1.0, 2.0]), TypeError,
     "numpy.trapezoid was given"),
    ("np.linalg.vecdot of a BVar of a list",
     lambda: grad_bp(lambda v: np.linalg.vecdot(v, v), [1.0, 2.0]), TypeError,
     "numpy.linalg.vecdot was given a BVar of a list"),
    ("np.polyder of a BVar of a dict",
     lambda: grad_bp(lambda d: np.sum(np.polyder(d)), {"a": 1.0}), TypeError,
     "numpy.polyder was given a BVar of a dict"),
    ("bvar.item()", _in_runner(lambda v: v.item()), TypeError, "bvar.value.item()"),
    ("bvar.tolist()", _in_runner(lambda v: v.tolist(), np.ones(2)), TypeError, "list(v)"),
    ("bvar as a dict key", _in_runner(lambda v: {v: 1}), TypeError, "unhashable"),
    # pullbacks and rules returning the wrong structure or shape
    ("pullback: wrong shape", _custom_op(lambda g: np.ones(3)), ValueError,
     "gradient for argument 0 has the wrong shape: expected (2,), got (3,)"),
    ("pullback: wrong structure", _custom_op(lambda g: [g[0], g[1]]), TypeError,
     "wrong structure"),
    ("pullback: a string", _custom_op(lambda g: "grad"), TypeError, "wrong structure"),
    ("pullback: complex", _custom_op(lambda g: g * 1j), TypeError,
     "complex values are not supported"),
    ("op2 pullback: one gradient", lambda: grad_bp(
        hetgrad.op2(lambda a, b: (a * b, lambda g: g)), 1.0, 2.0),
     TypeError, "must return a tuple of 2 gradients"),
    ("custom op without a pullback", lambda: grad_bp(hetgrad.op1(lambda x: x), 1.0), TypeError,
     "must return a pair (value, pullback)"),
    ("defvjp rule: wrong shape", _bad_rule(lambda g, ans, x: g[:1]), ValueError, "wrong shape"),
    ("defvjp rule not callable", lambda: hetgrad.primitive(lambda x: x).defvjp(2.0), TypeError,
     "must be a function"),
    # unsupported leaves name their path
    ("unsupported leaf", lambda: grad_bp(lambda h: h.w, Holder(1.0, Opaque())), TypeError,
     "at args[0].act: hetgrad does not know how to differentiate a value of type"),
    ("complex leaf", lambda: grad_bp(lambda d: d["w"], {"w": 1.0, "z": [1j]}), TypeError,
     "at args[0]['z'][0]: complex values are not supported"),
    ("object array leaf", lambda: grad_bp(lambda d: d[0], (1.0, np.array([None]))), TypeError,
     "at args[0][1]: object arrays"),
    ("unsupported leaf outside a runner", lambda: hetgrad.tree_map(float, {"a": [Opaque()]}),
     TypeError, "at value['a'][0]: hetgrad does not know"),
    # non-scalar outputs for grad_bp
    ("grad_bp of a vector", lambda: grad_bp(lambda x: x * 2.0, np.ones(3)), TypeError,
     "returned an array of shape (3,)"),
    ("grad_bp of a structure", lambda: grad_bp(lambda x: {"y": x}, 1.0), TypeError,
     "returned a value of type dict"),
    ("grad_bp of a BVar of a structure", lambda: grad_bp(lambda d: d, {"a": 1.0}), TypeError,
     "returned a BVar of a dict"),
    ("grad_bp of a string", lambda: grad_bp(lambda x: "loss", 1.0), TypeError,
     "returned a value of type str"),
    ("grad_bp of a bool", lambda: grad_bp(lambda x: x > 0.0, 1.0), TypeError,
     "returned a value of type bool"),
]  # fmt: skip


@pytest.mark.parametrize(
    "call, error, phrase", [m[1:] for m in MISUSES], ids=[m[0] for m in MISUSES]
)
def test_misuse_raises_a_clear_error(
    call: Callable[[], Any], error: type[BaseException], phrase: str
) -> None:
    with pytest.raises(error) as info:
        call()
    assert phrase in str(info.value)


# -- in-place writes into arrays the tape saved -------------------------------------------


def _write_each_saved_array(record: Callable[[Any], Any], x0: np.ndarray) -> None:
    """Inside a runner, try writing into every array the tape saved; every write fails."""
    caught: list[str] = []

    def f(x: BVar) -> BVar:
        y = record(x)
        saved = {"input": x.value, "output": y.value}
        for what, a in saved.items():
            assert not a.flags.writeable, what
            with pytest.raises(ValueError, match="read-only"):
                a[...] = 0.0
            with pytest.raises(ValueError, match="read-only"):
                a += 1.0
            caught.append(what)
        return np.sum(y)

    g = grad_bp(f, x0)
    assert caught == ["input", "output"]
    ref = grad_bp(lambda x: np.sum(record(x)), x0)
    np.testing.assert_array_equal(g, ref)  # nothing was corrupted


@pytest.mark.parametrize(
    "record",
    [
        lambda x: np.exp(x),  # saves its output
        lambda x: x * x,  # saves both arguments
        lambda x: np.tanh(x) @ np.ones((3, 2)),  # matmul saves its operands
        lambda x: x[1:] * 2.0,  # a view of the input
        lambda x: np.reshape(x, (3, 1)).T,  # views of views
        lambda x: hnp.logsumexp(x, axis=0, keepdims=True) + x,
    ],
    ids=["exp", "mul", "matmul", "slice", "reshape-transpose", "logsumexp"],
)
def test_saved_intermediates_are_read_only(record: Callable[[Any], Any]) -> None:
    _write_each_saved_array(record, np.array([0.5, -1.0, 2.0]))


def test_constant_views_and_structure_leaves_are_locked_while_recorded() -> None:
    data = np.zeros((2, 3))
    data[1] = [3.0, 4.0, 5.0]
    row = data[1]  # a view of a constant: its base is locked too
    params = {"w": np.ones(3), "b": np.zeros(3, np.float32), "n": np.arange(3)}

    def f(p: Any) -> BVar:
        y = np.sum(p["w"] * row) + np.sum(p["b"])
        with pytest.raises(ValueError, match="read-only"):
            data[1, 0] = 9.0  # the base of a saved view
        with pytest.raises(ValueError, match="read-only"):
            params["w"][0] = 9.0  # an input leaf inside a structure
        with pytest.raises(ValueError, match="read-only"):
            params["b"][:] = 9.0
        return y

    g = grad_bp(f, params)
    np.testing.assert_array_equal(g["w"], [3.0, 4.0, 5.0])
    assert g["b"].dtype == np.float32
    for a in (data, row, params["w"], params["b"]):
        assert a.flags.writeable  # every lock released
    params["n"][0] = 5  # an integer (static) array is never locked


def test_backprop_with_keeps_inputs_and_intermediates_locked_while_pullback_lives() -> None:
    w = np.array([1.0, 2.0])
    c = np.array([3.0, 4.0])
    inner: list[Any] = []

    def f(x: BVar) -> BVar:
        h = np.sin(x) * c
        inner.append(h.value)
        return h * x

    y, pullback = backprop_with(f, w)
    g1 = pullback(np.ones(2))
    for a in (w, c, inner[0]):
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 100.0
    np.testing.assert_array_equal(pullback(np.ones(2)), g1)  # unchanged, so still right
    np.testing.assert_allclose(g1, np.cos(w) * c * w + np.sin(w) * c)
    del pullback
    gc.collect()
    w[0] = 100.0
    c[0] = 100.0  # writable again once the pullback is gone


def test_nested_runner_locks_outer_arrays_until_the_outer_runner_ends() -> None:
    x0 = np.array([0.3, 0.7])

    def outer(x: BVar) -> BVar:
        def inner(y: BVar) -> BVar:
            return np.sum(np.sin(y) * x)

        g = grad(inner)(x0 * 2.0)
        with pytest.raises(ValueError, match="read-only"):
            x0[0] = 5.0  # still saved by the outer tape after the inner runner returned
        return np.sum(g * x)

    g = grad_bp(outer, x0)
    np.testing.assert_allclose(g, 2.0 * np.cos(2.0 * x0) * x0)
    x0[0] = 5.0


def test_overlapping_pullbacks_share_the_lock_of_an_input() -> None:
    """Two live pullbacks over one array: dropping the first keeps the array read-only."""
    a = np.array([1.0, 2.0])
    _, pullback1 = backprop_with(lambda x: x * x, a)
    _, pullback2 = backprop_with(lambda x: x * x, a)
    del pullback1
    gc.collect()
    with pytest.raises(ValueError, match="read-only"):
        a[:] = 10.0
    np.testing.assert_array_equal(pullback2(np.ones(2)), [2.0, 4.0])
    del pullback2
    gc.collect()
    a[:] = 10.0  # writeable once no tape holds it


def test_an_inner_runner_does_not_unlock_a_constant_the_outer_tape_reads() -> None:
    c = np.array([1.0, 2.0])

    def outer(x: BVar) -> BVar:
        inner = grad(lambda y: np.sum(y * c))(x)  # the inner tape locks c first
        r = np.sum(inner * c * x)  # the outer tape reads c after the inner one is done
        with pytest.raises(ValueError, match="read-only"):
            c[0] = 100.0
        return r

    np.testing.assert_array_equal(grad(outer)(np.ones(2)), [1.0, 4.0])
    c[0] = 100.0


def test_custom_op_constants_are_locked_while_recorded() -> None:
    mul = hetgrad.op2(lambda a, b: (np.sum(a * b), lambda g: (g * b, g * a)))
    c = np.array([2.0, 3.0])

    def f(x: BVar) -> BVar:
        y = mul(x, c)
        with pytest.raises(ValueError, match="read-only"):
            c[0] = 100.0  # the pullback reads c
        return y

    np.testing.assert_array_equal(grad(f)(np.ones(2)), [2.0, 3.0])
    c[0] = 100.0


def test_a_view_freed_under_a_held_base_becomes_writeable_with_its_base() -> None:
    base = np.arange(4.0)
    view = base[:2]  # made before any lock, so it starts writeable

    def outer(x: BVar) -> BVar:
        r = np.sum(x * base)  # the outer tape holds base
        g = grad(lambda y: np.sum(y * view))(np.ones(2))  # the inner tape holds view
        with pytest.raises(ValueError, match="read-only"):
            view[0] = 5.0  # still read-only: its base is held
        return r + np.sum(g)

    np.testing.assert_array_equal(grad(outer)(np.ones(4)), [0.0, 1.0, 2.0, 3.0])
    assert base.flags.writeable and view.flags.writeable


def test_backprop_with_values_are_writeable_once_the_pullback_is_gone() -> None:
    x = np.array([1.0, 2.0])
    (double, same), pullback = backprop_with(lambda v: (v * 2.0, v), x)
    for a in (double, same):
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 5.0  # the pullback may still read them
    del pullback
    gc.collect()
    double[0] = 5.0
    same[0] = 7.0  # a view of x, as f returned x itself
    assert x[0] == 7.0
    y, tangent = hetgrad.jvp(lambda v: v * 2.0, (np.array([1.0, 2.0]),), (np.ones(2),))
    y[0] = 0.0  # jvp's pullback is gone when it returns
    tangent[0] = 0.0


def test_user_read_only_arrays_stay_read_only() -> None:
    c = np.array([1.0, 2.0])
    c.setflags(write=False)
    grad(lambda x: np.sum(x * c))(np.ones(2))
    assert not c.flags.writeable


def test_read_only_error_names_the_array_not_a_wrong_gradient_when_user_mutates_after() -> None:
    # Writing into a *returned gradient* or into the input after the runner is fine.
    w = np.ones(2)
    g = grad_bp(lambda x: np.sum(x * x), w)
    g[0] = 7.0
    w[0] = 3.0
    np.testing.assert_array_equal(grad_bp(lambda x: np.sum(x * x), w), [6.0, 2.0])


# -- peer-bug regressions ------------------------------------------------------------------


def test_leaked_value_is_an_error_not_a_wrong_gradient() -> None:
    """HIPS autograd: a value leaked from one grad call and used in a later call gave a wrong
    gradient (6.0 instead of 2.0).  hetgrad raises TapeError instead."""
    leaked: list[BVar] = []

    def f(x: BVar) -> BVar:
        leaked.append(x)
        return x * x

    assert grad(f)(3.0) == 6.0
    with pytest.raises(TapeError, match="already returned"):
        grad(lambda y: y * 2.0 + leaked[0] * 0.0)(1.0)
    # The legitimate way: a value, not a BVar, crosses the boundary.
    kept = [grad_bp(lambda x: x * 1.0, 3.0)]
    assert grad(lambda y: y * 2.0 + kept[0] * 0.0)(1.0) == 2.0


def test_two_threads_with_a_global_style_trace_would_confuse_but_hetgrad_does_not() -> None:
    """HIPS autograd keeps its trace stack in a module global; two threads differentiating at
    once interfere.  hetgrad's tapes are per thread: both get exact answers while the other
    is mid-recording (tests/test_threads.py does this at scale)."""
    go = threading.Barrier(2)
    out: dict[str, float] = {}

    def work(name: str, k: float) -> None:
        def f(x: BVar) -> BVar:
            y = x * k
            go.wait(5)  # both tapes are open here
            return y * x

        out[name] = grad_bp(f, 2.0)

    ts = [threading.Thread(target=work, args=(n, k)) for n, k in (("a", 3.0), ("b", 5.0))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == {"a": 12.0, "b": 20.0}


def test_nan_traps_of_the_peers() -> None:
    """norm at 0, logsumexp over -inf and where with a NaN branch: finite, correct gradients
    (the full tests are in test_nn.py; this is the issue's statement of them)."""
    np.testing.assert_array_equal(grad_bp(hnp.linalg.norm, np.zeros(3)), np.zeros(3))
    g = grad_bp(hnp.logsumexp, np.full(4, -np.inf))
    np.testing.assert_array_equal(g, np.full(4, 0.25))
    x = np.array([-1.0, 4.0])
    with np.errstate(invalid="ignore", divide="ignore"):
        g_safe = grad_bp(lambda v: np.sum(hnp.safe_where(v > 0.0, np.sqrt, lambda u: u, v)), x)
        np.testing.assert_allclose(g_safe, [1.0, 0.25])
        # Documented: plain where evaluates both branches; a NaN *value* in the untaken
        # branch (log(-1)) does not leak, its derivative (1/x) being finite ...
        g_where = grad_bp(lambda v: np.sum(np.where(v.value > 0.0, v, np.log(v))), x)
        np.testing.assert_array_equal(g_where, [-1.0, 1.0])
        # ... but an infinite *derivative* there gives 0 * inf = NaN: use safe_where.
        g_inf = grad_bp(lambda v: np.sum(np.where(v.value <= 0.0, 1.0, np.sqrt(v))), np.zeros(1))
        assert np.isnan(g_inf[0])


def test_an_escaped_bvar_locks_nothing() -> None:
    leaked: list[Any] = []
    grad_bp(lambda x: (leaked.append(x), np.sum(x * x))[1], np.ones(3))
    c = np.ones(3)
    for use in (lambda: leaked[0] * c, lambda: np.maximum(leaked[0], c),
                lambda: np.einsum("i,i->", leaked[0], c)):  # fmt: skip
        with pytest.raises(TapeError):
            use()
    assert c.flags.writeable
