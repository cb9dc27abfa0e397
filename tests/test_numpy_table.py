"""Every lifted NumPy function, table-driven: forward and dtype equal to NumPy's, gradient
checked by ``check_grads`` (first order, and second order where twice differentiable).

Shapes come from hypothesis (broadcasting, size-1 and empty axes, 0-d, Python floats);
values are drawn uniformly from each function's domain with a hypothesis-chosen seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import hetgrad
import hetgrad.numpy as hnp
from hetgrad.tree import flatten

Shapes = Callable[[st.DataObject], tuple[tuple[int, ...], ...]]
Params = Callable[[st.DataObject, tuple[tuple[int, ...], ...]], dict[str, Any]]


def any_shape(min_side: int = 0, min_dims: int = 0, max_dims: int = 3) -> Shapes:
    strat = array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=3)
    return lambda data: (data.draw(strat),)


def broadcast(n: int = 2, min_side: int = 0) -> Shapes:
    strat = mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=3,
                                          min_side=min_side, max_side=3)  # fmt: skip
    return lambda data: data.draw(strat).input_shapes


def fixed(*shapes: tuple[int, ...]) -> Shapes:
    return lambda data: shapes


def no_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {}


def reduce_params(keepdims: bool = True) -> Params:
    def draw(data: st.DataObject, shapes: Any) -> dict[str, Any]:
        d = len(shapes[0])
        if d == 0:
            return {"axis": None, "keepdims": data.draw(st.booleans())}
        axis = data.draw(st.one_of(
            st.none(), st.integers(-d, d - 1),
            st.lists(st.integers(0, d - 1), min_size=1, max_size=d, unique=True).map(tuple),
        ))  # fmt: skip
        return {"axis": axis, "keepdims": data.draw(st.booleans())} if keepdims else {"axis": axis}

    return draw


def int_axis(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    d = len(shapes[0])
    return {"axis": data.draw(st.one_of(st.none(), st.integers(-d, d - 1)) if d else st.none())}


@dataclasses.dataclass
class Case:
    name: str
    fn: Callable[..., Any]
    shapes: Shapes
    params: Params = no_params
    domains: tuple[tuple[float, float], ...] = ((-2.0, 2.0),)
    order2: bool = True
    make: Callable[[np.random.Generator, tuple[tuple[int, ...], ...], Any], list[Any]] | None = None

    def __str__(self) -> str:
        return self.name


UNIT = ((-2.0, 2.0),)
POS = ((0.2, 3.0),)


def unary(name: str, fn: Callable[..., Any], domain: tuple[float, float] = (-2.0, 2.0),
          order2: bool = True) -> Case:  # fmt: skip
    return Case(name, fn, any_shape(), domains=(domain,), order2=order2)


def binary(name: str, fn: Callable[..., Any], da: tuple[float, float] = (-2.0, 2.0),
           db: tuple[float, float] = (-2.0, 2.0), order2: bool = True) -> Case:  # fmt: skip
    return Case(name, fn, broadcast(), domains=(da, db), order2=order2)


# -- generators of special inputs --------------------------------------------------------


def square_matrices(rng: np.random.Generator, shapes: Any, dtype: Any) -> list[Any]:
    (shape,) = shapes
    n = shape[-1]
    a = rng.uniform(-1.0, 1.0, shape) + 2.0 * n * np.eye(n) * rng.choice([-1.0, 1.0])
    return [a.astype(dtype)]


def spd_matrices(rng: np.random.Generator, shapes: Any, dtype: Any) -> list[Any]:
    (shape,) = shapes
    b = rng.uniform(-1.0, 1.0, shape)
    return [(b @ np.swapaxes(b, -1, -2) + shape[-1] * np.eye(shape[-1])).astype(dtype)]


def spread_matrices(rng: np.random.Generator, shapes: Any, dtype: Any) -> list[Any]:
    """Random matrices with well-separated singular values (for svd, qr, pinv)."""
    (shape,) = shapes
    m, n = shape[-2:]
    k = min(m, n)
    u = np.linalg.qr(rng.standard_normal(shape[:-2] + (m, m)))[0][..., :k]
    v = np.linalg.qr(rng.standard_normal(shape[:-2] + (n, n)))[0][..., :k]
    s = np.arange(k, 0, -1) * 1.5 + rng.uniform(0.0, 0.2, k)
    return [((u * s) @ np.swapaxes(v, -1, -2)).astype(dtype)]


def spd_symmetric_eigs(rng: np.random.Generator, shapes: Any, dtype: Any) -> list[Any]:
    """Symmetric matrices with well-separated eigenvalues."""
    (shape,) = shapes
    n = shape[-1]
    q = np.linalg.qr(rng.standard_normal(shape))[0]
    w = np.arange(n) * 1.5 - n + rng.uniform(0.0, 0.2, n)
    return [((q * w) @ np.swapaxes(q, -1, -2)).astype(dtype)]


def matrix_shape(square: bool = True, batch: bool = True, min_n: int = 1) -> Shapes:
    def draw(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
        lead = data.draw(st.lists(st.integers(1, 2), max_size=1 if batch else 0).map(tuple))
        m = data.draw(st.integers(min_n, 4))
        n = m if square else data.draw(st.integers(1, 4))
        return (lead + (m, n),)

    return draw


# -- einsum, tensordot and matmul shapes ------------------------------------------------

EINSUMS = {
    "ij,jk->ik": ((2, 3), (3, 4)), "ij,ij->": ((2, 3), (2, 3)), "ii->i": ((3, 3),),
    "ii": ((3, 3),), "i,j->ij": ((2,), (3,)), "...ij,...jk->...ik": ((2, 2, 3), (3, 1)),
    "bij,bjk->bik": ((2, 2, 3), (2, 3, 2)), "ij->": ((2, 3),), "ij->j": ((2, 3),),
    "ij,jk,kl->il": ((2, 3), (3, 2), (2, 2)), "iij->ij": ((2, 2, 3),), "ji": ((2, 3),),
}  # fmt: skip


def einsum_case(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    return EINSUMS[data.draw(st.sampled_from(sorted(EINSUMS)))]


def einsum_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {"subscripts": next(k for k, v in EINSUMS.items() if v is shapes)}


def matmul_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    k = data.draw(st.integers(1, 3))
    kind = data.draw(st.sampled_from(["vv", "mv", "vm", "mm", "batch"]))
    m, n = data.draw(st.integers(0, 3)), data.draw(st.integers(1, 3))
    return {
        "vv": ((k,), (k,)), "mv": ((m, k), (k,)), "vm": ((k,), (k, n)), "mm": ((m, k), (k, n)),
        "batch": ((2, 1, m, k), (3, k, n)),
    }[kind]  # fmt: skip


def dot_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    return data.draw(st.sampled_from([
        ((), (3,)), ((2,), ()), ((3,), (3,)), ((2, 3), (3,)), ((2, 3), (3, 2)),
        ((2, 2, 3), (3,)), ((2, 3), (2, 3, 2)), ((3,), (2, 3, 1)),
    ]))  # fmt: skip


def inner_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    return data.draw(st.sampled_from([((), (3,)), ((3,), (3,)), ((2, 3), (3,)),
                                      ((2, 3), (4, 3)), ((2, 2, 3), (2, 3))]))  # fmt: skip


def tensordot_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    return data.draw(st.sampled_from([((2, 3, 4), (3, 4, 2)), ((3, 2), (2, 3)), ((2,), (3,))]))


def tensordot_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    a, b = shapes
    if len(a) == 3:
        return {"axes": data.draw(st.sampled_from([2, ([1, 2], [0, 1]), ([2, 1], [1, 0])]))}
    if len(a) == 2:
        return {"axes": data.draw(st.sampled_from([1, ([0], [1]), ([1, 0], [0, 1])]))}
    return {"axes": 0}


def same_but_axis(n: int = 2) -> Shapes:
    def draw(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
        base = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3))
        ax = data.draw(st.integers(0, len(base) - 1))
        out = []
        for _ in range(n):
            s = list(base)
            s[ax] = data.draw(st.integers(0, 3))
            out.append(tuple(s))
        return tuple(out)

    return draw


def concat_axis(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    a, b = shapes
    return {"axis": next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), 0)}


def same_shapes(n: int = 2, min_dims: int = 0) -> Shapes:
    def draw(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
        s = data.draw(array_shapes(min_dims=min_dims, max_dims=3, min_side=0, max_side=3))
        return (s,) * n

    return draw


def axis_of(min_dims: int = 1, extra: int = 0) -> Params:
    def draw(data: st.DataObject, shapes: Any) -> dict[str, Any]:
        d = len(shapes[0]) + extra
        return {"axis": data.draw(st.integers(-d, d - 1))}

    return draw


def rows_of(shape: tuple[int, ...]) -> int:
    return shape[0] if shape else 1


def take_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    (s,) = shapes
    axis = data.draw(st.one_of(st.none(), st.integers(0, len(s) - 1)))
    n = int(np.prod(s)) if axis is None else s[axis]
    idx = data.draw(st.lists(st.integers(-n, n - 1), min_size=0, max_size=5)) if n else []
    return {"indices": np.array(idx, dtype=int), "axis": axis}


def getitem_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    (s,) = shapes
    n = s[0]
    kind = data.draw(st.sampled_from(["slice", "ints", "mask", "newaxis", "ellipsis", "tuple"]))
    if kind == "slice":
        step = data.draw(st.sampled_from([1, 2, -1]))
        key: Any = slice(data.draw(st.integers(-3, 3)), None, step)
    elif kind == "ints":
        key = np.array(data.draw(st.lists(st.integers(-n, n - 1), max_size=5)), dtype=int)
    elif kind == "mask":
        key = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    elif kind == "newaxis":
        key = (None, slice(None), None)
    elif kind == "ellipsis":
        key = (Ellipsis, 0) if len(s) > 1 and s[-1] else (Ellipsis, None)
    else:
        key = (slice(None, None, -1), np.array([0, 0], dtype=int)) if len(s) > 1 and s[1] else 0
    return {"key": key}


def _getitem(x: Any, key: Any) -> Any:
    return x[key]


def transpose_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    d = len(shapes[0])
    return {"axes": data.draw(st.one_of(st.none(), st.permutations(list(range(d))).map(tuple)))}


def two_axes(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    d = len(shapes[0])
    return {"a": data.draw(st.integers(-d, d - 1)), "b": data.draw(st.integers(-d, d - 1))}


def squeeze_shape(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    s = data.draw(array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    return (tuple(n for n in s) + (1,),)


def norm_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    d = len(shapes[0])
    if d == 1 or data.draw(st.booleans()):
        ord_ = data.draw(st.sampled_from([None, 1, 2, np.inf, -np.inf, 3, 0.5, 0]))
        return {"ord": ord_, "axis": data.draw(st.integers(-d, d - 1)),
                "keepdims": data.draw(st.booleans())}  # fmt: skip
    ord_ = data.draw(st.sampled_from([None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]))
    return {"ord": ord_, "axis": (d - 2, d - 1), "keepdims": data.draw(st.booleans())}


def pad_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    d = len(shapes[0])
    width = data.draw(st.one_of(st.integers(0, 2), st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=d, max_size=d)))  # fmt: skip
    mode = data.draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
    return {"pad_width": width, "mode": mode}


def matrix_power_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {"n": data.draw(st.integers(-2, 4))}


def svd_loss(a: Any) -> Any:
    return svd_parts_loss(*np.linalg.svd(a, full_matrices=False))


def eigh_loss(a: Any) -> Any:
    w, v = np.linalg.eigh(a)
    c = np.linspace(0.5, 1.5, w.shape[-1])
    return (
        np.sum(w * c)
        + np.sum(np.cos(np.arange(v.size)).reshape(v.shape) * v * v)
        + np.sum((v * c) @ np.swapaxes(v, -1, -2) * np.arange(v.size).reshape(v.shape))
    )


def svd_full_loss(a: Any) -> Any:
    """NumPy's default svd (full_matrices=True), reading the columns that have gradients."""
    u, s, vh = np.linalg.svd(a)
    k = s.shape[-1]
    return svd_parts_loss(u[..., :, :k], s, vh[..., :k, :])


def svd_parts_loss(u: Any, s: Any, vh: Any) -> Any:
    w = np.cos(np.arange(u.size)).reshape(u.shape)
    c = np.linspace(0.5, 1.5, s.shape[-1])
    return np.sum(w * u * u) + np.sum(s * c) + np.sum((u * c) @ vh) + np.sum(vh * vh)


def qr_loss(a: Any, mode: str = "reduced") -> Any:
    q, r = np.linalg.qr(a, mode=mode)
    q = q[..., :, : min(a.shape[-2:])]  # (mode "complete": the columns with gradients)
    return np.sum(q * np.cos(np.arange(q.size)).reshape(q.shape)) + np.sum(r * r * 0.3)


def lstsq_loss(a: Any, b: Any) -> Any:
    x, res, rank, s = np.linalg.lstsq(a, b)
    return np.sum(x * x) + np.sum(res) + np.sum(s)


def slogdet_loss(a: Any) -> Any:
    sign, logdet = np.linalg.slogdet(a)
    return np.sum(logdet * 1.5)


def cross_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    return data.draw(st.sampled_from([((3,), (3,)), ((2, 3), (3,)), ((2, 3), (1, 3)),
                                      ((4, 3), (4, 3))]))  # fmt: skip


def stack_of(fn: Callable[..., Any], **kw: Any) -> Callable[..., Any]:
    return lambda *xs, **params: fn(list(xs), **kw, **params)


# -- array-API linear algebra helpers --


def vector_norm_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    d = len(shapes[0])
    axis = data.draw(st.one_of(st.none(), st.integers(-d, d - 1), st.lists(
        st.integers(0, d - 1), min_size=1, max_size=d, unique=True).map(tuple))) if d else None
    return {"axis": axis, "keepdims": data.draw(st.booleans()),
            "ord": data.draw(st.sampled_from([2, 1, np.inf, -np.inf, 3]))}  # fmt: skip


def matrix_norm_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {"ord": data.draw(st.sampled_from(["fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]))}


def vecdot_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    return data.draw(mutually_broadcastable_shapes(signature="(n),(n)->()", max_dims=3,
                                                   min_side=1, max_side=3)).input_shapes


def cond_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {"p": data.draw(st.sampled_from([None, 2, -2, 1, -1, np.inf, "fro", "nuc"]))}


# -- shape helpers --


def rot90_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    d = len(shapes[0])
    axes = data.draw(st.lists(st.integers(-d, d - 1), min_size=2, max_size=2, unique_by=lambda
                              ax: ax % d))  # fmt: skip
    return {"k": data.draw(st.integers(-2, 5)), "axes": tuple(axes)}


def two_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    strat = array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
    return (data.draw(strat), data.draw(strat))


def delete_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    (s,) = shapes
    axis = data.draw(st.one_of(st.none(), st.integers(-len(s), len(s) - 1)))
    n = int(np.prod(s)) if axis is None else s[axis]
    if data.draw(st.booleans()):
        obj: Any = slice(data.draw(st.integers(-3, 3)), None, data.draw(st.sampled_from([1, 2])))
    else:
        obj = data.draw(st.lists(st.integers(-n, n - 1), max_size=3)) if n else []
    return {"obj": obj, "axis": axis}


def insert_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    rows, cols = data.draw(st.integers(0, 3)), data.draw(st.integers(1, 3))
    return ((rows, cols), data.draw(st.sampled_from([(), (cols,), (1, cols)])))


def insert_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    rows = shapes[0][0]
    if data.draw(st.booleans()):
        return {"obj": data.draw(st.integers(-rows, rows))}
    return {"obj": data.draw(st.lists(st.integers(0, rows), min_size=1, max_size=3))}


def vectors(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    return tuple(data.draw(st.lists(st.integers(1, 3).map(lambda n: (n,)), min_size=1,
                                    max_size=3)))  # fmt: skip


def meshgrid_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {"indexing": data.draw(st.sampled_from(["xy", "ij"])),
            "sparse": data.draw(st.booleans())}  # fmt: skip


# -- sequence helpers --



def sequence_pair(scalars: bool = False) -> Shapes:
    lengths = st.integers(1, 4).map(lambda n: (n,))
    side = st.one_of(st.just(()), lengths) if scalars else lengths
    return lambda data: (data.draw(side), data.draw(side))


def conv_mode(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {"mode": data.draw(st.sampled_from(["full", "same", "valid"]))}


def interp_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    x = data.draw(array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    return (x, (data.draw(st.integers(1, 4)),))


def _near_knot(x: np.ndarray, knots: np.ndarray, period: float = np.inf) -> np.ndarray:
    d = np.abs(np.subtract.outer(x, knots)) % period
    return np.any(np.minimum(d, period - d) < 0.1, axis=-1)


def interp_points(rng: np.random.Generator, shapes: Any, dtype: Any) -> list[Any]:
    """x, xp, fp: knots at least 0.5 apart, every x at least 0.1 from each (no kinks)."""
    xshape, (n,) = shapes
    xp = np.cumsum(rng.uniform(0.5, 1.5, n)) - n / 2
    x = rng.uniform(xp[0] - 1.0, xp[-1] + 1.0, xshape)
    x = np.where(_near_knot(x, xp), x + 0.2, x)
    return [np.asarray(v).astype(dtype) for v in (x, xp, rng.uniform(-2.0, 2.0, n))]


def periodic_points(rng: np.random.Generator, shapes: Any, dtype: Any) -> list[Any]:
    """x, xp, fp for period 4: one knot in each of n equal cells of a period, moved by
    whole periods and shuffled; every x at least 0.1 from each knot, modulo 4."""
    xshape, (n,) = shapes
    knots = (np.arange(n) + rng.uniform(0.2, 0.8, n)) * (4.0 / n)
    xp = rng.permutation(knots + 4.0 * rng.integers(-1, 2, n))
    x = rng.uniform(-4.0, 8.0, xshape)
    x = np.where(_near_knot(x, xp, 4.0), x + 0.2, x)
    return [np.asarray(v).astype(dtype) for v in (x, xp, rng.uniform(-2.0, 2.0, n))]


def gradient_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    (s,) = shapes
    d = len(s)
    axis = data.draw(st.one_of(st.none(), st.integers(-d, d - 1), st.lists(
        st.integers(0, d - 1), min_size=1, max_size=d, unique=True).map(tuple)))  # fmt: skip
    axes = range(d) if axis is None else [axis] if isinstance(axis, int) else axis
    order2 = min(s[ax] for ax in axes) >= 3 and data.draw(st.booleans())
    spacing = data.draw(st.sampled_from([(), (0.5,), (0.5, 2.0, 1.5)[: len(axes)]]))
    return {"axis": axis, "edge_order": 2 if order2 else 1, "spacing": spacing}


def coordinate_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    f = data.draw(array_shapes(min_dims=1, max_dims=2, min_side=2, max_side=4))
    return (f, (f[0],))


def coordinates(rng: np.random.Generator, shapes: Any, dtype: Any) -> list[Any]:
    """f and, along its first axis, increasing coordinates at least 0.5 apart."""
    f, (n,) = shapes
    c = np.cumsum(rng.uniform(0.5, 1.5, n))
    return [rng.uniform(-2.0, 2.0, f).astype(dtype), c.astype(dtype)]


def edge_order_for_first_axis(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {"edge_order": data.draw(st.sampled_from([1, 2] if shapes[0][0] >= 3 else [1]))}


def an_axis(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    d = len(shapes[0])
    return {"axis": data.draw(st.integers(-d, d - 1))}


def y_with_x_along(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    y = data.draw(array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3))
    return (y, (y[0],))


def three_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    strat = array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)
    return (data.draw(strat), data.draw(strat), data.draw(strat))


def poly_and_points(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    p = (data.draw(st.integers(1, 4)),)
    return (p, data.draw(array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)))


def vander_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {"N": data.draw(st.one_of(st.none(), st.integers(0, 4))),
            "increasing": data.draw(st.booleans())}  # fmt: skip


def fit_points(rng: np.random.Generator, shapes: Any, dtype: Any) -> list[Any]:
    """x spread over [-1, 1] (a well-conditioned fit), y, and weights in [0.5, 2]."""
    (n,), y, *w = shapes
    x = np.linspace(-1.0, 1.0, n) + rng.uniform(-0.1, 0.1, n)
    out = [x, rng.uniform(-2.0, 2.0, y)] + [rng.uniform(0.5, 2.0, s) for s in w]
    return [v.astype(dtype) for v in out]


def degree(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {"deg": data.draw(st.integers(0, 3))}


def integration_shapes(data: st.DataObject) -> tuple[tuple[int, ...], ...]:
    p = (data.draw(st.integers(1, 4)),)
    return (p, data.draw(st.sampled_from([(), (0,), (1,), (2,), (3,)])))


def integration_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    k = shapes[1]
    if k == ():
        return {"m": data.draw(st.integers(0, 3))}
    return {"m": k[0] if k[0] != 1 else data.draw(st.integers(0, 3))}


def cumulative_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    d = len(shapes[0])
    axis = data.draw(st.integers(-d, d - 1)) if d > 1 else data.draw(st.sampled_from([None, 0]))
    return {"axis": axis, "include_initial": data.draw(st.booleans())}


# -- statistics helpers --


QUANTILE_METHODS = ["linear", "lower", "higher", "nearest", "midpoint", "weibull", "hazen",
                    "median_unbiased", "normal_unbiased", "interpolated_inverted_cdf"]


def distinct_values(rng: np.random.Generator, shapes: Any, dtype: Any) -> list[Any]:
    """Values in (-1.8, 1.8), at least half a step apart: finite differences across a tie
    of an order statistic would fail."""
    out = []
    for s in shapes:
        k = int(np.prod(s))
        x = (rng.permutation(k) + rng.uniform(0.0, 0.5, k)) * (3.6 / max(k, 1)) - 1.8
        out.append(x.reshape(s).astype(dtype))
    return out


def distinct_with_nans(rng: np.random.Generator, shapes: Any, dtype: Any) -> list[Any]:
    """``distinct_values`` with NaN where the index sum is 1 mod 3: with sides of 2 or 3,
    every slice along any axes keeps a value that is not NaN."""
    out = distinct_values(rng, shapes, dtype)
    for x in out:
        x[np.indices(x.shape).sum(axis=0) % 3 == 1] = np.nan
    return out


def quantile_params(scale: float) -> Params:
    """Reduction axes, levels (times ``scale``: 100 for percentiles) and a method."""

    def draw(data: st.DataObject, shapes: Any) -> dict[str, Any]:
        q = data.draw(st.sampled_from([0.5, 0.0, 1.0, 0.3, (0.1, 0.75, 1.0)]))
        levels = q * scale if isinstance(q, float) else np.array(q) * scale
        method = data.draw(st.sampled_from(QUANTILE_METHODS))
        return {**reduce_params()(data, shapes), "q": levels, "method": method}

    return draw


def sample_shapes(n: int) -> Shapes:
    """``n`` equal shapes of samples: at least three observations either way (two would
    make every correlation +-1)."""
    strat = st.sampled_from([(3,), (4,), (3, 3), (3, 4), (4, 3)])
    return lambda data: (data.draw(strat),) * n


def rowvar_param(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {"rowvar": data.draw(st.booleans())}


def cov_params(data: st.DataObject, shapes: Any) -> dict[str, Any]:
    return {**rowvar_param(data, shapes), "bias": data.draw(st.booleans())}


CASES: list[Case] = [
    # elementwise
    unary("negative", np.negative), unary("positive", np.positive),
    unary("square", np.square), unary("sqrt", np.sqrt, (0.2, 3.0)),
    unary("cbrt", np.cbrt, (0.2, 3.0)), unary("reciprocal", np.reciprocal, (0.5, 3.0)),
    unary("abs", np.abs), unary("absolute", np.absolute), unary("sign", np.sign),
    unary("exp", np.exp), unary("exp2", np.exp2), unary("expm1", np.expm1),
    unary("log", np.log, (0.2, 3.0)), unary("log2", np.log2, (0.2, 3.0)),
    unary("log10", np.log10, (0.2, 3.0)), unary("log1p", np.log1p, (-0.5, 3.0)),
    unary("sin", np.sin), unary("cos", np.cos), unary("tan", np.tan, (-1.2, 1.2)),
    unary("arcsin", np.arcsin, (-0.9, 0.9)), unary("arccos", np.arccos, (-0.9, 0.9)),
    unary("arctan", np.arctan), unary("sinh", np.sinh), unary("cosh", np.cosh),
    unary("tanh", np.tanh), unary("arcsinh", np.arcsinh), unary("arccosh", np.arccosh, (1.2, 3.0)),
    unary("arctanh", np.arctanh, (-0.9, 0.9)), unary("floor", np.floor), unary("ceil", np.ceil),
    unary("rint", np.rint), unary("round", np.round), unary("around", np.around),
    binary("add", np.add), binary("subtract", np.subtract), binary("multiply", np.multiply),
    binary("divide", np.divide, db=(0.5, 2.0)),
    binary("true_divide", np.true_divide, db=(0.5, 2.0)),
    binary("power", np.power, da=(0.5, 2.0)), binary("float_power", np.float_power, da=(0.5, 2.0)),
    binary("operator **", lambda a, b: a ** b, da=(0.5, 2.0)),
    binary("arctan2", np.arctan2, da=(0.5, 2.0)), binary("hypot", np.hypot),
    binary("maximum", np.maximum), binary("minimum", np.minimum),
    binary("fmax", np.fmax), binary("fmin", np.fmin),
    # (quotients kept inside (0, 1) and (-1, 0): away from the jumps of the floor/trunc)
    binary("remainder", np.remainder, da=(0.1, 0.9), db=(1.0, 2.0)),
    binary("fmod", np.fmod, da=(-0.9, -0.1), db=(1.0, 2.0)),
    Case("astype", lambda a: np.reshape(a, (-1,)).astype(np.float64), any_shape()),
    binary("logaddexp", np.logaddexp), binary("logaddexp2", np.logaddexp2),
    Case("where", lambda c, a, b: np.where(c > 0, a, b), broadcast(3)),
    Case("clip", lambda a: np.clip(a, -0.5, 0.7), any_shape()),
    Case("clip arrays", lambda a, lo, hi: np.clip(a, lo, hi + 1.0), broadcast(3)),
    # more elementwise: angles, signs, sinc, nan_to_num, select, real and imag
    unary("deg2rad", np.deg2rad), unary("radians", np.radians), unary("rad2deg", np.rad2deg),
    unary("degrees", np.degrees), unary("fabs", np.fabs), unary("conjugate", np.conjugate),
    unary("sinc", np.sinc), unary("nan_to_num", np.nan_to_num),
    unary("real, imag", lambda a: np.real(a) + np.imag(a)),
    binary("copysign", np.copysign), unary("ldexp", lambda a: np.ldexp(a, 3) + np.ldexp(a, -1)),
    unary("heaviside", lambda a: np.heaviside(a, 0.5) * a),
    Case("select", lambda a, b: np.select([a < -0.5, a > 0.5], [a * b, np.sin(a)], default=b),
         broadcast(2)),
    # shapes: rotations, appending, deleting, inserting, grids, blocks, array-API names
    Case("rot90", lambda a, k, axes: np.rot90(a, k, axes), any_shape(min_dims=2), rot90_params),
    Case("append", np.append, two_shapes),
    Case("append axis", lambda a, b, axis: np.append(a, b, axis=axis), same_but_axis(2),
         concat_axis),
    Case("delete", np.delete, any_shape(min_dims=1), delete_params),
    Case("insert", lambda a, b, obj: np.insert(a, obj, b, axis=0), insert_shapes,
         insert_params),
    Case("insert flat", lambda a, b: np.insert(a, [0, 1, 1], b), fixed((2, 2), (3,))),
    Case("meshgrid", np.meshgrid, vectors, meshgrid_params),
    Case("block", lambda a, b: np.block([[a, b], [b, a]]), same_shapes(2, min_dims=1)),
    Case("block mixed depths", lambda a, b: np.block([[a], [b]]), fixed((2,), (3, 2))),
    Case("concat", lambda a, b, axis: np.concat([a, b], axis=axis), same_but_axis(2),
         concat_axis),
    Case("permute_dims", lambda a, axes: np.permute_dims(a, axes), any_shape(),
         transpose_params),
    *([Case("unstack", lambda a, axis: np.unstack(a, axis=axis), any_shape(min_dims=1),
            axis_of())] if hasattr(np, "unstack") else []),  # (NumPy 2.1)
    # reductions
    Case("sum", np.sum, any_shape(), reduce_params()),
    Case("mean", np.mean, any_shape(min_side=1), reduce_params()),
    Case("prod", np.prod, any_shape(), reduce_params()),
    Case("max", np.max, any_shape(min_side=1), reduce_params()),
    Case("min", np.min, any_shape(min_side=1), reduce_params()),
    Case("amax", np.amax, any_shape(min_side=1), reduce_params()),
    Case("amin", np.amin, any_shape(min_side=1), reduce_params()),
    Case("var", np.var, any_shape(min_side=1), reduce_params()),
    Case("std", np.std, any_shape(min_side=1), reduce_params()),
    Case("var ddof=1", lambda a: np.var(a, axis=-1, ddof=1), any_shape(min_side=2, min_dims=1)),
    Case("sum where", lambda a: np.sum(a, where=np.cos(np.arange(np.size(a))).reshape(np.shape(a))
                                       > 0), any_shape()),  # fmt: skip
    Case("sum initial", lambda a, **p: np.sum(a, initial=1.5, **p), any_shape(), reduce_params()),
    Case("mean where", lambda a: np.mean(a, axis=-1, where=np.arange(a.shape[-1]) != 1),
         any_shape(min_side=2, min_dims=1)),
    Case("prod initial", lambda a, **p: np.prod(a, initial=1.5, **p), any_shape(), reduce_params()),
    Case("max initial where",
         lambda a: np.max(a, axis=-1, initial=-1.0, where=np.arange(a.shape[-1]) != 0),
         any_shape(min_dims=1)),
    Case("std correction", lambda a: np.std(a, axis=-1, correction=1),
         any_shape(min_side=2, min_dims=1)),
    Case("average", lambda a: np.average(a, axis=-1, weights=np.linspace(0.5, 1.5, a.shape[-1])),
         any_shape(min_side=1, min_dims=1)),
    Case("average weights", lambda a, w: np.average(a, weights=w), fixed((2, 3), (2, 3)),
         domains=((-2.0, 2.0), (0.5, 2.0))),
    Case("nansum", np.nansum, any_shape(), reduce_params()),
    Case("nanmean", np.nanmean, any_shape(min_side=1), reduce_params()),
    Case("diff", lambda a, axis: np.diff(a, axis=axis), any_shape(min_dims=1),
         lambda data, shapes: {"axis": data.draw(st.integers(-len(shapes[0]),
                                                             len(shapes[0]) - 1))}),
    Case("diff n=2 prepend append", lambda a: np.diff(a, n=2, prepend=0.5, append=a[..., :1]),
         any_shape(min_dims=1, min_side=1)),
    Case("methods", lambda a: a.max(axis=-1) + a.min(axis=-1) + a.prod(axis=-1)
         + a.std(axis=-1) + a.var(axis=-1) + a.cumsum(axis=-1)[..., -1]
         + a.clip(-1.0, 1.0).sum(axis=-1) + a.transpose().T.sum(axis=-1),
         any_shape(min_side=1, min_dims=1)),
    Case("cumsum", np.cumsum, any_shape(), int_axis),
    Case("cumprod", np.cumprod, any_shape(), int_axis),
    Case("trace", np.trace, any_shape(min_dims=2), no_params),
    Case("trace offset", lambda a: np.trace(a, offset=1, axis1=-1, axis2=0),
         any_shape(min_dims=2)),
    Case("logsumexp", hnp.logsumexp, any_shape(min_side=1), reduce_params()),
    # shapes
    Case("reshape", lambda a: np.reshape(a, (-1,)), any_shape()),
    Case("ravel", np.ravel, any_shape()),
    Case("ravel order F", lambda a: np.ravel(a, order="F"), any_shape()),
    Case("reshape order F", lambda a: np.reshape(a, (-1,), order="F"), any_shape()),
    Case("transpose", np.transpose, any_shape(), transpose_params),
    Case(".T", lambda a: a.T, any_shape(min_dims=1)),
    Case("swapaxes", lambda x, a, b: np.swapaxes(x, a, b),
         any_shape(min_dims=1), lambda d, s: {"a": two_axes(d, s)["a"], "b": two_axes(d, s)["b"]}),
    Case("moveaxis", lambda x, a, b: np.moveaxis(x, a, b), any_shape(min_dims=1), two_axes),
    Case("expand_dims", np.expand_dims, any_shape(), axis_of(extra=1)),
    Case("squeeze", np.squeeze, squeeze_shape),
    Case("broadcast_to", lambda a: np.broadcast_to(a, (2,) + np.shape(a)), any_shape()),
    Case("concatenate", lambda a, b, axis: np.concatenate([a, b], axis=axis), same_but_axis(),
         concat_axis),
    Case("concatenate None", lambda a, b: np.concatenate([a, b], axis=None), broadcast()),
    Case("stack", stack_of(np.stack), same_shapes(3), axis_of(extra=1)),
    Case("hstack", stack_of(np.hstack), same_shapes(2)),
    Case("vstack", stack_of(np.vstack), same_shapes(2)),
    Case("hnp.array", lambda a, b: hnp.array([a, b, np.ones(np.shape(a))]), same_shapes(2)),
    Case("split", lambda a: np.split(a, 2, axis=-1),
         lambda d: ((3, d.draw(st.sampled_from([0, 2, 4]))),)),
    Case("array_split", lambda a, n: np.array_split(a, n), any_shape(min_dims=1),
         lambda d, s: {"n": d.draw(st.integers(1, 4))}),
    Case("tile", lambda a, reps: np.tile(a, reps), any_shape(),
         lambda d, s: {"reps": d.draw(st.one_of(
             st.integers(1, 3), st.lists(st.integers(1, 2), max_size=3).map(tuple)))}),
    Case("repeat", lambda a, r: np.repeat(a, r), any_shape(),
         lambda d, s: {"r": d.draw(st.integers(0, 3))}),
    Case("repeat axis", lambda a: np.repeat(a, [1, 0, 2], axis=0), lambda d: ((3, 2),)),
    Case("flip", np.flip, any_shape(), int_axis),
    Case("roll", lambda a, shift, axis: np.roll(a, shift, axis), any_shape(),
         lambda d, s: {"shift": d.draw(st.integers(-3, 3)), **int_axis(d, s)}),
    Case("pad", np.pad, any_shape(min_side=1, min_dims=1), pad_params),
    Case("take", lambda a, indices, axis: np.take(a, indices, axis), any_shape(min_dims=1),
         take_params),
    Case("diag 1-d", lambda v, k: np.diag(v, k), any_shape(min_dims=1, max_dims=1),
         lambda d, s: {"k": d.draw(st.integers(-2, 2))}),
    Case("diag 2-d", lambda v, k: np.diag(v, k), any_shape(min_dims=2, max_dims=2),
         lambda d, s: {"k": d.draw(st.integers(-2, 2))}),
    Case("diagonal", lambda a: np.diagonal(a, 1, -1, 0), any_shape(min_dims=2)),
    Case("triu", lambda a, k: np.triu(a, k), any_shape(min_dims=2),
         lambda d, s: {"k": d.draw(st.integers(-2, 2))}),
    Case("tril", lambda a, k: np.tril(a, k), any_shape(min_dims=2),
         lambda d, s: {"k": d.draw(st.integers(-2, 2))}),
    Case("getitem", _getitem, any_shape(min_dims=1, min_side=1), getitem_params),
    Case("sort", np.sort, any_shape(), int_axis),
    Case("take_along_axis", lambda a: np.take_along_axis(a, np.argsort(hetgrad.stop_gradient(a),
         axis=0)[::-1], axis=0), any_shape(min_dims=1)),
    # products
    Case("matmul", np.matmul, matmul_shapes), Case("@", lambda a, b: a @ b, matmul_shapes),
    Case("dot", np.dot, dot_shapes), Case("vdot", np.vdot, same_shapes(2)),
    Case("inner", np.inner, inner_shapes),
    Case("outer", np.outer, broadcast()),
    Case("tensordot", np.tensordot, tensordot_shapes, tensordot_params),
    Case("einsum", lambda *xs, subscripts: np.einsum(subscripts, *xs), einsum_case,
         einsum_params),
    Case("kron", np.kron, broadcast()),
    Case("cross", np.cross, cross_shapes),
    # linear algebra
    Case("inv", np.linalg.inv, matrix_shape(), make=square_matrices),
    Case("det", np.linalg.det, matrix_shape(), make=square_matrices),
    Case("slogdet", slogdet_loss, matrix_shape(), make=square_matrices),
    Case("solve vector", lambda a, b: np.linalg.solve(a, b), fixed((3, 3), (3,)),
         make=lambda r, s, t: square_matrices(r, s[:1], t) + [r.uniform(-1, 1, 3).astype(t)]),
    Case("solve matrix", lambda a, b: np.linalg.solve(a, b), fixed((2, 3, 3), (3, 2)),
         make=lambda r, s, t: square_matrices(r, s[:1], t) + [r.uniform(-1, 1, (3, 2)).astype(t)]),
    Case("cholesky", np.linalg.cholesky, matrix_shape(), make=spd_matrices),
    Case("eigh", eigh_loss, matrix_shape(), make=spd_symmetric_eigs),
    Case("eigvalsh", np.linalg.eigvalsh, matrix_shape(), make=spd_symmetric_eigs),
    Case("svd", svd_loss, matrix_shape(square=False), make=spread_matrices),
    Case("svd values", lambda a: np.linalg.svd(a, compute_uv=False), matrix_shape(square=False),
         make=spread_matrices),
    Case("svd full_matrices", svd_full_loss, matrix_shape(square=False), make=spread_matrices),
    Case("qr", qr_loss, matrix_shape(square=False), make=spread_matrices),
    Case("qr complete", lambda a: qr_loss(a, "complete"), matrix_shape(square=False),
         make=spread_matrices),
    Case("qr r", lambda a: np.linalg.qr(a, mode="r"), matrix_shape(square=False),
         make=spread_matrices),
    Case("pinv", np.linalg.pinv, matrix_shape(square=False, batch=False), make=spread_matrices),
    Case("lstsq", lstsq_loss, fixed((4, 2), (4,)),
         make=lambda r, s, t: spread_matrices(r, s[:1], t) + [r.uniform(-1, 1, 4).astype(t)]),
    Case("norm", np.linalg.norm, any_shape(min_dims=1, max_dims=2, min_side=1), norm_params),
    Case("norm default", np.linalg.norm, any_shape(min_side=0)),
    Case("matrix_power", np.linalg.matrix_power, matrix_shape(), matrix_power_params,
         make=square_matrices),
    Case("multi_dot", lambda a, b, c: np.linalg.multi_dot([a, b, c]), fixed((2, 3), (3, 3), (3,))),
    # NumPy 2's array-API linear algebra names
    Case("vector_norm", lambda a, **p: np.linalg.vector_norm(a, **p), any_shape(min_side=1),
         vector_norm_params),
    Case("matrix_norm", lambda a, ord: np.linalg.matrix_norm(a, ord=ord),
         matrix_shape(square=False), matrix_norm_params, make=spread_matrices),
    Case("svdvals", np.linalg.svdvals, matrix_shape(square=False), make=spread_matrices),
    Case("cond", np.linalg.cond, matrix_shape(), cond_params, make=square_matrices),
    Case("vecdot", np.vecdot, vecdot_shapes),
    Case("linalg.vecdot", lambda a, b: np.linalg.vecdot(a, b, axis=0), fixed((3, 2), (3, 1))),
    *([Case("matvec", lambda a, b: np.matvec(a, b), fixed((2, 3, 4), (4,))),
       Case("vecmat", lambda a, b: np.vecmat(a, b), fixed((3,), (2, 3, 4)))]
      if hasattr(np, "matvec") else []),  # (NumPy 2.2)
    Case("linalg.outer", np.linalg.outer, fixed((2,), (3,))),
    Case("linalg.cross", np.linalg.cross, cross_shapes),
    Case("linalg.diagonal", lambda a: np.linalg.diagonal(a, offset=1), matrix_shape(False)),
    Case("linalg.trace", np.linalg.trace, matrix_shape(square=False)),
    Case("linalg.tensordot", lambda a, b: np.linalg.tensordot(a, b, axes=1), fixed((2, 3), (3, 2))),
    Case("linalg.matmul", np.linalg.matmul, matmul_shapes),
    # order statistics, NaN reductions, covariances
    Case("median", np.median, any_shape(min_side=1), reduce_params(), make=distinct_values),
    Case("quantile", np.quantile, any_shape(min_side=1), quantile_params(1.0),
         make=distinct_values),
    Case("percentile", np.percentile, any_shape(min_side=1), quantile_params(100.0),
         make=distinct_values),
    Case("nanmedian", np.nanmedian, any_shape(min_side=2), reduce_params(),
         make=distinct_with_nans),
    Case("nanquantile", np.nanquantile, any_shape(min_side=2), quantile_params(1.0),
         make=distinct_with_nans),
    Case("nanpercentile", np.nanpercentile, any_shape(min_side=2), quantile_params(100.0),
         make=distinct_with_nans),
    Case("nanmax", np.nanmax, any_shape(min_side=2), reduce_params(), make=distinct_with_nans),
    Case("nanmin", np.nanmin, any_shape(min_side=2), reduce_params(), make=distinct_with_nans),
    Case("nanprod", np.nanprod, any_shape(), reduce_params(), make=distinct_with_nans),
    Case("nanvar", np.nanvar, any_shape(min_side=2), reduce_params(), make=distinct_with_nans),
    Case("nanstd", np.nanstd, any_shape(min_side=2), reduce_params(), make=distinct_with_nans),
    Case("nanvar ddof=1", lambda a: np.nanvar(a, axis=-1, ddof=1),
         any_shape(min_side=3, min_dims=1), make=distinct_with_nans),
    Case("nanstd ddof=1", lambda a: np.nanstd(a, axis=0, ddof=1, keepdims=True),
         any_shape(min_side=3, min_dims=1), make=distinct_with_nans),
    Case("nancumsum", np.nancumsum, any_shape(), int_axis, make=distinct_with_nans),
    Case("nancumprod", np.nancumprod, any_shape(), int_axis, make=distinct_with_nans),
    Case("ptp", np.ptp, any_shape(min_side=1), reduce_params(), make=distinct_values),
    Case("cov", np.cov, sample_shapes(1), cov_params),
    Case("cov y", lambda m, y, **p: np.cov(m, y, **p), sample_shapes(2), cov_params),
    Case("cov ddof=2", lambda m: np.cov(m, ddof=2), fixed((2, 5))),
    Case("cov weights", lambda m, w: np.cov(m, fweights=np.array([1, 2, 0, 3]), aweights=w),
         fixed((3, 4), (4,)), domains=((-2.0, 2.0), (0.5, 2.0))),
    Case("corrcoef", np.corrcoef, sample_shapes(1), rowvar_param),
    Case("corrcoef y", lambda x, y, **p: np.corrcoef(x, y, **p), sample_shapes(2), rowvar_param),
    # constructors with BVar arguments
    Case("hnp.full", lambda c: hnp.full((2, 3), c), fixed(())),
    Case("hnp.full_like", lambda a, c: hnp.full_like(a, c), fixed((2, 2), ())),
    Case("linspace", lambda a, b: np.linspace(a, b, 5), fixed((), ())),
    Case("zeros_like", lambda a: np.zeros_like(a) + a, any_shape()),
    Case("ones_like", lambda a: np.ones_like(a) * a, any_shape()),
    # sequences: convolution, interpolation, integration, polynomials
    Case("convolve", np.convolve, sequence_pair(scalars=True), conv_mode),
    Case("correlate", np.correlate, sequence_pair(), conv_mode),
    Case("interp", np.interp, interp_shapes, make=interp_points),
    Case("interp left right", lambda x, xp, fp, lo, hi: np.interp(x, xp, fp, lo, hi),
         interp_shapes, make=lambda r, s, t: interp_points(r, s, t)
         + [r.uniform(-2.0, 2.0, ()).astype(t), r.uniform(-2.0, 2.0, ()).astype(t)]),
    Case("interp period", lambda x, xp, fp: np.interp(x, xp, fp, period=4.0), interp_shapes,
         make=periodic_points),
    Case("trapezoid", lambda y, axis: np.trapezoid(y, dx=0.5, axis=axis),
         any_shape(min_dims=1), an_axis),
    Case("trapezoid x", lambda y, x: np.trapezoid(y, x, axis=0), y_with_x_along),
    Case("trapezoid x nd", lambda y, x: np.trapezoid(y, x), same_shapes(2, min_dims=1)),
    Case("trapezoid dx", lambda y, dx: np.trapezoid(y, dx=dx), fixed((2, 3), ())),
    Case("gradient", lambda f, spacing, **p: np.gradient(f, *spacing, **p),
         lambda d: (d.draw(array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4)),),
         gradient_params),
    Case("gradient coordinates", lambda f, c, edge_order: np.gradient(f, c, axis=0,
         edge_order=edge_order), coordinate_shapes, edge_order_for_first_axis,
         make=coordinates),
    Case("gradient spacing", lambda f, h: np.gradient(f, h), fixed((3, 2), ()),
         domains=((-2.0, 2.0), (0.5, 2.0))),
    Case("ediff1d", lambda a, end, begin: np.ediff1d(a, end, begin), three_shapes),
    Case("polyval", np.polyval, poly_and_points),
    Case("vander", np.vander, any_shape(min_dims=1, max_dims=1), vander_params),
    Case("polyfit", np.polyfit, fixed((5,), (5,)), degree, make=fit_points),
    Case("polyfit 2-d y", np.polyfit, fixed((5,), (5, 2)), degree, make=fit_points),
    Case("polyfit w", lambda x, y, w, deg: np.polyfit(x, y, deg, w=w), fixed((5,), (5,), (5,)),
         degree, make=fit_points),
    Case("polyder", lambda p, m: np.polyder(p, m), any_shape(min_dims=1, max_dims=1),
         lambda d, s: {"m": d.draw(st.integers(0, 3))}),
    Case("polyint", lambda p, k, m: np.polyint(p, m, k), integration_shapes, integration_params),
    # shapes and copies
    Case("copy", np.copy, any_shape()),
    Case("atleast_2d", np.atleast_2d, any_shape()),
    Case("atleast_3d", np.atleast_3d, any_shape()),
    Case("broadcast_arrays", np.broadcast_arrays, broadcast()),
    Case("column_stack", stack_of(np.column_stack), same_shapes(2, min_dims=1)),
    Case("dstack", stack_of(np.dstack), same_shapes(2)),
    Case("fliplr", np.fliplr, any_shape(min_dims=2)),
    Case("flipud", np.flipud, any_shape(min_dims=1)),
    Case("matrix_transpose", np.matrix_transpose, any_shape(min_dims=2)),
    Case("linalg.matrix_transpose", np.linalg.matrix_transpose, any_shape(min_dims=2)),
    Case("empty_like", lambda a: np.reshape(a, np.empty_like(a).shape), any_shape()),
    Case("full_like", lambda a: np.full_like(a, 2.0) * a, any_shape()),
    # piecewise-constant functions (their gradient is 0: multiplied by the input here)
    unary("fix", lambda a: np.fix(a) * a, (-2.9, 2.9)),
    unary("trunc", lambda a: np.trunc(a) * a, (-2.9, 2.9)),
    unary("spacing", lambda a: np.spacing(a) * 1e15 + a, (0.3, 0.45)),
    binary("floor_divide", lambda a, b: np.floor_divide(a, b) * a, db=(0.7, 2.0)),
    # predicates, comparisons, indices and counts: plain values, used to select or scale
    *[binary(f.__name__, lambda a, b, f=f: np.where(f(a, b), a, b))
      for f in (np.equal, np.not_equal, np.greater, np.greater_equal, np.less,
                np.less_equal)],
    *[binary(f.__name__, lambda a, b, f=f: np.where(f(a - 1.0, b), a, b))
      for f in (np.logical_and, np.logical_or, np.logical_xor)],
    unary("logical_not", lambda a: np.where(np.logical_not(a - 1.0), a, -a)),
    *[unary(f.__name__, lambda a, f=f: np.where(f(a), 0.0, a))
      for f in (np.isfinite, np.isinf, np.isnan, np.isneginf, np.isposinf, np.signbit)],
    binary("isclose", lambda a, b: np.where(np.isclose(a, b), a, b)),
    unary("allclose", lambda a: a * np.allclose(a, a)),
    unary("array_equal", lambda a: a * np.array_equal(a, a)),
    unary("all", lambda a: a * np.all(a)),
    unary("any", lambda a: a * np.any(a - 1.0)),
    unary("count_nonzero", lambda a: a * np.count_nonzero(a)),
    unary("iscomplexobj", lambda a: a * np.iscomplexobj(a)),
    unary("isrealobj", lambda a: a * np.isrealobj(a)),
    # (arrays here: a 0-d array is no scalar, but the finite differences' a + h is one)
    Case("isscalar", lambda a: a * (np.isscalar(a) + 1.0), any_shape(min_dims=1)),
    unary("ndim", lambda a: a * np.ndim(a)),
    Case("result_type", lambda a: a.astype(np.result_type(a, np.float32)),
         any_shape(min_dims=1)),
    Case("argmax", lambda a: np.take(a, np.argmax(a)), any_shape(min_side=1)),
    Case("argmin", lambda a: np.take(a, np.argmin(a)), any_shape(min_side=1)),
    Case("argsort", lambda a: np.take(a, np.argsort(a, axis=None)), any_shape()),
    Case("argwhere", lambda a: a[tuple(np.argwhere(a - 1.0).T)], any_shape(min_dims=1)),
    Case("nonzero", lambda a: a[np.nonzero(a - 1.0)], any_shape(min_dims=1)),
    Case("flatnonzero", lambda a: np.take(a, np.flatnonzero(a - 1.0)), any_shape()),
    Case("searchsorted", lambda a: a * np.searchsorted(np.array([-1.0, 0.0, 1.0]), a),
         any_shape()),
    Case("linalg.matrix_rank", lambda m: m * np.linalg.matrix_rank(m), fixed((3, 3))),
    *([Case("cumulative_sum", lambda x, **p: np.cumulative_sum(x, **p), any_shape(),
            cumulative_params),
       Case("cumulative_prod", lambda x, **p: np.cumulative_prod(x, **p), any_shape(),
            cumulative_params)]
      if hasattr(np, "cumulative_sum") else []),  # (NumPy 2.1)
]  # fmt: skip

FIRST_ORDER_ONLY = {"sign", "floor", "ceil", "rint", "round", "around"}


def draw_inputs(case: Case, data: st.DataObject, dtype: Any) -> tuple[list[Any], dict[str, Any]]:
    shapes = case.shapes(data)
    params = case.params(data, shapes)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    if case.make is not None:
        return case.make(rng, shapes, dtype), params
    args: list[Any] = []
    for k, s in enumerate(shapes):
        lo, hi = case.domains[min(k, len(case.domains) - 1)]
        x = rng.uniform(lo, hi, s).astype(dtype)
        if s == () and dtype == np.float64 and data.draw(st.booleans()):
            x = float(x)  # Python floats take the math fast paths
        args.append(x)
    return args, params


def _close(got: Any, want: Any, dtype: Any) -> None:
    gl, gtd = flatten(got)
    wl, wtd = flatten(want)
    assert gtd.same_structure(wtd), (gtd, wtd)
    tol = 1e-5 if dtype == np.float32 else 1e-10
    for g, w in zip(gl, wl):
        assert np.result_type(g) == np.result_type(w), (np.result_type(g), np.result_type(w))
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", CASES, ids=str)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_lifted_function(case: Case, data: st.DataObject) -> None:
    dtype = data.draw(st.sampled_from([np.float64, np.float32]))
    args, params = draw_inputs(case, data, dtype)

    def f(*xs: Any) -> Any:
        return case.fn(*xs, **params)

    want = f(*args)
    got, pullback = hetgrad.vjp(f, *args)  # the BVar path
    _close(got, want, dtype)
    if _has_elements(args):  # (at a point of empty arrays there is nothing to check)
        hetgrad.check_grads(f, *args, rtol=1e-4, atol=1e-6)


def _has_elements(args: Any) -> bool:
    return any(np.size(v) > 0 for a in args for v in flatten(a)[0])


SECOND_ORDER = [c for c in CASES if c.order2 and c.name not in FIRST_ORDER_ONLY]


@pytest.mark.parametrize("case", SECOND_ORDER, ids=str)
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_lifted_function_second_order(case: Case, data: st.DataObject) -> None:
    args, params = draw_inputs(case, data, np.float64)
    assume(_has_elements(args))
    hetgrad.check_grads(lambda *xs: case.fn(*xs, **params), *args, order=2, rtol=1e-4,
                        atol=1e-5)  # fmt: skip
