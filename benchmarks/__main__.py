"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only NAME ...] [--peers]``.

Runs every ``benchmarks/bench_*.py`` module (a workload) in a process of its own, so no
workload runs in the wake of another's (a peer's threads, a heap grown by a 10,000-leaf
structure); every implementation of one workload is timed in that one process.  Prints
Markdown tables of times and ratios to the hand-written baseline, and writes
``benchmarks/results/latest.json`` and ``benchmarks/results/latest.md`` with the machine,
versions and thread settings.  A partial run (``--quick`` or ``--only``) writes
``partial.json`` and ``partial.md`` instead, so it never replaces the full results the
README shows.
With ``--peers`` it first creates (or reuses) ``benchmarks/.venv-peers`` with hetgrad and the
peers (autograd, PyTorch, JAX, micrograd) and re-runs itself there.
"""

from __future__ import annotations

import os

# Pin BLAS threads to one for every implementation, before NumPy (or a peer) is imported;
# a setting inherited from the shell would apply to NumPy but not to PyTorch (pinned below).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import pkgutil  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from hetgrad.allocator import keep_freed_memory  # noqa: E402

from .harness import Report  # noqa: E402

HERE = Path(__file__).parent


def environment(malloc: str = "system default", run: str = "full") -> dict[str, str]:
    info = {
        "run": run,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "blas threads": os.environ.get("OPENBLAS_NUM_THREADS", "?"),
        "malloc": malloc,
        "date": time.strftime("%Y-%m-%d"),
    }
    # Set on some machines so that older OpenBLAS builds pick a safe kernel; it applies to
    # every implementation alike, but it is part of what the figures were measured with.
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            info[var] = os.environ[var]
    return info


def peer_versions() -> dict[str, str]:
    """The versions and thread settings of the peers this process has imported."""
    info = {}
    for peer in ("autograd", "torch", "jax", "micrograd"):
        if peer in sys.modules:
            try:
                info[peer] = metadata.version(peer)
            except metadata.PackageNotFoundError:
                info[peer] = getattr(sys.modules[peer], "__version__", "?")
    if "torch" in sys.modules:
        info["torch threads"] = str(sys.modules["torch"].get_num_threads())
    if "jax" in sys.modules:
        info["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer sizes, shorter timings")
    parser.add_argument("--only", nargs="*", default=None, help="run only these modules")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for results")
    parser.add_argument("--peers", action="store_true",
                        help="re-run inside benchmarks/.venv-peers with the peers installed")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # run one module; --out is a file
    args = parser.parse_args(argv)
    if args.peers:
        from .peers import rerun_inside

        rest = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--peers"]
        return rerun_inside(rest)
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    if args.only is not None:
        known = {n.removeprefix("bench_") for n in names}
        unknown = [o for o in args.only if o.removeprefix("bench_") not in known]
        if not args.only or unknown:
            parser.error(
                f"--only takes module names ({', '.join(sorted(known))})"
                + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            )
        names = [n for n in names if n.removeprefix("bench_") in
                 {o.removeprefix("bench_") for o in args.only}]  # fmt: skip
    if args.worker is not None:
        return _run_workload(args.worker, args.quick, Path(args.out))
    partial = args.quick or args.only is not None
    run_kind = ("quick, " if args.quick else "") + (
        "only " + " ".join(n.removeprefix("bench_") for n in names) if args.only else "full"
    )
    report = Report()
    env = environment(keep_freed_memory(), run_kind)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            print(f"running {name} ...", flush=True)
            part = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, "-m", "benchmarks", "--worker", name, "--out", str(part)]
            done = subprocess.run(cmd + (["--quick"] if args.quick else []), cwd=HERE.parent)
            if done.returncode != 0:
                print(f"{name} failed (exit code {done.returncode}); no results written",
                      file=sys.stderr)
                return 1
            result = json.loads(part.read_text())
            report.rows.extend(result["rows"])
            report.notes.extend(result["notes"])
            env.update(result["environment"])  # the versions of the peers it imported
    header = "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items())
    md = header + "\n\n" + report.markdown()
    print("\n" + md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "partial" if partial else "latest"
    (out / f"{stem}.json").write_text(
        json.dumps({"environment": env, "rows": report.rows, "notes": report.notes}, indent=1)
    )
    (out / f"{stem}.md").write_text(md)
    print(f"Wrote {out / stem}.json and {out / stem}.md")
    return 0


def _run_workload(name: str, quick: bool, out: Path) -> int:
    """The child's part: time one module's implementations; write its rows, notes and the
    versions of the peers it imported to ``out``."""
    keep_freed_memory()
    report = Report()
    importlib.import_module(f"benchmarks.{name}").run(report, quick)
    out.write_text(json.dumps({"rows": report.rows, "notes": report.notes,
                               "environment": peer_versions()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
