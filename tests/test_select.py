"""where and clip: MXNet's choices (a NaN condition is true, clip's bounds included in the
gradient), NaN kept, row conditions, and the errors that name the values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tritonsym.ops import select as kernels

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


def test_where_picks_x_where_the_condition_is_not_zero_nan_included():
    cond = torch.tensor([1.0, 0.0, float("nan"), -2.0])
    x, y = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([-1.0, -2.0, -3.0, -4.0])
    out = torch.empty(4)
    kernels.plan_where(cond, x, y, out)[0]()
    assert out.tolist() == [1.0, -2.0, 3.0, 4.0]


def test_where_with_a_row_condition_and_its_gradients():
    net = S.where(S.Variable("c"), S.Variable("x"), S.Variable("y"))
    exe = net.simple_bind(ts.cpu(), c=(3,), x=(3, 2), y=(3, 2), type_dict={"x": "float64", "y": "float64",
                                                                         "c": "float64"})
    out = exe.forward(is_train=True, c=np.array([1.0, 0.0, 1.0]), x=np.ones((3, 2)), y=np.zeros((3, 2)))[0]
    assert out.tolist() == [[1, 1], [0, 0], [1, 1]]
    exe.backward([torch.full((3, 2), 5.0, dtype=torch.float64)])
    assert exe.grad_dict["x"].tolist() == [[5, 5], [0, 0], [5, 5]]
    assert exe.grad_dict["y"].tolist() == [[0, 0], [5, 5], [0, 0]]
    with pytest.raises(ShapeError, match=r"condition has shape \(2,\); it must be x's \(3, 2\) or \(3,\)"):
        net.infer_shape(c=(2,), x=(3, 2), y=(3, 2))
    # a condition of x's rows but another width is neither: never read as rows
    with pytest.raises(ShapeError, match=r"condition has shape \(3, 4\); it must be x's \(3, 2\) or \(3,\)"):
        net.infer_shape(c=(3, 4), x=(3, 2), y=(3, 2))
    # x's dtype or y's is everyone's (the condition's too, unless given)
    assert net.infer_type(x="float64")[0] == [torch.float64] * 3
    assert net.infer_type(y="float16", c="int32")[0] == [torch.int32, torch.float16, torch.float16]


def test_clip_keeps_nan_and_passes_the_gradient_at_both_bounds_and_to_the_nan():
    x = torch.tensor([-3.0, 5.0, 0.5, 0.0, 1.0, float("nan")], dtype=torch.float64)
    out = torch.empty_like(x)
    kernels.plan_clip(x, out, 0.0, 1.0)[0]()
    assert out[:5].tolist() == [0.0, 1.0, 0.5, 0.0, 1.0] and out[5].isnan()
    grad = torch.zeros_like(x)
    kernels.plan_clip_backward(x, torch.ones_like(x), grad, 0.0, 1.0)[0]()
    # as MXNet 1.9.1 (recorded: clip/nan-takes-the-gradient): the NaN stayed and takes it
    assert grad.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]


def test_clip_bounds_in_order():
    with pytest.raises(kernels.KernelArgumentError, match="a_min=2.0 must not exceed a_max=1.0"):
        kernels.plan_clip(torch.zeros(3), None, 2.0, 1.0)
