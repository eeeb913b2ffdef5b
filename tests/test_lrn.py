"""LRN beyond its generic operator cases: against torch's local_response_norm (an
implementation independent of ours) on AlexNet's window and data of 3 to 5 axes, NaN in
one channel reaching its window only, gradients added under grad_req='add', the scratch
backward plans (and that a training bind keeps nothing), and refusals that name the
operator and the values."""

from __future__ import annotations

import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _bind(shape, dtype=torch.float64, grad_req="write", **params):
    net = S.LRN(S.Variable("data"), **params)
    return net.simple_bind(ts.cpu(), data=shape, type_dict={"data": dtype}, grad_req=grad_req)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, params", [((4, 96, 5, 5), dict(nsize=5)),
                                           ((3, 9, 11), dict(nsize=3, alpha=0.5, beta=0.6, knorm=1.0)),
                                           ((2, 6, 3, 2, 4), dict(nsize=7, alpha=2.0, beta=1.5))], ids=str)
def test_equals_torch_local_response_norm(shape, params, dtype, rng):
    exe = _bind(shape, dtype, **params)
    x = torch.from_numpy(rng.normal(size=shape) * 3).to(dtype)
    head = torch.from_numpy(rng.normal(size=shape)).to(dtype)
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=head)
    xr = x.double().requires_grad_()
    want = torch.nn.functional.local_response_norm(xr, params["nsize"], params.get("alpha", 1e-4),
                                                   params.get("beta", 0.75), params.get("knorm", 2.0))
    want.backward(head.double())
    assert_close(exe.outputs[0], want.detach().numpy(), dtype, "forward")
    assert_close(exe.grad_dict["data"], xr.grad.numpy(), dtype, "gradient", scale=4.0)


def test_nan_reaches_its_window_only():
    exe = _bind((1, 7, 2), nsize=3)
    x = torch.ones(1, 7, 2, dtype=torch.float64)
    x[0, 3, 1] = float("nan")
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=torch.ones(1, 7, 2, dtype=torch.float64))
    nan = torch.isnan(exe.outputs[0][0, :, 1]).tolist()
    assert nan == [False, False, True, True, True, False, False] and not torch.isnan(exe.outputs[0][0, :, 0]).any()
    assert torch.isnan(exe.grad_dict["data"][0, 1:6, 1]).all() and not torch.isnan(exe.grad_dict["data"][0, :, 0]).any()


def test_gradients_add_under_grad_req_add(rng):
    exe = _bind((2, 5, 3), grad_req="add", nsize=3, alpha=1.0)
    x, head = torch.from_numpy(rng.normal(size=(2, 5, 3))), torch.from_numpy(rng.normal(size=(2, 5, 3)))
    exe.grad_dict["data"].fill_(0.25)
    exe.forward(is_train=True, data=x)
    exe.backward(out_grads=head)
    xr = x.clone().requires_grad_()
    torch.nn.functional.local_response_norm(xr, 3, 1.0, 0.75, 2.0).backward(head)
    assert_close(exe.grad_dict["data"], xr.grad.numpy() + 0.25, torch.float64, "gradient added")


@pytest.mark.parametrize("dtype, scratch", [(torch.bfloat16, torch.float32), (torch.float64, torch.float64)], ids=str)
def test_backward_scratch_in_the_compute_type_and_nothing_kept(dtype, scratch):
    exe = _bind((8, 64, 13, 13), dtype, nsize=5)
    assert not [v for v in exe.memory.values if v.kind == "saved"]
    temps = [v for step in exe._program.backward_steps for v in step.temps.values()]
    assert [(v.shape, v.dtype) for v in temps] == [((8, 64, 13, 13), scratch)], temps


def test_refusals_name_the_operator_and_values():
    with pytest.raises(ParamError, match=r"LRN: nsize=4 must be odd"):
        S.LRN(S.Variable("data"), nsize=4)
    with pytest.raises(ParamError, match=r"LRN: the required parameter 'nsize' is missing"):
        S.LRN(S.Variable("data"))
    with pytest.raises(ShapeError, match=r"LRN.*batch and a channel axis, got shape \(5,\)"):
        S.LRN(S.Variable("data"), nsize=3).infer_shape(data=(5,))
