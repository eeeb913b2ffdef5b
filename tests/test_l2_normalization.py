"""L2Normalization beyond its generic operator cases: against torch's normalize (an
implementation independent of ours), rows longer than one step of the kernels, float32 rows
whose sum of squares overflows or underflows float32, a row of zeros, NaN and infinity,
gradients added under grad_req='add' in every dtype, what a training bind keeps, refusals
that name the operator and the values, and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close
from tritonsym.ops import l2_normalization as kernels
from tritonsym.ops._common import KernelArgumentError

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
DIMS = {"instance": lambda n: tuple(range(1, n)), "channel": lambda n: (1,), "spatial": lambda n: tuple(range(2, n))}


def _bind(shape, dtype=torch.float64, grad_req="write", **params):
    net = S.L2Normalization(S.Variable("data"), name="l2", **params)
    return net.simple_bind(ts.cpu(), data=shape, grad_req=grad_req, type_dict={"data": dtype})


@pytest.mark.parametrize("shape, mode", [
    ((2, 3, 70, 65), "spatial"),  # rows of 4550: two steps of a row in the interpreter
    ((3, 5000), "instance"),
    ((2, 40, 7, 9), "channel"),  # rows 63 elements apart
    ((1, 1, 1), "channel"),  # one element a row
], ids=str)
def test_equals_torch(shape, mode, rng):
    exe = _bind(shape, mode=mode, eps=1e-6)
    x = torch.from_numpy(rng.normal(size=shape))
    xr = x.clone().requires_grad_()
    dims = DIMS[mode](len(shape))
    want = xr / torch.sqrt((xr * xr).sum(dims, keepdim=True) + 1e-6)
    head = torch.from_numpy(rng.normal(size=shape))
    want.backward(head)
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], want.detach().numpy(), torch.float64, "forward")
    assert_close(exe.grad_dict["data"], xr.grad.numpy(), torch.float64, "gradient")
    if mode == "instance":  # torch's normalize divides by max(norm, eps) instead: the same far from eps
        assert_close(exe.outputs[0], torch.nn.functional.normalize(x, dim=1).numpy(), torch.float64, "normalize")


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_float32_rows_whose_squares_leave_float32_normalise(scale, rng):
    x = rng.normal(size=(3, 6))
    exe = _bind((3, 6), dtype=torch.float32, eps=0.0)
    exe.forward(data=torch.from_numpy(x * scale).float())
    assert_close(exe.outputs[0], x / np.sqrt((x * x).sum(1, keepdims=True)), torch.float32, f"rows of {scale}")


def test_zeros_nan_and_infinity():
    exe = _bind((4, 3), dtype=torch.float32, eps=1e-4)
    exe.forward(data=torch.tensor([[0.0, 0.0, 0.0], [3.0, float("nan"), 4.0], [1.0, float("inf"), 1.0],
                                   [3.0, 0.0, 4.0]]))
    got = exe.outputs[0].numpy()
    assert (got[0] == 0).all() and np.isnan(got[1]).all() and np.isnan(got[2]).all(), got
    assert_close(got[3], np.array([3.0, 0.0, 4.0]) / np.sqrt(25 + 1e-4), torch.float32, "a finite row")


@pytest.mark.parametrize("mode", list(DIMS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_grad_req_add_adds_the_gradient(mode, dtype, rng):
    exe = _bind((2, 3, 4, 5), dtype=dtype, grad_req="add", mode=mode)
    x = rng.normal(size=(2, 3, 4, 5))
    exe.arg_dict["data"][...] = torch.from_numpy(x)
    exe.grad_dict["data"].zero_()
    head = torch.from_numpy(rng.normal(size=(2, 3, 4, 5))).to(dtype)
    for _ in range(2):
        exe.forward(is_train=True)
        exe.backward(out_grads=head)
    xd = exe.arg_dict["data"].double()
    xr = xd.clone().requires_grad_()
    (xr / torch.sqrt((xr * xr).sum(DIMS[mode](4), keepdim=True) + 1e-10)).backward(head.double())
    assert_close(exe.grad_dict["data"], 2 * xr.grad.numpy(), dtype, "twice the gradient")


def test_a_training_bind_keeps_one_float64_per_row():
    exe = _bind((8, 32, 16, 16), dtype=torch.float32, mode="channel")
    kept = [(v.shape, v.dtype) for v in exe.memory.values if v.kind == "saved"]
    assert kept == [((8 * 16 * 16,), "float64")], kept
    inference = S.L2Normalization(S.Variable("data")).simple_bind(ts.cpu(), data=(8, 32), grad_req="null")
    assert not [v for v in inference.memory.values if v.kind == "saved"]


@pytest.mark.parametrize("mode, shape", [("channel", (2, 3)), ("spatial", (4, 5)), ("instance", (7,))], ids=str)
def test_too_few_axes_are_refused_naming_the_values(mode, shape):
    with pytest.raises(ShapeError) as error:
        S.L2Normalization(S.Variable("data"), mode=mode).infer_shape(data=shape)
    assert "L2Normalization" in str(error.value) and f"mode={mode!r}" in str(error.value)
    assert str(shape) in str(error.value)


def test_parameters_and_kernel_arguments_are_checked():
    with pytest.raises(ParamError, match="eps=-1"):
        S.L2Normalization(S.Variable("data"), eps=-1)
    with pytest.raises(ParamError, match="mode='batch'"):
        S.L2Normalization(S.Variable("data"), mode="batch")
    with pytest.raises(KernelArgumentError, match="rstd has dtype float32; expected one of float64"):
        kernels.plan_l2_normalization(torch.zeros(2, 3), torch.zeros(2, 3), first=1, last=1, eps=1e-10,
                                      kept_rstd=torch.zeros(2))
    with pytest.raises(KernelArgumentError, match="axes 2 .. 1"):
        kernels.plan_l2_normalization(torch.zeros(2, 3), torch.zeros(2, 3), first=2, last=1, eps=1e-10)


def test_json_round_trip():
    net = S.L2Normalization(S.Variable("data"), mode="spatial", eps=1e-6, name="l2")
    node = next(n for n in json.loads(net.tojson())["nodes"] if n["op"] == "L2Normalization")
    assert node["params"] == {"mode": "spatial", "eps": "1e-06"}
    assert S.load_json(net.tojson()).infer_shape(data=(2, 3, 4))[1] == [(2, 3, 4)]
