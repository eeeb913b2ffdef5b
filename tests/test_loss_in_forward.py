"""SoftmaxOutput makes its loss gradient in the training forward, from one read of the
logits, and keeps it for backward: the backward step then launches nothing, and every
gradient is, bit for bit, what the loss's own backward makes (with ``out_grad``, which
needs the head gradient and so still runs in backward)."""

import numpy as np
import pytest
import torch
from plan_checks import assert_no_live_overlap

import tritonsym as ts
from tritonsym import ExecutionError

S = ts.sym


def _net(out_grad=False, **loss):
    h = S.Activation(S.FullyConnected(S.Variable("data"), num_hidden=12, name="fc1"), act_type="tanh")
    return S.SoftmaxOutput(S.FullyConnected(h, num_hidden=5, name="fc2"), out_grad=out_grad, name="out", **loss)


def _trained(net, values, head=None, **bind):
    exe = net.simple_bind(ts.cpu(), data=(9, 7), type_dict={"data": "float64"}, **bind)
    exe.forward(is_train=True, **values)
    exe.backward(out_grads=head)
    return exe


@pytest.fixture
def values(rng):
    values = {"data": rng.normal(size=(9, 7)), "fc1_weight": rng.normal(size=(12, 7)),
              "fc1_bias": rng.normal(size=12), "fc2_weight": rng.normal(size=(5, 12)), "fc2_bias": rng.normal(size=5)}
    labels = rng.integers(0, 5, 9).astype(float)
    labels[[2, 6]] = 3  # the ignore label below
    return {**values, "out_label": labels}


@pytest.mark.parametrize("loss", [{}, {"normalization": "batch", "grad_scale": 0.5, "smooth_alpha": 0.1},
                                  {"use_ignore": True, "ignore_label": 3.0, "normalization": "valid"}],
                         ids=["default", "batch-smoothed", "valid-ignored"])
def test_gradients_equal_the_backward_made_ones(values, loss):
    made = _trained(_net(**loss), values)
    steps = {s.label: s for s in made._program.forward_steps + made._program.backward_steps}
    assert steps["out (SoftmaxOutput) backward"].launches == []
    counted = 2 if loss.get("use_ignore") else 1  # the valid labels are counted first
    assert len(steps["out (SoftmaxOutput) forward"].train_launches) == counted
    assert len(steps["out (SoftmaxOutput) forward"].launches) == 1  # inference: the softmax alone
    assert_no_live_overlap(made)
    # out_grad with a head gradient of ones: the same gradient, made in backward from the probabilities
    reference = _trained(_net(out_grad=True, **loss), values, head=[torch.ones(9, 5, dtype=torch.float64)])
    assert reference._program.backward_steps[0].launches != []
    unplanned = _trained(_net(**loss), values, memory_plan="none")
    for name, grad in made.grad_dict.items():
        if name != "out_label":
            assert torch.equal(grad, reference.grad_dict[name]), name
            assert torch.equal(grad, unplanned.grad_dict[name]), name
    assert torch.equal(made.outputs[0], reference.outputs[0])


def test_a_loss_on_a_variable_accumulates_and_overwrites(rng):
    """The gradient of an argument is not planned memory: backward copies the kept gradient
    into it, or adds it under grad_req='add'."""
    net = S.SoftmaxOutput(S.Variable("logits"), name="out")
    x, label = rng.normal(size=(6, 4)), rng.integers(0, 4, 6).astype(float)
    grads = {}
    for req in ("write", "add"):
        exe = net.simple_bind(ts.cpu(), logits=(6, 4), grad_req=req, type_dict={"logits": "float64"})
        exe.zero_grad()
        for _ in range(2):
            exe.forward(is_train=True, logits=x, out_label=label)
            exe.backward()
        grads[req] = exe.grad_dict["logits"].numpy()
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = p - np.eye(4)[label.astype(int)]
    np.testing.assert_allclose(grads["write"], expected, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(grads["add"], 2 * expected, rtol=1e-14, atol=1e-15)


def test_the_label_of_the_training_forward_is_the_one_used(values, rng):
    """The gradient belongs to the training forward that made it; a label written after it
    counts from the next training forward on (MXNet's backward would read it at once)."""
    exe = _trained(_net(), values)
    before = exe.grad_dict["fc2_bias"].clone()
    exe.arg_dict["out_label"][:] = torch.as_tensor((values["out_label"] + 1) % 5)
    with pytest.raises(ExecutionError, match="each backward needs its own forward"):
        exe.backward()
    exe.forward(is_train=True)
    exe.backward()
    assert not torch.equal(exe.grad_dict["fc2_bias"], before)
    again = _trained(_net(), {**values, "out_label": (values["out_label"] + 1) % 5})
    assert torch.equal(exe.grad_dict["fc2_bias"], again.grad_dict["fc2_bias"])
