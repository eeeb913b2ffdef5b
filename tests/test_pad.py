"""Pad beyond its generic operator cases: against torch's pad (an implementation independent
of ours: 'replicate' is MXNet's 'edge'), 5-d data and tensors larger than one block of the
kernels, gradients added under grad_req='add' in every dtype, a NaN constant, the same bits
every run, the scratch an edge or reflect backward folds through, refusals that name the
operator and the values, and JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close
from tritonsym.ops import pad as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
TORCH_MODES = {"constant": "constant", "edge": "replicate", "reflect": "reflect"}


def _bind(shape, dtype=torch.float64, grad_req="write", **params):
    net = S.Pad(S.Variable("data"), name="p", **params)
    return net.simple_bind(ts.cpu(), data=shape, grad_req=grad_req, type_dict={"data": dtype})


def _torch_pad(x, width, mode, value):
    spatial = list(zip(width[4::2], width[5::2]))
    flat = [v for before, after in reversed(spatial) for v in (before, after)]  # torch: last axis first
    if mode == "constant":
        return torch.nn.functional.pad(x, flat, mode="constant", value=value)
    return torch.nn.functional.pad(x, flat, mode=TORCH_MODES[mode])


@pytest.mark.parametrize("shape, width, mode", [
    ((2, 3, 70, 65), (0, 0, 0, 0, 3, 1, 2, 5), "reflect"),  # 2 x 3 x 74 x 72: past one block of the interpreter's
    ((2, 3, 70, 65), (0, 0, 0, 0, 0, 4, 6, 0), "edge"),
    ((1, 2, 3, 4, 5), (0, 0, 0, 0, 1, 2, 3, 0, 2, 2), "constant"),
    ((1, 2, 3, 4, 5), (0, 0, 0, 0, 2, 1, 3, 2, 4, 4), "reflect"),
    ((2, 1, 3, 2, 1), (0, 0, 0, 0, 4, 0, 0, 3, 2, 5), "edge"),  # one element along an axis: all of it repeated
], ids=str)
def test_equals_torch(shape, width, mode, rng):
    exe = _bind(shape, mode=mode, pad_width=width, constant_value=-1.25)
    x = torch.from_numpy(rng.normal(size=shape))
    xr = x.clone().requires_grad_()
    want = _torch_pad(xr, width, mode, -1.25)
    head = torch.from_numpy(rng.normal(size=want.shape))
    want.backward(head)
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=head)
    assert tuple(exe.outputs[0].shape) == tuple(want.shape)
    assert_close(exe.outputs[0], want.detach().numpy(), torch.float64, "forward")
    assert_close(exe.grad_dict["data"], xr.grad.numpy(), torch.float64, "gradient")


@pytest.mark.parametrize("mode", kernels.MODES)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_grad_req_add_adds_the_gradient(mode, dtype, rng):
    exe = _bind((2, 3, 4, 5), dtype=dtype, grad_req="add", mode=mode, pad_width=(0, 0, 0, 0, 2, 1, 1, 3))
    exe.arg_dict["data"][...] = torch.from_numpy(rng.normal(size=(2, 3, 4, 5)))
    head = torch.from_numpy(rng.normal(size=exe.outputs[0].shape)).to(dtype)
    exe.grad_dict["data"].zero_()
    for _ in range(2):
        exe.forward(is_train=True)
        exe.backward(out_grads=head)
    pads = ((0, 0), (0, 0), (2, 1), (1, 3))
    want = 2 * _torch_pad_grad(head.double().numpy(), (2, 3, 4, 5), pads, mode)
    assert_close(exe.grad_dict["data"], want, dtype, "twice the gradient")


def _torch_pad_grad(dy, shape, pads, mode):
    """The gradient from torch's autograd of its own pad (independent of ours)."""
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    width = tuple(v for pair in pads for v in pair)
    _torch_pad(x, width, mode, 0.0).backward(torch.from_numpy(dy))
    return x.grad.numpy()


def test_a_nan_constant_fills_the_pad_and_only_the_pad():
    exe = _bind((1, 1, 2, 2), mode="constant", pad_width=(0, 0, 0, 0, 1, 0, 0, 1), constant_value=float("nan"))
    exe.forward(data=torch.ones(1, 1, 2, 2, dtype=torch.float64))
    got = exe.outputs[0][0, 0].numpy()
    assert np.isnan(got[0]).all() and np.isnan(got[:, 2]).all() and (got[1:, :2] == 1).all(), got


def test_the_gradient_has_the_same_bits_every_run(rng):
    dy = torch.from_numpy(rng.normal(size=(4, 8, 37, 41))).float()
    grads = []
    for _ in range(2):
        dx = torch.empty(4, 8, 30, 33)
        run(kernels.plan_pad_backward(dy, dx, "edge", ((0, 0), (0, 0), (3, 4), (5, 3))))
        grads.append(dx)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("mode, scratch", [("constant", []), ("edge", [(2, 3, 7, 5)]), ("reflect", [(2, 3, 7, 5)])])
def test_edge_and_reflect_fold_through_scratch_in_the_compute_type(mode, scratch):
    exe = _bind((2, 3, 4, 5), dtype=torch.bfloat16, mode=mode, pad_width=(0, 0, 0, 0, 2, 1, 1, 3))
    temps = [(v.shape, v.dtype) for v in exe.memory.values if v.kind == "temp"]
    assert temps == [(s, "float32") for s in scratch], temps
    three = _bind((1, 2, 3, 4, 5), mode=mode, pad_width=(0, 0, 0, 0, 1, 1, 0, 0, 2, 2))  # one axis unpadded
    assert len([v for v in three.memory.values if v.kind == "temp"]) == len(scratch)


@pytest.mark.parametrize("params, shape, words", [
    (dict(pad_width=(0, 0, 0, 0, 1, 1)), (2, 3, 4, 5), ["pad_width=(0, 0, 0, 0, 1, 1)", "8 numbers"]),
    (dict(pad_width=(0, 0, 1, 0, 1, 1)), (2, 3, 4), ["(2, 3, 4)", "4 or 5 axes"]),
    (dict(pad_width=(0, 1, 0, 0, 1, 1, 1, 1)), (2, 3, 4, 5), ["first four numbers must be 0"]),
    (dict(pad_width=(0, 0, 0, 0, 4, 0, 1, 1), mode="reflect"), (2, 3, 4, 5), ["axis 2", "(4, 0)", "(4)"]),
    (dict(pad_width=(0, 0, 0, 0, 1, 0, 0, 0), mode="edge"), (2, 3, 0, 5), ["axis 2", "no element"]),
], ids=str)
def test_bad_shapes_are_refused_naming_the_values(params, shape, words):
    with pytest.raises(ShapeError) as error:
        S.Pad(S.Variable("data"), name="p", **params).infer_shape(data=shape)
    assert "Pad" in str(error.value) and all(w in str(error.value) for w in words), str(error.value)


def test_parameters_and_kernel_arguments_are_checked():
    with pytest.raises(ParamError, match="mode='wrap'"):
        S.Pad(S.Variable("data"), mode="wrap", pad_width=(0,) * 8)
    with pytest.raises(ParamError, match="pad_width"):
        S.Pad(S.Variable("data"))
    with pytest.raises(KernelArgumentError, match="pad an axis before the last 3"):
        kernels.plan_pad(torch.zeros(2, 3, 4, 5), None, "constant", ((1, 0), (0, 0), (0, 0), (0, 0)))
    with pytest.raises(KernelArgumentError, match="must be contiguous"):
        kernels.plan_pad(torch.zeros(2, 3, 5, 4).transpose(2, 3), None, "edge", ((0, 0), (0, 0), (1, 1), (0, 0)))
    with pytest.raises(KernelArgumentError, match="dy has shape"):
        kernels.plan_pad_backward(torch.zeros(2, 3, 5, 5), torch.zeros(2, 3, 4, 5), "edge",
                                  ((0, 0), (0, 0), (1, 1), (0, 0)))


def test_json_round_trip():
    net = S.pad(S.Variable("data"), mode="edge", pad_width=(0, 0, 0, 0, 1, 2, 3, 4), name="p")
    node = next(n for n in json.loads(net.tojson())["nodes"] if n["op"] == "Pad")
    assert node["params"] == {"mode": "edge", "pad_width": "(0, 0, 0, 0, 1, 2, 3, 4)"}
    again = S.load_json(net.tojson())
    assert again.infer_shape(data=(2, 3, 4, 5))[1] == [(2, 3, 7, 12)]
