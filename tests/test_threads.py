"""Thread safety: 8 threads differentiating different functions at once give results
bitwise identical to the same work done serially (issue 8).

Each thread runs 1,000 gradients of its own function (scalar chains, a dataclass with
array leaves through lifted NumPy, nested ``grad``, ``backprop_with`` over a structured
output, a custom op, lenses, a dict of float32 arrays, ``jacobian``), with inputs that
change every iteration; the thread switch interval is shortened so the threads interleave
inside recordings and backward passes.  8,000 gradients in all (each computed twice), about 4 s.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

import hetgrad
import hetgrad.numpy as hnp
from hetgrad import lens
from hetgrad.tree import flatten

N_THREADS = 8
PER_THREAD = 1000


@dataclasses.dataclass(frozen=True)
class Layer:
    w: np.ndarray
    b: np.ndarray
    name: str = "layer"


_square = hetgrad.op1(lambda x: (x * x, lambda g: 2.0 * x * g))


def scalar_chain(k: int) -> Any:
    x = 0.1 + 1e-3 * k
    return hetgrad.grad_bp(lambda v: np.sin(v) * v + np.exp(-v * v) / (1.0 + v), x)


def dataclass_arrays(k: int) -> Any:
    rng = np.random.default_rng(k)
    layer = Layer(rng.standard_normal((3, 2)), rng.standard_normal(2))
    x = rng.standard_normal(3)
    return hetgrad.grad_bp(lambda p: hnp.sum(np.tanh(x @ p.w + p.b) ** 2), layer)


def nested(k: int) -> Any:
    x = 0.3 + 1e-3 * k
    return hetgrad.grad(hetgrad.grad(lambda v: v**3 * np.sin(v)))(x)


def vjp_structured(k: int) -> Any:
    x = np.linspace(0.0, 1.0, 4) + 1e-3 * k
    _, pullback = hetgrad.backprop_with(lambda v: {"a": v * 2.0, "b": (np.sum(v * v),)}, x)
    return pullback({"a": np.ones(4), "b": (0.5,)})


def custom_op(k: int) -> Any:
    return hetgrad.grad_bp(lambda v: np.sum(_square(v) * v), np.arange(3.0) + 1e-3 * k)


def lenses(k: int) -> Any:
    s = {"p": [1.0 + 1e-3 * k, 2.0], "q": 3.0}
    f = lambda d: hetgrad.view_var(d, lens.item("p") / lens.item(0)) * d["q"] ** 2
    return hetgrad.grad_bp(f, s)


def float32_dict(k: int) -> Any:
    rng = np.random.default_rng(1000 + k)
    d = {"u": rng.standard_normal(5).astype(np.float32), "v": np.float32(0.5)}
    return hetgrad.grad_bp(lambda p: hnp.logsumexp(p["u"] * p["v"]), d)


def jacobian(k: int) -> Any:
    x = np.array([0.2, 0.4]) + 1e-3 * k
    return hetgrad.jacobian(lambda v: np.stack([v[0] * v[1], np.sin(v[0])]))(x)


WORK: list[Callable[[int], Any]] = [
    scalar_chain, dataclass_arrays, nested, vjp_structured, custom_op, lenses, float32_dict,
    jacobian,
]  # fmt: skip


def _leaves(x: Any) -> list[Any]:
    return flatten(x)[0]


def _identical(a: Any, b: Any) -> bool:
    la, ta = flatten(a)
    lb, tb = flatten(b)
    return ta.same_structure(tb) and all(
        type(x) is type(y) and np.asarray(x).dtype == np.asarray(y).dtype
        and np.array_equal(x, y) for x, y in zip(la, lb)
    )  # fmt: skip


def _interleaved(targets: list[Callable[[], None]], timeout: float) -> None:
    """Run each target in its own thread, switching threads every 50 us, and wait."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(5e-5)
    try:
        threads = [threading.Thread(target=t) for t in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
    finally:
        sys.setswitchinterval(old)


def test_eight_threads_match_serial_bit_for_bit() -> None:
    serial = [[fn(k) for k in range(PER_THREAD)] for fn in WORK]
    threaded: list[list[Any]] = [[] for _ in WORK]
    errors: list[BaseException] = []
    start = threading.Barrier(N_THREADS)

    def run(i: int) -> None:
        try:
            start.wait(10)
            threaded[i] = [WORK[i](k) for k in range(PER_THREAD)]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    _interleaved([lambda i=i: run(i) for i in range(N_THREADS)], timeout=120)
    assert not errors, errors
    for fn, s, t in zip(WORK, serial, threaded):
        assert len(t) == PER_THREAD, fn.__name__
        mismatches = [k for k in range(PER_THREAD) if not _identical(s[k], t[k])]
        assert not mismatches, f"{fn.__name__}: {len(mismatches)} results differ"
    # The work really is different per thread and per iteration.
    assert not _identical(serial[0][0], serial[0][1])
    assert isinstance(serial[1][0], Layer) and serial[1][0].name == "layer"
    assert serial[6][0]["u"].dtype == np.float32


def test_threads_sharing_one_array_keep_it_locked_until_the_last_is_done() -> None:
    """Every thread reads the same weights (as input and as constant): a thread whose runner
    ends must not unlock them under another that is still recording, and at the end they
    are writeable again."""
    shared = np.linspace(-1.0, 1.0, 16)
    want = hetgrad.grad_bp(lambda w: np.sum(np.sin(w) * shared), shared)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run() -> None:
        try:
            start.wait(10)
            for _ in range(300):

                def f(w: Any) -> Any:
                    y = np.sum(np.sin(w) * shared)
                    if shared.flags.writeable:
                        raise AssertionError("a recording tape's constant became writeable")
                    return y

                g = hetgrad.grad_bp(f, shared)
                if not np.array_equal(g, want):
                    raise AssertionError("a wrong gradient")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    _interleaved([run] * 4, timeout=60)
    assert not errors, errors[:3]
    assert shared.flags.writeable


def test_helper_threads_recording_on_one_tape_give_the_right_gradient() -> None:
    """A loss that maps over a thread pool records from several threads onto one tape; a
    node's index must be where its node went, whatever the other threads appended."""
    from concurrent.futures import ThreadPoolExecutor

    def part(v: Any, s: float) -> Any:
        for _ in range(100):
            v = v * 1.0 + 0.0
        return np.sum(v * s)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(4) as pool:
            for _ in range(20):
                g = hetgrad.grad_bp(
                    lambda v: sum(pool.map(lambda s: part(v, s), [1.0, 2.0, 3.0, 4.0])),
                    np.ones(4),
                )
                assert g.tolist() == [10.0] * 4
    finally:
        sys.setswitchinterval(old)


def test_a_pullback_collected_inside_a_recording_does_not_deadlock() -> None:
    """The garbage collector may free a ``backprop_with`` pullback (kept in a cycle) while
    this thread holds the lock table's guard; its release waits for the next one."""
    import gc

    class Holder:
        def __init__(self, pullback: Any) -> None:
            self.pullback, self.me = pullback, self

    kept = np.ones(3)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(3):
                _, pullback = hetgrad.backprop_with(lambda v: v * 2.0, kept)
                Holder(pullback)
                del pullback
                hetgrad.grad_bp(lambda p: p[0][0], [np.ones(2) for _ in range(2000)])
            gc.collect()
            hetgrad.grad_bp(lambda x: x * 2.0, 1.0)  # a release takes the waiting ones
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    old = gc.get_threshold()
    gc.set_threshold(50)  # collections inside the recording, every run
    try:
        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(60)
    finally:
        gc.set_threshold(*old)
    assert not t.is_alive(), "deadlocked"
    assert not errors, errors
    assert kept.flags.writeable


def test_debug_nans_closed_from_another_thread_leaves_debug_mode() -> None:
    from hetgrad.debug import debugging

    def block() -> Any:
        with hetgrad.debug_nans():
            yield

    gen = block()
    next(gen)
    assert debugging()
    t = threading.Thread(target=gen.close)
    t.start()
    t.join(10)
    assert not debugging()


def test_a_pullback_dropped_while_another_thread_holds_the_lock_table_waits_for_it() -> None:
    """Another thread inside the lock bookkeeping is only a wait: the pullback's arrays are
    writeable as soon as it is dropped (not left to some later runner)."""
    from hetgrad import tape as tape_module

    w = np.ones(3)
    _, pullback = hetgrad.backprop_with(lambda x: np.sum(x * x), w)
    inside = threading.Event()

    def hold_briefly() -> None:
        with tape_module._locks_guard:
            inside.set()
            threading.Event().wait(0.2)

    t = threading.Thread(target=hold_briefly)
    t.start()
    inside.wait(10)
    del pullback  # blocks until the other thread lets go, then releases
    assert w.flags.writeable
    t.join(10)


def test_debug_nans_of_a_finished_thread_does_not_reach_a_new_one() -> None:
    from hetgrad.debug import debugging

    gens: list[Any] = []

    def enter() -> None:
        def block() -> Any:
            with hetgrad.debug_nans():
                yield

        gens.append(block())
        next(gens[0])  # entered in this thread, never left

    first = threading.Thread(target=enter)
    first.start()
    first.join(10)
    seen: list[bool] = []
    second = threading.Thread(target=lambda: seen.append(debugging()))
    second.start()  # (CPython often gives it the finished thread's ident)
    second.join(10)
    assert seen == [False]
    gens[0].close()
