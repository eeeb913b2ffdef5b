"""A fused activation's gradient applied before its layer's products: in the epilogue of the
FullyConnected after it (with its bias gradient summed there), or by the activation's own
backward step where no such step exists. Whole networks against PyTorch autograd in float64,
with each path checked to be the one taken."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tritonsym as ts

S = ts.sym


def _network():
    """Every kind of pair: fc1+tanh into fc2 (flatten=False, 3-d: finished in fc2's epilogue),
    fc2+leaky into fc3 (flatten=True over a 3-d input: its matrix is not fc2's, so leaky's
    own backward runs), fc3+sigmoid read twice (own backward), fc4+relu and fc5+relu finished
    by fc6 and fc7, sharing one bias (written by the first epilogue, added to by the second)."""
    data = S.Variable("data")
    shared = S.Variable("shared_bias")
    h1 = S.Activation(S.FullyConnected(data, num_hidden=6, flatten=False, name="fc1"), act_type="tanh", name="tanh1")
    h2 = S.LeakyReLU(S.FullyConnected(h1, num_hidden=5, flatten=False, name="fc2"), act_type="leaky", slope=0.2,
                     name="leaky2")
    h3 = S.Activation(S.FullyConnected(h2, num_hidden=9, name="fc3"), act_type="sigmoid", name="sig3")
    a = S.Activation(S.FullyConnected(h3, num_hidden=9, bias=shared, name="fc4"), act_type="relu", name="relu4")
    b = S.Activation(S.FullyConnected(h3, num_hidden=9, bias=shared, name="fc5"), act_type="relu", name="relu5")
    out = S.FullyConnected(a, num_hidden=4, name="fc6") + S.FullyConnected(b, num_hidden=4, name="fc7")
    return S.SoftmaxOutput(out, name="out")


def _torch_loss(p, data, label):
    fc = torch.nn.functional.linear
    h1 = torch.tanh(fc(data, p["fc1_weight"], p["fc1_bias"]))
    h2 = torch.nn.functional.leaky_relu(fc(h1, p["fc2_weight"], p["fc2_bias"]), 0.2)
    h3 = torch.sigmoid(fc(h2.reshape(h2.shape[0], -1), p["fc3_weight"], p["fc3_bias"]))
    a = torch.relu(fc(h3, p["fc4_weight"], p["shared_bias"]))
    b = torch.relu(fc(h3, p["fc5_weight"], p["shared_bias"]))
    out = fc(a, p["fc6_weight"], p["fc6_bias"]) + fc(b, p["fc7_weight"], p["fc7_bias"])
    # SoftmaxOutput's gradient is that of the summed cross-entropy
    return torch.nn.functional.cross_entropy(out, label, reduction="sum")


@pytest.mark.parametrize("bias_req", ["write", "add"])
def test_every_gradient_equals_torch_autograd_and_each_path_is_taken(rng, bias_req):
    net = _network()
    shapes = {"data": (5, 3, 7)}
    names = net.list_arguments()
    req = {n: "null" if n == "out_label" else bias_req if n.endswith("bias") else "write" for n in names}
    exe = net.simple_bind(ts.cpu(), type_dict=dict.fromkeys(names, "float64"), grad_req=req, **shapes)
    values = {n: rng.normal(0, 0.5, a.shape) for n, a in exe.arg_dict.items()}
    values["out_label"] = rng.integers(0, 4, 5).astype(np.float64)
    start = {n: rng.normal(size=g.shape) for n, g in exe.grad_dict.items() if g is not None}
    for n, g in start.items():
        exe.grad_dict[n].copy_(torch.from_numpy(g))
    exe.forward(is_train=True, **values)
    exe.backward()

    leaves = {n: torch.tensor(v, requires_grad=True) for n, v in values.items() if n != "out_label"}
    _torch_loss(leaves, leaves["data"], torch.tensor(values["out_label"]).long()).backward()
    for n, leaf in leaves.items():
        expected = leaf.grad.numpy() + (start[n] if req[n] == "add" else 0)
        np.testing.assert_allclose(exe.grad_dict[n].numpy(), expected, rtol=1e-10, atol=1e-12, err_msg=n)

    steps = {s.name: s for s in exe._program.backward_steps}
    finished = {s.name: s.grad_epilogue for s in steps.values() if s.grad_epilogue is not None}
    assert set(finished) == {"fc2+leaky2", "fc6", "fc7"}  # fc1's tanh, fc4's and fc5's relu
    assert finished["fc2+leaky2"].act == "tanh" and finished["fc6"].act == "relu"
    assert finished["fc6"].bias_grad is exe._program.arg_grads["shared_bias"]
    # the shared bias: the first contribution writes (unless grad_req add), the second adds
    assert [finished[n].accumulate_bias for n in ("fc7", "fc6")] == [bias_req == "add", True]
    assert "leaky2" in steps and "sig3" in steps  # their own backward steps
    assert "tanh1" not in steps and "relu4" not in steps


def test_a_frozen_bias_is_not_summed(rng):
    data = S.Variable("data")
    h = S.Activation(S.FullyConnected(data, num_hidden=8, name="fc1"), act_type="relu", name="relu1")
    net = S.SoftmaxOutput(S.FullyConnected(h, num_hidden=3, name="fc2"), name="out")
    req = {n: "null" if n in ("fc1_bias", "out_label") else "write" for n in net.list_arguments()}
    exe = net.simple_bind(ts.cpu(), grad_req=req, data=(4, 5))
    (step,) = [s for s in exe._program.backward_steps if s.grad_epilogue is not None]
    assert step.grad_epilogue.bias_grad is None and "bias partials" not in step.temps
    values = {n: rng.normal(size=a.shape) for n, a in exe.arg_dict.items()}
    exe.forward(is_train=True, **values | {"out_label": np.array([0, 1, 2, 0.0])})
    exe.backward()
    assert exe.grad_dict["fc1_bias"] is None and torch.isfinite(exe.grad_dict["fc1_weight"]).all()


def test_a_bias_shared_with_the_layer_before_gets_both_contributions(rng):
    """fc2 finishes fc1's relu gradient and sums fc1's bias in its epilogue; with one bias
    variable for both, fc2's own column sum writes it first and the epilogue adds."""
    data, shared = S.Variable("data"), S.Variable("shared_bias")
    h = S.Activation(S.FullyConnected(data, num_hidden=6, bias=shared, name="fc1"), act_type="relu", name="relu1")
    net = S.MakeLoss(S.sum(S.square(S.FullyConnected(h, num_hidden=6, bias=shared, name="fc2"))), name="loss")
    exe = net.simple_bind(ts.cpu(), type_dict={"data": "float64"}, data=(7, 5))
    values = {n: rng.normal(size=a.shape) for n, a in exe.arg_dict.items()}
    exe.forward(is_train=True, **values)
    exe.backward()
    assert any(s.grad_epilogue is not None for s in exe._program.backward_steps)
    leaves = {n: torch.tensor(v, requires_grad=True) for n, v in values.items()}
    fc = torch.nn.functional.linear
    hidden = torch.relu(fc(leaves["data"], leaves["fc1_weight"], leaves["shared_bias"]))
    (fc(hidden, leaves["fc2_weight"], leaves["shared_bias"]) ** 2).sum().backward()
    for n, leaf in leaves.items():
        np.testing.assert_allclose(exe.grad_dict[n].numpy(), leaf.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)
