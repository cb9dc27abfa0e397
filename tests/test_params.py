"""Parameter arithmetic with hetgrad.Params: net - lr * grad."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import hetgrad


@dataclasses.dataclass(frozen=True)
class Net(hetgrad.Params):
    w: np.ndarray
    b: float
    name: str = dataclasses.field(default="net", metadata={"static": True})


def test_descent_step_as_written() -> None:
    net = Net(np.array([1.0, 2.0]), 0.5)
    x = np.array([3.0, -1.0])
    loss = lambda n: (np.sum(n.w * x) + n.b - 2.0) ** 2
    g = hetgrad.grad_bp(loss, net)
    assert type(g) is Net
    new = net - 0.02 * g
    assert type(new) is Net and new.name == "net"
    np.testing.assert_allclose(new.w, net.w - 0.02 * g.w)
    assert new.b == pytest.approx(net.b - 0.02 * g.b)
    assert loss(new) < loss(net)


def test_all_operators() -> None:
    a = Net(np.array([2.0]), 4.0)
    b = Net(np.array([1.0]), 2.0)
    assert (a + b).b == 6.0 and (a - b).b == 2.0 and (a * b).b == 8.0 and (a / b).b == 2.0
    assert (a * 2).b == 8.0 and (2 * a).b == 8.0 and (a / 2).b == 2.0 and (8 / a).b == 2.0
    assert (1 - a).b == -3.0 and (a + 1).b == 5.0 and (-a).b == -4.0
    np.testing.assert_array_equal((a - b).w, [1.0])


def test_mismatched_types_are_rejected() -> None:
    @dataclasses.dataclass
    class Other(hetgrad.Params):
        b: float

    with pytest.raises(TypeError):
        Net(np.ones(1), 1.0) + Other(1.0)  # type: ignore[operator]
    with pytest.raises(TypeError):
        Net(np.ones(1), 1.0) + [1.0]  # type: ignore[operator]
