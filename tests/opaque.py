"""``Poly``: a type registered with ``register_backprop`` that hetgrad cannot see inside,
and lifted ops to and from its coefficients whose pullbacks are lifted ops too (so they
can be differentiated again).  Shared by the tests of custom ops and higher derivatives."""

from __future__ import annotations

from typing import Any

import numpy as np

import hetgrad


class Poly:
    """An opaque registered type: hetgrad cannot see its coefficients ``c``."""

    def __init__(self, c: Any) -> None:
        self.c = np.asarray(c, dtype=float)


hetgrad.register_backprop(
    Poly, zero=lambda p: Poly(np.zeros_like(p.c)), add=lambda a, b: Poly(a.c + b.c),
    one=lambda p: Poly(np.ones_like(p.c)),
)  # fmt: skip
to_poly = hetgrad.op1(lambda c: (Poly(c), lambda gp: from_poly(gp)))
from_poly = hetgrad.op1(lambda p: (p.c, lambda g: to_poly(g)))  # reads the Poly's field
