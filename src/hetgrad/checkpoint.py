"""Saving and loading structures of arrays and floats as ``.npz`` files.

A checkpoint holds one array per differentiable leaf, named by the leaf's key path joined
with dots (``layers.0.weight``; a structure that is a single leaf is stored as ``value``).
Static leaves are not stored: :func:`load` takes them, and the containers, from a template.
Optimizer states from :mod:`hetgrad.optim` are structures too, so they are saved the same
way.

>>> import dataclasses, os, tempfile, numpy as np
>>> @dataclasses.dataclass
... class Layer:
...     weight: np.ndarray
...     bias: float
...     activation: str = "tanh"
>>> net = {"layers": [Layer(np.ones((2, 3)), 0.5)]}
>>> with tempfile.TemporaryDirectory() as folder:
...     path = os.path.join(folder, "net.npz")
...     save(path, net)
...     restored = load(path, like={"layers": [Layer(np.zeros((2, 3)), 0.0)]})
>>> restored["layers"][0].bias, restored["layers"][0].weight.sum()
(0.5, np.float64(6.0))
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np

from .tree import TreeDef, flatten, leaf_keys, unflatten

__all__ = ["CheckpointError", "save", "load"]

T = TypeVar("T")

#: The name of the array of a structure that is itself a single leaf.
ROOT_NAME = "value"


class CheckpointError(ValueError):
    """A checkpoint that cannot be written, or does not match its template."""


def _names(td: TreeDef) -> list[str]:
    names = [".".join(str(k) for k in keys) or ROOT_NAME for keys in leaf_keys(td)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise CheckpointError(
                f"two leaves share the checkpoint name {name!r} (keys whose text contains a "
                "dot, or keys like 1 and '1'); rename one"
            )
        if "\0" in name or not name.isprintable() and _unencodable(name):
            raise CheckpointError(
                f"the leaf name {name!r} cannot be stored in a checkpoint (a NUL character, "
                "or text that is not valid Unicode); rename its key"
            )
        seen.add(name)
    return names


def _unencodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _expected_dtype(name: str, leaf: Any) -> np.dtype:
    if isinstance(leaf, np.ma.MaskedArray):
        raise CheckpointError(
            f"at {name}: a masked array cannot be checkpointed (its mask would be lost); "
            "store its data and its mask as two leaves"
        )
    dtype = np.asarray(leaf).dtype
    if dtype.kind != "f":
        raise CheckpointError(
            f"at {name}: a leaf of type {type(leaf).__qualname__} cannot be checkpointed; "
            "only floats and float arrays can"
        )
    return dtype


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A new file next to ``path`` that replaces ``path`` only once fully written.

    On a clean exit the file is flushed, fsynced and moved over ``path`` with
    :func:`os.replace`; on an exception it is removed and ``path`` is left as it was.
    """
    dest = Path(os.path.realpath(path))  # through a symlink: replace its target, keep it
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"{dest}: no such folder: {dest.parent}")
    # (The name is shortened: the temporary must fit where a name of 255 bytes fits.)
    tmp = dest.with_name(f".{dest.name[:200]}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            yield f
            f.flush()
            with contextlib.suppress(FileNotFoundError):  # a file replaced keeps its mode
                os.chmod(f.fileno(), stat.S_IMODE(os.stat(dest).st_mode))
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable (POSIX only)
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save(path: str | os.PathLike[str], tree: Any) -> None:
    """Write the differentiable leaves of ``tree`` to the ``.npz`` file ``path``, atomically.

    The file is written next to ``path`` and moved over it once complete, so a crash
    mid-save leaves any previous checkpoint intact.  ``path`` is used exactly as given (no
    suffix is added).

    Args:
        path: the file to write.
        tree: any structure whose differentiable leaves are floats, NumPy float scalars or
            float arrays; static leaves are skipped.

    Raises:
        CheckpointError: a leaf is of a registered type, or two leaves' names collide.

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save(os.path.join(folder, "w.npz"), {"w": [1.0, 2.0], "name": "net"})
    ...     with np.load(os.path.join(folder, "w.npz")) as z:
    ...         sorted(z.files)
    ['w.0', 'w.1']
    """
    leaves, td = flatten(tree)
    names = _names(td)
    arrays = [np.asarray(x) for x in leaves]
    for name, x in zip(names, leaves):
        _expected_dtype(name, x)
    with _atomic_file(path) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
        for name, a in zip(names, arrays):
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, a, allow_pickle=False)


def load(path: str | os.PathLike[str], *, like: T) -> T:
    """Read a checkpoint written by :func:`save` into the structure of ``like``.

    Every differentiable leaf of the template must have a stored array of the same name,
    shape and dtype, and the file must hold nothing else.  Float leaves come back as Python
    floats, NumPy scalars as scalars of their type, arrays as arrays; static leaves and the
    containers come from the template.

    Args:
        path: the ``.npz`` file.
        like: a template of the expected structure (its leaves' values are not used).

    Returns:
        The stored values in the structure of ``like``.

    Raises:
        FileNotFoundError: there is no file at ``path``.
        CheckpointError: the file is unreadable, or differs from the template; the message
            names the leaf path that differs.

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     save(os.path.join(folder, "w.npz"), {"w": np.arange(3.0), "lr": 0.1})
    ...     load(os.path.join(folder, "w.npz"), like={"w": np.zeros(3), "lr": 0.0})
    {'w': array([0., 1., 2.]), 'lr': 0.1}
    """
    template, td = flatten(like)
    names = _names(td)
    expected = [_expected_dtype(name, x) for name, x in zip(names, template)]
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except zipfile.BadZipFile as e:
        raise CheckpointError(
            f"{path}: not a checkpoint: not an .npz file, or a truncated one ({e})"
        ) from e
    except (OSError, RuntimeError) as e:  # RuntimeError: damaged version fields, see below
        raise CheckpointError(f"{path}: unreadable checkpoint ({e})") from e
    with archive:
        # Members are looked up by their exact names (NumPy's NpzFile would take the
        # member "a.npy" for a leaf named "a.npy" as well as for one named "a").
        members = archive.namelist()
        stored = {m[: -len(".npy")] for m in members if m.endswith(".npy")}
        missing = [n for n in names if n not in stored]
        if missing:
            raise CheckpointError(
                f"{path}: the checkpoint has no leaf {missing[0]} that the template has"
                + (f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else "")
            )
        extra = sorted(set(members).difference(n + ".npy" for n in names))
        if extra:
            raise CheckpointError(
                f"{path}: the checkpoint has a leaf {extra[0].removesuffix('.npy')} that the "
                "template lacks" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
            )
        out = [
            _restore(path, name, leaf, dtype, archive)
            for name, leaf, dtype in zip(names, template, expected)
        ]
    return unflatten(td, out)


# What a damaged member can raise while it is read (RuntimeError and NotImplementedError:
# zipfile's answer to damaged flag, method or version fields, e.g. "is encrypted").
_UNREADABLE = (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error)


def _restore(
    path: str | os.PathLike[str], name: str, leaf: Any, dtype: np.dtype, archive: zipfile.ZipFile
) -> Any:
    """The stored leaf ``name``, checked against the template's ``leaf``, as its type.

    The array's header is checked first, so a damaged header claiming a huge shape is
    reported, never allocated."""
    try:
        with archive.open(name + ".npy") as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, stored = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, stored = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        if shape != np.shape(leaf):
            raise CheckpointError(
                f"{path}: at {name}: shape {shape} in the checkpoint, "
                f"{np.shape(leaf)} in the template"
            )
        if stored != dtype:
            raise CheckpointError(
                f"{path}: at {name}: dtype {stored} in the checkpoint, {dtype} in the template"
            )
        with archive.open(name + ".npy") as member:
            a = np.lib.format.read_array(member, allow_pickle=False)
    except _UNREADABLE as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: at {name}: unreadable array ({e})") from e
    t = type(leaf)
    if t is float:
        return float(a)
    if isinstance(leaf, np.ndarray):
        return a if t is np.ndarray else a.view(t)
    return t(a[()])
