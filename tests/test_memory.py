"""Bounded memory (issue 8): training loops stay flat, tapes die by reference counting, and a
1,000,000-operation chain differentiates iteratively within a stated bound.

Default suite (several seconds; tracemalloc slows the scalar model about tenfold): 51 steps of
the scalar-neuron moons model (``MLP`` of ``hetgrad.examples.moons``, batch of 4 points,
about 2,500 recorded operations per step) and 71 minibatch steps of the MNIST model
(784-300-100-10, ``hetgrad.examples.mnist.Network``, random data, batch 32, momentum).
After 11 warm-up steps, tracemalloc follows a window of steps: the memory held at the end
of the window may exceed that held at its middle by at most 64 KiB (what is held at the
middle is the model and optimizer state replaced during the window; a leak of one tape
per step would add a few hundred KiB per step for moons and megabytes for MNIST).

``pytest -m slow tests/test_memory.py`` runs the issue's full 10,000 steps of each model
(minutes), with the same bounds on a tracemalloc window over the last 1,000 steps and a
resident-memory check (no more than 16 MiB growth from step 1,000 to step 10,000).
It was not run for the commit that added it (it takes tens of minutes on 2 cores).

Cycles: while training, tapes are made through a subclass that records a weakref to each;
with the cyclic collector disabled, every tape is already dead after its step (reference
counting freed it, so nothing holds it in a cycle), and ``gc.collect`` under
``gc.DEBUG_SAVEALL`` finds no Tape or BVar in the garbage.

The long chain: one recorded node of ``x * c`` on Python floats costs about 270 bytes
(node tuple, argument tuple, parents tuple, result float, BVar; measured with tracemalloc
over 20,000 operations, asserted under 400).  A chain of 1,000,000 operations runs in a
subprocess whose peak resident memory may grow by at most 600 MB (the measured node cost
times 10^6 is about 270 MB, plus the gradient list of the backward pass, 8 MB).
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import hetgrad
from hetgrad import runners
from hetgrad.examples import mnist, moons
from hetgrad.tape import BVar, Tape

KIB = 1024


class _TrackedTape(Tape):
    __slots__ = ()
    made: list[weakref.ref[Tape]] = []

    def __init__(self) -> None:
        super().__init__()
        _TrackedTape.made.append(weakref.ref(self))


@pytest.fixture
def tracked_tapes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[weakref.ref[Tape]]]:
    _TrackedTape.made = []
    monkeypatch.setattr(runners, "Tape", _TrackedTape)
    yield _TrackedTape.made


def _moons_step() -> Callable[[int], float]:
    rng = np.random.default_rng(0)
    state = {"model": moons.init_mlp([2, 16, 16, 1], rng)}
    vg = hetgrad.value_and_grad(moons.loss, has_aux=True)

    def step(k: int) -> float:
        xs, ys = hetgrad.datasets.make_moons(4, noise=0.1, rng=rng)
        (value, _), g = vg(state["model"], xs.tolist(), ys.tolist())
        state["model"] = state["model"] - 0.05 * g
        return float(value)

    return step


def _mnist_step() -> Callable[[int], float]:
    rng = np.random.default_rng(1)
    state = {"net": mnist.init_network([784, 300, 100, 10], rng)}
    images = rng.uniform(0.0, 1.0, (256, 784))
    targets = np.eye(10)[rng.integers(0, 10, 256)]
    vg = hetgrad.value_and_grad(mnist.net_error)
    opt = hetgrad.optim.momentum(0.05, 0.9)
    opt_state = {"s": opt.init(state["net"])}

    def step(k: int) -> float:
        idx = rng.integers(0, 256, 32)
        value, g = vg(state["net"], images[idx], targets[idx])
        updates, opt_state["s"] = opt.update(g, opt_state["s"])
        state["net"] = hetgrad.optim.apply_updates(state["net"], updates)
        return float(value)

    return step


def _held_memory(step: Callable[[int], float], warmup: int, window: int) -> tuple[int, int]:
    """Bytes still held after the middle and the end of a traced window of steps."""
    for k in range(warmup):
        step(k)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for k in range(window // 2):
            step(warmup + k)
        middle = tracemalloc.get_traced_memory()[0] - base
        for k in range(window // 2, window):
            step(warmup + k)
        end = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    return middle, end


def _assert_no_tape_survives(made: list[weakref.ref[Tape]]) -> None:
    assert made, "no tape was tracked"
    alive = [r for r in made if r() is not None]
    assert not alive, f"{len(alive)} of {len(made)} tapes outlived their step"


def _assert_no_cyclic_garbage(step: Callable[[int], float]) -> None:
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for k in range(3):
            step(k)
        gc.collect()
        bad = [o for o in gc.garbage if isinstance(o, (Tape, BVar))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not bad, f"{len(bad)} tapes or BVars were found only by the cyclic collector"


@pytest.mark.parametrize("model", ["moons", "mnist"])
def test_training_memory_is_flat(model: str, tracked_tapes: list[weakref.ref[Tape]]) -> None:
    step = _moons_step() if model == "moons" else _mnist_step()
    gc.disable()
    try:
        first = step(0)
        window = 40 if model == "moons" else 60
        middle, end = _held_memory(step, warmup=10, window=window)
        _assert_no_tape_survives(tracked_tapes)
    finally:
        gc.enable()
    assert np.isfinite(first)
    # Held at the middle: the model (and optimizer state) replaced during the window.
    assert end - middle < 64 * KIB, f"{model}: grew {(end - middle) / KIB:.0f} KiB"
    _assert_no_cyclic_garbage(step)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.slow
@pytest.mark.parametrize("model", ["moons", "mnist"])
def test_ten_thousand_training_steps_are_flat(model: str) -> None:
    step = _moons_step() if model == "moons" else _mnist_step()
    for k in range(1000):
        step(k)
    gc.collect()
    rss_1000 = _rss()
    middle, end = _held_memory(step, warmup=8000, window=1000)
    gc.collect()
    growth = _rss() - rss_1000
    assert end - middle < 64 * KIB, (model, middle, end)
    assert growth < 16 * 1024 * KIB, f"{model}: resident memory grew {growth >> 20} MiB"


def test_node_cost_is_bounded() -> None:
    def chain(x: Any) -> Any:
        for _ in range(20_000):
            x = x * 1.0000001
        return x

    gc.collect()
    tracemalloc.start()
    try:
        g = hetgrad.grad_bp(chain, 1.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert g == pytest.approx(1.0000001**20_000, rel=1e-12)
    per_node = peak / 20_000
    assert per_node < 400, f"{per_node:.0f} bytes per recorded operation"


def test_million_operation_chain_within_memory_bound() -> None:
    """1,000,000 recorded operations: no RecursionError, exact gradient, peak RSS growth under
    600 MB (about 270 bytes per node measured, see the module docstring)."""
    code = textwrap.dedent(
        """
        import resource, sys
        import hetgrad
        sys.setrecursionlimit(1000)  # the sweep must not recurse
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        def f(x):
            for _ in range(500_000):
                x = x * 1.0000001
                x = x + 0.0
            return x
        g = hetgrad.grad_bp(f, 1.0)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(repr(g), (after - before) * 1024)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    g, grew = out.stdout.split()
    assert float(g) == pytest.approx(1.0000001**500_000, rel=1e-9)
    assert int(grew) < 600 * 1024 * KIB, f"peak RSS grew {int(grew) >> 20} MiB"
