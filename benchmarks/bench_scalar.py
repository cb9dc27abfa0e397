"""Per-operation overhead: a chain of scalar operations, forward plus backward.

The baseline is the same chain on plain Python floats; hetgrad's figure is reported as
microseconds per recorded operation above it (target: at most 2 us).  Every gradient is
checked against the derivative carried by hand through the chain.
"""

from __future__ import annotations

import sys
from typing import Any

import hetgrad

from .common import measure_auto, peer
from .harness import Report, measure

N_STEPS = 1000
OPS_PER_STEP = 5  # per step: x * 0.999, + 0.001, then x * x, + x, / 2.0
GROUP = f"scalar chain ({N_STEPS * OPS_PER_STEP} ops)"


def chain(x: Any) -> Any:
    for _ in range(N_STEPS):
        x = x * 0.999 + 0.001
        x = (x * x + x) / 2.0
    return x


def chain_derivative(x: float) -> float:
    """d chain / dx, carried by hand through the steps (forward mode)."""
    d = 1.0
    for _ in range(N_STEPS):
        x = x * 0.999 + 0.001
        d = d * 0.999
        d = d * (2.0 * x + 1.0) / 2.0
        x = (x * x + x) / 2.0
    return d


def _check(name: str, g: float, expected: float) -> None:
    if abs(g - expected) > 1e-9 * abs(expected):
        raise AssertionError(f"scalar chain, {name}: gradient {g}, expected {expected}")


def run(report: Report, quick: bool) -> None:
    n_ops = N_STEPS * OPS_PER_STEP
    plain = measure(lambda: chain(0.5))
    report.add(GROUP, "forward+backward", "plain floats (forward only)", plain)
    expected = chain_derivative(0.5)
    _check("hetgrad", hetgrad.grad_bp(chain, 0.5), expected)
    hg = measure(lambda: hetgrad.grad_bp(chain, 0.5))
    report.add(GROUP, "forward+backward", "hetgrad grad_bp", hg)
    fwd = measure(lambda: hetgrad.eval_bp(chain, 0.5))
    report.add(GROUP, "forward+backward", "hetgrad eval_bp", fwd)
    per_op = (hg - plain) / n_ops
    report.note(f"scalar op overhead (grad_bp minus plain floats): {per_op * 1e6:.2f} us per op")
    for name, fn in peer_gradients(report).items():
        _check(name, fn(), expected)
        t = measure_auto(fn, quick=quick)
        report.add(GROUP, "forward+backward", name, t)
        report.note(f"scalar op, {name}: {(t - plain) / n_ops * 1e6:.2f} us per op")


def peer_gradients(report: Report) -> dict[str, Any]:
    """name -> a function returning the chain's derivative at 0.5 as a float."""
    out: dict[str, Any] = {}
    mg = peer("micrograd", report)
    if mg is not None:
        from micrograd.engine import Value

        # micrograd sorts its graph recursively: a 5000-op chain needs a deeper stack.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
        report.note("micrograd: recursion limit raised to 20000 for its recursive sort")

        def micrograd_grad() -> float:
            x = Value(0.5)
            chain(x).backward()
            return x.grad

        out["micrograd"] = micrograd_grad
    ag = peer("autograd", report)
    if ag is not None:
        ag_grad = ag.grad(chain)
        out["autograd"] = lambda: float(ag_grad(0.5))
    torch = peer("torch", report)
    if torch is not None:

        def torch_grad() -> float:
            x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
            return float(torch.autograd.grad(chain(x), x)[0])

        out["PyTorch eager (0-d tensors)"] = torch_grad
    jax = peer("jax", report)
    if jax is not None:
        j_grad = jax.grad(chain)
        out["JAX eager"] = lambda: float(j_grad(0.5))
    return out
