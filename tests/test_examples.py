"""The runnable examples run end to end, write their pictures, and learn.

The full-size targets (MNIST >= 94% after one epoch, moons >= 99%, Adam lowest over 1000
epochs) take minutes; they are marked ``slow`` and run with ``pytest -m slow``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hetgrad.examples import mnist, moons, quickstart, regression

MNIST = os.environ.get("HETGRAD_MNIST")
needs_mnist = pytest.mark.skipif(
    not MNIST, reason="HETGRAD_MNIST is not set (a folder with the four MNIST IDX files)"
)


def _png_ok(path: Path) -> None:
    assert path.exists() and path.stat().st_size > 5000
    with Image.open(path) as im:
        assert im.size[0] > 300 and im.size[1] > 200


def test_quickstart_loss_falls(capsys: pytest.CaptureFixture[str]) -> None:
    final = quickstart.main(["--epochs", "2", "--seed", "1"])
    out = capsys.readouterr().out
    first = float(out.splitlines()[0].rsplit(" ", 1)[1])
    assert final < 0.2 * first


def test_moons_in_full(tmp_path: Path) -> None:
    metrics = moons.main(["--out", str(tmp_path), "--metrics", str(tmp_path / "m.json"),
                          "--no-progress", "--frame-every", "15"])  # fmt: skip
    assert metrics["test_accuracy"] >= 0.99
    written = json.loads((tmp_path / "m.json").read_text())
    assert written["test_accuracy"] == metrics["test_accuracy"]
    _png_ok(tmp_path / "moons.png")
    with Image.open(tmp_path / "moons.gif") as gif:
        assert gif.n_frames == 11


def test_moons_vectorised() -> None:
    metrics = moons.main(["--vectorised", "--no-progress"])
    assert metrics["test_accuracy"] >= 0.97


def test_regression_reduced(tmp_path: Path) -> None:
    metrics = regression.main(["--epochs", "150", "--out", str(tmp_path), "--no-progress",
                               "--metrics", str(tmp_path / "m.json")])  # fmt: skip
    assert set(metrics) >= {"final_loss_sgd", "final_loss_momentum", "final_loss_adam", "seconds"}
    assert metrics["final_loss_adam"] < metrics["final_loss_sgd"]
    _png_ok(tmp_path / "regression_fits.png")
    _png_ok(tmp_path / "regression_curves.png")


@needs_mnist
def test_mnist_reduced(tmp_path: Path) -> None:
    metrics = mnist.main(["--limit", "3000", "--chunk", "1500", "--out", str(tmp_path),
                          "--no-progress", "--metrics", str(tmp_path / "m.json")])  # fmt: skip
    assert metrics["train_points"] == 3000
    assert metrics["test_accuracy"] > 0.80
    _png_ok(tmp_path / "mnist_errors.png")


@needs_mnist
def test_mnist_minibatches() -> None:
    metrics = mnist.main(["--limit", "6000", "--batch-size", "16", "--rate", "0.3",
                          "--no-progress"])  # fmt: skip
    assert metrics["test_accuracy"] > 0.80


def test_mnist_without_data_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.delenv("HETGRAD_MNIST", raising=False)
    with pytest.raises(SystemExit) as e:
        mnist.main(["--data", str(tmp_path / "nowhere")])
    assert e.value.code == 2
    assert "cannot load MNIST" in capsys.readouterr().err


def tiny_mnist(folder: Path, n_train: int = 50, n_test: int = 20) -> str:
    """Four IDX files of random images and labels in ``folder``, for fast runs."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8).tobytes()
        labels = rng.integers(0, 10, n, dtype=np.uint8).tobytes()
        for kind, magic, dims, payload in (("images-idx3", 2051, (n, 28, 28), images),
                                           ("labels-idx1", 2049, (n,), labels)):  # fmt: skip
            header = b"".join(d.to_bytes(4, "big") for d in (magic, *dims))
            (folder / f"{prefix}-{kind}-ubyte").write_bytes(header + payload)
    return str(folder)


def test_mnist_batches_ignore_the_report_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches run across report points; only the epoch's last batch is smaller (was: a
    # batch was cut at every --chunk boundary, so --chunk 5 made every batch 5 points).
    sizes = []

    def spy(net: Any, x: Any, targets: Any) -> Any:
        sizes.append(len(targets))
        return error(net, x, targets)

    error = mnist.net_error
    monkeypatch.setattr(mnist, "net_error", spy)
    metrics = mnist.main(["--data", tiny_mnist(tmp_path), "--batch-size", "8", "--chunk", "5",
                          "--arch", "784-10", "--no-progress"])  # fmt: skip
    assert sizes == [8] * 6 + [2] and metrics["train_points"] == 50


def test_an_interrupted_mnist_run_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_mnist(tmp_path)
    args = ["--data", data, "--epochs", "2", "--batch-size", "4", "--chunk", "12",
            "--arch", "784-16-10", "--rate", "0.1", "--no-progress"]  # fmt: skip
    straight = mnist.main(args + ["--checkpoint", str(tmp_path / "straight.npz")])

    calls = []
    error_rate = mnist.error_rate

    def interrupt_at_the_fifth_report(*a: Any) -> float:
        calls.append(1)
        if len(calls) == 9:  # two calls per report: while the fifth one is evaluated
            raise KeyboardInterrupt
        return error_rate(*a)

    resumed = args + ["--checkpoint", str(tmp_path / "resumed.npz")]
    monkeypatch.setattr(mnist, "error_rate", interrupt_at_the_fifth_report)
    with pytest.raises(SystemExit) as e:
        mnist.main(resumed)
    assert e.value.code == 130
    assert "resumed.npz holds the run after 48 points" in capsys.readouterr().err
    monkeypatch.setattr(mnist, "error_rate", error_rate)
    again = mnist.main(resumed)
    assert "[Epoch 1] resumed after 48 points" in capsys.readouterr().out
    assert {k: v for k, v in again.items() if "seconds" not in k} == {
        k: v for k, v in straight.items() if "seconds" not in k
    }
    with np.load(tmp_path / "straight.npz") as a, np.load(tmp_path / "resumed.npz") as b:
        assert a.files == b.files
        for name in a.files:
            if name != "seconds":
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize(
    ("change", "message"),
    [(["--rate", "0.2"], "other options (--rate 0.1 there, 0.2 here)"),
     (["--arch", "784-32-10"], "run.npz: at net.layers.0.weights: shape (784, 16) in the")],
)  # fmt: skip
def test_resuming_with_other_options_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: list[str], message: str
) -> None:
    args = ["--data", tiny_mnist(tmp_path), "--arch", "784-16-10", "--rate", "0.1",
            "--no-progress", "--checkpoint", str(tmp_path / "run.npz")]  # fmt: skip
    mnist.main(args)
    before = (tmp_path / "run.npz").read_bytes()
    with pytest.raises(SystemExit) as e:
        mnist.main(args + change)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert (tmp_path / "run.npz").read_bytes() == before


# -- the full-size targets (minutes): pytest -m slow -------------------------------------


@pytest.mark.slow
@needs_mnist
def test_target_mnist_one_epoch() -> None:
    assert mnist.main(["--no-progress"])["test_accuracy"] >= 0.94


@pytest.mark.slow
@needs_mnist
def test_target_mnist_blog_network() -> None:
    metrics = mnist.main(["--arch", "784-250-10", "--limit", "35000", "--no-progress"])
    assert metrics["test_accuracy"] >= 0.93


@pytest.mark.slow
def test_target_moons_and_regression() -> None:
    assert moons.main(["--no-progress"])["test_accuracy"] >= 0.99
    m = regression.main(["--no-progress"])
    assert m["final_loss_adam"] < min(m["final_loss_sgd"], m["final_loss_momentum"])


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [(moons, ["--steps", "0"], "--steps: must be at least 1, got 0"),
     (moons, ["--batch", "0"], "--batch: must be at least 1"),
     (moons, ["--frame-every", "0"], "--frame-every: must be at least 1"),
     (mnist, ["--limit", "0"], "--limit: must be at least 1"),
     (mnist, ["--chunk", "x"], "--chunk: 'x' is not a whole number"),
     (mnist, ["--batch-size", "-2"], "--batch-size: must be at least 1, got -2"),
     (regression, ["--epochs", "0"], "--epochs: must be at least 1"),
     (regression, ["--rate", "nan"], "--rate: must be a finite number above 0, got nan"),
     (mnist, ["--rate", "-0.1"], "--rate: must be a finite number above 0"),
     (quickstart, ["--lr", "inf"], "--lr: must be a finite number above 0"),
     (mnist, ["--arch", "784-10-x"], "--arch must look like 784-300-100-10"),
     (regression, ["--metrics", "{missing}/m.json"], "no folder"),
     (moons, ["--metrics", "{tmp}"], "is a folder, not a file"),
     (regression, ["--out", "{file}"], "exists and is not a folder")],
)  # fmt: skip
def test_bad_options_are_usage_errors_before_any_training(
    module: Any, args: list[str], message: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    (tmp_path / "file").write_text("")
    paths = {"missing": tmp_path / "missing", "tmp": tmp_path, "file": tmp_path / "file"}
    with pytest.raises(SystemExit) as e:
        module.main([a.format(**paths) for a in args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written
