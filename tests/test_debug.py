"""debug_nans names the first operation whose value or gradient is not finite."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hetgrad


def test_forward_nan_names_operation_and_line() -> None:
    def f(x: hetgrad.BVar) -> object:
        y = np.log(x)  # log of a negative number: nan
        return np.sum(y)

    with np.errstate(all="ignore"), hetgrad.debug_nans():
        with pytest.raises(FloatingPointError) as e:
            hetgrad.grad_bp(f, np.array([1.0, -1.0]))
    msg = str(e.value)
    assert "log" in msg and "test_debug.py" in msg and "in f" in msg


def test_outputs_the_rules_never_read_are_still_checked() -> None:
    # multiply's node keeps no output normally; under debug_nans it is inspected anyway.
    with np.errstate(all="ignore"), hetgrad.debug_nans():
        with pytest.raises(FloatingPointError, match="multiply produced"):
            hetgrad.grad_bp(lambda x: np.sum(x * np.array([np.inf, 1.0])), np.ones(2))


def test_gradient_inf_names_operation() -> None:
    with np.errstate(all="ignore"), hetgrad.debug_nans():
        with pytest.raises(FloatingPointError, match="the gradient of sqrt"):
            hetgrad.grad_bp(lambda x: np.sum(np.sqrt(x)), np.array([4.0, 0.0]))


def test_custom_op_gradient_checked() -> None:
    bad = hetgrad.op1(lambda x: (x * 2.0, lambda g: g * np.nan))
    with hetgrad.debug_nans():
        with pytest.raises(FloatingPointError, match="<lambda>"):
            hetgrad.grad_bp(lambda x: bad(x), 1.0)


def test_clean_code_unaffected_and_mode_is_scoped() -> None:
    with hetgrad.debug_nans():
        assert hetgrad.grad_bp(lambda x: x * x, 3.0) == 6.0
    # outside the block NaNs flow as NumPy's do
    with np.errstate(all="ignore"):
        g = hetgrad.grad_bp(lambda x: np.sum(np.sqrt(x)), np.array([4.0, 0.0]))
    assert np.isinf(g[1])


def test_code_in_a_folder_named_like_numpy_is_located(tmp_path: object) -> None:
    import pathlib

    folder = pathlib.Path(str(tmp_path)) / "numpy_experiments"
    folder.mkdir()
    source = "import numpy as np\ndef loss(x):\n    return np.sum(np.log(x))\n"
    (folder / "train.py").write_text(source)
    namespace: dict[str, object] = {}
    exec(compile(source, str(folder / "train.py"), "exec"), namespace)
    with np.errstate(all="ignore"), hetgrad.debug_nans():
        with pytest.raises(FloatingPointError, match=r"train\.py:3 in loss"):
            hetgrad.grad_bp(namespace["loss"], np.array([1.0, -1.0]))


def test_entered_inside_the_differentiated_function_it_warns() -> None:
    def f(x: hetgrad.BVar) -> object:
        with hetgrad.debug_nans():  # too late for this runner's tape
            return np.sum(x * x)

    with pytest.warns(RuntimeWarning, match="around the runner call"):
        assert hetgrad.grad_bp(f, np.array([1.0, 2.0])).tolist() == [2.0, 4.0]
    with hetgrad.debug_nans():  # around the runner: checked, and no warning
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert hetgrad.grad_bp(f, np.array([1.0, 2.0])).tolist() == [2.0, 4.0]
