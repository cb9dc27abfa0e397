"""Fuzzing (issue 8): random heterogeneous structures and random compositions of lifted ops.

Hypothesis builds a structure (nested dicts, lists, tuples, a NamedTuple, frozen and
mutable dataclasses) with float, NumPy float64/float32 scalar, float64/float32 array
(including empty ones), int, str and None leaves, and a random expression over its
differentiable leaves from a table of ops (add, mul, sin, tanh, exp of tanh, square,
sum, mean, matmul where shapes fit, indexing, reshape, where, maximum, norm, logsumexp,
a custom op).  The function reads each leaf through the BVar of the structure, by its
real path (``s.field``, ``s["key"]``, ``s[0]``).  Every case checks:

* structure fidelity: the gradient has the input's containers (same types), leaf types,
  shapes and dtypes, and its static leaves are the input's, unchanged;
* agreement with ``hetgrad.check_grads`` (central differences; order 2 for about half
  the cases, as Hypothesis draws them).

Points where a piecewise op is within 1e-3 of its kink (``maximum`` ties, ``where``
conditions, ``norm`` at 0) are skipped with ``assume``: finite differences are meaningless
there.  CI runs 200 examples (a few seconds); a longer run::

    HETGRAD_FUZZ_EXAMPLES=5000 .venv/bin/pytest tests/test_fuzz.py -p no:cacheprovider -s

prints how many cases ran and how many were skipped at kinks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import hetgrad
import hetgrad.numpy as hnp
from hetgrad.tree import flatten, leaf_keys

EXAMPLES = int(os.environ.get("HETGRAD_FUZZ_EXAMPLES", "200"))
STATS = {"cases": 0, "second_order": 0, "leaves": 0}


class Pair(NamedTuple):
    left: Any
    right: Any


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: Any
    tag: str = "frozen"


@dataclasses.dataclass
class Mutable:
    x: Any
    y: Any


# Values bounded away from 0 and spread so ties are rare; arrays up to 2x3.
vals = st.integers(-30, 30).map(lambda i: i / 11.0 + 0.0373)
shapes = st.sampled_from([(1,), (2,), (3,), (2, 2), (2, 3), (0,)])


@st.composite
def arrays(draw: Any) -> np.ndarray:
    shape = draw(shapes)
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    n = int(np.prod(shape))
    return np.array(draw(st.lists(vals, min_size=n, max_size=n)), dtype).reshape(shape)


float_leaves = st.one_of(vals, vals.map(np.float64), vals.map(np.float32), arrays())
static_leaves = st.sampled_from([3, "name", None, 0])


def containers(kids: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(kids, min_size=1, max_size=3),
        st.lists(kids, min_size=1, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["w", "b", "k"]), kids, min_size=1, max_size=3),
        st.builds(Pair, kids, kids),
        st.builds(Frozen, kids),
        st.builds(Mutable, kids, kids),
    )


structures = st.recursive(st.one_of(float_leaves, static_leaves), containers, max_leaves=7)


def _read(s: Any, path: tuple[Any, ...]) -> Any:
    """Read a leaf through the (BVar of the) structure, by attribute or item, as a user would."""
    for k in path:
        s = getattr(s, k) if isinstance(k, str) and not isinstance(primal_dict(s), dict) else s[k]
    return s


def primal_dict(s: Any) -> Any:
    v = s.value if isinstance(s, hetgrad.BVar) else s
    return v


_cube = hetgrad.op1(lambda x: (x * x * x, lambda g: 3.0 * x * x * g))


class Kinks:
    """The smallest distance to a kink met while evaluating (for ``assume``)."""

    def __init__(self) -> None:
        self.margin = np.inf

    def near(self, d: Any) -> None:
        d = np.asarray(hetgrad.tape.primal(d), dtype=np.float64)
        if d.size:
            self.margin = min(self.margin, float(np.min(np.abs(d))))


def _reduce(e: Any) -> Any:
    return hnp.sum(e) if np.ndim(hetgrad.tape.primal(e)) else e


def _unary(op: str, e: Any, kinks: Kinks) -> Any:
    p = hetgrad.tape.primal(e)
    shape, size = np.shape(p), np.size(p)
    if op == "sin":
        return np.sin(e)
    if op == "tanh":
        return np.tanh(e)
    if op == "exp":
        return np.exp(np.tanh(e))
    if op == "square":
        return e * e
    if op == "sum":
        return hnp.sum(e)
    if op == "mean" and size:
        return hnp.mean(e)
    if op == "index" and len(shape) and shape[0]:
        return e[0] if op == "index" else e
    if op == "slice" and len(shape):
        return e[-1:]
    if op == "reshape":
        return hnp.reshape(e, (-1,)) if len(shape) else e
    if op == "transpose" and len(shape) == 2:
        return e.T
    if op == "matmul" and len(shape) in (1, 2) and size:
        return e @ (e.T if len(shape) == 2 else e)
    if op == "norm" and size:
        kinks.near(hnp.linalg.norm(hetgrad.tape.primal(e)))
        return hnp.linalg.norm(e)
    if op == "logsumexp" and size:
        return hnp.logsumexp(e)
    if op == "where" and size:
        kinks.near(e)
        return hnp.where(hetgrad.tape.primal(e) > 0.0, e * 2.0, np.sin(e))
    if op == "maximum":
        kinks.near(p - 0.25)
        return hnp.maximum(e, 0.25)
    if op == "cube":
        return _cube(e)
    return e


def _binary(op: str, a: Any, b: Any, kinks: Kinks) -> Any:
    sa, sb = np.shape(hetgrad.tape.primal(a)), np.shape(hetgrad.tape.primal(b))
    if sa != sb and sa != () and sb != ():
        a, b = _reduce(a), _reduce(b)
    if op == "add":
        return a + b
    if op == "mul":
        return a * b
    if op == "maximum":
        kinks.near(hetgrad.tape.primal(a) - hetgrad.tape.primal(b))
        return hnp.maximum(a, b)
    return a - b


UNARY = ["sin", "tanh", "exp", "square", "sum", "mean", "index", "slice", "reshape",
         "transpose", "matmul", "norm", "logsumexp", "where", "maximum", "cube"]  # fmt: skip
BINARY = ["add", "mul", "maximum", "sub"]


@st.composite
def programs(draw: Any, n_leaves: int) -> list[tuple[Any, ...]]:
    """A straight-line program over the leaves: each step makes a new value from old ones."""
    steps: list[tuple[Any, ...]] = []
    for i in range(draw(st.integers(1, 6))):
        n = n_leaves + i
        if draw(st.booleans()):
            steps.append(("u", draw(st.sampled_from(UNARY)), draw(st.integers(0, n - 1))))
        else:
            j, k = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
            steps.append(("b", draw(st.sampled_from(BINARY)), j, k))
    return steps


def _make_function(paths: list[tuple[Any, ...]], program: list[tuple[Any, ...]],
                   kinks: Kinks) -> Callable[[Any], Any]:  # fmt: skip
    def f(s: Any) -> Any:
        values = [_read(s, p) for p in paths]
        for step in program:
            if step[0] == "u":
                values.append(_unary(step[1], values[step[2]], kinks))
            else:
                values.append(_binary(step[1], values[step[2]], values[step[3]], kinks))
        total: Any = 0.0
        for v in values:  # every leaf and every step contributes
            total = total + _reduce(v) * 0.5
        return total

    return f


def assert_same_shape_tree(x: Any, g: Any, path: str = "s") -> None:
    """``g`` has ``x``'s containers, leaf types, shapes and dtypes; statics are ``x``'s."""
    assert type(g) is type(x), f"{path}: {type(g).__name__} for {type(x).__name__}"
    if dataclasses.is_dataclass(x):
        for fld in dataclasses.fields(x):
            assert_same_shape_tree(getattr(x, fld.name), getattr(g, fld.name), f"{path}.{fld.name}")
    elif isinstance(x, (list, tuple)):
        assert len(g) == len(x), path
        for i, (a, b) in enumerate(zip(x, g)):
            assert_same_shape_tree(a, b, f"{path}[{i}]")
    elif isinstance(x, dict):
        assert list(g) == list(x), path
        for k in x:
            assert_same_shape_tree(x[k], g[k], f"{path}[{k!r}]")
    elif isinstance(x, np.ndarray):
        assert g.shape == x.shape and g.dtype == x.dtype, path
        assert g.flags.writeable, path
    elif isinstance(x, (float, np.floating)):
        assert np.isfinite(g), path
    else:
        assert g is x or g == x, f"{path}: static {x!r} became {g!r}"


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.data_too_large])  # fmt: skip
@given(data=st.data())
def test_random_structures_and_programs(data: Any) -> None:
    s = data.draw(structures)
    leaves, td = flatten(s)
    assume(leaves)
    paths = leaf_keys(td)
    program = data.draw(programs(len(paths)))
    kinks = Kinks()
    f = _make_function(paths, program, kinks)
    with np.errstate(all="ignore"):
        g = hetgrad.grad_bp(f, s)
    assume(kinks.margin > 1e-3)
    assert_same_shape_tree(s, g)
    order = 2 if data.draw(st.integers(0, 2)) == 0 else 1
    assume(any(np.size(v) > 0 for v in leaves))  # (all empty: nothing to check)
    hetgrad.check_grads(f, s, order=order, rtol=1e-4, atol=1e-5)
    STATS["cases"] += 1
    STATS["second_order"] += order == 2
    STATS["leaves"] += len(leaves)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Any:
    yield
    print(f"\nfuzz: {STATS['cases']} cases checked ({STATS['second_order']} at second order, "
          f"{STATS['leaves']} differentiable leaves)")  # fmt: skip
