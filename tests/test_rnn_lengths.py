"""The fused RNN's ``use_sequence_length``: each sequence runs over its own first steps, as
cuDNN's padded sequences (MXNet's GPU RNN; its CPU one refuses the option) and torch's
packed sequences run. Checked against torch's packed LSTM, GRU and tanh RNN (values and
every gradient), against the float64 oracle in a training and an inference bind, and on
what a wrong length or unread padding does. (Every dtype and finite differences: the
``RNN_*_lengths*`` operator cases.)"""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import tritonsym as ts
from tritonsym.base import TritonSymError

S = ts.sym


def _net(mode, layers=1, bidirectional=False, hidden=4, p=0.0):
    return S.RNN(S.Variable("data"), state_size=hidden, num_layers=layers, mode=mode, bidirectional=bidirectional,
                 state_outputs=True, use_sequence_length=True, p=p, name="rnn")


def _bind(net, shape, grad_req="write", lengths_dtype=torch.float64):
    return net.simple_bind(ts.cpu(), grad_req=grad_req, data=shape,
                           type_dict={"data": torch.float64, "rnn_sequence_length": lengths_dtype})


def _fill(exe, rng, lengths):
    values = {}
    for name, array in exe.arg_dict.items():
        if name == "rnn_sequence_length":
            values[name] = np.asarray(lengths, np.float64)
            array[...] = torch.tensor(lengths, dtype=array.dtype)
            continue
        values[name] = rng.normal(scale=0.4 if name == "rnn_parameters" else 1.0, size=tuple(array.shape))
        array[...] = torch.from_numpy(values[name])
    return values


def _torch_rnn(mode, layers, bidirectional, features, hidden, flat):
    """torch's recurrent module of the mode with the flat parameters cut into its weights
    (the gates in the same order: cuDNN's)."""
    kinds = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}
    module = kinds[mode](features, hidden, num_layers=layers, bidirectional=bidirectional, dtype=torch.float64)
    pieces = o.rnn_parameters(flat, mode, layers, 1 + bidirectional, features, hidden)
    names = {"wx": "weight_ih", "wh": "weight_hh", "bx": "bias_ih", "bh": "bias_hh"}
    with torch.no_grad():
        for (layer, direction, kind), piece in pieces.items():
            getattr(module, f"{names[kind]}_l{layer}{'_reverse' if direction else ''}").copy_(torch.from_numpy(piece))
    return module


@pytest.mark.parametrize("mode, layers, bidirectional", [
    ("lstm", 2, True), ("gru", 1, True), pytest.param("rnn_tanh", 2, False, marks=pytest.mark.slow)])
def test_values_and_gradients_are_torchs_packed_sequences(mode, layers, bidirectional, rng):
    steps, batch, features, hidden = 5, 4, 3, 4
    lengths = [5, 2, 1, 3]  # unsorted (enforce_sorted=False); a list: torch wants them on the host
    exe = _bind(_net(mode, layers, bidirectional, hidden), (steps, batch, features))
    values = _fill(exe, rng, lengths)
    outputs = exe.forward(is_train=True)
    heads = [rng.normal(size=tuple(t.shape)) for t in outputs]
    exe.backward([torch.from_numpy(h) for h in heads])

    module = _torch_rnn(mode, layers, bidirectional, features, hidden, values["rnn_parameters"])
    data = torch.from_numpy(values["data"]).requires_grad_()
    states = [torch.from_numpy(values[n]).requires_grad_() for n in ("rnn_state", "rnn_state_cell") if n in values]
    packed, last = module(pack_padded_sequence(data, lengths, enforce_sorted=False),
                          tuple(states) if mode == "lstm" else states[0])
    out, _ = pad_packed_sequence(packed, total_length=steps)
    want = [out, *(last if mode == "lstm" else [last])]
    for got, expected in zip(outputs, want):
        torch.testing.assert_close(got, expected.detach(), rtol=1e-12, atol=1e-12)
    sum(float(0) + (w * torch.from_numpy(h)).sum() for w, h in zip(want, heads)).backward()
    torch.testing.assert_close(exe.grad_dict["data"], data.grad, rtol=1e-10, atol=1e-12)
    for name, state in zip(("rnn_state", "rnn_state_cell"), states):
        torch.testing.assert_close(exe.grad_dict[name], state.grad, rtol=1e-10, atol=1e-12, msg=name)
    names = {"wx": "weight_ih", "wh": "weight_hh", "bx": "bias_ih", "bh": "bias_hh"}
    grads = o.rnn_parameters(exe.grad_dict["rnn_parameters"].numpy(), mode, layers, 1 + bidirectional, features,
                             hidden)
    for (layer, direction, kind), grad in grads.items():
        weight = getattr(module, f"{names[kind]}_l{layer}{'_reverse' if direction else ''}")
        np.testing.assert_allclose(grad, weight.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{layer} {direction} {kind}")


@pytest.mark.parametrize("lengths_dtype", [torch.int32, pytest.param(torch.float32, marks=pytest.mark.slow)])
def test_a_length_of_zero_keeps_the_initial_states_and_an_inference_bind_agrees(lengths_dtype, rng):
    """torch's packed sequences refuse a length of 0; here such a sequence outputs zeros
    and its last states are its initial ones, the state heads' gradients passing straight
    back to them. An inference bind (no kept output) gives the training bind's values."""
    mode, layers, steps, lengths = "lstm", 2, 4, [0, 4, 3]
    net = _net(mode, layers, bidirectional=True)
    exe = _bind(net, (steps, 3, 2), lengths_dtype=lengths_dtype)
    values = _fill(exe, rng, lengths)
    args = (values["data"], values["rnn_parameters"], values["rnn_state"], values["rnn_state_cell"], mode, layers,
            True)
    expected = o.rnn(*args, lengths=values["rnn_sequence_length"])
    training = exe.forward(is_train=True)
    for got, want in zip(training, expected[:3]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    assert (training[0][:, 0] == 0).all()
    np.testing.assert_array_equal(training[1][:, 0].numpy(), values["rnn_state"][:, 0])
    heads = [rng.normal(size=tuple(t.shape)) for t in training]
    exe.backward([torch.from_numpy(h) for h in heads])
    grads = o.rnn_grads(*heads, *args, lengths=values["rnn_sequence_length"])
    for name, want in zip(["data", "rnn_parameters", "rnn_state", "rnn_state_cell"], grads):
        np.testing.assert_allclose(exe.grad_dict[name].numpy(), want, rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(exe.grad_dict["rnn_state"][:, 0].numpy(), heads[1][:, 0])
    assert (exe.grad_dict["data"][:, 0] == 0).all()
    inference = net.simple_bind(ts.cpu(), grad_req="null", data=(steps, 3, 2),
                                type_dict={"data": torch.float64, "rnn_sequence_length": lengths_dtype})
    for name, array in inference.arg_dict.items():
        array[...] = exe.arg_dict[name]
    for got, want in zip(inference.forward(is_train=False), expected[:3]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


def test_the_padding_is_not_read_and_a_wrong_length_makes_its_sequence_nan(rng):
    """NaN padding past every length changes no output; lengths of 2.5, -1, 6 (past 5
    steps) and NaN make their own sequences' outputs, last states and data gradients NaN
    (and so the parameters'), the sequence of a right length keeping its values."""
    exe = _bind(_net("gru", bidirectional=True), (5, 5, 3), grad_req={"data": "write", "rnn_parameters": "write",
                                                                       "rnn_state": "write",
                                                                       "rnn_sequence_length": "null"})
    values = _fill(exe, rng, [3, 2.5, -1, 6, float("nan")])
    exe.arg_dict["data"][3:, 0] = float("nan")  # past the first sequence's length
    outputs = exe.forward(is_train=True)
    ok = o.rnn(values["data"][:, :1], values["rnn_parameters"], values["rnn_state"][:, :1], None, "gru", 1, True,
               lengths=[3])
    np.testing.assert_allclose(outputs[0][:, :1].numpy(), ok[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(outputs[1][:, :1].numpy(), ok[1], rtol=1e-12, atol=1e-12)
    assert outputs[0][:, 1:].isnan().all() and outputs[1][:, 1:].isnan().all()
    exe.backward([torch.ones_like(t) for t in outputs])
    assert exe.grad_dict["data"][:, 1:].isnan().all() and exe.grad_dict["rnn_state"][:, 1:].isnan().all()
    assert exe.grad_dict["rnn_parameters"].isnan().all()
    assert exe.grad_dict["rnn_state"][:, 0].isfinite().all()


def test_the_input_and_its_shape_are_mxnets():
    net = _net("gru", layers=2)
    assert net.list_arguments() == ["data", "rnn_parameters", "rnn_state", "rnn_sequence_length"]
    arg_shapes, out_shapes, _ = net.infer_shape(data=(6, 3, 2))
    assert arg_shapes[-1] == (3,) and out_shapes == [(6, 3, 4), (2, 3, 4)]
    lstm = S.RNN(S.Variable("data"), S.Variable("p"), S.Variable("h"), S.Variable("c"), S.Variable("n"),
                 state_size=2, num_layers=1, mode="lstm", use_sequence_length=True)
    assert lstm.list_arguments() == ["data", "p", "h", "c", "n"]
    with pytest.raises(TritonSymError, match=r"sequence_length"):
        net.infer_shape(data=(6, 3, 2), rnn_sequence_length=(4,))


def _last_token_task(rng, batch, steps):
    """Sequences of 1 to ``steps`` one-hot tokens padded with random tokens: (data (batch,
    time, 3), lengths, the last real token)."""
    lengths = rng.integers(1, steps + 1, batch)
    tokens = rng.integers(0, 3, (batch, steps))
    return np.eye(3, dtype=np.float32)[tokens], lengths.astype(np.float32), tokens[np.arange(batch), lengths - 1]


@pytest.mark.slow  # 50 s in the interpreter
def test_a_masked_lstm_learns_the_last_token_of_sequences_of_any_length():
    """Module.fit on sequences of 1 to 5 steps padded with random tokens to 5: the class is
    the last real token, read from the last hidden state, so the network must stop at each
    sequence's length; it does on sequences it has not seen."""
    ts.random.seed(0)
    rng = np.random.default_rng(0)
    inputs = [S.transpose(S.Variable("data"), axes=(1, 0, 2)), S.Variable("lstm_parameters"), S.zeros((1, 0, 8)),
              S.zeros((1, 0, 8)), S.Variable("length")]
    rnn = S.RNN(*inputs, state_size=8, num_layers=1, mode="lstm", state_outputs=True, use_sequence_length=True,
                name="lstm")
    net = S.SoftmaxOutput(S.FullyConnected(S.Reshape(rnn[1], shape=(-1, 8)), num_hidden=3, name="pred"),
                          name="softmax")

    def batches(count):
        data, lengths, label = _last_token_task(rng, count, 5)
        return ts.io.NDArrayIter({"data": data, "length": lengths}, label.astype(np.float32), batch_size=32,
                                 label_name="softmax_label")

    mod = ts.mod.Module(net, data_names=["data", "length"])
    mod.fit(batches(96), num_epoch=15, optimizer="adam", optimizer_params={"learning_rate": 0.05},
            initializer=ts.init.Xavier())
    assert mod.score(batches(96), "acc")[0][1] >= 0.95
