"""Neural-network functions: numerically stable, with finite gradients everywhere.

Each works on plain arrays and on BVars.  The hot ones (``sigmoid``, ``relu``,
``softplus``, ``softmax``, ``cross_entropy``) are primitives with direct gradient rules;
Python floats take :mod:`math` fast paths.

>>> import numpy as np, hetgrad
>>> from hetgrad import nn
>>> logits = np.array([[1000.0, -1000.0], [0.0, 0.0]])
>>> targets = np.array([[0.0, 1.0], [1.0, 0.0]])
>>> float(nn.cross_entropy(logits, targets))
2000.69314718056
>>> hetgrad.grad_bp(lambda z: nn.cross_entropy(z, targets), logits)
array([[ 1. , -1. ],
       [-0.5,  0.5]])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .numpy import logsumexp
from .numpy._core import apply1
from .rules import all_finite, output_unread, prim, shift_by_max, unbroadcast, unread
from .tape import BVar, _escaped, binary_call, primal, record_whole, unary
from .tree import LEAF_DEF

__all__ = [
    "sigmoid",
    "logistic",
    "relu",
    "softplus",
    "softmax",
    "log_softmax",
    "logsumexp",
    "cross_entropy",
    "hinge",
    "mse",
]


def _sigmoid(x: Any) -> Any:
    if type(x) is float:  # the array path's formula, to the last bit
        return 1.0 / (1.0 + math.exp(-x)) if x >= -_FLOAT_EXP_LIMIT else math.exp(x)
    if isinstance(x, BVar):  # a BVar of an outer tape: record this primitive there
        return sigmoid(x)
    # 1 / (1 + exp(-x)) in one buffer, with -x capped where exp would overflow; there
    # sigmoid(x) is exp(x) to the last bit, which is filled in.  Accurate and warning-free.
    x = np.asarray(x)
    out = np.negative(x) if x.dtype.kind == "f" else np.negative(x, dtype=float)
    if type(out) is not np.ndarray:  # a 0-d input gives a NumPy scalar: make it a buffer
        out = np.array(out)
    limit = _exp_limit(out.dtype)
    # (one cheap pass, rarely true; a NaN makes the minimum NaN, and then it is taken too)
    capped = out.size and not np.minimum.reduce(x, None) >= -limit
    if capped:
        np.minimum(out, limit, out=out)
    np.exp(out, out=out)
    out += 1.0
    np.divide(1.0, out, out=out)  # (np.reciprocal's float loop is not vectorised: 2x slower)
    if capped:
        far = x < -limit
        out[far] = np.exp(x[far])
    return out if out.ndim else out[()]


_EXP_LIMITS: dict[Any, float] = {}


def _exp_limit(dtype: Any) -> float:
    """The largest x whose exp is finite in ``dtype`` (709 for float64, 88 for float32)."""
    limit = _EXP_LIMITS.get(dtype)
    if limit is None:
        limit = _EXP_LIMITS[dtype] = float(np.log(np.finfo(dtype).max)) - 0.1
    return limit


_FLOAT_EXP_LIMIT = _exp_limit(np.dtype(np.float64))


def _relu(x: Any) -> Any:
    if type(x) is float:
        return 0.0 if x <= 0.0 else x  # (NaN stays NaN, as for arrays)
    if isinstance(x, BVar):
        return relu(x)
    return np.maximum(x, 0)


def _floats(x: Any) -> np.ndarray:
    """``x`` as an array of floats: booleans and integers become float64, as sigmoid's."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(float)


def _softplus(x: Any) -> Any:
    if type(x) is float:
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    if isinstance(x, BVar):
        return softplus(x)
    x = _floats(x)
    y = np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))
    return y if y.ndim else y[()]


def _softmax(x: Any, axis: int = -1) -> Any:
    if isinstance(x, BVar):
        return softmax(x, axis)
    x = _floats(x)
    e = np.exp(shift_by_max(x, x.max(axis=axis, keepdims=True, initial=-np.inf)))
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_grad(g: Any, y: Any, x: Any, axis: int = -1) -> Any:
    return y * (g - np.sum(g * y, axis=axis, keepdims=True))


_BIG = 16384  # elements: where a rule's temporaries cost more than its Python


def _sigmoid_grad(g: Any, y: Any, x: Any) -> Any:
    if type(y) is np.ndarray and y.size > _BIG and type(g) is np.ndarray and (
            g.shape == y.shape and g.dtype == y.dtype):  # fmt: skip
        # g * y * (1 - y) in one fresh buffer: on a minibatch's hidden layer the two
        # temporaries cost a third of the rule's time (on small arrays, nothing).
        out = np.subtract(1.0, y)
        out *= y
        out *= g
        return out
    return g * y * (1.0 - y)


sigmoid_p = prim(_sigmoid, _sigmoid_grad, name="sigmoid")
relu_p = prim(_relu, lambda g, y, x: g * (primal(x) > 0), name="relu")
softplus_p = prim(_softplus, lambda g, y, x: g * sigmoid(x), name="softplus")
softmax_p = prim(_softmax, _softmax_grad, name="softmax", nondiff=(1,))
for _p in (sigmoid_p, softmax_p):  # their rules read the output only
    unread(_p, 0)
output_unread(relu_p, softplus_p)  # and these the input only
_softmax_kw = apply1(softmax_p)


def sigmoid(x: Any) -> Any:
    """The logistic function ``1 / (1 + exp(-x))``, without overflow for large ``|x|``.

    >>> import hetgrad
    >>> from hetgrad import nn
    >>> nn.sigmoid(0.0), hetgrad.grad_bp(nn.sigmoid, 0.0), nn.sigmoid(-1000.0)
    (0.5, 0.25, 0.0)
    """
    return unary(sigmoid_p, x) if type(x) is BVar else _sigmoid(x)


logistic = sigmoid


def relu(x: Any) -> Any:
    """``max(x, 0)``; its gradient at 0 is 0.

    >>> import numpy as np, hetgrad
    >>> from hetgrad import nn
    >>> hetgrad.grad_bp(lambda x: np.sum(nn.relu(x)), np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 1.])
    """
    return unary(relu_p, x) if type(x) is BVar else _relu(x)


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))``, computed stably; its gradient is ``sigmoid(x)``.

    >>> from hetgrad import nn
    >>> nn.softplus(1000.0), round(nn.softplus(0.0), 6)
    (1000.0, 0.693147)
    """
    return unary(softplus_p, x) if type(x) is BVar else _softplus(x)


def softmax(x: Any, axis: int = -1) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the maximum (no overflow).

    A row of ``-inf`` gives the uniform distribution and ``+inf`` entries share 1: the
    limits along ``x = c * ones``, as ``logsumexp``'s gradient has them (never NaN).

    >>> import numpy as np
    >>> from hetgrad import nn
    >>> nn.softmax(np.array([1000.0, 1000.0, -1000.0]))
    array([0.5, 0.5, 0. ])
    """
    return _softmax_kw(x, axis=axis) if type(x) is BVar else _softmax(x, axis)


def log_softmax(x: Any, axis: int = -1) -> Any:
    """``x - logsumexp(x)`` along ``axis``: log-probabilities, finite at +/-1000.

    Computed as ``(x - m) - logsumexp(x - m)`` with ``m`` the maximum, a constant (the
    value does not depend on it): ``x`` and ``logsumexp(x)`` are both near ``m``, and
    subtracting them directly would lose the digits of the small difference.

    >>> import numpy as np
    >>> from hetgrad import nn
    >>> nn.log_softmax(np.array([1000.0, -1000.0]))
    array([    0., -2000.])
    """
    if not isinstance(x, BVar):
        x = _floats(x)
    m = np.max(primal(x), axis=axis, keepdims=True, initial=-np.inf)
    shifted = shift_by_max(x, m)  # (0 where x and m are the same infinity)
    return shifted - logsumexp(shifted, axis=axis, keepdims=True)


def _log_softmax_parts(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(log_softmax(logits), e, s)`` along the last axis, where ``softmax = e / s``."""
    m = logits.max(axis=-1, keepdims=True, initial=-np.inf)
    shifted = logits - m if all_finite(m) else shift_by_max(logits, m)
    e = np.exp(shifted)
    s = e.sum(axis=-1, keepdims=True)
    return shifted - np.log(s), e, s


def _ce_of(logp: np.ndarray, targets: Any) -> Any:
    """``-sum(targets * logp)``, where a class with target 0 adds 0 even at ``logp = -inf``."""
    if all_finite(logp):
        return -(targets * logp).sum()
    taken = targets != 0
    return -np.where(taken, targets * np.where(taken, logp, 0.0), 0.0).sum()


def _cross_entropy(logits: Any, targets: Any) -> Any:
    if isinstance(logits, BVar) or isinstance(targets, BVar):
        return cross_entropy(logits, targets)
    logits = np.asarray(logits)
    if logits.dtype.kind != "f":
        logits = logits.astype(float)  # (as _floats: booleans and integers)
    return _ce_of(_log_softmax_parts(logits)[0], targets)


def _ce_logits_grad(g: Any, y: Any, logits: Any, targets: Any) -> Any:
    return unbroadcast(_scaled_residual(g, softmax(logits), targets), logits)


def _scaled_residual(g: Any, p: Any, targets: Any) -> Any:
    """``g * (p * total - targets)``, ``total`` being each row's target sum (1 for one-hot
    or probability targets, when the product is skipped).  Targets broadcast along the
    classes (a last axis of 1) count once per class; logits broadcast along the targets'
    classes (one class, ``log_softmax`` 0 there) take each row's targets as one."""
    total = (targets.sum(axis=-1, keepdims=True) if type(targets) is np.ndarray
             else np.sum(targets, axis=-1, keepdims=True))  # fmt: skip
    t_shape, classes = np.shape(primal(targets)), np.shape(primal(p))[-1]
    if (t_shape[-1] if t_shape else 1) != classes:
        if classes == 1:
            targets = total
        else:
            total = total * classes
    elif type(total) is np.ndarray and total.size == 1 and total.item() == 1.0:
        return g * (p - targets)
    return g * (p * total - targets)


def _ce_targets_grad(g: Any, y: Any, logits: Any, targets: Any) -> Any:
    grad = -g * log_softmax(logits)
    shape = np.broadcast_shapes(np.shape(primal(logits)), np.shape(primal(targets)))
    if np.shape(primal(grad)) != shape:  # (targets broadcast along the logits' classes)
        grad = np.broadcast_to(grad, shape)
    return unbroadcast(grad, targets)


cross_entropy_p = prim(_cross_entropy, _ce_logits_grad, _ce_targets_grad, name="cross_entropy")


def _record_cross_entropy(logits: BVar, targets: np.ndarray) -> BVar:
    """The usual call (array logits of this tape, constant targets) as one node whose
    pullback keeps the forward pass's softmax: recomputing it, as the primitive's rule
    must, cost ~6 us of the ~100 us hetgrad adds to a one-sample MNIST gradient."""
    tape = logits._tape
    if tape.nodes is None:
        raise _escaped(tape)
    tape.lock(targets)  # the pullback reads it
    logp, e, s = _log_softmax_parts(logits._value)
    loss = _ce_of(logp, targets)
    p = e / s

    def pullback(g: Any) -> tuple[Any]:
        return (_scaled_residual(g, p, targets),)

    return record_whole(tape, (logits._index,), pullback, LEAF_DEF, [loss], "cross_entropy")


def cross_entropy(logits: Any, targets: Any) -> Any:
    """Softmax cross-entropy ``-sum(targets * log_softmax(logits))``, fused and stable.

    Classes run along the last axis; ``targets`` are one-hot rows or probabilities.  The
    result is summed over every leading (batch) axis.  The gradient for the logits is
    ``softmax(logits) - targets`` per row (scaled by the row's target sum if it is not 1).

    >>> import numpy as np, hetgrad
    >>> from hetgrad import nn
    >>> hetgrad.grad_bp(lambda z: nn.cross_entropy(z, np.array([0.0, 1.0])), np.zeros(2))
    array([ 0.5, -0.5])
    """
    if (type(logits) is BVar and type(logits._value) is np.ndarray
            and type(targets) is np.ndarray and targets.shape == logits._value.shape):  # fmt: skip
        return _record_cross_entropy(logits, targets)
    return binary_call(cross_entropy_p, logits, targets)


def hinge(scores: Any, labels: Any) -> Any:
    """Hinge loss ``sum(max(0, 1 - labels * scores))`` for labels in {-1, +1}.

    Summed over all elements, like :func:`cross_entropy`; the gradient at the kink is 0.

    >>> import numpy as np
    >>> from hetgrad import nn
    >>> float(nn.hinge(np.array([2.0, 0.5, -1.0]), np.array([1.0, 1.0, 1.0])))
    2.5
    """
    return np.sum(relu(1.0 - labels * scores))


def mse(predictions: Any, targets: Any) -> Any:
    """Mean squared error ``mean((predictions - targets) ** 2)``.

    >>> import numpy as np
    >>> from hetgrad import nn
    >>> float(nn.mse(np.array([1.0, 3.0]), np.array([1.0, 1.0])))
    2.0
    """
    d = predictions - targets
    return np.mean(d * d)
