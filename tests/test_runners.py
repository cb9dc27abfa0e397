"""Runners: golden values, control flow, structures in and out, argnums, aux, errors."""

from __future__ import annotations

import dataclasses
import pathlib
import threading
from collections import OrderedDict, defaultdict
from typing import NamedTuple

import numpy as np
import pytest

import hetgrad
from hetgrad import backprop, backprop_with, eval_bp, grad, grad_bp, one, value_and_grad

# -- golden values ----------------------------------------------------------------------


def test_golden_sin_product() -> None:
    g = grad_bp(lambda v: v[0] * v[1] + np.sin(v[0]), [1.0, 2.0])
    assert type(g) is list
    assert g == [2.5403023058681398, 1.0]


def test_golden_triple_product() -> None:
    assert grad_bp(lambda v: v[0] * v[1] * v[2], [1.0, 2.0, 3.0]) == [6.0, 3.0, 2.0]


def test_golden_square() -> None:
    g = grad_bp(lambda x: x**2 + 3, 9.0)
    assert g == 18.0 and type(g) is float


def test_backprop_returns_value_and_gradient() -> None:
    assert backprop(lambda x: x**2 + 3, 9.0) == (84.0, 18.0)


def test_eval_bp_is_plain_call() -> None:
    assert eval_bp(lambda v, w: v[0] * w, [2.0], 3.0) == 6.0


# -- data-dependent control flow (the output is not the last recorded node) -------------


@pytest.mark.parametrize("x", [-5.0, 5.0])
def test_identity_through_if(x: float) -> None:
    assert grad_bp(lambda v: v if v < 0 else v, x) == 1.0


def test_relu_written_with_if() -> None:
    relu = lambda v: 0.0 if v < 0 else v
    assert grad_bp(relu, -5.0) == 0.0
    assert grad_bp(relu, 5.0) == 1.0


@pytest.mark.parametrize("x", [3.0, np.float32(2.0), np.array(1.5), np.array([1.0, 2.0])])
def test_identity_gives_one(x: object) -> None:
    if np.ndim(x) == 0:
        g = grad_bp(lambda v: v, x)
        assert g == one(x) and type(g) is type(one(x))
    else:
        _, pb = backprop_with(lambda v: v, x)
        np.testing.assert_array_equal(pb(one(x)), one(x))


def test_unused_argument_gets_zero() -> None:
    assert grad_bp(lambda x, y: x, 1.0, 2.0) == (1.0, 0.0)


def test_output_recorded_before_unrelated_later_op() -> None:
    def f(x: hetgrad.BVar) -> hetgrad.BVar:
        out = x * 3.0
        _unrelated = x * x * 100.0  # recorded after the output
        return out

    assert grad_bp(f, 2.0) == 3.0


def test_constant_output_gives_zero_gradient() -> None:
    assert grad_bp(lambda x: 7.0, 2.0) == 0.0
    np.testing.assert_array_equal(grad_bp(lambda x: 7.0, np.ones(3)), np.zeros(3))


def test_while_loop_on_primal() -> None:
    def f(x: hetgrad.BVar) -> hetgrad.BVar:
        while x < 100.0:
            x = x * 2.0
        return x

    assert grad_bp(f, 3.0) == 64.0  # 3 -> 192 after six doublings


# -- heterogeneous structures -----------------------------------------------------------


@dataclasses.dataclass
class MT:
    x: float
    y: float
    z: float


def test_dataclass_golden() -> None:
    g = grad_bp(lambda mt: mt.x * mt.y + mt.z, MT(5.0, 7.0, 2.0))
    assert g == MT(7.0, 5.0, 1.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Layer:
    w: np.ndarray
    b: np.ndarray
    activation: str = dataclasses.field(default="tanh", metadata={"static": True})
    n_calls: int = 0


@dataclasses.dataclass(frozen=True)
class Net:
    layers: list[Layer]
    scale: float


class Pair(NamedTuple):
    a: float
    b: np.ndarray


def _net(rng: np.random.Generator, dtype: type = np.float64) -> Net:
    return Net(
        [
            Layer(rng.normal(size=(3, 2)).astype(dtype), rng.normal(size=3).astype(dtype)),
            Layer(rng.normal(size=(1, 3)).astype(dtype), rng.normal(size=1).astype(dtype), "id"),
        ],
        0.5,
    )


def _run(net: Net, x: np.ndarray) -> object:
    h = x
    for layer in net.layers:
        z = layer.w @ h + layer.b
        h = np.tanh(z) if layer.activation == "tanh" else z
    return net.scale * np.sum(h * h)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nested_dataclass_structure_types_and_dtypes(dtype: type) -> None:
    rng = np.random.default_rng(0)
    net = _net(rng, dtype)
    x = rng.normal(size=2).astype(dtype)
    g = grad_bp(lambda n: _run(n, x), net)
    assert type(g) is Net and type(g.layers) is list and type(g.layers[0]) is Layer
    assert type(g.scale) is float
    for gl, nl in zip(g.layers, net.layers):
        assert gl.w.shape == nl.w.shape and gl.w.dtype == np.dtype(dtype)
        assert gl.b.dtype == np.dtype(dtype)
        assert gl.activation == nl.activation and gl.n_calls == 0  # static leaves pass
    from finite_diff import assert_close_tree, numeric_grad

    if dtype is np.float64:
        assert_close_tree(g, numeric_grad(lambda n: _run(n, x), (net,))[0], rtol=1e-5)


def test_mixed_containers_come_back_identical() -> None:
    value = {
        "pair": Pair(2.0, np.array([1.0, 2.0])),
        "od": OrderedDict([("z", 1.0), ("a", np.float32(3.0))]),
        "dd": defaultdict(list, {"k": [1.0, 2.0]}),
        "t": (4.0, "label", None, 3, np.arange(3)),
        "flag": True,
    }

    def f(v: object) -> object:
        return (
            v["pair"].a * np.sum(v["pair"].b)
            + v["od"]["z"] * v["od"]["a"]
            + v["dd"]["k"][0] * v["dd"]["k"][1]
            + v["t"][0] ** 2
        )

    g = grad_bp(f, value)
    assert list(g) == list(value)
    assert type(g["pair"]) is Pair and g["pair"].a == 3.0
    np.testing.assert_array_equal(g["pair"].b, [2.0, 2.0])
    assert type(g["od"]) is OrderedDict and list(g["od"]) == ["z", "a"]
    assert g["od"]["z"] == 3.0 and g["od"]["a"] == np.float32(1.0)
    assert type(g["od"]["a"]) is np.float32
    assert type(g["dd"]) is defaultdict and g["dd"].default_factory is list
    assert g["dd"]["k"] == [2.0, 1.0]
    assert g["t"][0] == 8.0 and g["t"][1:4] == ("label", None, 3)
    np.testing.assert_array_equal(g["t"][4], np.arange(3))
    assert g["flag"] is True


def test_several_arguments_give_tuple() -> None:
    gx, gy = grad_bp(lambda x, y: np.sum(x * y), np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.testing.assert_array_equal(gx, [3.0, 4.0])
    np.testing.assert_array_equal(gy, [1.0, 2.0])


def test_returned_gradient_arrays_are_writable_and_distinct() -> None:
    gx, gy = grad_bp(lambda x, y: np.sum(x + y), np.ones(3), np.ones(3))
    assert gx is not gy and gx.flags.writeable and gy.flags.writeable
    gx += 1.0
    np.testing.assert_array_equal(gy, np.ones(3))


def test_empty_list_argument_gets_empty_gradient() -> None:
    assert grad_bp(lambda x, xs: x * 2.0, 1.0, []) == (2.0, [])


# -- backprop_with / vjp -------------------------------------------------------------------


def test_backprop_with_structured_output() -> None:
    y, pb = backprop_with(lambda d: {"s": d["a"] * 2.0, "p": d["a"] * d["b"]}, {"a": 3.0, "b": 4.0})
    assert y == {"s": 6.0, "p": 12.0}
    assert pb({"s": 1.0, "p": 0.0}) == {"a": 2.0, "b": 0.0}
    assert pb({"s": 0.0, "p": 1.0}) == {"a": 4.0, "b": 3.0}
    assert hetgrad.vjp is backprop_with


def test_backprop_with_array_output() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    y, pb = backprop_with(lambda x: a @ x, np.array([1.0, 1.0]))
    np.testing.assert_array_equal(y, [3.0, 7.0])
    np.testing.assert_array_equal(pb(np.array([1.0, 0.0])), [1.0, 2.0])


def test_backprop_with_rejects_wrong_cotangent() -> None:
    _, pb = backprop_with(lambda x: x * 2.0, np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        pb(np.ones(2))
    _, pb2 = backprop_with(lambda x: (x, x), 1.0)
    with pytest.raises(TypeError, match="structure"):
        pb2([1.0, 1.0, 1.0])


# -- grad / value_and_grad --------------------------------------------------------------


def test_grad_argnums_and_kwargs() -> None:
    f = lambda x, y, scale=1.0: scale * x * y**2
    assert grad(f)(2.0, 3.0) == 9.0
    assert grad(f, argnums=1)(2.0, 3.0, scale=2.0) == 24.0
    assert grad(f, argnums=(0, 1))(2.0, 3.0) == (9.0, 12.0)
    assert grad(f, argnums=-1)(2.0, 3.0) == 12.0


def test_grad_non_differentiated_int_argument_is_fine() -> None:
    assert grad(lambda x, n: x**n)(2.0, 3) == 12.0


def test_value_and_grad_with_aux() -> None:
    def f(x: hetgrad.BVar) -> tuple[object, object]:
        y = x * x
        return y, {"y": y, "note": "aux"}

    (v, aux), g = value_and_grad(f, has_aux=True)(3.0)
    assert (v, g) == (9.0, 6.0)
    assert aux == {"y": 9.0, "note": "aux"} and type(aux["y"]) is float
    g2, aux2 = grad(f, has_aux=True)(3.0)
    assert g2 == 6.0 and aux2["y"] == 9.0


def test_has_aux_requires_pair() -> None:
    with pytest.raises(TypeError, match="pair"):
        grad(lambda x: x, has_aux=True)(1.0)


def test_bad_argnums() -> None:
    with pytest.raises(ValueError, match="argnums"):
        grad(lambda x: x, argnums=2)(1.0)


def test_argnums_may_be_numpy_integers_as_in_jax() -> None:
    f = lambda x, y: x * y * y  # noqa: E731
    assert grad(f, argnums=np.int64(1))(2.0, 3.0) == 12.0  # one int: one gradient
    assert value_and_grad(f, argnums=np.int8(-1))(2.0, 3.0) == (18.0, 12.0)
    assert grad(f, argnums=(np.int64(1), 0))(2.0, 3.0) == (12.0, 9.0)
    assert hetgrad.jacobian(f, argnums=np.int32(0))(2.0, 3.0) == 9.0
    assert hetgrad.hessian(f, argnums=np.int32(1))(2.0, 3.0) == 4.0
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        grad(f, argnums=(1.0,))(2.0, 3.0)  # (was: "out of range")
    with pytest.raises(TypeError, match="argnums must be an int or a tuple of ints"):
        grad(f, argnums=(0, True))(2.0, 3.0)


def test_has_aux_takes_a_list_pair_as_jax_does() -> None:
    assert grad(lambda x: [x * x, x * 3.0], has_aux=True)(2.0) == (4.0, 6.0)
    assert grad(lambda p: p, has_aux=True)([1.0, 2.0]) == ([1.0, 0.0], 2.0)
    with pytest.raises(TypeError, match="pair"):
        grad(lambda x: [x, x, x], has_aux=True)(1.0)


# -- output checks ------------------------------------------------------------------------


def test_non_scalar_output_error_names_type_and_shape() -> None:
    with pytest.raises(TypeError) as e:
        grad_bp(lambda x: x * 2.0, np.ones(3))
    msg = str(e.value)
    assert "shape (3,)" in msg and "float64" in msg
    assert "backprop_with" in msg and "jacobian" in msg


def test_structured_output_error() -> None:
    with pytest.raises(TypeError, match="list"):
        grad_bp(lambda x: [x, x], 1.0)
    with pytest.raises(TypeError, match="returned a value of type str"):
        grad(lambda x: "nope")(1.0)


def test_scalar_outputs_of_every_kind() -> None:
    assert grad_bp(lambda x: np.sum(x), np.ones(2)).tolist() == [1.0, 1.0]
    g = grad_bp(lambda x: np.sum(x), np.ones(2, dtype=np.float32))
    assert g.dtype == np.float32
    assert grad_bp(lambda x: x.reshape(()), np.array([2.0])).tolist() == [1.0]


# -- argument checks ----------------------------------------------------------------------


def test_argument_without_differentiable_leaf() -> None:
    with pytest.raises(TypeError) as e:
        grad_bp(lambda x, n: x * n, 1.0, 3)
    # grad_bp takes no argnums: the fix it names is closing over the argument.
    assert "args[1]" in str(e.value) and "close over it" in str(e.value)
    assert "argnums" not in str(e.value)


class Opaque:
    pass


@dataclasses.dataclass
class Holder:
    layers: list[object]


def test_unsupported_leaf_names_its_path() -> None:
    bad = Holder([1.0, 2.0, {"activation": Opaque()}])
    with pytest.raises(TypeError) as e:
        grad_bp(lambda h: h.layers[0], bad)
    msg = str(e.value)
    assert "args[0].layers[2]['activation']" in msg
    assert "Opaque" in msg and "register_backprop" in msg


def test_complex_is_rejected_clearly() -> None:
    with pytest.raises(TypeError, match="complex"):
        grad_bp(lambda z: z, 1 + 2j)
    with pytest.raises(TypeError, match="complex"):
        grad_bp(lambda z: z, np.ones(2, dtype=complex))


# -- tapes are released -------------------------------------------------------------------


def test_tape_released_after_runner() -> None:
    import gc
    import weakref

    refs = []

    def f(x: hetgrad.BVar) -> hetgrad.BVar:
        refs.append(weakref.ref(x._tape))
        return x * 2.0

    grad_bp(f, 1.0)
    gc.collect()
    tape = refs[0]()
    assert tape is None or (tape.nodes is None and tape.closed_nodes is None)


def test_tape_released_when_function_raises() -> None:
    seen = []

    def f(x: hetgrad.BVar) -> hetgrad.BVar:
        seen.append(x)
        raise KeyError("boom")

    with pytest.raises(KeyError):
        grad_bp(f, 1.0)
    with pytest.raises(hetgrad.TapeError):
        seen[0] * 2.0


def test_threads_are_independent() -> None:
    results: dict[int, list[float]] = {}

    def work(k: int) -> None:
        results[k] = [grad_bp(lambda x: x ** (k + 1), 1.5) for _ in range(300)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(6):
        want = (k + 1) * 1.5**k
        assert all(abs(g - want) < 1e-12 for g in results[k])


def test_gradient_never_aliases_the_callers_cotangent() -> None:
    ct = np.array([1.0, 2.0])
    _, pullback = backprop_with(lambda x: x, np.zeros(2))
    g = pullback(ct)
    assert g is not ct and not np.shares_memory(g, ct)
    g += 1.0
    np.testing.assert_array_equal(ct, [1.0, 2.0])


def test_a_wrong_cotangent_is_told_the_outputs_values_not_its_bvars() -> None:
    @dataclasses.dataclass
    class Tagged:
        w: float
        meta: object = dataclasses.field(default=None, metadata={"static": True})

    _, pullback = backprop_with(lambda x: Tagged(x * 2.0, meta={"k": x * 3.0}), 1.0)
    assert pullback(Tagged(1.0, meta={"k": 3.0})) == 2.0
    with pytest.raises(TypeError, match="structure") as e:
        pullback(Tagged(1.0))
    assert "Static({'k': 3.0})" in str(e.value) and "BVar" not in str(e.value)


@pytest.mark.parametrize("kind", ["memmap", "subclass"])
def test_a_leaf_of_an_ndarray_subclass_gets_a_gradient_of_its_type(
    kind: str, tmp_path: pathlib.Path
) -> None:
    class Sub(np.ndarray):
        pass

    def leaf() -> np.ndarray:
        if kind == "memmap":
            m = np.memmap(tmp_path / "w.bin", dtype=np.float32, mode="w+", shape=(3,))
            m[:] = [1.0, 2.0, 3.0]
            return m
        return np.array([1.0, 2.0, 3.0], np.float32).view(Sub)

    x = leaf()
    # Read (was: TypeError from np.memmap(gradient)), and never read (was: a memmap
    # error, and Sub(0), an empty array, for the subclass).
    g, unused = grad_bp(lambda w, s: np.sum(w * w) * s, x, 1.0), grad_bp(lambda w, s: s, x, 1.0)
    for got, want in ((g[0], [2.0, 4.0, 6.0]), (unused[0], [0.0, 0.0, 0.0])):
        assert type(got) is type(x) and got.dtype == np.float32 and got.tolist() == want
    _, pullback = backprop_with(lambda w: w * 2.0, x)
    assert type(pullback(np.ones(3, np.float32))) is type(x)
    # A 0-d array of the subclass is a scalar output.
    assert grad_bp(lambda w: (w * w).sum(), x.view(Sub)).tolist() == [2.0, 4.0, 6.0]


def test_aux_may_hold_objects_hetgrad_does_not_know() -> None:
    marker = object()
    (value, aux), g = value_and_grad(
        lambda x: (x * x, {"log": marker, "seen": {1, 2}, "y": 3.0 * x}), has_aux=True
    )(2.0)
    assert value == 4.0 and g == 4.0
    assert aux["log"] is marker and aux["seen"] == {1, 2}
    assert aux["y"] == 6.0 and type(aux["y"]) is float  # BVars are still unwrapped


# -- values an inner runner hands back that depend on an outer runner's variables --------


@pytest.mark.parametrize(
    "inner",
    [
        lambda x: value_and_grad(lambda y: x * x)(1.0)[0],
        lambda x: backprop(lambda y: x * x, 1.0)[0],
        lambda x: backprop_with(lambda y: (y, x * x), 1.0)[0][1],
        lambda x: hetgrad.jvp(lambda y: x * x, (1.0,), (1.0,))[0],
        lambda x: grad(lambda y: (y * y, x * x), has_aux=True)(1.0)[1],
        lambda x: grad(lambda y: (y * y, {"sq": x * x}), has_aux=True)(1.0)[1]["sq"],
        lambda x: hetgrad.optim.descend(lambda p: x * x, 1.0, 0.1)[0],
    ],
    ids=["value_and_grad", "backprop", "backprop_with", "jvp", "aux", "aux dict", "descend"],
)
def test_an_inner_value_of_outer_variables_keeps_their_derivative(inner: object) -> None:
    # x * x is computed from the outer variable alone: it is a BVar of the outer runner,
    # which the inner runner must hand back as it is (it used to strip it to 9.0, and the
    # outer derivative came out 0).
    assert grad(inner)(3.0) == 6.0  # type: ignore[arg-type]
    hetgrad.check_grads(inner, 3.0)  # type: ignore[arg-type]


class Point2:
    """An opaque registered type (hetgrad cannot see its coordinates ``xy``)."""

    def __init__(self, xy: object) -> None:
        self.xy = np.asarray(xy, dtype=float)


hetgrad.register_backprop(
    Point2, zero=lambda p: Point2(np.zeros(2)), add=lambda p, q: Point2(p.xy + q.xy),
    one=lambda p: Point2(np.ones(2)),
)  # fmt: skip
to_point = hetgrad.op1(lambda xy: (Point2(xy), lambda g: g.xy))


def test_jacobian_of_a_function_returning_a_registered_type_says_why() -> None:
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError) as e:
        hetgrad.jacobian(to_point)(x)
    msg = str(e.value)
    assert msg.startswith("jacobian: the output at out is a Point2, a type registered with")
    assert "needs outputs made of floats and float arrays" in msg
    with pytest.raises(TypeError, match=r"jacobian: the output at out\['p'\]\[1\] is a Point2"):
        hetgrad.jacobian(lambda x: {"p": [x, to_point(x)]})(x)
    # backprop_with, which it points to, pulls back a Point2 cotangent.
    y, pullback = backprop_with(to_point, x)
    assert y.xy.tolist() == [1.0, 2.0] and pullback(Point2([3.0, 4.0])).tolist() == [3.0, 4.0]
