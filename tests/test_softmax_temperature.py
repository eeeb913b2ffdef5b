"""softmax's, log_softmax's and softmin's ``temperature`` (MXNet's) beyond the generic
operator cases: against torch on rows longer than one block and with lengths, gradients
added under grad_req='add' in every dtype, the scratch a temperature costs (none at 1), a
temperature of 0 refused (MXNet answers NaN), and JSON."""

from __future__ import annotations

import json

import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close

import tritonsym as ts
from tritonsym.base import ParamError

S = ts.sym


def _torch(op, x, temperature, axis):
    z = (-x if op == "softmin" else x) / (temperature or 1.0)
    return torch.log_softmax(z, axis) if op == "log_softmax" else torch.softmax(z, axis)


@pytest.mark.parametrize("op, temperature, shape, axis", [
    ("softmax", 0.3, (3, 5000), -1),  # a row the interpreter loops over
    ("softmin", 4.0, (4, 3, 7), 0),
    ("log_softmax", -0.5, (2, 9), 1),
], ids=str)
def test_equals_torch(op, temperature, shape, axis, rng):
    net = getattr(S, op)(S.Variable("x"), axis=axis, temperature=temperature)
    exe = net.simple_bind(ts.cpu(), x=shape, type_dict={"x": torch.float64})
    x = torch.from_numpy(rng.normal(size=shape))
    xr = x.clone().requires_grad_()
    want = _torch(op, xr, temperature, axis)
    head = torch.from_numpy(rng.normal(size=shape))
    want.backward(head)
    exe.forward(is_train=True, x=x)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], want.detach().numpy(), torch.float64, "forward")
    assert_close(exe.grad_dict["x"], xr.grad.numpy(), torch.float64, "gradient")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_with_lengths_and_grad_req_add(dtype, rng):
    net = S.softmax(S.Variable("x"), S.Variable("n"), use_length=True, temperature=0.5)
    exe = net.simple_bind(ts.cpu(), x=(3, 6), n=(3,), grad_req={"x": "add", "n": "null"}, type_dict={"x": dtype})
    exe.arg_dict["x"][...] = torch.from_numpy(rng.normal(size=(3, 6)))
    exe.arg_dict["n"][...] = torch.tensor([6, 2, 0])
    exe.grad_dict["x"].zero_()
    head = torch.from_numpy(rng.normal(size=(3, 6))).to(dtype)
    for _ in range(2):
        exe.forward(is_train=True)
        exe.backward(out_grads=head)
    xr = exe.arg_dict["x"].double().requires_grad_()
    keep = torch.arange(6)[None, :] < torch.tensor([6, 2, 0])[:, None]
    want = torch.softmax((xr / 0.5).masked_fill(~keep, float("-inf")), -1).nan_to_num(0.0)
    want.backward(head.double())
    assert_close(exe.outputs[0], want.detach().numpy(), dtype, "forward")
    assert_close(exe.grad_dict["x"], 2 * xr.grad.numpy(), dtype, "twice the gradient")


@pytest.mark.parametrize("op, temperature, scratch", [
    ("softmax", None, 0), ("softmax", 1.0, 0), ("softmax", 2.0, 2), ("softmin", None, 2), ("softmin", -1.0, 0)])
def test_a_temperature_costs_one_scratch_buffer_each_way(op, temperature, scratch):
    net = getattr(S, op)(S.Variable("x"), temperature=temperature)
    exe = net.simple_bind(ts.cpu(), x=(4, 8))
    assert len([v for v in exe.memory.values if v.kind == "temp"]) == scratch


def test_a_temperature_of_zero_is_refused():
    for op in ("softmax", "log_softmax", "softmin"):
        with pytest.raises(ParamError, match="temperature=0.0 must not be 0"):
            getattr(S, op)(S.Variable("x"), temperature=0)


def test_json_round_trip():
    net = S.softmin(S.Variable("x"), temperature=0.25, axis=0, name="m")
    node = next(n for n in json.loads(net.tojson())["nodes"] if n["op"] == "softmin")
    assert node["params"] == {"temperature": "0.25", "axis": "0"}
    assert S.load_json(net.tojson()).infer_shape(x=(2, 3))[1] == [(2, 3)]
