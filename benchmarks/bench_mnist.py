"""Workloads 1 and 2: backprop's own benchmark, the 784-300-100-10 MNIST network.

Logistic hidden layers, a softmax output and cross-entropy loss, on one sample and on a
minibatch of 128 (synthetic pixels in [0, 1] and one-hot targets, fixed seed; the speed
does not depend on the data).  Three groups, as in Haskell backprop's benchmark:

* *gradient*: the gradient of the loss with respect to the whole ``Network``;
* *descent step*: one SGD step, ``p - 0.02 * g`` per leaf.  The baseline writes it as
  that expression (two new arrays per leaf); hetgrad takes the step with
  ``hetgrad.optim.descend``, which seeds the reverse pass with ``-0.02`` and adds each
  parameter into its gradient's own buffer (one pass, no allocation).  A second
  hand-written row, "in place", does the same by hand, so both comparisons are in the
  table;
* *run*: the forward pass alone (the class probabilities), hetgrad under ``eval_bp``.

Modes: hand-written NumPy with a hand-written backward pass (the baseline); hetgrad reading
fields by attribute (``net.layer1.weights``); hetgrad with ``split_bv`` pattern matching;
hybrid (per-layer custom ops with hand-written pullbacks, chained by hetgrad); then the
peers that can express the workload (autograd, PyTorch eager, JAX eager and ``jax.jit``).
hetgrad runs two programs: the model written out (``1 / (1 + exp(-z))``, softmax and
cross-entropy by formula) and with ``hetgrad.nn``'s fused sigmoid, softmax and softmax
cross-entropy.  PyTorch runs both, so each hetgrad row has a like-for-like PyTorch row; JAX
runs the fused program and autograd, which has no fused operations, the written-out one.
Every implementation's result is checked against the hand-written one before it is timed.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import hetgrad

from .common import check_close, peer, to_numpy
from .harness import Report, best_ratio, measure_rounds, paired_ratio

SIZES = (784, 300, 100, 10)
RATE = 0.02
BATCH = 128


@dataclasses.dataclass(frozen=True)
class Layer:
    weights: np.ndarray  # (inputs, outputs)
    biases: np.ndarray  # (outputs,)


@dataclasses.dataclass(frozen=True)
class Network(hetgrad.Params):
    layer1: Layer
    layer2: Layer
    layer3: Layer


def init_network(rng: np.random.Generator) -> Network:
    layers = [
        Layer(rng.uniform(-0.5, 0.5, (n_in, n_out)), rng.uniform(-0.5, 0.5, n_out))
        for n_in, n_out in zip(SIZES[:-1], SIZES[1:])
    ]
    return Network(*layers)


def leaves(net: Network) -> list[np.ndarray]:
    return [a for layer in (net.layer1, net.layer2, net.layer3)
            for a in (layer.weights, layer.biases)]  # fmt: skip


def from_leaves(arrays: list[Any]) -> Network:
    a = [to_numpy(x) for x in arrays]
    return Network(Layer(a[0], a[1]), Layer(a[2], a[3]), Layer(a[4], a[5]))


def batch_size(x: np.ndarray) -> int:
    return 1 if x.ndim == 1 else x.shape[0]


# --------------------------------------------------------------------------------------
# Hand-written NumPy: forward and backward (the baseline).
# --------------------------------------------------------------------------------------


def np_logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def np_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def np_outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.outer(a, b)`` as BLAS computes it, a matrix product with an inner dimension of 1:
    the same values, ~1.5x faster than ``np.outer`` at 784x300.  hetgrad's matmul pullback
    computes a layer's one-sample gradient so, and the baseline must be the fastest NumPy a
    careful hand would write, or the ratios would credit hetgrad with a faster kernel."""
    return np.dot(a[:, None], b[None, :])


def numpy_run(net: Network, x: np.ndarray) -> np.ndarray:
    h1 = np_logistic(x @ net.layer1.weights + net.layer1.biases)
    h2 = np_logistic(h1 @ net.layer2.weights + net.layer2.biases)
    return np_softmax(h2 @ net.layer3.weights + net.layer3.biases)


def numpy_grad(net: Network, x: np.ndarray, t: np.ndarray, scale: float = 1.0) -> Network:
    """The gradient of the loss; with ``scale``, of ``scale`` times the loss."""
    l1, l2, l3 = net.layer1, net.layer2, net.layer3
    h1 = np_logistic(x @ l1.weights + l1.biases)
    h2 = np_logistic(h1 @ l2.weights + l2.biases)
    p = np_softmax(h2 @ l3.weights + l3.biases)
    d3 = (p - t) / batch_size(x) if scale == 1.0 else (p - t) * (scale / batch_size(x))
    d2 = (d3 @ l3.weights.T) * h2 * (1.0 - h2)
    d1 = (d2 @ l2.weights.T) * h1 * (1.0 - h1)
    if x.ndim == 1:
        return Network(Layer(np_outer(x, d1), d1), Layer(np_outer(h1, d2), d2),
                       Layer(np_outer(h2, d3), d3))  # fmt: skip
    return Network(Layer(x.T @ d1, d1.sum(0)), Layer(h1.T @ d2, d2.sum(0)),
                   Layer(h2.T @ d3, d3.sum(0)))  # fmt: skip


def numpy_step(net: Network, x: np.ndarray, t: np.ndarray) -> Network:
    g = numpy_grad(net, x, t)
    return Network(*(
        Layer(layer.weights - RATE * gl.weights, layer.biases - RATE * gl.biases)
        for layer, gl in ((net.layer1, g.layer1), (net.layer2, g.layer2), (net.layer3, g.layer3))
    ))  # fmt: skip


def numpy_step_in_place(net: Network, x: np.ndarray, t: np.ndarray) -> Network:
    """The step as ``descend`` takes it: the gradient of ``-0.02 * loss``, then ``+= p``."""
    g = numpy_grad(net, x, t, scale=-RATE)
    for layer, gl in ((net.layer1, g.layer1), (net.layer2, g.layer2), (net.layer3, g.layer3)):
        np.add(gl.weights, layer.weights, out=gl.weights)
        np.add(gl.biases, layer.biases, out=gl.biases)
    return g


# --------------------------------------------------------------------------------------
# hetgrad: the same model written once, as plain NumPy code over the dataclasses.
# --------------------------------------------------------------------------------------


def logistic(z: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z: Any) -> Any:
    # Softmax does not change when a constant is subtracted, so the max is a constant.
    e = np.exp(z - np.max(hetgrad.stop_gradient(z), axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def cross_entropy(t: np.ndarray, p: Any) -> Any:
    return -np.sum(t * np.log(p)) / batch_size(t)


def attr_run(net: Any, x: np.ndarray) -> Any:
    h1 = logistic(x @ net.layer1.weights + net.layer1.biases)
    h2 = logistic(h1 @ net.layer2.weights + net.layer2.biases)
    return softmax(h2 @ net.layer3.weights + net.layer3.biases)


def attr_loss(net: Any, x: np.ndarray, t: np.ndarray) -> Any:
    return cross_entropy(t, attr_run(net, x))


def split_dense(layer: Any, x: Any) -> Any:
    match hetgrad.split_bv(layer):
        case Layer(weights=w, biases=b):
            return x @ w + b
    raise TypeError("not a Layer")


def split_run(net: Any, x: np.ndarray) -> Any:
    match hetgrad.split_bv(net):
        case Network(layer1=l1, layer2=l2, layer3=l3):
            h1 = logistic(split_dense(l1, x))
            h2 = logistic(split_dense(l2, h1))
            return softmax(split_dense(l3, h2))
    raise TypeError("not a Network")


def split_loss(net: Any, x: np.ndarray, t: np.ndarray) -> Any:
    return cross_entropy(t, split_run(net, x))


# Hybrid: each layer is one custom op with a hand-written pullback; hetgrad chains them.


def _dense_logistic(layer: Layer, x: np.ndarray) -> tuple[np.ndarray, Callable[..., Any]]:
    y = np_logistic(x @ layer.weights + layer.biases)

    def pullback(g: np.ndarray) -> tuple[Layer, np.ndarray]:
        dz = g * y * (1.0 - y)
        return _layer_grad(x, dz), dz @ layer.weights.T

    return y, pullback


def _dense_logistic_input(layer: Layer, x: np.ndarray) -> tuple[np.ndarray, Callable[..., Any]]:
    """The first layer: ``x`` is data, so its gradient (a 300x784 product) is not computed."""
    y = np_logistic(x @ layer.weights + layer.biases)

    def pullback(g: np.ndarray) -> tuple[Layer, None]:
        return _layer_grad(x, g * y * (1.0 - y)), None

    return y, pullback


def _dense(layer: Layer, x: np.ndarray) -> tuple[np.ndarray, Callable[..., Any]]:
    def pullback(g: np.ndarray) -> tuple[Layer, np.ndarray]:
        return _layer_grad(x, g), g @ layer.weights.T

    return x @ layer.weights + layer.biases, pullback


def _layer_grad(x: np.ndarray, dz: np.ndarray) -> Layer:
    if x.ndim == 1:
        return Layer(np_outer(x, dz), dz)
    return Layer(x.T @ dz, dz.sum(0))


def _softmax_cross_entropy(z: np.ndarray, t: np.ndarray) -> tuple[Any, Callable[..., Any]]:
    p = np_softmax(z)
    n = batch_size(t)

    def pullback(g: Any) -> tuple[np.ndarray, None]:
        return (p - t) * (g / n), None

    return -np.sum(t * np.log(p)) / n, pullback


dense_logistic = hetgrad.op2(_dense_logistic)
dense_logistic_input = hetgrad.op2(_dense_logistic_input)
dense = hetgrad.op2(_dense)
softmax_cross_entropy = hetgrad.op2(_softmax_cross_entropy)


def hybrid_logits(net: Any, x: np.ndarray) -> Any:
    h1 = dense_logistic_input(net.layer1, x)
    h2 = dense_logistic(net.layer2, h1)
    return dense(net.layer3, h2)


def hybrid_run(net: Any, x: np.ndarray) -> Any:
    return softmax(hybrid_logits(net, x))


def hybrid_loss(net: Any, x: np.ndarray, t: np.ndarray) -> Any:
    return softmax_cross_entropy(hybrid_logits(net, x), t)


# With hetgrad.nn's fused operations (when that module exists): sigmoid, softmax and the
# softmax cross-entropy, each one node with a direct pullback.


def nn_run(net: Any, x: np.ndarray) -> Any:
    from hetgrad import nn

    h1 = nn.sigmoid(x @ net.layer1.weights + net.layer1.biases)
    h2 = nn.sigmoid(h1 @ net.layer2.weights + net.layer2.biases)
    return nn.softmax(h2 @ net.layer3.weights + net.layer3.biases)


def nn_loss(net: Any, x: np.ndarray, t: np.ndarray) -> Any:
    from hetgrad import nn

    h1 = nn.sigmoid(x @ net.layer1.weights + net.layer1.biases)
    h2 = nn.sigmoid(h1 @ net.layer2.weights + net.layer2.biases)
    return nn.cross_entropy(h2 @ net.layer3.weights + net.layer3.biases, t) / batch_size(t)


def have_nn() -> bool:
    try:
        from hetgrad import nn

        return all(hasattr(nn, f) for f in ("sigmoid", "softmax", "cross_entropy"))
    except ImportError:
        return False


# --------------------------------------------------------------------------------------
# The implementations of the three groups, as closures over (net, x, t).
# --------------------------------------------------------------------------------------

Impl = dict[str, Callable[[], Any]]


def hetgrad_impls(net: Network, x: np.ndarray, t: np.ndarray) -> dict[str, Impl]:
    modes = {
        "hetgrad, attribute access": (attr_run, attr_loss),
        "hetgrad, split_bv matching": (split_run, split_loss),
        "hetgrad hybrid (custom layer ops)": (hybrid_run, hybrid_loss),
    }
    if have_nn():
        modes["hetgrad, attribute access + hetgrad.nn"] = (nn_run, nn_loss)
    out: dict[str, Impl] = {}
    for name, (run, loss) in modes.items():
        out[name] = {
            "gradient": lambda loss=loss: hetgrad.grad_bp(lambda n: loss(n, x, t), net),
            "descent step": lambda loss=loss: hetgrad.optim.descend(loss, net, RATE, x, t)[1],
            "run": lambda run=run: hetgrad.eval_bp(run, net, x),
        }
    return out


def autograd_impls(net: Network, x: np.ndarray, t: np.ndarray) -> Impl | None:
    ag = peer("autograd")
    if ag is None:
        return None
    import autograd.numpy as anp
    from autograd.tracer import getval

    def run(ps: Any, x: Any) -> Any:
        (w1, b1), (w2, b2), (w3, b3) = ps
        h1 = 1.0 / (1.0 + anp.exp(-(anp.dot(x, w1) + b1)))
        h2 = 1.0 / (1.0 + anp.exp(-(anp.dot(h1, w2) + b2)))
        z = anp.dot(h2, w3) + b3
        e = anp.exp(z - anp.max(getval(z), axis=-1, keepdims=True))
        return e / anp.sum(e, axis=-1, keepdims=True)

    def loss(ps: Any) -> Any:
        return -anp.sum(t * anp.log(run(ps, x))) / batch_size(x)

    params = tuple((layer.weights, layer.biases) for layer in (net.layer1, net.layer2, net.layer3))
    grad = ag.grad(loss)

    def step() -> Any:
        g = grad(params)
        return tuple((w - RATE * gw, b - RATE * gb) for (w, b), (gw, gb) in zip(params, g))

    return {
        "gradient": lambda: grad(params),
        "descent step": step,
        "run": lambda: run(params, x),
        "_flat": lambda out: [a for pair in out for a in pair],
    }


def torch_impls(net: Network, x: np.ndarray, t: np.ndarray, fused: bool) -> Impl | None:
    """PyTorch eager, float64, in one of two programs, each matching a hetgrad row: fused
    (``torch.sigmoid``, ``log_softmax`` cross-entropy, ``softmax``), as ``hetgrad.nn`` is,
    or written out (``1 / (1 + exp(-z))``, softmax by formula), as the plain rows are."""
    torch = peer("torch")
    if torch is None:
        return None
    ps = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in leaves(net)]
    tx, tt = torch.from_numpy(x), torch.from_numpy(t)
    n = batch_size(x)

    def logistic(z: Any) -> Any:
        return torch.sigmoid(z) if fused else 1.0 / (1.0 + torch.exp(-z))

    def logits(x: Any) -> Any:
        w1, b1, w2, b2, w3, b3 = ps
        h1 = logistic(x @ w1 + b1)
        h2 = logistic(h1 @ w2 + b2)
        return h2 @ w3 + b3

    def softmax(z: Any) -> Any:
        if fused:
            return torch.softmax(z, dim=-1)
        e = torch.exp(z - z.detach().amax(dim=-1, keepdim=True))
        return e / e.sum(dim=-1, keepdim=True)

    def loss() -> Any:
        z = logits(tx)
        log_p = torch.log_softmax(z, dim=-1) if fused else torch.log(softmax(z))
        return -(tt * log_p).sum() / n

    def step() -> None:
        loss().backward()
        with torch.no_grad():
            for p in ps:
                p -= RATE * p.grad
                p.grad = None

    def run_no_grad() -> Any:
        with torch.no_grad():
            return softmax(logits(tx))

    initial = [p.detach().clone() for p in ps]

    def reset() -> None:
        """Undo the in-place descent steps."""
        with torch.no_grad():
            for p, p0 in zip(ps, initial):
                p.copy_(p0)

    return {
        "gradient": lambda: torch.autograd.grad(loss(), ps),
        "descent step": step,
        "run": run_no_grad,
        "_flat": lambda out: list(out),
        "_state": lambda: [p.detach().numpy().copy() for p in ps],
        "_reset": reset,
    }


def torch_hand_impls(net: Network, x: np.ndarray, t: np.ndarray) -> Impl | None:
    """The hand-written gradient with PyTorch tensors instead of NumPy arrays: PyTorch's
    kernels without its autograd, to tell apart what PyTorch's rows owe to its kernels
    (faster than NumPy's on some of this network's operations) and to its recording."""
    torch = peer("torch")
    if torch is None:
        return None
    w1, b1, w2, b2, w3, b3 = (torch.from_numpy(a) for a in leaves(net))
    tx, tt = torch.from_numpy(x), torch.from_numpy(t)
    n = batch_size(x)

    def grad() -> list[Any]:
        h1 = torch.sigmoid(tx @ w1 + b1)
        h2 = torch.sigmoid(h1 @ w2 + b2)
        p = torch.softmax(h2 @ w3 + b3, dim=-1)
        d3 = (p - tt) / n
        d2 = (d3 @ w3.T) * h2 * (1.0 - h2)
        d1 = (d2 @ w2.T) * h1 * (1.0 - h1)
        if tx.ndim == 1:
            return [torch.outer(tx, d1), d1, torch.outer(h1, d2), d2, torch.outer(h2, d3), d3]
        return [tx.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)]

    return {"gradient": grad, "_flat": lambda out: list(out)}


def jax_impls(net: Network, x: np.ndarray, t: np.ndarray) -> tuple[Impl, Impl] | None:
    jax = peer("jax")
    if jax is None:
        return None
    import jax.numpy as jnp

    params = tuple((jnp.asarray(layer.weights), jnp.asarray(layer.biases))
                   for layer in (net.layer1, net.layer2, net.layer3))  # fmt: skip
    jx, jt = jnp.asarray(x), jnp.asarray(t)
    n = batch_size(x)

    # The fused program, as hetgrad.nn's rows and the first PyTorch row.
    def logits(ps: Any, x: Any) -> Any:
        (w1, b1), (w2, b2), (w3, b3) = ps
        h1 = jax.nn.sigmoid(x @ w1 + b1)
        h2 = jax.nn.sigmoid(h1 @ w2 + b2)
        return h2 @ w3 + b3

    def run(ps: Any, x: Any) -> Any:
        return jax.nn.softmax(logits(ps, x), axis=-1)

    def loss(ps: Any, x: Any, t: Any) -> Any:
        return -jnp.sum(t * jax.nn.log_softmax(logits(ps, x), axis=-1)) / n

    grad = jax.grad(loss)

    def step(ps: Any, x: Any, t: Any) -> Any:
        g = grad(ps, x, t)
        return jax.tree_util.tree_map(lambda p, gp: p - RATE * gp, ps, g)

    def ready(out: Any) -> Any:
        return jax.block_until_ready(out)

    flat = lambda out: [a for pair in out for a in pair]  # noqa: E731
    eager = {
        "gradient": lambda: ready(grad(params, jx, jt)),
        "descent step": lambda: ready(step(params, jx, jt)),
        "run": lambda: ready(run(params, jx)),
        "_flat": flat,
    }
    jitted = {}
    compile_times = {}
    for name, fn, args in (("gradient", grad, (params, jx, jt)),
                           ("descent step", step, (params, jx, jt)),
                           ("run", run, (params, jx))):  # fmt: skip
        jf = jax.jit(fn)
        start = time.perf_counter()
        ready(jf(*args))
        compile_times[name] = time.perf_counter() - start
        jitted[name] = lambda jf=jf, args=args: ready(jf(*args))
    jitted["_flat"] = flat
    jitted["_compile"] = compile_times  # type: ignore[assignment]
    return eager, jitted


# --------------------------------------------------------------------------------------
# Running and checking.
# --------------------------------------------------------------------------------------


def _as_arrays(group: str, out: Any, flat: Callable[[Any], list[Any]] | None) -> list[Any]:
    if group == "run":
        return [to_numpy(out)]
    if isinstance(out, Network):
        return leaves(out)
    assert flat is not None
    return flat(out)


def run(report: Report, quick: bool) -> None:
    report.note(
        "MNIST tables: each time is an implementation's median over the interleaved "
        "rounds; each ratio is the median of the ratios measured within a round, which "
        "cancels the host's slow spells (a slow spell during the baseline's turn raises its "
        "median time, not the ratios), so on a noisy host the time column and the ratio "
        "column can disagree; the ratios are the measurement"
    )
    rng = np.random.default_rng(7)
    net = init_network(rng)
    for label, n in (("one sample", 1), (f"minibatch {BATCH}", BATCH)):
        if n == 1:
            x, t = rng.uniform(0.0, 1.0, SIZES[0]), np.eye(SIZES[-1])[3]
        else:
            x = rng.uniform(0.0, 1.0, (n, SIZES[0]))
            t = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], n)]
        group = f"MNIST 784-300-100-10, {label}"
        expected = {
            "gradient": leaves(numpy_grad(net, x, t)),
            "descent step": leaves(numpy_step(net, x, t)),
            "run": [numpy_run(net, x)],
        }
        baseline: Impl = {
            "gradient": lambda x=x, t=t: numpy_grad(net, x, t),
            "descent step": lambda x=x, t=t: numpy_step(net, x, t),
            "run": lambda x=x: numpy_run(net, x),
        }
        impls: dict[str, Impl] = {
            "hand-written NumPy": baseline,
            "hand-written NumPy, in place": {
                "descent step": lambda x=x, t=t: numpy_step_in_place(net, x, t),
            },
        }
        impls.update(hetgrad_impls(net, x, t))
        ag = autograd_impls(net, x, t)
        if ag is not None:
            impls["autograd"] = ag
        for fused, name in ((True, "PyTorch eager"), (False, "PyTorch eager, written out")):
            th = torch_impls(net, x, t, fused)
            if th is not None:
                impls[name] = th
        th_hand = torch_hand_impls(net, x, t)
        if th_hand is not None:
            impls["PyTorch tensors, hand-written backward (no autograd)"] = th_hand
        jx = jax_impls(net, x, t)
        if jx is not None:
            impls["JAX eager"], impls["jax.jit"] = jx
        for workload in ("gradient", "descent step", "run"):
            present = {name: impl for name, impl in impls.items() if workload in impl}
            for name, impl in present.items():
                _check(f"{group}, {workload}, {name}", workload, impl, impl[workload],
                       expected[workload])  # fmt: skip
            # Every implementation is timed in the same rounds; each ratio is the median of
            # the ratios within a round (see measure_rounds).
            rounds = measure_rounds({name: impl[workload] for name, impl in present.items()},
                                    min_time=0.02 if quick else 0.05,
                                    repeat=3 if quick else 15)  # fmt: skip
            base = rounds["hand-written NumPy"]
            for name, impl in present.items():
                seconds = statistics.median(rounds[name])
                if "_reset" in impl:
                    impl["_reset"]()
                extra: dict[str, Any] = {}
                if "_compile" in impl:
                    compile_s = impl["_compile"][workload]  # type: ignore[index]
                    extra["compile_seconds"] = round(compile_s, 4)
                    report.note(f"jax.jit compile time ({label}, {workload}): first call "
                                f"{compile_s * 1e3:.0f} ms (not in the table)")  # fmt: skip
                report.add(group, workload, name, seconds,
                           ratio=paired_ratio(rounds[name], base),
                           best_ratio=round(best_ratio(rounds[name], base), 3),
                           **extra)  # fmt: skip


def _check(what: str, workload: str, impl: Impl, fn: Callable[[], Any],
           expected: list[np.ndarray]) -> None:  # fmt: skip
    if workload == "descent step" and "_state" in impl:
        # PyTorch updates its parameters in place: check one step, then restore them.
        fn()
        got = impl["_state"]()
        impl["_reset"]()
        check_close(what, expected, got)
        return
    out = fn()
    check_close(what, expected, _as_arrays(workload, out, impl.get("_flat")))
