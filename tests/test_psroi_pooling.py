"""PSROIPooling beyond its generic operator cases (numpy oracle in every dtype, float64
gradient checks, NaN) and MXNet's recorded answers: a region's bins worked out by hand,
padding and invalid regions, many regions summed in parts, and refusals that name the
operator and the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import assert_close

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _run(values: dict, head=None, dtype=torch.float64, **params):
    net = S.contrib.PSROIPooling(S.Variable("data"), S.Variable("rois"), **params)
    exe = net.simple_bind(ts.cpu(), grad_req={"data": "write", "rois": "null"}, type_dict={"data": dtype,
                                                                                            "rois": dtype},
                          data=values["data"].shape, rois=values["rois"].shape)
    exe.forward(is_train=True, data=torch.as_tensor(values["data"]).to(dtype),
                rois=torch.as_tensor(values["rois"]).to(dtype))
    if head is not None:
        exe.backward(out_grads=[torch.as_tensor(head).to(dtype)])
    return exe


def test_each_bin_reads_its_own_channels():
    """One 4 x 4 map of 2 classes x 2 x 2 groups; the region (0, 0)-(3, 3) cut into 2 x 2
    bins of 2 x 2 pixels: class k's bin (i, j) is the mean of channel (2 k + i) 2 + j there."""
    data = np.arange(8 * 16, dtype=np.float64).reshape(1, 8, 4, 4)
    exe = _run({"data": data, "rois": np.array([[0, 0.0, 0.0, 3.0, 3.0]])}, head=np.ones((1, 2, 2, 2)),
               spatial_scale=1.0, output_dim=2, pooled_size=2)
    out = exe.outputs[0].numpy()[0]
    for k in range(2):
        for i in range(2):
            for j in range(2):
                assert out[k, i, j] == data[0, (2 * k + i) * 2 + j, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean()
    # each pixel of each channel is in exactly one bin of its class: a quarter of that bin's gradient
    top_left = np.array([0.25, 0, 0, 0, 0.25, 0, 0, 0])  # channels 0 and 4 read bin (0, 0) there
    np.testing.assert_array_equal(exe.grad_dict["data"].numpy()[0, :, :2, :2],
                                  np.broadcast_to(top_left[:, None, None], (8, 2, 2)))


def test_padding_is_zero_and_an_invalid_batch_index_nan(rng):
    data = rng.normal(size=(2, 9, 5, 5))
    rois = np.array([[-1, 0.0, 0.0, 4.0, 4.0], [0.5, 0.0, 0.0, 4.0, 4.0], [2, 0.0, 0.0, 4.0, 4.0],
                     [1, 0.0, np.inf, 4.0, 4.0], [1, 1.0, 1.0, 3.0, 4.0]])
    exe = _run({"data": data, "rois": rois}, head=np.ones((5, 1, 3, 3)), spatial_scale=1.0, output_dim=1,
               pooled_size=3)
    out = exe.outputs[0].numpy()
    assert (out[0] == 0).all() and np.isnan(out[1:4]).all() and np.isfinite(out[4]).all()
    grad = exe.grad_dict["data"].numpy()
    assert (grad[0] == 0).all() and np.isfinite(grad).all()  # only region 4 (image 1) takes a gradient
    np.testing.assert_allclose(grad, o.psroi_pooling(data, rois, 1, 3, 3, 1.0, grad_head=np.ones((5, 1, 3, 3))))


@pytest.mark.slow  # 40 regions: the gradient summed in 3 parts
def test_many_regions_sum_in_parts(rng):
    corner = rng.uniform(0, 40, size=(40, 2))
    rois = np.concatenate([rng.integers(0, 2, size=(40, 1)), corner, corner + rng.uniform(8, 60, size=(40, 2))], 1)
    data, head = rng.normal(size=(2, 2 * 9, 9, 11)), rng.normal(size=(40, 2, 3, 3))
    exe = _run({"data": data, "rois": rois}, head=head, dtype=torch.float32, spatial_scale=0.125, output_dim=2,
               pooled_size=3)
    used = exe.arg_dict["data"].double().numpy()
    assert_close(exe.outputs[0], o.psroi_pooling(used, rois, 2, 3, 3, 0.125), torch.float32, "forward")
    want = o.psroi_pooling(used, rois, 2, 3, 3, 0.125, grad_head=head.astype(np.float32).astype(np.float64))
    assert_close(exe.grad_dict["data"], want, torch.float32, "gradient", scale=4.0)


@pytest.mark.parametrize("params, shapes, message", [
    (dict(output_dim=2, pooled_size=3), {"data": (1, 17, 5, 5), "rois": (2, 5)},
     "17 channels; output_dim=2 x group_size=3 squared needs 18"),
    (dict(output_dim=2, pooled_size=3, group_size=2), {"data": (1, 8, 5, 5), "rois": (2, 4)}, "rois"),
    (dict(output_dim=2, pooled_size=0), {}, "pooled_size"),
    (dict(output_dim=2, pooled_size=3, group_size=-1), {}, "group_size"),
])
def test_bad_parameters_and_shapes_are_refused_by_name(params, shapes, message):
    with pytest.raises((ParamError, ShapeError), match=message):
        S.contrib.PSROIPooling(S.Variable("data"), S.Variable("rois"), spatial_scale=0.5, **params).infer_shape(
            **shapes)
