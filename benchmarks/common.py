"""Shared pieces of the benchmark modules: the optional peers, adaptive timing, checks.

Peers (HIPS autograd, PyTorch, JAX, micrograd) are imported only when a benchmark asks for
them; one that cannot be imported is skipped, with the reason printed and noted in the
results.  They are configured for a fair comparison on the CPU: float64, one thread
(``torch.set_num_threads(1)``; XLA's CPU thread pool limited to one thread), and JAX's
64-bit mode on.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import numpy as np

from .harness import Report, best_ratio, measure, measure_rounds, paired_ratio

_loaded: dict[str, ModuleType | None] = {}
_skipped: dict[str, str] = {}


def peer(name: str, report: Report | None = None) -> ModuleType | None:
    """The peer module ``name`` configured for the suite, or None (reason printed once)."""
    if name in _loaded:
        return _loaded[name]
    mod: ModuleType | None
    try:
        mod = _import(name)
    except Exception as e:  # ImportError, or a broken install raising something else
        mod = None
        reason = f"{type(e).__name__}: {e}".splitlines()[0]
        _skipped[name] = reason
        print(f"  skipping peer {name}: cannot import it ({reason}); "
              "run `python -m benchmarks --peers` to install the peers", flush=True)  # fmt: skip
        if report is not None:
            report.note(f"peer {name} skipped: cannot import it ({reason})")
    _loaded[name] = mod
    return mod


def _import(name: str) -> ModuleType:
    if name == "torch":
        import torch

        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only allowed before any parallel work; fine if already set
            pass
        return torch
    if name == "jax":
        os.environ["JAX_PLATFORMS"] = "cpu"
        # One thread, as for the others (a setting inherited from the shell is replaced).
        os.environ["XLA_FLAGS"] = (
            "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
        import jax

        jax.config.update("jax_enable_x64", True)
        return jax
    if name == "autograd":
        import autograd

        return autograd
    if name == "micrograd":
        import micrograd.engine
        import micrograd.nn  # noqa: F401

        return micrograd
    raise ValueError(f"unknown peer {name}")


def skipped() -> dict[str, str]:
    return dict(_skipped)


def measure_auto(fn: Callable[[], Any], *, quick: bool = False) -> float:
    """:func:`measure` with fewer repeats for slow calls (one call is timed first).

    A call over 3 s is timed once (that first call, which then includes any warm-up).
    """
    once = _time_once(fn)
    if once > 3.0:
        return once
    if once > 0.3:
        return measure(fn, min_time=0.0, repeat=3, warmup=0)
    if quick:
        return measure(fn, min_time=0.02, repeat=3, warmup=1)
    return measure(fn)


# Calls slower than this are timed alone (measure_auto), not in the interleaved rounds:
# nine rounds of a multi-second call would take minutes, and at that length a slow spell
# of the host is a small part of the call.
SLOW_CALL = 1.0


def add_in_rounds(report: Report, group: str, workload: str,
                  fns: dict[str, Callable[[], Any]], *, quick: bool, repeat: int = 9,
                  extras: dict[str, dict[str, Any]] | None = None) -> None:  # fmt: skip
    """Time ``fns`` (the first is the baseline) and add a row for each, in order.

    Those that take under ``SLOW_CALL`` are timed in the same ``repeat`` interleaved
    rounds, so hetgrad and a peer see the same moments of a noisy host; each ratio is then
    the median of the ratios within a round, with the ratio of the fastest rounds beside
    it.  Slower ones are timed alone and compared with the baseline's median.  ``extras``
    adds fields to a row by name (a compile time, say).
    """
    extras = extras or {}
    once = {name: _time_once(fn) for name, fn in fns.items()}
    base_name = next(iter(fns))
    fast = {name: fn for name, fn in fns.items() if once[name] < SLOW_CALL or name == base_name}
    rounds = measure_rounds(fast, min_time=0.02 if quick else 0.05,
                            repeat=3 if quick else repeat, warmup=1)  # fmt: skip
    base = rounds[base_name]
    for name, fn in fns.items():
        extra = extras.get(name, {})
        if name in rounds:
            times = rounds[name]
            report.add(group, workload, name, statistics.median(times),
                       ratio=paired_ratio(times, base),
                       best_ratio=round(best_ratio(times, base), 3), **extra)  # fmt: skip
        else:
            report.add(group, workload, name, measure_auto(fn, quick=quick), **extra)


def _time_once(fn: Callable[[], Any]) -> float:
    enabled = gc.isenabled()
    gc.disable()  # as in every timed batch of the harness
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def check_close(what: str, expected: Iterable[Any], got: Iterable[Any], *, rtol: float = 1e-7,
                atol: float = 1e-10) -> None:  # fmt: skip
    """Raise unless every array of ``got`` equals the corresponding one of ``expected``."""
    expected, got = list(expected), list(got)
    if len(expected) != len(got):
        raise AssertionError(f"{what}: {len(got)} arrays, expected {len(expected)}")
    for k, (e, g) in enumerate(zip(expected, got)):
        e, g = np.asarray(e, dtype=float), np.asarray(g, dtype=float)
        if e.shape != g.shape or not np.allclose(e, g, rtol=rtol, atol=atol):
            worst = np.max(np.abs(e - g)) if e.shape == g.shape else "shape"
            raise AssertionError(
                f"{what}: array {k} differs from the hand-written result (max error {worst}); "
                "refusing to time a wrong computation"
            )


def to_numpy(x: Any) -> np.ndarray:
    """A peer's array (torch tensor, JAX array, autograd/NumPy value) as a NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach().numpy()
    return np.asarray(x, dtype=float)
