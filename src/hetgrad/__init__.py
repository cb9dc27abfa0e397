"""hetgrad: heterogeneous reverse-mode automatic differentiation for Python.

Write ordinary numeric Python over your own data types; get gradients in exactly the
structure of the input.

>>> import dataclasses, numpy as np, hetgrad
>>> @dataclasses.dataclass
... class Line:
...     slope: float
...     intercept: float
>>> loss = lambda p: (p.slope * 2.0 + p.intercept - 5.0) ** 2
>>> hetgrad.grad_bp(loss, Line(1.0, 1.0))
Line(slope=-8.0, intercept=-4.0)
"""

from . import checkpoint, datasets, lens, nn, optim
from . import numpy as numpy  # registers the lifted NumPy functions (numpy.f(bvar) works)
from .check import check_grads
from .debug import debug_nans
from .higher import hessian, hvp, jacobian, jvp
from .laws import check_backprop_laws
from .params import Params
from .primitive import auto, const, no_grad, op1, op2, op3, opN, primitive, stop_gradient
from .protocol import add, one, register_backprop, zero
from .runners import backprop, backprop_with, eval_bp, grad, grad_bp, value_and_grad, vjp
from .tape import BVar, Primitive, TapeError
from .tree import tree_map
from .vars import (
    collect_var,
    iso_var,
    join_bv,
    over_var,
    preview_var,
    preview_var_or_raise,
    sequence_var,
    set_var,
    split_bv,
    to_list_of_var,
    view_var,
)

__version__ = "0.1.0"

__all__ = [
    "BVar",
    "Params",
    "Primitive",
    "TapeError",
    "add",
    "auto",
    "backprop",
    "backprop_with",
    "check_backprop_laws",
    "check_grads",
    "checkpoint",
    "const",
    "debug_nans",
    "datasets",
    "eval_bp",
    "grad",
    "grad_bp",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "nn",
    "no_grad",
    "one",
    "op1",
    "op2",
    "op3",
    "opN",
    "optim",
    "primitive",
    "register_backprop",
    "stop_gradient",
    "tree_map",
    "value_and_grad",
    "vjp",
    "zero",
    "collect_var",
    "iso_var",
    "join_bv",
    "lens",
    "over_var",
    "preview_var",
    "preview_var_or_raise",
    "sequence_var",
    "set_var",
    "split_bv",
    "to_list_of_var",
    "view_var",
]
