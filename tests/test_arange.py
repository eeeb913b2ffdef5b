"""Arrays made from parameters: zeros, ones, full, arange, linspace, eye and
contrib.arange_like. Their dtype follows the graph unless given, integer ramps make
positions, the ramp is rounded once in every dtype, and bad ranges are refused naming the
values. (Values against numpy in every dtype: operator_cases.py; against MXNet: the
recorded fixtures.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tritonsym.ops import arange as kernels

import tritonsym as ts
from tritonsym.base import DTypeError, ShapeError

S = ts.sym


def test_the_dtype_follows_the_graph_unless_given():
    x = S.Variable("x")
    assert (x + S.zeros((2, 3))).infer_type(x="float64")[1] == [torch.float64]
    assert (S.zeros((2, 3)) + x).infer_type(x="bfloat16")[1] == [torch.bfloat16]
    assert S.ones((2,)).infer_type()[1] == [torch.float32]  # nothing decides: float32, as MXNet's
    assert (x * S.arange(3)).infer_type()[0] == [torch.float32]
    assert S.full((2,), 1.5, dtype="float16").infer_type()[1] == [torch.float16]
    with pytest.raises(DTypeError, match=r"_plus\d+ \(elemwise_add\): input 1 dtype is float32 but float64 is "
                                         r"expected"):
        (x + S.zeros((2, 3), dtype=np.float32)).infer_type(x="float64")


def test_integer_positions_feed_an_embedding_and_train():
    positions = S.arange(5, dtype="int32")
    assert positions.infer_type()[1] == [torch.int32]
    net = S.Embedding(positions, input_dim=5, output_dim=3, name="pos") + S.Variable("x")
    exe = net.simple_bind(ts.cpu(), x=(5, 3))
    weight = np.arange(15.0).reshape(5, 3)
    exe.arg_dict["pos_weight"][...] = torch.tensor(weight, dtype=torch.float32)
    out = exe.forward(is_train=True, x=np.zeros((5, 3)))[0].numpy()
    assert np.array_equal(out, weight)  # row i of the table at position i
    exe.backward([torch.ones(5, 3)])
    assert np.array_equal(exe.grad_dict["pos_weight"].numpy(), np.ones((5, 3)))


def test_mxnet_ranges_and_the_refused_ones():
    assert S.arange(5).eval()[0].numpy().tolist() == [0, 1, 2, 3, 4]  # arange(n) is 0 to n
    assert S.arange(5, 1, -1.5).eval()[0].numpy().tolist() == [5.0, 3.5, 2.0]
    assert S.arange(0, 2, 0.5, dtype="int32").eval()[0].numpy().tolist() == [0, 0, 0, 0]  # step made 0, as numpy's
    assert S.linspace(0, 1, 1).eval()[0].numpy().tolist() == [0.0]
    assert S.eye(2, k=-1).eval()[0].numpy().tolist() == [[0, 0], [1, 0]]
    with pytest.raises(ShapeError, match=r"_arange\d+ \(_arange\): start=5, stop=1, step=1 is an empty range"):
        S.arange(5, 1).infer_shape()
    with pytest.raises(ShapeError, match="step=0 makes no range from 0 to 3"):
        S.arange(0, 3, 0).infer_shape()
    with pytest.raises(ShapeError, match="infer_range=True .* is not supported: give stop"):
        S.arange(0, infer_range=True).infer_shape()
    with pytest.raises(ShapeError, match=r"shape=\(\) must have at least one axis"):
        S.zeros(()).infer_shape()
    assert S.zeros((2, 0)).infer_shape_partial()[1] == [(2, 0)]  # 0: a size inference may fill in (test_rnn.py)
    with pytest.raises(ts.base.ParamError, match="_linspace: num=0"):
        S.linspace(0, 1, 0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_a_ramp_is_rounded_once(dtype):
    out = torch.empty(300, dtype=dtype)
    kernels.plan_ramp(out, -3.1, 0.07, repeat=3)[0]()
    exact = torch.tensor(-3.1 + 0.07 * (np.arange(300) // 3), dtype=torch.float64).to(dtype)
    assert torch.equal(out, exact)  # not a running sum: no drift along the ramp


def test_integer_ramps_are_exact_past_int32():
    out = torch.empty(4, dtype=torch.int64)
    kernels.plan_ramp(out, 2 ** 40, 2 ** 33)[0]()
    assert out.tolist() == [2 ** 40 + k * 2 ** 33 for k in range(4)]


def test_json_keeps_the_dtype_only_where_given_and_mxnet_files_load():
    net = S.Group([S.zeros((2, 3)), S.arange(4, dtype="int64")])
    text = net.tojson()
    again = S.load_json(text)
    assert again.infer_type()[1] == [torch.float32, torch.int64]
    assert '"dtype": "int64"' in text and text.count('"dtype"') == 1
    mxnet = ('{"nodes": [{"op": "_arange", "name": "_arange0", "attrs": {"dtype": "float32", "infer_range": "False", '
             '"repeat": "2", "start": "2", "step": "3", "stop": "11"}, "inputs": []}], "arg_nodes": [], '
             '"node_row_ptr": [0, 1], "heads": [[0, 0, 0]], "attrs": {"mxnet_version": ["int", 10901]}}')
    assert S.load_json(mxnet).eval()[0].numpy().tolist() == [2, 2, 5, 5, 8, 8]


def test_contrib_namespace():
    x = S.Variable("x")
    assert {"arange_like", "div_sqrt_dim"} <= set(dir(S.contrib))
    assert S.contrib.arange_like(x, axis=0).infer_shape(x=(3, 2))[1] == [(3,)]
    assert S.contrib.arange_like(x).infer_type(x="float16")[1] == [torch.float16]  # the data's dtype
    with pytest.raises(AttributeError, match="tritonsym.sym.contrib has no operator 'fft'"):
        S.contrib.fft(x)
    with pytest.raises(ShapeError, match=r"axis=2 is out of range for data of shape \(3, 2\)"):
        S.contrib.arange_like(x, axis=2).infer_shape(x=(3, 2))
