"""MakeLoss's normalization='valid' beyond its generic case: the count is made on the device
each step (a changed loss changes the gradient with no new bind), at least 1, exact past
float16's 2048, NaN from a NaN element, and it composes with grad_scale and accumulation;
the MXNet JSON parameters round-trip."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import to_numpy

import tritonsym as ts
from tritonsym.base import ParamError

S = ts.sym


def _gradient(values, dtype=torch.float32, grad_req="write", **params):
    net = S.MakeLoss(S.Variable("data"), normalization="valid", **params)
    exe = net.simple_bind(ts.cpu(), data=np.shape(values), type_dict={"data": dtype}, grad_req=grad_req)
    return exe


def _step(exe, values, dtype=torch.float32):
    exe.forward(is_train=True, data=torch.as_tensor(np.asarray(values, np.float64)).to(dtype))
    exe.backward()
    return to_numpy(exe.grad_dict["data"])


def test_the_count_follows_each_step_without_a_new_bind(rng):
    exe = _gradient(np.zeros((6, 9)), grad_scale=2.0, valid_thresh=0.5)
    for _ in range(3):
        values = rng.normal(size=(6, 9))
        np.testing.assert_allclose(_step(exe, values), o.make_loss_valid_gradient(values, 2.0, 0.5), rtol=1e-7)
    np.testing.assert_array_equal(_step(exe, np.zeros((6, 9))), np.full((6, 9), 2.0))  # none above: divided by 1


def test_the_count_is_exact_past_what_float16_holds():
    values = np.ones(5000)
    values[::7] = 0.0  # 4285 above 0, past float16's 2048 (MXNet's float16 sum stops there)
    grad = _step(_gradient(values, torch.float16), values, torch.float16)
    np.testing.assert_allclose(grad, np.float16(1 / 4285), rtol=0)


def test_a_nan_element_makes_the_gradient_nan():
    values = np.array([[0.3, np.nan, -0.2], [1.0, 2.0, 3.0]])
    assert np.isnan(_step(_gradient(values), values)).all()


def test_accumulates_into_the_gradient(rng):
    values = rng.normal(size=(3, 4))
    exe = _gradient(values, grad_req="add", grad_scale=0.5)
    exe.grad_dict["data"][:] = 1.0
    expected = 1.0 + o.make_loss_valid_gradient(values, 0.5)
    np.testing.assert_allclose(_step(exe, values), expected, rtol=1e-7)


def test_parameters_as_mxnet_writes_them():
    net = S.MakeLoss(S.Variable("data"), normalization="valid", valid_thresh=0.25, name="loss")
    assert net.attr_dict()["loss"] == {"normalization": "valid", "valid_thresh": "0.25"}
    back = ts.sym.load_json(net.tojson())
    assert back.attr_dict()["loss"] == {"normalization": "valid", "valid_thresh": "0.25"}
    with pytest.raises(ParamError, match=r"MakeLoss: normalization='mean' is not one of 'null', 'batch', 'valid'"):
        S.MakeLoss(S.Variable("data"), normalization="mean")
