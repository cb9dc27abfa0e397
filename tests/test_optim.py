"""Optimizers: update rules against an independent calculation, first steps by hand,
schedules, static leaves and dtypes."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import hetgrad
from hetgrad.optim import (
    AdamState,
    MomentumState,
    SgdState,
    _sole_reference,
    adam,
    apply_updates,
    descend,
    goal_momentum,
    linear_schedule,
    momentum,
    sgd,
)
from hetgrad.tree import flatten
from strategies import same, structures


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


@pytest.mark.parametrize("make", [lambda s: sgd(s), lambda s: momentum(s, s), lambda s: adam(s)],
                         ids=["sgd", "momentum", "adam"])  # fmt: skip
def test_numpy_scalar_schedules_keep_float32_float32(make: Any, tmp_path: Any) -> None:
    """A schedule may return a NumPy float64 (``0.1 * np.cos(k)``): steps and state stay
    in the parameters' dtype, so a checkpoint of the state loads into its template."""
    from hetgrad import checkpoint

    params = {"w": np.ones(3, np.float32)}
    opt = make(lambda k: 0.1 * np.cos(0.01 * k) * 0.9)
    updates, state = opt.update({"w": np.full(3, 0.5, np.float32)}, opt.init(params))
    assert updates["w"].dtype == np.float32
    for leaf in flatten(state)[0]:
        assert not isinstance(leaf, np.ndarray) or leaf.dtype == np.float32
    checkpoint.save(tmp_path / "state.npz", state)
    checkpoint.load(tmp_path / "state.npz", like=opt.init(params))


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


# -- descend: the fused gradient-descent step -------------------------------------------


def _sum_of_squares(p: Any, scale: float = 1.0) -> Any:
    leaves, _ = flatten(p)
    total = 0.0
    for k, x in enumerate(leaves):
        total = total + (k + 1.0) * scale * np.sum(np.sin(x) * x)
    return total


@given(structures, st.sampled_from([0.5, 0.01, 3.0]))
@settings(max_examples=60, deadline=None)
def test_descend_is_params_minus_rate_times_gradient(params: Any, lr: float) -> None:
    assume(flatten(params)[0])  # (no float leaf: a TypeError, as for every runner)
    before = hetgrad.tree_map(lambda x: x.copy() if isinstance(x, np.ndarray) else x, params)
    value, new = descend(_sum_of_squares, params, lr, 0.5)
    want = hetgrad.tree_map(
        lambda p, g: type(p)(p - lr * g) if not isinstance(p, np.ndarray) else
        (p - lr * g).astype(p.dtype),
        params, hetgrad.grad_bp(lambda q: _sum_of_squares(q, 0.5), params),
    )  # fmt: skip
    assert value == _sum_of_squares(params, 0.5)
    assert same(params, before)  # the parameters are not touched
    got_leaves, got_def = flatten(new)
    want_leaves, want_def = flatten(want)
    assert got_def.same_structure(want_def)
    for g, w in zip(got_leaves, want_leaves):
        assert type(g) is type(w) and np.shape(g) == np.shape(w)
        assert np.asarray(g).dtype == np.asarray(w).dtype
        rtol = 1e-6 if np.asarray(w).dtype == np.float32 else 1e-13
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol)


def _step_through_a_custom_op(keep_array: bool) -> tuple[np.ndarray, Any, np.ndarray]:
    """``descend`` on ``sum(2 w)``, a custom op whose pullback's array is watched weakly
    or kept (strongly) by its author; returns (w, the new w, what was watched or kept)."""
    seen: list[Any] = []

    def double(x: np.ndarray) -> Any:
        def pullback(g: Any) -> np.ndarray:
            r = g * np.full(x.shape, 2.0)
            seen.append(r if keep_array else weakref.ref(r))
            return r

        return 2.0 * x, pullback

    op = hetgrad.op1(double)
    w = np.array([1.0, 2.0, 3.0])
    _, new = descend(lambda w: np.sum(op(w)), w, 0.25)
    np.testing.assert_array_equal(new, [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(w, [1.0, 2.0, 3.0])
    return w, new, seen[0]


def test_descend_writes_into_a_gradient_nothing_else_sees() -> None:
    _, new, watched = _step_through_a_custom_op(keep_array=False)
    assert watched() is new  # the pullback's array became the new parameter


def test_descend_never_writes_into_an_array_someone_keeps() -> None:
    _, new, kept = _step_through_a_custom_op(keep_array=True)
    assert new is not kept
    np.testing.assert_array_equal(kept, [-0.5, -0.5, -0.5])  # still -lr * 2, unchanged


def test_where_reference_counts_are_not_exact_steps_and_gradients_are_fresh_arrays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On interpreters whose reference counts hetgrad does not trust (CPython 3.14's borrowed
    references, free-threaded builds), nothing is handed over: a custom op's gradient
    array, kept or not, is copied."""
    import hetgrad.optim
    import hetgrad.runners

    monkeypatch.setattr(hetgrad.runners, "REFCOUNTS_EXACT", False)
    monkeypatch.setattr(hetgrad.optim, "REFCOUNTS_EXACT", False)
    for keep in (False, True):
        _, new, seen = _step_through_a_custom_op(keep_array=keep)
        assert new is not (seen if keep else seen())
    kept = np.full(2, 3.0)
    slope = hetgrad.op1(lambda x: (np.sum(x * 3.0), lambda g: kept))
    g = hetgrad.grad_bp(slope, np.zeros(2))
    assert g is not kept and g.tolist() == [3.0, 3.0]


def test_sole_reference() -> None:
    items = [np.ones(3), np.ones(3), np.ones(3)[1:], np.ones(3)]
    held = items[1]
    items[3].setflags(write=False)
    assert [_sole_reference(items, i) for i in range(4)] == [True, False, False, False]
    del held
    assert _sole_reference(items, 1)


def test_descend_can_be_differentiated() -> None:
    """A step inside a runner is recorded (learning through an update, as in MAML)."""

    def after_step(p: Any) -> Any:
        _, q = descend(_sum_of_squares, p, 0.1)
        return _sum_of_squares(q)

    hetgrad.check_grads(after_step, {"w": np.array([0.3, -1.2]), "b": 0.7}, order=1)


def test_descend_of_a_constant_objective_keeps_the_parameters() -> None:
    w = np.array([1.0, 2.0])
    value, new = descend(lambda w: 4.0, w, 0.5)
    assert value == 4.0 and new is not w
    np.testing.assert_array_equal(new, w)


def test_descend_misuse_raises() -> None:
    with pytest.raises(TypeError, match="lr must be a number"):
        descend(_sum_of_squares, [1.0], "fast")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lr must be a number"):
        descend(_sum_of_squares, [1.0], True)
    with pytest.raises(TypeError, match="descend differentiates a function"):
        descend(3.0, [1.0], 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="descend needs a function returning a real scalar"):
        descend(lambda p: p, np.ones(2), 0.1)


def test_adam_on_float16_stays_finite() -> None:
    opt = adam(0.1)
    updates, _ = opt.update(np.array([0.0, 1.0], np.float16), opt.init(np.ones(2, np.float16)))
    assert updates.dtype == np.float16
    np.testing.assert_allclose(updates, [0.0, -0.1], atol=1e-3)
    scalar, _ = opt.update(np.float16(0.0), opt.init(np.float16(1.0)))
    assert type(scalar) is np.float16 and scalar == 0.0


def test_a_step_on_plain_parameters_is_differentiable_in_its_data() -> None:
    # The meta-learning pattern: the parameters are constants, the data is differentiated.
    p0 = np.array([1.0, 2.0], dtype=np.float32)
    loss = lambda p, t: np.sum((p - t) ** 2)

    def by_descend(t: Any) -> Any:
        return np.sum(descend(loss, p0, 0.1, t)[1] ** 2)

    def by_sgd(t: Any) -> Any:
        updates, _ = sgd(0.1).update(hetgrad.grad(loss)(p0, t), SgdState(0.0))
        new = apply_updates(p0, updates)
        assert new.dtype == np.float32  # the parameters' dtype, cast on the tape
        return np.sum(new**2)

    t = np.array([0.5, -1.0])
    # p1 = 0.8 p0 + 0.2 t, so d/dt sum(p1^2) = 0.4 p1
    expected = 0.4 * (0.8 * p0.astype(float) + 0.2 * t)
    for f in (by_descend, by_sgd):
        np.testing.assert_allclose(hetgrad.grad(f)(t), expected, rtol=1e-6)


@pytest.mark.parametrize("make", [lambda: momentum(0.1, 0.9), lambda: adam(0.1)])
def test_update_refuses_gradients_of_another_structure(make: Callable[[], Any]) -> None:
    opt = make()
    state = opt.init({"a": 1.0, "b": 2.0})
    for grads in ({"x": 5.0, "y": 0.0}, {"b": 5.0, "a": 0.0}):
        with pytest.raises(ValueError, match="structure"):
            opt.update(grads, state)
    updates, _ = opt.update({"a": 5.0, "b": 0.0}, state)
    assert list(updates) == ["a", "b"] and updates["a"] < 0.0


def test_adam_with_numpy_scalar_hyperparameters_keeps_float32() -> None:
    params = {"w": np.ones(2, np.float32), "b": 0.5}
    opt = adam(np.float64(1e-2), b1=np.float64(0.9), b2=np.float64(0.999), eps=np.float64(1e-8))
    state = opt.init(params)
    updates, state = opt.update({"w": np.ones(2, np.float32), "b": 1.0}, state)
    assert updates["w"].dtype == np.float32 and state.mu["w"].dtype == np.float32
    assert type(updates["b"]) is float and type(state.nu["b"]) is float


def test_the_gradients_of_several_arguments_get_a_hint() -> None:
    opt = sgd(0.1)
    state = momentum(0.1, 0.9).init({"w": np.ones(2)})
    grads = hetgrad.grad_bp(lambda p, x: np.sum(p["w"] * x), {"w": np.ones(2)}, np.ones(2))
    with pytest.raises(ValueError, match="a tuple of 2: the gradients of several arguments"):
        momentum(0.1, 0.9).update(grads, state)
    assert opt.update(grads[0], opt.init({"w": np.ones(2)}))[0]["w"].tolist() == [-0.1, -0.1]


def test_adam_on_float16_keeps_wide_moments() -> None:
    """A float16 gradient of 300 squares to inf in float16 (the coordinate froze for good),
    and one of 5e-3 to 0 (a step of 1e4): the moments are float32."""
    opt = adam(0.1)
    p = np.ones(2, np.float16)
    state = opt.init(p)
    assert state.mu.dtype == state.nu.dtype == np.float32
    for k in range(3):
        g = np.array([300.0 if k == 0 else 1.0, 5e-3], np.float16)
        updates, state = opt.update(g, state)
        assert updates.dtype == np.float16 and np.all(np.isfinite(updates))
        assert np.all(np.abs(updates) < 0.2)  # about lr each step
        p = apply_updates(p, updates)
    assert np.isfinite(state.nu).all()


def test_optimizer_state_keeps_its_dtype_under_other_gradients() -> None:
    params = {"w": np.ones(2, np.float32), "d": np.array(2.0)}
    for opt in (adam(0.1), momentum(0.1, 0.9)):
        state = opt.init(params)
        _, state = opt.update({"w": np.ones(2), "d": np.array(1.0)}, state)
        for leaf, like in zip(flatten(state)[0][1:], flatten(opt.init(params))[0][1:]):
            assert type(leaf) is type(like) and leaf.dtype == like.dtype


def test_adam_checks_its_hyperparameters_and_takes_static_parameters() -> None:
    for kw in ({"b1": 1.0}, {"b2": -0.1}, {"eps": -1e-8}):
        with pytest.raises(ValueError, match="adam"):
            adam(0.1, **kw)
    opt = adam(0.1)
    assert opt.update(3, opt.init(3))[0] == 3  # nothing to update


def test_descend_on_a_float32_loss_keeps_float64_parameters_exact() -> None:
    p = np.array([1.0, 2.0, 3.0])

    def f(q: Any) -> Any:
        return np.sum(q * q).astype(np.float32)

    _, stepped = descend(f, p, 0.1)
    np.testing.assert_array_equal(stepped, p - 0.1 * hetgrad.grad_bp(f, p))


def test_a_python_float_meets_a_numpy_scalar_as_a_python_float() -> None:
    @dataclasses.dataclass
    class Line(hetgrad.Params):
        slope: float
        intercept: float

    assert Line(0.1, 0.2) * np.float32(1.0) == Line(0.1, 0.2)
    assert apply_updates({"x": 0.1}, {"x": np.float32(0.0)}) == {"x": 0.1}


def test_linear_schedule_ends_exactly_at_its_end() -> None:
    assert linear_schedule(1.0, 0.1, 150)(150) == 0.1


class Knots:
    """An opaque registered type with no arithmetic of its own."""

    def __init__(self, c: Any) -> None:
        self.c = np.asarray(c, dtype=float)


class Weights(Knots):
    """Registered separately, with the arithmetic an optimizer needs."""

    def __add__(self, other: Any) -> Weights:
        return Weights(self.c + (other.c if isinstance(other, Knots) else other))

    def __mul__(self, other: Any) -> Weights:
        return Weights(self.c * (other.c if isinstance(other, Knots) else other))

    __radd__ = __add__
    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Weights:
        return Weights(self.c / (other.c if isinstance(other, Knots) else other))

    def __pow__(self, k: float) -> Weights:
        return Weights(self.c**k)

    def __neg__(self) -> Weights:
        return Weights(-self.c)


for _t in (Knots, Weights):
    hetgrad.register_backprop(
        _t, zero=lambda p: type(p)(np.zeros_like(p.c)), add=lambda p, q: type(p)(p.c + q.c),
        one=lambda p: type(p)(np.ones_like(p.c)),
    )  # fmt: skip
read_knots = hetgrad.op1(lambda p: (p.c, lambda g: type(p)(g)))


def _knots_loss(params: Any) -> Any:
    return np.sum(read_knots(params["k"]) ** 2) + np.sum(params["w"] ** 2)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_an_optimizer_on_a_registered_type_without_arithmetic_names_it(name: str) -> None:
    params = {"w": np.ones(2), "k": Knots([1.0, 2.0])}
    opt = {"sgd": sgd(0.1), "momentum": momentum(0.1, 0.9), "adam": adam(0.1)}[name]
    grads = hetgrad.grad(_knots_loss)(params)
    with pytest.raises(TypeError) as e:
        opt.update(grads, opt.init(params), params)
    msg = str(e.value)
    assert msg.startswith(f"{name}.update: the gradient at grads['k'] is a Knots, a type "
                          "registered with register_backprop, without the arithmetic "
                          f"{name} needs")  # fmt: skip
    assert "define these operators on Knots, or express the parameters as float" in msg
    assert "unsupported operand" in str(e.value.__cause__)


def test_applying_a_step_to_a_registered_type_without_addition_names_it() -> None:
    params = {"w": np.ones(2), "k": Knots([1.0, 2.0])}
    with pytest.raises(TypeError, match=r"apply_updates: the parameter at params\['k'\] is a "
                       r"Knots, a type registered .* \(\+ of two Knots values\)"):  # fmt: skip
        apply_updates(params, {"w": np.ones(2), "k": Knots([1.0, 1.0])})
    with pytest.raises(TypeError, match=r"descend: the parameter at params\['k'\] is a Knots"):
        descend(_knots_loss, params, 0.1)


def test_optimizers_step_a_registered_type_with_its_own_arithmetic() -> None:
    params = {"w": np.ones(2), "k": Weights([1.0, 2.0])}
    grads = hetgrad.grad(_knots_loss)(params)
    for opt in (sgd(0.1), momentum(0.1, 0.9), adam(0.1)):
        updates, _ = opt.update(grads, opt.init(params))
        stepped = apply_updates(params, updates)
        assert type(stepped["k"]) is Weights and np.all(stepped["k"].c < params["k"].c)
    _, stepped = descend(_knots_loss, params, 0.25)
    np.testing.assert_allclose(stepped["k"].c, [0.5, 1.0])
