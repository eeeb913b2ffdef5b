"""PReLU (LeakyReLU act_type='prelu'): MXNet's values and gradients, gamma per channel or
one for all, accumulation, and the shape errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


def test_values_and_gradients_as_mxnet():
    exe = S.LeakyReLU(S.Variable("x"), act_type="prelu", name="p").simple_bind(ts.cpu(), x=(2, 3))
    out = exe.forward(is_train=True, x=np.array([[0.0, -2, 3], [-1, 0, 2]]), p_gamma=np.array([0.1, 0.2, 0.3]))[0]
    np.testing.assert_allclose(out.numpy(), [[0, -0.4, 3], [-0.1, 0, 2]], rtol=1e-6)
    exe.backward([torch.ones(2, 3)])
    # MXNet 1.9.1: x = 0 takes gamma's slope, and adds nothing to gamma's gradient
    np.testing.assert_allclose(exe.grad_dict["x"].numpy(), [[0.1, 0.2, 1], [0.1, 0.2, 1]], rtol=1e-6)
    np.testing.assert_allclose(exe.grad_dict["p_gamma"].numpy(), [-1, -2, 0])


def test_gamma_gradient_accumulates(rng):
    net = S.LeakyReLU(S.Variable("x"), act_type="prelu", name="p")
    exe = net.simple_bind(ts.cpu(), x=(4, 3, 2), p_gamma=(1,), grad_req="add", type_dict={"x": "float64"})
    exe.grad_dict["p_gamma"][...] = 10.0
    x, h = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))
    exe.forward(is_train=True, x=x, p_gamma=np.array([0.5]))
    exe.backward([torch.from_numpy(h)])
    np.testing.assert_allclose(exe.grad_dict["p_gamma"].numpy(), [10 + np.where(x > 0, 0, h * x).sum()], rtol=1e-12)


def test_shapes():
    net = S.LeakyReLU(S.Variable("x"), act_type="prelu", name="p")
    assert net.list_arguments() == ["x", "p_gamma"]
    with pytest.raises(ShapeError, match=r"gamma is \(4,\) but \(3,\) is expected"):
        net.infer_shape(x=(2, 3), p_gamma=(4,))
    with pytest.raises(ShapeError, match="needs data with a channel axis"):
        net.infer_shape(x=(5,))
