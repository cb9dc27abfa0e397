"""``hetgrad.numpy.linalg``: NumPy's linear algebra, differentiable.

The functions are NumPy's own (``hnp.linalg.inv is numpy.linalg.inv``): on plain arrays
they run at NumPy's speed, and on BVars NumPy hands them to hetgrad, which records them.
Lifted: ``inv``, ``pinv``, ``det``, ``slogdet``, ``solve``, ``lstsq``, ``cholesky``,
``eigh``, ``eigvalsh``, ``svd`` (singular values, and U and V), ``qr``, ``norm``,
``matrix_power``, ``multi_dot``, ``matrix_transpose``, ``cond`` (``matrix_rank`` gives a
plain number), and NumPy 2's ``vector_norm``, ``matrix_norm``, ``svdvals``, ``vecdot``,
``outer``, ``cross``, ``diagonal``, ``trace``, ``tensordot`` and ``matmul``.  Not lifted:
``eig`` and ``eigvals`` (complex results).

Conventions for the gradients:

* ``eigh``, ``eigvalsh`` and ``cholesky`` read one triangle of their input (the lower
  one by default), as NumPy does, so the gradient lives in that triangle.
* ``eigh`` and ``svd`` gradients through the vectors are undefined where eigenvalues
  (singular values) coincide; hetgrad drops those pairs' terms instead of returning
  NaN.  There the eigenvalues themselves are differentiable only through losses that
  treat the tied ones alike (``sum(w ** 2)``, a trace): a loss weighting them
  differently has no gradient, and the one returned depends on NumPy's choice of basis.
* ``svd`` with ``full_matrices=True`` (NumPy's default) and ``qr`` with
  ``mode="complete"`` of a rectangular matrix return extra columns that are an arbitrary
  orthonormal basis: they have no gradient.  A loss that reads them raises ``ValueError``
  in the backward pass; one that reads only the first ``min(m, n)`` columns (or the
  singular values, or ``R``) is differentiated as usual.  ``qr`` takes wide matrices too.
* ``pinv`` and ``lstsq`` at a rank-deficient matrix have the constant-rank gradient (its
  zero singular values stay zero, as in JAX); singular values that ``rcond`` (``rtol``)
  drops but that are not zero are differentiated through like the rest of ``a``.
* ``norm`` has the subgradient 0 at 0 for every order, never NaN, and refuses the axes
  NumPy refuses (out of range, repeated).

>>> import numpy as np, hetgrad, hetgrad.numpy as hnp
>>> hetgrad.grad_bp(hnp.linalg.det, np.array([[2.0, 0.0], [0.0, 3.0]]))
array([[3., 0.],
       [0., 2.]])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.linalg import (  # noqa: F401  (re-exported: NumPy's names)
    LinAlgError,
    cholesky,
    cond,
    cross,
    det,
    diagonal,
    eig,
    eigh,
    eigvals,
    eigvalsh,
    inv,
    lstsq,
    matmul,
    matrix_norm,
    matrix_power,
    matrix_rank,
    matrix_transpose,
    multi_dot,
    norm,
    outer,
    pinv,
    qr,
    slogdet,
    solve,
    svd,
    svdvals,
    tensordot,
    trace,
    vecdot,
    vector_norm,
)

from .. import rules
from ..rules import prim, safe_quotient, swapaxes, unbroadcast
from ..tape import primal
from ._core import NP, constant, kept, lift, ndim_of, shape_of, stand_in
from ._shape import reshape, tril, triu

_AxisError: type[Exception] = np.exceptions.AxisError

__all__ = [
    "LinAlgError", "cholesky", "cond", "det", "eig", "eigh", "eigvals", "eigvalsh", "inv",
    "lstsq", "matrix_power", "matrix_rank", "matrix_transpose", "multi_dot", "norm", "pinv",
    "qr", "slogdet", "solve", "svd",
    "vector_norm", "matrix_norm", "svdvals", "vecdot", "outer", "cross", "diagonal", "trace",
    "tensordot", "matmul",
]  # fmt: skip


def _mT(x: Any) -> Any:
    return swapaxes(x, -1, -2)


def _eye_like(n: int) -> np.ndarray:
    return np.eye(n, dtype=bool)


def _lower_part(gbar: Any, lower: bool = True) -> Any:
    """The gradient of a function that reads only one triangle of a symmetric input."""
    if lower:
        return tril(gbar) + tril(_mT(gbar), -1)
    return triu(gbar) + triu(_mT(gbar), 1)


def _gap_inverse(w: Any) -> Any:
    """``F[i, j] = 1 / (w[j] - w[i])`` off the diagonal, 0 on it and where the gap is 0."""
    diff = w[..., None, :] - w[..., :, None]
    n = shape_of(w)[-1]
    zero = _eye_like(n) | (primal(diff) == 0)
    return np.where(zero, 0.0, 1.0 / np.where(zero, 1.0, diff))


def _as_matrix_cotangent(g: Any, y: Any) -> Any:
    """``g * y`` shaped (..., 1, 1) to scale a batch of matrices."""
    return reshape(g * y, shape_of(y) + (1, 1))


# --------------------------------------------------------------------------------------
# inv, pinv, det, slogdet, solve
# --------------------------------------------------------------------------------------


def _pinv_grad(g: Any, y: Any, a: Any, *args: Any, **kwargs: Any) -> Any:
    # d(A+) for A+ of constant rank (Golub & Pereyra), transposed.
    hermitian = args[1] if len(args) > 1 else kwargs.get("hermitian", False)
    if hermitian:  # NumPy reads the lower triangle only: the gradient lives there too
        s = tril(a) + _mT(tril(a, -1))
        return _lower_part(_pinv_grad(g, y, s))
    m, n = shape_of(a)[-2:]
    gt, yt = _mT(g), _mT(y)
    a_y = a @ y  # the projection onto the singular vectors pinv kept
    proj_out = np.eye(m) - a_y  # I - A A+
    proj_in = np.eye(n) - y @ a  # I - A+ A
    out = -(yt @ g @ yt) + proj_out @ gt @ y @ yt + yt @ y @ gt @ proj_in
    if np.any(np.trace(primal(a_y), axis1=-2, axis2=-1) < min(m, n) - 0.5):
        out = out - _cut_part_grad(out, a, a_y)
    return out


def _cut_part_grad(g: Any, a: Any, a_y: Any) -> Any:
    """The gradient through ``C`` of ``pinv(a) = pinv(a - C)``, ``C`` the part of ``a``'s
    SVD that the cut-off dropped: ``g`` is the gradient at ``a - C``.  (Zero where the
    dropped singular values are 0, where the above is the usual constant-rank gradient.)"""
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    # A singular triplet was cut iff A A+ does not keep its left vector.
    kept = np.einsum("...ij,...ik,...kj->...j", primal(u), primal(a_y), primal(u)) > 0.5
    s_cut = np.where(kept, 0.0, s)
    g_v = g @ _mT(vh)
    g_parts = (g_v * s_cut[..., None, :], np.where(kept, 0.0, np.sum(u * g_v, axis=-2)),
               s_cut[..., :, None] * (_mT(u) @ g))  # fmt: skip
    return _svd_grad(g_parts, (u, s, vh), a, full_matrices=False)


inv_p = prim(np.linalg.inv, lambda g, y, a: -(_mT(y) @ g @ _mT(y)), name="inv")
pinv_p = prim(np.linalg.pinv, _pinv_grad, name="pinv", nondiff=(1, 2))


def _det_grad(g: Any, y: Any, a: Any) -> Any:
    """``g`` times the cofactor matrix: ``det(a) inv(a)^T``, or from the minors where ``a``
    is singular (the cofactors are finite there; one singular matrix in a stack is enough)."""
    try:
        return _as_matrix_cotangent(g, y) * _mT(np.linalg.inv(a))
    except np.linalg.LinAlgError:
        return reshape(g, shape_of(g) + (1, 1)) * _cofactors(a)


def _cofactors(a: Any) -> Any:
    """The cofactor matrix of (each matrix of) ``a``, as signed determinants of its minors:
    O(n^2) determinants, only taken at singular matrices."""
    n = shape_of(a)[-1]
    if n == 1:
        return a * 0.0 + 1.0
    rows = []
    for i in range(n):
        without_row = a[..., [k for k in range(n) if k != i], :]
        rows.append(np.stack([
            (-1.0) ** (i + j) * np.linalg.det(without_row[..., [k for k in range(n) if k != j]])
            for j in range(n)
        ], axis=-1))  # fmt: skip
    return np.stack(rows, axis=-2)


det_p = prim(np.linalg.det, _det_grad, name="det")
slogdet_p = prim(np.linalg.slogdet,
                 lambda g, y, a: reshape(g[1], shape_of(g[1]) + (1, 1)) * _mT(np.linalg.inv(a)),
                 name="slogdet")  # fmt: skip


def _solve_grads(g: Any, x: Any, a: Any, b: Any) -> tuple[Any, Any]:
    if ndim_of(b) == 1:
        gb = np.linalg.solve(_mT(a), g[..., None])
        ga = -gb * x[..., None, :]
        return unbroadcast(ga, a), unbroadcast(gb[..., 0], b)
    gb = np.linalg.solve(_mT(a), g)
    return unbroadcast(-(gb @ _mT(x)), a), unbroadcast(gb, b)


solve_p = prim(np.linalg.solve, lambda g, y, a, b: _solve_grads(g, y, a, b)[0],
               lambda g, y, a, b: _solve_grads(g, y, a, b)[1], name="solve")  # fmt: skip


@lift(np.linalg.lstsq)
def _lstsq(a: Any, b: Any, rcond: Any = None) -> Any:
    """Least squares as ``pinv(a, rcond) @ b`` (the same cut-off of small singular values);
    residuals, rank and s as NumPy returns them."""
    _, _, rank, _ = np.linalg.lstsq(primal(a), primal(b), rcond=rcond)
    m, n = shape_of(a)
    if rcond is None or rcond < 0:  # NumPy's default cut-off (and LAPACK's for rcond < 0)
        rcond = np.finfo(np.result_type(primal(a), primal(b), np.float32)).eps * max(m, n)
    x = np.linalg.pinv(a, rcond) @ b
    if rank == n and m > n:
        r = a @ x - b
        res = np.sum(r * r, axis=0)
        if ndim_of(b) == 1:
            res = reshape(res, (1,))
    else:
        res = np.empty((0,), dtype=np.result_type(primal(a), primal(b)))
    return x, res, rank, np.linalg.svd(a, compute_uv=False)


# --------------------------------------------------------------------------------------
# cholesky, eigh, svd, qr
# --------------------------------------------------------------------------------------


def _cholesky_grad(g: Any, y: Any, a: Any, upper: bool = False) -> Any:
    # P = L^-T Phi(L^T gL) L^-1, Phi = lower triangle with the diagonal halved.
    n = shape_of(y)[-1]
    x = _mT(y) @ g
    phi = tril(x) - 0.5 * x * np.eye(n)
    z = np.linalg.solve(_mT(y), phi)
    p = _mT(np.linalg.solve(_mT(y), _mT(z)))
    return _lower_part(p)


def _cholesky(a: Any, *, upper: bool = False) -> Any:
    if upper:
        raise NotImplementedError("numpy.linalg.cholesky(upper=True) of a BVar is not lifted")
    return np.linalg.cholesky(a)


cholesky_p = prim(_cholesky, _cholesky_grad, name="cholesky")


def _eigh_grad(g: Any, y: Any, a: Any, UPLO: str = "L") -> Any:  # noqa: N803  (NumPy's name)
    w, v = y
    gw, gv = g
    inner = gw[..., :, None] * np.eye(shape_of(w)[-1]) + _gap_inverse(w) * (_mT(v) @ gv)
    return _lower_part(v @ inner @ _mT(v), lower=UPLO.upper() == "L")


eigh_p = prim(np.linalg.eigh, _eigh_grad, name="eigh", nondiff=(1,))


@lift(np.linalg.eigvalsh)
def _eigvalsh(a: Any, UPLO: str = "L") -> Any:  # noqa: N803
    return eigh_p(a, UPLO)[0]


def _no_gradient_into(g: Any, what: str, fix: str) -> None:
    """Raise unless the cotangent ``g`` of an arbitrary part of a result is all zeros."""
    if np.any(primal(g)):
        raise ValueError(
            f"the loss depends on {what}, an arbitrary orthonormal basis that has no "
            f"gradient; {fix}"
        )


def _svd_grad(g: Any, y: Any, a: Any, full_matrices: bool = True, compute_uv: bool = True,
              hermitian: bool = False) -> Any:  # fmt: skip
    if not compute_uv:
        u, _, vh = np.linalg.svd(a, full_matrices=False)
        return (u * g[..., None, :]) @ vh
    u, s, vh = y
    gu, gs, gvh = g
    k = shape_of(s)[-1]
    m, n = shape_of(a)[-2:]
    if full_matrices and m != n:  # keep the first k columns: the rest has no gradient
        fix = "use full_matrices=False, or only the first min(m, n) columns"
        if m > k:
            _no_gradient_into(gu[..., :, k:], "the last m - n columns of U from svd", fix)
            u, gu = u[..., :, :k], gu[..., :, :k]
        else:
            _no_gradient_into(gvh[..., k:, :], "the last n - m rows of Vh from svd", fix)
            vh, gvh = vh[..., :k, :], gvh[..., :k, :]
    v, gv = _mT(vh), _mT(gvh)
    f = _gap_inverse(s * s)
    j = f * (_mT(u) @ gu - _mT(gu) @ u)
    kk = f * (_mT(v) @ gv - _mT(gv) @ v)
    inner = j * s[..., None, :] + gs[..., :, None] * np.eye(k) + s[..., :, None] * kk
    out = u @ inner @ vh
    # The parts of gU and gV outside U's and V's column spaces, divided by s; 0 where s is
    # 0 (there U's or V's column is arbitrary, and nothing that reads only s flows back).
    if m > k:
        out = out + safe_quotient(gu - u @ (_mT(u) @ gu), s[..., None, :]) @ vh
    if n > k:
        out = out + u @ safe_quotient(_mT(gv) - (_mT(gv) @ v) @ vh, s[..., :, None])
    return out


def _svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
         hermitian: bool = False) -> Any:  # fmt: skip
    if hermitian:
        raise NotImplementedError("numpy.linalg.svd(hermitian=True) of a BVar is not lifted")
    return NP.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)


svd_p = prim(_svd, _svd_grad, name="svd", nondiff=(1, 2, 3))


def _qr_square_grad(gq: Any, gr: Any, q: Any, r: Any) -> Any:
    """The gradient of ``A = QR`` for a square ``R`` (A has at least as many rows)."""
    m = r @ _mT(gr) - _mT(gq) @ q
    b = gq + q @ (tril(m) + _mT(tril(m, -1)))
    return _mT(np.linalg.solve(r, _mT(b)))


def _qr_grad(g: Any, y: Any, a: Any, mode: str = "reduced") -> Any:
    q, r = y
    gq, gr = g
    m, n = shape_of(a)[-2:]
    if m > n:
        if mode == "complete":  # keep the first n columns of Q: the rest has no gradient
            _no_gradient_into(gq[..., :, n:], "the last m - n columns of Q from "
                              "qr(mode='complete')", "use mode='reduced'")  # fmt: skip
            q, gq, r, gr = q[..., :, :n], gq[..., :, :n], r[..., :n, :], gr[..., :n, :]
        return _qr_square_grad(gq, gr, q, r)
    # A wide matrix [X | Y] factors as X = Q U (square) and Y = Q V: V's gradient reaches X
    # through Q (as Y gV^T) and Y directly (as Q gV).
    y_part, gv = a[..., :, m:], gr[..., :, m:]
    gx = _qr_square_grad(gq + y_part @ _mT(gv), gr[..., :, :m], q, r[..., :, :m])
    return np.concatenate([gx, q @ gv], axis=-1)


def _qr(a: Any, mode: str = "reduced") -> Any:
    if mode not in ("reduced", "complete", "r"):
        raise NotImplementedError(
            f"numpy.linalg.qr of a BVar supports mode 'reduced', 'complete' or 'r' "
            f"(got mode={mode!r})"
        )
    return NP.linalg.qr(a, mode="reduced" if mode == "r" else mode)


qr_p = prim(_qr, _qr_grad, name="qr", nondiff=(1,))


@lift(np.linalg.qr)
def _qr_lifted(a: Any, mode: str = "reduced") -> Any:
    out = qr_p(a, mode)
    return out[1] if mode == "r" else out


# --------------------------------------------------------------------------------------
# norm, matrix_power, multi_dot
# --------------------------------------------------------------------------------------


def _l2_grad(g: Any, y: Any, x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    s = shape_of(x)
    return kept(g, s, axis, keepdims) * safe_quotient(x, kept(y, s, axis, keepdims))


def _l2(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    # NumPy's own norm: on an outer tape's BVar it records l2_p again, safe at 0.
    return np.linalg.norm(x, None, axis, keepdims)


l2_p = prim(_l2, _l2_grad, name="norm", nondiff=(1,))


def _pnorm_grad(g: Any, y: Any, x: Any, p: float, axis: Any = None,
                keepdims: bool = False) -> Any:  # fmt: skip
    # sign(x) |x|^(p-1) / ||x||^(p-1), with 0 where x or the norm is 0
    s = shape_of(x)
    ax = np.abs(x)
    nz = primal(ax) != 0
    powered = np.where(nz, np.where(nz, ax, 1.0) ** (p - 1.0), 0.0)
    yk = kept(y, s, axis, keepdims)
    pos = primal(yk) > 0
    scale = np.where(pos, 1.0 / np.where(pos, yk, 1.0) ** (p - 1.0), 0.0)
    return kept(g, s, axis, keepdims) * np.sign(primal(x)) * powered * scale


def _pnorm(x: Any, p: float, axis: Any = None, keepdims: bool = False) -> Any:
    return np.linalg.norm(x, p, axis, keepdims)


pnorm_p = prim(_pnorm, _pnorm_grad, name="norm", nondiff=(1, 2))


def _norm_axes(axis: Any, nd: int) -> tuple[int, ...]:
    """``axis`` made non-negative, refused as NumPy refuses it (out of range, repeated)."""
    for a in axis:
        if not -nd <= int(a) < nd:
            raise _AxisError(int(a), nd)
    out = tuple(int(a) % nd for a in axis)
    if len(set(out)) != len(out):
        raise ValueError("Duplicate axes given.")
    return out


@lift(np.linalg.norm)
def _norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A002
    nd = ndim_of(x)
    if axis is None and ord is None:
        return l2_p(x, None, keepdims)
    if axis is None:
        if nd not in (1, 2):
            raise ValueError("Improper number of dimensions to norm.")
        axis = tuple(range(nd))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    axis = _norm_axes(axis, nd)
    if len(axis) == 1:
        if isinstance(ord, str):
            raise ValueError(f"Invalid norm order '{ord}' for vectors")
        if ord is None or ord == 2:
            return l2_p(x, axis, keepdims)
        if ord == 1:
            return np.sum(np.abs(x), axis=axis, keepdims=keepdims)
        if ord == np.inf:
            return np.max(np.abs(x), axis=axis, keepdims=keepdims, initial=0.0)
        if ord == -np.inf:
            return np.min(np.abs(x), axis=axis, keepdims=keepdims)
        if ord == 0:
            nonzero = (primal(x) != 0).astype(np.result_type(primal(x), 1.0))
            return np.sum(nonzero, axis=axis, keepdims=keepdims)  # piecewise constant
        return pnorm_p(x, float(ord), axis, keepdims)
    if len(axis) != 2:
        raise ValueError("Improper number of dimensions to norm.")
    r, c = axis
    if ord is None or ord in ("fro", "f"):
        return l2_p(x, axis, keepdims)
    if ord in (1, -1, np.inf, -np.inf):
        summed, other = (r, c) if ord in (1, -1) else (c, r)
        col = np.sum(np.abs(x), axis=summed, keepdims=True)
        out = (np.max(col, axis=other, keepdims=True, initial=0.0) if ord > 0
               else np.min(col, axis=other, keepdims=True))  # fmt: skip
    elif ord in ("nuc", 2, -2):
        s = np.linalg.svd(np.moveaxis(x, (r, c), (-2, -1)), compute_uv=False)
        out = (np.sum(s, axis=-1) if ord == "nuc" else np.max(s, -1, initial=0.0) if ord == 2
               else np.min(s, -1))  # fmt: skip
        if keepdims:
            out = reshape(out, tuple(1 if i in axis else n for i, n in enumerate(shape_of(x))))
        return out
    else:
        raise ValueError("Invalid norm order for matrices.")
    return out if keepdims else out[tuple(0 if i in axis else slice(None) for i in range(nd))]


@lift(np.linalg.matrix_power)
def _matrix_power(a: Any, n: int) -> Any:
    if n < 0:
        a, n = np.linalg.inv(a), -n
    if n == 0:
        eye = np.eye(shape_of(a)[-1], dtype=np.result_type(primal(a)))
        return np.broadcast_to(eye, shape_of(a)).copy()
    result, base = None, a
    while n:
        if n & 1:
            result = base if result is None else result @ base
        n >>= 1
        if n:
            base = base @ base
    return result


@lift(np.linalg.multi_dot)
def _multi_dot(arrays: Any, *, out: Any = None) -> Any:
    if out is not None:
        raise NotImplementedError("numpy.linalg.multi_dot with out= cannot be recorded")
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    if len(arrays) == 2:
        return np.dot(arrays[0], arrays[1])
    # As NumPy: vectors at the ends as a row and a column, the products in the order that
    # costs the fewest multiplications (so the values are NumPy's to the bit).
    first, last = ndim_of(arrays[0]), ndim_of(arrays[-1])
    if first == 1:
        arrays[0] = np.atleast_2d(arrays[0])
    if last == 1:
        arrays[-1] = np.atleast_2d(arrays[-1]).T
    for a in arrays:
        if ndim_of(a) != 2:
            raise np.linalg.LinAlgError(
                f"{ndim_of(a)}-dimensional array given. Array must be two-dimensional")
    split = _chain_order([shape_of(a)[0] for a in arrays] + [shape_of(arrays[-1])[1]])
    result = _chain_product(arrays, split, 0, len(arrays) - 1)
    if first == 1 and last == 1:
        return result[0, 0]
    return np.ravel(result) if first == 1 or last == 1 else result


def _chain_order(p: list[int]) -> dict[tuple[int, int], int]:
    """Where to split each run ``i..j`` of the matrices (shapes ``p[i] x p[i + 1]``) for
    the fewest multiplications: the textbook dynamic programme, ties going to the first
    split, as NumPy's (whose shortcut for three matrices chooses alike)."""
    n = len(p) - 1
    cost = {(i, i): 0.0 for i in range(n)}
    split: dict[tuple[int, int], int] = {}
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i, j] = math.inf
            for k in range(i, j):
                q = cost[i, k] + cost[k + 1, j] + p[i] * p[k + 1] * p[j + 1]
                if q < cost[i, j]:
                    cost[i, j], split[i, j] = q, k
    return split


def _chain_product(arrays: list[Any], split: dict[tuple[int, int], int], i: int, j: int) -> Any:
    if i == j:
        return arrays[i]
    k = split[i, j]
    return np.dot(_chain_product(arrays, split, i, k), _chain_product(arrays, split, k + 1, j))


rules.FUNCTIONS.update({
    np.linalg.inv: inv_p, np.linalg.pinv: pinv_p, np.linalg.det: det_p,
    np.linalg.slogdet: slogdet_p, np.linalg.solve: solve_p, np.linalg.cholesky: cholesky_p,
    np.linalg.eigh: eigh_p, np.linalg.svd: svd_p,
})  # fmt: skip


# -- NumPy 2's array-API names, as compositions of the functions above ---------------------


def _vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: Any = 2) -> Any:  # noqa: A002
    """``numpy.linalg.vector_norm``: the axes (all by default) merged into one, then
    ``norm`` of vectors."""
    nd = ndim_of(x)
    NP.linalg.vector_norm(np.zeros((1,) * nd), axis=axis, ord=ord)  # (NumPy's own checks)
    axes = tuple(range(nd)) if axis is None else tuple(
        int(ax) % nd for ax in ((axis,) if np.ndim(axis) == 0 else axis))  # fmt: skip
    rest = [ax for ax in range(nd) if ax not in axes]
    shape = shape_of(x)
    merged = reshape(np.transpose(x, rest + list(axes)),
                     tuple(shape[ax] for ax in rest) + (-1,))  # fmt: skip
    out = np.linalg.norm(merged, ord, axis=-1)
    if keepdims:
        out = reshape(out, tuple(1 if ax in axes else n for ax, n in enumerate(shape)))
    return out


def _matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:  # noqa: A002
    return np.linalg.norm(x, ord, axis=(-2, -1), keepdims=keepdims)


def _svdvals(x: Any, /) -> Any:
    return np.linalg.svd(x, compute_uv=False)


def _vecdot(x1: Any, x2: Any, /, *, axis: int = -1, keepdims: bool = False,
            **unsupported: Any) -> Any:  # fmt: skip
    """``vecdot`` of real values: ``sum(x1 * x2, axis)`` (the ufunc and linalg's)."""
    _no_gufunc_keywords("vecdot", unsupported)
    NP.vecdot(stand_in(x1), stand_in(x2), axis=axis, keepdims=keepdims)  # (NumPy's checks)
    return np.sum(x1 * x2, axis=axis, keepdims=keepdims)


def _matvec(x1: Any, x2: Any, /, **unsupported: Any) -> Any:
    """``numpy.matvec`` (NumPy 2.2): ``x1 @ x2`` over the last axes, batched."""
    _no_gufunc_keywords("matvec", unsupported)
    NP.matvec(stand_in(x1), stand_in(x2))  # (NumPy's checks: the core dimensions)
    return np.matmul(x1, np.expand_dims(x2, -1))[..., 0]


def _vecmat(x1: Any, x2: Any, /, **unsupported: Any) -> Any:
    """``numpy.vecmat`` (NumPy 2.2): ``x1 @ x2`` with ``x1`` a (batch of) row vector."""
    _no_gufunc_keywords("vecmat", unsupported)
    NP.vecmat(stand_in(x1), stand_in(x2))
    return np.matmul(np.expand_dims(x1, -2), x2)[..., 0, :]


def _no_gufunc_keywords(name: str, keywords: dict[str, Any]) -> None:
    if keywords:
        raise NotImplementedError(
            f"numpy.{name} of a BVar with {', '.join(f'{k}=' for k in keywords)} is not "
            "differentiable in hetgrad; move the axes with numpy.moveaxis first"
        )


def _linalg_outer(x1: Any, x2: Any, /) -> Any:
    if ndim_of(x1) != 1 or ndim_of(x2) != 1:
        NP.linalg.outer(stand_in(x1), stand_in(x2))  # (NumPy's error)
    return np.outer(x1, x2)


def _linalg_cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    NP.linalg.cross(stand_in(x1), stand_in(x2), axis=axis)  # (NumPy's checks)
    return np.cross(x1, x2, axis=axis)


def _cond(x: Any, p: Any = None) -> Any:
    """``numpy.linalg.cond``: through the singular values for ``p`` None, 2 and -2, else
    ``norm(x, p) * norm(inv(x), p)``.  Where NumPy's is inf (a singular matrix) the
    result is that constant, with no gradient."""
    want = np.linalg.cond(primal(x), p)
    singular = ~np.isfinite(want)
    if np.any(singular):
        eye = np.eye(shape_of(x)[-1], dtype=np.result_type(primal(x)))
        safe = np.where(singular[..., None, None], eye, x)
        return np.where(singular, want, _finite_cond(safe, p))
    return _finite_cond(x, p)


def _finite_cond(x: Any, p: Any) -> Any:
    if p is None or p == 2 or p == -2:
        s = np.linalg.svd(x, compute_uv=False)
        big, small = s[..., 0], s[..., -1]
        return small / big if p == -2 else big / small
    return np.linalg.norm(x, p, axis=(-2, -1)) * np.linalg.norm(np.linalg.inv(x), p, axis=(-2, -1))


def _linalg_diagonal(x: Any, /, *, offset: int = 0) -> Any:
    return np.diagonal(x, offset, -2, -1)


def _linalg_trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    return np.trace(x, offset, -2, -1, dtype)


def _linalg_tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    return np.tensordot(x1, x2, axes)


def _linalg_matmul(x1: Any, x2: Any, /) -> Any:
    return np.matmul(x1, x2)


rules.FUNCTIONS.update({
    np.linalg.vector_norm: _vector_norm, np.linalg.matrix_norm: _matrix_norm,
    np.linalg.svdvals: _svdvals, np.linalg.vecdot: _vecdot, np.linalg.outer: _linalg_outer,
    np.linalg.cross: _linalg_cross, np.linalg.diagonal: _linalg_diagonal,
    np.linalg.trace: _linalg_trace, np.linalg.tensordot: _linalg_tensordot,
    np.linalg.matmul: _linalg_matmul, np.linalg.cond: _cond,
    np.linalg.matrix_rank: constant(np.linalg.matrix_rank),
})  # fmt: skip
rules.COMPOSED_UFUNCS[np.vecdot] = _vecdot
for _u, _impl in ((getattr(np, "matvec", None), _matvec), (getattr(np, "vecmat", None), _vecmat)):
    if _u is not None:  # (NumPy 2.2)
        rules.COMPOSED_UFUNCS[_u] = _impl
