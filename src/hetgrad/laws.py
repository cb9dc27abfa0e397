"""``check_backprop_laws``: test a type's Backprop protocol on example values.

A type registered with :func:`hetgrad.register_backprop` promises that its ``zero``, ``add``
and ``one`` behave like the zero, addition and seed of a vector space, because the backward
pass relies on it: gradients of a value used twice are combined with ``add``, an input
that does not reach the output gets ``zero``, and a scalar output is seeded with ``one``.
:func:`check_backprop_laws` checks those promises on values you give it, and also runs
them through hetgrad's runners the way a real gradient computation would.

>>> import numpy as np, hetgrad
>>> class Poly:
...     '''A polynomial, by its coefficients.'''
...     def __init__(self, coef):
...         self.coef = np.asarray(coef, dtype=float)
>>> hetgrad.register_backprop(
...     Poly,
...     zero=lambda p: Poly(np.zeros_like(p.coef)),
...     add=lambda p, q: Poly(p.coef + q.coef),
...     one=lambda p: Poly(np.ones_like(p.coef)),
... )
>>> hetgrad.check_backprop_laws(Poly([1.0, 2.0]), Poly([0.5, -1.0]), Poly([3.0, 0.0]))
"""

from __future__ import annotations

import copy
import reprlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import tree
from .protocol import add, instance_for, one, zero
from .runners import backprop_with, grad_bp
from .tree import Static, TreeDef, flatten

__all__ = ["check_backprop_laws"]

# Numbers and arrays, compared to a tolerance (registered subclasses of them too).
_NUMBERS = (float, np.number, np.ndarray)

_repr = reprlib.Repr()
_repr.maxstring = 120
_repr.maxother = 120


def check_backprop_laws(
    *examples: Any,
    eq: Callable[[Any, Any], bool] | None = None,
    rtol: float = 1e-7,
    atol: float = 1e-9,
) -> None:
    """Check the Backprop laws (and hetgrad's use of them) on example values.

    Pass two or three different values of one type and one shape (the way a gradient has
    the shape of its value: equal list lengths, equal array shapes, equal static leaves).
    The examples may be values of a registered type or any structure containing them.
    For all examples ``x``, ``y``, ``z`` (pairs and triples, in order) it checks:

    * ``zero(x)``, ``one(x)`` and ``add(x, y)`` have ``x``'s type and structure;
    * ``zero(zero(x)) == zero(x)``;
    * ``add(x, zero(y)) == x`` and ``add(zero(y), x) == x``;
    * ``add(x, y) == add(y, x)`` and ``add(add(x, y), z) == add(x, add(y, z))`` (up to
      floating-point rounding);
    * ``add`` is a sum: ``add(x, x) != x`` for every value ``x`` of a registered type
      (at any depth) that is not ``zero(x)`` (an ``add`` such as ``max`` obeys the laws
      above but would not sum the gradients of a value used twice);
    * ``zero``, ``one`` and ``add`` leave their arguments unchanged (the tape keeps
      values, so a mutating ``add`` corrupts later gradients);
    * through the runners: the pullback of the identity returns its cotangent, a value
      used twice gets ``add`` of its two cotangents, an unused input gets ``zero(x)``,
      and, for a real scalar, ``grad_bp(lambda v: v, x) == one(x)``.

    Args:
        *examples: one or more values (three distinct ones exercise every law).
        eq: how to compare two values of your type; by default NumPy arrays and numbers
            compare with ``rtol``/``atol``, values with an ``__eq__`` of their own use it,
            and other objects compare by their attributes (and a registered subclass of
            ``float`` or ``ndarray`` by its value too, with the tolerance).
        rtol: relative tolerance for numbers.
        atol: absolute tolerance for numbers.

    Raises:
        AssertionError: naming the first law that fails, the examples involved and the
            values that differ.
        TypeError: if an example is not a structure hetgrad can differentiate.

    >>> import hetgrad
    >>> hetgrad.check_backprop_laws({"w": 1.0, "name": "a"}, {"w": 2.0, "name": "a"})
    >>> class Count:
    ...     def __init__(self, n): self.n = n
    ...     def __eq__(self, other): return self.n == other.n
    >>> hetgrad.register_backprop(Count, zero=lambda c: Count(0.0), one=lambda c: Count(1.0),
    ...                           add=lambda a, b: Count(a.n + b.n + 1.0))  # wrong: + 1
    >>> hetgrad.check_backprop_laws(Count(2.0), Count(5.0))
    Traceback (most recent call last):
    ...
    AssertionError: check_backprop_laws: add(x, zero(y)) == x fails for x = example 0, ...
    """
    if not examples:
        raise TypeError("check_backprop_laws needs at least one example value")
    for i, x in enumerate(examples):
        try:
            flatten(x)
        except tree.UnsupportedLeafError as e:
            where = e.path(f"example {i}")
            raise TypeError(f"check_backprop_laws: at {where}: {e.reason}") from None
    c = _Checker(examples, eq, rtol, atol)
    c.run()


class _Checker:
    def __init__(
        self, examples: Sequence[Any], eq: Callable[[Any, Any], bool] | None,
        rtol: float, atol: float,
    ) -> None:  # fmt: skip
        self.examples = list(examples)
        self.user_eq = eq
        self.rtol = rtol
        self.atol = atol

    # -- comparing ---------------------------------------------------------------------

    def equal(self, a: Any, b: Any) -> bool:
        la, ta = flatten(a)
        lb, tb = flatten(b)
        if not ta.same_structure(tb) or not self._same_values(_statics(ta), _statics(tb)):
            return False
        return all(self._leaf_equal(x, y) for x, y in zip(la, lb))

    def _leaf_equal(self, x: Any, y: Any) -> bool:
        if instance_for(type(x)) is not None or instance_for(type(y)) is not None:
            if type(x) is not type(y):
                return False
            if self.user_eq is not None:
                return bool(self.user_eq(x, y))
            if type(x).__eq__ is not object.__eq__:
                try:
                    if bool(np.all(x == y)):
                        return True
                except Exception:  # noqa: BLE001  (fall back to the attributes)
                    pass
            # The attributes, up to rounding (an exact __eq__ fails on 0.1 + 0.2 + 0.3),
            # and the number itself for a subclass of float or ndarray.
            state = _state(x)
            if isinstance(x, _NUMBERS):
                return self._numbers_equal(x, y) and self._same_values(state, _state(y))
            return bool(state) and self._same_values(state, _state(y))
        return self._numbers_equal(x, y)

    def _numbers_equal(self, x: Any, y: Any) -> bool:
        if np.shape(x) != np.shape(y):
            return False
        return bool(np.allclose(x, y, rtol=self.rtol, atol=self.atol, equal_nan=True))

    def _same_values(self, x: Any, y: Any) -> bool:
        """Compare plain values: containers recursively, numbers with the tolerance."""
        if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
            return (
                type(x) is type(y)
                and len(x) == len(y)
                and all(self._same_values(a, b) for a, b in zip(x, y))
            )
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(self._same_values(x[k], y[k]) for k in x)
        if instance_for(type(x)) is not None:
            return self._leaf_equal(x, y)
        numeric = (*_NUMBERS, int)
        if isinstance(x, numeric) and isinstance(y, numeric) and not isinstance(x, bool):
            xa, ya = np.asarray(x), np.asarray(y)
            if xa.dtype.kind in "fc" or ya.dtype.kind in "fc":
                return self._numbers_equal(xa, ya)
            return xa.shape == ya.shape and bool(np.all(xa == ya))
        try:
            return bool(np.all(x == y))
        except Exception:  # noqa: BLE001
            return x is y

    # -- reporting ---------------------------------------------------------------------

    def fail(self, law: str, who: str, got: Any, expected: Any = None) -> None:
        msg = f"check_backprop_laws: {law} fails for {who}: got {_show(got)}"
        if expected is not None:
            msg += f", expected {_show(expected)}"
        raise AssertionError(msg)

    def expect(self, law: str, who: str, got: Any, expected: Any) -> None:
        if not self.equal(got, expected):
            self.fail(law, who, got, expected)

    def same_shape(self, law: str, who: str, got: Any, like: Any) -> None:
        lg, tg = flatten(got)
        lx, tx = flatten(like)
        ok = tg.same_structure(tx) and all(
            _same_layout(a, b) if instance_for(type(b)) is not None
            else np.shape(a) == np.shape(b)
            for a, b in zip(lg, lx)
        )
        if not ok:
            self.fail(law, who, got, f"a value shaped like {_repr.repr(like)}")

    def call(self, law: str, who: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn``, failing the law if it raises or changes one of its arguments."""
        before = [copy.deepcopy(a) for a in args]
        try:
            out = fn(*args)
        except Exception as e:  # noqa: BLE001
            raise AssertionError(
                f"check_backprop_laws: {law} fails for {who}: {type(e).__name__}: {e}"
            ) from e
        for k, (a, b) in enumerate(zip(args, before)):
            if not self.equal(a, b):
                self.fail(f"{law} (arguments unchanged)", f"{who}; argument {k} changed to", a, b)
        return out

    # -- the laws ----------------------------------------------------------------------

    def run(self) -> None:
        xs = self.examples
        n = len(xs)
        names = [f"example {i}" for i in range(n)]
        zeros = []
        for i, x in enumerate(xs):
            w = f"x = {names[i]}"
            z = self.call("zero(x)", w, zero, x)
            self.same_shape("zero(x) has x's structure", w, z, x)
            o = self.call("one(x)", w, one, x)
            self.same_shape("one(x) has x's structure", w, o, x)
            self.expect("zero(zero(x)) == zero(x)", w, self.call("zero(x)", w, zero, z), z)
            zeros.append(z)
        for i, x in enumerate(xs):
            for j, y in enumerate(xs):
                w = f"x = {names[i]}, y = {names[j]}"
                s = self.call("add(x, y)", w, add, x, y)
                self.same_shape("add(x, y) has x's structure", w, s, x)
                self.expect("add(x, zero(y)) == x", w, self.call("add", w, add, x, zeros[j]), x)
                self.expect("add(zero(y), x) == x", w, self.call("add", w, add, zeros[j], x), x)
                if i < j:
                    self.expect("add(x, y) == add(y, x)", w, s, self.call("add", w, add, y, x))
        for i in range(n):
            for j in range(n):
                for k in range(n):
                    if len({i, j, k}) < min(n, 3):
                        continue
                    x, y, z = xs[i], xs[j], xs[k]
                    w = f"x, y, z = examples {i}, {j}, {k}"
                    left = add(add(x, y), z)
                    right = add(x, add(y, z))
                    self.expect("add(add(x, y), z) == add(x, add(y, z))", w, left, right)
        self.check_sum()
        self.check_runners()

    def check_sum(self) -> None:
        """``add(x, x) != x`` for every registered leaf ``x`` that is not zero.

        The laws above also hold for an ``add`` that keeps one of its arguments (an
        elementwise ``max`` on non-negative values); this rules it out.  The protocol has no
        scaling, so ``add(x, x) == 2 x`` cannot be checked for an opaque type, but in a
        vector space ``x + x == x`` only for ``x == 0``.  Floats and arrays outside
        registered types are added by hetgrad itself, with ``+``.
        """
        for i, x in enumerate(self.examples):
            leaves, td = flatten(x)
            for path, v in zip(tree.leaf_paths(td, f"example {i}"), leaves):
                if instance_for(type(v)) is None or self.equal(v, zero(v)):
                    continue
                s = add(v, v)
                if self.equal(s, v):
                    raise AssertionError(
                        f"check_backprop_laws: add(x, x) != x for x != zero(x) fails for "
                        f"x = {path}: add(x, x) returned {_show(s)}, equal to x, which is "
                        "not zero; the gradient of a value used twice is add of the "
                        "gradients of its uses, and must be their sum (2x here), so an add "
                        "that keeps one of them (max, min, either argument) gives wrong "
                        "gradients"
                    )

    def check_runners(self) -> None:
        xs = self.examples
        n = len(xs)
        for i, x in enumerate(xs):
            y = xs[(i + 1) % n]
            z = xs[(i + 2) % n]
            w = f"x = example {i}, cotangent example {(i + 1) % n}"
            _, pb = self.call("backprop_with(identity)", w, backprop_with, lambda v: v, x)
            self.expect("the pullback of the identity returns its cotangent", w,
                        self.call("pullback", w, pb, y), y)  # fmt: skip
            w = f"x = example {i}, cotangents examples {(i + 1) % n} and {(i + 2) % n}"
            _, pb = backprop_with(lambda v: (v, v), x)
            self.expect("a value used twice gets add of its cotangents", w,
                        self.call("pullback", w, pb, (y, z)), add(y, z))  # fmt: skip
            w = f"x = example {i}"
            _, pb = backprop_with(lambda v, u: u, x, 1.0)
            self.expect("an unused input gets zero(x)", w, pb(1.0)[0], zero(x))
            if _real_scalar(x):
                self.expect("grad_bp(lambda v: v, x) == one(x)", w,
                            grad_bp(lambda v: v, x), one(x))  # fmt: skip


def _show(x: Any) -> str:
    """A short repr; objects without a repr of their own show their attributes."""
    if type(x).__repr__ is object.__repr__ and not isinstance(x, str):
        return f"{type(x).__name__}({_repr.repr(_state(x))})"
    return _repr.repr(x)


def _real_scalar(x: Any) -> bool:
    """A value grad_bp seeds; not a registered subclass of float, which is opaque."""
    if instance_for(type(x)) is not None:
        return False
    return isinstance(x, (float, np.floating)) or (
        type(x) is np.ndarray and x.shape == () and x.dtype.kind == "f"
    )


def _statics(td: TreeDef) -> list[Any]:
    out: list[Any] = []
    for c in td.children:
        if type(c) is Static:
            out.append(c.value)
        elif type(c) is TreeDef:
            out.extend(_statics(c))
    return out


def _same_layout(a: Any, b: Any) -> bool:
    """``a`` is of ``b``'s registered type, with attributes of the same shapes (a zero of
    one coefficient for a polynomial of three would broadcast through add unnoticed)."""
    if type(a) is not type(b) or (isinstance(b, _NUMBERS) and np.shape(a) != np.shape(b)):
        return False
    sa, sb = _state(a), _state(b)
    return sa.keys() == sb.keys() and all(
        np.shape(sa[k]) == np.shape(sb[k]) for k in sa if isinstance(sa[k], _NUMBERS)
    )


def _state(x: Any) -> dict[str, Any]:
    """An object's attributes, from ``__dict__`` and ``__slots__``."""
    state = dict(getattr(x, "__dict__", {}))
    for cls in type(x).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in state and hasattr(x, name) and name not in ("__dict__", "__weakref__"):
                state[name] = getattr(x, name)
    return state
