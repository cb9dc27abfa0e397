"""``hetgrad.numpy._sequences`` beyond the table tests: every mode and length order of
convolve and correlate, interp outside its range, np.gradient's spacings and return types,
polyfit against NumPy, and the options that are refused."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import hetgrad
import hetgrad.numpy as hnp

AxisError = getattr(np, "exceptions", np).AxisError
RankWarning = getattr(np, "exceptions", np).RankWarning
MODES = ["full", "same", "valid"]


def on_bvars(f: Callable[..., Any], *args: Any) -> Any:
    """``f(*args)`` computed on BVars (the lifted functions), as a plain value."""
    return hetgrad.vjp(f, *args)[0]


def linear_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The gradient of ``sum(w * f(x))`` for an ``f`` linear in ``x``, from NumPy alone: its
    value at each unit vector."""
    return np.array([np.sum(w * f(e.reshape(x.shape))) for e in np.eye(x.size)]).reshape(x.shape)


# --------------------------------------------------------------------------------------
# convolve and correlate
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [np.convolve, np.correlate], ids=["convolve", "correlate"])
@pytest.mark.parametrize("mode", MODES)
def test_convolve_and_correlate_match_numpy_for_every_length_order(fn: Any, mode: str) -> None:
    rng = np.random.default_rng(0)
    for n_a, n_v in itertools.product(range(1, 6), repeat=2):  # (n_a < n_v: NumPy swaps)
        a, v = rng.standard_normal(n_a), rng.standard_normal(n_v)
        want = fn(a, v, mode)
        got, pullback = hetgrad.vjp(lambda a, v: fn(a, v, mode), a, v)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
        assert got.shape == want.shape
        w = rng.standard_normal(want.shape)
        ga, gv = pullback(w)
        in_a, in_v = functools.partial(fn, v=v, mode=mode), functools.partial(fn, a, mode=mode)
        np.testing.assert_allclose(ga, linear_gradient(in_a, a, w), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gv, linear_gradient(in_v, v, w), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", MODES)
def test_convolve_takes_scalars_and_keeps_float32(mode: str) -> None:
    a = np.array([1.0, -2.0, 0.5], np.float32)
    got = on_bvars(lambda a: np.convolve(a, np.float32(3.0), mode), a)
    want = np.convolve(a, np.float32(3.0), mode)
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    g = hetgrad.grad_bp(lambda c: np.sum(np.convolve([1.0, 2.0], c, mode)), 2.0)
    assert np.shape(g) == () and float(g) == {"full": 3.0, "same": 3.0, "valid": 3.0}[mode]
    with pytest.raises(ValueError, match="too small depth"):  # as NumPy's correlate
        hetgrad.grad_bp(lambda c: np.sum(np.correlate([1.0, 2.0], c)), 2.0)


def test_convolve_modes_by_number_and_bad_modes() -> None:
    a, v = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0])
    for number, name in enumerate(["valid", "same", "full"]):
        got = on_bvars(functools.partial(np.convolve, v=v, mode=number), a)
        np.testing.assert_array_equal(got, np.convolve(a, v, name))
    with pytest.raises(ValueError, match="mode must be one of"):
        hetgrad.grad_bp(lambda a: np.sum(np.convolve(a, v, "middle")), a)
    with pytest.raises(ValueError, match="cannot be empty"):
        hetgrad.grad_bp(lambda a: np.sum(np.convolve(a, np.ones(0))), a)


def test_second_and_third_derivatives_through_convolve_and_correlate() -> None:
    rng = np.random.default_rng(1)
    a, v = rng.standard_normal(4), rng.standard_normal(3)

    def f(a: Any, v: Any) -> Any:
        return np.sum(np.convolve(a, v, "same") ** 2) + np.sum(np.correlate(v, a, "full") ** 3)

    hetgrad.check_grads(f, a, v, order=3, rng=0)
    # sum(convolve(a, a)) = sum(a) ** 2: its Hessian is all 2s
    np.testing.assert_allclose(hetgrad.hessian(lambda a: np.sum(np.convolve(a, a)))(a),
                               np.full((4, 4), 2.0), rtol=1e-12)  # fmt: skip


# --------------------------------------------------------------------------------------
# interp
# --------------------------------------------------------------------------------------

XP = np.array([0.0, 1.0, 3.0])
FP = np.array([1.0, 3.0, 2.0])


def test_interp_inside_at_the_knots_and_outside_the_range() -> None:
    x = np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    got, pullback = hetgrad.vjp(np.interp, x, XP, FP)
    np.testing.assert_array_equal(got, np.interp(x, XP, FP))  # (the knots' values exactly)
    gx, gxp, gfp = pullback(np.ones(7))
    # slopes 2 and -0.5 inside (at a knot, the segment to its right; at the last, the last)
    np.testing.assert_array_equal(gx, [0.0, 2.0, 2.0, -0.5, -0.5, -0.5, 0.0])
    hetgrad.check_grads(np.interp, np.array([-1.0, 0.5, 2.0, 4.0]), XP, FP, rng=0)


def test_interp_left_and_right() -> None:
    x = np.array([-1.0, 0.5, 4.0])
    np.testing.assert_array_equal(on_bvars(lambda x: np.interp(x, XP, FP, -7.0, 9.0), x),
                                  np.interp(x, XP, FP, -7.0, 9.0))  # fmt: skip
    # Without left and right, the ends' values continue: x = -1 and 4 are fp[0] and fp[-1].
    g_fp = hetgrad.grad_bp(lambda fp: np.sum(np.interp(x, XP, fp)), FP)
    np.testing.assert_allclose(g_fp, [1.5, 0.5, 1.0])
    # With them, those points do not depend on fp, but on the constants.
    g_fp, g_left, g_right = hetgrad.grad_bp(
        lambda fp, lo, hi: np.sum(np.interp(x, XP, fp, left=lo, right=hi)), FP, 0.0, 0.0)
    np.testing.assert_allclose(g_fp, [0.5, 0.5, 0.0])
    assert (g_left, g_right) == (1.0, 1.0)
    g_x = hetgrad.grad_bp(lambda x: np.sum(np.interp(x, XP, FP, left=-7.0, right=9.0)), x)
    np.testing.assert_array_equal(g_x, [0.0, 2.0, 0.0])


def test_interp_result_types_and_period() -> None:
    x32 = np.array([0.5, 2.0], np.float32)
    got = on_bvars(lambda x: np.interp(x, XP, FP), x32)
    assert got.dtype == np.interp(x32, XP, FP).dtype == np.float64
    assert type(on_bvars(lambda x: np.interp(x, XP, FP), 0.5)) is np.float64  # (not 0-d)
    x = np.array([-5.5, 0.5, 2.0, 7.25])
    xp = np.array([3.5, -0.3, 1.0, 6.2])  # (3.5, 3.7, 1.0 and 2.2 in the period)
    want = np.interp(x, xp, FP.tolist() + [0.0], period=4.0)
    np.testing.assert_allclose(
        on_bvars(lambda x: np.interp(x, xp, np.append(FP, 0.0), period=4.0), x), want,
        rtol=1e-14)  # fmt: skip
    hetgrad.check_grads(lambda x, xp, fp, p: np.interp(x, xp, fp, period=p), x, xp,
                        np.append(FP, 0.0), 4.0, rng=0)  # fmt: skip
    assert float(on_bvars(lambda fp: np.interp(1.0, [1.0], fp), np.array([5.0]))) == 5.0


def test_interp_with_infinite_or_nan_samples_gives_numpys_values() -> None:
    # Next to an infinite sample the line is inf * 0 or inf - inf; NumPy then takes the
    # sample at a knot, the line from the segment's other end, or the common value of both
    # ends, and a NaN x stays NaN.  Every combination of these samples, at and between
    # the knots, outside them and at NaN, with and without period, left and right.
    special = [0.0, 1.0, np.inf, -np.inf, np.nan]
    x = np.array([-np.inf, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, np.inf, np.nan])
    xp = np.array([0.0, 1.0, 2.0, 3.0])
    options: list[dict[str, Any]] = [{}, {"period": 3.5}, {"left": np.inf, "right": np.nan}]
    with np.errstate(invalid="ignore"):
        for fp in itertools.product(special, repeat=4):
            for kw in options:
                got = hetgrad.vjp(lambda x, fp, kw=kw: np.interp(x, xp, fp, **kw), x,
                                  np.array(fp))[0]  # fmt: skip
                np.testing.assert_array_equal(got, np.interp(x, xp, fp, **kw))


def test_interp_refusals() -> None:
    with pytest.raises(NotImplementedError, match="numpy.interp"):
        hetgrad.grad_bp(lambda x: np.interp(x, XP, FP + 1j), 0.5)
    with pytest.raises(ValueError, match="same length"):
        hetgrad.grad_bp(lambda x: np.interp(x, XP, FP[:2]), 0.5)
    with pytest.raises(ValueError, match="empty"):
        hetgrad.grad_bp(lambda x: np.interp(x, np.ones(0), np.ones(0)), 0.5)
    with pytest.raises(ValueError, match="period"):
        hetgrad.grad_bp(lambda x: np.interp(x, XP, FP, period=0.0), 0.5)


# --------------------------------------------------------------------------------------
# gradient, trapezoid, ediff1d, cumulative_sum and cumulative_prod
# --------------------------------------------------------------------------------------

F = np.random.default_rng(2).standard_normal((4, 5, 3))


@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("spacing, axis", [
    ((), None), ((), (2, 0, 1)), ((0.5,), None), ((0.5,), (2, 0)), ((0.5, 2.0, 1.5), None),
    ((np.array([0.0, 0.5, 1.5, 1.7]), 2, np.arange(3) * 0.3), (0, 1, 2)),
    ((np.arange(3) * 0.3, [0.0, 0.5, 1.5, 1.7]), (-1, 0)),
])  # fmt: skip
def test_gradient_matches_numpy(edge_order: int, spacing: tuple[Any, ...], axis: Any) -> None:
    want = np.gradient(F, *spacing, axis=axis, edge_order=edge_order)
    got = on_bvars(lambda f: np.gradient(f, *spacing, axis=axis, edge_order=edge_order), F)
    assert type(got) is type(want)  # (a tuple, or before NumPy 2.0 a list)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-13)
    ax = 0 if axis is None else axis[0]

    def first(f: Any) -> Any:  # the derivative along the first axis given: linear in f
        return np.gradient(f, *spacing[:1], axis=ax, edge_order=edge_order)

    w = np.random.default_rng(3).standard_normal(F.shape)
    got = hetgrad.grad_bp(lambda f: np.sum(w * first(f)), F)
    np.testing.assert_allclose(got, linear_gradient(first, F, w), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("edge_order", [1, 2])
def test_gradient_in_the_coordinates_and_the_spacing(edge_order: int) -> None:
    f = F[:, :, 0]
    for c in (np.array([0.0, 0.5, 1.5, 1.7]), np.array([0.0, 0.5, 1.0, 1.5])):  # (uniform too)
        got = on_bvars(lambda c: np.gradient(f, c, axis=0, edge_order=edge_order), c)
        np.testing.assert_allclose(got, np.gradient(f, c, axis=0, edge_order=edge_order),
                                   rtol=1e-12)  # fmt: skip
        hetgrad.check_grads(lambda f, c: np.gradient(f, c, axis=0, edge_order=edge_order), f, c,
                            order=2, rng=0)  # fmt: skip
    hetgrad.check_grads(lambda f, h: np.gradient(f, h, 2.0, edge_order=edge_order), f, 0.5,
                        order=2, rng=0)  # fmt: skip


def test_gradient_dtypes_and_errors() -> None:
    got = on_bvars(lambda h: np.gradient(np.arange(4), h), 0.5)
    assert got.dtype == np.float64
    f32 = F.astype(np.float32)
    got = on_bvars(lambda f: np.gradient(f, np.float64(0.3), axis=1), f32)
    assert got.dtype == np.gradient(f32, np.float64(0.3), axis=1).dtype == np.float32
    with pytest.raises(ValueError, match="'edge_order' greater than 2"):
        hetgrad.grad_bp(lambda f: np.sum(np.gradient(f, edge_order=3)[0]), F)
    with pytest.raises(ValueError, match="repeated axis"):
        hetgrad.grad_bp(lambda f: np.sum(np.gradient(f, axis=(0, -3))[0]), F)
    with pytest.raises(AxisError):
        hetgrad.grad_bp(lambda f: np.sum(np.gradient(f, axis=3)), F)
    with pytest.raises(ValueError, match="too small"):
        hetgrad.grad_bp(lambda f: np.sum(np.gradient(f, axis=2, edge_order=2)), F[:, :, :2])
    with pytest.raises(TypeError, match="invalid number of arguments"):
        hetgrad.grad_bp(lambda f: np.sum(np.gradient(f, 1.0, 2.0)[0]), F)
    with pytest.raises(ValueError, match="must match the length"):
        hetgrad.grad_bp(lambda f: np.sum(np.gradient(f, np.arange(3.0), axis=0)), F)


def test_trapezoid_with_sample_points() -> None:
    y = F[:, :, 0]
    x = np.array([0.0, 0.5, 1.5, 1.7])
    got, pullback = hetgrad.vjp(lambda y, x: np.trapezoid(y, x, axis=0), y, x)
    np.testing.assert_allclose(got, np.trapezoid(y, x, axis=0), rtol=1e-14)
    gy, gx = pullback(np.ones(5))
    # each sample's weight is half the width of its neighbouring intervals
    np.testing.assert_allclose(gy, np.broadcast_to([[0.25], [0.75], [0.6], [0.1]], y.shape))
    hetgrad.check_grads(lambda y, x: np.trapezoid(y, x, axis=0), y, x, order=2, rng=0)
    xs = np.cumsum(F[:, :, 1] ** 2, axis=1)  # points per row, along the last axis
    hetgrad.check_grads(lambda y, x, dx: np.trapezoid(y, x) + np.trapezoid(y, dx=dx), y, xs,
                        0.3, order=2, rng=0)  # fmt: skip


def test_ediff1d_keeps_the_dtype_of_ary() -> None:
    a = F[0].astype(np.float32)
    got = on_bvars(lambda a: np.ediff1d(a, to_begin=[1.5], to_end=np.ones(2)), a)
    want = np.ediff1d(a, to_begin=[1.5], to_end=np.ones(2))
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    hetgrad.check_grads(lambda a, b, e: np.ediff1d(a, to_end=e, to_begin=b), F[0], 1.5,
                        np.ones(2), order=2, rng=0)  # fmt: skip
    with pytest.raises(TypeError, match="same_kind"):
        hetgrad.grad_bp(lambda e: np.sum(np.ediff1d(np.arange(3), to_end=e)), 1.0)


@pytest.mark.skipif(not hasattr(np, "cumulative_sum"), reason="NumPy 2.1")
@pytest.mark.parametrize("name", ["cumulative_sum", "cumulative_prod"])
def test_cumulative_functions(name: str) -> None:
    fn = getattr(np, name)
    for axis, initial in itertools.product((0, -1), (False, True)):
        scan = functools.partial(fn, axis=axis, include_initial=initial)
        np.testing.assert_allclose(on_bvars(scan, F), scan(F), rtol=1e-14)
    np.testing.assert_array_equal(on_bvars(fn, np.float32(2.0)), fn(np.float32(2.0)))
    with pytest.raises(ValueError, match="axis"):
        hetgrad.grad_bp(lambda f: np.sum(fn(f)), F)
    with pytest.raises(NotImplementedError, match=f"numpy.{name} with out="):
        hetgrad.grad_bp(lambda f: np.sum(fn(f, axis=0, out=np.empty(F.shape))), F)


# --------------------------------------------------------------------------------------
# polynomials
# --------------------------------------------------------------------------------------


def test_polyfit_matches_numpy() -> None:
    rng = np.random.default_rng(4)
    x = np.linspace(-1.0, 1.0, 7) + rng.uniform(-0.05, 0.05, 7)
    y = np.stack([np.sin(2 * x), x**3], axis=1)
    w = rng.uniform(0.5, 2.0, 7)
    for deg, yy, ww, full in itertools.product((0, 1, 3), (y[:, 0], y), (None, w), (False, True)):
        fit = functools.partial(np.polyfit, x, deg=deg, w=ww, full=full)
        for g, want in zip(*[(out,) if not full else out for out in (on_bvars(fit, yy), fit(yy))]):
            np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12)
    # linear in y: the gradient is NumPy's fit of each unit vector
    v = rng.standard_normal(4)
    g = hetgrad.grad_bp(lambda y: np.sum(v * np.polyfit(x, y, 3)), y[:, 0])
    np.testing.assert_allclose(g, linear_gradient(lambda e: np.polyfit(x, e, 3), y[:, 0], v),
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    hetgrad.check_grads(lambda x, y, w: np.polyfit(x, y, 2, w=w), x, y, w, order=2, rng=0)
    with pytest.warns(RankWarning):
        hetgrad.grad_bp(lambda y: np.sum(np.polyfit(np.ones(3), y, 1)), np.arange(3.0))


def test_polyval_vander_polyder_polyint_match_numpy() -> None:
    p = np.array([1.5, -2.0, 0.5, 3.0])
    x32 = np.array([0.3, -1.2, 0.0], np.float32)
    for fn, args in [(np.polyval, (p, x32)), (np.polyval, (p.astype(np.float32), x32)),
                     (np.polyval, (p, 0.7)), (lambda x: np.vander(x, 5), (x32,)),
                     (lambda x: np.vander(x, increasing=True), (x32,)),
                     (lambda p: np.polyder(p, 2), (p,)), (lambda p: np.polyint(p, 2, [1.0, 2.0]),
                                                          (p.astype(np.float32),))]:  # fmt: skip
        got, want = on_bvars(fn, *args), fn(*args)
        assert np.result_type(got) == np.result_type(want)
        np.testing.assert_array_equal(got, want)
    hetgrad.check_grads(lambda p, x: np.polyval(p, x), p, np.array([0.3, -1.2]), order=2, rng=0)
    hetgrad.check_grads(lambda x: np.vander(x, 4), np.array([0.3, 0.0, -1.2]), order=2, rng=0)
    hetgrad.check_grads(lambda p, k: np.polyint(p, 3, k), p, 0.5, order=2, rng=0)


def test_a_bvar_of_a_list_is_read_as_numpy_reads_a_list_where_a_sequence_is_taken() -> None:
    # polyval's coefficients and block's blocks may be lists, and stack's arrays come as
    # one: a BVar of a list there is what the list is to NumPy (other functions refuse it,
    # naming themselves: test_misuse).
    coefficients, rows = [1.5, -2.0, 0.5], [np.array([1.0, 2.0]), np.array([3.0, -1.0])]
    got = hetgrad.grad_bp(lambda p: np.polyval(p, 2.0), coefficients)
    assert type(got) is list and got == pytest.approx([4.0, 2.0, 1.0])
    for fn in (lambda rs: np.block([rs]), np.stack, hnp.array):
        np.testing.assert_array_equal(hetgrad.eval_bp(fn, rows), fn(rows))
        got = hetgrad.grad_bp(lambda rs, fn=fn: np.sum(fn(rs) ** 2), rows)
        np.testing.assert_array_equal(got[0], 2.0 * rows[0])
        np.testing.assert_array_equal(got[1], 2.0 * rows[1])


def test_polyder_and_polyint_of_a_0d_value_raise_numpys_error() -> None:
    for fn in (np.polyder, np.polyint, lambda p: np.polyder(p, 0)):
        with pytest.raises(TypeError, match="unsized object"):
            fn(np.array(3.0))  # NumPy's own
        with pytest.raises(TypeError, match="unsized object"):
            hetgrad.grad_bp(lambda p, fn=fn: np.sum(fn(p)), np.array(3.0))
    assert hetgrad.grad_bp(lambda p: np.polyint(p, 0), np.array(3.0)) == 1.0


def test_polyfit_cov_complex_convolve_and_a_poly1d_are_refused_naming_the_function() -> None:
    x = np.linspace(0.0, 1.0, 5)
    with pytest.raises(NotImplementedError, match="numpy.polyfit with cov="):
        hetgrad.grad_bp(lambda y: np.sum(np.polyfit(x, y, 1, cov=True)[0]), x)
    with pytest.raises(NotImplementedError, match="numpy.convolve"):
        hetgrad.grad_bp(lambda a: np.sum(np.abs(np.convolve(a, [1j, 1.0]))), x)
    with pytest.raises(NotImplementedError, match="numpy.correlate"):
        hetgrad.grad_bp(lambda a: np.sum(np.abs(np.correlate(a, [1j, 1.0]))), x)
    with pytest.raises(NotImplementedError, match="numpy.polyval"):
        hetgrad.grad_bp(lambda p: np.sum(np.polyval(p, np.poly1d([1.0, 2.0]))), x)
