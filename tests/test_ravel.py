"""ravel_multi_index and unravel_index beyond their operator cases: a round trip through
the largest indices float32 holds exactly, NaN for every coordinate or index that is not a
whole number inside the shape (inf and NaN included) and only there, and the refusals of
a dtype too narrow for the shape and of data of the wrong shape."""

from __future__ import annotations

import json

import numpy as np
import oracles as o
import pytest
import torch

import tritonsym as ts
from tritonsym.base import DTypeError, ParamError, ShapeError

S = ts.sym
SHAPE = (256, 256, 255)  # 16711680 positions: every index below 2**24, exact in float32


def _run(net, **data):
    exe = net.simple_bind(ts.cpu(), grad_req="null", **{k: tuple(v.shape) for k, v in data.items()})
    exe.forward(**data)
    return exe.outputs[0]


def test_the_largest_float32_indices_round_trip(rng):
    flat = torch.tensor([0, 1, 254, 255, 65279, 65280, 16711679, 16711678, *rng.integers(0, 16711680, 8)],
                        dtype=torch.float32)
    coords = _run(S.unravel_index(S.Variable("data"), shape=SHAPE), data=flat)
    np.testing.assert_array_equal(coords.numpy(), np.stack(np.unravel_index(flat.numpy().astype(np.int64), SHAPE)))
    back = _run(S.ravel_multi_index(S.Variable("data"), shape=SHAPE), data=coords)
    np.testing.assert_array_equal(back.numpy(), flat.numpy())


def test_what_is_not_a_whole_number_inside_the_shape_gives_nan_there_only():
    bad = [float("nan"), float("inf"), float("-inf"), -1.0, 0.5, 7.0]
    coords = torch.tensor([[1.0] * 6 + [2.0], bad + [3.0]])  # the second axis of shape (3, 7)
    got = _run(S.ravel_multi_index(S.Variable("data"), shape=(3, 7)), data=coords).numpy()
    np.testing.assert_array_equal(got, o.ravel_multi_index(coords.double().numpy(), (3, 7)))
    assert np.isnan(got[:6]).all() and got[6] == 17.0
    flat = torch.tensor(bad[:5] + [21.0, 20.0])
    got = _run(S.unravel_index(S.Variable("data"), shape=(3, 7)), data=flat).numpy()
    assert np.isnan(got[:, :6]).all() and got[:, 6].tolist() == [2.0, 6.0]


def test_refusals_name_the_values():
    with pytest.raises(DTypeError, match=r"shape=\(30, 10\) has 300 positions, but bfloat16 holds whole numbers "
                                         r"exactly only up to 256"):
        S.ravel_multi_index(S.Variable("data"), shape=(30, 10)).infer_type(data="bfloat16")
    with pytest.raises(DTypeError, match="float16 holds whole numbers exactly only up to 2048"):
        S.unravel_index(S.Variable("data"), shape=(50, 50)).infer_type(data="float16")
    with pytest.raises(ShapeError, match=r"data of shape \(3, 4\) must hold 2 coordinates"):
        S.ravel_multi_index(S.Variable("data"), shape=(7, 6)).infer_shape(data=(3, 4))
    with pytest.raises(ParamError, match="shape"):
        S.unravel_index(S.Variable("data"), shape=(3, 0))


def test_mxnet_json_names_them_with_an_underscore():
    # MXNet registers _ravel_multi_index and _unravel_index, the plain names aliases: its JSON holds those
    nodes = [{"op": "null", "name": "a", "inputs": []},
             {"op": "_ravel_multi_index", "name": "r", "attrs": {"shape": "(2, 3)"}, "inputs": [[0, 0, 0]]},
             {"op": "_unravel_index", "name": "u", "attrs": {"shape": "(2, 3)"}, "inputs": [[1, 0, 0]]}]
    text = json.dumps({"nodes": nodes, "arg_nodes": [0], "node_row_ptr": [0, 1, 2, 3], "heads": [[2, 0, 0]],
                       "attrs": {"mxnet_version": ["int", 10901]}})
    net = ts.sym.load_json(text)
    exe = net.simple_bind(ts.cpu(), a=(2, 4), grad_req="null")
    coords = torch.tensor([[0.0, 1, 1, 0], [2, 0, 1, 1]])
    exe.forward(is_train=False, a=coords)
    assert torch.equal(exe.outputs[0], coords)
