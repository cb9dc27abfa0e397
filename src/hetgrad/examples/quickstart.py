"""The README's network, trained: a two-layer logistic network on a synthetic task.

Run ``python -m hetgrad.examples.quickstart``; it prints the loss falling as plain gradient
descent (``net - lr * grad``) trains the network with gradients from ``hetgrad.grad_bp``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

import numpy as np

import hetgrad
from hetgrad.examples import positive_float, positive_int


@dataclasses.dataclass(frozen=True)
class Network(hetgrad.Params):
    weight1: np.ndarray
    bias1: np.ndarray
    weight2: np.ndarray
    bias2: np.ndarray


def logistic(x: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-x))


def run_net(net: Network, x: np.ndarray) -> Any:
    hidden = logistic(net.weight1 @ x + net.bias1)
    return logistic(net.weight2 @ hidden + net.bias2)


def squared_error(target: np.ndarray, output: Any) -> Any:
    err = target - output
    return err @ err


def net_error(net: Network, x: np.ndarray, target: np.ndarray) -> Any:
    return squared_error(target, run_net(net, x))


def init_network(rng: np.random.Generator, n_in: int = 100, n_hidden: int = 20,
                 n_out: int = 5) -> Network:  # fmt: skip
    return Network(
        rng.uniform(-0.5, 0.5, size=(n_hidden, n_in)), np.zeros(n_hidden),
        rng.uniform(-0.5, 0.5, size=(n_out, n_hidden)), np.zeros(n_out),
    )  # fmt: skip


def make_task(
    rng: np.random.Generator, n: int, n_in: int = 100, n_out: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs near one of ``n_out`` prototypes; the target is the prototype's one-hot."""
    prototypes = rng.normal(size=(n_out, n_in))
    labels = rng.integers(0, n_out, size=n)
    xs = prototypes[labels] + 0.8 * rng.normal(size=(n, n_in))
    return xs, np.eye(n_out)[labels]


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=positive_int, default=5)
    parser.add_argument("--lr", type=positive_float, default=0.1)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    xs, targets = make_task(rng, 500)
    net = init_network(rng)

    def mean_loss(net: Network) -> float:
        return float(np.mean([net_error(net, x, t) for x, t in zip(xs, targets)]))

    gradient = hetgrad.grad(net_error)  # d(net_error)/d(net), a Network

    print(f"epoch 0: mean squared error {mean_loss(net):.4f}")
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        for i in rng.permutation(len(xs)):
            net = net - args.lr * gradient(net, xs[i], targets[i])
        print(f"epoch {epoch}: mean squared error {mean_loss(net):.4f}")
    print(f"{args.epochs * len(xs)} gradient steps in {time.perf_counter() - start:.2f} s")
    return mean_loss(net)


if __name__ == "__main__":
    main()
