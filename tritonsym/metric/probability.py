"""Metrics of predicted probabilities: cross-entropy, negative log-likelihood, perplexity."""

from __future__ import annotations

import math

import numpy as np

from ..base import ParamError
from .base import EvalMetric, class_labels, register


@register("ce", "cross-entropy", "cross_entropy")
class CrossEntropy(EvalMetric):
    """Mean of ``-log(p[label] + eps)`` over samples; predictions are probabilities."""

    def __init__(self, eps: float = 1e-12, name: str = "cross-entropy", **kwargs):
        self.eps = eps
        super().__init__(name, **kwargs)

    def _update_one(self, label, pred):
        pred = pred.reshape(pred.shape[0], -1)
        label = class_labels(self.name, label, pred.shape[0])
        if label.size and (label.min() < 0 or label.max() >= pred.shape[1]):
            raise ParamError(f"{self.name}: labels must be in [0, {pred.shape[1]}), got [{label.min()}, "
                             f"{label.max()}]")
        prob = pred[np.arange(label.shape[0]), label].astype(np.float64)
        self.sum_metric += float(-np.log(prob + self.eps).sum())
        self.num_inst += label.shape[0]


@register("nll_loss", "nll-loss")
class NegativeLogLikelihood(CrossEntropy):
    """Mean of ``-log(p[label] + eps)`` over samples (MXNet's ``nll-loss``: cross-entropy by another name)."""

    def __init__(self, eps: float = 1e-12, name: str = "nll-loss", **kwargs):
        super().__init__(eps, name, **kwargs)


@register("perplexity")
class Perplexity(EvalMetric):
    """``exp`` of the mean of ``-log(max(p[label], 1e-10))`` over the predictions, the
    probabilities picked along ``axis`` (the last by default); labels equal to
    ``ignore_label`` are left out (a padding token; None for none, which must be said, as in
    MXNet). As MXNet's."""

    def __init__(self, ignore_label: int | None, axis: int = -1, name: str = "perplexity", **kwargs):
        self.ignore_label = ignore_label
        self.axis = axis
        super().__init__(name, **kwargs)

    def _update_one(self, label, pred):
        classes = pred.shape[self.axis]
        probs = np.moveaxis(pred, self.axis, -1).reshape(-1, classes).astype(np.float64)
        label = class_labels(self.name, label, probs.shape[0])
        keep = label != self.ignore_label if self.ignore_label is not None else np.ones(label.shape, bool)
        if keep.any() and (label[keep].min() < 0 or label[keep].max() >= classes):
            raise ParamError(f"{self.name}: labels must be in [0, {classes}), got [{label[keep].min()}, "
                             f"{label[keep].max()}]")
        picked = probs[np.flatnonzero(keep), label[keep]]
        self.sum_metric += float(-np.log(np.maximum(picked, 1e-10)).sum()) if picked.size else 0.0
        self.num_inst += int(keep.sum())

    def get(self):
        return self.name, (math.exp(self.sum_metric / self.num_inst) if self.num_inst else float("nan"))
