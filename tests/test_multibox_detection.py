"""contrib.MultiBoxDetection beyond its generic operator case: against the float64 oracle on
many anchors with real offsets; MXNet's rules at their edges (a probability at the
threshold, an IoU at nms_threshold, equal scores, nms_topk, force_suppress, only the
background); NaN confined to its image; no gradient; refusals that name the operator and
the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import assert_close, to_numpy
from tritonsym.ops import KernelArgumentError

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
INPUTS = ("cls_prob", "loc_pred", "anchor")


def _detect(cls_prob, loc_pred, anchor, dtype=torch.float32, grad_req="null", **params):
    images, classes, anchors = np.shape(cls_prob)
    net = S.contrib.MultiBoxDetection(*map(S.Variable, INPUTS), **params)
    exe = net.simple_bind(ts.cpu(), cls_prob=(images, classes, anchors), type_dict={n: dtype for n in INPUTS},
                          grad_req=grad_req)
    exe.forward(is_train=grad_req != "null", **{n: torch.as_tensor(np.asarray(v, np.float64)).to(dtype)
                                                for n, v in zip(INPUTS, (cls_prob, loc_pred, anchor))})
    return exe


def _inputs(rng, images, classes, anchors):
    logits = rng.normal(size=(images, anchors, classes)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    corner = rng.uniform(0, 0.8, (1, anchors, 2))
    anchor = np.concatenate([corner, corner + rng.uniform(0.05, 0.3, corner.shape)], -1)
    return probs.transpose(0, 2, 1), rng.normal(size=(images, anchors * 4)) * 0.5, anchor


@pytest.mark.parametrize("dtype", [torch.float32, pytest.param(torch.float64, marks=pytest.mark.slow)],
                         ids=["float32", "float64"])
def test_many_anchors_against_the_oracle(dtype, rng):
    values = _inputs(rng, 3, 6, 400)
    params = dict(threshold=0.05, nms_threshold=0.4, nms_topk=250)
    out = to_numpy(_detect(*values, dtype=dtype, **params).outputs[0])
    expected = o.multibox_detection(*values, **params)
    np.testing.assert_array_equal(out[..., 0], expected[..., 0])  # ids, suppressions and places
    assert_close(out, expected, dtype, "MultiBoxDetection")
    assert ((expected[..., 0] == -1) & (expected[..., 1] != -1)).sum() > 50  # many suppressed
    assert (expected[:, 250:] == -1).all() and (expected[:, 249, 1] != -1).all()  # the top 250 ranked


def _two_boxes(score_a, score_b, overlap_box, **params):
    """Anchors 0 and 1 (classes 1 and 1 unless given) with offsets 0 (boxes = anchors)."""
    cls_prob = np.zeros((1, 3, 2))
    cls_prob[0, 1] = [score_a, score_b]
    cls_prob[0, 0] = 1 - cls_prob[0, 1]
    anchor = np.array([[[0.0, 0.0, 0.5, 0.5], overlap_box]])
    return to_numpy(_detect(cls_prob, np.zeros((1, 8)), anchor, torch.float64, **params).outputs[0])


def test_an_iou_at_the_threshold_suppresses_and_a_probability_at_it_detects():
    # box 1 (0, 0, 0.5, 0.25) inside box 0: IoU exactly 0.5
    out = _two_boxes(0.9, 0.25, [0.0, 0.0, 0.5, 0.25], threshold=0.25, nms_threshold=0.5)
    np.testing.assert_array_equal(out[0, :, :2], [[0, 0.9], [-1, 0.25]])  # kept, then suppressed (its score kept)
    np.testing.assert_array_equal(out[0, 1, 2:], [0.0, 0.0, 0.5, 0.25])
    out = _two_boxes(0.9, 0.25, [0.0, 0.0, 0.5, 0.25], threshold=0.25, nms_threshold=0.501)
    np.testing.assert_array_equal(out[0, :, 0], [0, 0])
    out = _two_boxes(0.9, 0.2499, [0.0, 0.0, 0.5, 0.25], threshold=0.25)  # below the threshold: no detection
    np.testing.assert_array_equal(out[0, 1], [-1] * 6)


def test_equal_scores_keep_the_anchors_order_and_topk_cuts_after_sorting():
    cls_prob = np.zeros((1, 2, 4))
    cls_prob[0, 1] = [0.5, 0.7, 0.5, 0.6]
    cls_prob[0, 0] = 1 - cls_prob[0, 1]
    anchor = np.array([[[0.0, 0.0, 0.1, 0.1], [0.2, 0.2, 0.3, 0.3], [0.4, 0.4, 0.5, 0.5], [0.6, 0.6, 0.7, 0.7]]])
    out = to_numpy(_detect(cls_prob, np.zeros((1, 16)), anchor, torch.float64).outputs[0])
    np.testing.assert_array_equal(out[0, :, 1], [0.7, 0.6, 0.5, 0.5])
    np.testing.assert_array_equal(out[0, 2:, 2], [0.0, 0.4])  # anchor 0 before anchor 2
    out = to_numpy(_detect(cls_prob, np.zeros((1, 16)), anchor, torch.float64, nms_topk=2).outputs[0])
    np.testing.assert_array_equal(out[0, :2, 1], [0.7, 0.6])
    assert (out[0, 2:] == -1).all()  # MXNet leaves the leftovers unsorted there, id -1


def test_classes_suppress_apart_unless_forced():
    cls_prob = np.array([[[0.1, 0.1], [0.8, 0.1], [0.1, 0.8]]])  # anchor 0 class 1, anchor 1 class 2
    anchor = np.array([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.45]]])
    apart = to_numpy(_detect(cls_prob, np.zeros((1, 8)), anchor, torch.float64).outputs[0])
    forced = to_numpy(_detect(cls_prob, np.zeros((1, 8)), anchor, torch.float64, force_suppress=True).outputs[0])
    np.testing.assert_array_equal(apart[0, :, 0], [0, 1])
    np.testing.assert_array_equal(forced[0, :, 0], [0, -1])


def test_only_the_background_detects_nothing():
    out = to_numpy(_detect(np.ones((2, 1, 3)), np.zeros((2, 12)), np.full((1, 3, 4), 0.5), torch.float32).outputs[0])
    assert (out == -1).all()


@pytest.mark.parametrize("where, at", [("cls_prob", 37), ("loc_pred", 7), ("anchor", 7), ("cls_prob", 7)],
                         ids=["cls_prob", "loc_pred", "anchor", "background"])
def test_a_nan_makes_its_image_nan(where, at, rng):
    # the background's probability (class 0: the first 30 of an image's) is never read, as MXNet's
    values = list(_inputs(rng, 3, 4, 30))
    index = INPUTS.index(where)
    values[index] = values[index].copy()
    values[index].reshape(values[index].shape[0], -1)[(1 if where != "anchor" else 0), at] = np.nan
    out = to_numpy(_detect(*values, torch.float32).outputs[0])
    nan_images = [0, 1, 2] if where == "anchor" else [] if at == 7 and where == "cls_prob" else [1]
    for image in range(3):
        assert np.isnan(out[image]).all() == (image in nan_images) and (image in nan_images
                                                                       or not np.isnan(out[image]).any())
    assert_close(out, o.multibox_detection(*values), torch.float32, "MultiBoxDetection")


def test_half_ids_that_cannot_number_the_classes_are_refused():
    net = S.contrib.MultiBoxDetection(*map(S.Variable, INPUTS))
    with pytest.raises(KernelArgumentError, match=r"multibox_detection: torch.bfloat16 holds class ids exactly only "
                                                  r"to 256; cls_prob of shape \(1, 259, 3\) needs 257: use float32"):
        net.simple_bind(ts.cpu(), cls_prob=(1, 259, 3), type_dict={n: torch.bfloat16 for n in INPUTS})
    net.simple_bind(ts.cpu(), cls_prob=(1, 258, 3), type_dict={n: torch.bfloat16 for n in INPUTS})  # ids to 256


def test_no_input_takes_a_gradient(rng):
    exe = _detect(*_inputs(rng, 2, 3, 10), torch.float32, grad_req="write")
    exe.backward(out_grads=torch.ones(2, 10, 6))
    for name in INPUTS:
        assert not torch.any(exe.grad_dict[name] != 0), name


def test_refusals_name_the_operator_and_the_values():
    detect = lambda **p: S.contrib.MultiBoxDetection(*map(S.Variable, INPUTS), **p)  # noqa: E731
    for params, message in ((dict(background_id=1), r"background_id=1 must be 0: class 0 is the background"),
                            (dict(nms_threshold=0.0), r"nms_threshold=0.0 must be in \(0, 1\]"),
                            (dict(nms_threshold=1.5), r"nms_threshold=1.5 must be in \(0, 1\]"),
                            (dict(nms_topk=0), r"nms_topk=0 must be -1 \(every detection\) or at least 1"),
                            (dict(variances=(0.1, 0.2)), r"variances=\(0.1, 0.2\) must be four numbers")):
        with pytest.raises(ParamError, match=r"_contrib_MultiBoxDetection: " + message):
            detect(**params)
    with pytest.raises(ShapeError, match=r"_contrib_MultiBoxDetection.*loc_pred"):
        detect().infer_shape(cls_prob=(2, 3, 5), loc_pred=(2, 16))
    with pytest.raises(ShapeError, match=r"_contrib_MultiBoxDetection.*anchor"):
        detect().infer_shape(cls_prob=(2, 3, 5), anchor=(1, 6, 4))
    with pytest.raises(ShapeError, match=r"_contrib_MultiBoxDetection.*cls_prob of shape \(2, 15\) must be "
                                         r"\(batch, classes, anchors\)"):
        detect().infer_shape(cls_prob=(2, 15))
