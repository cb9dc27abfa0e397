"""The benchmark harness's bookkeeping (no timings are asserted: speed is measured in
``benchmarks/``, not in tests)."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from benchmarks.__main__ import _run_workload, main, peer_versions
from benchmarks.bench_scalar import OPS_PER_STEP, chain, chain_derivative
from benchmarks.harness import Report


def test_ratios_are_to_the_workloads_first_row() -> None:
    r = Report()
    r.add("g", "w", "baseline", 2.0)
    r.add("g", "w", "other", 3.0)
    r.add("g", "w", "paired", 3.0, ratio=1.4)
    assert [row["ratio"] for row in r.rows] == [1.0, 1.5, 1.4]


def test_a_workload_without_a_baseline_has_no_ratios() -> None:
    r = Report()
    r.add("g", "big", "hetgrad", 2.0, no_baseline=True)
    r.add("g", "big", "hetgrad, part", 1.0, no_baseline=True)
    with pytest.raises(ValueError, match="no baseline row"):
        r.add("g", "big", "other", 3.0)  # would be a ratio to hetgrad's own row
    assert [row["ratio"] for row in r.rows] == [None, None]
    assert "| big | hetgrad | 2.00 s | - |" in r.markdown()


def test_only_names_known_modules(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--only", "mnst"], ["--only"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        assert "--only takes module names" in capsys.readouterr().err


def test_the_scalar_chain_counts_its_operations() -> None:
    class Counted(float):
        ops = 0

        def _op(self, other: float, fn: object) -> Counted:
            Counted.ops += 1
            return Counted(fn(float(self), float(other)))  # type: ignore[operator]

        def __mul__(self, o: float) -> Counted:
            return self._op(o, float.__mul__)

        def __add__(self, o: float) -> Counted:
            return self._op(o, float.__add__)

        def __truediv__(self, o: float) -> Counted:
            return self._op(o, float.__truediv__)

    chain(Counted(0.5))
    assert Counted.ops == 1000 * OPS_PER_STEP
    h = 1e-6
    numeric = (chain(0.5 + h) - chain(0.5 - h)) / (2 * h)
    assert chain_derivative(0.5) == pytest.approx(numeric, rel=1e-6)


def test_a_worker_writes_its_modules_rows_notes_and_peer_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The suite runs each module in a child process (``--worker``); the parent merges what
    # the child writes.  A stand-in module shows what that file holds.
    module = types.ModuleType("benchmarks.bench_stand_in")

    def run(report: Report, quick: bool) -> None:
        report.add("g", "w", "baseline", 2.0)
        report.add("g", "w", "hetgrad", 3.0)
        report.note(f"quick={quick}")

    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "benchmarks.bench_stand_in", module)
    out = tmp_path / "part.json"
    assert _run_workload("bench_stand_in", True, out) == 0
    written = json.loads(out.read_text())
    rows = [(r["impl"], r["ratio"]) for r in written["rows"]]
    assert rows == [("baseline", 1.0), ("hetgrad", 1.5)]
    assert written["notes"] == ["quick=True"]
    assert written["environment"] == peer_versions()  # (the peers this process imported)


def test_measure_rounds_times_every_function_once_per_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import benchmarks.harness as harness

    batches: list[str] = []

    def batch(fn: Callable[[], str], number: int) -> float:
        batches.append(fn())
        return 0.1 * number  # (one call is already a whole batch: no calibration rounds)

    monkeypatch.setattr(harness, "_batch", batch)
    rounds = harness.measure_rounds({"a": lambda: "a", "b": lambda: "b"}, repeat=3, warmup=0)
    assert batches == ["a", "b"] + ["a", "b"] * 3  # calibration, then three rounds
    assert rounds == {"a": [0.1] * 3, "b": [0.1] * 3}


def test_add_in_rounds_interleaves_the_fast_calls_and_times_slow_ones_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import benchmarks.common as common

    monkeypatch.setattr(common, "SLOW_CALL", 0.05)
    monkeypatch.setattr(common, "_time_once", lambda fn: fn())  # each stand-in says its time
    in_rounds: list[list[str]] = []

    def measure_rounds(fns: dict[str, Callable[[], float]], **_: object) -> dict[str, list[float]]:
        in_rounds.append(list(fns))
        return {"base": [1.0, 2.0, 1.0], "fast": [3.0, 4.0, 2.5]}

    timed_alone: list[float] = []

    def measure_auto(fn: Callable[[], float], quick: bool) -> float:
        timed_alone.append(fn())
        return 0.4

    monkeypatch.setattr(common, "measure_rounds", measure_rounds)
    monkeypatch.setattr(common, "measure_auto", measure_auto)
    r = Report()
    fns = {"base": lambda: 0.001, "slow": lambda: 0.2, "fast": lambda: 0.002}
    common.add_in_rounds(r, "g", "w", fns, quick=True, extras={"fast": {"compile_seconds": 0.3}})
    assert in_rounds == [["base", "fast"]] and timed_alone == [0.2]
    assert [row["impl"] for row in r.rows] == ["base", "slow", "fast"]  # the order given
    base, slow, fast = r.rows
    assert base["ratio"] == 1.0 and base["seconds"] == 1.0
    # Within-round ratios 3, 2, 2.5: their median; the fastest rounds' ratio 2.5 / 1.
    assert fast["ratio"] == 2.5 and fast["best_ratio"] == 2.5 and fast["seconds"] == 3.0
    assert slow["seconds"] == 0.4 and slow["ratio"] == 0.4 and "best_ratio" not in slow
    assert fast["compile_seconds"] == 0.3 and "compile_seconds" not in slow  # extras by name
