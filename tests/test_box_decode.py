"""contrib.box_decode beyond its generic operator cases: against torch autograd through the
same decoding written with torch's own operators, in every dtype; zero offsets give the
anchors back as corners; the clip (a tie clips, a clipped side takes no gradient through
its offset, NaN stays NaN where MXNet's comparison gives the clip); the anchors' gradient
summed over a large batch the same bits every run; refusals that name the operator and the
values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close, to_numpy

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym
STDS = (0.1, 0.1, 0.2, 0.2)


def _torch_decode(data, anchors, stds, clip, corner):
    a = anchors.reshape(1, -1, 4)
    if corner:
        w, h = a[..., 2] - a[..., 0], a[..., 3] - a[..., 1]
        x, y = a[..., 0] + w * 0.5, a[..., 1] + h * 0.5
    else:
        x, y, w, h = a.unbind(-1)
    dw, dh = data[..., 2] * stds[2], data[..., 3] * stds[3]
    if clip > 0:
        dw, dh = dw.clamp(max=clip), dh.clamp(max=clip)
    ox, oy = data[..., 0] * stds[0] * w + x, data[..., 1] * stds[1] * h + y
    ow, oh = torch.exp(dw) * w * 0.5, torch.exp(dh) * h * 0.5
    return torch.stack([ox - ow, oy - oh, ox + ow, oy + oh], dim=-1)


def _bind(data_shape, dtype, grad_req="write", **params):
    net = S.contrib.box_decode(S.Variable("data"), S.Variable("anchors"), **params)
    return net.simple_bind(ts.cpu(), data=data_shape, anchors=(1, data_shape[1], 4), grad_req=grad_req,
                           type_dict={"data": dtype, "anchors": dtype})


def _anchors(rng, count, corner):
    xy = rng.uniform(0, 10, (1, count, 2))
    wh = rng.uniform(0.5, 4, (1, count, 2))
    return np.concatenate([xy, xy + wh] if corner else [xy + wh / 2, wh], axis=-1)


@pytest.mark.parametrize("corner", [False, True], ids=["center", "corner"])
@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)  # float64 and float16 under -m slow
def test_equals_torch_autograd(dtype, corner, rng):
    data = torch.from_numpy(rng.normal(size=(3, 6, 4))).to(dtype)
    anchors = torch.from_numpy(_anchors(rng, 6, corner)).to(dtype)
    clip = 0.15 if corner else -1.0
    data_ref, anchors_ref = data.double().requires_grad_(), anchors.double().requires_grad_()
    stds = [float(torch.tensor(s, dtype=torch.float32).to(dtype)) for s in STDS]  # MXNet's: in the data's dtype
    clip_ref = float(torch.tensor(clip, dtype=torch.float32).to(dtype))
    boxes = _torch_decode(data_ref, anchors_ref, stds, clip_ref, corner)
    head = torch.from_numpy(rng.normal(size=boxes.shape)).to(dtype)
    boxes.backward(head.double())
    exe = _bind(data.shape, dtype, format="corner" if corner else "center", clip=clip,
                **{f"std{i}": s for i, s in enumerate(STDS)})
    exe.forward(is_train=True, data=data, anchors=anchors)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], boxes.detach().numpy(), dtype, "box_decode")
    assert_close(exe.grad_dict["data"], data_ref.grad.numpy(), dtype, "data's gradient")
    assert_close(exe.grad_dict["anchors"], anchors_ref.grad.numpy(), dtype, "anchors' gradient")


def test_zero_offsets_give_the_anchors_as_corners(rng):
    anchors = _anchors(rng, 5, corner=True)
    exe = _bind((2, 5, 4), torch.float64, grad_req="null", format="corner")
    exe.forward(data=torch.zeros(2, 5, 4, dtype=torch.float64), anchors=torch.from_numpy(anchors))
    np.testing.assert_allclose(exe.outputs[0].numpy(), np.broadcast_to(anchors, (2, 5, 4)), rtol=1e-15, atol=1e-14)


def test_the_clip_its_tie_its_gradient_and_nan():
    # scaled width offsets 0.5 (the clip itself: clipped), 0.25 (not), NaN (MXNet: the clip);
    # center anchors (1, 1) of sides 2
    data = torch.tensor([[[0.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.25, 0.0], [0.0, 0.0, float("nan"), 0.0]]],
                        dtype=torch.float64)
    anchors = torch.tensor([[[1.0, 1.0, 2.0, 2.0]] * 3], dtype=torch.float64)
    exe = _bind(data.shape, torch.float64, clip=0.5)
    exe.forward(is_train=True, data=data, anchors=anchors)
    exe.backward(out_grads=torch.ones(1, 3, 4, dtype=torch.float64) * torch.tensor([-1.0, -1.0, 1.0, 1.0],
                                                                                 dtype=torch.float64))
    out, grad = exe.outputs[0].numpy(), exe.grad_dict["data"].numpy()
    assert out[0, 0, 2] - out[0, 0, 0] == pytest.approx(2 * np.exp(0.5))
    assert out[0, 0, 3] - out[0, 0, 1] == pytest.approx(2 * np.exp(0.5))  # 1.0 clipped to 0.5 as well
    assert grad[0, 0, 2] == 0 and grad[0, 0, 3] == 0  # clipped: no gradient through the offset
    assert grad[0, 1, 2] == pytest.approx(2 * np.exp(0.25))  # d(width)/dt = w exp(t), the head 1 a side
    assert np.isnan(out[0, 2, [0, 2]]).all() and not np.isnan(out[0, 2, [1, 3]]).any()
    anchors_grad = exe.grad_dict["anchors"].numpy()  # (x, y, w, h): x's head sums to 0 over the box's sides
    assert np.isnan(grad[0, 2, 2]) and np.isnan(anchors_grad[0, 2, 2]) and anchors_grad[0, 2, 0] == 0


def test_the_anchors_gradient_sums_a_large_batch_the_same_bits_every_run(rng):
    data = torch.from_numpy(rng.normal(size=(300, 4, 4))).float()
    anchors = torch.from_numpy(_anchors(rng, 4, corner=True)).float()
    head = torch.from_numpy(rng.normal(size=(300, 4, 4))).float()
    exe = _bind(data.shape, torch.float32, grad_req={"data": "null", "anchors": "add"}, format="corner")
    grads = []
    for _ in range(2):
        exe.grad_dict["anchors"][:] = 0
        exe.forward(is_train=True, data=data, anchors=anchors)
        exe.backward(out_grads=head)
        grads.append(to_numpy(exe.grad_dict["anchors"]).copy())
    assert np.array_equal(grads[0], grads[1])
    data_ref, anchors_ref = data.double(), anchors.double().requires_grad_()
    _torch_decode(data_ref, anchors_ref, (1.0,) * 4, -1.0, True).backward(head.double())
    np.testing.assert_allclose(grads[0], anchors_ref.grad.numpy(), rtol=1e-5, atol=1e-3)


def test_refusals_name_the_operator_and_the_values():
    decode = lambda: S.contrib.box_decode(S.Variable("data"), S.Variable("anchors"))  # noqa: E731
    with pytest.raises(ShapeError, match=r"_contrib_box_decode.*data of shape \(2, 5\) must be \(batch, boxes, 4\)"):
        decode().infer_shape(data=(2, 5), anchors=(1, 5, 4))
    with pytest.raises(ShapeError, match=r"_contrib_box_decode.*anchors of shape \(1, 6, 4\) must hold one anchor for "
                                         r"each of data's 5 boxes"):
        decode().infer_shape(data=(2, 5, 4), anchors=(1, 6, 4))
    with pytest.raises(ShapeError, match=r"_contrib_box_decode.*anchors of shape \(5, 4\) must be \(1, boxes, 4\)"):
        decode().infer_shape(data=(2, 5, 4), anchors=(5, 4))
    assert decode().infer_shape(data=(2, 5, 4))[0] == [(2, 5, 4), (1, 5, 4)]
