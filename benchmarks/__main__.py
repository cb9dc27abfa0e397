"""Run the benchmark suite: ``python -m benchmarks [--quick] [--only NAME ...]``.

Runs every ``benchmarks/bench_*.py`` module in this process, prints Markdown tables of
times and ratios to the hand-written baseline, and writes ``benchmarks/results/latest.json``
and ``benchmarks/results/latest.md`` with the machine, versions and thread settings.
"""

from __future__ import annotations

import os

# Pin BLAS threads for every implementation before NumPy (or a peer) is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import pkgutil  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from .harness import Report  # noqa: E402

HERE = Path(__file__).parent


def environment() -> dict[str, str]:
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "blas threads": os.environ.get("OPENBLAS_NUM_THREADS", "?"),
        "date": time.strftime("%Y-%m-%d"),
    }
    for peer in ("autograd", "torch", "jax"):
        mod = sys.modules.get(peer)
        if mod is not None:
            info[peer] = getattr(mod, "__version__", "?")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer sizes, shorter timings")
    parser.add_argument("--only", nargs="*", default=None, help="run only these modules")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder for results")
    args = parser.parse_args(argv)
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    if args.only:
        names = [n for n in names if n in args.only or n.removeprefix("bench_") in args.only]
    report = Report()
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"running {name} ...", flush=True)
        module.run(report, args.quick)
    env = environment()
    header = "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items())
    md = header + "\n\n" + report.markdown()
    print("\n" + md)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(
        json.dumps({"environment": env, "rows": report.rows, "notes": report.notes}, indent=1)
    )
    (out / "latest.md").write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
