"""Handwritten digits: a multilayer perceptron trained on MNIST with hetgrad's gradients.

The network is written the way you would write it without hetgrad: your own ``Layer``
and ``Network`` dataclasses and NumPy code, with logistic hidden layers and a softmax
output scored by cross-entropy (``hetgrad.nn``'s fused, numerically stable versions).
``hetgrad.grad`` turns the loss into a function returning a ``Network`` of gradients, and
plain stochastic gradient descent (``net - rate * grad``) trains it, one sample per step by
default.  The training set is shuffled each epoch and cut into batches (the last one of an
epoch may be smaller); after every 5000 points (``--chunk``, rounded up to whole batches)
the example prints how long they took and the training and validation error.  With
``--checkpoint PATH`` it saves the run after each report and, run again with the same
options, resumes it from there: an interrupted run ends exactly as an uninterrupted one.

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
from hetgrad import checkpoint, nn
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


def report_steps(n: int, batch_size: int, chunk: int) -> list[int]:
    """The numbers of gradient steps into an epoch after which the example reports: each
    time at least ``chunk`` points have passed since the last report, and at the end."""
    steps, last = [], 0
    for step in range(1, -(-n // batch_size) + 1):
        end = min(step * batch_size, n)
        if end - last >= chunk or end == n:
            steps.append(step)
            last = end
    return steps


#: The options a run is resumed with, in the order of a checkpoint's ``options`` array.
RESUMED_OPTIONS = ("--seed", "--batch-size", "--rate", "--chunk", "training images", "--epochs")


def resume(path: str, like: dict[str, Any]) -> dict[str, Any]:
    """The state saved in ``path``, which must be a run of the same network and options."""
    try:
        state = checkpoint.load(path, like=like)
    except (OSError, ValueError) as e:
        print(f"mnist: cannot resume from {path}: {e}\nPass the options of the run that "
              "saved it, or another --checkpoint.", file=sys.stderr)  # fmt: skip
        raise SystemExit(2) from None
    differ = [f"{name} {old:g} there, {new:g} here"
              for name, old, new in zip(RESUMED_OPTIONS, state["options"], like["options"])
              if old != new]  # fmt: skip
    if differ:
        print(f"mnist: cannot resume from {path}: it is a run with other options ("
              f"{'; '.join(differ)}); pass the same options, or another --checkpoint.",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    return state


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
    parser.add_argument("--checkpoint", type=output_file, default=None,
                        help="save the run here after each report, and resume from it if it "
                        "exists (an interrupted run continues exactly where it was saved)")
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
    n, size = len(train_x), args.batch_size
    rng = np.random.default_rng(args.seed)
    net = init_network(args.arch, rng)
    reports = report_steps(n, size, args.chunk)
    state: dict[str, Any] = {
        "net": net,
        # one row per report: points seen, training error, validation error (NaN: not yet)
        "history": np.full((args.epochs * len(reports), 3), np.nan),
        "seconds": 0.0,
        "options": np.array([args.seed, size, args.rate, args.chunk, n, args.epochs], float),
    }
    if args.checkpoint and Path(args.checkpoint).exists():
        state = resume(args.checkpoint, state)
    net, history = state["net"], state["history"]
    done = int(np.count_nonzero(~np.isnan(history[:, 0])))  # reports made so far
    gradient = hetgrad.grad(net_error)
    arch = "-".join(map(str, args.arch))
    print(f"Training a {arch} network on {n} images, batch size {size}, "
          f"learning rate {args.rate}")  # fmt: skip

    from tqdm import tqdm

    seen = saved = int(history[done - 1, 0]) if done else 0
    start = time.perf_counter() - state["seconds"]
    bar = tqdm(total=args.epochs * n, initial=seen, unit="img", disable=args.no_progress,
               dynamic_ncols=True)  # fmt: skip
    try:
        for epoch in range(args.epochs):
            order = rng.permutation(n)  # (drawn for finished epochs too: the same stream)
            first = done - epoch * len(reports)  # reports already made in this epoch
            if first >= len(reports):
                continue
            step = reports[first - 1] if first > 0 else 0
            bar.write(f"[Epoch {epoch + 1}]" + (f" resumed after {seen} points" if first else ""))
            for r in range(first, len(reports)):
                t0 = time.perf_counter()
                trained = order[step * size : reports[r] * size]
                for k in range(step, reports[r]):
                    idx = order[k * size : (k + 1) * size]
                    if size == 1:
                        x, t = train_x[idx[0]], targets[idx[0]]
                    else:
                        x, t = train_x[idx], targets[idx]
                    net = net - args.rate * gradient(net, x, t)
                    bar.update(len(idx))
                step = reports[r]
                took = time.perf_counter() - t0
                seen = epoch * n + min(step * size, n)
                train_err = error_rate(net, train_x[trained], train_y[trained])
                test_err = error_rate(net, data.test_images, data.test_labels)
                history[done] = (seen, train_err, test_err)
                done += 1
                if args.checkpoint:
                    state.update(net=net, seconds=time.perf_counter() - start)
                    checkpoint.save(args.checkpoint, state)
                    saved = seen
                bar.write(f"(Chunk {r + 1}) trained on {len(trained)} points in {took:.2f} s; "
                          f"training error {100 * train_err:.2f}%, "
                          f"validation error {100 * test_err:.2f}%")  # fmt: skip
    except KeyboardInterrupt:
        bar.close()
        if not args.checkpoint:
            raise
        print(f"mnist: interrupted; {args.checkpoint} holds the run after {saved} points: "
              "run the same command to resume it", file=sys.stderr)  # fmt: skip
        raise SystemExit(130) from None
    bar.close()
    seconds = time.perf_counter() - start
    test_accuracy = 1.0 - float(history[-1, 2])
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


def plot_errors(history: np.ndarray, out: Path, arch: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    points, train_err, test_err = history.T
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
