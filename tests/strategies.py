"""Hypothesis strategies for random heterogeneous structures, and structural equality."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any, NamedTuple

import numpy as np
from hypothesis import strategies as st

from hetgrad.tree import Static, TreeDef, flatten


class P(NamedTuple):
    a: Any
    b: Any


@dataclasses.dataclass(frozen=True)
class D:
    x: Any
    tag: str = dataclasses.field(default="d", metadata={"static": True})


@dataclasses.dataclass
class M:
    x: Any
    y: Any


# Small integers as floats keep addition exact, so associativity holds bit for bit.
ints = st.integers(-8, 8).map(float)
leaves = st.one_of(
    ints,
    ints.map(np.float32),
    st.lists(ints, min_size=0, max_size=3).map(lambda v: np.array(v, dtype=np.float64)),
    st.lists(ints, min_size=1, max_size=2).map(lambda v: np.array(v, dtype=np.float32)),
    st.sampled_from(["s", 3, None, True]),
)


def containers(children: st.SearchStrategy[Any], *pairs: type) -> st.SearchStrategy[Any]:
    """Every kind of container around ``children``; ``pairs`` adds two-field record types."""
    return st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from("abc"), children, max_size=3),
        st.dictionaries(st.sampled_from("xy"), children, max_size=2).map(OrderedDict),
        st.builds(P, children, children),
        st.builds(D, children),
        st.builds(M, children, children),
        *(st.builds(cls, children, children) for cls in pairs),
    )


structures = st.recursive(leaves, containers, max_leaves=8)


def same(a: Any, b: Any) -> bool:
    la, ta = flatten(a)
    lb, tb = flatten(b)
    if not ta.same_structure(tb) or len(la) != len(lb):
        return False
    if not all(type(x) is type(y) and np.array_equal(x, y) for x, y in zip(la, lb)):
        return False
    return all(
        (sa.value == sb.value) if not isinstance(sa.value, np.ndarray) else True
        for sa, sb in zip(_statics(ta), _statics(tb))
    )


def _statics(td: Any) -> list[Any]:
    out = []
    for c in td.children:
        if type(c) is Static:
            out.append(c)
        elif type(c) is TreeDef:
            out.extend(_statics(c))
    return out
