"""topk, sort and argsort beyond their generic operator cases: against torch's stable sort
(an implementation independent of ours) on rows longer than one tile, NaN's place, ties in
order in every dtype, k below 1 and above the row, the indices' dtype, gradients added under
grad_req='add', the int32 indices a training bind keeps (and an inference bind does not),
axis=None through JSON, and refusals that name the operator and the values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES
from tritonsym.ops import sort as kernels

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _bind(shape, op="topk", data_dtype=torch.float64, grad_req="write", **params):
    net = getattr(S, op)(S.Variable("data"), **params)
    return net.simple_bind(ts.cpu(), data=shape, type_dict={"data": data_dtype}, grad_req=grad_req)


@pytest.mark.parametrize("shape, axis, k, ascending", [pytest.param((3, 700), -1, 20, False, marks=pytest.mark.slow),
                                                       ((2, 300, 3), 1, 0, True), ((5, 4), 0, 3, True)], ids=str)
def test_equals_torch_stable_sort(shape, axis, k, ascending, rng, monkeypatch):
    monkeypatch.setattr(kernels, "TILE", 1 << 10)  # several tiles per row, several passes over it
    exe = _bind(shape, axis=axis, k=k, is_ascend=ascending, ret_typ="both")
    x = torch.from_numpy(np.round(rng.normal(size=shape) * 4) / 4)  # many ties
    xr = x.clone().requires_grad_()
    values, indices = torch.sort(xr, dim=axis, descending=not ascending, stable=True)
    kept = shape[axis] if k < 1 else k
    values, indices = values.narrow(axis, 0, kept), indices.narrow(axis, 0, kept)
    head = torch.from_numpy(rng.normal(size=values.shape))
    values.backward(head)
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=[head, torch.zeros(values.shape)])
    assert torch.equal(exe.outputs[0], values.detach())
    assert torch.equal(exe.outputs[1], indices.float())
    assert torch.equal(exe.grad_dict["data"], xr.grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_nan_is_larger_than_every_number(dtype):
    x = torch.tensor([[1.0, float("nan"), -float("inf"), 3.0, float("nan"), float("inf")]])
    up = _bind((1, 6), "sort", dtype, grad_req="null")
    up.forward(data=x)
    assert up.outputs[0].float()[0, :4].tolist() == [-float("inf"), 1.0, 3.0, float("inf")]
    assert torch.isnan(up.outputs[0][0, 4:]).all()
    top = _bind((1, 6), data_dtype=dtype, grad_req="null", k=3, ret_typ="both")
    top.forward(data=x)
    assert torch.isnan(top.outputs[0][0, :2]).all() and top.outputs[0][0, 2].item() == float("inf")
    assert top.outputs[1][0].tolist() == [1.0, 4.0, 5.0]  # the NaNs in order, then +inf


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_ties_keep_their_order_and_signed_zeros_tie(dtype):
    exe = _bind((2, 6), "argsort", dtype, grad_req="null", is_ascend=False)
    exe.forward(data=torch.tensor([[0.0, -0.0, 1.0, 0.0, 1.0, -0.0], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]]))
    assert exe.outputs[0].tolist() == [[2.0, 4.0, 0.0, 1.0, 3.0, 5.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]]


def test_k_below_one_keeps_the_whole_row_and_above_it_is_refused():
    for k in (0, -3):
        assert S.topk(S.Variable("data"), k=k, ret_typ="value").infer_shape(data=(2, 5))[1] == [(2, 5)]
    with pytest.raises(ShapeError) as error:
        S.topk(S.Variable("data"), k=6, axis=0).infer_shape(data=(5, 2))
    assert "topk" in str(error.value) and "k=6" in str(error.value) and "(5, 2)" in str(error.value)


def test_the_indices_dtype():
    exe = _bind((2, 9), "argsort", torch.bfloat16, grad_req="null", dtype="float64")
    assert exe.outputs[0].dtype == torch.float64
    with pytest.raises(ParamError) as error:
        S.topk(S.Variable("data"), dtype="int32")
    assert "topk" in str(error.value) and "dtype='int32'" in str(error.value)
    with pytest.raises(Exception, match=r"argsort: an axis of length 3000 has indices float16 cannot hold exactly"):
        _bind((2, 3000), "argsort", grad_req="null", dtype="float16")  # float16 counts exactly only to 2048


def test_gradients_add_under_grad_req_add(rng):
    exe = _bind((3, 8), "sort", grad_req="add", axis=1)
    x, head = torch.from_numpy(rng.normal(size=(3, 8))), torch.from_numpy(rng.normal(size=(3, 8)))
    exe.grad_dict["data"].fill_(0.5)
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=head)
    once = torch.zeros(3, 8, dtype=torch.float64).scatter_(1, torch.argsort(x, stable=True, dim=1), head)
    assert torch.equal(exe.grad_dict["data"], once + 0.5)
    top = _bind((3, 8), grad_req="add", k=2, ret_typ="value")
    top.grad_dict["data"].fill_(0.5)
    top.forward(is_train=True, data=x)
    top.backward(out_grads=head[:, :2])
    want = torch.full((3, 8), 0.5, dtype=torch.float64).scatter_add_(
        1, torch.argsort(x, stable=True, dim=1, descending=True)[:, :2], head[:, :2])
    assert torch.equal(top.grad_dict["data"], want)


def test_a_training_bind_keeps_the_kept_indices_as_int32():
    exe = _bind((8, 1000), data_dtype=torch.float32, k=5, ret_typ="value")
    assert [(v.shape, v.dtype) for v in exe.memory.values if v.kind == "saved"] == [((40,), "int32")]
    for net in (S.topk(S.Variable("data"), k=5, ret_typ="value"), S.argsort(S.Variable("data"))):
        inference = net.simple_bind(ts.cpu(), data=(8, 1000), grad_req="null")
        assert not [v for v in inference.memory.values if v.kind == "saved"]
    no_gradient = _bind((8, 1000), k=5, ret_typ="mask")
    assert not [v for v in no_gradient.memory.values if v.kind == "saved"]


def test_axis_none_through_json(rng):
    net = S.topk(S.Variable("data"), axis=None, k=4, ret_typ="value")
    node = next(n for n in json.loads(net.tojson())["nodes"] if n["op"] == "topk")
    assert node["params"]["axis"] == "None"
    loaded = S.load_json(net.tojson())
    assert loaded.infer_shape(data=(3, 5))[1] == [(4,)]
    x = torch.from_numpy(rng.normal(size=(3, 5)))
    exe = loaded.simple_bind(ts.cpu(), data=(3, 5), type_dict={"data": torch.float64}, grad_req="null")
    exe.forward(data=x)
    assert torch.equal(exe.outputs[0], torch.sort(x.ravel(), descending=True).values[:4])
    assert S.topk(S.Variable("data")).attr("axis") is None  # left out: the default, not None


def test_refusals_name_the_operator_and_values():
    with pytest.raises(ParamError, match=r"topk: ret_typ='values' is not one of"):
        S.topk(S.Variable("data"), ret_typ="values")
    with pytest.raises(ShapeError, match=r"axis=2 is out of range for data of shape \(3, 4\)"):
        S.sort(S.Variable("data"), axis=2).infer_shape(data=(3, 4))
