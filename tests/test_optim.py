"""Optimizers: update rules against an independent calculation, first steps by hand,
schedules, static leaves and dtypes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import hetgrad
from hetgrad.optim import (
    AdamState,
    MomentumState,
    SgdState,
    adam,
    apply_updates,
    goal_momentum,
    linear_schedule,
    momentum,
    sgd,
)


class Pair(NamedTuple):
    left: np.ndarray
    right: float


@dataclasses.dataclass
class Model:
    weight: np.ndarray
    bias: float
    blocks: list[Any]
    name: str
    size: int
    index: np.ndarray
    act: Callable[[Any], Any] = np.tanh
    frozen: np.ndarray = dataclasses.field(
        default_factory=lambda: np.array([7.0, 8.0]), metadata={"static": True}
    )


def make_model(rng: np.random.Generator) -> Model:
    return Model(
        weight=rng.normal(size=(3, 2)),
        bias=float(rng.normal()),
        blocks=[Pair(rng.normal(size=4), float(rng.normal())), {"scale": rng.normal(size=())}],
        name="net",
        size=3,
        index=np.array([0, 2, 1]),
    )


def to_vector(m: Model) -> np.ndarray:
    """The model's differentiable numbers, in an order of our own choosing."""
    return np.concatenate(
        [
            m.weight.ravel(),
            [m.bias],
            m.blocks[0].left,
            [m.blocks[0].right],
            np.ravel(m.blocks[1]["scale"]),
        ]
    )


def from_vector(v: np.ndarray, like: Model) -> Model:
    return dataclasses.replace(
        like,
        weight=v[:6].reshape(3, 2),
        bias=float(v[6]),
        blocks=[Pair(v[7:11].copy(), float(v[11])), {"scale": np.array(v[12])}],
    )


# Independent reference implementations over a flat vector, straight from the equations.


def ref_sgd(p: np.ndarray, gs: list[np.ndarray], lr: Callable[[int], float]) -> np.ndarray:
    for k, g in enumerate(gs):
        p = p - lr(k) * g
    return p


def ref_momentum(
    p: np.ndarray, gs: list[np.ndarray], lr: Callable[[int], float], mu: Callable[[int], float]
) -> np.ndarray:
    v = np.zeros_like(p)
    for k, g in enumerate(gs):
        v = lr(k) * g + mu(k) * v
        p = p - v
    return p


def ref_adam(
    p: np.ndarray,
    gs: list[np.ndarray],
    lr: Callable[[int], float],
    b1: float,
    b2: float,
    eps: float,
) -> np.ndarray:
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for k, g in enumerate(gs):
        t = k + 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        mhat = m / (1 - b1**t)
        vhat = v / (1 - b2**t)
        p = p - lr(k) * mhat / (np.sqrt(vhat) + eps)
    return p


def run(opt: hetgrad.optim.GradientTransformation, params: Model, grads: list[Model]) -> Model:
    state = opt.init(params)
    for g in grads:
        updates, state = opt.update(g, state, params)
        params = apply_updates(params, updates)
    return params


def lr_schedule(k: int) -> float:
    return 0.1 / (1 + k)


@pytest.mark.parametrize(
    "name, make, reference",
    [
        ("sgd constant", lambda: sgd(0.05), lambda p, gs: ref_sgd(p, gs, lambda k: 0.05)),
        ("sgd schedule", lambda: sgd(lr_schedule), lambda p, gs: ref_sgd(p, gs, lr_schedule)),
        (
            "momentum constant",
            lambda: momentum(0.05, 0.9),
            lambda p, gs: ref_momentum(p, gs, lambda k: 0.05, lambda k: 0.9),
        ),
        (
            "momentum schedules",
            lambda: momentum(lr_schedule, lambda k: 0.5 + 0.04 * k),
            lambda p, gs: ref_momentum(p, gs, lr_schedule, lambda k: 0.5 + 0.04 * k),
        ),
        (
            "adam defaults",
            lambda: adam(0.01),
            lambda p, gs: ref_adam(p, gs, lambda k: 0.01, 0.9, 0.999, 1e-8),
        ),
        (
            "adam custom",
            lambda: adam(lr_schedule, b1=0.5, b2=0.9, eps=1e-3),
            lambda p, gs: ref_adam(p, gs, lr_schedule, 0.5, 0.9, 1e-3),
        ),
    ],
)
def test_rule_matches_reference_step_by_step(name: str, make: Any, reference: Any) -> None:
    rng = np.random.default_rng(0)
    params = make_model(rng)
    grads = [dataclasses.replace(make_model(rng), name="net") for _ in range(12)]
    opt = make()
    state = opt.init(params)
    p = params
    for k in range(len(grads)):
        updates, state = opt.update(grads[k], state, p)
        p = apply_updates(p, updates)
        expected = reference(to_vector(params), [to_vector(g) for g in grads[: k + 1]])
        np.testing.assert_allclose(to_vector(p), expected, rtol=1e-12, atol=1e-15)
        assert state.step == k + 1


def test_sgd_first_step_by_hand() -> None:
    opt = sgd(0.1)
    state = opt.init({"x": 1.0})
    assert state == SgdState(0.0)
    updates, state = opt.update({"x": 3.0}, state)
    assert updates["x"] == pytest.approx(-0.3)
    assert apply_updates({"x": 1.0}, updates)["x"] == pytest.approx(0.7)


def test_momentum_first_steps_by_hand() -> None:
    opt = momentum(0.1, 0.9)
    p = [1.0, np.array([1.0, -1.0])]
    state = opt.init(p)
    assert state.velocity[0] == 0.0 and np.all(state.velocity[1] == 0.0)
    # k = 0: v = 0.1 * g + 0.9 * 0 = 0.1 * g.
    updates, state = opt.update([2.0, np.array([1.0, 4.0])], state)
    p = apply_updates(p, updates)
    assert state.velocity[0] == pytest.approx(0.2)
    np.testing.assert_allclose(state.velocity[1], [0.1, 0.4])
    assert p[0] == pytest.approx(0.8)
    np.testing.assert_allclose(p[1], [0.9, -1.4])
    # k = 1: v = 0.1 * 1 + 0.9 * 0.2 = 0.28; p = 0.8 - 0.28 = 0.52.
    updates, state = opt.update([1.0, np.array([0.0, 0.0])], state)
    p = apply_updates(p, updates)
    assert state.velocity[0] == pytest.approx(0.28)
    assert p[0] == pytest.approx(0.52)
    np.testing.assert_allclose(p[1], [0.9 - 0.09, -1.4 - 0.36])


def test_adam_first_step_by_hand() -> None:
    # m = (1 - b1) g, v = (1 - b2) g^2; corrected: mhat = g, vhat = g^2;
    # u = -lr g / (|g| + eps).
    opt = adam(0.1, eps=1e-3)
    state = opt.init({"a": 1.0, "b": np.array([0.0, 2.0])})
    updates, state = opt.update({"a": 2.0, "b": np.array([-0.5, 0.0])}, state)
    assert state.mu["a"] == pytest.approx(0.2)
    assert state.nu["a"] == pytest.approx(0.004)
    assert updates["a"] == pytest.approx(-0.1 * 2.0 / (2.0 + 1e-3), rel=1e-12)
    np.testing.assert_allclose(updates["b"], [0.1 * 0.5 / (0.5 + 1e-3), 0.0], rtol=1e-12)
    # With the same gradient again, the corrected moments are still g and g^2.
    updates, state = opt.update({"a": 2.0, "b": np.array([-0.5, 0.0])}, state)
    assert updates["a"] == pytest.approx(-0.1 * 2.0 / (2.0 + 1e-3), rel=1e-12)


def test_schedules_are_called_with_the_step_count() -> None:
    seen_lr: list[int] = []
    seen_mu: list[int] = []

    def lr(k: int) -> float:
        seen_lr.append(k)
        return 0.1

    def mu(k: int) -> float:
        seen_mu.append(k)
        return 0.5

    for opt in (sgd(lr), momentum(lr, mu), adam(lr)):
        seen_lr.clear()
        state = opt.init([1.0])
        for _ in range(4):
            _, state = opt.update([1.0], state)
        assert seen_lr == [0, 1, 2, 3]
    assert seen_mu == [0, 1, 2, 3]


def test_linear_schedule() -> None:
    s = linear_schedule(1.0, 0.1, 150)
    assert s(0) == 1.0
    assert s(75) == pytest.approx(0.55)
    assert s(149) == pytest.approx(1.0 - 0.9 * 149 / 150)
    assert s(150) == pytest.approx(0.1)
    assert s(10_000) == pytest.approx(0.1)
    for k in range(0, 200, 7):
        assert s(k) == pytest.approx(1.0 + (0.1 - 1.0) * min(k, 150) / 150)
    with pytest.raises(ValueError, match="steps"):
        linear_schedule(1.0, 0.0, 0)


def test_goal_momentum() -> None:
    s = goal_momentum(0.999)
    assert [s(k) for k in (0, 249, 250, 499, 500, 749, 750)] == pytest.approx(
        [0.5, 0.5, 0.75, 0.75, 1 - 1 / 6, 1 - 1 / 6, 0.875]
    )
    assert s(1_000_000) == 0.999  # capped: 1 - 1/8002 > 0.999
    assert goal_momentum(0.6)(250) == 0.6


@pytest.mark.parametrize("make", [lambda: sgd(0.1), lambda: momentum(0.1, 0.9), lambda: adam(0.1)])
def test_static_leaves_untouched_and_dtypes_preserved(make: Any) -> None:
    @dataclasses.dataclass
    class Net:
        w32: np.ndarray
        s32: np.float32
        w64: np.ndarray
        b: float
        name: str
        steps: int
        idx: np.ndarray
        act: Callable[[Any], Any]
        table: np.ndarray = dataclasses.field(metadata={"static": True})

    idx = np.array([1, 2])
    table = np.array([1.0, 2.0])
    params = Net(
        np.ones((2, 2), np.float32), np.float32(0.5), np.ones(3), 2.0, "net", 5, idx, np.tanh, table
    )
    grads = Net(
        np.full((2, 2), 0.25, np.float32),
        np.float32(1.0),
        np.full(3, 0.5),
        1.0,
        "net",
        5,
        idx,
        np.tanh,
        table,
    )
    opt = make()
    state = opt.init(params)
    p = params
    for _ in range(3):
        updates, state = opt.update(grads, state, p)
        p = apply_updates(p, updates)
    assert p.w32.dtype == np.float32 and type(p.s32) is np.float32
    assert p.w64.dtype == np.float64 and type(p.b) is float
    assert p.name == "net" and p.steps == 5 and p.act is np.tanh
    assert p.idx is idx and p.table is table
    assert np.all(p.w32 < 1.0) and p.s32 < 0.5 and np.all(p.w64 < 1.0) and p.b < 2.0
    moments = [state.velocity] if isinstance(state, MomentumState) else []
    if isinstance(state, AdamState):
        moments = [state.mu, state.nu]
    for m in moments:
        assert m.w32.dtype == np.float32 and m.name == "net" and m.idx is idx


def test_apply_updates_casts_to_parameter_dtype() -> None:
    p = apply_updates([np.ones(2, np.float32), 1.0], [np.full(2, 0.5), np.float64(0.5)])
    assert p[0].dtype == np.float32 and type(p[1]) is float and p[1] == 1.5


def test_mismatched_structures_raise() -> None:
    opt = adam(0.1)
    state = opt.init({"a": 1.0, "b": 2.0})
    with pytest.raises(ValueError, match="1 differentiable leaves.*2"):
        opt.update({"a": 1.0}, state)
    with pytest.raises(ValueError, match="apply_updates"):
        apply_updates({"a": 1.0, "b": 2.0}, {"a": 1.0})
    with pytest.raises(TypeError, match="lr must be a number or a schedule"):
        sgd("fast")  # type: ignore[arg-type]


def test_trains_with_grad_bp() -> None:
    @dataclasses.dataclass
    class Line:
        slope: float
        intercept: float
        label: str = "fit"

    xs = np.linspace(-1.0, 1.0, 9)
    ys = 3.0 * xs - 1.0

    def loss(p: Line) -> Any:
        total = 0.0
        for x, y in zip(xs.tolist(), ys.tolist()):
            total = total + (p.slope * x + p.intercept - y) ** 2
        return total / len(xs)

    for opt in (sgd(0.3), momentum(0.1, goal_momentum(0.9)), adam(0.1)):
        p = Line(0.0, 0.0)
        state = opt.init(p)
        for _ in range(300):
            updates, state = opt.update(hetgrad.grad_bp(loss, p), state, p)
            p = apply_updates(p, updates)
        assert p.label == "fit"
        assert p.slope == pytest.approx(3.0, abs=1e-2) and p.intercept == pytest.approx(
            -1.0, abs=1e-2
        )
