"""Broadcast operators: numpy's shape rules, gradients summed over the repeated axes (also
when they accumulate), MXNet's maximum/minimum choices, and shape errors that name both."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


def test_shapes_as_numpy():
    a, b = S.Variable("a"), S.Variable("b")
    assert S.broadcast_add(a, b).infer_shape(a=(2, 3, 4), b=(3, 1))[1] == [(2, 3, 4)]
    assert S.broadcast_mul(a, b).infer_shape(a=(2, 1, 4), b=(3, 1))[1] == [(2, 3, 4)]
    assert S.broadcast_to(a, shape=(2, 0, 4)).infer_shape(a=(1, 3, 1))[1] == [(2, 3, 4)]
    assert S.broadcast_like(a, b).infer_shape(a=(1, 3, 1), b=(2, 3, 4))[1] == [(2, 3, 4)]
    with pytest.raises(ShapeError, match=r"shapes \(2, 3\), \(4,\) cannot be broadcast together"):
        S.broadcast_sub(a, b).infer_shape(a=(2, 3), b=(4,))
    with pytest.raises(ShapeError, match=r"data \(2, 3\) cannot be broadcast to \(4, 3\): axis 0 has size 2"):
        S.broadcast_to(a, shape=(4, 3)).infer_shape(a=(2, 3))


def test_gradients_accumulate_into_broadcast_operands(rng):
    """grad_req='add', and one operand used twice: both sum over the repeated axes."""
    a, b = S.Variable("a"), S.Variable("b")
    net = S.broadcast_mul(a, b) + S.broadcast_add(b, a)
    exe = net.simple_bind(ts.cpu(), a=(2, 3, 4), b=(3, 1), grad_req="add",
                          type_dict={"a": "float64", "b": "float64"})
    exe.grad_dict["a"][...] = 1.0
    exe.grad_dict["b"][...] = 2.0
    av, bv, h = rng.normal(size=(2, 3, 4)), rng.normal(size=(3, 1)), rng.normal(size=(2, 3, 4))
    exe.forward(is_train=True, a=av, b=bv)
    exe.backward([torch.from_numpy(h)])
    np.testing.assert_allclose(exe.grad_dict["a"].numpy(), 1 + h * bv + h, rtol=1e-12)
    np.testing.assert_allclose(exe.grad_dict["b"].numpy(), 2 + (h * av + h).sum((0, 2))[:, None], rtol=1e-12)


def test_maximum_and_minimum_choose_as_mxnet():
    a, b = S.Variable("a"), S.Variable("b")
    x, y = np.array([1.0, np.nan, 3.0, -1.0]), np.array([2.0, 2.0, np.nan, -1.0])
    for op, want_a, want_b in ((S.broadcast_maximum, [0, 0, 0, 1], [1, 0, 0, 0]),
                               (S.maximum, [0, 0, 0, 1], [1, 0, 0, 0]),
                               (S.minimum, [1, 0, 0, 1], [0, 0, 0, 0])):
        exe = op(a, b).simple_bind(ts.cpu(), a=(4,), b=(4,), type_dict={"a": "float64", "b": "float64"})
        out = exe.forward(is_train=True, a=x, b=y)[0].numpy()
        assert np.isnan(out[1:3]).all()  # NaN on either side gives NaN
        exe.backward([torch.ones(4, dtype=torch.float64)])
        assert exe.grad_dict["a"].tolist() == want_a and exe.grad_dict["b"].tolist() == want_b
