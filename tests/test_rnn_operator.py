"""The fused RNN operator (MXNet's ``RNN``) and ``ts.rnn.FusedRNNCell``: its parameter
layout, the forms of a bind (inference, training, a second backward, ``grad_req='add'``, one
step), what it refuses, the FusedRNN initializer, and the fused stack against the same
network of step-by-step cells. (Values and gradients of every mode against the float64
oracle in every dtype: operator_cases.py; against MXNet 1.9.1: the recorded RNN cases.)"""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch

import tritonsym as ts
from tritonsym.base import ParamError

S = ts.sym


def _rnn(mode, layers=1, bidirectional=False, hidden=4, state_outputs=True):
    return S.RNN(S.Variable("data"), state_size=hidden, num_layers=layers, mode=mode, bidirectional=bidirectional,
                 state_outputs=state_outputs, name="rnn")


def _bind(net, shape, grad_req="write"):
    return net.simple_bind(ts.cpu(), grad_req=grad_req, data=shape, type_dict={"data": torch.float64})


def _fill(exe, rng):
    values = {}
    for name, array in exe.arg_dict.items():
        values[name] = rng.normal(scale=0.4 if name == "rnn_parameters" else 1.0, size=tuple(array.shape))
        array[...] = torch.from_numpy(values[name])
    return values


@pytest.mark.parametrize("mode, layers, bidirectional", [("lstm", 3, True), ("gru", 2, False), ("rnn_relu", 1, True)])
def test_shapes_follow_mxnets_layout(mode, layers, bidirectional):
    directions = 1 + bidirectional
    net = _rnn(mode, layers, bidirectional, hidden=6)
    arg_shapes, out_shapes, _ = net.infer_shape(data=(7, 3, 5))
    states = (layers * directions, 3, 6)
    assert arg_shapes[1] == (o.rnn_parameter_count(mode, layers, directions, 5, 6),)
    assert arg_shapes[2:] == [states] * (2 if mode == "lstm" else 1)
    assert out_shapes == [(7, 3, directions * 6)] + [states] * (2 if mode == "lstm" else 1)
    assert net.list_outputs() == ["rnn_output", "rnn_state_output", "rnn_statecell_output"][:len(out_shapes)]


@pytest.mark.parametrize("steps", [1, pytest.param(4, marks=pytest.mark.slow)])  # 4: 8 s in the interpreter
def test_inference_training_a_second_backward_and_grad_req_add(steps, rng):
    mode, layers = "lstm", 2
    exe = _bind(_rnn(mode, layers, True), (steps, 2, 3))
    added = _bind(_rnn(mode, layers, True), (steps, 2, 3), grad_req="add")
    values = _fill(exe, rng)
    for name, array in added.arg_dict.items():
        array[...] = exe.arg_dict[name]
    expected = o.rnn(values["data"], values["rnn_parameters"], values["rnn_state"], values["rnn_state_cell"], mode,
                     layers, True)
    inference = [t.clone() for t in exe.forward(is_train=False)]
    training = exe.forward(is_train=True)
    for got, want in zip((*inference, *training), (*expected[:3], *expected[:3])):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    heads = [rng.normal(size=tuple(t.shape)) for t in training]
    grads = o.rnn_grads(*heads, values["data"], values["rnn_parameters"], values["rnn_state"],
                        values["rnn_state_cell"], mode, layers, True)
    names = ["data", "rnn_parameters", "rnn_state", "rnn_state_cell"]
    for _ in range(2):  # a second backward reads what the training forward kept, unchanged
        exe.backward([torch.from_numpy(h) for h in heads])
        for name, want in zip(names, grads):
            np.testing.assert_allclose(exe.grad_dict[name].numpy(), want, rtol=1e-10, atol=1e-12, err_msg=name)
    for array in added.grad_dict.values():
        array.fill_(1.0)
    added.forward(is_train=True)
    added.backward([torch.from_numpy(h) for h in heads])
    for name, want in zip(names, grads):
        np.testing.assert_allclose(added.grad_dict[name].numpy(), want + 1.0, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("mode", ["gru", pytest.param("rnn_tanh", marks=pytest.mark.slow),
                                  pytest.param("rnn_relu", marks=pytest.mark.slow)])
def test_an_inference_bind_writes_every_layer_into_the_output(mode, rng):
    """Without a backward the layers go through the output itself (no kept values): still the
    oracle's outputs and last states, two bidirectional layers."""
    net = _rnn(mode, layers=2, bidirectional=True)
    exe = net.simple_bind(ts.cpu(), grad_req="null", data=(4, 3, 2), type_dict={"data": torch.float64})
    values = _fill(exe, rng)
    expected = o.rnn(values["data"], values["rnn_parameters"], values["rnn_state"], None, mode, 2, True)
    for got, want in zip(exe.forward(is_train=False), expected[:2]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_the_last_states_without_state_outputs_still_get_a_zero_head():
    """Without state_outputs the recurrence's gradient starts at zero; an unread state output
    gets a zero head gradient: both give the output's gradient alone."""
    rng = np.random.default_rng(3)
    plain, stated = _bind(_rnn("gru", state_outputs=False), (3, 2, 3)), _bind(_rnn("gru")[0], (3, 2, 3))
    values = _fill(plain, rng)
    for name, array in stated.arg_dict.items():
        array[...] = torch.from_numpy(values[name])
    head = torch.from_numpy(rng.normal(size=(3, 2, 4)))
    for exe in (plain, stated):
        exe.forward(is_train=True)
        exe.backward([head])
    for name in plain.grad_dict:
        torch.testing.assert_close(plain.grad_dict[name], stated.grad_dict[name], rtol=0, atol=0)


def test_what_is_not_supported_is_refused_by_name():
    with pytest.raises(ParamError, match=r"RNN: lstm_state_clip_nan=True is not supported \(a NaN cell state stays "
                                         r"NaN\)"):
        S.RNN(S.Variable("data"), state_size=4, num_layers=1, mode="lstm", lstm_state_clip_nan=True)
    with pytest.raises(ParamError, match=r"RNN: mode='lstmp' is not one of 'rnn_relu', 'rnn_tanh', 'lstm', 'gru'"):
        S.RNN(S.Variable("data"), state_size=4, num_layers=1, mode="lstmp")


def test_fused_rnn_initializer_fills_each_gate_and_opens_both_forget_biases():
    net = _rnn("lstm", layers=2, hidden=3)
    flat = torch.full((o.rnn_parameter_count("lstm", 2, 1, 5, 3),), float("nan"), dtype=torch.float64)
    attrs = net.attr_dict()["rnn_parameters"]
    assert attrs["__init__"].startswith('["fusedrnn", {"init": null, "num_hidden": 3')
    ts.init.Constant(0.5)("rnn_parameters", flat, attrs)  # the caller's initializer fills the weights
    pieces = o.rnn_parameters(flat.numpy(), "lstm", 2, 1, 5, 3)
    for (layer, direction, kind), piece in pieces.items():
        if kind.startswith("w"):
            assert (piece == 0.5).all(), (layer, kind)
        else:  # MXNet's FusedRNN sets the input's and the hidden forget biases both
            assert piece.tolist() == [0.0] * 3 + [1.0] * 3 + [0.0] * 6, (layer, kind)
    alone = ts.init.FusedRNN(None, 3, 2, "lstm")
    with pytest.raises(ParamError, match="FusedRNN: 'w': init=None fills the weights with the initializer that "
                                         "calls it"):
        alone("w", flat, {"__init__": alone.dumps()})
    xavier = ts.init.FusedRNN(ts.init.Xavier(), 3, 2, "lstm", forget_bias=2.0)
    ts.init.Constant(0.5)("w", flat, {"__init__": xavier.dumps()})  # its own init wins over the caller's
    weights = o.rnn_parameters(flat.numpy(), "lstm", 2, 1, 5, 3)[0, 0, "wx"]
    assert np.abs(weights[:3]).max() <= np.sqrt(3.0 / 4.0)  # each gate's (3, 5) rows: a fan of 4
    assert o.rnn_parameters(flat.numpy(), "lstm", 2, 1, 5, 3)[1, 0, "bh"][3:6].tolist() == [2.0] * 3


# three vanilla layers: where MXNet 1.9.1's fused gradient is wrong (docs/mxnet.md)
@pytest.mark.parametrize("mode, bidirectional, layers", [pytest.param("lstm", True, 2, marks=pytest.mark.slow),
                                                          pytest.param("gru", False, 2, marks=pytest.mark.slow),
                                                          ("rnn_tanh", False, 3)])
def test_a_fused_cell_is_the_network_its_unfused_cells_build(mode, bidirectional, layers, rng):
    fused = ts.rnn.FusedRNNCell(3, num_layers=layers, mode=mode, bidirectional=bidirectional, prefix="f_")
    outputs, states = fused.unroll(3, S.Variable("data"), layout="NTC", merge_outputs=True)
    assert states == [] and outputs.list_arguments() == ["data", "f_parameters"]
    unfused = fused.unfuse()
    outputs_unfused, _ = unfused.unroll(3, S.Variable("data"), layout="NTC", merge_outputs=True)
    exes = [_bind(net, (2, 3, 4)) for net in (outputs, outputs_unfused)]
    exes[0].arg_dict["data"][...] = torch.from_numpy(rng.normal(size=(2, 3, 4)))
    ts.init.Xavier()("f_parameters", exes[0].arg_dict["f_parameters"], outputs.attr_dict()["f_parameters"])
    packed = unfused.pack_weights(fused.unpack_weights(exes[0].arg_dict))
    for name, array in exes[1].arg_dict.items():
        array[...] = packed[name]
    head = torch.from_numpy(rng.normal(size=(2, 3, 3 * (1 + bidirectional))))
    for exe in exes:
        exe.forward(is_train=True)
        exe.backward([head])
    torch.testing.assert_close(exes[0].outputs[0], exes[1].outputs[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(exes[0].grad_dict["data"], exes[1].grad_dict["data"], rtol=1e-10, atol=1e-12)
    gradients = unfused.pack_weights(fused.unpack_weights(exes[0].grad_dict))
    for name, array in exes[1].grad_dict.items():
        torch.testing.assert_close(array, gradients[name], rtol=1e-10, atol=1e-12, msg=name)
    again = fused.pack_weights(fused.unpack_weights(exes[0].arg_dict))
    assert torch.equal(again["f_parameters"], exes[0].arg_dict["f_parameters"])


@pytest.mark.slow  # 25 s in the interpreter
def test_a_fused_lstm_learns_to_recall_the_first_token():
    """Module.fit on a task that needs memory: the class of each sequence is its first
    token, the tokens after it are noise; a model without the recurrence stays at chance."""
    ts.random.seed(0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 4, (64, 5))
    data = np.eye(4)[tokens].astype(np.float32)  # (batch, time, 4) one-hot
    cell = ts.rnn.FusedRNNCell(8, mode="lstm", prefix="lstm_")
    outputs, _ = cell.unroll(5, S.Variable("data"), layout="NTC", merge_outputs=True)
    last = S.Reshape(S.slice_axis(outputs, axis=1, begin=4, end=5), shape=(-1, 8))
    net = S.SoftmaxOutput(S.FullyConnected(last, num_hidden=4, name="pred"), name="softmax")
    train = ts.io.NDArrayIter(data, tokens[:, 0].astype(np.float32), batch_size=16, label_name="softmax_label")
    mod = ts.mod.Module(net)
    mod.fit(train, num_epoch=12, optimizer="adam", optimizer_params={"learning_rate": 0.05},
            initializer=ts.init.Xavier())
    assert mod.score(train, "acc")[0][1] == 1.0


@pytest.mark.slow  # 4 s in the interpreter
def test_dropout_between_layers_draws_a_mask_per_layer_and_backward_draws_it_again(rng):
    """p drops each layer's output but the top's, as the layer above reads it (MXNet's p):
    the values and gradients are the oracle's with the masks the Dropout kernels draw for
    the node's streams (``rnn/l0``, ``rnn/l1``); inference drops nothing; the next training
    step draws other masks."""
    from tritonsym.ops import dropout as dropout_kernels
    from tritonsym.ops._common import run

    mode, layers, p, shape = "gru", 3, 0.4, (3, 2, 3)
    ts.random.seed(5)
    exe = _bind(S.RNN(S.Variable("data"), state_size=4, num_layers=layers, mode=mode, bidirectional=True, p=p,
                      state_outputs=True, name="rnn"), shape)
    values = _fill(exe, rng)
    args = (values["data"], values["rnn_parameters"], values["rnn_state"], None, mode, layers, True)
    inference = exe.forward(is_train=False)[0].clone()
    np.testing.assert_allclose(inference.numpy(), o.rnn(*args)[0], rtol=1e-12, atol=1e-12)
    outputs = [t.clone() for t in exe.forward(is_train=True)]
    drops = []
    for layer in range(layers - 1):  # the masks of this step, drawn the kernels' way
        ones = torch.ones(shape[0], shape[1], 8, dtype=torch.float64)
        mask = torch.empty_like(ones)
        run(dropout_kernels.plan_dropout(ones, mask, ts.random.device_state("cpu"), p=p,
                                                salt=ts.random.salt(f"rnn/l{layer}")))
        drops.append(mask.numpy())
    assert {np.round(v, 12) for d in drops for v in np.unique(d)} == {0.0, np.round(1 / (1 - p), 12)}
    assert not np.array_equal(drops[0], drops[1])  # a stream a layer
    expected = o.rnn(*args, drops=drops)
    for got, want in zip(outputs, expected[:2]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    heads = [rng.normal(size=tuple(t.shape)) for t in outputs]
    exe.backward([torch.from_numpy(h) for h in heads])
    grads = o.rnn_grads(*heads, None, *args, drops=drops)
    for name, want in zip(["data", "rnn_parameters", "rnn_state"], grads):
        np.testing.assert_allclose(exe.grad_dict[name].numpy(), want, rtol=1e-10, atol=1e-12, err_msg=name)
    again = exe.forward(is_train=True)[0]
    assert not torch.equal(again, outputs[0])
