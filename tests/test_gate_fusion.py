"""The gate fusion pass (``tritonsym/executor/gates.py``): an activation read only by a
product of its shape runs with it as one GatedActivation, whichever way the script writes
the activation (LeakyReLU, Activation, MXNet's unary operators) and the product (``*``,
``elemwise_mul``, ``broadcast_mul`` of one shape), in either order: one step each way, the
float32 bits of the activation and the product apart, one array less in a training bind.
Where it would change what a user reads (the activation is an output or read elsewhere),
or the pair is not elementwise, nothing merges. Every dtype, finite differences and NaN:
the generic operator case ``gated_by_hand_silu``."""

from __future__ import annotations

import pytest
import torch

import tritonsym as ts
from tritonsym.executor import program

S = ts.sym

WRITTEN = {  # how a script writes act(g), and the GatedActivation act_type it becomes
    "LeakyReLU_silu": (lambda g: S.LeakyReLU(g, act_type="silu", name="act"), "silu"),
    "LeakyReLU_gelu": (lambda g: S.LeakyReLU(g, act_type="gelu", name="act"), "gelu"),
    "LeakyReLU_gelu_tanh": (lambda g: S.LeakyReLU(g, act_type="gelu_tanh", name="act"), "gelu_tanh"),
    "Activation_sigmoid": (lambda g: S.Activation(g, act_type="sigmoid", name="act"), "sigmoid"),
    "Activation_relu": (lambda g: S.Activation(g, act_type="relu", name="act"), "relu"),
    "Activation_tanh": (lambda g: S.Activation(g, act_type="tanh", name="act"), "tanh"),
    "sigmoid": (lambda g: S.sigmoid(g, name="act"), "sigmoid"),
    "relu": (lambda g: S.relu(g, name="act"), "relu"),
    "tanh": (lambda g: S.tanh(g, name="act"), "tanh"),
}
PRODUCTS = {
    "act_times_h": lambda y, h: y * h,
    "h_times_act": lambda y, h: S.elemwise_mul(h, y),
    "broadcast_mul_one_shape": lambda y, h: S.broadcast_mul(y, h),
}
SHAPES = {"g": (5, 7, 3), "h": (5, 7, 3)}


def _bind(net, monkeypatch, fuse: bool, **shapes):
    with monkeypatch.context() as patch:
        if not fuse:
            patch.setattr(program, "fuse_gates", lambda steps, heads, viewed: steps)
        return net.simple_bind(ts.cpu(), **shapes)


def _train_step(exe, values: dict, head=None):
    for name, value in values.items():
        exe.arg_dict[name][...] = value
    out = [o.clone() for o in exe.forward(is_train=True)]
    exe.backward(head)
    return out, {n: g.clone() for n, g in exe.grad_dict.items() if g is not None}


def _ops(exe) -> list[str]:
    return [s.op.name for s in exe._program.forward_steps]


@pytest.mark.parametrize("product", PRODUCTS)
@pytest.mark.parametrize("written", WRITTEN)
def test_a_gate_written_by_hand_is_one_step_with_the_same_float32_bits(written, product, rng, monkeypatch):
    make_act, act_type = WRITTEN[written]
    net = PRODUCTS[product](make_act(S.Variable("g")), S.Variable("h"))
    fused, unfused = (_bind(net, monkeypatch, fuse, **SHAPES) for fuse in (True, False))
    assert _ops(fused) == ["GatedActivation"] and len(_ops(unfused)) == 2
    (step,) = fused._program.forward_steps
    assert step.params["act_type"] == act_type and [v.name for v in step.inputs] == ["h", "g"]
    values = {n: torch.tensor(rng.normal(size=s), dtype=torch.float32) for n, s in SHAPES.items()}
    head = torch.tensor(rng.normal(size=SHAPES["g"]), dtype=torch.float32)
    (out1,), grads1 = _train_step(fused, values, head)
    (out0,), grads0 = _train_step(unfused, values, head)
    assert torch.equal(out0, out1)
    assert grads0.keys() == grads1.keys() == {"g", "h"}
    assert all(torch.equal(grads0[n], grads1[n]) for n in grads0), written
    array = 5 * 7 * 3 * 4
    assert unfused.memory.lower_bound_bytes - fused.memory.lower_bound_bytes >= array
    assert torch.equal(fused.forward(is_train=False)[0], out1)


def test_x_times_silu_x_reads_one_array_twice(rng, monkeypatch):
    """x * silu(x) (Swish written by hand): GatedActivation(x, x), whose backward adds the
    gate's gradient after the data's, as torch autograd does, in float64."""
    x = S.Variable("x")
    net = S.LeakyReLU(x, act_type="silu") * x
    exe = _bind(net, monkeypatch, True, x=(6, 5))
    assert _ops(exe) == ["GatedActivation"]
    exe = net.simple_bind(ts.cpu(), type_dict={"x": "float64"}, x=(6, 5))
    value = torch.tensor(rng.normal(size=(6, 5)))
    head = torch.tensor(rng.normal(size=(6, 5)))
    (out,), grads = _train_step(exe, {"x": value}, head)
    t = value.clone().requires_grad_()
    want = torch.nn.functional.silu(t) * t
    want.backward(head)
    torch.testing.assert_close(out, want.detach(), rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(grads["x"], t.grad, rtol=1e-13, atol=1e-14)


def _fc_relu_times_h():
    fc = S.FullyConnected(S.Variable("x"), num_hidden=3, flatten=False, name="fc")
    return S.Activation(fc, act_type="relu") * S.Variable("h")


@pytest.mark.parametrize("build, steps", [
    # the activation is read twice: it must be stored anyway
    (lambda: (lambda y: y * S.Variable("h") + y)(S.LeakyReLU(S.Variable("g"), act_type="silu")),
     ["LeakyReLU", "elemwise_mul", "elemwise_add"]),
    # the activation is an output of the symbol
    (lambda: (lambda y: S.Group([y * S.Variable("h"), y]))(S.sigmoid(S.Variable("g"))), ["sigmoid", "elemwise_mul"]),
    # a broadcast: h has another shape
    (lambda: S.broadcast_mul(S.relu(S.Variable("g")), S.Variable("b")), ["relu", "broadcast_mul"]),
    # not an activation GatedActivation has
    (lambda: S.Activation(S.Variable("g"), act_type="softrelu") * S.Variable("h"), ["Activation", "elemwise_mul"]),
    (lambda: S.LeakyReLU(S.Variable("g"), act_type="leaky") * S.Variable("h"), ["LeakyReLU", "elemwise_mul"]),
    # relu fused into the FullyConnected's epilogue stays there (which keeps no more)
    (_fc_relu_times_h, ["FullyConnected", "elemwise_mul"]),
], ids=["read_twice", "an_output", "broadcast", "softrelu", "leaky", "fc_epilogue"])
def test_no_merge_where_it_would_change_what_is_read_or_is_not_elementwise(build, steps, monkeypatch):
    shapes = {"g": (4, 3), "h": (4, 3), "b": (1, 3), "x": (4, 6)}
    net = build()
    exe = _bind(net, monkeypatch, True, **{n: s for n, s in shapes.items() if n in net.list_arguments()})
    assert _ops(exe) == steps
