"""contrib.MultiBoxTarget beyond its generic operator cases: against the float64 oracle on
many anchors with and without negative mining; MXNet's rules at their edges (each box's
best anchor below the threshold, two boxes wanting one anchor, equal IoUs, the mined count
and its ties, rows after the first padding row, an image without boxes); NaN where it
belongs and nowhere else; half precision; no gradient; refusals that name the operator and
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
INPUTS = ("anchor", "label", "cls_pred")


def _targets(anchor, label, cls_pred, dtype=torch.float64, grad_req="null", **params):
    net = S.contrib.MultiBoxTarget(*map(S.Variable, INPUTS), **params)
    values = dict(zip(INPUTS, (anchor, label, cls_pred)))
    exe = net.simple_bind(ts.cpu(), **{n: np.shape(v) for n, v in values.items()},
                          type_dict={n: dtype for n in INPUTS}, grad_req=grad_req)
    exe.forward(is_train=grad_req != "null",
                **{n: torch.as_tensor(np.asarray(v, np.float64)).to(dtype) for n, v in values.items()})
    return exe


def _outputs(*args, **kwargs):
    return [to_numpy(t) for t in _targets(*args, **kwargs).outputs]


def _boxes(rng, count, low=0.0, high=0.8):
    corner = rng.uniform(low, high, (count, 2))
    return np.concatenate([corner, corner + rng.uniform(0.05, 0.4, corner.shape)], -1)


def _inputs(rng, images, anchors, boxes, classes):
    label = -np.ones((images, boxes, 6))
    for b in range(images):
        count = rng.integers(1, boxes + 1)
        label[b, :count, 0] = rng.integers(0, classes - 1, count)
        label[b, :count, 1:5] = _boxes(rng, count, high=0.7)
        label[b, :count, 5] = 9.0  # a difficulty column: read by nothing
    return _boxes(rng, anchors)[None], label, rng.normal(size=(images, classes, anchors)) * 2


MINING = dict(overlap_threshold=0.3, negative_mining_ratio=3, negative_mining_thresh=0.5)


@pytest.mark.parametrize("params", [{}, MINING, dict(overlap_threshold=0.0, negative_mining_ratio=2.5,
                                                     negative_mining_thresh=0.3, minimum_negative_samples=40)],
                         ids=["defaults", "mining", "mining-bipartite-only"])
@pytest.mark.parametrize("dtype", [torch.float32, pytest.param(torch.float64, marks=pytest.mark.slow)],
                         ids=["float32", "float64"])
def test_many_anchors_against_the_oracle(params, dtype, rng):
    values = _inputs(rng, 3, 300, 8, 5)
    got = _outputs(*values, dtype=dtype, **params)
    expected = o.multibox_target(*values, **params)
    np.testing.assert_array_equal(got[2], expected[2])  # every anchor's class: its match and its mining
    np.testing.assert_array_equal(got[1], expected[1])
    assert_close(got[0], expected[0], dtype, "MultiBoxTarget")
    positives, negatives = (expected[2] > 0).sum(), (expected[2] == 0).sum()
    assert positives > 10 and negatives > 30 and ((expected[2] == -1).sum() > 100) == bool(params)


def test_mxnet_example():
    # MXNet's own test of the operator: one box, two anchors, one mined negative
    anchor = [[[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]]
    cls_pred = np.arange(10.0).reshape(1, -1, 2)
    loc, mask, cls = _outputs(anchor, [[[1, 0.1, 0.1, 0.5, 0.6]]], cls_pred, torch.float32, overlap_threshold=0.5,
                              negative_mining_ratio=3, negative_mining_thresh=0.4)
    np.testing.assert_allclose(loc, [[5.0, 2.5000005, 3.4657357, 4.581454, 0, 0, 0, 0]], rtol=1e-6)
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(cls, [[2, 0]])


def test_each_box_takes_its_best_anchor_first_then_anchors_pass_the_threshold():
    # box 0 overlaps anchor 0 by 0.25 (below the threshold: its best anchor all the same);
    # box 1 overlaps anchors 1 and 2 by 0.5 and 0.8: anchor 2 first, anchor 1 above 0.4 too
    anchor = [[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 0.75, 1.0], [0.5, 0.5, 0.9, 1.0], [0.0, 0.6, 0.2, 0.9]]]
    label = [[[0, 0.0, 0.0, 0.25, 0.25], [2, 0.5, 0.5, 1.0, 1.0]]]
    loc, mask, cls = _outputs(anchor, label, np.zeros((1, 4, 4)), overlap_threshold=0.4)
    np.testing.assert_array_equal(cls, [[1, 3, 3, 0]])
    np.testing.assert_array_equal(mask[0].reshape(4, 4)[:, 0], [1, 1, 1, 0])
    # anchor 0's center (0.25, 0.25), sides 0.5; box 0's (0.125, 0.125), sides 0.25
    v0, v2 = float(np.float32(0.1)), float(np.float32(0.2))  # float32 parameters, as MXNet's
    np.testing.assert_allclose(loc[0, :4], [-0.125 / 0.5 / v0, -0.125 / 0.5 / v0, np.log(0.5) / v2,
                                            np.log(0.5) / v2], rtol=1e-12)
    # at a threshold of 0.6 only the best pairs: anchor 1 (0.5) is a negative
    np.testing.assert_array_equal(_outputs(anchor, label, np.zeros((1, 4, 4)), overlap_threshold=0.6)[2],
                                  [[1, 0, 3, 0]])


def test_two_boxes_wanting_one_anchor_and_equal_overlaps():
    # both boxes overlap anchor 0 best; box 1 more (0.64 vs 0.5625): box 1 takes it, box 0 its
    # second best; anchors 2 and 3 overlap box 0 equally: the first one takes it
    anchor = [[[0.0, 0.0, 1.0, 1.0], [0.6, 0.6, 0.9, 0.9], [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]]]
    label = [[[0, 0.0, 0.0, 0.75, 0.75], [1, 0.1, 0.1, 0.9, 0.9]]]
    _, _, cls = _outputs(anchor, label, np.zeros((1, 3, 4)), overlap_threshold=0.9)
    np.testing.assert_array_equal(cls, [[2, 0, 1, 0]])
    # an IoU of 1e-6 or less matches nothing: box 0 far from every anchor
    _, mask, cls = _outputs([[[0.0, 0.0, 0.1, 0.1]]], [[[0, 0.5, 0.5, 0.6, 0.6]]], np.zeros((1, 2, 1)))
    np.testing.assert_array_equal(cls, [[0]])
    assert not mask.any()


def test_the_best_pair_wins_across_tiles_of_boxes():
    # 72 boxes: past one tile of 64. Anchor 5 is box 3 (IoU 1), anchor 0 overlaps box 4 by
    # 0.75 and box 70 by 0.5, anchor 6 box 70 by 1/13: box 3, then box 4 take their anchors,
    # box 70 anchor 6. Taking the second tile's best (anchor 0, box 70) first, for its
    # earlier anchor, would leave box 4 without one.
    far_box, far_anchor = [0.5, 0.0, 0.55, 0.05], [0.95, 0.95, 1.0, 1.0]
    anchor = np.array([[[0.0, 0.0, 0.4, 0.4]] + [far_anchor] * 4 + [[0.6, 0.6, 0.9, 0.9], [0.1, 0.3, 0.3, 0.6]]])
    label = np.array([[[3.0, *far_box]] * 72])
    label[0, 3] = [0, 0.6, 0.6, 0.9, 0.9]
    label[0, 4] = [1, 0.0, 0.0, 0.4, 0.3]
    label[0, 70] = [2, 0.0, 0.0, 0.2, 0.4]
    _, _, cls = _outputs(anchor, label, np.zeros((1, 5, 7)), overlap_threshold=0.9)
    np.testing.assert_array_equal(cls, [[2, 0, 0, 0, 0, 1, 3]])


def _mining(probabilities, **params):
    """Anchor 0 a positive (box 0 its own), the others far from it, their background
    probabilities given (logits of a 2-class softmax)."""
    count = len(probabilities) + 1
    anchor = np.array([[[0.0, 0.0, 0.1, 0.1]] + [[0.5, 0.5, 0.6, 0.6]] * (count - 1)])
    p = np.array([0.5, *probabilities])
    cls_pred = np.stack([np.log(p), np.log(1 - p)])[None]
    label = [[[0, 0.0, 0.0, 0.1, 0.1]]]
    return _outputs(anchor, label, cls_pred, **dict(dict(negative_mining_ratio=2.5), **params))[2][0]


def test_mining_takes_the_least_background_probability_ties_by_anchor():
    # int(1 x 2.5) = 2 negatives: the two least probabilities, the earlier of equal ones
    np.testing.assert_array_equal(_mining([0.9, 0.2, 0.7, 0.2, 0.1]), [1, -1, 0, -1, -1, 0])
    np.testing.assert_array_equal(_mining([0.9, 0.3, 0.7, 0.3, 0.3]), [1, -1, 0, -1, 0, -1])
    # at least minimum_negative_samples (MXNet's GPU code), at most the anchors left
    np.testing.assert_array_equal(_mining([0.9, 0.3, 0.7, 0.4, 0.1], minimum_negative_samples=4),
                                  [1, -1, 0, 0, 0, 0])
    np.testing.assert_array_equal(_mining([0.9, 0.3], minimum_negative_samples=9), [1, 0, 0])
    np.testing.assert_array_equal(_mining([0.9, 0.3, 0.2], ignore_label=-5), [1, -5, 0, 0])


def test_mining_candidates_are_below_its_threshold_and_may_be_fewer_than_wanted():
    # anchors overlapping box 0 by 0.5 are not candidates at negative_mining_thresh 0.5; MXNet
    # 1.9.1 fails its check when fewer candidates remain than it wants, tritonsym takes them all
    anchor = [[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.25], [0.0, 0.0, 0.5, 0.25], [0.7, 0.7, 0.9, 0.9]]]
    label = [[[0, 0.0, 0.0, 0.5, 0.5]]]
    _, _, cls = _outputs(anchor, label, np.zeros((1, 2, 4)), negative_mining_ratio=3, overlap_threshold=0.6)
    np.testing.assert_array_equal(cls, [[1, -1, -1, 0]])


def test_padding_ends_the_boxes_and_an_image_without_boxes_is_ignored():
    anchor = [[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0]]]
    label = [[[0, 0.0, 0.0, 0.5, 0.5], [-1, -1, -1, -1, -1], [1, 0.5, 0.5, 1.0, 1.0]],  # the third row is unread
             [[-1] * 5, [0, 0.0, 0.5, 0.5, 1.0], [-1] * 5]]
    loc, mask, cls = _outputs(anchor, label, np.zeros((2, 3, 3)), ignore_label=-3)
    np.testing.assert_array_equal(cls, [[1, 0, 0], [-3, -3, -3]])
    assert not loc[1].any() and not mask[1].any() and mask[0].sum() == 4


@pytest.mark.parametrize("where", ["anchor", "box", "unread-box", "candidate", "positive-logit", "class"])
def test_nan_where_it_belongs(where, rng):
    anchor, _, cls_pred = _inputs(rng, 3, 40, 4, 4)
    label = -np.ones((3, 4, 5))  # two boxes an image, classes 0 and 1, then padding
    label[:, :2, 0] = [0, 1]
    label[:, :2, 1:] = _boxes(rng, 6, high=0.7).reshape(3, 2, 4)
    expected = o.multibox_target(anchor, label, cls_pred, **MINING)
    if where == "anchor":
        anchor[0, 5, 2] = np.nan
    elif where == "box":
        label[1, 1, 3] = np.nan
    elif where == "unread-box":
        label[1, 3, 1:5] = np.nan  # after the padding row: never read
    elif where in ("candidate", "positive-logit"):
        classes = expected[2][2]
        cls_pred[2, 1, np.flatnonzero(classes == (0 if where == "candidate" else 1))[0]] = np.nan
    else:
        label[2, 1, 0] = 1.5
    loc, mask, cls = _outputs(anchor, label, cls_pred, torch.float32, **MINING)
    for got, want in zip((loc, mask, cls), o.multibox_target(anchor, label, cls_pred, **MINING)):
        assert_close(got, want, torch.float32, "MultiBoxTarget")  # NaN where the oracle has it
    nan_images = {"anchor": [0, 1, 2], "box": [1], "unread-box": [], "candidate": [2], "positive-logit": [],
                  "class": [2]}[where]
    assert sorted({int(b) for b in np.argwhere(np.isnan(cls))[:, 0]}) == nan_images
    if where == "candidate":  # only the classes: the positives' offsets stand
        assert not np.isnan(loc).any() and not np.isnan(mask).any() and np.isnan(cls[2]).all()
    if where == "class":  # only the positives of that box
        assert 0 < np.isnan(cls[2]).sum() < 40 and not np.isnan(loc).any()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
def test_half_precision(dtype, rng):
    values = [torch.as_tensor(v).to(dtype).double().numpy() for v in _inputs(rng, 2, 120, 5, 4)]
    got = _outputs(*values, dtype=dtype, **MINING)
    expected = o.multibox_target(*values, **MINING)
    np.testing.assert_array_equal(got[2], expected[2])
    assert_close(got[0], expected[0], dtype, "MultiBoxTarget")


def test_half_class_targets_that_cannot_be_held_are_refused():
    net = S.contrib.MultiBoxTarget(*map(S.Variable, INPUTS))
    shapes = dict(anchor=(1, 3, 4), label=(1, 2, 5))
    with pytest.raises(KernelArgumentError, match=r"multibox_target: torch.bfloat16 holds class targets exactly only "
                                                  r"to 256; cls_pred of shape \(1, 258, 3\) needs 257: use float32"):
        net.simple_bind(ts.cpu(), cls_pred=(1, 258, 3), type_dict={n: torch.bfloat16 for n in INPUTS}, **shapes)
    net.simple_bind(ts.cpu(), cls_pred=(1, 257, 3), type_dict={n: torch.bfloat16 for n in INPUTS}, **shapes)


def test_no_input_takes_a_gradient(rng):
    exe = _targets(*_inputs(rng, 2, 10, 3, 3), torch.float32, grad_req="write")
    exe.backward(out_grads=[torch.ones(2, 40), torch.ones(2, 40), torch.ones(2, 10)])
    for name in INPUTS:
        assert not torch.any(exe.grad_dict[name] != 0), name


def test_names_and_shapes_as_mxnet():
    net = S.contrib.MultiBoxTarget(*map(S.Variable, INPUTS), name="t")
    assert net.list_outputs() == ["t_loc_target", "t_loc_mask", "t_cls_target"]
    assert net.infer_shape(anchor=(1, 7, 4), label=(3, 2, 6), cls_pred=(3, 4, 7))[1] == [(3, 28), (3, 28), (3, 7)]
    assert net.infer_shape(label=(3, 2, 6), cls_pred=(3, 4, 7))[0] == [(1, 7, 4), (3, 2, 6), (3, 4, 7)]


def test_refusals_name_the_operator_and_the_values():
    target = lambda **p: S.contrib.MultiBoxTarget(*map(S.Variable, INPUTS), **p)  # noqa: E731
    for params, message in ((dict(variances=(0.1, 0.0, 0.2, 0.2)), r"variances=\(0.1, 0.0, 0.2, 0.2\) must be four "
                                                                    r"nonzero numbers"),
                            (dict(minimum_negative_samples=-1), r"minimum_negative_samples=-1 must be 0 or more"),
                            (dict(ignore_label=float("nan")), r"ignore_label=nan must be a finite number")):
        with pytest.raises(ParamError, match=r"_contrib_MultiBoxTarget: " + message):
            target(**params)
    with pytest.raises(KernelArgumentError, match=r"multibox_target: negative_mining_thresh=0.0 must be above 0 when "
                                                  r"negative_mining_ratio=3.0 mines negatives"):
        target(negative_mining_ratio=3, negative_mining_thresh=0).simple_bind(
            ts.cpu(), anchor=(1, 3, 4), label=(1, 2, 5), cls_pred=(1, 2, 3))
    with pytest.raises(ShapeError, match=r"_contrib_MultiBoxTarget.*label of shape \(2, 3, 4\) must be \(batch, "
                                         r"boxes >= 1, width >= 5\)"):
        target().infer_shape(anchor=(1, 5, 4), label=(2, 3, 4), cls_pred=(2, 3, 5))
    with pytest.raises(ShapeError, match=r"_contrib_MultiBoxTarget.*cls_pred"):
        target().infer_shape(anchor=(1, 5, 4), label=(2, 3, 5), cls_pred=(2, 3, 6))
    with pytest.raises(ShapeError, match=r"_contrib_MultiBoxTarget.*anchor"):
        target().infer_shape(anchor=(2, 5, 4), label=(2, 3, 5), cls_pred=(2, 3, 5))
