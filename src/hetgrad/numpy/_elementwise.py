"""Elementwise functions that NumPy writes in Python rather than as ufuncs: ``sinc``,
``nan_to_num``, ``select``, and ``real``/``imag`` of real values.

>>> import numpy as np, hetgrad
>>> float(hetgrad.grad(lambda x: np.sinc(x))(0.5))  # (cos(pi x) - sinc(x)) / x
-1.2732395447351625
>>> hetgrad.grad(lambda x: np.sum(np.nan_to_num(x)))(np.array([1.0, np.nan, np.inf]))
array([1., 0., 0.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..rules import prim
from ..tape import BVar, primal
from ._core import NP, apply1, lift, stand_in

SERIES_BELOW = 0.01
"""Where ``|pi x|`` is below this, sinc's slope comes from its Taylor series: the quotient
``(cos(pi x) - sinc(x)) / x`` loses digits there and is 0/0 at 0."""


def _sinc_slope(a: Any) -> Any:
    """``d sinc(x) / dx``, written with lifted functions so that it differentiates again
    (the second derivative at 0 is ``-pi**2 / 3``)."""
    u = np.pi * a
    small = np.abs(primal(u)) < SERIES_BELOW
    safe = np.where(small, 1.0, a)  # (the quotient where it is not used, kept finite)
    quotient = (np.cos(np.pi * safe) - np.sinc(safe)) / safe
    series = np.pi * u * (-1.0 / 3.0 + u * u * (1.0 / 30.0 - u * u / 840.0))
    return np.where(small, series, quotient)


sinc = prim(np.sinc, lambda g, y, a: g * _sinc_slope(a), name="sinc")
lift(np.sinc)(apply1(sinc))


@lift(np.nan_to_num)
def nan_to_num(x: Any, copy: bool = True, nan: Any = 0.0, posinf: Any = None,
               neginf: Any = None) -> Any:  # fmt: skip
    """``numpy.nan_to_num``: gradient 1 at finite elements, 0 at the replaced ones (which
    get the gradient of ``nan``, ``posinf`` or ``neginf`` where those are BVars)."""
    px = np.asarray(primal(x))  # (a BVar is of floats)
    big = np.finfo(px.dtype).max
    out = NP.where(np.isneginf(px), -big if neginf is None else neginf, x)
    out = NP.where(np.isposinf(px), big if posinf is None else posinf, out)
    out = NP.where(np.isnan(px), nan, out)
    return out[()] if px.ndim == 0 else out  # (of a 0-d value, a scalar: as NumPy's)


@lift(np.select)
def select(condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    """``numpy.select``: the first choice whose condition holds, as a chain of ``where``
    (conditions are constants; choices and ``default`` may be BVars)."""
    conds = [np.asarray(primal(c)) for c in condlist]
    # Arrays written as lists read as arrays; Python numbers stay weak (do not widen the
    # dtype), as in NumPy's select.
    choicelist = [c if isinstance(c, (BVar, int, float)) else np.asarray(c) for c in choicelist]
    np.select(conds, [stand_in(c) for c in choicelist], 0.0)  # (NumPy's own checks)
    dtype = np.result_type(*[primal(c) for c in choicelist], primal(default))
    out = default
    for cond, choice in reversed(list(zip(conds, choicelist))):
        out = np.where(cond, choice, out)
    return out if np.result_type(primal(out)) == dtype else out.astype(dtype)


@lift(np.real)
def real(val: Any) -> Any:
    """The real part of a real BVar: itself."""
    return val


@lift(np.imag)
def imag(val: Any) -> Any:
    """The imaginary part of a real BVar: zeros, a constant."""
    return np.imag(primal(val))

