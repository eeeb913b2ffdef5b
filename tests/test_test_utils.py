"""The public checks of tritonsym.test_utils: reports, forward/backward checks, and the
numeric gradient check catching a planted wrong backward in both of its modes."""

import numpy as np
import oracles
import pytest
import torch

import tritonsym as ts
from tritonsym import ops
from tritonsym.operators import REGISTRY
from tritonsym.test_utils import (
    assert_almost_equal,
    check_numeric_gradient,
    check_symbolic_backward,
    check_symbolic_forward,
)

S = ts.sym


def test_assert_almost_equal_reports_count_and_worst_elements():
    a = np.zeros((3, 4))
    b = a.copy()
    b[1, 2], b[2, 3] = 1e-3, 5.0
    with pytest.raises(AssertionError) as info:
        assert_almost_equal(a, b, rtol=1e-6, atol=1e-6, names=("got", "want"))
    text = str(info.value)
    assert "differ in 2 of 12 elements" in text and "largest difference 5" in text
    assert text.index("at (2, 3): got=0.0, want=5.0") < text.index("at (1, 2)")  # worst first
    nan = a.copy()
    nan[0, 0] = np.nan
    with pytest.raises(AssertionError, match="differ in 1 of 12"):
        assert_almost_equal(nan, a)  # an unwritten (NaN) element always fails
    assert_almost_equal(nan, nan, equal_nan=True)
    with pytest.raises(AssertionError, match=r"a has shape \(3, 4\) but b has shape \(4, 3\)"):
        assert_almost_equal(a, a.T)
    assert_almost_equal(torch.tensor([1.0001], dtype=torch.float16), np.array([1.0]))  # float16 tolerance


def _fc():
    return S.FullyConnected(S.Variable("data"), name="fc", num_hidden=3)


def test_check_symbolic_forward_and_backward(rng):
    x, w, b = rng.normal(size=(5, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
    check_symbolic_forward(_fc(), [x, w, b], [oracles.fully_connected(x, w, b)])
    dy = rng.normal(size=(5, 3))
    dx, dw, db = oracles.fully_connected_grads(dy, x, w, b)
    grads = check_symbolic_backward(_fc(), {"data": x, "fc_weight": w, "fc_bias": b}, [dy],
                                    {"data": dx, "fc_weight": dw, "fc_bias": db})
    assert set(grads) == {"data", "fc_weight", "fc_bias"}
    with pytest.raises(AssertionError, match="forward fc_output and expected differ"):
        check_symbolic_forward(_fc(), [x, w, b], {"fc_output": oracles.fully_connected(x, w, b) + 1e-3})
    with pytest.raises(AssertionError, match="gradient of 'fc_weight' and expected differ in 12 of 12"):
        check_symbolic_backward(_fc(), [x, w, b], [dy], {"fc_weight": 2 * dw})


def _planted(monkeypatch, element_only: bool):
    """Activation's backward made wrong: 10% too large everywhere, or in one element only."""
    op = REGISTRY["Activation"]
    correct = op.backward

    def wrong(a):
        target = a.in_grads[0].view(-1)[:1] if element_only else a.in_grads[0]
        return correct(a) + ops.elementwise.plan_scalar_forward("mul", target, 1.1, target)

    monkeypatch.setattr(op, "backward", wrong)


def test_full_jacobian_mode_names_the_argument_and_the_element(monkeypatch, rng):
    net = S.Activation(S.Variable("x"), act_type="sigmoid") * S.Variable("y")
    location = {"x": rng.normal(size=(2, 3)), "y": rng.normal(size=(2, 3))}
    errors = check_numeric_gradient(net, location)  # 6 elements each: the full Jacobian by default
    assert set(errors) == {"x", "y"} and max(errors.values()) < 1e-6
    _planted(monkeypatch, element_only=True)
    report = r"(?s)gradient of 'x' from backward and finite differences differ in 1 of 6 elements.*at \(0, 0\)"
    with pytest.raises(AssertionError, match=report):
        check_numeric_gradient(net, location)


def test_random_direction_mode_catches_a_wrong_backward(monkeypatch, rng):
    net = S.Activation(S.Variable("x"), act_type="tanh")
    location = {"x": rng.normal(size=(20, 30))}  # 600 elements: random directions
    check_numeric_gradient(net, location)
    _planted(monkeypatch, element_only=False)
    with pytest.raises(AssertionError, match="gradient of 'x' is wrong: along a random direction"):
        check_numeric_gradient(net, location)


def test_loss_outputs_need_their_loss_and_labels_are_skipped(rng):
    net = S.SoftmaxOutput(S.FullyConnected(S.Variable("data"), name="fc", num_hidden=4), name="out")
    location = {"data": rng.normal(size=(3, 5)), "fc_weight": rng.normal(size=(4, 5)), "fc_bias": np.zeros(4),
                "out_label": np.array([0.0, 3.0, 1.0])}
    with pytest.raises(ValueError, match=r"output 'out_output' is a loss output.*losses=\{'out_output'"):
        check_numeric_gradient(net, location)
    errors = check_numeric_gradient(net, location, losses={
        "out_output": lambda v, p: oracles.cross_entropy(p, v["out_label"])})
    assert sorted(errors) == ["data", "fc_bias", "fc_weight"]  # the label takes no gradient
    with pytest.raises(ValueError, match=r"grad_nodes \['nope'\] are not arguments"):
        check_numeric_gradient(net, location, grad_nodes=["nope"])
