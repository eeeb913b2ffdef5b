"""contrib.box_nms beyond its generic operator cases: hundreds of boxes an image (suppression
across several blocks and tiles of survivors) against the oracle in every dtype, against
torchvision's batched_nms where it runs (the GPU machine), ties kept in row order, topk,
the background class and the score threshold compared in the data's dtype as MXNet does,
classes kept apart unless forced, NaN confined to its image, grad_req='add' and an
inference bind, and refusals that name the operator and the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from operator_cases import detections
from tolerances import DTYPES_FLOAT32_FIRST, assert_close, rounded, to_numpy

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
NAN = float("nan")


def _run(data, dtype=torch.float64, head=None, grad_req="write", is_train=True, **params):
    """(output, data's gradient or None) of box_nms over ``data`` (numpy) in ``dtype``."""
    exe = S.contrib.box_nms(S.Variable("data"), **params).simple_bind(
        ts.cpu(), data=data.shape, grad_req=grad_req, type_dict={"data": dtype})
    exe.forward(is_train=is_train, data=torch.from_numpy(np.asarray(data, np.float64)).to(dtype))
    if head is None:
        return to_numpy(exe.outputs[0]), None
    exe.backward(out_grads=torch.from_numpy(head).to(dtype))
    return to_numpy(exe.outputs[0]), to_numpy(exe.grad_dict["data"])


def _row(score, x1, y1, x2, y2, label=0.0):
    return [label, score, x1, y1, x2, y2]


@pytest.mark.parametrize("dtype", DTYPES_FLOAT32_FIRST)  # the others (5 s each) under -m slow
def test_hundreds_of_boxes_equal_the_oracle(dtype, rng):
    # 300 boxes an image, 3 classes: survivors fill several blocks of candidates, and the
    # later blocks are suppressed by several tiles of earlier survivors
    data = to_numpy(rounded(detections(rng, (2, 300, 6), thresh=None), dtype))
    head = to_numpy(rounded(rng.normal(size=data.shape), dtype))
    params = dict(id_index=0, topk=260, valid_thresh=0.25, out_format="center")
    out, grad = _run(data, dtype, head, **params)
    want = o.box_nms(data, **params)
    assert (want[..., 1] != -1).sum(axis=1).min() > 130  # more survivors than one block holds
    assert_close(out, want, dtype, "box_nms")
    assert_close(grad, o.box_nms(data, grad_head=head, **params), dtype, "box_nms's gradient")


def test_equals_torchvision_batched_nms_where_installed(rng):
    # torchvision's CPU build matches only a torch of its own release: the GPU machine has both
    try:
        from torchvision import ops
    except (ImportError, RuntimeError) as missing:  # RuntimeError: built for another torch
        pytest.skip(f"torchvision cannot run here: {missing}")
    data = detections(rng, (1, 200, 6), thresh=None)[0]
    boxes, scores, labels = (torch.from_numpy(a) for a in (data[:, 2:], data[:, 1], data[:, 0].astype(np.int64)))
    try:
        keep = ops.batched_nms(boxes, scores, labels, 0.5)
    except RuntimeError as broken:  # installed for another torch: its kernels are not registered
        pytest.skip(f"torchvision cannot run here: {broken}")
    out, _ = _run(data[None], id_index=0, valid_thresh=-1.0)
    assert np.array_equal(out[0, :len(keep)], data[keep.numpy()]) and (out[0, len(keep):] == -1).all()


def test_ties_keep_row_order_and_every_other_row_is_minus_one():
    # equal scores: the earlier row is taken first and suppresses the later one
    data = np.array([[_row(0.5, 0, 0, 2, 2), _row(0.9, 5, 5, 6, 6), _row(0.5, 0, 0, 2, 2.5), _row(0.5, 0, 0, 2, 2)]])
    out, _ = _run(data)
    assert np.array_equal(out[0, :2], data[0, [1, 0]]) and (out[0, 2:] == -1).all()


def test_topk_drops_the_rest_even_where_nothing_overlaps():
    data = np.array([[_row(0.1 * (i + 1), 3 * i, 0, 3 * i + 1, 1) for i in range(5)]])  # disjoint
    out, _ = _run(data, topk=3)
    assert np.array_equal(out[0, :3], data[0, [4, 3, 2]]) and (out[0, 3:] == -1).all()


def test_the_background_and_the_score_threshold():
    data = np.array([[_row(0.9, 0, 0, 1, 1, label=0), _row(0.5, 2, 2, 3, 3, label=1), _row(0.25, 4, 4, 5, 5, label=2),
                      _row(0.2, 6, 6, 7, 7, label=1)]])
    out, _ = _run(data, id_index=0, background_id=0, valid_thresh=0.25)  # a score at the threshold is dropped
    assert np.array_equal(out[0, :1], data[0, [1]]) and (out[0, 1:] == -1).all()


def test_the_score_threshold_is_compared_in_the_datas_dtype():
    # MXNet casts valid_thresh to the data's dtype: 0.01 in float16 is the score's own value
    score = float(torch.tensor(0.01, dtype=torch.float16))
    data = np.array([[_row(score, 0, 0, 1, 1), _row(0.5, 4, 4, 5, 5)]])
    out, _ = _run(data, torch.float16, valid_thresh=0.01)
    assert np.array_equal(out[0, 0], data[0, 1]) and (out[0, 1] == -1).all()
    out, _ = _run(data, torch.float32, valid_thresh=0.01)  # float32's 0.01 lies below it
    assert (out[0, :2, 1] != -1).all()


def test_classes_are_kept_apart_unless_forced():
    # the same box in classes 1, 1.7 (an id compared as an int: class 1) and 2
    data = np.array([[_row(0.9, 0, 0, 2, 2, label=1), _row(0.8, 0, 0, 2, 2, label=1.7),
                      _row(0.7, 0, 0, 2, 2, label=2)]])
    out, _ = _run(data, id_index=0)
    assert np.array_equal(out[0, :2], data[0, [0, 2]]) and (out[0, 2] == -1).all()
    out, _ = _run(data, id_index=0, force_suppress=True)
    assert np.array_equal(out[0, 0], data[0, 0]) and (out[0, 1:] == -1).all()


def test_a_nan_makes_its_image_nan_and_no_other(rng):
    data = detections(rng, (3, 6, 7))  # column 6 is read by nothing: a NaN there is copied
    data[0, 2, 3] = NAN  # a coordinate
    data[1, 4, 6] = NAN
    data[1, 4, 1] = 0.99  # the best score: this row survives, first
    head = rng.normal(size=data.shape)
    out, grad = _run(data, head=head, id_index=0)
    assert np.isnan(out[0]).all() and np.isnan(grad[0]).all()
    np.testing.assert_array_equal(out[1:], o.box_nms(data[1:], id_index=0))
    np.testing.assert_array_equal(grad[1:], o.box_nms(data[1:], id_index=0, grad_head=head[1:]))
    assert np.isnan(out[1, 0, 6]) and np.isnan(out[1:]).sum() == 1 and not np.isnan(grad[1:]).any()


def test_gradients_add_and_an_inference_bind_runs(rng):
    data = detections(rng, (2, 7, 6))
    head = rng.normal(size=data.shape)
    params = dict(id_index=0, in_format="corner", out_format="center")
    exe = S.contrib.box_nms(S.Variable("data"), **params).simple_bind(
        ts.cpu(), data=data.shape, grad_req="add", type_dict={"data": torch.float64})
    exe.grad_dict["data"][:] = 1.0
    for _ in range(2):
        exe.forward(is_train=True, data=torch.from_numpy(data))
        exe.backward(out_grads=torch.from_numpy(head))
    np.testing.assert_allclose(exe.grad_dict["data"].numpy(), 1 + 2 * o.box_nms(data, grad_head=head, **params),
                               rtol=1e-15, atol=1e-15)
    out, _ = _run(data, is_train=False, grad_req="null", **params)
    np.testing.assert_array_equal(out, o.box_nms(data, **params))


def test_refusals_name_the_operator_and_the_values():
    nms = lambda **params: S.contrib.box_nms(S.Variable("data"), **params)  # noqa: E731
    with pytest.raises(ShapeError, match=r"_contrib_box_nms.*data of shape \(4, 5\) holds 5 values a box, fewer than "
                                         r"the 6 of a score, 4 coordinates and a class id"):
        nms(id_index=0).infer_shape(data=(4, 5))
    with pytest.raises(ShapeError, match=r"_contrib_box_nms.*score_index=3 is one of the coordinates 2\.\.5"):
        nms(score_index=3).infer_shape(data=(2, 4, 6))
    with pytest.raises(ShapeError, match=r"_contrib_box_nms.*coord_start=3: the coordinates 3\.\.6 are not in "
                                         r"\[0, 6\)"):
        nms(coord_start=3, score_index=0).infer_shape(data=(4, 6))
    with pytest.raises(ShapeError, match=r"_contrib_box_nms.*id_index=1 is score_index too"):
        nms(id_index=1).infer_shape(data=(4, 6))
    with pytest.raises(ShapeError, match=r"_contrib_box_nms.*data of shape \(6,\) must have at least 2 axes"):
        nms().infer_shape(data=(6,))
    with pytest.raises(ParamError, match=r"_contrib_box_nms: topk=0 must be -1 \(every box\) or at least 1"):
        nms(topk=0)
    with pytest.raises(ParamError, match=r"_contrib_box_nms: out_format='xywh' is not one of 'corner', 'center'"):
        nms(out_format="xywh")
    assert S.contrib.box_non_maximum_suppression(S.Variable("data")).infer_shape(data=(2, 3, 6))[1] == [(2, 3, 6)]
