# ruff: noqa: E501  (the table keeps one row per line)
"""Bad input to every public function (issue 8): the table below is the list of what was
tried.  Each row is (the call, and either the error type and a phrase of its message, or
``OK`` and a check of the documented result).  No row may end in an AttributeError,
IndexError or KeyError from hetgrad's internals; lookups of a missing focus in a lens keep
Python's lookup error type but name the optic.

Documented results (not errors):

* NaN data propagates (``grad_bp`` of ``x * x`` at NaN is NaN; ``apply_updates`` with a NaN
  update gives NaN); use ``hetgrad.debug_nans()`` to find where it starts.
* Empty arrays and empty structures differentiate to empty gradients of the same type;
  ``jacobian`` of an empty output is an array of shape ``(0,) + input shape``.
* ``grad_bp(f)`` with no arguments returns ``()``; ``check_grads`` with no float leaf in
  its arguments checks nothing and passes (``test_check.py``); ``lens.set`` on a missing
  dict key adds it (as ``dict`` assignment does); ``sgd`` keeps no per-leaf state, so its
  ``update`` accepts any gradient structure.
* Errors NumPy itself raises for the same call on plain arrays (reduction of an empty
  array, an axis out of range, broadcasting, reshape) come through unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import hetgrad
import hetgrad.numpy as hnp
from hetgrad import checkpoint, datasets, lens, nn, optim

OK = None
TMP = tempfile.mkdtemp(prefix="hetgrad-bad-input-")


@dataclasses.dataclass
class C:
    a: float
    b: list[Any]


def _bv(f: Callable[[Any], Any], x: Any) -> Any:
    """Run ``f`` on the BVar of ``x`` inside a runner."""
    return hetgrad.grad_bp(lambda v: (f(v), 0.0)[1] + 0.0, x)


def _file(name: str, text: str) -> str:
    path = os.path.join(TMP, name)
    with open(path, "w") as fh:
        fh.write(text)
    return path


def _nan_ckpt() -> str:
    path = os.path.join(TMP, "nan.npz")
    checkpoint.save(path, [float("nan")])
    return path


sgd, mom, adam = optim.sgd(0.1), optim.momentum(0.1, 0.9), optim.adam(0.1)
identity_op = hetgrad.op1(lambda x: (x, lambda g: g))

# (name, call, error type or OK, message phrase or result check)
TABLE: list[tuple[str, Callable[[], Any], Any, Any]] = [
    # -- runners ----------------------------------------------------------------------
    ("grad_bp: not a function", lambda: hetgrad.grad_bp(3.0, 1.0), TypeError, "differentiates a function"),
    ("grad_bp: str argument", lambda: hetgrad.grad_bp(lambda x: x, "a"), TypeError, "nothing to differentiate (no float leaf); close over it"),
    ("grad: int argument", lambda: hetgrad.grad(lambda x, n: x * n)(3, 2.0), TypeError, "leave it out of argnums"),
    ("descend: int parameters", lambda: hetgrad.optim.descend(lambda p: 1.0, 3, 0.1), TypeError, "descend: args[0] (int) has nothing to differentiate (no float leaf); close"),
    ("grad_bp: int argument", lambda: hetgrad.grad_bp(lambda x: x * 2, 3), TypeError, "no float leaf"),
    ("grad_bp: integer array", lambda: hetgrad.grad_bp(np.sum, np.arange(3)), TypeError, "no float leaf"),
    ("grad_bp: set", lambda: hetgrad.grad_bp(lambda x: 0.0, {1.0}), TypeError, "at args[0]: hetgrad does not know"),
    ("grad_bp: object array", lambda: hetgrad.grad_bp(lambda x: 0.0, np.array([1, "a"], dtype=object)), TypeError, "object arrays"),
    ("grad_bp: complex", lambda: hetgrad.grad_bp(lambda x: 0.0, 1j), TypeError, "complex values are not supported"),
    ("grad_bp: returns None", lambda: hetgrad.grad_bp(lambda x: None, 1.0), TypeError, "returned a value of type NoneType"),
    ("grad_bp: returns complex", lambda: hetgrad.grad_bp(lambda x: 1j, 1.0), TypeError, "returned a value of type complex"),
    ("grad_bp: returns shape (1,)", lambda: hetgrad.grad_bp(lambda x: x, np.ones(1)), TypeError, "shape (1,)"),
    ("grad_bp: returns empty array", lambda: hetgrad.grad_bp(lambda x: x, np.zeros(0)), TypeError, "shape (0,)"),
    ("grad_bp: NaN input", lambda: hetgrad.grad_bp(lambda x: x * x, float("nan")), OK, np.isnan),
    ("grad_bp: empty array", lambda: hetgrad.grad_bp(np.sum, np.zeros(0)), OK, lambda g: g.shape == (0,)),
    ("grad_bp: empty dict", lambda: hetgrad.grad_bp(lambda x: 1.0, {}), OK, lambda g: g == {}),
    ("grad_bp: empty list", lambda: hetgrad.grad_bp(lambda x: 0.0, []), OK, lambda g: g == []),
    ("grad_bp: no arguments", lambda: hetgrad.grad_bp(lambda: 1.0), OK, lambda g: g == ()),
    ("grad_bp: f raises", lambda: hetgrad.grad_bp(lambda x: 1 / 0, 1.0), ZeroDivisionError, "division by zero"),
    ("backprop: not a function", lambda: hetgrad.backprop(None, 1.0), TypeError, "differentiates a function"),
    ("backprop_with: cotangent str", lambda: hetgrad.backprop_with(lambda x: x * 2, 1.0)[1]("a"), TypeError, "does not match the output"),
    ("backprop_with: cotangent None", lambda: hetgrad.backprop_with(lambda x: x * 2, 1.0)[1](None), TypeError, "does not match the output"),
    ("backprop_with: cotangent int", lambda: hetgrad.backprop_with(lambda x: x * 2, 1.0)[1](1), TypeError, "does not match the output"),
    ("backprop_with: cotangent shape", lambda: hetgrad.backprop_with(lambda x: x * 2, np.ones(2))[1](np.ones(3)), ValueError, "cotangent of shape (3,)"),
    ("backprop_with: list for tuple", lambda: hetgrad.backprop_with(lambda x: (x, x), 1.0)[1]([1.0, 1.0]), TypeError, "TreeDef(list"),
    ("backprop_with: NaN cotangent", lambda: hetgrad.backprop_with(lambda x: x * 2, 1.0)[1](float("nan")), OK, np.isnan),
    ("backprop_with: object output", lambda: hetgrad.backprop_with(lambda x: object(), 1.0), TypeError, "the output at out"),
    ("grad: argnums str", lambda: hetgrad.grad(lambda x: x, argnums="a")(1.0), TypeError, "argnums must be an int"),
    ("grad: argnums float", lambda: hetgrad.grad(lambda x: x, argnums=0.0)(1.0), TypeError, "argnums must be an int"),
    ("grad: argnums bool", lambda: hetgrad.grad(lambda x: x, argnums=True)(1.0), TypeError, "argnums must be an int"),
    ("grad: argnums out of range", lambda: hetgrad.grad(lambda x: x, argnums=5)(1.0), ValueError, "out of range"),
    ("grad: argnums duplicated", lambda: hetgrad.grad(lambda x: x * x, argnums=(0, 0))(1.0), ValueError, "names an argument twice"),
    ("grad: no arguments", lambda: hetgrad.grad(lambda: 1.0)(), ValueError, "out of range for 0"),
    ("grad: not a function", lambda: hetgrad.grad(None), TypeError, "differentiates a function"),
    ("value_and_grad: has_aux single", lambda: hetgrad.value_and_grad(lambda x: x, has_aux=True)(1.0), TypeError, "return a pair"),
    ("value_and_grad: not a function", lambda: hetgrad.value_and_grad(3), TypeError, "differentiates a function"),
    # -- higher order -----------------------------------------------------------------
    ("jacobian: not a function", lambda: hetgrad.jacobian(5), TypeError, "differentiates a function"),
    ("jacobian: str argument", lambda: hetgrad.jacobian(lambda x: x)("s"), TypeError, "nothing to differentiate"),
    ("jacobian: empty output", lambda: hetgrad.jacobian(lambda x: x[:0])(np.ones(2)), OK, lambda j: j.shape == (0, 2)),
    ("jacobian: empty input", lambda: hetgrad.jacobian(np.sum)(np.ones(0)), OK, lambda j: j.shape == (0,)),
    ("hessian: vector output", lambda: hetgrad.hessian(lambda x: x)(np.ones(2)), TypeError, "shape (2,)"),
    ("hessian: not a function", lambda: hetgrad.hessian("f"), TypeError, "differentiates a function"),
    ("hvp: counts differ", lambda: hetgrad.hvp(lambda x: x * x, (1.0,), (1.0, 2.0)), ValueError, "one entry per argument"),
    ("hvp: not tuples", lambda: hetgrad.hvp(lambda x: x * x, 1.0, 1.0), TypeError, "must be a tuple"),
    ("hvp: tangent shape", lambda: hetgrad.hvp(lambda x: np.sum(x * x), (np.ones(2),), (np.ones(3),)), ValueError, "has shape (3,)"),
    ("hvp: tangent keys", lambda: hetgrad.hvp(lambda x: x["a"] ** 2, ({"a": 1.0},), ({"b": 1.0},)), ValueError, "different structure"),
    ("jvp: not tuples", lambda: hetgrad.jvp(np.sin, 1.0, 1.0), TypeError, "must be a tuple"),
    ("jvp: tangent shape", lambda: hetgrad.jvp(np.sin, (np.ones(2),), (np.ones(3),)), ValueError, "has shape (3,)"),
    ("jvp: tangent keys", lambda: hetgrad.jvp(lambda x: x["a"] ** 2, ({"a": 1.0},), ({"b": 1.0},)), ValueError, "different structure"),
    # -- protocol ---------------------------------------------------------------------
    ("zero: object", lambda: hetgrad.zero(object()), TypeError, "hetgrad.zero: at x"),
    ("zero: NaN", lambda: hetgrad.zero(float("nan")), OK, lambda z: z == 0.0),
    ("one: object", lambda: hetgrad.one(object()), TypeError, "hetgrad.one: at x"),
    ("add: dict and list", lambda: hetgrad.add({"a": 1.0}, [1.0]), ValueError, "cannot add a dict and a list"),
    ("add: shapes", lambda: hetgrad.add(np.ones(2), np.ones(3)), ValueError, "shapes (2,) and (3,)"),
    ("add: float and None", lambda: hetgrad.add(1.0, None), ValueError, "cannot add float and NoneType"),
    ("add: tuples of two lengths", lambda: hetgrad.add((1.0,), (1.0, 2.0)), ValueError, "different fields"),
    ("register_backprop: not a class", lambda: hetgrad.register_backprop(3, zero=1, add=1, one=1), TypeError, "needs a class"),
    ("register_backprop: not callable", lambda: hetgrad.register_backprop(C, zero=1, add=1, one=1), TypeError, "must be callable"),
    # -- custom operations ------------------------------------------------------------
    ("op1: not a function", lambda: hetgrad.op1(3), TypeError, "lift a function"),
    ("opN: no arguments", lambda: hetgrad.opN(lambda *x: (1.0, lambda g: ()))(), OK, lambda y: y == 1.0),
    ("op1: returns a value only", lambda: hetgrad.grad_bp(hetgrad.op1(lambda x: x), 1.0), TypeError, "must return a pair"),
    ("op1: plain call, value only", lambda: hetgrad.op1(lambda x: x)(1.0), TypeError, "must return a pair"),
    ("op1: 1-tuple", lambda: hetgrad.grad_bp(hetgrad.op1(lambda x: (x,)), 1.0), TypeError, "got a tuple of 1"),
    ("op1: pullback not callable", lambda: hetgrad.grad_bp(hetgrad.op1(lambda x: (x, 3)), 1.0), TypeError, "not callable"),
    ("op1: object value", lambda: hetgrad.grad_bp(hetgrad.op1(lambda x: (object(), lambda g: g)), 1.0), TypeError, "its value at value"),
    ("op1: wrong arity", lambda: identity_op(1.0, 2.0), TypeError, "takes 1 argument"),
    ("primitive: not a function", lambda: hetgrad.primitive(3), TypeError, "decorates a function"),
    ("defvjp: rule not callable", lambda: hetgrad.primitive(lambda x: x).defvjp(3), TypeError, "must be a function"),
    ("primitive: no rule", lambda: hetgrad.grad_bp(hetgrad.primitive(lambda x: x * 1.0), 1.0), TypeError, "has no gradient rule"),
    ("primitive: object value", lambda: hetgrad.grad_bp(hetgrad.primitive(lambda x: object()).defvjp(lambda g, a, x: g), 1.0), TypeError, "cannot record"),
    # -- structures -------------------------------------------------------------------
    ("tree_map: object leaf", lambda: hetgrad.tree_map(float, [object()]), TypeError, "at value[0]"),
    ("tree_map: lengths differ", lambda: hetgrad.tree_map(lambda a, b: a, [1.0], [1.0, 2.0]), ValueError, "different structure"),
    ("tree_map: keys differ", lambda: hetgrad.tree_map(lambda a, b: a, {"a": 1.0}, {"b": 1.0}), ValueError, "['b']=leaf"),
    # -- check_grads ------------------------------------------------------------------
    ("check_grads: not a function", lambda: hetgrad.check_grads(3, 1.0), TypeError, "checks a function"),
    ("check_grads: None output", lambda: hetgrad.check_grads(lambda x: None, 1.0), TypeError, "no float leaf to check"),
    ("check_grads: str output", lambda: hetgrad.check_grads(lambda x: "a", 1.0), TypeError, "no float leaf to check"),
    ("check_grads: NaN point", lambda: hetgrad.check_grads(lambda x: x * x, float("nan")), AssertionError, "reverse mode gives nan"),
    ("check_grads: order 0", lambda: hetgrad.check_grads(lambda x: x, 1.0, order=0), ValueError, "order must be an int >= 1"),
    ("check_grads: order str", lambda: hetgrad.check_grads(lambda x: x, 1.0, order="a"), ValueError, "order must be"),
    ("check_grads: eps 0", lambda: hetgrad.check_grads(lambda x: x, 1.0, eps=0.0), ValueError, "eps must be a finite positive"),
    ("check_grads: rtol < 0", lambda: hetgrad.check_grads(lambda x: x, 1.0, rtol=-1.0), ValueError, "rtol must be"),
    ("check_grads: rng str", lambda: hetgrad.check_grads(lambda x: x, 1.0, rng="a"), TypeError, "rng must be"),
    ("check_grads: empty array", lambda: hetgrad.check_grads(np.sum, np.zeros(0)), TypeError, "every float leaf of the point is empty"),
    # -- lenses -----------------------------------------------------------------------
    ("view: not an optic", lambda: lens.view({"a": 1.0}, "a"), TypeError, "expected an optic"),
    ("set: not an optic", lambda: lens.set({"a": 1.0}, None, 1.0), TypeError, "expected an optic"),
    ("over: not an optic", lambda: lens.over({"a": 1.0}, 3, abs), TypeError, "expected an optic"),
    ("preview: not an optic", lambda: lens.preview(1.0, None), TypeError, "expected an optic"),
    ("to_list_of: not an optic", lambda: lens.to_list_of([1.0], []), TypeError, "expected an optic"),
    ("view: missing key", lambda: lens.view({"a": 1.0}, lens.item("b")), KeyError, "item('b')"),
    ("view: missing attribute", lambda: lens.view(C(1.0, []), lens.attr("z")), AttributeError, "attr('z')"),
    ("view: index out of range", lambda: lens.view([1.0], lens.item(3)), IndexError, "item(3)"),
    ("view: prism", lambda: lens.view(1.0, lens.just), TypeError, "view needs a lens"),
    ("set: missing attribute", lambda: lens.set(C(1.0, []), lens.attr("z"), 2.0), AttributeError, "attr('z')"),
    ("set: missing key", lambda: lens.set({"a": 1.0}, lens.item("b"), 2.0), OK, lambda d: d == {"a": 1.0, "b": 2.0}),
    ("each: on a float", lambda: lens.to_list_of(1.0, lens.each), TypeError, "each traverses"),
    ("each: on an empty list", lambda: lens.to_list_of([], lens.each), OK, lambda r: r == []),
    ("attr: int name", lambda: lens.attr(3), TypeError, "use item for keys"),
    ("instance: not a class", lambda: lens.instance(3), TypeError, "takes a class"),
    ("where: arithmetic", lambda: lens.where(lambda s: s.a + 1), TypeError, "attribute and item reads only"),
    ("compose: nothing", lambda: lens.compose(), TypeError, "at least one optic"),
    ("view_var: not an optic", lambda: _bv(lambda v: hetgrad.view_var(v, "a"), {"a": 1.0}), TypeError, "expected an optic"),
    ("view_var: missing key", lambda: _bv(lambda v: hetgrad.view_var(v, lens.item("b")), {"a": 1.0}), KeyError, "item('b')"),
    ("view_var: index out of range", lambda: _bv(lambda v: hetgrad.view_var(v, lens.item(5)), np.ones(2)), IndexError, "item(5)"),
    ("set_var: not an optic", lambda: _bv(lambda v: hetgrad.set_var(v, 1, 1.0), [1.0]), TypeError, "expected an optic"),
    ("preview_var_or_raise: no match", lambda: _bv(lambda v: hetgrad.preview_var_or_raise(v, lens.instance(str)), 1.0), LookupError, "does not match"),
    ("to_list_of_var: float", lambda: _bv(lambda v: hetgrad.to_list_of_var(v, lens.each), 1.0), TypeError, "each traverses"),
    ("sequence_var: BVar of a float", lambda: _bv(hetgrad.sequence_var, 1.0), TypeError, "sequence_var takes"),
    ("collect_var: str", lambda: hetgrad.collect_var("abc"), TypeError, "collect_var takes"),
    ("split_bv: BVar of a float", lambda: _bv(hetgrad.split_bv, 1.0), TypeError, "split_bv takes"),
    # -- optimizers -------------------------------------------------------------------
    ("sgd: lr str", lambda: optim.sgd("a"), TypeError, "lr must be a number"),
    ("sgd: state None", lambda: sgd.update([1.0], None), TypeError, "expected the SgdState"),
    ("sgd: object gradient", lambda: sgd.update(object(), sgd.init([1.0])), TypeError, "does not know"),
    ("momentum: mu str", lambda: optim.momentum(0.1, "a"), TypeError, "mu must be"),
    ("momentum: leaf count", lambda: mom.update([1.0, 2.0], mom.init([1.0])), ValueError, "2 differentiable leaves"),
    ("momentum: another state", lambda: mom.update([1.0], sgd.init([1.0])), TypeError, "expected the MomentumState"),
    ("momentum: shape", lambda: mom.update([np.ones(3)], mom.init([np.ones(2)])), ValueError, "grads[0] has shape (3,)"),
    ("adam: state None", lambda: adam.update([1.0], None), TypeError, "expected the AdamState"),
    ("adam: shape", lambda: adam.update([np.ones(3)], adam.init([np.ones(2)])), ValueError, "has shape (3,)"),
    ("adam: b1 str", lambda: optim.adam(0.1, b1="x"), TypeError, "b1 must be a number"),
    ("adam: empty", lambda: adam.update([], adam.init([]))[0], OK, lambda u: u == []),
    ("apply_updates: leaf count", lambda: optim.apply_updates([1.0], [1.0, 2.0]), ValueError, "2 differentiable leaves"),
    ("apply_updates: shape", lambda: optim.apply_updates([np.ones(2)], [np.ones(3)]), ValueError, "params[0] has shape (3,)"),
    ("apply_updates: keys", lambda: optim.apply_updates({"a": 1.0}, {"b": 1.0}), ValueError, "structure"),
    ("apply_updates: NaN", lambda: optim.apply_updates([1.0], [float("nan")]), OK, lambda p: np.isnan(p[0])),
    ("linear_schedule: 0 steps", lambda: optim.linear_schedule(1.0, 0.0, 0), ValueError, "positive int"),
    ("linear_schedule: steps str", lambda: optim.linear_schedule(1.0, 0.0, "3"), ValueError, "positive int"),
    # -- checkpoint -------------------------------------------------------------------
    ("save: object leaf", lambda: checkpoint.save(os.path.join(TMP, "a.npz"), {"w": object()}), TypeError, "at value['w']"),
    ("save: missing folder", lambda: checkpoint.save(os.path.join(TMP, "no", "a.npz"), [1.0]), FileNotFoundError, "a.npz: no such folder"),
    ("save/load: empty structure", lambda: (checkpoint.save(os.path.join(TMP, "e.npz"), {}), checkpoint.load(os.path.join(TMP, "e.npz"), like={}))[1], OK, lambda r: r == {}),
    ("load: missing file", lambda: checkpoint.load(os.path.join(TMP, "zz.npz"), like=[1.0]), FileNotFoundError, "zz.npz"),
    ("load: not a checkpoint", lambda: checkpoint.load(_file("t.npz", "hi"), like=[1.0]), checkpoint.CheckpointError, "not a checkpoint"),
    ("load: a folder", lambda: checkpoint.load(TMP, like=[1.0]), checkpoint.CheckpointError, "unreadable checkpoint"),
    ("load: template differs", lambda: checkpoint.load(_nan_ckpt(), like={"a": 1.0}), checkpoint.CheckpointError, "no leaf a"),
    ("load: NaN round trip", lambda: checkpoint.load(_nan_ckpt(), like=[0.0]), OK, lambda r: np.isnan(r[0])),
    # -- datasets ---------------------------------------------------------------------
    ("load_mnist: missing folder", lambda: datasets.load_mnist(os.path.join(TMP, "nope")), FileNotFoundError, "not found"),
    ("load_mnist: int dtype", lambda: datasets.load_mnist(TMP, dtype=np.int32), ValueError, "float dtype"),
    ("load_mnist: download without url", lambda: datasets.load_mnist(TMP, download=True), datasets.DatasetError, "needs url="),
    ("make_moons: negative", lambda: datasets.make_moons(-1), ValueError, "non-negative"),
    ("make_moons: float n", lambda: datasets.make_moons(2.5), TypeError, "n must be an int"),
    ("make_moons: noise < 0", lambda: datasets.make_moons(4, noise=-1.0), ValueError, "noise must be"),
    ("make_moons: noise NaN", lambda: datasets.make_moons(4, noise=float("nan")), ValueError, "noise must be"),
    ("make_moons: 0 points", lambda: datasets.make_moons(0), OK, lambda r: r[0].shape == (0, 2)),
    # -- nn and lifted NumPy (NumPy's own errors where NumPy would raise) ----------------
    ("sigmoid: NaN", lambda: hetgrad.grad_bp(lambda x: np.sum(nn.sigmoid(x)), np.array([np.nan, 1.0])), OK, lambda g: np.isnan(g[0]) and g[1] > 0),
    ("sigmoid: empty", lambda: hetgrad.grad_bp(lambda x: np.sum(nn.sigmoid(x)), np.zeros(0)), OK, lambda g: g.shape == (0,)),
    ("softmax: empty", lambda: hetgrad.grad_bp(lambda x: np.sum(nn.softmax(x)), np.zeros(0)), OK, lambda r: r.shape == (0,)),
    ("softmax: axis out of range", lambda: hetgrad.grad_bp(lambda x: np.sum(nn.softmax(x, axis=5)), np.zeros(3)), np.exceptions.AxisError, "out of bounds"),
    ("log_softmax: all -inf", lambda: hetgrad.grad_bp(lambda x: nn.log_softmax(x)[0], np.full(2, -np.inf)), OK, lambda g: np.all(np.isfinite(g))),
    ("cross_entropy: shapes", lambda: hetgrad.grad_bp(lambda x: nn.cross_entropy(x, np.ones(4)), np.zeros(3)), ValueError, "broadcast"),
    ("hinge: shapes", lambda: hetgrad.grad_bp(lambda x: nn.hinge(x, np.ones(4)), np.zeros(3)), ValueError, "broadcast"),
    ("mse: str", lambda: nn.mse("a", 1.0), TypeError, "unsupported operand"),
    ("matmul: shapes", lambda: hetgrad.grad_bp(lambda x: np.sum(x @ np.ones((3, 3))), np.ones((2, 2))), ValueError, "mismatch in its core dimension"),
    ("reshape: size", lambda: hetgrad.grad_bp(lambda x: np.sum(hnp.reshape(x, (3,))), np.ones(2)), ValueError, "cannot reshape"),
    ("logsumexp: empty", lambda: hetgrad.backprop(hnp.logsumexp, np.zeros(0)), OK, lambda r: r[0] == -np.inf and r[1].shape == (0,)),
    ("bvar + str", lambda: hetgrad.grad_bp(lambda x: x + "a", 1.0), TypeError, "unsupported operand"),
    ("bvar + complex", lambda: hetgrad.grad_bp(lambda x: x + 1j, 1.0), TypeError, "complex values are not supported"),
    ("bvar * complex array", lambda: hetgrad.grad_bp(lambda x: np.sum(np.abs(x * np.array([1 + 1j, 2j]))), np.ones(2)), TypeError, "multiply gave a complex result"),
    ("complex array * bvar", lambda: hetgrad.grad_bp(lambda x: np.sum(np.abs(np.array([1 + 1j, 2j]) * x)), np.ones(2)), TypeError, "multiply gave a complex result"),
    ("bvar * complex scalar", lambda: hetgrad.grad_bp(lambda x: np.sum(np.abs(x * np.complex128(1j))), np.ones(2)), TypeError, "multiply gave a complex result"),
    ("matmul by complex", lambda: hetgrad.grad_bp(lambda x: np.linalg.norm(np.array([1 + 1j, 2j]) @ np.diag(x)), np.ones(2)), TypeError, "complex values are not supported"),
    ("astype complex", lambda: hetgrad.grad_bp(lambda x: np.sum(np.abs(x.astype(np.complex128))), np.ones(2)), TypeError, "astype(complex128) gave a complex result"),
    ("BVar of a dict * 2", lambda: hetgrad.grad_bp(lambda d: d * 2.0, {"a": 1.0}), TypeError, "unsupported operand"),
    ("Params: shapes", lambda: hetgrad.tree_map(lambda a, b: a + b, {"w": np.ones(2)}, {"w": np.ones(3)}), ValueError, "broadcast"),
]  # fmt: skip


@pytest.mark.parametrize("call, error, check", [r[1:] for r in TABLE], ids=[r[0] for r in TABLE])
def test_bad_input(call: Callable[[], Any], error: Any, check: Any) -> None:
    with np.errstate(all="ignore"):
        if error is OK:
            assert check(call())
            return
        with pytest.raises(error) as info:
            call()
    assert check in str(info.value)
    # Never an internal lookup error, except lens lookups naming their optic.
    lookup = (AttributeError, IndexError, KeyError)
    if isinstance(info.value, lookup) and not isinstance(info.value, np.exceptions.AxisError):
        assert "item(" in str(info.value) or "attr(" in str(info.value)
