"""Two moons: a small multilayer perceptron of scalar neurons learns a curved boundary.

The model is written neuron by neuron, as lists of Python floats in your own ``Neuron``,
``Layer`` and ``MLP`` dataclasses: an MLP with layers [2, 16, 16, 1], ReLU between layers
and none on the output, weights drawn uniform(-1, 1) and biases 0.  hetgrad differentiates
the hinge loss ``mean(relu(1 - y * score)) + 1e-4 * sum(p * p)`` through every scalar
operation and hands back an ``MLP`` of gradients.  Training runs 150 steps, each on a
fresh batch of 50 points, with learning rate ``1.0 - 0.9 * k / 150``; then the model is
tested on 1000 fresh points.  ``--vectorised`` trains the same model written with arrays.

Run ``python -m hetgrad.examples.moons --help``.  With ``--out DIR`` it writes
``moons.gif`` (the decision boundary during training) and ``moons.png`` (the final one).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import hetgrad
from hetgrad.allocator import keep_freed_memory
from hetgrad.datasets import make_moons
from hetgrad.examples import output_file, output_folder, positive_int


def relu(x: Any) -> Any:
    return x if x > 0.0 else 0.0


@dataclasses.dataclass(frozen=True)
class Neuron:
    w: list[float]
    b: float
    nonlin: bool = True

    def __call__(self, x: list[Any]) -> Any:
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return relu(act) if self.nonlin else act


@dataclasses.dataclass(frozen=True)
class Layer:
    neurons: list[Neuron]

    def __call__(self, x: list[Any]) -> Any:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out


@dataclasses.dataclass(frozen=True)
class MLP(hetgrad.Params):
    layers: list[Layer]

    def __call__(self, x: list[Any]) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Any]:
        return [p for layer in self.layers for n in layer.neurons for p in (*n.w, n.b)]


def init_mlp(sizes: list[int], rng: np.random.Generator) -> MLP:
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        nonlin = i < len(sizes) - 2
        layers.append(Layer([Neuron(rng.uniform(-1, 1, n_in).tolist(), 0.0, nonlin)
                             for _ in range(n_out)]))  # fmt: skip
    return MLP(layers)


def loss(model: MLP, xs: list[list[float]], ys: list[int]) -> tuple[Any, float]:
    """Hinge loss plus L2 regularisation; the accuracy rides along as aux."""
    scores = [model(x) for x in xs]
    data_loss = sum(relu(1.0 - y * s) for y, s in zip(ys, scores)) / len(ys)
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    accuracy = float(np.mean([(y > 0) == (s > 0.0) for y, s in zip(ys, scores)]))
    return data_loss + reg_loss, accuracy


# -- the same model with arrays ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Dense:
    w: np.ndarray  # (inputs, outputs)
    b: np.ndarray


@dataclasses.dataclass(frozen=True)
class VecMLP(hetgrad.Params):
    layers: tuple[Dense, ...]

    def __call__(self, x: Any) -> Any:
        *hidden, last = self.layers
        for layer in hidden:
            x = np.maximum(x @ layer.w + layer.b, 0.0)
        return (x @ last.w + last.b)[..., 0]


def to_vectorised(model: MLP) -> VecMLP:
    return VecMLP(tuple(
        Dense(np.array([n.w for n in layer.neurons]).T, np.array([n.b for n in layer.neurons]))
        for layer in model.layers
    ))  # fmt: skip


def vec_loss(model: VecMLP, xs: np.ndarray, ys: np.ndarray) -> tuple[Any, float]:
    scores = model(xs)
    data_loss = np.mean(np.maximum(1.0 - ys * scores, 0.0))
    reg_loss = 1e-4 * sum(np.sum(layer.w * layer.w) + np.sum(layer.b * layer.b)
                          for layer in model.layers)  # fmt: skip
    accuracy = float(np.mean((ys > 0) == (hetgrad.stop_gradient(scores) > 0)))
    return data_loss + reg_loss, accuracy


def accuracy_on(model: MLP | VecMLP, xs: np.ndarray, ys: np.ndarray) -> float:
    vec = model if isinstance(model, VecMLP) else to_vectorised(model)
    return float(np.mean((vec(xs) > 0) == (ys > 0)))


# -- training ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m hetgrad.examples.moons", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--steps", type=positive_int, default=150)
    parser.add_argument("--batch", type=positive_int, default=50, help="fresh points per step")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vectorised", action="store_true", help="train the array version")
    parser.add_argument("--out", type=output_folder, default=None,
                        help="folder for moons.gif and moons.png")
    parser.add_argument("--frame-every", type=positive_int,
                        default=5, help="steps between GIF frames")
    parser.add_argument("--metrics", type=output_file, default=None,
                        help="write final metrics as JSON here")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    keep_freed_memory()  # large temporaries every step: reuse memory, don't page-fault it

    from tqdm import tqdm

    rng = np.random.default_rng(args.seed)
    model: MLP | VecMLP = init_mlp([2, 16, 16, 1], rng)
    objective = loss
    if args.vectorised:
        model = to_vectorised(model)  # type: ignore[arg-type]
        objective = vec_loss  # type: ignore[assignment]
    value_and_grad = hetgrad.value_and_grad(objective, has_aux=True)
    frames: list[tuple[int, VecMLP, float]] = []
    start = time.perf_counter()
    with tqdm(range(args.steps), unit="step", disable=args.no_progress, dynamic_ncols=True) as bar:
        for k in bar:
            xs, ys = make_moons(args.batch, noise=0.1, rng=rng)
            batch = (xs, ys) if args.vectorised else (xs.tolist(), ys.tolist())
            (value, acc), grads = value_and_grad(model, *batch)
            rate = 1.0 - 0.9 * k / args.steps
            model = model - rate * grads
            bar.write(f"step {k:3d} loss {value:.4f}, accuracy {100 * acc:.0f}%")
            if args.out and (k % args.frame_every == 0 or k == args.steps - 1):
                frames.append((k, _as_vec(model), float(value)))
    seconds = time.perf_counter() - start
    test_x, test_y = make_moons(1000, noise=0.1, rng=rng)
    test_accuracy = accuracy_on(model, test_x, test_y)
    print(f"Test accuracy on 1000 fresh points: {100 * test_accuracy:.1f}% "
          f"({args.steps} steps in {seconds:.1f} s)")  # fmt: skip
    metrics = {
        "test_accuracy": test_accuracy,
        "final_loss": float(value),
        "steps": args.steps,
        "vectorised": args.vectorised,
        "seconds": round(seconds, 3),
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_gif(frames, out / "moons.gif", rng)
        write_png(_as_vec(model), test_x, test_y, out / "moons.png", test_accuracy)
        print(f"Wrote {out / 'moons.gif'} and {out / 'moons.png'}")
    if args.metrics:
        Path(args.metrics).write_text(json.dumps(metrics, indent=1))
    return metrics


def _as_vec(model: MLP | VecMLP) -> VecMLP:
    return model if isinstance(model, VecMLP) else to_vectorised(model)


# -- pictures ----------------------------------------------------------------------------


def _grid(n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xx, yy = np.meshgrid(np.linspace(-2.0, 3.0, n), np.linspace(-1.5, 2.0, n))
    return xx, yy, np.c_[xx.ravel(), yy.ravel()]


def _draw(ax: Any, model: VecMLP, xs: np.ndarray, ys: np.ndarray) -> None:
    import matplotlib.pyplot as plt

    xx, yy, points = _grid()
    z = (model(points) > 0).reshape(xx.shape)
    ax.contourf(xx, yy, z, cmap=plt.cm.Spectral, alpha=0.8)
    ax.scatter(xs[:, 0], xs[:, 1], c=ys, s=20, cmap=plt.cm.jet, edgecolors="k", linewidths=0.3)
    ax.set_xlim(xx.min(), xx.max())
    ax.set_ylim(yy.min(), yy.max())


def write_gif(
    frames: list[tuple[int, VecMLP, float]], path: Path, rng: np.random.Generator
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter

    xs, ys = make_moons(200, noise=0.1, rng=rng)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=80)

    def show(i: int) -> None:
        ax.clear()
        k, model, value = frames[i]
        _draw(ax, model, xs, ys)
        ax.set_title(f"step {k}, loss {value:.3f}")

    anim = FuncAnimation(fig, show, frames=len(frames))
    anim.save(str(path), writer=PillowWriter(fps=8))
    plt.close(fig)


def write_png(model: VecMLP, xs: np.ndarray, ys: np.ndarray, path: Path, accuracy: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.8), dpi=100)
    _draw(ax, model, xs, ys)
    ax.set_title(f"decision boundary, test accuracy {100 * accuracy:.1f}%")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
