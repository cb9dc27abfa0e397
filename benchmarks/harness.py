"""A small benchmark harness: warm-up, median of repeats, ratios to a baseline.

Each ``benchmarks/bench_*.py`` module defines ``run(report: Report, quick: bool)``.  It times
every implementation of a workload with :func:`measure` in the same process and records
rows with :meth:`Report.add`; the first implementation of a workload (by convention the
hand-written NumPy baseline, impl name ``"numpy"`` or ``"plain"``) is the ratio's base.

>>> r = Report()
>>> r.add("demo", "square", "plain", 1e-6)
>>> r.add("demo", "square", "hetgrad", 1.5e-6)
>>> r.rows[1]["ratio"]
1.5
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any


def measure(fn: Callable[[], Any], *, min_time: float = 0.05, repeat: int = 7,
            warmup: int = 2) -> float:  # fmt: skip
    """Median seconds per call of ``fn`` over ``repeat`` batches of at least ``min_time``.

    The garbage collector is paused inside a batch, as ``timeit`` does.
    """
    number, first = _calibrate(fn, min_time, warmup)
    times = [first] + [_batch(fn, number) / number for _ in range(repeat - 1)]
    return statistics.median(times)


def measure_interleaved(fns: dict[str, Callable[[], Any]], *, min_time: float = 0.05,
                        repeat: int = 9, warmup: int = 2) -> dict[str, float]:  # fmt: skip
    """Median seconds per call of each function, timed in interleaved rounds."""
    rounds = measure_rounds(fns, min_time=min_time, repeat=repeat, warmup=warmup)
    return {name: statistics.median(ts) for name, ts in rounds.items()}


def measure_rounds(fns: dict[str, Callable[[], Any]], *, min_time: float = 0.05,
                   repeat: int = 9, warmup: int = 2) -> dict[str, list[float]]:  # fmt: skip
    """Seconds per call of each function in each of ``repeat`` interleaved rounds.

    Each round times one batch of every function in turn, so a slow spell of a noisy
    machine falls on all of them alike; :func:`paired_ratio` compares them round by round.
    """
    numbers = {name: _calibrate(fn, min_time, warmup)[0] for name, fn in fns.items()}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            times[name].append(_batch(fn, numbers[name]) / numbers[name])
    return times


def paired_ratio(times: list[float], base: list[float]) -> float:
    """The median over rounds of ``times / base`` (a ratio measured within each round).

    >>> paired_ratio([2.0, 3.0, 2.2], [1.0, 2.0, 1.0])
    2.0
    """
    return statistics.median(t / b for t, b in zip(times, base))


def best_ratio(times: list[float], base: list[float]) -> float:
    """The ratio of the fastest rounds, ``min(times) / min(base)``: on a shared machine
    contention only ever slows a round down, so each minimum is the closest to the
    uncontended time (``timeit``'s advice).

    >>> best_ratio([2.0, 3.0, 2.2], [1.0, 2.0, 1.0])
    2.0
    """
    return min(times) / min(base)


def paired_difference(times: list[float], base: list[float]) -> float:
    """The median over rounds of ``times - base``.

    >>> paired_difference([2.0, 3.0, 2.2], [1.0, 2.5, 1.0])
    1.0
    """
    return statistics.median(t - b for t, b in zip(times, base))


def _calibrate(fn: Callable[[], Any], min_time: float, warmup: int) -> tuple[int, float]:
    """After ``warmup`` calls: how many calls make a batch of ``min_time``, and the
    seconds per call that batch took."""
    for _ in range(warmup):
        fn()
    number = 1
    while True:
        t = _batch(fn, number)
        if t >= min_time or number >= 1 << 20:
            return number, t / number
        number *= 2 if t == 0 else max(2, min(10, int(min_time / t) + 1))


def _batch(fn: Callable[[], Any], number: int) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


class Report:
    """Rows of (group, workload, impl, seconds) with ratios to each workload's baseline."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def add(self, group: str, workload: str, impl: str, seconds: float,
            ratio: float | None = None, *, no_baseline: bool = False,
            **extra: Any) -> None:  # fmt: skip
        """Add a row; its ratio is ``seconds`` over the baseline's (the workload's first
        row), unless ``ratio`` (say a :func:`paired_ratio`) is given.  ``no_baseline``: the
        workload has no baseline row (it was not measured), so the row gets no ratio."""
        if no_baseline:
            ratio = None
            extra["no_baseline"] = True
        elif ratio is None:
            first = next(
                (r for r in self.rows if r["group"] == group and r["workload"] == workload),
                None,
            )
            if first is not None and first.get("no_baseline"):
                raise ValueError(f"{group}, {workload}: this workload has no baseline row")
            base = seconds if first is None else first["seconds"]
            ratio = seconds / base if base else None
        self.rows.append({
            "group": group, "workload": workload, "impl": impl, "seconds": seconds,
            "ratio": None if ratio is None else round(ratio, 3), **extra,
        })  # fmt: skip

    def note(self, text: str) -> None:
        self.notes.append(text)

    def markdown(self) -> str:
        out = []
        groups = list(dict.fromkeys(r["group"] for r in self.rows))
        for g in groups:
            rows = [r for r in self.rows if r["group"] == g]
            # A row with unit="bytes" holds a size in its "seconds" field (peak memory).
            in_bytes = any(r.get("unit") == "bytes" for r in rows)
            # Rows timed in rounds also give the ratio of their fastest rounds (best_ratio).
            best = any("best_ratio" in r for r in rows)
            out.append(f"### {g}\n")
            out.append(f"| workload | implementation | {'peak' if in_bytes else 'time'} "
                       "| ratio to baseline |" + (" ratio of fastest rounds |" if best else ""))
            out.append("|---|---|---:|---:|" + ("---:|" if best else ""))
            for r in rows:
                value = r["seconds"]
                shown = format_bytes(value) if r.get("unit") == "bytes" else format_time(value)
                ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
                line = f"| {r['workload']} | {r['impl']} | {shown} | {ratio} |"
                if best:
                    line += f" {r['best_ratio']:.2f}x |" if "best_ratio" in r else " |"
                out.append(line)
            out.append("")
        if self.notes:
            out.extend(["Notes:", ""] + [f"- {n}" for n in self.notes] + [""])
        return "\n".join(out)


def format_bytes(n: float) -> str:
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1 << 20):.2f} MiB"


def format_time(s: float) -> str:
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"
