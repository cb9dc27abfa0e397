"""Per-operation overhead: a chain of scalar operations, forward plus backward.

The baseline is the same chain on plain Python floats; hetgrad's figure is reported as
microseconds per recorded operation above it (target: at most 2 us).
"""

from __future__ import annotations

from typing import Any

import hetgrad

from .harness import Report, measure

N_STEPS = 1000
OPS_PER_STEP = 6  # two multiplies, one add, one multiply-add pair, one division


def chain(x: Any) -> Any:
    for _ in range(N_STEPS):
        x = x * 0.999 + 0.001
        x = (x * x + x) / 2.0
    return x


def run(report: Report, quick: bool) -> None:
    n_ops = N_STEPS * OPS_PER_STEP
    plain = measure(lambda: chain(0.5))
    report.add("scalar chain (6000 ops)", "forward+backward", "plain floats (forward only)", plain)
    hg = measure(lambda: hetgrad.grad_bp(chain, 0.5))
    report.add("scalar chain (6000 ops)", "forward+backward", "hetgrad grad_bp", hg)
    fwd = measure(lambda: hetgrad.eval_bp(chain, 0.5))
    report.add("scalar chain (6000 ops)", "forward+backward", "hetgrad eval_bp", fwd)
    per_op = (hg - plain) / n_ops
    report.note(f"scalar op overhead (grad_bp minus plain floats): {per_op * 1e6:.2f} us per op")
