"""Metrics of predicted classes: accuracy, top-k accuracy, F1, Matthews correlation."""

from __future__ import annotations

import numpy as np

from ..base import ParamError
from .base import EvalMetric, arg_max, class_labels, register


@register("acc", "accuracy")
class Accuracy(EvalMetric):
    """Fraction of samples whose arg-max prediction (along ``axis``) equals the label.
    Predictions already given as class indices (same shape as the labels) are compared
    directly. A prediction holding NaN is never right."""

    def __init__(self, axis: int = 1, name: str = "accuracy", **kwargs):
        self.axis = axis
        super().__init__(name, **kwargs)

    def _update_one(self, label, pred):
        if pred.shape != label.shape:
            pred = arg_max(pred, self.axis)
        elif pred.dtype.kind == "f":  # class indices: NaN is no class
            pred = np.where(np.isnan(pred), -1, pred)
        pred = pred.reshape(-1).astype(np.int64)
        label = class_labels(self.name, label, pred.shape[0])
        self.sum_metric += float((pred == label).sum())
        self.num_inst += label.shape[0]


@register("top_k_accuracy", "top_k_acc")
class TopKAccuracy(EvalMetric):
    """Fraction of samples whose label is among the ``top_k`` highest predictions."""

    def __init__(self, top_k: int = 1, name: str = "top_k_accuracy", **kwargs):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ParamError(f"TopKAccuracy: top_k={top_k!r} must be an integer >= 1")
        self.top_k = top_k
        super().__init__(f"{name}_{top_k}", **kwargs)

    def _update_one(self, label, pred):
        if pred.ndim != 2:
            raise ParamError(f"{self.name}: predictions must be (batch, classes), got shape {pred.shape}")
        label = class_labels(self.name, label, pred.shape[0])
        k = min(self.top_k, pred.shape[1])
        top = np.argpartition(-pred, k - 1, axis=1)[:, :k]
        right = (top == label[:, None]).any(axis=1)
        if pred.dtype.kind == "f":  # a row holding NaN has no ranking: never right
            right &= ~np.isnan(pred).any(axis=1)
        self.sum_metric += float(right.sum())
        self.num_inst += label.shape[0]


@register("f1")
class F1(EvalMetric):
    """F1 score from true/false positives and negatives counted over every sample seen.

    ``average="binary"``: two classes, class 1 positive (0 when it is never labelled or
    predicted); ``"micro"`` is MXNet's name for the same. ``"macro"``: the mean F1 of the
    classes that were labelled or predicted at least once (as scikit-learn's ``f1_score``: a
    class absent from both says nothing about the classifier, and counting it as 0 would
    pull perfect predictions below 1); MXNet's ``"macro"`` averages per-batch scores
    instead, which depends on the batching (docs/mxnet.md). Predictions are scores per
    class (arg-max taken)."""

    def __init__(self, average: str = "binary", name: str = "f1", **kwargs):
        if average not in ("binary", "micro", "macro"):
            raise ParamError(f"F1: average={average!r} must be 'binary' (or MXNet's name for it, 'micro') or "
                             "'macro'")
        self.average = "binary" if average == "micro" else average
        super().__init__(name, **kwargs)

    def reset(self):
        super().reset()
        self.counts: dict[int, np.ndarray] = {}  # class -> [tp, fp, fn]

    def _update_one(self, label, pred):
        if pred.ndim != 2:
            raise ParamError(f"{self.name}: predictions must be (batch, classes), got shape {pred.shape}")
        label = class_labels(self.name, label, pred.shape[0])
        if self.average == "binary" and (pred.shape[1] != 2 or (label.size and (label.min() < 0 or label.max() > 1))):
            raise ParamError(f"{self.name}: average='binary' needs 2 classes and labels 0/1, got {pred.shape[1]} "
                             f"classes and labels in [{label.min()}, {label.max()}]; use F1(average='macro') for "
                             "more")
        if label.size and (label.min() < 0 or label.max() >= pred.shape[1]):
            raise ParamError(f"{self.name}: labels must be in [0, {pred.shape[1]}), got [{label.min()}, "
                             f"{label.max()}]")
        guess = arg_max(pred, 1)  # -1 for a row holding NaN: a miss of its label's class
        classes = [1] if self.average == "binary" else range(pred.shape[1])
        for c in classes:
            c_counts = self.counts.setdefault(c, np.zeros(3))
            c_counts += [((guess == c) & (label == c)).sum(), ((guess == c) & (label != c)).sum(),
                         ((guess != c) & (label == c)).sum()]
        self.num_inst += label.shape[0]

    def get(self):
        if not self.num_inst:
            return self.name, float("nan")
        seen = [(tp, fp, fn) for tp, fp, fn in self.counts.values() if tp + fp + fn]
        if not seen:  # binary: class 1 never labelled nor predicted
            return self.name, 0.0
        return self.name, float(np.mean([2 * tp / (2 * tp + fp + fn) for tp, fp, fn in seen]))


@register("mcc")
class MCC(EvalMetric):
    """Matthews correlation coefficient of a binary classifier (class 1 positive, arg-max
    of two scores), ``(tp·tn - fp·fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))`` with MXNet's
    rule for a zero factor (left out of the product). ``average="micro"`` (the default)
    counts over every sample seen; ``"macro"`` is MXNet 1.9.1's default, the mean of the
    per-batch coefficients."""

    def __init__(self, name: str = "mcc", average: str = "micro", **kwargs):
        if average not in ("micro", "macro"):
            raise ParamError(f"MCC: average={average!r} must be 'micro' (over all samples) or 'macro' (mean over "
                             "batches)")
        self.average = average
        super().__init__(name, **kwargs)

    def reset(self):
        super().reset()
        self.counts = np.zeros(4)  # tp, fp, tn, fn over all samples

    def _update_one(self, label, pred):
        if pred.ndim != 2 or pred.shape[1] != 2:
            raise ParamError(f"{self.name}: predictions must be (batch, 2) scores of a binary classifier, got shape "
                             f"{pred.shape}")
        label = class_labels(self.name, label, pred.shape[0])
        if label.size and (label.min() < 0 or label.max() > 1):
            raise ParamError(f"{self.name}: labels must be 0 or 1, got values in [{label.min()}, {label.max()}]")
        guess = arg_max(pred, 1)  # -1 for a row holding NaN: predicts neither class
        counts = np.array([((guess == 1) & (label == 1)).sum(), ((guess == 1) & (label == 0)).sum(),
                           ((guess == 0) & (label == 0)).sum(), ((guess != 1) & (label == 1)).sum()], dtype=float)
        if self.average == "macro":
            self.sum_metric += _matthews(*counts)
            self.num_inst += 1
        else:
            self.counts += counts
            self.num_inst += label.shape[0]

    def get(self):
        if not self.num_inst:
            return self.name, float("nan")
        return self.name, (self.sum_metric / self.num_inst if self.average == "macro" else _matthews(*self.counts))


def _matthews(tp: float, fp: float, tn: float, fn: float) -> float:
    denominator = 1.0
    for factor in (tp + fp, tp + fn, tn + fp, tn + fn):
        if factor:
            denominator *= factor
    return float((tp * tn - fp * fn) / np.sqrt(denominator))
