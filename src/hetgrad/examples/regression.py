"""Regression: fit exp(sin(2x)) from noisy samples, comparing SGD, momentum and Adam.

Forty noisy samples of ``f(x) = exp(sin(2x))`` (eight evenly spaced points in [-3, 3],
each repeated five times, noise of standard deviation 0.1) are fitted by a 1-50-1 network
with logistic hidden units and a linear output, minimising the Gaussian negative
log-likelihood of the targets (unit variance, averaged over the samples).  The same
initial network (parameters normal with variance 0.1) is trained for 1000 full-batch
epochs by each of plain gradient descent, momentum (with the schedule
``mu_k = min(0.999, 1 - 1 / (2 (k // 250 + 1)))``) and Adam, all with learning rate 0.05,
using ``hetgrad.optim``.

Run ``python -m hetgrad.examples.regression --help``.  With ``--out DIR`` it writes
``regression_fits.png`` and ``regression_curves.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

import hetgrad
from hetgrad import optim
from hetgrad.allocator import keep_freed_memory
from hetgrad.examples import output_file, output_folder, positive_float, positive_int


def target_function(x: np.ndarray) -> np.ndarray:
    return np.exp(np.sin(2.0 * x))


@dataclasses.dataclass(frozen=True)
class Net:
    w1: np.ndarray  # (1, 50)
    b1: np.ndarray  # (50,)
    w2: np.ndarray  # (50, 1)
    b2: np.ndarray  # (1,)


def predict(net: Net, x: Any) -> Any:
    """Network means for inputs of shape (n, 1)."""
    hidden = 1.0 / (1.0 + np.exp(-(x @ net.w1 + net.b1)))
    return hidden @ net.w2 + net.b2


def negative_log_likelihood(net: Net, x: np.ndarray, y: np.ndarray) -> Any:
    """Mean Gaussian negative log-likelihood, unit variance."""
    residual = y - predict(net, x)
    return np.mean(0.5 * residual * residual) + 0.5 * np.log(2.0 * np.pi)


def make_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = np.tile(np.linspace(-3.0, 3.0, 8), 5)[:, None]
    return x, target_function(x) + rng.normal(0.0, 0.1, size=x.shape)


def init_net(rng: np.random.Generator, hidden: int = 50) -> Net:
    """Parameters drawn from a normal distribution of variance 0.1."""
    sd = np.sqrt(0.1)
    return Net(rng.normal(0, sd, (1, hidden)), rng.normal(0, sd, hidden),
               rng.normal(0, sd, (hidden, 1)), rng.normal(0, sd, 1))  # fmt: skip


def train(opt: optim.GradientTransformation, net: Net, x: np.ndarray, y: np.ndarray,
          epochs: int, bar: Any) -> tuple[Net, list[float]]:  # fmt: skip
    value_and_grad = hetgrad.value_and_grad(negative_log_likelihood)
    state = opt.init(net)
    losses = []
    for _ in range(epochs):
        value, grads = value_and_grad(net, x, y)
        updates, state = opt.update(grads, state, net)
        net = optim.apply_updates(net, updates)
        losses.append(float(value))
        bar.update(1)
    losses.append(float(negative_log_likelihood(net, x, y)))
    return net, losses


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m hetgrad.examples.regression", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--epochs", type=positive_int, default=1000)
    parser.add_argument("--rate", type=positive_float, default=0.05, help="learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=output_folder, default=None,
                        help="folder for the PNGs")
    parser.add_argument("--metrics", type=output_file, default=None,
                        help="write final metrics as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    keep_freed_memory()  # large temporaries every step: reuse memory, don't page-fault it

    from tqdm import tqdm

    rng = np.random.default_rng(args.seed)
    x, y = make_data(rng)
    net0 = init_net(rng)
    optimizers = {
        "sgd": optim.sgd(args.rate),
        "momentum": optim.momentum(args.rate, optim.goal_momentum(0.999)),
        "adam": optim.adam(args.rate),
    }
    fits: dict[str, Net] = {}
    curves: dict[str, list[float]] = {}
    start = time.perf_counter()
    with tqdm(total=len(optimizers) * args.epochs, unit="epoch", disable=args.no_progress,
              dynamic_ncols=True) as bar:  # fmt: skip
        for name, opt in optimizers.items():
            bar.set_description(name)
            fits[name], curves[name] = train(opt, net0, x, y, args.epochs, bar)
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {f"final_loss_{n}": c[-1] for n, c in curves.items()}
    metrics["epochs"] = args.epochs
    metrics["seconds"] = round(seconds, 3)
    for name, curve in curves.items():
        print(f"{name:>8}: final negative log-likelihood {curve[-1]:.4f}")
    finite = [n for n in curves if math.isfinite(curves[n][-1])]
    if finite:
        best = min(finite, key=lambda n: curves[n][-1])
        print(f"Lowest: {best} ({3 * args.epochs} epochs in {seconds:.1f} s)")
    else:
        print(f"Every optimizer diverged (try a smaller --rate than {args.rate})")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        plot(x, y, fits, curves, out)
        print(f"Wrote {out / 'regression_fits.png'} and {out / 'regression_curves.png'}")
    if args.metrics:
        Path(args.metrics).write_text(json.dumps(metrics, indent=1))
    return metrics


def plot(x: np.ndarray, y: np.ndarray, fits: dict[str, Net], curves: dict[str, list[float]],
         out: Path) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"sgd": "tab:blue", "momentum": "tab:orange", "adam": "tab:green"}
    grid = np.linspace(-3.2, 3.2, 300)[:, None]
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=100)
    ax.plot(grid, target_function(grid), "k--", lw=1.5, label="exp(sin 2x)")
    ax.scatter(x, y, s=16, c="k", alpha=0.6, label="40 noisy samples")
    for name, net in fits.items():
        ax.plot(grid, predict(net, grid), color=colors[name], lw=2, label=name)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("1-50-1 network fits after training")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "regression_fits.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=100)
    for name, curve in curves.items():
        ax.plot(np.arange(len(curve)), curve, color=colors[name], lw=2, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative log-likelihood")
    ax.set_title("Training curves")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "regression_curves.png")
    plt.close(fig)


if __name__ == "__main__":
    main()
