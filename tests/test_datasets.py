"""Datasets: IDX reading on synthetic files, corrupt files, downloads from a loopback
server, the real MNIST files when available, and make_moons."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hetgrad import datasets
from hetgrad.datasets import MNIST_FILES, DatasetError, load_mnist, make_moons

TRAIN_N, TEST_N = 6, 4


def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + payload


def synthetic(seed: int = 0) -> dict[str, bytes]:
    """Raw contents of the four files for a tiny MNIST-shaped data set."""
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", TRAIN_N), ("t10k", TEST_N)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[0, 0, 0], images[0, 0, 1] = 0, 255
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        out[f"{prefix}-images-idx3-ubyte"] = idx_bytes(2051, (n, 28, 28), images.tobytes())
        out[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(2049, (n,), labels.tobytes())
    return out


def write(folder: Path, files: dict[str, bytes], gz: bool | set[str] = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        zipped = gz if isinstance(gz, bool) else name in gz
        if zipped:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def expected_arrays(files: dict[str, bytes]) -> list[np.ndarray]:
    out = []
    for name in MNIST_FILES:
        data = files[name]
        if "images" in name:
            out.append(np.frombuffer(data[16:], np.uint8).reshape(-1, 784) / 255.0)
        else:
            out.append(np.frombuffer(data[8:], np.uint8).astype(np.int64))
    return out


@pytest.mark.parametrize("gz", [False, True, {"train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}])
def test_round_trip(tmp_path: Path, gz: Any) -> None:
    files = synthetic()
    write(tmp_path, files, gz)
    data = load_mnist(tmp_path)
    assert isinstance(data, datasets.Mnist)
    assert data.train_images.shape == (TRAIN_N, 784) and data.test_images.shape == (TEST_N, 784)
    assert data.train_images.dtype == np.float64 and data.train_labels.dtype == np.int64
    for got, want in zip(data, expected_arrays(files)):
        np.testing.assert_array_equal(got, want)
    assert data.train_images.min() == 0.0 and data.train_images.max() == 1.0


def test_dtype_option_and_raw_file_preferred(tmp_path: Path) -> None:
    files = synthetic()
    write(tmp_path, files)
    write(tmp_path, synthetic(seed=1), gz=True)  # the raw files win
    data = load_mnist(str(tmp_path), dtype=np.float32)
    assert data.train_images.dtype == np.float32
    np.testing.assert_allclose(data.train_images, expected_arrays(files)[0], rtol=1e-6)
    with pytest.raises(ValueError, match="float dtype"):
        load_mnist(tmp_path, dtype=np.int32)


def test_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, synthetic())
    monkeypatch.setenv("HETGRAD_MNIST", str(tmp_path))
    assert load_mnist().train_labels.shape == (TRAIN_N,)
    monkeypatch.delenv("HETGRAD_MNIST")
    with pytest.raises(DatasetError, match="HETGRAD_MNIST is unset or empty"):
        load_mnist()


def corrupt(name: str, files: dict[str, bytes]) -> tuple[str, bytes]:
    """One corrupted file of the data set: (file name, new content)."""
    images, labels = files["train-images-idx3-ubyte"], files["train-labels-idx1-ubyte"]
    return {
        "bad image magic": ("train-images-idx3-ubyte", idx_bytes(2049, (6, 28, 28), images[16:])),
        "bad label magic": ("train-labels-idx1-ubyte", idx_bytes(2051, (6,), labels[8:])),
        "wrong dims": ("train-images-idx3-ubyte", idx_bytes(2051, (6, 28, 27), images[16:-168])),
        "truncated data": ("train-images-idx3-ubyte", images[:-5]),
        "truncated header": ("t10k-labels-idx1-ubyte", files["t10k-labels-idx1-ubyte"][:6]),
        "trailing bytes": ("train-labels-idx1-ubyte", labels + b"\x00"),
        "label count": ("train-labels-idx1-ubyte", idx_bytes(2049, (5,), labels[8:-1])),
        "label range": ("t10k-labels-idx1-ubyte", idx_bytes(2049, (4,), bytes([1, 2, 10, 3]))),
        "huge dims": ("train-images-idx3-ubyte", idx_bytes(2051, (2**32 - 1,) * 3, images[16:])),
    }[name]


@pytest.mark.parametrize(
    "kind, message",
    [
        ("bad image magic", "bad magic number 2049, expected 2051"),
        ("bad label magic", "bad magic number 2051, expected 2049"),
        ("wrong dims", "28x27 pixels, expected 28x28"),
        ("truncated data", r"truncated: 4715 bytes, expected 4720"),
        ("truncated header", "truncated header"),
        ("trailing bytes", "trailing bytes"),
        ("label count", "5 labels for 6 images"),
        ("label range", "label 10 out of range"),
        ("huge dims", f"expected {16 + (2**32 - 1) ** 3} for"),  # (no int64 overflow)
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_files_are_named(tmp_path: Path, kind: str, message: str, gz: bool) -> None:
    files = synthetic()
    name, content = corrupt(kind, files)
    files[name] = content
    write(tmp_path, files, gz)
    with pytest.raises(DatasetError, match=message) as info:
        load_mnist(tmp_path)
    assert name in str(info.value)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    write(tmp_path, synthetic(), gz=True)
    target = tmp_path / "t10k-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-20])
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        load_mnist(tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    files = synthetic()
    del files["t10k-labels-idx1-ubyte"]
    write(tmp_path, files)
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.*not found"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere not found: no such folder"):
        load_mnist(tmp_path / "nowhere")


def test_a_wrong_hetgrad_mnist_folder_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HETGRAD_MNIST", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere .the folder HETGRAD_MNIST names. not"):
        load_mnist()
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("HETGRAD_MNIST", str(tmp_path / "a-file"))
    with pytest.raises(NotADirectoryError, match="a-file .the folder HETGRAD_MNIST names. is a"):
        load_mnist(download=True, url="http://127.0.0.1:9")
    monkeypatch.setenv("HETGRAD_MNIST", str(tmp_path))  # the parent of the right folder
    with pytest.raises(FileNotFoundError, match="ubyte.gz. not found in .*HETGRAD_MNIST names"):
        load_mnist()


# --------------------------------------------------------------------------------------
# Downloads from a loopback server.
# --------------------------------------------------------------------------------------


class Server:
    """An HTTP server on 127.0.0.1 serving ``files``; ``short`` names files it cuts off."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.short: set[str] = set()
        self.drip: set[str] = set()  # sent a byte at a time, slowly
        self.length_header: dict[str, str] = {}  # a Content-Length other than the true one
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(self.path)
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", server.length_header.get(name, str(len(body))))
                self.end_headers()
                if name in server.drip:
                    try:
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(0.01)
                    except (BrokenPipeError, ConnectionResetError):
                        return  # the client gave up, as it should
                elif name in server.short:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/mnist"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server holding the synthetic .gz files, whose checksums the loader expects."""
    s = Server()
    for name, data in synthetic().items():
        s.files[f"{name}.gz"] = gzip.compress(data, mtime=0)
    checksums = {name: hashlib.sha256(body).hexdigest() for name, body in s.files.items()}
    monkeypatch.setattr(datasets, "MNIST_SHA256", checksums)
    try:
        yield s
    finally:
        s.close()


def test_download_all(tmp_path: Path, server: Server) -> None:
    folder = tmp_path / "new" / "mnist"
    data = load_mnist(folder, download=True, url=server.url + "/")
    for got, want in zip(data, expected_arrays(synthetic())):
        np.testing.assert_array_equal(got, want)
    assert sorted(server.requests) == sorted(f"/mnist/{n}.gz" for n in MNIST_FILES)
    assert sorted(os.listdir(folder)) == sorted(f"{n}.gz" for n in MNIST_FILES)
    # Everything present now: nothing more is fetched.
    load_mnist(folder, download=True, url=server.url)
    assert len(server.requests) == 4


def test_download_fetches_only_missing_files(tmp_path: Path, server: Server) -> None:
    files = synthetic()
    write(tmp_path, {n: files[n] for n in MNIST_FILES[:2]})
    load_mnist(tmp_path, download=True, url=server.url)
    assert sorted(server.requests) == sorted(f"/mnist/{n}.gz" for n in MNIST_FILES[2:])


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, server: Server) -> None:
    name = "t10k-images-idx3-ubyte.gz"
    server.files[name] = gzip.compress(synthetic(seed=5)["t10k-images-idx3-ubyte"])
    with pytest.raises(DatasetError, match=f"{name} failed its checksum"):
        load_mnist(tmp_path, download=True, url=server.url)
    # The files fetched before the bad one are kept (they were verified); nothing else.
    assert sorted(os.listdir(tmp_path)) == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]


def test_partial_download_leaves_nothing(tmp_path: Path, server: Server) -> None:
    server.short.add("train-labels-idx1-ubyte.gz")
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz incomplete: received"):
        load_mnist(tmp_path, download=True, url=server.url)
    assert os.listdir(tmp_path) == ["train-images-idx3-ubyte.gz"]


def test_truncated_file_on_the_mirror_fails_checksum(tmp_path: Path, server: Server) -> None:
    # Served completely (the length matches), but the mirror's copy is cut short.
    name = "train-images-idx3-ubyte.gz"
    server.files[name] = server.files[name][:-100]
    with pytest.raises(DatasetError, match="failed its checksum"):
        load_mnist(tmp_path, download=True, url=server.url)
    assert os.listdir(tmp_path) == []


def test_download_errors(tmp_path: Path, server: Server) -> None:
    del server.files["t10k-labels-idx1-ubyte.gz"]
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz failed: HTTP Error 404"):
        load_mnist(tmp_path, download=True, url=server.url)
    assert not (tmp_path / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    with pytest.raises(DatasetError, match="needs url="):
        load_mnist(tmp_path, download=True)


def test_a_malformed_length_header_is_ignored(tmp_path: Path, server: Server) -> None:
    # As http.client reads it: the checksum still guards the content.
    for name in MNIST_FILES:
        server.length_header[f"{name}.gz"] = "12x, 12"
    data = load_mnist(tmp_path, download=True, url=server.url)
    np.testing.assert_array_equal(data[1], expected_arrays(synthetic())[1])


def test_a_bad_url_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="download of http://\\[::1/.* failed"):
        load_mnist(tmp_path, download=True, url="http://[::1")
    assert os.listdir(tmp_path) == []


def test_a_trickling_server_meets_the_deadline(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "DOWNLOAD_DEADLINE", 0.3)
    server.drip.add("train-images-idx3-ubyte.gz")
    start = time.monotonic()
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz too slow"):
        load_mnist(tmp_path, download=True, url=server.url)
    assert time.monotonic() - start < 5.0
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------------
# The real files.
# --------------------------------------------------------------------------------------

REAL = os.environ.get("HETGRAD_MNIST")


@pytest.mark.skipif(not REAL, reason="set HETGRAD_MNIST to a folder with the MNIST files")
def test_real_mnist() -> None:
    data = load_mnist()
    assert data.train_images.shape == (60000, 784) and data.test_images.shape == (10000, 784)
    assert data.train_labels.shape == (60000,) and data.test_labels.shape == (10000,)
    for images in (data.train_images, data.test_images):
        assert images.min() == 0.0 and images.max() == 1.0
    for labels in (data.train_labels, data.test_labels):
        assert set(np.unique(labels).tolist()) == set(range(10))
    # Roughly a tenth of each digit, and the published first training label (a 5).
    assert np.bincount(data.train_labels).min() > 5000
    assert data.train_labels[0] == 5


@pytest.mark.skipif(not REAL, reason="set HETGRAD_MNIST to a folder with the MNIST files")
def test_real_checksums_match_table() -> None:
    folder = Path(str(REAL))
    for name, expected in datasets.MNIST_SHA256.items():
        if (folder / name).exists():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == expected


# --------------------------------------------------------------------------------------
# make_moons.
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 7, 100])
def test_moons_shapes_and_labels(n: int) -> None:
    x, y = make_moons(n, rng=0)
    assert x.shape == (n, 2) and x.dtype == np.float64
    assert y.shape == (n,) and y.dtype == np.int64
    assert np.sum(y == -1) == n // 2 and np.sum(y == 1) == n - n // 2


def test_moons_geometry_without_noise() -> None:
    x, y = make_moons(200, noise=0.0, rng=1)
    outer, inner = x[y == -1], x[y == 1]
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0)
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1.0, inner[:, 1] - 0.5), 1.0)
    assert outer[:, 1].min() >= 0.0 and inner[:, 1].max() <= 0.5
    assert outer[:, 0].min() == pytest.approx(-1.0) and inner[:, 0].max() == pytest.approx(2.0)
    assert not np.all(np.diff(y) >= 0)  # shuffled


def test_moons_determinism_and_noise() -> None:
    a = make_moons(50, rng=3)
    b = make_moons(50, rng=np.random.default_rng(3))
    c = make_moons(50, rng=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    clean = make_moons(2000, noise=0.0, rng=0)
    noisy = make_moons(2000, noise=0.1, rng=0)
    np.testing.assert_array_equal(clean[1], noisy[1])
    assert np.std(noisy[0] - clean[0]) == pytest.approx(0.1, rel=0.1)


def test_moons_leaves_global_state_alone() -> None:
    before = np.random.get_state()[1].copy()
    x1, _ = make_moons(10)
    x2, _ = make_moons(10)
    assert not np.array_equal(x1, x2)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    with pytest.raises(ValueError, match="non-negative"):
        make_moons(-1)
