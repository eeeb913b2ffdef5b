"""An independent cross-check: the same network in PyTorch autograd (tests only) gives the
same outputs and gradients."""

import numpy as np
import pytest
import torch

import tritonsym as ts

S = ts.sym


def build():
    net = S.FullyConnected(S.Variable("data"), num_hidden=33, name="fc1")
    net = S.Activation(net, act_type="relu", name="relu1")
    net = S.FullyConnected(net, num_hidden=17, name="fc2")
    net = S.LeakyReLU(net, act_type="gelu")
    net = S.FullyConnected(net, num_hidden=10, name="fc3")
    return S.SoftmaxOutput(net, name="out", normalization="batch")


def torch_reference(p):
    h = torch.relu(p["data"] @ p["fc1_weight"].T + p["fc1_bias"])
    h = torch.nn.functional.gelu(h @ p["fc2_weight"].T + p["fc2_bias"])
    z = h @ p["fc3_weight"].T + p["fc3_bias"]
    loss = torch.nn.functional.cross_entropy(z, p["out_label"].long(), reduction="mean")
    loss.backward()
    return torch.softmax(z, -1)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)], ids=["float64", "float32"])
def test_mlp_matches_torch_autograd(rng, dtype, tol):
    net = build()
    exe = net.simple_bind(ts.cpu(), data=(29, 20), type_dict={"data": dtype})
    shapes = dict(zip(net.list_arguments(), net.infer_shape(data=(29, 20))[0]))
    values = {n: rng.normal(scale=0.5, size=s) for n, s in shapes.items()}
    values["out_label"] = rng.integers(0, 10, 29).astype(float)
    exe.forward(is_train=True, **values)
    exe.backward()
    params = {n: torch.tensor(v, dtype=dtype, requires_grad=n not in ("data", "out_label")) for n, v in values.items()}
    probs = torch_reference(params)
    torch.testing.assert_close(exe.outputs[0], probs.detach(), atol=tol, rtol=tol)
    for name in ("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "fc3_weight", "fc3_bias"):
        torch.testing.assert_close(exe.grad_dict[name], params[name].grad, atol=tol, rtol=tol * 10, msg=name)


def test_three_sgd_steps_match(rng):
    """Training dynamics, not just one gradient: 3 plain SGD steps in float64."""
    net = build()
    exe = net.simple_bind(ts.cpu(), data=(16, 20), type_dict={"data": torch.float64},
                          grad_req={n: "write" for n in net.list_arguments() if n.startswith("fc")})
    shapes = dict(zip(net.list_arguments(), net.infer_shape(data=(16, 20))[0]))
    values = {n: rng.normal(scale=0.5, size=s) for n, s in shapes.items()}
    values["out_label"] = rng.integers(0, 10, 16).astype(float)
    exe.copy_params_from(values)
    params = {n: torch.tensor(v, requires_grad=n.startswith("fc")) for n, v in values.items()}
    for _ in range(3):
        exe.forward(is_train=True)
        exe.backward()
        for name, grad in exe.grad_dict.items():
            if grad is not None:  # plain SGD written out here; the optimizers come with the training API
                exe.arg_dict[name][...] = exe.arg_dict[name] - 0.1 * grad
        for p in params.values():
            p.grad = None
        torch_reference(params)
        with torch.no_grad():
            for name, p in params.items():
                if p.grad is not None:
                    p -= 0.1 * p.grad
    for name, p in params.items():
        np.testing.assert_allclose(exe.arg_dict[name].cpu().numpy(), p.detach().cpu().numpy(), rtol=1e-11, atol=1e-12,
                                   err_msg=name)
