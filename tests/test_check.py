"""check_grads: passes correct gradients over any structure, and fails wrong ones naming
the leaf path with the largest discrepancy."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import pytest

import hetgrad
from hetgrad.tape import primal


@dataclasses.dataclass
class Layer:
    w: np.ndarray
    b: float
    name: str = dataclasses.field(default="dense", metadata={"static": True})


def _bad_square() -> hetgrad.Primitive:
    p = hetgrad.primitive(lambda x: x * x)
    p.defvjp(lambda g, ans, x: 2.1 * x * g)  # deliberately wrong: 2.1 instead of 2
    return p


def _first_order_only_square() -> hetgrad.Primitive:
    p = hetgrad.primitive(lambda x: x * x)
    # right value, but built from the primal, so its own derivative is lost (zero)
    p.defvjp(lambda g, ans, x: g * 2.0 * primal(x))
    return p


def test_passes_on_mixed_structures_and_skips_static_leaves() -> None:
    def f(layer: Layer, extra: dict[str, Any], n: int) -> Any:
        h = np.tanh(layer.w @ extra["x"] + layer.b) ** n
        return np.sum(h) * extra["scale"][0] + len(layer.name)

    layer = Layer(np.arange(6.0).reshape(2, 3) / 10, 0.5)
    extra = {"x": np.array([1.0, -1.0, 0.5]), "scale": [2.0, "label"], "tag": None}
    hetgrad.check_grads(f, layer, extra, 2, order=2)


def test_float32_inputs_are_checked_in_float64() -> None:
    x = np.linspace(0.1, 1.0, 5, dtype=np.float32)
    hetgrad.check_grads(lambda v: np.sum(np.exp(v) * v), x, rtol=1e-6)


def test_non_scalar_outputs_are_projected() -> None:
    hetgrad.check_grads(lambda x: (np.sin(x), {"c": x * x}), np.array([0.1, 0.2, 0.3]), order=2)


def test_a_wrong_pullback_fails_and_names_the_path() -> None:
    bad = _bad_square()

    def f(p: dict[str, Any]) -> Any:
        return np.sum(p["good"] ** 2) + np.sum(bad(p["layers"][1].w))

    params = {"good": np.ones(2), "layers": [Layer(np.ones(2), 1.0), Layer(np.ones(3), 2.0)]}
    with pytest.raises(AssertionError) as info:
        hetgrad.check_grads(f, params)
    msg = str(info.value)
    assert "args[0]['layers'][1].w" in msg
    assert "good" not in msg
    ad, fd = (float(v) for v in re.findall(r"gives? (-?[\d.e+-]+)", msg))
    assert ad == pytest.approx(1.05 * fd, rel=1e-6)  # both values reported


def test_the_worst_leaf_is_named() -> None:
    bad = _bad_square()

    def f(a: float, b: float) -> Any:
        return bad(a) + bad(b)

    with pytest.raises(AssertionError, match=r"args\[1\]"):
        hetgrad.check_grads(f, 0.1, 10.0)  # b's error is 100 times larger


def test_order_two_catches_a_rule_that_is_not_differentiable() -> None:
    sq = _first_order_only_square()
    hetgrad.check_grads(lambda x: np.sum(sq(x)), np.array([1.0, 2.0]))  # first order is fine
    with pytest.raises(AssertionError, match=r"gradient of the gradient at args\[0\]"):
        hetgrad.check_grads(lambda x: np.sum(sq(x)), np.array([1.0, 2.0]), order=2)


def test_tolerances_and_rng() -> None:
    bad = _bad_square()
    hetgrad.check_grads(lambda x: bad(x), 1.0, rtol=0.1)  # 5% off passes a 10% tolerance
    with pytest.raises(AssertionError):
        hetgrad.check_grads(lambda x: bad(x), 1.0, rtol=0.01)
    for rng in (1, np.random.default_rng(2)):
        hetgrad.check_grads(lambda x: np.sum(np.cos(x)), np.array([0.3, 0.4]), rng=rng)


def test_order_three() -> None:
    hetgrad.check_grads(lambda x: np.sum(np.sin(x) * np.exp(x)), np.array([0.2, -0.4]), order=3)


def test_nothing_to_check() -> None:
    hetgrad.check_grads(lambda s: 2.0, "text")  # no float leaf, nothing mistaken: passes
    # Integers are constants: an integer point checks nothing, which is not a pass.
    wrong = hetgrad.op1(lambda x: (x * 2.0, lambda g: 100.0 * g))
    for point in (np.array([1, 2, 3]), 3):
        with pytest.raises(TypeError, match=r"checked nothing: args\[0\] is an integer"):
            hetgrad.check_grads(wrong, point)


def test_a_structure_holding_one_scalar_is_checked_too() -> None:
    hetgrad.check_grads(lambda x: {"loss": x**2}, 1.5)
    hetgrad.check_grads(lambda x: [np.sin(x)], 0.3, order=2)
    wrong = hetgrad.op1(lambda x: (x * x, lambda g: g * x))  # the gradient is 2 x g
    with pytest.raises(AssertionError):
        hetgrad.check_grads(lambda x: {"loss": wrong(x)}, 1.5)


def test_nothing_checkable_is_an_error_not_a_pass() -> None:
    class Vec:
        def __init__(self, a: Any) -> None:
            self.a = np.asarray(a, dtype=float)

        def __add__(self, other: Vec) -> Vec:
            return Vec(self.a + other.a)

    hetgrad.register_backprop(
        Vec, zero=lambda v: Vec(np.zeros_like(v.a)), add=lambda x, y: x + y,
        one=lambda v: Vec(np.ones_like(v.a)),
    )  # fmt: skip
    wrong = hetgrad.op1(lambda v: (float(v.a @ v.a), lambda g: Vec(100.0 * g * v.a)))
    with pytest.raises(TypeError, match=r"checked nothing: args\[0\] is a value of a registered"):
        hetgrad.check_grads(wrong, Vec([1.0, 2.0]))
    hetgrad.check_grads(lambda v, x: x * x, Vec([1.0]), 2.0)  # x is checked: no error
    with pytest.raises(TypeError, match="every float leaf of the point is empty"):
        hetgrad.check_grads(np.sum, np.ones(0))  # nothing to check is not a pass either


def test_integers_inside_a_structure_check_nothing_and_say_so() -> None:
    wrong = hetgrad.op1(lambda x: (x * 2.0, lambda g: 100.0 * g))
    for point, path in (({"x": np.array([1, 2])}, r"args\[0\]\['x'\]"),
                        ([np.array([1, 2])], r"args\[0\]\[0\]"), ({"x": 2}, r"args\[0\]\['x'\]"),
                        (np.array([True, False]), r"args\[0\]")):  # fmt: skip
        with pytest.raises(TypeError, match=f"checked nothing: {path} is an integer"):
            hetgrad.check_grads(lambda d: np.sum(wrong(_first(d))), point)


def _first(d: Any) -> Any:
    return d["x"] if isinstance(d, dict) else d[0] if isinstance(d, list) else d


def test_a_point_of_empty_arrays_checks_nothing_and_says_so() -> None:
    wrong = hetgrad.op1(lambda x: (np.sum(x), lambda g: g * np.ones_like(x) * 100.0))
    with pytest.raises(TypeError, match="every float leaf of the point is empty"):
        hetgrad.check_grads(wrong, np.zeros(0))
    with pytest.raises(TypeError, match="every float leaf of the point is empty"):
        hetgrad.check_grads(lambda d: wrong(d["x"]), {"x": np.zeros((0, 3))})
    hetgrad.check_grads(lambda a, b: np.sum(a) + np.sum(b), np.zeros(0), np.ones(2))  # one has


def test_a_point_where_f_is_not_finite_says_so() -> None:
    with np.errstate(invalid="ignore", divide="ignore"):
        with pytest.raises(AssertionError) as info:
            hetgrad.check_grads(np.sqrt, -1.0)
        msg = str(info.value)
        assert "cannot be checked" in msg
        assert "f is not finite at this point (its value is nan)" in msg
        assert "disagrees" not in msg and "|difference| nan" not in msg
        with pytest.raises(AssertionError, match=r"the point is not finite at args\[0\]\['x'\]"):
            hetgrad.check_grads(lambda d: np.sum(np.sin(d["x"])), {"x": np.array([0.5, np.nan])})
        # Finite at the point, but not within eps of it.
        with pytest.raises(AssertionError, match="f is not finite within eps = 1e-06"):
            hetgrad.check_grads(np.sqrt, 1e-7)
