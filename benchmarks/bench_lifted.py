"""Lifted NumPy: overhead on plain arrays, and per-operation cost on BVars.

Plain arrays: a lifted function against NumPy called directly (target: at most 0.3 us
more).  Most of ``hetgrad.numpy`` *is* NumPy's own objects, so those rows measure nothing
but noise; the wrappers (``array``, ``full``, ``logsumexp``, ``nn.softmax``) are the real
cases.

BVars: a chain of K identical operations on a small array, forward and backward through
``hetgrad.grad_bp``, against the same chain written by hand in NumPy (forward keeping the
intermediates, then the backward pass): the difference divided by K is hetgrad's overhead
per recorded operation (target: at most 2 us above NumPy's own work).  ``logaddexp`` is
timed against two baselines: the textbook gradient ``g * exp(x - y)``, which is NaN where
both operands are the same infinity, and the same with the finiteness check (one ``vdot``)
that hetgrad's rule makes to stay right there, which is the NumPy work a correct gradient
does.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

import hetgrad
import hetgrad.numpy as hnp
from hetgrad import nn

from .common import check_close
from .harness import Report, measure_rounds, paired_difference, paired_ratio

K = 200


def _plain(report: Report, quick: bool) -> None:
    group = "lifted functions on plain arrays"
    x = np.linspace(-1.0, 1.0, 4)
    m = np.linspace(-1.0, 1.0, 16).reshape(4, 4)
    floats = [0.5, 1.5, 2.5, 3.5]

    def np_logsumexp(a: np.ndarray) -> Any:
        mx = np.max(a, axis=-1, keepdims=True)
        return np.log(np.sum(np.exp(a - mx), axis=-1)) + mx[..., 0]

    def np_softmax(a: np.ndarray) -> Any:
        e = np.exp(a - np.max(a, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)

    rows: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("sin(4)", lambda: np.sin(x), lambda: hnp.sin(x)),
        ("sum(4x4, axis=0)", lambda: np.sum(m, axis=0), lambda: hnp.sum(m, axis=0)),
        ("einsum ij,jk", lambda: np.einsum("ij,jk", m, m), lambda: hnp.einsum("ij,jk", m, m)),
        ("linalg.norm(4)", lambda: np.linalg.norm(x), lambda: hnp.linalg.norm(x)),
        ("array(list of 4 floats)", lambda: np.array(floats), lambda: hnp.array(floats)),
        ("full((4, 4), 2.0)", lambda: np.full((4, 4), 2.0), lambda: hnp.full((4, 4), 2.0)),
        (
            "logsumexp(4x4, axis=-1)",
            lambda: np_logsumexp(m),
            lambda: hnp.logsumexp(m, axis=-1),
        ),  # fmt: skip
        ("softmax(4x4)", lambda: np_softmax(m), lambda: nn.softmax(m)),
    ]
    min_time = 0.01 if quick else 0.05
    for name, numpy_fn, lifted_fn in rows:
        check_close(f"{name}, lifted", [numpy_fn()], [lifted_fn()], rtol=1e-14, atol=0.0)
        rounds = measure_rounds({"numpy": numpy_fn, "lifted": lifted_fn}, min_time=min_time,
                                repeat=15)  # fmt: skip
        base, lifted = rounds["numpy"], rounds["lifted"]
        report.add(group, name, "numpy", statistics.median(base))
        report.add(group, name, "hetgrad.numpy", statistics.median(lifted),
                   ratio=paired_ratio(lifted, base))  # fmt: skip
        report.note(
            f"plain {name}: hetgrad.numpy adds {paired_difference(lifted, base) * 1e6:+.3f} us "
            f"(median over rounds; {(min(lifted) - min(base)) * 1e6:+.3f} us between the "
            "fastest rounds)"
        )


def _chains() -> list[tuple[str, Callable[[Any], Any], Callable[[np.ndarray], Any], Any]]:
    """(name, one lifted step, the hand-written forward+backward of K steps, input)."""
    c = np.linspace(0.1, 0.4, 4)
    w = np.eye(4) * 0.9 + 0.01

    def sin_numpy(x: np.ndarray) -> Any:
        xs = []
        for _ in range(K):
            xs.append(x)
            x = np.sin(x)
        g = np.ones_like(x)
        for xi in reversed(xs):
            g = g * np.cos(xi)
        return g

    def mul_add_numpy(x: np.ndarray) -> Any:
        for _ in range(K):
            x = x * c + c
        g = np.ones_like(x)
        for _ in range(K):
            g = g * c
        return g

    def logaddexp_numpy(x: np.ndarray, guarded: bool = False) -> Any:
        """``guarded``: with the check a correct gradient needs, as hetgrad's rule makes it:
        ``exp(x - y)`` is NaN where ``x`` and ``y`` are the same infinity, and inexact
        where ``|y|`` is large (the rounding of ``y``)."""
        ys = []
        for _ in range(K):
            y = np.logaddexp(x, c)
            ys.append((x, y))
            x = y
        g = np.ones_like(x)
        for xi, yi in reversed(ys):
            if guarded and not np.vdot(yi, yi) <= 4096.0**2:
                raise FloatingPointError("a large or infinite output: the careful formula")
            g = g * np.exp(xi - yi)
        return g

    def matmul_numpy(x: np.ndarray) -> Any:
        for _ in range(K):
            x = x @ w
        g = np.ones_like(x)
        for _ in range(K):
            g = g @ w.T
        return g

    def einsum_numpy(x: np.ndarray) -> Any:
        for _ in range(K):
            x = np.einsum("ij,jk->ik", x, w)
        g = np.ones_like(x)
        for _ in range(K):
            g = np.einsum("ik,jk->ij", g, w)
        return g

    def softmax_numpy(x: np.ndarray) -> Any:
        ys = []
        for _ in range(K):
            e = np.exp(x - np.max(x, axis=-1, keepdims=True))
            x = e / np.sum(e, axis=-1, keepdims=True)
            ys.append(x)
        g = np.ones_like(x)
        for y in reversed(ys):
            g = y * (g - np.sum(g * y, axis=-1, keepdims=True))
        return g

    v = np.linspace(-1.0, 1.0, 4)
    m = np.linspace(-1.0, 1.0, 16).reshape(4, 4)
    return [
        ("sin (ufunc, 4 floats)", np.sin, sin_numpy, v),
        ("x * c + c (operators, 4 floats)", lambda x: x * c + c, mul_add_numpy, v),
        ("logaddexp (binary ufunc)", lambda x: np.logaddexp(x, c), logaddexp_numpy, v),
        ("logaddexp, against a guarded baseline", lambda x: np.logaddexp(x, c),
         lambda x: logaddexp_numpy(x, guarded=True), v),  # fmt: skip
        ("matmul 4x4", lambda x: x @ w, matmul_numpy, m),
        ("einsum ij,jk->ik 4x4", lambda x: np.einsum("ij,jk->ik", x, w), einsum_numpy, m),
        ("nn.softmax 4x4", nn.softmax, softmax_numpy, m),
    ]


def _bvars(report: Report, quick: bool) -> None:
    group = f"lifted functions on BVars: chain of {K} ops, forward+backward"
    min_time = 0.05 if quick else 0.1
    for name, step, by_hand, x0 in _chains():
        ops = 2 if name.startswith("x * c") else 1

        def chain(x: Any, step: Callable[[Any], Any] = step) -> Any:
            for _ in range(K):
                x = step(x)
            return np.sum(x)

        want = by_hand(x0)
        got = hetgrad.grad_bp(chain, x0)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
        rounds = measure_rounds({
            "base": lambda by_hand=by_hand, x0=x0: by_hand(x0),
            "hetgrad": lambda chain=chain, x0=x0: hetgrad.grad_bp(chain, x0),
        }, min_time=min_time, repeat=15)  # fmt: skip
        base, hg = rounds["base"], rounds["hetgrad"]
        report.add(group, name, "numpy by hand", statistics.median(base))
        report.add(group, name, "hetgrad grad_bp", statistics.median(hg),
                   ratio=paired_ratio(hg, base))  # fmt: skip
        per_op = paired_difference(hg, base) / (K * ops)
        per_op_best = (min(hg) - min(base)) / (K * ops)
        report.note(
            f"BVar {name}: hetgrad adds {per_op * 1e6:.2f} us per recorded operation "
            f"(record + backward) over NumPy's own work (median over rounds; "
            f"{per_op_best * 1e6:.2f} us between the fastest rounds)"
        )


def run(report: Report, quick: bool) -> None:
    _plain(report, quick)
    _bvars(report, quick)
