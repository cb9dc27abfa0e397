"""Workload 6: Goal's regression, 1000 full-batch Adam epochs.

The model and data of ``hetgrad.examples.regression``: forty noisy samples of
``exp(sin(2x))``, a 1-50-1 network with logistic hidden units and a linear output, the mean
Gaussian negative log-likelihood, and Adam (learning rate 0.05, b1 0.9, b2 0.999, eps
1e-8) for 1000 epochs over all forty samples.  The arrays are tiny, so this measures the
per-operation cost of each library far more than arithmetic.

Implementations: hand-written NumPy (gradient and Adam by hand; the baseline); hetgrad with
``hetgrad.optim.adam``; hetgrad's gradient with the baseline's hand-written Adam (to
separate the engine from the optimiser); autograd and JAX eager with the hand-written Adam
in their own array types; PyTorch eager with ``torch.optim.Adam``; ``jax.jit`` of one epoch,
and of the whole 1000-epoch loop (``lax.fori_loop``).  Each is checked against the baseline
after 20 epochs before it is timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

import hetgrad
from hetgrad import optim
from hetgrad.examples.regression import Net, init_net, make_data, negative_log_likelihood

from .common import add_in_rounds, check_close, peer, to_numpy
from .harness import Report

EPOCHS = 1000
CHECK_EPOCHS = 20
LR, B1, B2, EPS = 0.05, 0.9, 0.999, 1e-8

Trainer = Callable[[int], list[Any]]  # epochs -> final parameters [w1, b1, w2, b2]


def leaves(net: Net) -> list[np.ndarray]:
    return [net.w1, net.b1, net.w2, net.b2]


def grad_by_hand(ps: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    w1, b1, w2, b2 = ps
    h = 1.0 / (1.0 + np.exp(-(x @ w1 + b1)))
    d = (h @ w2 + b2 - y) / len(y)
    dz = (d @ w2.T) * h * (1.0 - h)
    return [x.T @ dz, dz.sum(0), h.T @ d, d.sum(0)]


def adam_by_hand(grad: Callable[[list[Any]], list[Any]], ps: list[Any], epochs: int,
                 sqrt: Callable[[Any], Any] = np.sqrt) -> list[Any]:  # fmt: skip
    """Adam as in ``hetgrad.optim.adam``'s docstring, on any array type with ``sqrt``."""
    ms = [0.0 * p for p in ps]
    vs = [0.0 * p for p in ps]
    for k in range(epochs):
        gs = grad(ps)
        t = k + 1
        scale, vscale = -LR / (1.0 - B1**t), 1.0 / (1.0 - B2**t)
        ms = [B1 * m + (1.0 - B1) * g for m, g in zip(ms, gs)]
        vs = [B2 * v + (1.0 - B2) * (g * g) for v, g in zip(vs, gs)]
        ps = [p + scale * m / (sqrt(v * vscale) + EPS) for p, m, v in zip(ps, ms, vs)]
    return ps


def trainers(net: Net, x: np.ndarray, y: np.ndarray, report: Report) -> dict[str, Trainer]:
    out: dict[str, Trainer] = {}
    out["hand-written NumPy"] = lambda n: adam_by_hand(
        lambda ps: grad_by_hand(ps, x, y), leaves(net), n
    )

    def hetgrad_adam(epochs: int) -> list[Any]:
        opt = optim.adam(LR, B1, B2, EPS)
        p, state = net, opt.init(net)
        for _ in range(epochs):
            g = hetgrad.grad_bp(lambda m: negative_log_likelihood(m, x, y), p)
            updates, state = opt.update(g, state, p)
            p = optim.apply_updates(p, updates)
        return leaves(p)

    def hetgrad_grad(ps: list[Any]) -> list[Any]:
        g = hetgrad.grad_bp(lambda m: negative_log_likelihood(m, x, y), Net(*ps))
        return leaves(g)

    out["hetgrad (optim.adam)"] = hetgrad_adam
    out["hetgrad (hand-written Adam)"] = lambda n: adam_by_hand(hetgrad_grad, leaves(net), n)

    if peer("autograd", report) is not None:
        import autograd
        import autograd.numpy as anp

        def ag_loss(ps: Any) -> Any:
            w1, b1, w2, b2 = ps
            h = 1.0 / (1.0 + anp.exp(-(anp.dot(x, w1) + b1)))
            r = y - (anp.dot(h, w2) + b2)
            return anp.mean(0.5 * r * r) + 0.5 * np.log(2.0 * np.pi)

        ag_grad = autograd.grad(ag_loss)
        out["autograd"] = lambda n: adam_by_hand(ag_grad, leaves(net), n)

    torch = peer("torch", report)
    if torch is not None:
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_train(epochs: int) -> list[Any]:
            ps = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in leaves(net)]
            opt = torch.optim.Adam(ps, lr=LR, betas=(B1, B2), eps=EPS)
            for _ in range(epochs):
                w1, b1, w2, b2 = ps
                r = ty - (torch.sigmoid(tx @ w1 + b1) @ w2 + b2)
                loss = (0.5 * r * r).mean() + 0.5 * np.log(2.0 * np.pi)
                opt.zero_grad()
                loss.backward()
                opt.step()
            return ps

        out["PyTorch eager (torch.optim.Adam)"] = torch_train

    jax = peer("jax", report)
    if jax is not None:
        out.update(jax_trainers(jax, net, x, y, report))
    return out


def jax_trainers(jax: Any, net: Net, x: np.ndarray, y: np.ndarray,
                 report: Report) -> dict[str, Trainer]:  # fmt: skip
    import jax.numpy as jnp

    jx, jy = jnp.asarray(x), jnp.asarray(y)

    def loss(ps: Any) -> Any:
        w1, b1, w2, b2 = ps
        r = jy - (jax.nn.sigmoid(jx @ w1 + b1) @ w2 + b2)
        return jnp.mean(0.5 * r * r) + 0.5 * np.log(2.0 * np.pi)

    grad = jax.grad(loss)
    p0 = [jnp.asarray(a) for a in leaves(net)]

    def epoch(k: Any, state: Any) -> Any:
        ps, ms, vs = state
        gs = grad(ps)
        t = k + 1
        scale, vscale = -LR / (1.0 - B1**t), 1.0 / (1.0 - B2**t)
        ms = [B1 * m + (1.0 - B1) * g for m, g in zip(ms, gs)]
        vs = [B2 * v + (1.0 - B2) * (g * g) for v, g in zip(vs, gs)]
        ps = [p + scale * m / (jnp.sqrt(v * vscale) + EPS) for p, m, v in zip(ps, ms, vs)]
        return ps, ms, vs

    jit_epoch = jax.jit(epoch)

    def init() -> Any:
        return p0, [jnp.zeros_like(p) for p in p0], [jnp.zeros_like(p) for p in p0]

    def eager(epochs: int) -> list[Any]:
        return jax.block_until_ready(adam_by_hand(grad, p0, epochs, jnp.sqrt))

    def per_epoch(epochs: int) -> list[Any]:
        state = init()
        for k in range(epochs):
            state = jit_epoch(k, state)
        return jax.block_until_ready(state[0])

    whole = jax.jit(lambda n, state: jax.lax.fori_loop(0, n, epoch, state))

    def whole_loop(epochs: int) -> list[Any]:
        return jax.block_until_ready(whole(epochs, init())[0])

    for name, fn in (("one epoch", per_epoch), ("the whole loop", whole_loop)):
        start = time.perf_counter()
        fn(1)
        report.note(f"jax.jit compile time (regression, {name}): first call "
                    f"{(time.perf_counter() - start) * 1e3:.0f} ms (not in the table)")  # fmt: skip
    return {
        "JAX eager": eager,
        "jax.jit (one epoch)": per_epoch,
        "jax.jit (whole loop, lax.fori_loop)": whole_loop,
    }


def run(report: Report, quick: bool) -> None:
    rng = np.random.default_rng(0)
    x, y = make_data(rng)
    net = init_net(rng)
    group = "Goal regression, 1-50-1 network, 40 samples"
    workload = f"{EPOCHS} full-batch Adam epochs"
    impls = trainers(net, x, y, report)
    expected = impls["hand-written NumPy"](CHECK_EPOCHS)
    for name, train in impls.items():
        got = [to_numpy(p) for p in train(CHECK_EPOCHS)]
        check_close(f"regression, {name}, after {CHECK_EPOCHS} epochs", expected, got,
                    rtol=1e-6, atol=1e-9)  # fmt: skip
    add_in_rounds(report, group, workload,
                  {name: lambda t=train: t(EPOCHS) for name, train in impls.items()},
                  quick=quick)  # fmt: skip
