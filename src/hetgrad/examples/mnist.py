"""Handwritten digits: a multilayer perceptron trained on MNIST with hetgrad's gradients.

The network is written the way you would write it without hetgrad: your own ``Layer``
and ``Network`` dataclasses and NumPy code, with logistic hidden layers and a softmax
output scored by cross-entropy (``hetgrad.nn``'s fused, numerically stable versions).
``hetgrad.grad`` turns the loss into a function returning a ``Network`` of gradients, and
plain stochastic gradient descent (``net - rate * grad``) trains it, one sample per step by
default.  The training set is shuffled each epoch and processed in chunks of 5000; after
each chunk the example prints how long the chunk took and the training and validation
error.

Run ``python -m hetgrad.examples.mnist --help``.  The data is read from ``--data`` or the
folder named by the environment variable ``HETGRAD_MNIST`` (the four standard IDX files).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import hetgrad
from hetgrad import nn
from hetgrad.allocator import keep_freed_memory
from hetgrad.datasets import load_mnist
from hetgrad.examples import output_file, output_folder, positive_float, positive_int


@dataclasses.dataclass(frozen=True)
class Layer:
    weights: np.ndarray  # (inputs, outputs)
    biases: np.ndarray  # (outputs,)


@dataclasses.dataclass(frozen=True)
class Network(hetgrad.Params):
    layers: tuple[Layer, ...]


def run_net(net: Network, x: Any) -> Any:
    """The output layer's logits (softmax gives the class probabilities) for one image
    (784,) or a batch (n, 784)."""
    *hidden, output = net.layers
    for layer in hidden:
        x = nn.logistic(x @ layer.weights + layer.biases)
    return x @ output.weights + output.biases


def net_error(net: Network, x: np.ndarray, targets: np.ndarray) -> Any:
    """Cross-entropy of softmax(logits) against one-hot targets, averaged over a batch."""
    n = targets.shape[0] if targets.ndim == 2 else 1
    return nn.cross_entropy(run_net(net, x), targets) / n


def init_network(sizes: list[int], rng: np.random.Generator) -> Network:
    return Network(tuple(
        Layer(rng.uniform(-0.5, 0.5, (n_in, n_out)), rng.uniform(-0.5, 0.5, n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ))  # fmt: skip


def error_rate(net: Network, images: np.ndarray, labels: np.ndarray) -> float:
    predictions = np.argmax(hetgrad.eval_bp(run_net, net, images), axis=1)
    return float(np.mean(predictions != labels))


def parse_arch(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split("-")]
    except ValueError:
        sizes = []
    if len(sizes) < 2 or sizes[0] != 784 or sizes[-1] != 10 or min(sizes) < 1:
        raise argparse.ArgumentTypeError("--arch must look like 784-300-100-10")
    return sizes


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m hetgrad.examples.mnist", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--arch", type=parse_arch, default=[784, 300, 100, 10],
                        help="layer sizes (default 784-300-100-10; the blog's is 784-250-10)")
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--batch-size", type=positive_int,
                        default=1, help="samples per gradient step")
    parser.add_argument("--rate", type=positive_float, default=0.02, help="learning rate")
    parser.add_argument("--chunk", type=positive_int,
                        default=5000, help="report after this many points")
    parser.add_argument("--limit", type=positive_int,
                        default=None, help="use the first N training images")
    parser.add_argument("--data", default=None, help="folder of the MNIST files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=output_folder, default=None,
                        help="folder for the error-curve PNG")
    parser.add_argument("--metrics", type=output_file, default=None,
                        help="write final metrics as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    keep_freed_memory()  # large temporaries every step: reuse memory, don't page-fault it

    try:
        data = load_mnist(args.data)
    except (OSError, ValueError) as e:
        print(f"mnist: cannot load MNIST: {e}\nPoint --data or HETGRAD_MNIST at a folder "
              "with the four IDX files.", file=sys.stderr)  # fmt: skip
        raise SystemExit(2) from None
    train_x, train_y = data.train_images, data.train_labels
    if args.limit is not None:
        train_x, train_y = train_x[: args.limit], train_y[: args.limit]
    targets = np.eye(10)[train_y]
    rng = np.random.default_rng(args.seed)
    net = init_network(args.arch, rng)
    gradient = hetgrad.grad(net_error)
    arch = "-".join(map(str, args.arch))
    print(f"Training a {arch} network on {len(train_x)} images, batch size {args.batch_size}, "
          f"learning rate {args.rate}")  # fmt: skip

    from tqdm import tqdm

    history: list[tuple[int, float, float]] = []
    seen = 0
    start = time.perf_counter()
    bar = tqdm(total=args.epochs * len(train_x), unit="img", disable=args.no_progress,
               dynamic_ncols=True)  # fmt: skip
    for epoch in range(1, args.epochs + 1):
        bar.write(f"[Epoch {epoch}]")
        order = rng.permutation(len(train_x))
        for c, chunk_start in enumerate(range(0, len(order), args.chunk), 1):
            chunk = order[chunk_start : chunk_start + args.chunk]
            t0 = time.perf_counter()
            for i in range(0, len(chunk), args.batch_size):
                idx = chunk[i : i + args.batch_size]
                if args.batch_size == 1:
                    x, t = train_x[idx[0]], targets[idx[0]]
                else:
                    x, t = train_x[idx], targets[idx]
                net = net - args.rate * gradient(net, x, t)
                bar.update(len(idx))
            took = time.perf_counter() - t0
            seen += len(chunk)
            train_err = error_rate(net, train_x[chunk], train_y[chunk])
            test_err = error_rate(net, data.test_images, data.test_labels)
            history.append((seen, train_err, test_err))
            bar.write(f"(Chunk {c}) trained on {len(chunk)} points in {took:.2f} s; "
                      f"training error {100 * train_err:.2f}%, "
                      f"validation error {100 * test_err:.2f}%")  # fmt: skip
    bar.close()
    seconds = time.perf_counter() - start
    test_accuracy = 1.0 - history[-1][2]
    metrics = {
        "test_accuracy": test_accuracy,
        "train_points": seen,
        "epochs": args.epochs,
        "arch": arch,
        "batch_size": args.batch_size,
        "seconds": round(seconds, 3),
        "seconds_per_epoch": round(seconds / args.epochs, 3),
    }
    print(f"Test accuracy {100 * test_accuracy:.2f}% after {seen} training points "
          f"({seconds:.1f} s, {seconds / args.epochs:.1f} s per epoch)")  # fmt: skip
    if args.out:
        path = plot_errors(history, Path(args.out), arch)
        print(f"Wrote {path}")
    if args.metrics:
        Path(args.metrics).write_text(json.dumps(metrics, indent=1))
    return metrics


def plot_errors(history: list[tuple[int, float, float]], out: Path, arch: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    points, train_err, test_err = (np.array(v) for v in zip(*history))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(points, 100 * train_err, "o-", label="training error (last chunk)")
    ax.plot(points, 100 * test_err, "s-", label="validation error (10,000 test images)")
    ax.set_xlabel("training points seen")
    ax.set_ylabel("error (%)")
    ax.set_title(f"MNIST, {arch} network, SGD")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out / "mnist_errors.png"
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
