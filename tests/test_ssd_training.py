"""SSD's whole training graph as MXNet's example builds it, trained with Module.fit on
synthetic images (one bright or dark square each): MultiBoxPrior's anchors, MultiBoxTarget's
targets from the labels and the class predictions, SoftmaxOutput over the classes ignoring
the anchors neither positive nor negative (normalized by the valid ones), the box-offset
loss through smooth_l1 and MakeLoss(normalization='valid'), and MultiBoxDetection's output
beside them with no gradient, grouped: the loss falls."""

from __future__ import annotations

import numpy as np
import pytest

import tritonsym as ts

S = ts.sym
pytestmark = pytest.mark.slow  # the targets' per-image programs are slow in the interpreter


def _images(rng, count, size=16):
    x = rng.normal(0, 0.05, (count, 1, size, size)).astype(np.float32)
    label = -np.ones((count, 2, 5), np.float32)  # one box an image, then a padding row
    for i in range(count):
        side = rng.integers(5, 9)
        top, left = rng.integers(0, size - side + 1, 2)
        cls = rng.integers(0, 2)
        x[i, 0, top:top + side, left:left + side] += 1.0 if cls == 0 else -1.0
        label[i, 0] = [cls, left / size, top / size, (left + side) / size, (top + side) / size]
    return x, label


def ssd(classes: int = 2, per_cell: int = 2):
    """A 4 x 4 feature map from fully connected layers (convolutions would do; these are
    quicker in the interpreter), 2 anchors a cell, and MXNet's SSD training heads."""
    data, label = S.Variable("data"), S.Variable("label")
    hidden = S.Activation(S.FullyConnected(data, num_hidden=64, name="fc1"), act_type="relu")
    grid = S.Reshape(S.FullyConnected(hidden, num_hidden=16 * 4 * 4, name="fc2"), shape=(-1, 16, 4, 4))
    anchors = S.contrib.MultiBoxPrior(grid, sizes=(0.35, 0.5), ratios=(1,), name="anchors")
    cls_preds = S.transpose(S.Reshape(S.FullyConnected(hidden, num_hidden=16 * per_cell * (classes + 1), name="cls"),
                                      shape=(0, -1, classes + 1)), axes=(0, 2, 1))
    loc_preds = S.FullyConnected(hidden, num_hidden=16 * per_cell * 4, name="loc")
    loc_target, loc_mask, cls_target = S.contrib.MultiBoxTarget(anchors, label, cls_preds, overlap_threshold=0.5,
                                                                 negative_mining_ratio=3, name="target")
    cls_prob = S.SoftmaxOutput(cls_preds, label=cls_target, ignore_label=-1, use_ignore=True, multi_output=True,
                               normalization="valid", name="cls_prob")
    loc_loss = S.MakeLoss(S.smooth_l1(loc_mask * (loc_preds - loc_target), scalar=1.0), normalization="valid",
                          name="loc_loss")
    cls_label = S.MakeLoss(cls_target, grad_scale=0, name="cls_label")
    detections = S.MakeLoss(S.contrib.MultiBoxDetection(cls_prob, loc_preds, anchors, nms_threshold=0.45, name="det"),
                            grad_scale=0, name="det_out")
    return S.Group([cls_prob, loc_loss, cls_label, detections])


class SSDLoss(ts.metric.EvalMetric):
    """The classes' cross-entropy over the anchors taken (not ignored) plus the box-offset
    loss per positive, as MXNet's SSD example reports them."""

    def __init__(self):
        super().__init__("ssd")

    def update(self, labels, preds):
        cls_prob, loc_loss, cls_target = (np.asarray(p.float()) for p in preds[:3])
        target = cls_target.astype(int)
        taken = target >= 0
        prob = np.take_along_axis(cls_prob, np.maximum(target, 0)[:, None, :], 1)[:, 0]
        self.sum_metric += float(-np.log(np.maximum(prob[taken], 1e-9)).mean()
                                 + loc_loss.sum() / max(1, (target > 0).sum()))
        self.num_inst += 1


def test_ssd_learns_its_targets(rng):
    net = ssd()
    assert net.list_outputs() == ["cls_prob_output", "loc_loss_output", "cls_label_output", "det_out_output"]
    x, y = _images(rng, 16)
    batches = ts.io.NDArrayIter(x, y, batch_size=16, label_name="label")
    module = ts.mod.Module(net, data_names=["data"], label_names=["label"])
    module.bind(data_shapes=batches.provide_data, label_shapes=batches.provide_label)
    module.init_params(initializer=ts.init.Xavier())
    before = dict(module.score(batches, SSDLoss()))["ssd"]
    module.fit(batches, num_epoch=8, optimizer="adam", optimizer_params={"learning_rate": 0.01},
               eval_metric=SSDLoss())
    after = dict(module.score(batches, SSDLoss()))["ssd"]
    assert after < 0.7 * before, (before, after)
    detections = module.predict(batches)[3]
    assert tuple(detections.shape) == (16, 32, 6) and np.isin(np.asarray(detections[..., 0]), (-1, 0, 1)).all()
