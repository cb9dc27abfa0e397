"""Data sets for the examples: MNIST from its IDX files, and the two-moons toy problem.

Randomness takes an ``rng=`` keyword (an int seed, a :class:`numpy.random.Generator` or
``None``), normalised with :func:`numpy.random.default_rng`; nothing seeds global state.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import time
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import DTypeLike

from .checkpoint import _atomic_file

__all__ = ["DatasetError", "Mnist", "MNIST_FILES", "MNIST_SHA256", "load_mnist", "make_moons"]

#: The four MNIST files, without the ``.gz`` suffix, in the order of :class:`Mnist`.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

#: Published SHA-256 checksums of the gzip-compressed MNIST files, checked on download.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971"
    ),
    "train-labels-idx1-ubyte.gz": (
        "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b"
    ),
}

_IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension
_SIDE = 28
_CHUNK = 1 << 16
#: Seconds a download may wait for its next bytes.
READ_TIMEOUT = 60
#: Seconds a whole file's download may take.
DOWNLOAD_DEADLINE = 30 * 60


class DatasetError(ValueError):
    """A data file that is corrupt, truncated or of the wrong kind, or a failed download."""


class Mnist(NamedTuple):
    """MNIST as returned by :func:`load_mnist`.

    Attributes:
        train_images: ``(60000, 784)`` floats in [0, 1], one flattened 28x28 image per row.
        train_labels: ``(60000,)`` int64 digits 0-9.
        test_images: ``(10000, 784)`` floats in [0, 1].
        test_labels: ``(10000,)`` int64 digits 0-9.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def load_mnist(
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    url: str | None = None,
    dtype: DTypeLike = np.float64,
) -> Mnist:
    """Read MNIST from the four standard IDX files in a folder.

    Each file (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``) may be stored raw or gzipped
    with a ``.gz`` suffix; the raw file wins if both exist.  Magic numbers (2051 for images,
    2049 for labels), image size (28x28), lengths and label values are checked.

    Args:
        path: the folder; defaults to the environment variable ``HETGRAD_MNIST``.
        download: fetch the files that are missing (as ``.gz``) from ``url``, check their
            SHA-256 against :data:`MNIST_SHA256` and write them atomically into ``path``
            (created if needed).  Files already present are not fetched.  A download fails
            when no bytes arrive for :data:`READ_TIMEOUT` seconds, or when one file takes
            longer than :data:`DOWNLOAD_DEADLINE`.
        url: the base URL of a mirror holding the four ``.gz`` files; needed for downloads.
        dtype: the float dtype of the images.

    Returns:
        A :class:`Mnist` of images scaled to [0, 1] with shape ``(n, 784)`` and int64 labels.

    Raises:
        FileNotFoundError: the folder or a file is missing (and not downloaded); the
            message says when the folder came from ``HETGRAD_MNIST``.
        NotADirectoryError: the folder is a file.
        DatasetError: a file is corrupt or truncated, a download fails (its checksum, the
            server, the network or the deadline), or no folder is given and
            ``HETGRAD_MNIST`` is unset.

    >>> import os
    >>> if os.environ.get("HETGRAD_MNIST"):
    ...     data = load_mnist()
    ...     assert data.train_images.shape == (60000, 784)
    """
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"load_mnist: dtype must be a float dtype, got {np.dtype(dtype)}")
    folder = _mnist_folder(path)
    origin = " (the folder HETGRAD_MNIST names)" if path is None else ""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"MNIST folder {folder}{origin} is a file, not a folder")
    if not download and not folder.exists():
        raise FileNotFoundError(f"MNIST folder {folder}{origin} not found: no such folder")
    if download:
        if url is None:
            raise DatasetError("load_mnist(download=True) needs url=, the base URL of a mirror")
        folder.mkdir(parents=True, exist_ok=True)
        for name in MNIST_FILES:
            if _find(folder, name) is None:
                _download(f"{url.rstrip('/')}/{name}.gz", folder / f"{name}.gz")
    files = []
    for name in MNIST_FILES:
        found = _find(folder, name)
        if found is None:
            raise FileNotFoundError(
                f"MNIST file {name} (or {name}.gz) not found in {folder}{origin}; "
                "pass download=True and url= to fetch it"
            )
        files.append(found)
    train_images = _read_images(files[0], dtype)
    train_labels = _read_labels(files[1], len(train_images))
    test_images = _read_images(files[2], dtype)
    test_labels = _read_labels(files[3], len(test_images))
    return Mnist(train_images, train_labels, test_images, test_labels)


def _mnist_folder(path: str | os.PathLike[str] | None) -> Path:
    if path is None:
        env = os.environ.get("HETGRAD_MNIST")
        if not env:
            raise DatasetError(
                "load_mnist: no folder given and the environment variable HETGRAD_MNIST is "
                "unset or empty; pass the folder holding the MNIST files or set HETGRAD_MNIST"
            )
        path = env
    return Path(path)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_bytes(file: Path) -> bytes:
    with open(file, "rb") as f:
        data = f.read()
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise DatasetError(f"{file}: corrupt or truncated gzip data ({e})") from None


def _parse_idx(file: Path, magic: int, ndim: int) -> tuple[tuple[int, ...], np.ndarray]:
    data = _read_bytes(file)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"{file}: truncated header ({len(data)} bytes, an IDX header here has {header})"
        )
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DatasetError(f"{file}: bad magic number {found}, expected {magic}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(dims)  # (Python ints: a huge header cannot overflow)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DatasetError(
            f"{file}: {what}: {len(data)} bytes, expected {expected} for dimensions {dims}"
        )
    return dims, np.frombuffer(data, dtype=np.uint8, offset=header)


def _read_images(file: Path, dtype: DTypeLike) -> np.ndarray:
    dims, pixels = _parse_idx(file, _IMAGES_MAGIC, 3)
    if dims[1:] != (_SIDE, _SIDE):
        raise DatasetError(
            f"{file}: images are {dims[1]}x{dims[2]} pixels, expected {_SIDE}x{_SIDE}"
        )
    images = pixels.reshape(dims[0], _SIDE * _SIDE).astype(dtype)
    images /= 255
    return images


def _read_labels(file: Path, count: int) -> np.ndarray:
    dims, labels = _parse_idx(file, _LABELS_MAGIC, 1)
    if dims[0] != count:
        raise DatasetError(f"{file}: {dims[0]} labels for {count} images")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"{file}: label {int(labels.max())} out of range 0-9")
    return labels.astype(np.int64)


def _download(url: str, dest: Path) -> None:
    """Fetch ``url`` into ``dest`` atomically, checking its length and SHA-256.

    A read that stalls for ``READ_TIMEOUT`` seconds fails, and so does a download still
    running after ``DOWNLOAD_DEADLINE`` seconds (a server trickling bytes would otherwise
    hold it forever).
    """
    import http.client  # imported here: only downloads need the network stack
    import urllib.request

    expected = MNIST_SHA256[dest.name]
    digest = hashlib.sha256()
    received = 0
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    chunk = b""
    with _atomic_file(dest) as out:
        try:
            with urllib.request.urlopen(url, timeout=READ_TIMEOUT) as response:
                length = _content_length(response.headers.get("Content-Length"))
                # (read1: whatever has arrived, so a trickle cannot outlast the deadline)
                while (chunk := response.read1(_CHUNK)) and time.monotonic() < deadline:
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
        except (OSError, ValueError, http.client.HTTPException) as e:  # ValueError: a bad URL
            raise DatasetError(f"download of {url} failed: {e}") from e
        if chunk:
            raise DatasetError(
                f"download of {url} too slow: {received} bytes in {DOWNLOAD_DEADLINE} s"
            )
        if length is not None and received != length:
            raise DatasetError(
                f"download of {url} incomplete: received {received} of {length} bytes"
            )
        if digest.hexdigest() != expected:
            raise DatasetError(
                f"download of {url} failed its checksum: SHA-256 {digest.hexdigest()}, "
                f"expected {expected}"
            )


def _content_length(header: str | None) -> int | None:
    """The Content-Length header's value, or None if absent or malformed (as
    ``http.client`` reads it: the SHA-256 check still guards the content)."""
    try:
        return int(header) if header is not None else None
    except ValueError:
        return None


def make_moons(
    n: int, noise: float = 0.1, rng: int | np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, the classic non-linearly-separable toy problem.

    Like scikit-learn's ``make_moons``: ``n // 2`` points on the upper half circle of radius
    1 centred at (0, 0), labelled -1, and the rest on the lower half circle centred at
    (1, 0.5), labelled +1; the points are shuffled, then Gaussian noise of standard
    deviation ``noise`` is added to both coordinates.

    Args:
        n: the number of points.
        noise: the standard deviation of the noise (0 for none).
        rng: an int seed, a :class:`numpy.random.Generator` or ``None`` (fresh entropy).

    Returns:
        ``(x, y)``: float64 points of shape ``(n, 2)`` and int64 labels -1/+1 of shape
        ``(n,)``.

    >>> x, y = make_moons(100, rng=0)
    >>> x.shape, y.shape, sorted(set(y.tolist()))
    ((100, 2), (100,), [-1, 1])
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"make_moons: n must be an int, got {n!r}")
    if n < 0:
        raise ValueError(f"make_moons: n must be non-negative, got {n}")
    if not isinstance(noise, (int, float, np.integer, np.floating)) or not noise >= 0 or (
        not np.isfinite(noise)
    ):
        raise ValueError(f"make_moons: noise must be a finite number >= 0, got {noise!r}")
    gen = np.random.default_rng(rng)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0.0, np.pi, n_out)
    t_in = np.linspace(0.0, np.pi, n_in)
    x = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], axis=1),
            np.stack([1.0 - np.cos(t_in), 0.5 - np.sin(t_in)], axis=1),
        ]
    )
    y = np.concatenate([-np.ones(n_out, np.int64), np.ones(n_in, np.int64)])
    order = gen.permutation(n)
    x, y = x[order], y[order]
    if noise:
        x = x + gen.normal(scale=noise, size=x.shape)
    return x, y
