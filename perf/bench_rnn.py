"""A recurrent stack's training step (forward and backward; no update) on the GPU: tritonsym's
fused RNN operator (``ts.rnn.FusedRNNCell``, bound once, the step one CUDA-graph replay)
against the same step of ``torch.nn.LSTM`` / ``torch.nn.GRU`` (cuDNN's fused RNN) in eager
PyTorch, and against tritonsym's own step-by-step cells (``FusedRNNCell.unfuse()``: the
unrolled LSTMCell graph); with each side's peak memory. Then the same step over sequences of
their own lengths (drawn from seq / 2 to seq): the RNN operator's ``use_sequence_length``
against torch's packed sequences (``pack_padded_sequence``, cuDNN's padded-sequence path);
and, for lstm, the step with projections (``projection_size`` = hidden / 2) against
torch's ``proj_size`` LSTM.

No issue sets a target. cuDNN runs a layer's recurrence as one persistent kernel where it
fits; tritonsym launches two kernels a step (the hidden projection and the cell), so at
small batches the step is latency-bound and the graph replay is what keeps it near cuDNN.

Run: python perf/bench_rnn.py [--shapes 64x64x512x512x2,...] [--modes lstm,gru] [--dtypes bfloat16,float32]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from bench_mlp import peak_bytes
from common import DEVICE, ON_GPU, Table, environment, ratio, time_ms
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import tritonsym as ts
from tritonsym import fused_rnn_layout as layout

S = ts.sym
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
MIB = 2 ** 20


def _ours(mode: str, fused: bool, shape, dtype, flat: np.ndarray, x: torch.Tensor, head: torch.Tensor):
    """A bound step of the fused stack (or its unfused cells), its weights ``flat``
    (unpacked into the cells' weights for the unfused one)."""
    seq, batch, features, hidden, layers = shape
    cell = ts.rnn.FusedRNNCell(hidden, num_layers=layers, mode=mode, prefix=f"{mode}_")
    net = cell.unroll(seq, S.Variable("data"), layout="TNC", merge_outputs=True)[0] if fused else \
        cell.unfuse().unroll(seq, S.Variable("data"), layout="TNC", merge_outputs=True)[0]
    ctx = ts.gpu(0) if ON_GPU else ts.cpu()
    exe = net.simple_bind(ctx, type_dict={"data": dtype}, cuda_graph=ON_GPU,
                          grad_req={n: "null" if n == "data" else "write" for n in net.list_arguments()},
                          data=(seq, batch, features))
    weights = {f"{mode}_parameters": torch.from_numpy(flat)}
    if not fused:
        weights = cell.unfuse().pack_weights(cell.unpack_weights(weights))
    exe.copy_params_from({**{k: v.numpy() for k, v in weights.items()}, "data": x.float().cpu().numpy()})
    return lambda: exe.forward_backward([head])


def _ours_lengths(mode: str, shape, dtype, flat: np.ndarray, x: torch.Tensor, head: torch.Tensor,
                  lengths: torch.Tensor):
    """A bound step of the RNN operator with ``use_sequence_length`` (zero initial states)."""
    seq, batch, features, hidden, layers = shape
    states = [S.zeros((layers, 0, hidden))] * (2 if mode == "lstm" else 1)
    net = S.RNN(S.Variable("data"), S.Variable(f"{mode}_parameters"), *states, S.Variable("length"),
                state_size=hidden, num_layers=layers, mode=mode, use_sequence_length=True, name=mode)
    ctx = ts.gpu(0) if ON_GPU else ts.cpu()
    exe = net.simple_bind(ctx, type_dict={"data": dtype, "length": torch.int32}, cuda_graph=ON_GPU,
                          grad_req={n: "write" if n.endswith("parameters") else "null" for n in net.list_arguments()},
                          data=(seq, batch, features))
    exe.copy_params_from({f"{mode}_parameters": flat, "data": x.float().cpu().numpy(),
                          "length": lengths.cpu().numpy().astype(np.int32)})
    return lambda: exe.forward_backward([head])


def _ours_projected(shape, dtype, flat: np.ndarray, x: torch.Tensor, head: torch.Tensor, projection: int):
    """A bound step of the RNN operator as an LSTM with projections (zero initial states)."""
    seq, batch, features, hidden, layers = shape
    states = [S.zeros((layers, 0, projection)), S.zeros((layers, 0, hidden))]
    net = S.RNN(S.Variable("data"), S.Variable("lstm_parameters"), *states, state_size=hidden, num_layers=layers,
                mode="lstm", projection_size=projection, name="lstm")
    ctx = ts.gpu(0) if ON_GPU else ts.cpu()
    exe = net.simple_bind(ctx, type_dict={"data": dtype}, cuda_graph=ON_GPU,
                          grad_req={n: "write" if n.endswith("parameters") else "null" for n in net.list_arguments()},
                          data=(seq, batch, features))
    exe.copy_params_from({"lstm_parameters": flat, "data": x.float().cpu().numpy()})
    return lambda: exe.forward_backward([head])


def _torch(mode: str, shape, dtype, flat: np.ndarray, x: torch.Tensor, head: torch.Tensor,
           lengths: torch.Tensor | None = None, projection: int | None = None):
    """The same step through torch.nn.LSTM / GRU, its weights copied from ``flat``; with
    ``lengths``, over packed sequences (the output padded back for the head); with
    ``projection``, an LSTM of that ``proj_size``."""
    seq, batch, features, hidden, layers = shape
    options = {"proj_size": projection} if projection else {}
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[mode](features, hidden, layers, **options).to(DEVICE, dtype)
    pieces = layout.parameter_pieces(mode, layers, 1, features, hidden, projection)
    at, values = 0, {}
    for layer, _, kind, piece_shape in pieces:
        size = int(np.prod(piece_shape))
        values[layer, kind] = flat[at:at + size].reshape(piece_shape)
        at += size
    names = {"wx": "weight_ih", "wh": "weight_hh", "wr": "weight_hr", "bx": "bias_ih", "bh": "bias_hh"}
    with torch.no_grad():
        for (layer, kind), value in values.items():
            getattr(module, f"{names[kind]}_l{layer}").copy_(torch.from_numpy(value))

    def step():
        if lengths is None:
            out, _ = module(x)
        else:  # the lengths stay on the host, as pack_padded_sequence wants them
            packed, _ = module(pack_padded_sequence(x, lengths, enforce_sorted=False))
            out, _ = pad_packed_sequence(packed, total_length=x.shape[0])
        torch.autograd.backward(out, head)

    return step


def measure(mode: str, shape, name: str, rng) -> dict:
    dtype = DTYPES[name]
    seq, batch, features, hidden, layers = shape
    count = layout.parameter_count(mode, layers, 1, features, hidden)
    flat = rng.uniform(-hidden ** -0.5, hidden ** -0.5, count)
    x = torch.from_numpy(rng.normal(size=(seq, batch, features))).to(DEVICE, dtype)
    head = torch.from_numpy(rng.normal(size=(seq, batch, hidden))).to(DEVICE, dtype)

    def ready(make):
        step = make()
        step()
        return step

    fused = ready(lambda: _ours(mode, True, shape, dtype, flat, x, head))
    unfused = ready(lambda: _ours(mode, False, shape, dtype, flat, x, head))
    eager = ready(lambda: _torch(mode, shape, dtype, flat, x, head))
    lengths = torch.from_numpy(rng.integers(max(1, seq // 2), seq + 1, batch))
    masked = ready(lambda: _ours_lengths(mode, shape, dtype, flat, x, head, lengths))
    packed = ready(lambda: _torch(mode, shape, dtype, flat, x, head, lengths))
    t = {"fused": time_ms(fused), "unfused": time_ms(unfused), "torch": time_ms(eager), "lengths": time_ms(masked),
         "packed": time_ms(packed)}
    projected = {}
    if mode == "lstm":
        projection = max(1, hidden // 2)
        flat_p = rng.uniform(-hidden ** -0.5, hidden ** -0.5,
                             layout.parameter_count(mode, layers, 1, features, hidden, projection))
        head_p = head[..., :projection].contiguous()
        projected = {"ours": time_ms(ready(lambda: _ours_projected(shape, dtype, flat_p, x, head_p, projection))),
                     "torch": time_ms(ready(lambda: _torch(mode, shape, dtype, flat_p, x, head_p,
                                                           projection=projection)))}
    peaks = {"fused": peak_bytes(lambda: ready(lambda: _ours(mode, True, shape, dtype, flat, x, head))),
             "torch": peak_bytes(lambda: ready(lambda: _torch(mode, shape, dtype, flat, x, head)))}
    return {"mode": mode, "dtype": name, "shape": "x".join(map(str, shape)), "fused ms": f"{t['fused']:.3f}",
            "vs torch (cuDNN)": ratio(t["fused"], t["torch"]), "vs unfused cells": ratio(t["fused"], t["unfused"]),
            "torch ms": f"{t['torch']:.3f}", "unfused ms": f"{t['unfused']:.3f}",
            **{f"{k} peak MiB": "" if v is None else f"{v / MIB:.1f}" for k, v in peaks.items()},
            "lengths ms": f"{t['lengths']:.3f}", "vs torch packed": ratio(t["lengths"], t["packed"]),
            "torch packed ms": f"{t['packed']:.3f}",
            "projected ms": f"{projected['ours']:.3f}" if projected else "",
            "vs torch proj_size": ratio(projected["ours"], projected["torch"]) if projected else "",
            "torch proj_size ms": f"{projected['torch']:.3f}" if projected else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="64x64x512x512x2,32x16x256x256x1" if ON_GPU else "4x2x6x5x2",
                        help="seq x batch x features x hidden x layers, comma-separated")
    parser.add_argument("--modes", default="lstm,gru")
    parser.add_argument("--dtypes", default="bfloat16,float32")
    args = parser.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    names = [d for d in args.dtypes.split(",") if d]
    notes = ("One training step without the update: forward, then backward from a given head gradient, every "
             "weight's gradient written. `fused`: ts.rnn.FusedRNNCell's RNN operator bound once (a CUDA-graph "
             "replay on a GPU); `unfused`: the same network from FusedRNNCell.unfuse()'s cells; `torch`: "
             "torch.nn.LSTM / GRU in eager PyTorch (cuDNN on a GPU), the same weights. Peak MiB: "
             "torch.cuda.max_memory_allocated over each side's bind (or module) and first step from an empty start. "
             "`lengths`: the fused step with use_sequence_length (lengths drawn from seq / 2 to seq, int32); "
             "`torch packed`: the same lengths through pack_padded_sequence and pad_packed_sequence. "
             "`projected` (lstm): the RNN operator with projection_size = hidden / 2; `torch proj_size`: "
             "torch.nn.LSTM(proj_size=hidden / 2), the same weights.")
    table = Table("rnn", len(shapes) * len(modes) * len(names), notes)
    rng = np.random.default_rng(0)
    for name in names:  # bfloat16 first: the rows that matter most if a run is cut short
        for shape in shapes:
            for mode in modes:
                table.add(measure(mode, shape, name, rng))
    print(f"{environment()}\nwrote {table.path}")


if __name__ == "__main__":
    main()
