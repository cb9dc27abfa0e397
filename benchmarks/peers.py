"""The peers' own environment: ``python -m benchmarks --peers`` re-runs the suite inside it.

The peers (HIPS autograd, PyTorch, JAX, micrograd) are never dependencies of hetgrad.
They live in a virtual environment of their own, ``benchmarks/.venv-peers`` (git-ignored),
created on first use with hetgrad installed editable beside them.  Each peer is installed
separately, so one that cannot be installed is reported and skipped; the benchmark modules
skip any peer they cannot import, with the reason printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv-peers"

# (import name, pip requirement).  torch must be spelled exactly so: that spelling installs
# the CPU build of 2.13.0 from local disk; any other spelling would download gigabytes.
PEERS = [
    ("autograd", "autograd"),
    ("torch", "torch==2.13.0"),
    ("jax", "jax"),
    ("micrograd", "micrograd"),
]


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _importable(python: Path, module: str) -> bool:
    probe = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(python), "-m", "pip", "install", "-q", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def ensure_env() -> Path:
    """Create the peers' environment if needed and install what is missing; return its python."""
    python = venv_python()
    if not python.exists():
        print(f"peers: creating {VENV.relative_to(ROOT)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if not _importable(python, "hetgrad"):
        print("peers: installing hetgrad (editable)", flush=True)
        done = _pip(python, "-e", str(ROOT))
        if done.returncode != 0:
            raise SystemExit(f"peers: cannot install hetgrad:\n{done.stderr.strip()}")
    for module, requirement in PEERS:
        if _importable(python, module):
            continue
        print(f"peers: installing {requirement}", flush=True)
        done = _pip(python, requirement)
        if done.returncode != 0 or not _importable(python, module):
            reason = (done.stderr.strip().splitlines() or ["import failed after install"])[-1]
            print(f"peers: skipping {module}: cannot install {requirement}: {reason}", flush=True)
    return python


def rerun_inside(argv: list[str]) -> int:
    """Run ``python -m benchmarks argv`` with the peers' interpreter; return its exit code."""
    python = ensure_env()
    print(f"peers: running the suite with {python.relative_to(ROOT)}", flush=True)
    return subprocess.run([str(python), "-m", "benchmarks", *argv], cwd=ROOT).returncode
