"""Structures: the gradient of a loss reading every leaf of a nested dict or dataclass.

Reports the gradient's cost above the plain forward pass (target for 100 leaves: 0.5 ms).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import hetgrad

from .harness import Report, measure


def nested_dict(n_leaves: int) -> dict[str, Any]:
    """Groups of ten float leaves: {"g0": {"p0": 0.1, ...}, ...}."""
    groups = max(1, n_leaves // 10)
    return {
        f"g{i}": {f"p{j}": 0.01 * (i * 10 + j) for j in range(n_leaves // groups)}
        for i in range(groups)
    }


@dataclasses.dataclass(frozen=True)
class Block:
    a: float
    b: float
    c: float
    d: float
    e: float


def nested_dataclasses(n_leaves: int) -> list[Block]:
    return [Block(*(0.01 * (5 * i + k) for k in range(5))) for i in range(n_leaves // 5)]


def loss_dict(d: Any) -> Any:
    total = 0.0
    for group in d.values():
        for v in group.values():
            total = total + v * v
    return total


def loss_blocks(blocks: Any) -> Any:
    total = 0.0
    for b in blocks:
        total = total + b.a * b.b + b.c * b.d + b.e
    return total


def run(report: Report, quick: bool) -> None:
    for n in (10, 100, 1000):
        d = nested_dict(n)
        group = "structure gradients"
        fwd = measure(lambda d=d: loss_dict(d))
        report.add(group, f"{n}-leaf nested dict", "plain forward", fwd)
        g = measure(lambda d=d: hetgrad.grad_bp(loss_dict, d))
        report.add(group, f"{n}-leaf nested dict", "hetgrad grad_bp", g)
        if n == 100:
            extra = (g - fwd) * 1e3
            report.note(f"100-leaf dict: the gradient costs {extra:.3f} ms above the forward")
        blocks = nested_dataclasses(n)
        fwd = measure(lambda b=blocks: loss_blocks(b))
        report.add(group, f"{n}-leaf list of dataclasses", "plain forward", fwd)
        g = measure(lambda b=blocks: hetgrad.grad_bp(loss_blocks, b))
        report.add(group, f"{n}-leaf list of dataclasses", "hetgrad grad_bp", g)
