"""Workload 5: one two-moons training step of an MLP [2, 16, 16, 1].

The model of ``hetgrad.examples.moons``: ReLU between layers, a linear output, the hinge
loss ``mean(relu(1 - y * score)) + 1e-4 * sum(p * p)`` over 100 points (fixed seed), and an
SGD step with learning rate 0.5.  Two workloads:

* *scalar neurons*: micrograd's design, every weight a Python float in lists of ``Neuron``
  dataclasses, about 65,000 scalar operations per step.  The baseline is the same model on
  plain floats with a hand-written backward pass; peers: micrograd, autograd and PyTorch
  with 0-d tensors (JAX eager is left out: at its ~250 us per traced scalar operation one
  step would take about 15 s).
* *vectorised*: the same model with arrays; the baseline is hand-written NumPy, and every
  implementation is timed in the same interleaved rounds (the table's ratios are medians of
  the ratios within a round).  hetgrad takes the step with ``hetgrad.optim.descend``, as
  in the MNIST descent-step rows (PyTorch updates its tensors in place; the baseline makes
  new arrays).

The harness pauses the garbage collector while timing, for every implementation alike;
micrograd's graphs are reference cycles, so in real use the collector costs it far more.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

import hetgrad
from hetgrad.datasets import make_moons
from hetgrad.examples.moons import MLP, Dense, Layer, Neuron, VecMLP, init_mlp, to_vectorised

from .common import add_in_rounds, check_close, peer, to_numpy
from .harness import Report

SIZES = [2, 16, 16, 1]
N_POINTS = 100
RATE = 0.5
ALPHA = 1e-4


def relu(x: Any) -> Any:
    return x if x > 0.0 else 0.0


# --------------------------------------------------------------------------------------
# Scalar neurons.
# --------------------------------------------------------------------------------------


def scalar_loss(model: Any, xs: list[list[float]], ys: list[float]) -> Any:
    scores = [model(x) for x in xs]
    data_loss = sum(relu(1.0 - y * s) for y, s in zip(ys, scores)) / len(ys)
    return data_loss + ALPHA * sum(p * p for p in model.parameters())


def scalar_grad_by_hand(model: MLP, xs: list[list[float]], ys: list[float]) -> MLP:
    """The gradient of :func:`scalar_loss` written out by hand, on plain floats."""
    layers = [[(n.w, n.b) for n in layer.neurons] for layer in model.layers]
    last = len(layers) - 1
    gw = [[[0.0] * len(w) for w, _ in layer] for layer in layers]
    gb = [[0.0] * len(layer) for layer in layers]
    scale = 1.0 / len(ys)
    for x, y in zip(xs, ys):
        inputs, pre = [], []
        a = x
        for i, layer in enumerate(layers):
            z = [sum((wk * ak for wk, ak in zip(w, a)), b) for w, b in layer]
            inputs.append(a)
            pre.append(z)
            a = z if i == last else [v if v > 0.0 else 0.0 for v in z]
        if 1.0 - y * a[0] <= 0.0:
            continue
        delta = [-y * scale]
        for i in range(last, -1, -1):
            a = inputs[i]
            back = [0.0] * len(a)
            for j, (w, _) in enumerate(layers[i]):
                d = delta[j]
                if d == 0.0:
                    continue
                gb[i][j] += d
                gwj = gw[i][j]
                for k, (wk, ak) in enumerate(zip(w, a)):
                    gwj[k] += d * ak
                    back[k] += d * wk
            if i:
                delta = [d if z > 0.0 else 0.0 for d, z in zip(back, pre[i - 1])]
    two_alpha = 2.0 * ALPHA
    return MLP([
        Layer([
            Neuron([g + two_alpha * wk for g, wk in zip(gwj, n.w)], gbj + two_alpha * n.b,
                   n.nonlin)
            for n, gwj, gbj in zip(layer.neurons, gw[i], gb[i])
        ])
        for i, layer in enumerate(model.layers)
    ])  # fmt: skip


def scalar_step_by_hand(model: MLP, xs: list[list[float]], ys: list[float]) -> MLP:
    g = scalar_grad_by_hand(model, xs, ys)
    return MLP([
        Layer([
            Neuron([wk - RATE * gk for wk, gk in zip(n.w, gn.w)], n.b - RATE * gn.b, n.nonlin)
            for n, gn in zip(layer.neurons, glayer.neurons)
        ])
        for layer, glayer in zip(model.layers, g.layers)
    ])  # fmt: skip


def micrograd_step(model: MLP, xs: list[list[float]], ys: list[float],
                   report: Report) -> tuple[Callable[[], Any], list[float]] | None:  # fmt: skip
    mg = peer("micrograd", report)
    if mg is None:
        return None
    from micrograd.engine import Value
    from micrograd.nn import MLP as MgMLP

    net = MgMLP(SIZES[0], SIZES[1:])
    params = net.parameters()
    for p, v in zip(params, model.parameters()):
        p.data = v

    def loss() -> Any:
        inputs = [[Value(v) for v in x] for x in xs]
        scores = [net(x) for x in inputs]
        losses = [(1 + -y * s).relu() for y, s in zip(ys, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        return data_loss + ALPHA * sum(p * p for p in params)

    def step() -> None:
        total = loss()
        net.zero_grad()
        total.backward()
        for p in params:
            p.data -= RATE * p.grad

    total = loss()
    net.zero_grad()
    total.backward()
    return step, [p.grad for p in params]


def autograd_scalar(model: MLP, xs: list[list[float]], ys: list[float],
                    report: Report) -> tuple[Callable[[], Any], Any] | None:  # fmt: skip
    ag = peer("autograd", report)
    if ag is None:
        return None
    # autograd has no dataclasses: the parameters are nested lists [[[w..., b], ...], ...].
    params = [[[*n.w, n.b] for n in layer.neurons] for layer in model.layers]
    last = len(params) - 1

    def loss(ps: Any) -> Any:
        total = 0.0
        for x, y in zip(xs, ys):
            a = x
            for i, layer in enumerate(ps):
                z = [sum((wk * ak for wk, ak in zip(nw[:-1], a)), nw[-1]) for nw in layer]
                a = z if i == last else [relu(v) for v in z]
            total = total + relu(1.0 - y * a[0])
        reg = sum(p * p for layer in ps for nw in layer for p in nw)
        return total / len(ys) + ALPHA * reg

    grad = ag.grad(loss)

    def step() -> Any:
        g = grad(params)
        return [[[p - RATE * gp for p, gp in zip(nw, gn)] for nw, gn in zip(layer, gl)]
                for layer, gl in zip(params, g)]  # fmt: skip

    flat = [v for layer in grad(params) for nw in layer for v in nw]
    return step, flat


def torch_scalar(model: MLP, xs: list[list[float]], ys: list[float],
                 report: Report) -> tuple[Callable[[], Any], Any] | None:  # fmt: skip
    torch = peer("torch", report)
    if torch is None:
        return None
    layers = [[([torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in n.w],
                torch.tensor(n.b, dtype=torch.float64, requires_grad=True))
               for n in layer.neurons] for layer in model.layers]  # fmt: skip
    params = [p for layer in layers for w, b in layer for p in (*w, b)]
    last = len(layers) - 1

    def loss() -> Any:
        scores = []
        for x in xs:
            a: list[Any] = x
            for i, layer in enumerate(layers):
                z = [sum((wk * ak for wk, ak in zip(w, a)), b) for w, b in layer]
                a = z if i == last else [v.relu() for v in z]
            scores.append(a[0])
        data_loss = sum((1.0 - y * s).relu() for y, s in zip(ys, scores)) / len(ys)
        return data_loss + ALPHA * sum(p * p for p in params)

    def step() -> None:
        grads = torch.autograd.grad(loss(), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= RATE * g

    return step, list(torch.autograd.grad(loss(), params))


# --------------------------------------------------------------------------------------
# Vectorised.
# --------------------------------------------------------------------------------------


def vec_loss(model: Any, xs: np.ndarray, ys: np.ndarray) -> Any:
    scores = model(xs)
    data_loss = np.mean(np.maximum(1.0 - ys * scores, 0.0))
    reg = sum(np.sum(layer.w * layer.w) + np.sum(layer.b * layer.b) for layer in model.layers)
    return data_loss + ALPHA * reg


def vec_grad_by_hand(model: VecMLP, xs: np.ndarray, ys: np.ndarray) -> VecMLP:
    acts, pres = [], []
    a = xs
    *hidden, out = model.layers
    for layer in hidden:
        z = a @ layer.w + layer.b
        acts.append(a)
        pres.append(z)
        a = np.maximum(z, 0.0)
    scores = (a @ out.w + out.b)[:, 0]
    ds = np.where(1.0 - ys * scores > 0.0, -ys / len(ys), 0.0)[:, None]
    grads = [Dense(a.T @ ds + 2 * ALPHA * out.w, ds.sum(0) + 2 * ALPHA * out.b)]
    delta = ds @ out.w.T
    for layer, a_in, z in zip(reversed(hidden), reversed(acts), reversed(pres)):
        delta = delta * (z > 0.0)
        grads.append(Dense(a_in.T @ delta + 2 * ALPHA * layer.w,
                           delta.sum(0) + 2 * ALPHA * layer.b))  # fmt: skip
        delta = delta @ layer.w.T
    return VecMLP(tuple(reversed(grads)))


def vec_step_by_hand(model: VecMLP, xs: np.ndarray, ys: np.ndarray) -> VecMLP:
    g = vec_grad_by_hand(model, xs, ys)
    return VecMLP(tuple(Dense(layer.w - RATE * gl.w, layer.b - RATE * gl.b)
                        for layer, gl in zip(model.layers, g.layers)))  # fmt: skip


def vec_leaves(model: VecMLP) -> list[np.ndarray]:
    return [a for layer in model.layers for a in (layer.w, layer.b)]


PeerStep = tuple[Callable[[], Any], list[Any], dict[str, Any]]


def vec_peers(model: VecMLP, xs: np.ndarray, ys: np.ndarray,
              report: Report) -> dict[str, PeerStep]:  # fmt: skip
    """name -> (one training step, gradient leaves for the check, extra row fields)."""
    out: dict[str, PeerStep] = {}
    params = [(layer.w, layer.b) for layer in model.layers]
    if peer("autograd", report) is not None:
        import autograd
        import autograd.numpy as anp

        def ag_loss(ps: Any) -> Any:
            a = xs
            for w, b in ps[:-1]:
                a = anp.maximum(anp.dot(a, w) + b, 0.0)
            scores = (anp.dot(a, ps[-1][0]) + ps[-1][1])[:, 0]
            reg = sum(anp.sum(w * w) + anp.sum(b * b) for w, b in ps)
            return anp.mean(anp.maximum(1.0 - ys * scores, 0.0)) + ALPHA * reg

        ag_grad = autograd.grad(ag_loss)

        def ag_step() -> Any:
            g = ag_grad(params)
            return [(w - RATE * gw, b - RATE * gb) for (w, b), (gw, gb) in zip(params, g)]

        out["autograd"] = (ag_step, [a for pair in ag_grad(params) for a in pair], {})
    torch = peer("torch", report)
    if torch is not None:
        tps = [torch.tensor(a, dtype=torch.float64, requires_grad=True)
               for pair in params for a in pair]  # fmt: skip
        tx, ty = torch.from_numpy(xs), torch.from_numpy(ys.astype(float))

        def torch_loss() -> Any:
            a = tx
            for k in range(0, len(tps) - 2, 2):
                a = torch.relu(a @ tps[k] + tps[k + 1])
            scores = (a @ tps[-2] + tps[-1])[:, 0]
            reg = sum((p * p).sum() for p in tps)
            return torch.relu(1.0 - ty * scores).mean() + ALPHA * reg

        def torch_step() -> None:
            grads = torch.autograd.grad(torch_loss(), tps)
            with torch.no_grad():
                for p, g in zip(tps, grads):
                    p -= RATE * g

        out["PyTorch eager"] = (torch_step, list(torch.autograd.grad(torch_loss(), tps)), {})
    jax = peer("jax", report)
    if jax is not None:
        import jax.numpy as jnp

        jps = [(jnp.asarray(w), jnp.asarray(b)) for w, b in params]
        jx, jy = jnp.asarray(xs), jnp.asarray(ys.astype(float))

        def jax_loss(ps: Any, x: Any, y: Any) -> Any:
            a = x
            for w, b in ps[:-1]:
                a = jnp.maximum(a @ w + b, 0.0)
            scores = (a @ ps[-1][0] + ps[-1][1])[:, 0]
            reg = sum(jnp.sum(w * w) + jnp.sum(b * b) for w, b in ps)
            return jnp.mean(jnp.maximum(1.0 - y * scores, 0.0)) + ALPHA * reg

        jgrad = jax.grad(jax_loss)

        def jstep(ps: Any, x: Any, y: Any) -> Any:
            g = jgrad(ps, x, y)
            return jax.tree_util.tree_map(lambda p, gp: p - RATE * gp, ps, g)

        g0 = [a for pair in jgrad(jps, jx, jy) for a in pair]
        out["JAX eager"] = (lambda: jax.block_until_ready(jstep(jps, jx, jy)), g0, {})
        jitted = jax.jit(jstep)
        start = time.perf_counter()
        jax.block_until_ready(jitted(jps, jx, jy))
        compile_s = time.perf_counter() - start
        report.note(f"jax.jit compile time (two moons, vectorised step): first call "
                    f"{compile_s * 1e3:.0f} ms (not in the table)")  # fmt: skip
        out["jax.jit"] = (lambda: jax.block_until_ready(jitted(jps, jx, jy)), g0,
                          {"compile_seconds": round(compile_s, 4)})  # fmt: skip
    return out


# --------------------------------------------------------------------------------------


def run(report: Report, quick: bool) -> None:
    rng = np.random.default_rng(1)
    model = init_mlp(SIZES, rng)
    x, y = make_moons(N_POINTS, noise=0.1, rng=2)
    xs, ys = x.tolist(), [float(v) for v in y]

    group = "two moons, one training step, MLP [2, 16, 16, 1], 100 points"
    wl = "scalar neurons (lists of floats)"
    expected = scalar_grad_by_hand(model, xs, ys).parameters()
    got = hetgrad.grad_bp(lambda m: scalar_loss(m, xs, ys), model).parameters()
    check_close("moons scalar, hetgrad", expected, got)
    scalar_steps: dict[str, Callable[[], Any]] = {
        "hand-written, plain floats": lambda: scalar_step_by_hand(model, xs, ys),
        "hetgrad": lambda: model - RATE * hetgrad.grad_bp(lambda m: scalar_loss(m, xs, ys), model),
    }
    for name, make in (("micrograd", micrograd_step), ("autograd", autograd_scalar),
                       ("PyTorch eager (0-d tensors)", torch_scalar)):  # fmt: skip
        made = make(model, xs, ys, report)
        if made is None:
            continue
        step, grads = made
        check_close(f"moons scalar, {name}", expected, [to_numpy(g) for g in grads])
        scalar_steps[name] = step
    add_in_rounds(report, group, wl, scalar_steps, quick=quick)

    wl = "vectorised (arrays)"
    vmodel = to_vectorised(model)
    vx, vy = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    vexpected = vec_leaves(vec_grad_by_hand(vmodel, vx, vy))
    check_close("moons vectorised, hetgrad", vexpected,
                vec_leaves(hetgrad.grad_bp(lambda m: vec_loss(m, vx, vy), vmodel)))  # fmt: skip
    check_close("moons vectorised, hetgrad step", vec_leaves(vec_step_by_hand(vmodel, vx, vy)),
                vec_leaves(hetgrad.optim.descend(vec_loss, vmodel, RATE, vx, vy)[1]))  # fmt: skip
    steps: dict[str, Callable[[], Any]] = {
        "hand-written NumPy": lambda: vec_step_by_hand(vmodel, vx, vy),
        "hetgrad": lambda: hetgrad.optim.descend(vec_loss, vmodel, RATE, vx, vy)[1],
    }
    extras: dict[str, dict[str, Any]] = {}
    for name, (step, grads, extra) in vec_peers(vmodel, vx, vy, report).items():
        check_close(f"moons vectorised, {name}", vexpected, [to_numpy(g) for g in grads])
        steps[name], extras[name] = step, extra
    add_in_rounds(report, group, wl, steps, quick=quick, repeat=11, extras=extras)
