"""Structures: the gradient of a loss reading every leaf of a nested dict or dataclass.

Reports the gradient's cost above the plain forward pass (target for 100 leaves: 0.5 ms).
Every gradient is checked against the closed form before it is timed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import hetgrad

from .common import check_close, measure_auto, peer
from .harness import Report, measure_interleaved


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
        grads = hetgrad.grad_bp(loss_dict, d)
        check_close(f"{n}-leaf nested dict, hetgrad",
                    [2.0 * v for grp in d.values() for v in grp.values()],
                    [v for grp in grads.values() for v in grp.values()])  # fmt: skip
        fwd, g = _forward_and_gradient(loss_dict, d)
        report.add(group, f"{n}-leaf nested dict", "plain forward", fwd)
        report.add(group, f"{n}-leaf nested dict", "hetgrad grad_bp", g)
        add_peers(report, quick, group, f"{n}-leaf nested dict", loss_dict, d,
                  [v for grp in hetgrad.grad_bp(loss_dict, d).values() for v in grp.values()])
        if n == 100:
            extra = (g - fwd) * 1e3
            report.note(f"100-leaf dict: the gradient costs {extra:.3f} ms above the forward")
        blocks = nested_dataclasses(n)
        block_grads = hetgrad.grad_bp(loss_blocks, blocks)
        check_close(f"{n}-leaf list of dataclasses, hetgrad",
                    [v for b in blocks for v in (b.b, b.a, b.d, b.c, 1.0)],
                    [v for b in block_grads for v in block_leaves(b)])  # fmt: skip
        fwd, g = _forward_and_gradient(loss_blocks, blocks)
        report.add(group, f"{n}-leaf list of dataclasses", "plain forward", fwd)
        report.add(group, f"{n}-leaf list of dataclasses", "hetgrad grad_bp", g)
        add_peers(report, quick, group, f"{n}-leaf list of dataclasses", loss_blocks, blocks,
                  [v for b in hetgrad.grad_bp(loss_blocks, blocks)
                   for v in block_leaves(b)])  # fmt: skip


def _forward_and_gradient(loss: Any, value: Any) -> tuple[float, float]:
    """Seconds per call of the plain forward and of grad_bp, timed in the same rounds."""
    times = measure_interleaved({"forward": lambda: loss(value),
                                 "gradient": lambda: hetgrad.grad_bp(loss, value)})  # fmt: skip
    return times["forward"], times["gradient"]


def block_leaves(b: Block) -> list[Any]:
    return [getattr(b, f.name) for f in dataclasses.fields(b)]  # astuple would copy them


def add_peers(report: Report, quick: bool, group: str, workload: str, loss: Any, value: Any,
              expected: list[float]) -> None:  # fmt: skip
    """Rows for the peers that can take the gradient with respect to ``value``'s structure."""
    is_dict = isinstance(value, dict)
    fns: dict[str, Any] = {}
    ag = peer("autograd", report)
    if ag is not None and not is_dict and workload.startswith("10-"):
        report.note("autograd cannot take gradients with respect to dataclasses: no rows")
    if ag is not None and is_dict:
        ag_grad = ag.grad(loss)
        fns["autograd"] = lambda: [v for grp in ag_grad(value).values() for v in grp.values()]
    torch = peer("torch", report)
    if torch is not None:

        def torch_grad() -> list[Any]:
            as_tensor = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)  # noqa: E731
            if is_dict:
                tv: Any = {k: {j: as_tensor(v) for j, v in grp.items()} for k, grp in value.items()}
                leaves = [v for grp in tv.values() for v in grp.values()]
            else:
                tv = [Block(*(as_tensor(v) for v in block_leaves(b))) for b in value]
                leaves = [v for b in tv for v in block_leaves(b)]
            return list(torch.autograd.grad(loss(tv), leaves))

        fns["PyTorch eager (0-d tensors)"] = torch_grad
    jax = peer("jax", report)
    if jax is not None:
        if not is_dict and not getattr(Block, "_jax_registered", False):
            fields = [f.name for f in dataclasses.fields(Block)]
            jax.tree_util.register_dataclass(Block, data_fields=fields, meta_fields=[])
            Block._jax_registered = True  # type: ignore[attr-defined]
        j_grad = jax.grad(loss)

        def jax_grad() -> list[Any]:
            g = j_grad(value)
            if is_dict:  # JAX rebuilds dicts with sorted keys: read them in our order
                return [g[k][j] for k, grp in value.items() for j in grp]
            return [v for b in g for v in block_leaves(b)]

        fns["JAX eager"] = jax_grad
    for name, fn in fns.items():
        check_close(f"{workload}, {name}", expected, [float(v) for v in fn()])
        report.add(group, workload, name, measure_auto(fn, quick=quick))
