"""A central finite-difference gradient for the tests of the core (independent of hetgrad)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hetgrad.tree import flatten, unflatten


def numeric_grad(f: Callable[..., Any], args: tuple[Any, ...], eps: float = 1e-6) -> list[Any]:
    """Central differences of scalar ``f`` in every differentiable leaf of every argument."""
    out = []
    for i, arg in enumerate(args):
        leaves, td = flatten(arg)
        grads = []
        for j, leaf in enumerate(leaves):
            base = np.array(leaf, dtype=np.float64)
            g = np.zeros_like(base)
            for idx in np.ndindex(base.shape):
                values = []
                for delta in (eps, -eps):
                    x = base.copy()
                    x[idx] += delta
                    new = list(leaves)
                    new[j] = x if isinstance(leaf, np.ndarray) else float(x)
                    a = list(args)
                    a[i] = unflatten(td, new)
                    values.append(float(f(*a)))
                g[idx] = (values[0] - values[1]) / (2 * eps)
            grads.append(g if isinstance(leaf, np.ndarray) else float(g))
        out.append(unflatten(td, grads))
    return out


def assert_close_tree(got: Any, want: Any, rtol: float = 1e-5, atol: float = 1e-7) -> None:
    gl, gtd = flatten(got)
    wl, wtd = flatten(want)
    assert gtd.same_structure(wtd), (gtd, wtd)
    for a, b in zip(gl, wl):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
