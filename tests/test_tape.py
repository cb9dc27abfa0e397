"""The tape: BVar behaviour, escapes, nesting, long chains, NumPy dispatch."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np
import pytest

import hetgrad
from hetgrad import BVar, TapeError, grad, grad_bp, rules
from hetgrad import tape as tape_module

# -- BVar behaves like its value where no gradient is at stake --------------------------


def test_comparisons_return_plain_values() -> None:
    seen = {}

    def f(x: BVar) -> BVar:
        seen["lt"] = x < 3.0
        seen["eq"] = x == 2.0
        seen["arr"] = x * np.ones(2) > 1.0
        return x

    grad_bp(f, 2.0)
    assert seen["lt"] is True and seen["eq"] is True
    assert isinstance(seen["arr"], np.ndarray) and seen["arr"].dtype == bool


def test_value_shape_len_and_repr() -> None:
    def f(x: BVar) -> BVar:
        assert isinstance(x, BVar)
        assert x.shape == (3,) and x.ndim == 1 and x.size == 3 and len(x) == 3
        assert x.dtype == np.float32
        assert repr(x).startswith("BVar(")
        np.testing.assert_array_equal(x.value, [1.0, 2.0, 3.0])
        return np.sum(x)

    grad_bp(f, np.array([1.0, 2.0, 3.0], dtype=np.float32))


def test_a_bvar_of_a_number_is_a_number_to_isinstance_and_isscalar() -> None:
    import numbers

    # Code that branches on np.isscalar or numbers.Number takes the same branch under
    # differentiation (isscalar(v) was False for every BVar, and the gradient below 0).
    def f(x: Any) -> Any:
        return np.sum(x * (2.0 if np.isscalar(x) and isinstance(x, numbers.Number) else 1.0))

    for x in (3.0, np.float64(3.0), np.float32(3.0), np.array(3.0), np.array([3.0, 1.0])):
        scalar = np.isscalar(x)
        np.testing.assert_array_equal(grad_bp(f, x), np.full(np.shape(x), 2.0 if scalar else 1.0))
    assert grad(grad(lambda x: x * x * np.isscalar(x)))(3.0) == 2.0  # (a BVar of a BVar)

    def types(x: BVar) -> BVar:
        assert type(x) is BVar and isinstance(x, BVar)
        assert not isinstance(x, (float, np.ndarray, np.generic))
        return x

    grad_bp(types, 1.0)
    assert grad_bp(lambda d: d["a"] * np.isscalar(d["a"]) * np.isscalar(d), {"a": 2.0}) == {
        "a": 0.0}  # fmt: skip  (the dict itself is no scalar)


def test_float_conversion_raises_but_int_and_bool_work() -> None:
    def f(x: BVar) -> BVar:
        with pytest.raises(TypeError, match=r"\.value"):
            float(x)
        assert int(x) == 2 and bool(x) is True
        return x

    grad_bp(f, 2.5)


def test_asarray_and_item_assignment_raise() -> None:
    def f(x: BVar) -> BVar:
        with pytest.raises(TypeError, match="drop it from the tape"):
            np.asarray(x)
        with pytest.raises(TypeError, match="item assignment"):
            x[0] = 1.0
        return np.sum(x)

    grad_bp(f, np.ones(2))


def test_unlifted_numpy_function_names_itself() -> None:
    with pytest.raises(NotImplementedError, match=r"numpy\.\w+.*not differentiable"):
        grad_bp(lambda x: np.fft.fft(x).real.sum(), np.ones(4))
    with pytest.raises(NotImplementedError, match="in-place"):
        grad_bp(lambda x: np.add.reduce(x), np.ones(2))
    with pytest.raises(NotImplementedError, match="out="):
        grad_bp(lambda x: np.exp(x, out=np.empty(2)), np.ones(2))


def test_piecewise_constant_ufuncs_give_plain_results() -> None:
    def f(x: BVar) -> BVar:
        s = np.sign(x)
        assert not isinstance(s, BVar)
        return np.sum(x * s)

    np.testing.assert_array_equal(grad_bp(f, np.array([-2.0, 3.0])), [-1.0, 1.0])


def test_python_floats_stay_floats() -> None:
    def f(x: BVar) -> BVar:
        y = np.exp(np.sin(x)) * x + np.sqrt(x) - np.log(x) + np.tanh(x) ** 2
        assert type(y.value) is float
        return y

    assert type(grad_bp(f, 0.7)) is float


# -- escapes and mixing -------------------------------------------------------------------


def test_escaped_bvar_raises_instead_of_wrong_gradient() -> None:
    leaked = []

    def f(x: BVar) -> BVar:
        leaked.append(x)
        return x * x

    grad_bp(f, 3.0)
    with pytest.raises(TapeError, match="already returned"):
        grad_bp(lambda y: leaked[0] * y, 1.0)
    with pytest.raises(TapeError, match="already returned"):
        leaked[0] * 2.0
    with pytest.raises(TapeError):
        np.exp(leaked[0])


def test_bvar_from_another_thread_is_rejected() -> None:
    started = threading.Event()
    release = threading.Event()
    box: list[BVar] = []

    def other(x: BVar) -> BVar:
        box.append(x)
        started.set()
        release.wait(5)
        return x

    t = threading.Thread(target=lambda: grad_bp(other, 1.0))
    t.start()
    started.wait(5)
    try:
        with pytest.raises(TapeError, match="not nested"):
            grad_bp(lambda y: box[0] * y, 2.0)
    finally:
        release.set()
        t.join()


def test_sibling_calls_do_not_mix() -> None:
    keep: list[BVar] = []

    def inner(y: BVar) -> BVar:
        keep.append(y)
        return y

    def outer(x: BVar) -> BVar:
        grad_bp(inner, 1.0)
        return x * 2.0

    grad_bp(outer, 1.0)
    with pytest.raises(TapeError):
        keep[0] + 1.0


# -- nesting: derivatives of derivatives --------------------------------------------------


def test_perturbation_confusion() -> None:
    # d/dx [x * d/dy (x + y)] at y = 1 is 1; confusing the two tapes would give 2.
    f = lambda x: x * grad(lambda y: x + y)(1.0)
    assert grad(f)(1.0) == 1.0


def test_inner_closes_over_outer_bvar() -> None:
    # d/dx [d/dy (x * y ** 2)] = d/dx [2 x y] = 2 y, at y = 3: 6
    f = lambda x: grad(lambda y: x * y**2)(3.0)
    assert grad(f)(5.0) == 6.0


def test_third_derivative_of_sin() -> None:
    d3 = grad(grad(grad(np.sin)))
    for x in (0.0, 0.5, 2.0):
        assert d3(x) == pytest.approx(-np.cos(x), rel=1e-12)


def test_nested_grad_bp_over_structures() -> None:
    def inner_norm(p: dict[str, BVar]) -> BVar:
        return p["a"] ** 2 * p["b"]

    def outer(p: dict[str, BVar]) -> BVar:
        g = grad_bp(inner_norm, p)  # {"a": 2ab, "b": a^2}
        return g["a"] + g["b"]

    # d/da (2ab + a^2) = 2b + 2a;  d/db = 2a
    assert grad_bp(outer, {"a": 1.5, "b": 2.0}) == {"a": 7.0, "b": 3.0}


def test_second_derivative_of_array_function() -> None:
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    x0 = np.array([0.3, -0.7])

    def dir_second(x: np.ndarray) -> object:
        g = grad(lambda z: np.tanh(z) @ a @ np.tanh(z))(x)
        return np.sum(g * np.array([1.0, 2.0]))

    h = 1e-5
    num = np.array(
        [(dir_second(x0 + h * e) - dir_second(x0 - h * e)) / (2 * h) for e in np.eye(2)]
    )
    np.testing.assert_allclose(grad(dir_second)(x0), num, rtol=1e-6)


# -- long chains: see test_memory.py (1,000,000 operations within a stated memory bound)


# -- array indexing -----------------------------------------------------------------------


def test_indexing_with_repeats_accumulates() -> None:
    g = grad_bp(lambda x: np.sum(x[[0, 0, 2]] * np.array([1.0, 2.0, 3.0])), np.zeros(4))
    np.testing.assert_array_equal(g, [3.0, 0.0, 3.0, 0.0])


def test_slices_masks_and_iteration() -> None:
    x0 = np.arange(6.0).reshape(2, 3)
    g = grad_bp(lambda x: np.sum(x[:, 1:] ** 2) + x[1, 0], x0)
    np.testing.assert_array_equal(g, [[0.0, 2.0, 4.0], [1.0, 8.0, 10.0]])
    g2 = grad_bp(lambda x: np.sum(x[x.value > 2.0]), np.array([1.0, 3.0, 5.0]))
    np.testing.assert_array_equal(g2, [0.0, 1.0, 1.0])
    g3 = grad_bp(lambda x: sum(r * r for r in x), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(g3, [2.0, 4.0])


def test_registered_user_leaf_type() -> None:
    class Temp:
        def __init__(self, k: float) -> None:
            self.k = k

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Temp) and other.k == self.k

    hetgrad.register_backprop(
        Temp,
        zero=lambda t: Temp(0.0),
        add=lambda a, b: Temp(a.k + b.k),
        one=lambda t: Temp(1.0),
    )
    to_float = hetgrad.op1(lambda t: (t.k, lambda g: Temp(g)))
    g = grad_bp(lambda t: to_float(t) * 3.0 + to_float(t) ** 2, Temp(2.0))
    assert g == Temp(7.0)


# -- arrays the tape saved cannot be changed under it ------------------------------------


def test_writing_into_an_input_inside_the_function_is_caught() -> None:
    w = np.ones(3)

    def f(x: BVar) -> BVar:
        y = np.sum(x * x)
        w[0] = 5.0  # the caller's array, saved by the tape
        return y

    with pytest.raises(ValueError, match="read-only"):
        grad_bp(f, w)
    assert w.flags.writeable and w[0] == 1.0  # given back, unchanged


def test_writing_into_a_constant_or_an_intermediate_is_caught() -> None:
    data = np.arange(3.0)

    def mutate_constant(x: BVar) -> BVar:
        y = np.sum(x * data)
        data[1] = 100.0
        return y

    with pytest.raises(ValueError, match="read-only"):
        grad_bp(mutate_constant, np.ones(3))
    assert data.flags.writeable

    def mutate_intermediate(x: BVar) -> BVar:
        h = np.exp(x)
        h.value[0] = 0.0
        return np.sum(h)

    with pytest.raises(ValueError, match="read-only"):
        grad_bp(mutate_intermediate, np.ones(2))


def test_intermediates_no_rule_reads_are_freed_during_the_forward_pass() -> None:
    import weakref

    refs: list[Any] = []

    def f(x: BVar) -> BVar:
        h = x * 3.0  # multiply's rules read neither its output nor (here) this result
        refs.append(weakref.ref(h._value))
        e = np.exp(h)  # exp's rule reads its output only
        del h
        assert refs[0]() is None  # nothing on the tape holds the 8 kB array any more
        return np.sum(e)

    x0 = np.linspace(-1.0, 1.0, 1000)
    np.testing.assert_allclose(grad_bp(f, x0), 3.0 * np.exp(3.0 * x0))


def test_a_constant_only_added_is_not_locked_and_its_writes_change_no_gradient() -> None:
    shift = np.array([1.0, 2.0])

    def f(x: BVar) -> BVar:
        y = x + shift  # add's rules need the constant's shape only
        shift[0] = 100.0  # allowed: nothing the backward pass reads changes
        return np.sum(y * y)

    x0 = np.array([0.5, -0.5])
    np.testing.assert_allclose(grad_bp(f, x0), 2.0 * (x0 + [1.0, 2.0]))


def test_arrays_writable_after_runner_and_when_pullback_dies() -> None:
    import gc

    w = np.ones(2)
    grad_bp(lambda x: np.sum(x * x), w)
    w += 1.0  # fine again
    _, pullback = hetgrad.backprop_with(lambda x: x * 2.0, w)
    with pytest.raises(ValueError, match="read-only"):
        w += 1.0
    del pullback
    gc.collect()
    w += 1.0
    np.testing.assert_array_equal(w, [3.0, 3.0])


def test_structure_fields_named_like_array_attributes() -> None:
    import dataclasses

    @dataclasses.dataclass
    class Odd:
        shape: float
        sum: float
        T: np.ndarray
        children: float
        value: float

    def f(o: BVar) -> BVar:
        return o.shape * o.sum + np.sum(o.T) * o.children + o["value"]

    g = grad_bp(f, Odd(2.0, 3.0, np.ones(2), 4.0, 5.0))
    assert (g.shape, g.sum, g.children, g.value) == (3.0, 2.0, 2.0, 1.0)
    np.testing.assert_array_equal(g.T, [4.0, 4.0])


def test_a_copy_of_a_bvar_is_the_bvar_and_pickling_is_refused() -> None:
    import copy
    import pickle

    # (A deep copy used to clone the tape, and its gradient came back 0.)
    assert grad_bp(lambda w: np.sum(copy.deepcopy(w) ** 2), np.array([1.0, 2.0])).tolist() == [
        2.0, 4.0]  # fmt: skip
    assert hetgrad.backprop(lambda x: copy.deepcopy(x * x), 3.0) == (9.0, 6.0)
    assert grad_bp(lambda d: copy.deepcopy(d)["a"] * 2.0, {"a": 1.0}) == {"a": 2.0}
    assert grad_bp(lambda xs: copy.copy(xs)[1] * 2.0, [1.0, 5.0]) == [0.0, 2.0]
    with pytest.raises(TypeError, match="a BVar cannot be pickled"):
        grad_bp(lambda x: pickle.loads(pickle.dumps(x)) ** 2, 3.0)


def test_a_kept_bvar_returned_by_a_later_call_is_an_error() -> None:
    kept: list[Any] = []
    grad_bp(lambda x: kept.append(x * 1.0) or x, 2.0)
    for call in (lambda: grad_bp(lambda y: kept[0], 3.0),
                 lambda: hetgrad.backprop(lambda y: kept[0], 3.0),
                 lambda: hetgrad.backprop_with(lambda y: (y, kept[0]), 3.0)[1]((1.0, 1.0)),
                 lambda: grad(lambda y: (y * y, kept[0]), has_aux=True)(3.0)):  # fmt: skip
        with pytest.raises(TapeError, match="already returned"):
            call()  # (its gradient used to come back as 0.0)


def test_fresh_views_of_a_held_array_do_not_pile_up() -> None:
    from hetgrad import tape

    data = np.arange(40.0).reshape(10, 4)
    w = np.ones(4)
    _, pullback = hetgrad.backprop_with(lambda d: np.sum(d), data)  # holds data read-only
    for i in range(200):
        grad_bp(lambda w, i=i: np.sum(w * data[i % 10]), w)  # a fresh view of data each step
    assert len(tape._unlock_later) == 0  # (it grew by one per step, and each step slowed)
    kept = data[3]
    grad_bp(lambda w: np.sum(w * kept), w)
    assert not kept.flags.writeable
    del pullback
    assert kept.flags.writeable and data.flags.writeable


def test_backprop_with_refused_for_an_escaped_output_unlocks_its_arguments() -> None:
    kept: list[Any] = []
    grad_bp(lambda x: (kept.append(x * 2.0), x * 1.0)[1], 1.0)
    w = np.ones(3)
    with pytest.raises(TapeError):
        hetgrad.backprop_with(lambda a: (np.sum(a * 2.0), kept[0]), w)
    assert w.flags.writeable
    assert id(w) not in tape_module._lock_counts


def test_a_count_left_over_for_a_dead_array_does_not_leave_its_successor_writeable() -> None:
    """A count never released (an interrupt in a tape's bookkeeping) may outlive its
    array; a new array at the same id is locked all the same while a rule reads it."""
    c = np.array([1.0, 2.0, 3.0])
    tape_module._lock_counts[id(c)] = 1  # as a dead array's leftover would be
    try:

        def f(x: Any) -> Any:
            y = np.sum(x * c)  # the rule for x reads c
            c[0] = 100.0
            return y

        with pytest.raises(ValueError, match="read-only"):
            grad_bp(f, np.ones(3))
    finally:
        del tape_module._lock_counts[id(c)]


def test_a_release_retries_only_the_views_of_the_arrays_it_frees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Views waiting on a base that a live pullback holds are not rescanned by every
    release (that made each call cost O(waiting views)); they are freed with their base."""
    data = np.random.default_rng(0).random((200, 4))
    rows = list(data)
    _, pullback = hetgrad.backprop_with(lambda d: np.sum(d * 2.0), data)
    w = np.ones(4)
    for r in rows:  # each row is locked as a constant, and waits on data when released
        grad_bp(lambda w, r=r: np.sum(w * r), w)
    retried: list[int] = []
    real = tape_module._make_writeable
    monkeypatch.setattr(tape_module, "_make_writeable", lambda a: (retried.append(len(a)), real(a)))
    grad_bp(lambda w: np.sum(w * w), w)
    assert retried == []  # nothing waiting was touched
    assert not any(r.flags.writeable for r in rows)
    del pullback
    assert data.flags.writeable and all(r.flags.writeable for r in rows)
    assert retried == [200] and not tape_module._waiting_on


def test_iterating_over_an_array_bvar_scatters_once() -> None:
    calls: list[int] = []
    real = rules._scatter_fn

    def spy(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    x = np.arange(50.0)
    rules._scatter_fn = spy
    try:
        g = grad_bp(lambda v: sum(e * e for e in v), x)
    finally:
        rules._scatter_fn = real
    np.testing.assert_array_equal(g, 2 * x)
    assert calls == []  # one gradient array for the 50 elements, not 50 of them
    rows = grad_bp(lambda v: sum(r @ r for r in v), np.ones((3, 2)))
    np.testing.assert_array_equal(rows, np.full((3, 2), 2.0))
    h = hetgrad.hessian(lambda v: sum(e**3 for e in v))(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(h, np.diag([6.0, 12.0]))


@pytest.mark.parametrize("x", [1.0, np.ones(3)], ids=["floats", "arrays"])
def test_the_garbage_collector_leaves_a_tape_of_built_in_operations_alone(x: Any) -> None:
    """Nodes name built-in rules by number, so once the collector has looked at a node it
    stops tracking it (walking long tapes again and again cost a third of a scalar step)."""
    import gc

    tracked: list[int] = []

    def f(v: Any) -> Any:
        for _ in range(100):
            v = np.sin(v) * 2.0 + 1.0
        nodes = tape_module.active_tapes()[-1].nodes
        gc.collect()  # (a node whose inner tuples are untracked in the same pass waits
        gc.collect()  # for the next one)
        tracked.append(sum(gc.is_tracked(n) for n in nodes if n is not None))
        return np.sum(v)

    grad_bp(f, x)
    assert tracked == [0]


def test_a_view_waiting_on_a_base_its_owner_unlocks_is_retried() -> None:
    base = np.ones(4)
    view = base[:2]
    base.setflags(write=False)
    grad_bp(lambda v: np.sum(v), view)
    base.setflags(write=True)  # by its owner, not by a release
    for _ in range(2):
        grad_bp(lambda x: x * 2.0, 1.0)
    assert view.flags.writeable


def test_ndarray_methods_any_all_argsort_nonzero_and_sort() -> None:
    """The constant-valued ndarray methods work on a BVar as on an array; ``v.sort()``, which
    sorts in place, says what to use instead (all were a bare AttributeError)."""

    def f(x: Any) -> Any:
        assert x.any() and not (x > 1.0).all()
        np.testing.assert_array_equal(x.argsort(), [1, 0, 2])
        np.testing.assert_array_equal(x.nonzero()[0], [0, 2])
        with pytest.raises(TypeError, match=r"np.sort\(v\)"):
            x.sort()
        return np.sum(np.sort(x) * np.array([1.0, 2.0, 3.0]))

    np.testing.assert_array_equal(hetgrad.grad_bp(f, np.array([1.0, 0.0, 3.0])), [2.0, 1.0, 3.0])

    @dataclasses.dataclass
    class Named:  # fields with those names are still read as fields
        sort: float
        any: float

    assert hetgrad.grad_bp(lambda s: s.sort * 2.0 + s.any, Named(1.0, 2.0)) == Named(2.0, 1.0)
    with pytest.raises(TypeError, match="in place"):
        hetgrad.grad_bp(lambda xs: (xs.sort(), xs[0] * 1.0)[1], [2.0, 1.0])
