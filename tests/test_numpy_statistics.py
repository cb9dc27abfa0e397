"""Order statistics, NaN-ignoring reductions, cov and corrcoef: special values (ties, one
element, empty axes, all-NaN slices), exact agreement with NumPy, and the keywords and
methods hetgrad refuses."""

from __future__ import annotations

import functools
import itertools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import hetgrad
from finite_diff import numeric_grad

# NumPy 2 (NEP 50) fixes how scalars promote; hetgrad follows its arithmetic bit for bit.
METHODS = ["linear", "lower", "higher", "nearest", "midpoint", "weibull", "hazen",
           "median_unbiased", "normal_unbiased", "interpolated_inverted_cdf"]  # fmt: skip
grad = hetgrad.grad_bp


def value(f: Callable[..., Any], *args: Any) -> Any:
    """``f(*args)`` computed on BVars (the lifted path), as a plain value."""
    return hetgrad.vjp(f, *args)[0]


# hetgrad repeats the quantile formulas of NumPy 2.4 to the bit; NumPy 2.0 computed some
# quantiles in float32 (a float32 level, a float32 input), so there they agree to float32
# rounding; and it did not transpose a (1, n) ``m`` in ``cov(m, rowvar=False)``.
NUMPY_2_4 = np.lib.NumpyVersion(np.__version__) >= "2.4.0"


def assert_same(got: Any, want: Any) -> None:
    """Equal to NumPy's result bit for bit (NaN where it has NaN), in shape and dtype."""
    assert np.shape(got) == np.shape(want)
    assert np.result_type(got) == np.result_type(want), (np.result_type(got), np.result_type(want))
    if NUMPY_2_4:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def quiet(f: Callable[..., Any], *args: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return f(*args)


# -- ties: the gradient of a sorted position is shared by the elements equal to it --------


def test_median_ties_share_the_gradient_evenly() -> None:
    np.testing.assert_array_equal(grad(np.median, np.array([1.0, 2.0, 2.0])), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(grad(np.median, np.array([2.0, 2.0, 9.0, 2.0])),
                                  [1 / 3, 1 / 3, 0.0, 1 / 3])  # fmt: skip
    np.testing.assert_array_equal(grad(np.median, np.full(4, 5.0)), np.full(4, 0.25))


def test_extreme_quantiles_split_ties_like_max_and_min() -> None:
    a = np.array([3.0, 1.0, 3.0, 1.0, 2.0])
    np.testing.assert_array_equal(grad(lambda x: np.quantile(x, 1.0), a), grad(np.max, a))
    np.testing.assert_array_equal(grad(lambda x: np.percentile(x, 0), a), grad(np.min, a))


def test_interpolation_between_tied_values_is_shared_by_all_of_them() -> None:
    a = np.array([2.0, 1.0, 2.0, 3.0, 2.0])  # sorted: 1 2 2 2 3; q = 0.6 reads positions 2, 3
    np.testing.assert_allclose(grad(lambda x: np.quantile(x, 0.6), a), [1 / 3, 0, 1 / 3, 0, 1 / 3])


def test_higher_derivatives_at_ties_share_too() -> None:
    x = np.array([1.0, 2.0, 2.0])
    w = np.array([0.0, 0.5, 0.5])
    hess = np.stack([grad(lambda y, i=i: grad(lambda z: np.median(z) ** 2, y)[i], x)
                     for i in range(3)])  # fmt: skip
    np.testing.assert_allclose(hess, 2.0 * np.outer(w, w))


def test_nanmax_nanmin_and_ptp_split_ties() -> None:
    a = np.array([3.0, np.nan, 3.0, 1.0])
    np.testing.assert_array_equal(grad(np.nanmax, a), [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(grad(np.nanmin, a), [0.0, 0.0, 0.0, 1.0])
    b = np.array([3.0, 3.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(grad(np.ptp, b), [0.5, 0.5, -1 / 3, -1 / 3, -1 / 3])
    np.testing.assert_array_equal(grad(np.ptp, np.full(3, 2.0)), np.zeros(3))


# -- one element, empty axes ---------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("q", [0.0, 37.5, 100.0, [0.0, 50.0, 100.0]])
def test_percentile_of_one_element(method: str, q: Any) -> None:
    a = np.array([1.5])
    f = lambda x: np.percentile(x, q, method=method)
    assert_same(value(f, a), np.percentile(a, q, method=method))
    np.testing.assert_allclose(grad(lambda x: np.sum(f(x)), a), [np.size(q)], rtol=1e-15)


@pytest.mark.parametrize("shape, axis", [((0,), None), ((2, 0), 1), ((0, 3), 0), ((0, 3), 1),
                                         ((3, 0), None), ((2, 0, 2), (0, 1))])  # fmt: skip
@pytest.mark.parametrize("name", ["median", "nanmedian", "quantile", "percentile",
                                  "nanquantile", "nanpercentile", "ptp", "nanmax",
                                  "nanprod", "nanvar", "nanstd"])  # fmt: skip
def test_empty_axes_behave_as_in_numpy(shape: tuple[int, ...], axis: Any, name: str) -> None:
    numpy_f = getattr(np, name)
    levels = {"quantile": [0.5, 0.9], "percentile": [50.0, 90.0]}
    q = next((v for k, v in levels.items() if name.endswith(k)), None)
    f = lambda x: numpy_f(x, axis=axis) if q is None else numpy_f(x, q, axis=axis)
    a = np.zeros(shape)
    try:
        want = quiet(f, a)
    except Exception as e:  # NumPy refuses (quantile of nothing, ptp and nanmax of nothing)
        with pytest.raises(type(e)):
            quiet(value, f, a)
        return
    assert_same(quiet(value, f, a), want)


# -- all-NaN slices: NaN, NumPy's warning, a zero gradient ---------------------------------

ALL_NAN_ROW = np.array([[np.nan, np.nan, np.nan], [3.0, np.nan, 1.0], [0.5, 2.0, -1.0]])


@pytest.mark.parametrize("f", [
    np.nanmedian, lambda x, axis: np.nanquantile(x, 0.3, axis=axis),
    lambda x, axis: np.nanpercentile(x, [10.0, 100.0], axis=axis, method="nearest"),
    np.nanmax, np.nanmin, np.nanvar, np.nanstd,
    lambda x, axis: np.nanstd(x, axis=axis, ddof=2),
], ids=["nanmedian", "nanquantile", "nanpercentile", "nanmax", "nanmin", "nanvar", "nanstd",
        "nanstd ddof=2"])  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_nan_slices_give_nan_and_a_zero_gradient(f: Callable[..., Any], dtype: Any) -> None:
    a = ALL_NAN_ROW.astype(dtype)
    with pytest.warns(RuntimeWarning):
        want = f(a, axis=1)
    with pytest.warns(RuntimeWarning):
        assert_same(value(lambda x: f(x, axis=1), a), want)

    def finite_part(x: Any) -> Any:  # the outputs that are not NaN
        return np.nansum(f(x, axis=1) * np.arange(1.0, 1.0 + np.size(want)).reshape(want.shape))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g = grad(finite_part, a)
        assert np.all(np.isfinite(g))
        np.testing.assert_array_equal(g[0], 0.0)  # the all-NaN row
        np.testing.assert_array_equal(g[np.isnan(a)], 0.0)
        want_g = numeric_grad(finite_part, (a.astype(np.float64),))[0]
    np.testing.assert_allclose(g, want_g, rtol=1e-4, atol=1e-6)


def test_all_nan_input_is_nan_everywhere() -> None:
    a = np.full((2, 3), np.nan)
    for f in (np.nanmedian, lambda x: np.nanquantile(x, [0.2, 0.8]), np.nanmax, np.nanvar):
        with pytest.warns(RuntimeWarning):
            assert np.all(np.isnan(value(f, a)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            g = grad(lambda x, f=f: np.nansum(f(x)), a)
            np.testing.assert_array_equal(g, np.zeros((2, 3)))


def test_nanprod_and_nancumsum_of_nans() -> None:
    a = np.array([[np.nan, np.nan], [2.0, np.nan]])
    assert_same(value(lambda x: np.nanprod(x, axis=1), a), np.nanprod(a, axis=1))
    np.testing.assert_array_equal(grad(lambda x: np.sum(np.nanprod(x, axis=1)), a),
                                  [[0.0, 0.0], [1.0, 0.0]])  # fmt: skip
    assert_same(value(np.nancumsum, a), np.nancumsum(a))
    # the running products are 1, 1, 2, 2: a[1, 0] is in two of them
    np.testing.assert_array_equal(grad(lambda x: np.sum(np.nancumprod(x)), a),
                                  [[0.0, 0.0], [2.0, 0.0]])  # fmt: skip


def test_a_nan_makes_the_plain_order_statistics_nan() -> None:
    a = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])
    for f in (lambda x: np.median(x, axis=1), lambda x: np.quantile(x, [0.0, 0.5], axis=1)):
        assert_same(value(f, a), f(a))
        np.testing.assert_array_equal(grad(lambda x, f=f: np.nansum(f(x)), a)[0], 0.0)


# -- exact agreement with NumPy ----------------------------------------------------------


def sample(shape: tuple[int, ...], dtype: Any, nans: bool, seed: int = 0) -> np.ndarray:
    """Normal values with some ties (rounded entries), and NaNs if asked for."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    a.flat[::3] = np.round(a.flat[::3])
    if nans:
        a.flat[1::4] = np.nan
    return a.astype(dtype)


AXES = {(4,): [None, 0], (3, 4): [None, 0, 1, (0, 1)], (2, 3, 4): [None, 1, (0, 2), (2, 0)]}


@pytest.mark.parametrize("shape", list(AXES), ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nans", [False, True])
@pytest.mark.parametrize("name", ["quantile", "percentile", "nanquantile", "nanpercentile"])
def test_quantiles_equal_numpys(shape: tuple[int, ...], dtype: Any, nans: bool,
                                name: str) -> None:  # fmt: skip
    a = sample(shape, dtype, nans)
    numpy_f = getattr(np, name)
    # Python numbers (which do not count in the result's dtype), NumPy scalars and arrays
    levels: list[Any] = [0.3, 1, np.float32(0.7), np.array([0.0, 0.25, 1.0]), [0, 1]]
    if name.endswith("percentile"):
        levels = [30.0, 100, np.float32(70.0), np.array([0.0, 25.0, 100.0]), [0, 100]]
    for axis, keepdims, method, q in itertools.product(AXES[shape], (False, True), METHODS,
                                                        levels):  # fmt: skip
        f = functools.partial(numpy_f, q=q, axis=axis, keepdims=keepdims, method=method)
        assert_same(quiet(value, f, a), quiet(f, a))


@pytest.mark.parametrize("shape", list(AXES), ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("nans", [False, True])
def test_reductions_equal_numpys(shape: tuple[int, ...], dtype: Any, nans: bool) -> None:
    a = sample(shape, dtype, nans)
    fs = [np.median, np.nanmedian, np.nanmax, np.nanmin, np.nanprod, np.nanvar, np.nanstd,
          np.ptp, functools.partial(np.nanvar, ddof=1), functools.partial(np.nanstd, ddof=2)]
    for f, axis, keepdims in itertools.product(fs, AXES[shape], (False, True)):
        g = functools.partial(f, axis=axis, keepdims=keepdims)
        assert_same(quiet(value, g, a), quiet(g, a))
    for f, axis in itertools.product((np.nancumsum, np.nancumprod), [None, 0, -1]):
        g = functools.partial(f, axis=axis)
        assert_same(value(g, a), g(a))


def test_keywords_of_the_nan_reductions() -> None:
    a = np.array([[2.0, np.nan, -1.0, 0.5], [np.nan, 3.0, 1.5, -2.0]])
    where = np.array([True, True, False, True])
    cases: list[Callable[..., Any]] = [
        lambda x: np.nanmax(x, axis=1, initial=-5.0, where=where),
        lambda x: np.nanmin(x, axis=0, initial=0.0, where=where),
        lambda x: np.nanmax(x, initial=2.5),
        lambda x: np.nanprod(x, axis=1, where=where, initial=2.0),
        lambda x: np.nanvar(x, axis=1, where=where, ddof=1),
        lambda x: np.nanstd(x, axis=1, where=where, keepdims=True),
        lambda x: np.nanvar(x, axis=1, dtype=np.float64),
    ]
    for f in cases:
        assert_same(value(f, a), f(a))
        weights = np.arange(1.0, 1.0 + np.size(f(a))).reshape(np.shape(f(a)))
        loss = lambda x, f=f, w=weights: np.sum(f(x) * w)
        np.testing.assert_allclose(grad(loss, a), numeric_grad(loss, (a,))[0], rtol=1e-5,
                                   atol=1e-7)  # fmt: skip


# -- cov and corrcoef ----------------------------------------------------------------------

COV_SHAPES = [(5,), (2, 5), (3, 4), (4, 3), (5, 1), (3, 3)] + ([(1, 5)] if NUMPY_2_4 else [])


@pytest.mark.parametrize("shape", COV_SHAPES, ids=str)
@pytest.mark.parametrize("rowvar", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cov_and_corrcoef_equal_numpys(shape: tuple[int, ...], rowvar: bool, dtype: Any) -> None:
    rng = np.random.default_rng(1)
    m, y = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    calls: list[Callable[..., Any]] = [
        lambda m: np.cov(m, rowvar=rowvar), lambda m: np.cov(m, rowvar=rowvar, bias=True),
        lambda m: np.cov(m, rowvar=rowvar, ddof=0), lambda m: np.cov(m, y, rowvar=rowvar),
        lambda m: np.cov(m, rowvar=rowvar, dtype=np.float32),
        lambda m: np.corrcoef(m, rowvar=rowvar), lambda m: np.corrcoef(m, y, rowvar=rowvar),
        lambda m: np.corrcoef(y, m, rowvar=rowvar, dtype=np.float32),
    ]
    for f in calls:
        try:
            want = quiet(f, m)
        except ValueError:  # (mismatched shapes: NumPy's error, and hetgrad's)
            with pytest.raises(ValueError):
                value(f, m)
            continue
        assert_same(quiet(value, f, m), want)
        if np.all(np.isfinite(want)) and np.result_type(want) == dtype == np.float64:
            hetgrad.check_grads(f, m, order=2, rtol=1e-4, atol=1e-6)


def test_cov_weights_against_numpy_and_finite_differences() -> None:
    rng = np.random.default_rng(2)
    m = rng.standard_normal((3, 5))
    fw, aw = np.array([1, 2, 0, 3, 1]), np.array([0.5, 1.0, 2.0, 0.25, 1.5])
    for kw in [{"fweights": fw}, {"aweights": aw}, {"fweights": fw, "aweights": aw},
               {"fweights": fw, "aweights": aw, "ddof": 0}, {"aweights": aw, "bias": True}]:
        f = functools.partial(np.cov, **kw)
        assert_same(value(f, m), f(m))
        hetgrad.check_grads(f, m, order=2)
    # aweights may be BVars, even alone (the data a constant)
    f = lambda w: np.cov(m, fweights=fw, aweights=w)
    assert_same(value(f, aw), np.cov(m, fweights=fw, aweights=aw))
    hetgrad.check_grads(f, aw, order=2)


def test_cov_of_one_observation_and_of_nothing() -> None:
    with pytest.warns(RuntimeWarning):
        assert_same(value(np.cov, np.array([1.0])), quiet(np.cov, np.array([1.0])))
    assert_same(value(np.cov, np.zeros((0, 3))), np.cov(np.zeros((0, 3))))
    assert_same(value(np.corrcoef, np.array([1.0, 2.0, 4.0])), np.corrcoef([1.0, 2.0, 4.0]))


# -- refusals ------------------------------------------------------------------------------


REFUSALS: list[tuple[Callable[..., Any], list[str]]] = [
    (lambda x: np.median(x, out=np.empty(())), ["numpy.median", "out="]),
    (lambda x: np.nanmedian(x, out=np.empty(())), ["numpy.nanmedian", "out="]),
    (lambda x: np.quantile(x, 0.5, out=np.empty(())), ["numpy.quantile", "out="]),
    (lambda x: np.quantile(x, 0.5, method="inverted_cdf"), ["numpy.quantile", "inverted_cdf"]),
    (lambda x: np.nanpercentile(x, 5, method="closest_observation"),
     ["numpy.nanpercentile", "closest_observation"]),
    (lambda x: np.percentile(x, 50, method="inverted_cdf", weights=np.ones(3)),
     ["numpy.percentile", "weights="]),
    (lambda x: np.nanvar(x, mean=np.zeros(())), ["numpy.nanvar", "mean="]),
    (lambda x: np.nanstd(x, mean=np.zeros(())), ["numpy.nanstd", "mean="]),
    (lambda x: np.nanmax(x, out=np.empty(())), ["numpy.nanmax", "out="]),
    (lambda x: np.nanmin(x, out=np.empty(())), ["numpy.nanmin", "out="]),
    (lambda x: np.nanprod(x, out=np.empty(())), ["numpy.nanprod", "out="]),
    (lambda x: np.nancumsum(x, out=np.empty(3)), ["numpy.nancumsum", "out="]),
    (lambda x: np.nancumprod(x, out=np.empty(3)), ["numpy.nancumprod", "out="]),
    (lambda x: np.ptp(x, out=np.empty(())), ["numpy.ptp", "out="]),
]


@pytest.mark.parametrize("call, words", REFUSALS, ids=[" ".join(w) for _, w in REFUSALS])
def test_unsupported_keywords_and_methods_raise(call: Callable[..., Any],
                                                words: list[str]) -> None:  # fmt: skip
    with pytest.raises(NotImplementedError) as info:
        grad(lambda x: np.sum(call(x)), np.array([1.0, 2.0, 3.0]))
    for word in words:
        assert word in str(info.value)


def test_constant_arguments_that_are_bvars_raise_type_error() -> None:
    a = np.array([1.0, 2.0, 3.0])
    with pytest.raises(TypeError, match="q is a BVar"):
        grad(lambda q: np.quantile(a, q), 0.5)
    with pytest.raises(TypeError, match="fweights"):
        grad(lambda w: np.sum(np.cov(a, fweights=w)), np.ones(3))


def test_invalid_arguments_raise_numpys_errors() -> None:
    a = np.array([1.0, 2.0, 3.0])
    for call, error in [
        (lambda x: np.quantile(x, 1.5), ValueError), (lambda x: np.percentile(x, -1), ValueError),
        (lambda x: np.quantile(x, 0.5, method="bogus"), ValueError),
        (lambda x: np.median(x, axis=1), np.exceptions.AxisError),
        (lambda x: np.nanvar(x, ddof=1, correction=1), ValueError),
        (lambda x: np.cov(x, ddof=1.5), ValueError),
        (lambda x: np.cov(x, aweights=-np.ones(3)), ValueError),
        (lambda x: np.cov(x, fweights=[1.5, 1.0, 1.0]), TypeError),
    ]:
        with pytest.raises(error):
            call(a)
        with pytest.raises(error):
            grad(lambda x, call=call: np.sum(call(x)), a)


def test_nanmean_is_numpys_to_the_bit_and_an_all_nan_slice_has_a_zero_gradient() -> None:
    b = np.random.default_rng(0).standard_normal(1000)
    b[::7] = np.nan
    assert hetgrad.vjp(np.nanmean, b)[0] == np.nanmean(b)  # (the mean of the kept ones was not)
    m = np.arange(10.0, dtype=np.float32).reshape(2, 5)
    m[0] = np.nan
    with pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        got = hetgrad.vjp(lambda x: np.nanmean(x, axis=1), m)[0]
    assert got.dtype == np.float32 and np.isnan(got[0]) and got[1] == np.nanmean(m[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no 0/0 in the reverse pass)
        warnings.filterwarnings("ignore", "Mean of empty slice")
        g = hetgrad.grad(lambda x: np.nansum(np.nanmean(x, axis=1)))(m)
    np.testing.assert_array_equal(g, np.array([[0.0] * 5, [0.2] * 5], np.float32))


@pytest.mark.parametrize("f", [np.quantile, np.nanquantile])
def test_a_scalar_level_gives_a_numpy_scalar(f: Callable[..., Any]) -> None:
    for x in (np.array([3.0, 1.0, 2.0]), np.array([3.0, 1.0, 2.0], np.float32)):
        got, want = hetgrad.vjp(lambda a: f(a, 0.3), x)[0], f(x, 0.3)
        assert type(got) is type(want) and got == want  # (was a 0-d array)
