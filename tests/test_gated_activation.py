"""GatedActivation, ``data * act(gate)``: its kernels through strides and with added
gradients, the same bits as the unfused graph (an activation, then a product) in float32,
one gate-sized array less in a training bind, and the transformer's SwiGLU block on it.
Every dtype, finite differences and NaN rules: the generic operator cases."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import poisoned
from tritonsym.ops import gated_activation as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.executor import program

S = ts.sym


@pytest.mark.parametrize("act", kernels.GATES)
def test_the_kernels_through_strides_and_adding_into_gradients(act, rng):
    """Transposed inputs, a strided output; then gradients added to what the arrays hold."""
    x = torch.tensor(rng.normal(size=(7, 5))).T
    g = torch.tensor(rng.normal(scale=2.0, size=(7, 5))).T
    dy = torch.tensor(rng.normal(size=(5, 7)))
    parent = poisoned((5, 14), torch.float64)
    out = parent[:, ::2]
    run(kernels.plan_gated_forward(x, g, out, act))
    xs, gs = x.numpy(), g.numpy()
    np.testing.assert_allclose(out.numpy(), xs * o.act(gs, act), rtol=1e-13, atol=1e-15)
    assert torch.isnan(parent[:, 1::2]).all(), "wrote outside the strided output"
    dx, dg = torch.full((5, 7), 0.5, dtype=torch.float64), torch.full((5, 7), -1.0, dtype=torch.float64)
    run(kernels.plan_gated_backward(dy, x, g, dx, dg, act, accumulate_x=True, accumulate_gate=True))
    d = dy.numpy()
    np.testing.assert_allclose(dx.numpy(), 0.5 + d * o.act(gs, act), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dg.numpy(), -1.0 + d * xs * o.act_grad(gs, act), rtol=1e-12, atol=1e-14)
    only_gate = torch.zeros(5, 7, dtype=torch.float64)
    run(kernels.plan_gated_backward(dy, x, g, None, only_gate, act))
    np.testing.assert_allclose(only_gate.numpy(), d * xs * o.act_grad(gs, act), rtol=1e-12, atol=1e-14)


def test_bad_arguments_are_named():
    x = torch.zeros(3, 4)
    with pytest.raises(KernelArgumentError, match="act_type='softsign' is not one of silu, gelu"):
        kernels.plan_gated_forward(x, x, torch.empty_like(x), "softsign")
    with pytest.raises(KernelArgumentError, match="gated_activation: .*shape"):
        kernels.plan_gated_forward(x, torch.zeros(4, 3), torch.empty_like(x), "silu")
    with pytest.raises(ts.base.ShapeError,
                       match=r"\(GatedActivation\): inputs must have one shape, got data \(3, 4\), gate \(3, 5\)"):
        S.GatedActivation(S.Variable("data"), S.Variable("gate")).infer_shape(data=(3, 4), gate=(3, 5))
    with pytest.raises(ts.base.ParamError, match="act_type"):
        S.GatedActivation(S.Variable("data"), S.Variable("gate"), act_type="swish")


def _swiglu_mlp(fused: bool):
    """x -> fc1, gate -> product -> fc2 -> a summed loss."""
    x = S.Variable("x")
    h = S.FullyConnected(x, num_hidden=32, flatten=False, name="fc1")
    gate = S.FullyConnected(x, num_hidden=32, flatten=False, name="gate")
    y = S.GatedActivation(h, gate, name="glu") if fused else S.LeakyReLU(gate, act_type="silu", name="silu") * h
    return S.MakeLoss(S.sum(S.FullyConnected(y, num_hidden=8, flatten=False, name="fc2")))


def _without_gate_fusion(monkeypatch):
    """Binds made inside run the activation and the product apart (``executor/gates.py``
    would merge them)."""
    monkeypatch.setattr(program, "fuse_gates", lambda steps, heads, viewed: steps)


def test_the_same_bits_as_the_unfused_graph_and_one_array_less(rng, monkeypatch):
    """float32: act(gate) is rounded to float32 in both (stored, or held in a register), and
    each gradient multiplies in the same order. The unfused training bind keeps silu(gate)
    for the product's backward; the fused one does not: its plan is one (rows, 32) float32
    array smaller, at every bound the planner reports."""
    shapes = {"x": (6, 9, 12)}
    binds = {True: _swiglu_mlp(True).simple_bind(ts.cpu(), **shapes)}
    _without_gate_fusion(monkeypatch)
    binds[False] = _swiglu_mlp(False).simple_bind(ts.cpu(), **shapes)
    values = {n: rng.normal(scale=0.5, size=a.shape) for n, a in binds[False].arg_dict.items()}
    results = []
    for exe in binds.values():
        for name, value in values.items():
            exe.arg_dict[name][...] = torch.as_tensor(value)
        out = exe.forward(is_train=True)[0].clone()
        exe.backward()
        results.append((out, {n: g.clone() for n, g in exe.grad_dict.items()}))
    (out0, grads0), (out1, grads1) = results
    assert torch.equal(out0, out1) and all(torch.equal(grads0[n], grads1[n]) for n in grads0)
    array = 6 * 9 * 32 * 4
    unfused, fused = binds[False].memory, binds[True].memory
    assert unfused.lower_bound_bytes - fused.lower_bound_bytes == array
    assert unfused.planned_bytes - fused.planned_bytes >= array


def test_the_transformers_swiglu_block_keeps_one_array_less_per_layer(monkeypatch):
    """Config(mlp="swiglu"): each block's product is one GatedActivation; the training plan
    of two blocks, width 32, 8 x 16 tokens, is two (8 x 16, 128) float32 arrays smaller than
    with the activation and the product apart (measured: the network as built before), and
    the block written by hand plans as GatedActivation does (the gate fusion pass)."""
    from tritonsym.models import transformer

    cfg = transformer.Config(vocab=20, max_len=16, width=32, heads=4, layers=2, mlp="swiglu")
    net = transformer.decoder(16, cfg)
    assert net.tojson().count('"op": "GatedActivation"') == 2
    fused = net.simple_bind(ts.cpu(), data=(8, 16), softmax_label=(8, 16)).memory

    def unfused_mlp(x, cfg, name):
        h = S.FullyConnected(x, num_hidden=4 * cfg.width, flatten=False, name=f"{name}_fc1")
        gate = S.FullyConnected(x, num_hidden=4 * cfg.width, flatten=False, name=f"{name}_gate")
        h = S.LeakyReLU(gate, act_type="silu", name=f"{name}_silu") * h
        return S.FullyConnected(h, num_hidden=cfg.width, flatten=False, name=f"{name}_fc2")

    monkeypatch.setattr(transformer, "mlp", unfused_mlp)
    by_hand = transformer.decoder(16, cfg).simple_bind(ts.cpu(), data=(8, 16), softmax_label=(8, 16)).memory
    assert by_hand.lower_bound_bytes == fused.lower_bound_bytes
    _without_gate_fusion(monkeypatch)
    unfused = transformer.decoder(16, cfg).simple_bind(ts.cpu(), data=(8, 16), softmax_label=(8, 16)).memory
    assert unfused.lower_bound_bytes - fused.lower_bound_bytes == 2 * 8 * 16 * 128 * 4
