"""contrib.box_iou beyond its generic operator cases: against torch autograd through the
same IoU written with torch's own operators, in every dtype; disjoint and touching boxes;
NaN; an IoU loss that moves a box onto its target by gradient descent; refusals that name
the operator and the values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _torch_iou(lhs, rhs):
    """IoU of corner boxes with torch's operators (autograd gives its gradient)."""
    a, b = lhs.reshape(-1, 1, 4), rhs.reshape(1, -1, 4)
    wx = torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])
    wy = torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])
    inter = wx.clamp(min=0) * wy.clamp(min=0)
    area = lambda c: (c[..., 2] - c[..., 0]) * (c[..., 3] - c[..., 1])  # noqa: E731
    return (inter / (area(a) + area(b) - inter)).reshape(*lhs.shape[:-1], *rhs.shape[:-1])


def _boxes(rng, count):
    """Corner boxes whose x coordinates are all different, and their y ones: eighths, exact in
    every dtype, so that no two edges tie (where min and max have no derivative)."""
    xs = np.sort(rng.choice(np.arange(0, 7, 0.125), (count, 2), replace=False), axis=1)
    ys = np.sort(rng.choice(np.arange(0, 7, 0.125), (count, 2), replace=False), axis=1)
    return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)


def _bind(lhs_shape, rhs_shape, dtype, fmt="corner", grad_req="write"):
    net = S.contrib.box_iou(S.Variable("lhs"), S.Variable("rhs"), format=fmt)
    return net.simple_bind(ts.cpu(), lhs=lhs_shape, rhs=rhs_shape, grad_req=grad_req,
                           type_dict={"lhs": dtype, "rhs": dtype})


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)  # float64 and float16 under -m slow
def test_equals_torch_autograd(dtype, rng):
    both = _boxes(rng, 14)  # drawn together: no edge of lhs ties one of rhs either
    lhs = torch.from_numpy(both[:8].reshape(2, 4, 4)).to(dtype)
    rhs = torch.from_numpy(both[8:]).to(dtype)
    lhs_ref, rhs_ref = lhs.double().requires_grad_(), rhs.double().requires_grad_()
    iou = _torch_iou(lhs_ref, rhs_ref)
    head = torch.from_numpy(rng.normal(size=iou.shape)).to(dtype)
    iou.backward(head.double())
    exe = _bind(lhs.shape, rhs.shape, dtype)
    exe.forward(is_train=True, lhs=lhs, rhs=rhs)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], iou.detach().numpy(), dtype, "box_iou")
    assert_close(exe.grad_dict["lhs"], lhs_ref.grad.numpy(), dtype, "lhs's gradient")
    assert_close(exe.grad_dict["rhs"], rhs_ref.grad.numpy(), dtype, "rhs's gradient")


def test_disjoint_touching_and_nan_boxes():
    lhs = torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 2, 2]], dtype=torch.float64)
    rhs = torch.tensor([[2.0, 2, 3, 3], [1, 0, 2, 1], [float("nan"), 0, 1, 1], [1, 1, 3, 3]], dtype=torch.float64)
    exe = _bind(lhs.shape, rhs.shape, torch.float64)
    exe.forward(is_train=True, lhs=lhs, rhs=rhs)
    exe.backward(out_grads=torch.eye(4, dtype=torch.float64))  # each box's IoU with its partner
    out = exe.outputs[0].numpy()
    assert out[0, 0] == 0 and out[1, 1] == 0 and np.isnan(out[:, 2]).all()
    assert out[3, 3] == pytest.approx(1 / 7)
    # every lhs box meets the NaN one: its gradient is NaN (times a head of 0 as IEEE says);
    # rhs's boxes 0 and 1 meet lhs's only disjoint or touching (0), box 3 overlaps lhs's last
    assert np.isnan(exe.grad_dict["lhs"].numpy()).all()
    grad = exe.grad_dict["rhs"].numpy()
    assert (grad[:2] == 0).all() and np.isnan(grad[2]).all() and np.isfinite(grad[3]).all() and (grad[3] != 0).any()


def test_an_iou_loss_moves_a_box_onto_its_target():
    target = torch.tensor([[1.0, 2.0, 4.0, 5.0]], dtype=torch.float64)
    box = torch.tensor([[0.0, 0.5, 2.5, 3.0]], dtype=torch.float64)
    exe = _bind((1, 4), (1, 4), torch.float64, grad_req={"lhs": "write", "rhs": "null"})
    for _ in range(20):  # from an IoU of 0.109
        exe.forward(is_train=True, lhs=box, rhs=target)
        exe.backward(out_grads=-torch.ones(1, 1, dtype=torch.float64))  # minimise 1 - IoU
        box = box - 1.5 * exe.grad_dict["lhs"]
    exe.forward(is_train=False, lhs=box, rhs=target)
    assert exe.outputs[0].item() > 0.9


def test_refusals_name_the_operator_and_the_values():
    with pytest.raises(ShapeError, match=r"_contrib_box_iou.*lhs of shape \(3, 5\) must hold boxes of 4 coordinates"):
        S.contrib.box_iou(S.Variable("lhs"), S.Variable("rhs")).infer_shape(lhs=(3, 5), rhs=(2, 4))
    with pytest.raises(ShapeError, match=r"_contrib_box_iou.*rhs of shape \(4,\) must hold boxes"):
        S.contrib.box_iou(S.Variable("lhs"), S.Variable("rhs")).infer_shape(lhs=(3, 4), rhs=(4,))
    with pytest.raises(ParamError, match=r"_contrib_box_iou: format='xywh' is not one of 'corner', 'center'"):
        S.contrib.box_iou(S.Variable("lhs"), S.Variable("rhs"), format="xywh")
