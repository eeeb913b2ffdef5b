"""An LSTM with projections (RNN's ``projection_size``, LSTMP): values and every gradient
against torch's ``proj_size`` (the same recurrence: h = (o tanh c) W_r^T), the forms of a
bind (inference, the last states' heads, dropout between layers, ``grad_req='add'``), what
it refuses and the FusedRNN initializer. (Against the float64 oracle in every dtype:
operator_cases.py; against MXNet 1.9.1's CPU inference: the recorded RNN cases.)"""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from test_rnn_operator import _bind, _fill  # the fused RNN's float64 bind and its filled arguments
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
NAMES = {"wx": "weight_ih", "wh": "weight_hh", "wr": "weight_hr", "bx": "bias_ih", "bh": "bias_hh"}


def _net(layers=2, bidirectional=True, hidden=6, projection=4, p=0.0):
    return S.RNN(S.Variable("data"), state_size=hidden, num_layers=layers, mode="lstm", bidirectional=bidirectional,
                 state_outputs=True, projection_size=projection, p=p, name="rnn")


def _torch_lstm(layers, bidirectional, features, hidden, projection, flat):
    module = torch.nn.LSTM(features, hidden, num_layers=layers, bidirectional=bidirectional, proj_size=projection,
                           dtype=torch.float64)
    pieces = o.rnn_parameters(flat, "lstm", layers, 1 + bidirectional, features, hidden, projection)
    with torch.no_grad():
        for (layer, direction, kind), piece in pieces.items():
            getattr(module, f"{NAMES[kind]}_l{layer}{'_reverse' if direction else ''}").copy_(torch.from_numpy(piece))
    return module


def _assert_torchs(exe, outputs, heads, values, layers, bidirectional, hidden, projection, lengths=None):
    """The outputs and every gradient of a backward from ``heads`` are those of torch's
    proj_size LSTM with the same weights (over packed sequences of ``lengths``)."""
    steps, _, features = values["data"].shape
    module = _torch_lstm(layers, bidirectional, features, hidden, projection, values["rnn_parameters"])
    data = torch.from_numpy(values["data"]).requires_grad_()
    states = [torch.from_numpy(values[n]).requires_grad_() for n in ("rnn_state", "rnn_state_cell")]
    if lengths is None:
        out, (h, c) = module(data, tuple(states))
    else:
        packed, (h, c) = module(pack_padded_sequence(data, lengths, enforce_sorted=False), tuple(states))
        out, _ = pad_packed_sequence(packed, total_length=steps)
    for got, expected in zip(outputs, (out, h, c)):
        torch.testing.assert_close(got, expected.detach(), rtol=1e-12, atol=1e-12)
    sum((w * torch.from_numpy(head)).sum() for w, head in zip((out, h, c), heads)).backward()
    torch.testing.assert_close(exe.grad_dict["data"], data.grad, rtol=1e-10, atol=1e-12)
    for name, state in zip(("rnn_state", "rnn_state_cell"), states):
        torch.testing.assert_close(exe.grad_dict[name], state.grad, rtol=1e-10, atol=1e-12, msg=name)
    grads = o.rnn_parameters(exe.grad_dict["rnn_parameters"].numpy(), "lstm", layers, 1 + bidirectional, features,
                             hidden, projection)
    assert {kind for _, _, kind in grads} == set(NAMES)
    for (layer, direction, kind), grad in grads.items():
        weight = getattr(module, f"{NAMES[kind]}_l{layer}{'_reverse' if direction else ''}")
        np.testing.assert_allclose(grad, weight.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{layer} {direction} {kind}")


@pytest.mark.parametrize("layers, bidirectional, hidden, projection", [
    (2, True, 6, 4), pytest.param(1, False, 5, 2, marks=pytest.mark.slow)])
def test_values_and_gradients_are_torchs_proj_size(layers, bidirectional, hidden, projection, rng):
    steps, batch, features = 4, 3, 5
    exe = _bind(_net(layers, bidirectional, hidden, projection), (steps, batch, features))
    assert [tuple(a.shape) for a in exe.arg_dict.values()] == [
        (steps, batch, features), (o.rnn_parameter_count("lstm", layers, 1 + bidirectional, features, hidden,
                                                         projection),),
        (layers * (1 + bidirectional), batch, projection), (layers * (1 + bidirectional), batch, hidden)]
    values = _fill(exe, rng)
    outputs = exe.forward(is_train=True)
    assert tuple(outputs[0].shape) == (steps, batch, (1 + bidirectional) * projection)
    heads = [rng.normal(size=tuple(t.shape)) for t in outputs]
    for _ in range(2):  # grad_req='write': the second step writes over the first's gradients
        exe.forward(is_train=True)
        exe.backward([torch.from_numpy(h) for h in heads])

    _assert_torchs(exe, outputs, heads, values, layers, bidirectional, hidden, projection)


@pytest.mark.slow  # 4 s in the interpreter
def test_an_inference_bind_and_a_second_backward_with_add_agree(rng):
    """An inference bind keeps nothing and gives the training bind's values; with
    grad_req='add' a second backward doubles every gradient."""
    shape = (3, 2, 3)
    net = _net(layers=2, bidirectional=False, hidden=4, projection=3)
    exe = _bind(net, shape, grad_req="add")
    values = _fill(exe, rng)
    args = (values["data"], values["rnn_parameters"], values["rnn_state"], values["rnn_state_cell"], "lstm", 2, False)
    expected = o.rnn(*args, projection=3)
    heads = [rng.normal(size=want.shape) for want in expected[:3]]
    for _ in range(2):
        for got, want in zip(exe.forward(is_train=True), expected[:3]):
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
        exe.backward([torch.from_numpy(h) for h in heads])
    grads = o.rnn_grads(*heads, *args, projection=3)
    for name, want in zip(["data", "rnn_parameters", "rnn_state", "rnn_state_cell"], grads):
        np.testing.assert_allclose(exe.grad_dict[name].numpy(), 2 * want, rtol=1e-10, atol=1e-12, err_msg=name)
    inference = net.simple_bind(ts.cpu(), grad_req="null", data=shape, type_dict={"data": torch.float64})
    for name, array in inference.arg_dict.items():
        array[...] = exe.arg_dict[name]
    for got, want in zip(inference.forward(is_train=False), expected[:3]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.slow  # 6 s in the interpreter
def test_dropout_between_projected_layers(rng):
    """p drops the projected output of each layer but the top's, as the layer above reads it."""
    from tritonsym.ops import dropout as dropout_kernels
    from tritonsym.ops._common import run

    layers, p, shape, projection = 2, 0.3, (3, 2, 3), 2
    ts.random.seed(7)
    exe = _bind(_net(layers, True, hidden=4, projection=projection, p=p), shape)
    values = _fill(exe, rng)
    args = (values["data"], values["rnn_parameters"], values["rnn_state"], values["rnn_state_cell"], "lstm", layers,
            True)
    outputs = [t.clone() for t in exe.forward(is_train=True)]
    ones = torch.ones(shape[0], shape[1], 2 * projection, dtype=torch.float64)
    mask = torch.empty_like(ones)
    run(dropout_kernels.plan_dropout(ones, mask, ts.random.device_state("cpu"), p=p, salt=ts.random.salt("rnn/l0")))
    drops = [mask.numpy()]
    expected = o.rnn(*args, drops=drops, projection=projection)
    for got, want in zip(outputs, expected[:3]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    heads = [rng.normal(size=tuple(t.shape)) for t in outputs]
    exe.backward([torch.from_numpy(h) for h in heads])
    grads = o.rnn_grads(*heads, *args, drops=drops, projection=projection)
    for name, want in zip(["data", "rnn_parameters", "rnn_state", "rnn_state_cell"], grads):
        np.testing.assert_allclose(exe.grad_dict[name].numpy(), want, rtol=1e-10, atol=1e-12, err_msg=name)


def test_the_training_bind_keeps_h_before_its_projection():
    """Against the same network without projections, a training bind keeps one more
    (layers x directions, seq, batch, state_size) array: W_r's gradient reads it."""
    shape, hidden = (7, 5, 3), 8
    planned = {}
    for projection in (None, hidden):
        net = S.RNN(S.Variable("data"), state_size=hidden, num_layers=2, mode="lstm", bidirectional=True,
                    projection_size=projection, name="rnn")
        planned[projection] = _bind(net, shape).memory.planned_bytes
    # the projection's weights and their gradient: (hidden, hidden) per layer and direction
    weights = 2 * 4 * hidden * hidden * 8
    assert planned[hidden] - planned[None] >= 4 * 7 * 5 * hidden * 8 + weights


@pytest.mark.parametrize("params, complaint", [
    (dict(mode="gru", projection_size=2), r"projection_size=2 needs mode='lstm' \(it projects the lstm's h\), not "
                                          "mode='gru'"),
    (dict(mode="lstm", projection_size=5), "projection_size=5 must not exceed state_size=4"),
    (dict(mode="lstm", projection_size=0), "projection_size=0 must be positive"),
])
def test_what_a_projection_refuses_names_it(params, complaint):
    with pytest.raises(ParamError, match=f"RNN: {complaint}"):
        S.RNN(S.Variable("data"), state_size=4, num_layers=1, **params)


def test_a_state_of_the_cells_width_is_refused():
    net = S.RNN(S.Variable("data"), S.Variable("w"), S.Variable("h"), S.Variable("c"), state_size=4, num_layers=1,
                mode="lstm", projection_size=2)
    with pytest.raises(ShapeError, match=r"\(RNN\): state is \(1, 2, 4\) but \(1, 2, 2\) is expected"):
        net.infer_shape(data=(3, 2, 5), h=(1, 2, 4))
    with pytest.raises(ShapeError, match=r"\(RNN\): state_cell is \(1, 2, 2\) but \(1, 2, 4\) is expected"):
        net.infer_shape(data=(3, 2, 5), c=(1, 2, 2))
    args, outs, _ = net.infer_shape(c=(1, 3, 4), data=(6, 0, 5))  # the batch from the cell states reaches all
    assert args == [(6, 3, 5), (4 * 4 * (5 + 2 + 2) + 2 * 4,), (1, 3, 2), (1, 3, 4)] and outs == [(6, 3, 2)]


def test_the_fused_rnn_initializer_fills_the_projection_weights():
    net = _net(layers=2, bidirectional=False, hidden=3, projection=2)
    count = o.rnn_parameter_count("lstm", 2, 1, 5, 3, 2)
    flat = torch.full((count,), float("nan"), dtype=torch.float64)
    attrs = net.attr_dict()["rnn_parameters"]
    assert '"projection_size": 2' in attrs["__init__"]
    ts.init.Constant(0.5)("rnn_parameters", flat, attrs)
    for (layer, direction, kind), piece in o.rnn_parameters(flat.numpy(), "lstm", 2, 1, 5, 3, 2).items():
        if kind.startswith("w"):
            assert (piece == 0.5).all(), (layer, kind)
        else:
            assert piece.tolist() == [0.0] * 3 + [1.0] * 3 + [0.0] * 6, (layer, kind)
    one_layer = torch.zeros(o.rnn_parameter_count("lstm", 1, 1, 5, 3, 2), dtype=torch.float64)  # 114 numbers
    without = ts.init.FusedRNN(ts.init.Xavier(), 3, 1, "lstm")
    with pytest.raises(ParamError, match="FusedRNN: 'w' holds 114 numbers, which no input size gives 1 lstm layers "
                                         "of 3$"):
        without("w", one_layer, {"__init__": without.dumps()})
    projected = ts.init.FusedRNN(ts.init.Xavier(), 3, 1, "lstm", projection_size=2)
    projected("w", one_layer, {"__init__": projected.dumps()})
    assert np.abs(o.rnn_parameters(one_layer.numpy(), "lstm", 1, 1, 5, 3, 2)[0, 0, "wr"]).min() > 0
    assert "projection_size" not in without.dumps()  # what it wrote before projections stays as it was


@pytest.mark.parametrize("layers, bidirectional", [(2, True), pytest.param(1, False, marks=pytest.mark.slow)])
def test_sequences_of_their_own_lengths_are_torchs_packed_proj_size(layers, bidirectional, rng):
    """With use_sequence_length, a sequence that has ended keeps its projected state: the
    values and every gradient are torch's packed sequences through its proj_size LSTM, and
    an inference bind (its h before the projection step by step in two buffers) agrees."""
    steps, batch, features, hidden, projection = 5, 4, 3, 6, 4
    lengths = [5, 2, 1, 3]  # unsorted (enforce_sorted=False); a list: torch wants them on the host
    net = S.RNN(S.Variable("data"), state_size=hidden, num_layers=layers, mode="lstm", bidirectional=bidirectional,
                state_outputs=True, projection_size=projection, use_sequence_length=True, name="rnn")
    exe = net.simple_bind(ts.cpu(), data=(steps, batch, features),
                          type_dict={"data": torch.float64, "rnn_sequence_length": torch.int32})
    values = {}
    for name, array in exe.arg_dict.items():
        if name == "rnn_sequence_length":
            array[...] = torch.tensor(lengths, dtype=torch.int32)
            continue
        values[name] = rng.normal(scale=0.4 if name == "rnn_parameters" else 1.0, size=tuple(array.shape))
        array[...] = torch.from_numpy(values[name])
    outputs = exe.forward(is_train=True)
    heads = [rng.normal(size=tuple(t.shape)) for t in outputs]
    exe.backward([torch.from_numpy(h) for h in heads])

    _assert_torchs(exe, outputs, heads, values, layers, bidirectional, hidden, projection, lengths)
    # the oracle agrees too (it is what the operator cases check in every dtype)
    expected = o.rnn(values["data"], values["rnn_parameters"], values["rnn_state"], values["rnn_state_cell"], "lstm",
                     layers, bidirectional, lengths=np.array(lengths, np.float64), projection=projection)
    for got, want in zip(outputs, expected[:3]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    inference = net.simple_bind(ts.cpu(), grad_req="null", data=(steps, batch, features),
                                type_dict={"data": torch.float64, "rnn_sequence_length": torch.int32})
    for name, array in inference.arg_dict.items():
        array[...] = exe.arg_dict[name]
    for got, want in zip(inference.forward(is_train=False), expected[:3]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
