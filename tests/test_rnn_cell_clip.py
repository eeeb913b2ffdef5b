"""cuDNN's cell clipping in the fused RNN (``lstm_state_clip_min`` / ``lstm_state_clip_max``):
values and every gradient against torch autograd of the same recurrence written out with
``clamp`` (torch's LSTM has no clipping, MXNet 1.9.1's CPU refuses it), with projections and
lengths too, and what it refuses. (Against the float64 oracle in every dtype, with finite
differences: operator_cases.py.)"""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch

import tritonsym as ts
from tritonsym.base import ParamError

S = ts.sym


def _torch_lstm_clipped(data, flat, h0, c0, layers, hidden, clip, projection=None, lengths=None):
    """Autograd's reference: a one-direction LSTM stack stepped by hand, c' clamped; with
    ``lengths``, a finished row keeps its states (its output 0)."""
    where = o.rnn_parameters(np.arange(flat.numel()), "lstm", layers, 1, data.shape[-1], hidden, projection)
    pieces = {key: flat[torch.from_numpy(index)] for key, index in where.items()}  # the oracle's cut, autograd's
    steps, batch = data.shape[:2]
    live = torch.ones(steps, batch, 1, dtype=torch.bool) if lengths is None else \
        (torch.arange(steps)[:, None] < torch.tensor(lengths)[None, :])[..., None]
    x, last_h, last_c, clipped = data, [], [], 0
    for layer in range(layers):
        w = {kind: pieces[layer, 0, kind] for kind in ("wx", "wh", "wr", "bx", "bh") if (layer, 0, kind) in pieces}
        h, c, outs = h0[layer], c0[layer], []
        for t in range(steps):
            gates = x[t] @ w["wx"].T + w["bx"] + h @ w["wh"].T + w["bh"]
            i, f, g, out_gate = gates.chunk(4, dim=-1)
            unclipped = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            clipped += int(((unclipped < clip[0]) | (unclipped > clip[1]))[live[t].expand_as(unclipped)].sum())
            c_new = unclipped.clamp(*clip)
            h_new = torch.sigmoid(out_gate) * torch.tanh(c_new)
            if projection:
                h_new = h_new @ w["wr"].T
            h, c = torch.where(live[t], h_new, h), torch.where(live[t], c_new, c)
            outs.append(torch.where(live[t], h, torch.zeros_like(h)))
        last_h.append(h)
        last_c.append(c)
        x = torch.stack(outs)
    return x, torch.stack(last_h), torch.stack(last_c), clipped


@pytest.mark.parametrize("projection, lengths", [(None, None), (3, [4, 1, 3])])
def test_values_and_gradients_are_autograds_of_the_clamped_recurrence(projection, lengths, rng):
    steps, batch, features, hidden, layers, clip = 4, 3, 5, 6, 2, (-0.25, 0.3)
    extra = {} if lengths is None else dict(sequence_length=S.Variable("lengths"), use_sequence_length=True)
    net = S.RNN(S.Variable("data"), S.Variable("w"), S.Variable("h0"), S.Variable("c0"), state_size=hidden,
                num_layers=layers, mode="lstm", state_outputs=True, projection_size=projection,
                lstm_state_clip_min=clip[0], lstm_state_clip_max=clip[1], name="rnn", **extra)
    exe = net.simple_bind(ts.cpu(), data=(steps, batch, features),
                          type_dict={"data": torch.float64, **({} if lengths is None else {"lengths": torch.int32})},
                          grad_req={n: "null" if n == "lengths" else "write" for n in net.list_arguments()})
    values = {}
    for name, array in exe.arg_dict.items():
        if name == "lengths":
            array[...] = torch.tensor(lengths, dtype=torch.int32)
            continue
        values[name] = rng.normal(scale=0.5 if name == "w" else 1.0, size=tuple(array.shape))
        array[...] = torch.from_numpy(values[name])
    outputs = exe.forward(is_train=True)
    heads = [rng.normal(size=tuple(t.shape)) for t in outputs]
    exe.backward([torch.from_numpy(h) for h in heads])

    inputs = {name: torch.from_numpy(v).requires_grad_() for name, v in values.items()}
    *expected, clipped = _torch_lstm_clipped(inputs["data"], inputs["w"], inputs["h0"], inputs["c0"], layers, hidden,
                                             clip, projection, lengths)
    assert clipped > steps * batch * hidden // 4, clipped  # the bounds hold many cell states
    for got, want in zip(outputs, expected):
        torch.testing.assert_close(got, want.detach(), rtol=1e-12, atol=1e-12)
    sum((w * torch.from_numpy(head)).sum() for w, head in zip(expected, heads)).backward()
    for name in ("data", "w", "h0", "c0"):
        torch.testing.assert_close(exe.grad_dict[name], inputs[name].grad, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("params, complaint", [
    (dict(lstm_state_clip_min=-1.0), "lstm_state_clip_min=-1.0 and lstm_state_clip_max=None must be given together"),
    (dict(lstm_state_clip_max=1.0), "lstm_state_clip_min=None and lstm_state_clip_max=1.0 must be given together"),
    (dict(lstm_state_clip_min=1.0, lstm_state_clip_max=-1.0),
     "lstm_state_clip_min=1.0 must not exceed lstm_state_clip_max=-1.0"),
    (dict(mode="gru", lstm_state_clip_min=-1.0, lstm_state_clip_max=1.0),
     "lstm_state_clip_min=-1.0 clips an lstm's cell state; mode='gru' has none")])
def test_what_clipping_refuses_names_it(params, complaint):
    with pytest.raises(ParamError, match=f"RNN: {complaint}"):
        S.RNN(S.Variable("data"), state_size=4, num_layers=1, **{"mode": "lstm", **params})


def test_a_nan_cell_state_stays_nan_through_the_clip(rng):
    """A NaN fails both of the clip's tests: it is not clipped to a bound (cuDNN's
    lstm_state_clip_nan, refused by name, would)."""
    net = S.RNN(S.Variable("data"), state_size=3, num_layers=1, mode="lstm", state_outputs=True,
                lstm_state_clip_min=-0.5, lstm_state_clip_max=0.5, name="rnn")
    exe = net.simple_bind(ts.cpu(), data=(2, 2, 2), grad_req="null", type_dict={"data": torch.float64})
    for name, array in exe.arg_dict.items():
        array[...] = torch.from_numpy(rng.normal(size=tuple(array.shape)))
    exe.arg_dict["rnn_state_cell"][0, 1, 0] = float("nan")
    _, _, cells = exe.forward(is_train=False)
    assert np.isnan(cells[0, 1, 0].item()) and not np.isnan(cells[0, 0].numpy()).any()
    assert (cells[0, 0].abs() <= 0.5).all()
