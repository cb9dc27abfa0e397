"""Debugging aids: find the first operation that produces a NaN or an infinity.

>>> import numpy as np, hetgrad
>>> with hetgrad.debug_nans(), np.errstate(divide="ignore"):
...     hetgrad.grad_bp(lambda x: np.sum(np.sqrt(x)), np.array([4.0, 0.0]))
Traceback (most recent call last):
...
FloatingPointError: debug_nans: the gradient of sqrt is not finite (inf or nan); ...
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["debug_nans"]

# Each thread's count of open blocks, in a one-item list the thread-local state holds: a
# block closed from another thread (a generator finished elsewhere) still closes its own
# thread's count, and a new thread starts with none.
_state = threading.local()
_count_lock = threading.Lock()
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))


# Open debug_nans blocks in all threads: while there are none (nearly always), the check
# below is one global read instead of a thread-local lookup.
_open_blocks = 0


def debugging() -> bool:
    """True inside ``debug_nans()`` in this thread (checked once per runner call)."""
    if _open_blocks == 0:
        return False
    depth = getattr(_state, "depth", None)
    return depth is not None and depth[0] > 0


@contextlib.contextmanager
def debug_nans() -> Iterator[None]:
    """Raise ``FloatingPointError`` at the first NaN or infinity, forward or backward.

    Inside the block every recorded operation checks its value, and its gradient rules
    check what they return; the error names the operation and the line of your code that
    called it.  Runs slower: use it to find a problem, not to train.  The block goes
    around the runner call (``grad_bp``, ``backprop``, ...): entered inside the function
    being differentiated it cannot check that runner's operations, and warns so.

    >>> import numpy as np, hetgrad
    >>> with hetgrad.debug_nans(), np.errstate(invalid="ignore"):
    ...     hetgrad.grad_bp(lambda x: np.log(x) * 2.0, -1.0)
    Traceback (most recent call last):
    ...
    FloatingPointError: debug_nans: log produced a value that is not finite ...
    """
    global _open_blocks
    _warn_if_recording()
    depth = getattr(_state, "depth", None)
    if depth is None:
        depth = _state.depth = [0]
    with _count_lock:
        _open_blocks += 1
        depth[0] += 1
    try:
        yield
    finally:
        with _count_lock:
            _open_blocks -= 1
            depth[0] -= 1


def _warn_if_recording() -> None:
    """Warn if a runner of this thread records without checks (its block began inside)."""
    from .tape import active_tapes  # (tape imports this module)

    if any(type(t.nodes) is list for t in active_tapes()):
        warnings.warn(
            "debug_nans() was entered inside a function being differentiated: the "
            "operations of that runner are not checked; put the block around the runner "
            "call (with hetgrad.debug_nans(): hetgrad.grad_bp(f, x))",
            RuntimeWarning,
            stacklevel=4,
        )


def _call_site() -> str:
    """The first frame outside hetgrad (and NumPy), as ``file:line in function``."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith((_PACKAGE_DIR + os.sep, _NUMPY_DIR + os.sep)):
            return f"{name}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "an unknown place"


def _finite(x: Any) -> bool:
    while hasattr(x, "_tape"):  # a BVar of an outer runner: check its primal
        x = x.value
    if x is None:
        return True
    try:
        return bool(np.all(np.isfinite(x)))
    except TypeError:
        return True  # a registered type hetgrad cannot inspect


class CheckedNodes(list[Any]):
    """A tape's node list that checks every value recorded and every gradient rule.

    It stores checked copies of the nodes; ``origins`` holds the nodes as given, in the
    same order, for the engine to find where one went (``tape.index_of``)."""

    def __init__(self) -> None:
        super().__init__()
        self.origins: list[Any] = []
        self._guard = threading.Lock()  # (the two lists stay in step across threads)

    def append(self, node: Any) -> None:
        checked = node if node is None else self._checked(node)
        with self._guard:
            super().append(checked)
            self.origins.append(node)

    def _checked(self, node: Any) -> Any:
        rule, parents, args, y, kw, name = node
        where = _call_site()
        value = kw if isinstance(rule, str) and rule == "project" else y
        if not _finite(value):
            raise FloatingPointError(
                f"debug_nans: {name} produced a value that is not finite (inf or nan), "
                f"called at {where}"
            )
        if type(rule) is int:
            from .tape import RULE_TABLE  # (tape imports this module)

            rule = RULE_TABLE[rule]
        if type(rule) is tuple:
            rule = tuple(_checked_rule(r, name, where) for r in rule)
        elif rule == "whole":
            args = _checked_pullback(args, name, where)
        return (rule, parents, args, y, kw, name)


def _gradient_error(name: str, where: str) -> FloatingPointError:
    return FloatingPointError(
        f"debug_nans: the gradient of {name} is not finite (inf or nan); {name} was called "
        f"at {where}"
    )


def _checked_rule(rule: Callable[..., Any], name: str, where: str) -> Callable[..., Any]:
    def checked(*args: Any, **kwargs: Any) -> Any:
        out = rule(*args, **kwargs)
        if not _finite(out):
            raise _gradient_error(name, where)
        return out

    return checked


def _checked_pullback(pullback: Callable[..., Any], name: str, where: str) -> Callable[..., Any]:
    def checked(g: Any) -> Any:
        grads = pullback(g)
        if not all(_finite(x) for x in grads):
            raise _gradient_error(name, where)
        return grads

    return checked
