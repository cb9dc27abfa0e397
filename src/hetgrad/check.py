"""``check_grads``: compare reverse-mode gradients with finite differences.

>>> import numpy as np, hetgrad
>>> hetgrad.check_grads(lambda p: np.sum(np.sin(p["w"]) * p["b"]),
...                     {"w": np.array([0.1, 0.2]), "b": 3.0, "name": "layer"}, order=2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import tree
from .runners import grad
from .tree import TreeDef, flatten, unflatten

__all__ = ["check_grads"]


def check_grads(
    f: Callable[..., Any],
    *args: Any,
    order: int = 1,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    rng: np.random.Generator | int | None = None,
) -> None:
    """Check ``f``'s reverse-mode gradient against central finite differences.

    Every argument may be any structure hetgrad understands (dataclasses, dicts, lists,
    NamedTuples, arrays, floats); static leaves (ints, strings, static fields) are
    skipped, and so are values of registered types, which it cannot perturb (if nothing
    else is left to check it raises ``TypeError``, and so it does for a point of integers,
    which are constants: ``np.array([1, 2])`` where floats were meant, and for a point
    whose float arrays are all empty).  Float leaves are converted to float64.
    For each differentiable leaf, the gradient's component along a random direction is
    compared with the central difference ``(s(x + eps v) - s(x - eps v)) / (2 eps)``,
    where ``s`` is ``f`` (or, if ``f`` returns an array or a structure, its inner product
    with fixed random weights).
    A leaf passes when ``|ad - fd| <= atol + rtol * |fd|``.

    Args:
        f: the function; any output structure of floats and arrays.
        *args: the point at which to check.
        order: 1 checks the gradient; 2 also checks the gradient of the gradient
            (the gradient of a random projection of it, by nested reverse mode); and so on.
        eps: the finite-difference step.
        rtol: relative tolerance.
        atol: absolute tolerance.
        rng: a NumPy Generator or a seed for the random directions (default: seed 0).

    Raises:
        AssertionError: naming the leaf with the largest discrepancy, with both values;
            if the central difference is not finite, saying why instead: the point is not
            finite, ``f`` is not finite there, or not within ``eps`` of it.

    >>> import hetgrad
    >>> hetgrad.check_grads(lambda x, n: x ** n, 1.5, 3, order=2)
    """
    if not callable(f):
        raise TypeError(f"check_grads checks a function; got {type(f).__name__}")
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"check_grads: order must be an int >= 1, got {order!r}")
    for name, x, low in (("eps", eps, 0.0), ("rtol", rtol, None), ("atol", atol, None)):
        ok = isinstance(x, (int, float, np.integer, np.floating)) and np.isfinite(x)
        if not ok or (x <= low if low is not None else x < 0):
            need = "positive" if low is not None else "non-negative"
            raise ValueError(f"check_grads: {name} must be a finite {need} number, got {x!r}")
    if rng is not None and not isinstance(rng, (np.random.Generator, int, np.integer)):
        raise TypeError(f"check_grads: rng must be a numpy Generator, an int seed or None, got "
                        f"{type(rng).__name__}")  # fmt: skip
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng or 0)
    point = tuple(_to_float64(a) for a in args)
    s = _projected(f, point, gen)
    _check_first_order(s, point, gen, eps, rtol, atol, "gradient")
    what = "gradient"
    for _ in range(order - 1):
        s = _gradient_projection(s, point, gen)
        what = "gradient of the " + what
        _check_first_order(s, point, gen, eps, rtol, atol, what)


def _to_float64(x: Any) -> Any:
    leaves, td = flatten(x)
    return unflatten(td, [_leaf64(v) for v in leaves])


def _leaf64(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.astype(np.float64)
    if isinstance(v, np.floating):
        return np.float64(v)
    return v


def _checkable(v: Any) -> bool:
    return isinstance(v, (float, np.ndarray, np.floating))


def _random_like(v: Any, gen: np.random.Generator) -> Any:
    if isinstance(v, np.ndarray):
        return gen.standard_normal(v.shape)
    return float(gen.standard_normal())


def _inner(w: Any, x: Any) -> Any:
    """``sum(w * x)`` over one leaf, recorded if ``x`` is a BVar."""
    return np.sum(w * x) if np.ndim(w) else w * x


def _projected(f: Callable[..., Any], point: tuple[Any, ...],
               gen: np.random.Generator) -> Callable[..., Any]:  # fmt: skip
    """A scalar function: ``f`` itself if it returns a scalar, else a random projection."""
    out = f(*point)
    out_leaves, _ = flatten(out)
    if not out_leaves:
        raise TypeError(
            f"check_grads: f returned {type(out).__name__} {out!r:.60}, which has no float "
            "leaf to check"
        )
    if len(out_leaves) == 1 and np.ndim(out_leaves[0]) == 0 and out_leaves[0] is out:
        return f
    weights = [_random_like(np.asarray(v, dtype=np.float64), gen) for v in out_leaves]

    def s(*xs: Any) -> Any:
        leaves, _ = flatten(f(*xs))
        total: Any = 0.0
        for w, v in zip(weights, leaves):
            total = total + _inner(w, v)
        return total

    return s


def _nothing_checked(opaque: list[str]) -> None:
    """Raise if values of registered types were all check_grads had: a pass would be
    false assurance."""
    if opaque:
        raise TypeError(
            f"check_grads checked nothing: {', '.join(opaque)} "
            f"{'is a value' if len(opaque) == 1 else 'are values'} of a registered type, "
            "which it cannot perturb; check a function of the floats or arrays inside instead"
        )


def _integers_only(point: tuple[Any, ...]) -> None:
    """Raise if the point, which has no float leaf, has integers or booleans at any depth:
    they are constants, so a pass would check nothing (``np.array([1, 2, 3])`` or
    ``{"x": 2}`` where floats were meant).  Strings and None alone mistake nothing."""
    ints = [path for path, v in _static_leaves(point)
            if (isinstance(v, (int, np.integer, np.bool_)) and not isinstance(v, bool))
            or (isinstance(v, np.ndarray) and v.dtype.kind in "biu")]  # fmt: skip
    if ints:
        raise TypeError(
            f"check_grads checked nothing: {', '.join(ints)} "
            f"{'is an integer' if len(ints) == 1 else 'are integers'} (or booleans): "
            "constants, never differentiated; pass floats, for example x.astype(float)"
        )


def _static_leaves(point: tuple[Any, ...]) -> list[tuple[str, Any]]:
    """(path, value) of every static leaf of the point's arguments."""
    out: list[tuple[str, Any]] = []
    for i, a in enumerate(point):
        _, td = flatten(a)
        _walk_static(td, f"args[{i}]", out)
    return out


def _walk_static(td: TreeDef, path: str, out: list[tuple[str, Any]]) -> None:
    keys = td.container.keys(td.aux) if td.container is not None else [None]
    for key, c in zip(keys, td.children):
        here = path if key is None else path + tree.format_path([key])
        if type(c) is tree.Static:
            out.append((here, c.value))
        elif type(c) is TreeDef:
            _walk_static(c, here, out)


def _opaque_paths(point: tuple[Any, ...]) -> list[str]:
    """The paths of the leaves check_grads cannot perturb (values of registered types)."""
    out = []
    for i, a in enumerate(point):
        leaves, td = flatten(a)
        paths = tree.leaf_paths(td, f"args[{i}]")
        out += [path for path, v in zip(paths, leaves) if not _checkable(v)]
    return out


def _differentiable(point: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(i for i, a in enumerate(point) if any(_checkable(v) for v in flatten(a)[0]))


def _gradient_projection(s: Callable[..., Any], point: tuple[Any, ...],
                         gen: np.random.Generator) -> Callable[..., Any]:  # fmt: skip
    """``x -> <w, grad s(x)>`` for fixed random weights ``w`` (differentiable again)."""
    nums = _differentiable(point)
    weights = {i: [_random_like(v, gen) for v in flatten(point[i])[0]] for i in nums}
    gs = grad(s, argnums=nums)

    def h(*xs: Any) -> Any:
        total: Any = 0.0
        for i, g in zip(nums, gs(*xs)):
            for w, v in zip(weights[i], flatten(g)[0]):
                total = total + _inner(w, v)
        return total

    return h


def _check_first_order(s: Callable[..., Any], point: tuple[Any, ...], gen: np.random.Generator,
                       eps: float, rtol: float, atol: float, what: str) -> None:  # fmt: skip
    nums = _differentiable(point)
    if not nums:
        _nothing_checked(_opaque_paths(point))
        _integers_only(point)
        return
    grads = grad(s, argnums=nums)(*point)
    worst: tuple[float, str, float, float, list[float]] | None = None
    checked, opaque = 0, []
    for i, g in zip(nums, grads):
        leaves, td = flatten(point[i])
        gleaves = flatten(g)[0]
        paths = tree.leaf_paths(td, f"args[{i}]")
        for j, (x, gx) in enumerate(zip(leaves, gleaves)):
            if not _checkable(x):
                opaque.append(paths[j])
                continue
            if np.size(x) == 0:
                continue
            checked += 1
            v = _random_like(x, gen)
            ad = float(np.sum(np.asarray(gx, dtype=np.float64) * v))
            values = []
            for step in (eps, -eps):
                moved = list(leaves)
                moved[j] = x + step * v
                xs = list(point)
                xs[i] = unflatten(td, moved)
                values.append(float(np.asarray(s(*xs), dtype=np.float64)))
            fd = (values[0] - values[1]) / (2.0 * eps)
            excess = abs(ad - fd) / (atol + rtol * abs(fd))
            if not np.isfinite(ad) or not np.isfinite(fd):
                excess = np.inf if np.isfinite(ad) != np.isfinite(fd) or ad != fd else 0.0
            if excess > 1.0 and (worst is None or excess > worst[0]):
                worst = (excess, paths[j], ad, fd, values)
    if not checked:
        _nothing_checked(opaque)
        raise TypeError(
            "check_grads checked nothing: every float leaf of the point is empty (size 0); "
            "check at a point with at least one element"
        )
    if worst is not None:
        _, path, ad, fd, values = worst
        if not np.isfinite(fd):
            reason = _not_finite(s, point, values, eps, what)
            raise AssertionError(
                f"check_grads: the {what} at {path} cannot be checked (reverse mode gives "
                f"{ad!r}, central differences {fd!r}): {reason}"
            )
        raise AssertionError(
            f"check_grads: the {what} at {path} disagrees with finite differences: along a "
            f"random direction, reverse mode gives {ad!r} and central differences give "
            f"{fd!r} (|difference| {abs(ad - fd):.3g} > atol + rtol * |fd| = "
            f"{atol + rtol * abs(fd):.3g})"
        )


def _not_finite(s: Callable[..., Any], point: tuple[Any, ...], values: list[float],
                eps: float, what: str) -> str:  # fmt: skip
    """Why the central difference is not finite: the point, the value there, or nearby."""
    for i, a in enumerate(point):
        leaves, td = flatten(a)
        for path, v in zip(tree.leaf_paths(td, f"args[{i}]"), leaves):
            if _checkable(v) and not np.all(np.isfinite(v)):
                return f"the point is not finite at {path}; check at a finite point"
    subject = "f" if what == "gradient" else "the " + what.removeprefix("gradient of the ")
    value = float(np.asarray(s(*point), dtype=np.float64))
    if not np.isfinite(value):
        return (f"{subject} is not finite at this point (its value is {value!r}); check at "
                "a point where it is finite")  # fmt: skip
    return (f"{subject} is not finite within eps = {eps!r} of the point (its values at "
            f"x + eps v and x - eps v are {values[0]!r} and {values[1]!r}); check further "
            "from where it is not finite, or with a smaller eps")  # fmt: skip
