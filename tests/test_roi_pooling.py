"""ROIPooling beyond its generic operator case: MXNet's documented example, ties and NaN
(the first maximum and the first NaN take the gradient), overlapping regions summed over
several parts the same bits every run, grad_req='add', and refusals that name the
operator and the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import assert_close
from tritonsym.ops import roi_align

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _bind(data_shape, regions, pooled_size=(2, 2), spatial_scale=1.0, dtype="float64", grad_req="write"):
    net = S.ROIPooling(S.Variable("data"), S.Variable("rois"), pooled_size=pooled_size, spatial_scale=spatial_scale)
    return net.simple_bind(ts.cpu(), data=data_shape, rois=(regions, 5), grad_req={"data": grad_req, "rois": "null"},
                           type_dict={"data": dtype, "rois": dtype})


@pytest.mark.parametrize(("scale", "want"), [(1.0, [[14, 16], [26, 28]]), (0.7, [[7, 9], [19, 21]])])
def test_mxnet_documented_example(scale, want):
    exe = _bind((1, 1, 8, 6), 1, spatial_scale=scale)
    exe.forward(is_train=False, data=torch.arange(48.0, dtype=torch.float64).reshape(1, 1, 8, 6),
                rois=torch.tensor([[0.0, 0, 0, 4, 4]], dtype=torch.float64))
    np.testing.assert_array_equal(exe.outputs[0].numpy()[0, 0], want)


def test_the_first_maximum_and_the_first_nan_take_the_gradient():
    data = np.zeros((1, 2, 4, 4))  # channel 0: a flat bin, every pixel its maximum
    data[0, 1] = np.arange(16.0).reshape(4, 4)
    data[0, 1, 0, 1] = data[0, 1, 1, 0] = np.nan  # two NaN in the first bin of channel 1
    exe = _bind(data.shape, 1)
    exe.forward(is_train=True, data=torch.from_numpy(data), rois=torch.tensor([[0.0, 0, 0, 3, 3]]).double())
    exe.backward(out_grads=torch.ones(1, 2, 2, 2, dtype=torch.float64))
    out, grad = exe.outputs[0].numpy(), exe.grad_dict["data"].numpy()
    assert (out[0, 0] == 0).all() and np.isnan(out[0, 1, 0, 0]) and out[0, 1, 1, 1] == 15
    expected = np.zeros((2, 4, 4))
    expected[0, [0, 0, 2, 2], [0, 2, 0, 2]] = 1  # each bin's first pixel
    expected[1, 0, 1] = expected[1, 1, 3] = expected[1, 3, 1] = expected[1, 3, 3] = 1
    np.testing.assert_array_equal(grad[0], expected)


@pytest.mark.parametrize("dtype", [torch.float32, pytest.param(torch.bfloat16, marks=pytest.mark.slow)])
def test_overlapping_regions_over_parts_sum_the_same_bits_every_run(dtype, rng, monkeypatch):
    monkeypatch.setattr(roi_align, "REGIONS_PER_PART", 3)  # 8 regions: parts of 3, 3 and 2
    data = torch.from_numpy(rng.normal(size=(2, 3, 5, 6))).to(dtype)
    corner = rng.uniform(-4, 10, size=(8, 2))
    rois = torch.from_numpy(np.concatenate([rng.integers(0, 2, (8, 1)), corner, corner + rng.uniform(1, 9, (8, 2))],
                                           axis=1)).to(dtype)
    head = torch.from_numpy(rng.normal(size=(8, 3, 2, 2))).to(dtype)
    exe = _bind(data.shape, 8, spatial_scale=0.5, dtype=dtype, grad_req="add")
    exe.forward(is_train=True, data=data, rois=rois)
    exe.backward(out_grads=head)
    used = {"data": data.double().numpy(), "rois": rois.double().numpy()}
    assert_close(exe.outputs[0], o.roi_pooling(used["data"], used["rois"], (2, 2), 0.5), dtype, "ROIPooling")
    want = o.roi_pooling(used["data"], used["rois"], (2, 2), 0.5, grad_head=head.double().numpy())
    assert_close(exe.grad_dict["data"], want, dtype, "the data's gradient")
    first = exe.grad_dict["data"].clone()
    exe.backward(out_grads=head)
    if dtype == torch.float32:  # the same sum again, added to itself: exactly twice (the same bits)
        assert torch.equal(exe.grad_dict["data"], 2 * first)
    assert_close(exe.grad_dict["data"], 2 * want, dtype, "the data's gradient, added")


def test_refusals_name_the_operator_and_the_values():
    net = S.ROIPooling(S.Variable("data"), S.Variable("rois"), pooled_size=(2, 2), spatial_scale=0.5)
    with pytest.raises(ShapeError, match=r"ROIPooling.*rois of shape \(3, 4\) must be \(regions, 5\)"):
        net.infer_shape(data=(2, 6, 6, 7), rois=(3, 4))
    with pytest.raises(ShapeError, match=r"ROIPooling.*data of shape \(6, 6, 7\) must be \(batch, channels"):
        net.infer_shape(data=(6, 6, 7), rois=(3, 5))
    with pytest.raises(ParamError, match=r"ROIPooling: pooled_size=\(0, 2\) must be \(height, width\), both positive"):
        S.ROIPooling(S.Variable("data"), S.Variable("rois"), pooled_size=(0, 2), spatial_scale=0.5)
    with pytest.raises(ParamError, match=r"ROIPooling: spatial_scale=-0.5 must be in \[0, 1\]"):
        S.ROIPooling(S.Variable("data"), S.Variable("rois"), pooled_size=(2, 2), spatial_scale=-0.5)
