"""Workload 7: peak memory of one minibatch-128 gradient of the MNIST network.

Peak bytes allocated (``tracemalloc``, which sees NumPy's array buffers) while computing the
gradient of the 784-300-100-10 network of :mod:`benchmarks.bench_mnist` on a minibatch of
128, counted from just before the call, so the returned gradient (2.1 MB) is included and
the parameters and data are not.  The ratio is to the hand-written NumPy gradient.
PyTorch and JAX allocate through their own allocators, which ``tracemalloc`` cannot see, so
they are not in this table.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

import hetgrad

from .bench_mnist import (
    BATCH,
    SIZES,
    attr_loss,
    hybrid_loss,
    init_network,
    leaves,
    nn_loss,
    numpy_grad,
    split_loss,
)
from .common import check_close, peer
from .harness import Report


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes traced during ``fn()`` above what was allocated before it (best of 3)."""
    fn()
    best = None
    for _ in range(3):
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            out = fn()
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        del out
        best = peak if best is None else min(best, peak)
    assert best is not None
    return best


def run(report: Report, quick: bool) -> None:
    rng = np.random.default_rng(7)
    net = init_network(rng)
    x = rng.uniform(0.0, 1.0, (BATCH, SIZES[0]))
    t = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], BATCH)]
    expected = leaves(numpy_grad(net, x, t))
    impls: dict[str, Callable[[], Any]] = {
        "hand-written NumPy": lambda: numpy_grad(net, x, t),
        "hetgrad, attribute access": lambda: hetgrad.grad_bp(lambda n: attr_loss(n, x, t), net),
        "hetgrad, split_bv matching": lambda: hetgrad.grad_bp(lambda n: split_loss(n, x, t), net),
        "hetgrad hybrid (custom layer ops)": lambda: hetgrad.grad_bp(
            lambda n: hybrid_loss(n, x, t), net
        ),
        "hetgrad, attribute access + hetgrad.nn": lambda: hetgrad.grad_bp(
            lambda n: nn_loss(n, x, t), net
        ),
    }
    if peer("autograd", report) is not None:
        import autograd
        import autograd.numpy as anp
        from autograd.tracer import getval

        def ag_loss(ps: Any) -> Any:
            (w1, b1), (w2, b2), (w3, b3) = ps
            h1 = 1.0 / (1.0 + anp.exp(-(anp.dot(x, w1) + b1)))
            h2 = 1.0 / (1.0 + anp.exp(-(anp.dot(h1, w2) + b2)))
            z = anp.dot(h2, w3) + b3
            e = anp.exp(z - anp.max(getval(z), axis=-1, keepdims=True))
            p = e / anp.sum(e, axis=-1, keepdims=True)
            return -anp.sum(t * anp.log(p)) / BATCH

        params = tuple((layer.weights, layer.biases)
                       for layer in (net.layer1, net.layer2, net.layer3))  # fmt: skip
        ag_grad = autograd.grad(ag_loss)
        impls["autograd"] = lambda: [a for pair in ag_grad(params) for a in pair]
    group = f"peak memory (tracemalloc) of one minibatch-{BATCH} gradient"
    for name, fn in impls.items():
        out = fn()
        check_close(f"memory, {name}", expected, out if isinstance(out, list) else leaves(out))
        del out
        report.add(group, "MNIST 784-300-100-10", name, peak_bytes(fn), unit="bytes")
    report.note("peak memory: PyTorch and JAX allocate outside tracemalloc's view and are "
                "not measured")  # fmt: skip
