"""Checkpoints: round trips of mixed structures, template checks, atomic saves."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

import hetgrad
from hetgrad.checkpoint import CheckpointError, load, save
from hetgrad.optim import adam, apply_updates


class Norm(NamedTuple):
    scale: np.ndarray
    eps: float
    kind: str


@dataclasses.dataclass
class Layer:
    weight: np.ndarray
    bias: float
    activation: str = "relu"
    units: int = 3
    table: np.ndarray = dataclasses.field(
        default_factory=lambda: np.array([1.0, 2.0]), metadata={"static": True}
    )


def model(seed: int, activation: str = "relu") -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "layers": [
            Layer(rng.normal(size=(3, 2)), float(rng.normal()), activation),
            Layer(rng.normal(size=(2, 1)).astype(np.float32), float(rng.normal()), activation),
        ],
        "norm": Norm(rng.normal(size=2), float(rng.normal()), "batch"),
        "extra": {"gain": np.float32(rng.normal()), "ids": np.array([3, 1]), "tags": ["a", 1.5]},
        "scalar": np.array(rng.normal()),
    }


def test_round_trip_of_a_mixed_structure(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    saved = model(0)
    save(path, saved)
    template = model(1, activation="tanh")
    got = load(path, like=template)
    assert got["layers"][0].activation == "tanh"  # static leaves come from the template
    assert got["extra"]["ids"] is template["extra"]["ids"]
    for a, b in zip(got["layers"], saved["layers"]):
        np.testing.assert_array_equal(a.weight, b.weight)
        assert a.weight.dtype == b.weight.dtype
        assert type(a.bias) is float and a.bias == b.bias
        assert a.units == 3
    assert got["layers"][1].weight.dtype == np.float32
    assert isinstance(got["norm"], Norm) and got["norm"].kind == "batch"
    np.testing.assert_array_equal(got["norm"].scale, saved["norm"].scale)
    assert type(got["norm"].eps) is float and got["norm"].eps == saved["norm"].eps
    assert (
        type(got["extra"]["gain"]) is np.float32 and got["extra"]["gain"] == saved["extra"]["gain"]
    )
    assert got["extra"]["tags"] == ["a", saved["extra"]["tags"][1]]
    assert got["scalar"].shape == () and got["scalar"] == saved["scalar"]


def test_file_is_an_npz_keyed_by_leaf_paths(tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    save(path, model(0))
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(
            [
                "layers.0.weight",
                "layers.0.bias",
                "layers.1.weight",
                "layers.1.bias",
                "norm.scale",
                "norm.eps",
                "extra.gain",
                "extra.tags.1",
                "scalar",
            ]
        )
        assert z["layers.1.weight"].dtype == np.float32
    save(tmp_path / "leaf.npz", np.arange(3.0))
    assert np.load(tmp_path / "leaf.npz").files == ["value"]
    assert load(tmp_path / "leaf.npz", like=np.zeros(3)).tolist() == [0.0, 1.0, 2.0]


def test_optimizer_state_resumes_exactly(tmp_path: Path) -> None:
    def grads(p: dict[str, Any]) -> dict[str, Any]:
        return hetgrad.grad_bp(lambda q: ((q["w"] - 3.0) ** 2).sum() + q["b"] ** 2, p)

    opt = adam(0.1)
    start = {"w": np.zeros(3, np.float32), "b": 1.0, "name": "toy"}

    def steps(p: dict[str, Any], state: Any, n: int) -> tuple[dict[str, Any], Any]:
        for _ in range(n):
            updates, state = opt.update(grads(p), state, p)
            p = apply_updates(p, updates)
        return p, state

    straight, _ = steps(start, opt.init(start), 6)
    p, state = steps(start, opt.init(start), 3)
    save(tmp_path / "run.npz", (p, state))
    p, state = load(tmp_path / "run.npz", like=(start, opt.init(start)))
    assert state.step == 3.0
    resumed, _ = steps(p, state, 3)
    np.testing.assert_array_equal(resumed["w"], straight["w"])
    assert resumed["b"] == straight["b"] and resumed["w"].dtype == np.float32


def test_template_with_an_extra_leaf(tmp_path: Path) -> None:
    save(tmp_path / "m.npz", model(0))
    template = model(0)
    template["layers"].append(Layer(np.zeros((1, 1)), 0.0))
    with pytest.raises(
        CheckpointError, match=r"no leaf layers\.2\.weight .*\(and 1 more missing\)"
    ):
        load(tmp_path / "m.npz", like=template)


def test_checkpoint_with_an_extra_leaf(tmp_path: Path) -> None:
    save(tmp_path / "m.npz", model(0))
    template = model(0)
    del template["norm"]
    with pytest.raises(CheckpointError, match=r"has a leaf norm\.eps that the template lacks"):
        load(tmp_path / "m.npz", like=template)


def test_shape_mismatch_names_the_path(tmp_path: Path) -> None:
    save(tmp_path / "m.npz", model(0))
    template = model(0)
    template["layers"][1].weight = np.zeros((2, 2), np.float32)
    with pytest.raises(
        CheckpointError, match=r"at layers\.1\.weight: shape \(2, 1\) in the checkpoint, \(2, 2\)"
    ):
        load(tmp_path / "m.npz", like=template)
    template = model(0)
    template["norm"] = template["norm"]._replace(eps=np.zeros(1))
    with pytest.raises(CheckpointError, match=r"at norm\.eps: shape \(\) in the checkpoint"):
        load(tmp_path / "m.npz", like=template)


def test_dtype_mismatch_names_the_path(tmp_path: Path) -> None:
    save(tmp_path / "m.npz", model(0))
    template = model(0)
    template["layers"][0].weight = template["layers"][0].weight.astype(np.float32)
    with pytest.raises(
        CheckpointError, match=r"at layers\.0\.weight: dtype float64 in the checkpoint, float32"
    ):
        load(tmp_path / "m.npz", like=template)
    template = model(0)
    template["extra"]["gain"] = 0.5  # a Python float is float64
    with pytest.raises(CheckpointError, match=r"at extra\.gain: dtype float32 in the checkpoint"):
        load(tmp_path / "m.npz", like=template)


def test_unreadable_and_unsafe_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.npz", like=1.0)
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="junk.npz: not a checkpoint") as e:
        load(tmp_path / "junk.npz", like=1.0)
    assert "pickle" not in str(e.value)  # (no advice to unpickle a file of unknown origin)
    np.save(tmp_path / "plain.npy", np.zeros(2))
    with pytest.raises(CheckpointError, match="not an .npz file"):
        load(tmp_path / "plain.npy", like=np.zeros(2))
    # Pickled object arrays are refused, never unpickled.
    np.savez(tmp_path / "pickled.npz", value=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="at value: dtype object in the checkpoint"):
        load(tmp_path / "pickled.npz", like=np.zeros(1))


def test_unsaveable_structures(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="share the checkpoint name 'a.b'"):
        save(tmp_path / "c.npz", {"a.b": 1.0, "a": {"b": 2.0}})

    class Money:
        def __init__(self, amount: float) -> None:
            self.amount = amount

    hetgrad.register_backprop(
        Money,
        zero=lambda m: Money(0.0),
        add=lambda a, b: Money(a.amount + b.amount),
        one=lambda m: Money(1.0),
    )
    with pytest.raises(CheckpointError, match="at wallet.1: a leaf of type .*Money"):
        save(tmp_path / "c.npz", {"wallet": [1.0, Money(2.0)]})
    assert not os.listdir(tmp_path)


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.npz"
    save(path, model(0))
    before = path.read_bytes()
    real_write = np.lib.format.write_array
    calls = []

    def failing(fp: Any, array: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            fp.write(b"\x93NUMPY partial")
            raise OSError("disk full")
        real_write(fp, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing)
    with pytest.raises(OSError, match="disk full"):
        save(path, model(1))
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # the temporary file is gone too
    got = load(path, like=model(1))
    np.testing.assert_array_equal(got["layers"][0].weight, model(0)["layers"][0].weight)


def test_crash_mid_save_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save(path, {"w": np.ones(1000), "b": 1.0})
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import os, numpy as np
        from hetgrad.checkpoint import save
        real = np.lib.format.write_array
        def crash(fp, array, **kwargs):
            real(fp, array, **kwargs)
            fp.flush()
            os._exit(3)  # the process dies with the file half written
        np.lib.format.write_array = crash
        save({str(path)!r}, {{"w": np.zeros(1000), "b": 2.0}})
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == 3, result.stderr.decode()
    assert path.read_bytes() == before
    assert load(path, like={"w": np.zeros(1000), "b": 0.0})["b"] == 1.0
    leftovers = [n for n in os.listdir(tmp_path) if n != "m.npz"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".m.npz.")


def test_saving_over_a_file_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save(path, {"x": 1.0})
    save(path, {"x": 2.0})
    assert load(path, like={"x": 0.0}) == {"x": 2.0}
    assert os.listdir(tmp_path) == ["m.npz"]
    assert zipfile.is_zipfile(path)


def test_a_truncated_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    save(path, {"w": np.arange(3.0)})
    broken = tmp_path / "broken.npz"
    broken.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="truncated"):
        load(broken, like={"w": np.zeros(3)})


def test_saving_into_a_missing_folder_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder") as info:
        save(tmp_path / "missing" / "c.npz", {"w": 1.0})
    assert "c.npz" in str(info.value) and ".tmp" not in str(info.value)


def test_a_leaf_named_like_a_member_file_loads_its_own_data(tmp_path: Path) -> None:
    # Inside the .npz the members are "a.npy" and "a.npy.npy"; NumPy's lookup by name
    # would read "a.npy" for both leaves.
    path = tmp_path / "c.npz"
    save(path, {"a": 1.0, "a.npy": 2.0})
    assert load(path, like={"a": 0.0, "a.npy": 0.0}) == {"a": 1.0, "a.npy": 2.0}


@pytest.mark.parametrize("key", ["x\0y", "bad\udc80"], ids=["NUL", "lone surrogate"])
def test_a_name_a_zip_file_cannot_hold_is_refused_at_save(tmp_path: Path, key: str) -> None:
    with pytest.raises(CheckpointError, match="cannot be stored in a checkpoint"):
        save(tmp_path / "c.npz", {key: 1.0})
    assert os.listdir(tmp_path) == []


def test_a_masked_array_is_refused_not_stripped_of_its_mask(tmp_path: Path) -> None:
    masked = np.ma.masked_array([1.0, 2.0], mask=[False, True])
    with pytest.raises(CheckpointError, match="at m: a masked array"):
        save(tmp_path / "c.npz", {"m": masked})
    save(tmp_path / "c.npz", {"m": np.ones(2)})
    with pytest.raises(CheckpointError, match="at m: a masked array"):
        load(tmp_path / "c.npz", like={"m": masked})


def test_a_damaged_header_is_reported_before_anything_is_allocated(tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)}
    )
    with zipfile.ZipFile(tmp_path / "c.npz", "w") as zf:
        zf.writestr("w.npy", header.getvalue())
    with pytest.raises(CheckpointError, match=r"at w: shape \(1099511627776,\) in the checkpoint"):
        load(tmp_path / "c.npz", like={"w": np.zeros(3)})


def test_corrupt_compressed_data_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez_compressed(path, w=np.arange(1000.0))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("w.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(start + 8, start + 40):  # the deflate stream's block headers
        data[k] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="at w: unreadable array"):
        load(path, like={"w": np.zeros(1000)})


def test_saving_over_a_file_keeps_its_mode_and_a_symlink(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    save(path, {"w": 1.0})
    os.chmod(path, 0o600)
    link = tmp_path / "latest.npz"
    link.symlink_to(path)
    save(link, {"w": 2.0})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert link.is_symlink() and load(path, like={"w": 0.0}) == {"w": 2.0}
    assert sorted(os.listdir(tmp_path)) == ["c.npz", "latest.npz"]


def test_a_long_file_name_that_fits_can_be_saved(tmp_path: Path) -> None:
    path = tmp_path / ("c" * 250 + ".npz")  # 254 bytes: the temporary must fit too
    save(path, {"w": 1.0})
    assert load(path, like={"w": 0.0}) == {"w": 1.0}


def test_any_damaged_byte_is_a_checkpoint_error_or_harmless(tmp_path: Path) -> None:
    # Damaged flag, method or version fields make zipfile raise RuntimeError ("encrypted")
    # or NotImplementedError; a reader falling back to an older checkpoint catches
    # CheckpointError only.
    path, damaged = tmp_path / "c.npz", tmp_path / "d.npz"
    tree = {"w": np.arange(6.0).reshape(2, 3), "h": np.float16(1.5), "s": 0.25}
    save(path, tree)
    data = path.read_bytes()
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        damaged.write_bytes(bytes(flipped))
        try:
            got = load(damaged, like=tree)
        except CheckpointError:
            continue
        assert np.array_equal(got["w"], tree["w"]) and got["h"] == tree["h"], i
        assert got["s"] == tree["s"], i
