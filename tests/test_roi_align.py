"""contrib.ROIAlign beyond its generic operator cases (whose oracle MXNet 1.9.1's recorded
answers check): against torchvision's roi_align where it runs (the GPU machine), many
overlapping regions summed over several parts the same bits every run, grad_req='add' (the
float32 scratch of half dtypes too), padding, invalid regions and NaN pixels, a huge region
costing what the map holds, and refusals that name the operator and the values."""

from __future__ import annotations

import time

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import assert_close
from tritonsym.ops import roi_align as kernels

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
QUICK_FLOAT32 = [torch.float32, pytest.param(torch.bfloat16, marks=pytest.mark.slow)]  # the interpreter walks slowly


def _net(**params):
    params = {"pooled_size": (2, 2), "spatial_scale": 0.5, **params}
    return S.contrib.ROIAlign(S.Variable("data"), S.Variable("rois"), **params)


def _regions(rng, count, batches, size):
    """Random regions of the image (twice the map's size), some reaching past it."""
    x1, y1 = rng.uniform(-4, 2 * size[1], count), rng.uniform(-4, 2 * size[0], count)
    return np.stack([rng.integers(0, batches, count), x1, y1, x1 + rng.uniform(1, 9, count),
                     y1 + rng.uniform(1, 9, count)], axis=1)


@pytest.mark.parametrize("dtype", QUICK_FLOAT32)
def test_overlapping_regions_over_parts_sum_the_same_bits_every_run(dtype, rng, monkeypatch):
    monkeypatch.setattr(kernels, "REGIONS_PER_PART", 3)  # 8 regions: parts of 3, 3 and 2
    assert kernels.grad_parts(8) == 3
    data = torch.from_numpy(rng.normal(size=(2, 3, 5, 6))).to(dtype)
    rois = torch.from_numpy(_regions(rng, 8, 2, (5, 6))).to(dtype)
    head = torch.from_numpy(rng.normal(size=(8, 3, 2, 2))).to(dtype)
    exe = _net(sample_ratio=2).simple_bind(ts.cpu(), data=data.shape, rois=rois.shape,
                                           grad_req={"data": "add", "rois": "null"},
                                           type_dict={"data": dtype, "rois": dtype})
    exe.forward(is_train=True, data=data, rois=rois)
    exe.backward(out_grads=head)
    used = {"data": data.double().numpy(), "rois": rois.double().numpy()}
    assert_close(exe.outputs[0], o.roi_align(used["data"], used["rois"], (2, 2), 0.5, 2), dtype, "ROIAlign")
    want = o.roi_align_grad(head.double().numpy(), data.shape, used["rois"], (2, 2), 0.5, 2)
    assert_close(exe.grad_dict["data"], want, dtype, "the data's gradient")
    first = exe.grad_dict["data"].clone()
    exe.backward(out_grads=head)
    if dtype == torch.float32:  # the same sum again, added to itself: exactly twice (the same bits)
        assert torch.equal(exe.grad_dict["data"], 2 * first)
    assert_close(exe.grad_dict["data"], 2 * want, dtype, "the data's gradient, added")


@pytest.mark.parametrize("aligned", [False, True])
def test_equals_torchvision_roi_align_where_installed(aligned, rng):
    # torchvision's CPU build matches only a torch of its own release: the GPU machine has both
    try:
        from torchvision import ops
    except (ImportError, RuntimeError) as missing:  # RuntimeError: built for another torch
        pytest.skip(f"torchvision cannot run here: {missing}")
    data = torch.from_numpy(rng.normal(size=(2, 3, 5, 6)))
    rois = torch.from_numpy(_regions(rng, 6, 2, (5, 6)))
    data_ref = data.clone().requires_grad_()
    try:
        out = ops.roi_align(data_ref, rois, (2, 3), 0.5, -1, aligned)
    except RuntimeError as broken:  # installed for another torch: its kernels are not registered
        pytest.skip(f"torchvision cannot run here: {broken}")
    head = torch.from_numpy(rng.normal(size=out.shape))
    out.backward(head)
    exe = _net(pooled_size=(2, 3), aligned=aligned).simple_bind(
        ts.cpu(), data=data.shape, rois=rois.shape, grad_req={"data": "write", "rois": "null"},
        type_dict={"data": "float64", "rois": "float64"})
    exe.forward(is_train=True, data=data, rois=rois)
    exe.backward(out_grads=head)
    np.testing.assert_allclose(exe.outputs[0].numpy(), out.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(exe.grad_dict["data"].numpy(), data_ref.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_padding_invalid_regions_and_nan_pixels(rng):
    data = rng.normal(size=(2, 2, 5, 6))
    data[1, 0, 3, 4] = np.nan
    rois = np.array([[-1.0, 1, 1, 4, 4],  # padding: 0, no gradient
                     [2.0, 1, 1, 4, 4],  # batch past N: NaN
                     [0.5, 1, 1, 4, 4],  # batch not whole: NaN
                     [0.0, 1, np.inf, 4, 4],  # not finite: NaN
                     [1.0, 6, 4, 10, 9],  # reads the NaN pixel (4, 3) of channel 0 in some bins
                     [1.0, 0, 0, 3, 3]])  # far from it
    exe = _net().simple_bind(ts.cpu(), data=data.shape, rois=rois.shape, grad_req={"data": "write", "rois": "null"},
                             type_dict={"data": "float64", "rois": "float64"})
    exe.forward(is_train=True, data=torch.from_numpy(data), rois=torch.from_numpy(rois))
    exe.backward(out_grads=torch.ones(6, 2, 2, 2, dtype=torch.float64))
    out = exe.outputs[0].numpy()
    assert (out[0] == 0).all() and np.isnan(out[1:4]).all()
    assert np.isnan(out[4, 0]).any() and not np.isnan(out[4, 1]).any() and not np.isnan(out[5]).any()
    want = o.roi_align(data, rois, (2, 2), 0.5)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
    np.testing.assert_allclose(out[~np.isnan(out)], want[~np.isnan(want)], rtol=1e-12, atol=1e-12)
    grad = exe.grad_dict["data"].numpy()
    np.testing.assert_allclose(grad, o.roi_align_grad(np.ones((6, 2, 2, 2)), data.shape, rois, (2, 2), 0.5),
                               rtol=1e-12, atol=1e-12)


def test_a_huge_region_costs_what_the_map_holds(rng):
    # adaptive sampling would take 250000 points a side per bin; only those near the map are visited
    data = rng.normal(size=(1, 2, 4, 5))
    rois = np.array([[0.0, -1e6, -1e6, 1e6, 1e6]])
    exe = _net().simple_bind(ts.cpu(), data=data.shape, rois=rois.shape, grad_req="null",
                             type_dict={"data": "float64", "rois": "float64"})
    started = time.perf_counter()
    exe.forward(is_train=False, data=torch.from_numpy(data), rois=torch.from_numpy(rois))
    assert time.perf_counter() - started < 30
    out = exe.outputs[0].numpy()
    # the map lies where the four bins meet: each mean is over 250000 x 250000 points, a handful on the map
    assert np.isfinite(out).all() and 0 < np.abs(out).max() < 1e-6


def test_refusals_name_the_operator_and_the_values():
    with pytest.raises(ShapeError, match=r"_contrib_ROIAlign.*position-sensitive data of 6 channels must have a "
                                         r"multiple of the 4 bins"):
        _net(position_sensitive=True).infer_shape(data=(2, 6, 6, 7), rois=(3, 5))
    with pytest.raises(ShapeError, match=r"_contrib_ROIAlign.*rois of shape \(3, 4\) must be \(regions, 5\)"):
        _net().infer_shape(data=(2, 6, 6, 7), rois=(3, 4))
    with pytest.raises(ParamError, match=r"_contrib_ROIAlign: pooled_size=\(2, 0\) must be \(height, width\), both "
                                         r"positive"):
        _net(pooled_size=(2, 0))
    with pytest.raises(ParamError, match=r"_contrib_ROIAlign: spatial_scale=2.0 must be in \[0, 1\]"):
        _net(spatial_scale=2.0)


def test_infers_the_output_and_the_regions():
    args, outs, _ = _net(pooled_size=(7, 7), spatial_scale=0.0625).infer_shape(data=(2, 98, 20, 30), rois=(16, 5))
    assert outs == [(16, 98, 7, 7)]
    args, outs, _ = _net(pooled_size=(7, 7), spatial_scale=0.0625, position_sensitive=True).infer_shape(
        data=(2, 98, 20, 30), rois=(16, 5))
    assert outs == [(16, 2, 7, 7)]
