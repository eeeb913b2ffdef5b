"""Evaluation metrics, accumulated over batches on the host (MXNet's ``mx.metric``).

``update(labels, preds)`` takes lists of arrays (torch tensors or numpy), one per label
and per output; ``get()`` returns ``(name, value)``; ``reset()`` starts over. Sums are
kept in float64, so a metric over many batches does not drift.

>>> import numpy as np, tritonsym as ts
>>> acc = ts.metric.create("acc")
>>> acc.update([np.array([0, 1, 1])], [np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])])
>>> acc.get()
('accuracy', 0.6666666666666666)
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from .base import ParamError

METRICS: dict[str, type["EvalMetric"]] = {}


def register(*names: str):
    def wrap(cls):
        for name in names:
            METRICS[name] = cls
        return cls
    return wrap


def create(metric, **kwargs) -> "EvalMetric":
    """A metric from a name (``"acc"``, ``"ce"``, ``"top_k_accuracy"``, ...), an instance, a
    function ``f(label, pred) -> float`` (averaged over batches), or a list of these (a
    ``CompositeEvalMetric``)."""
    if isinstance(metric, EvalMetric):
        return metric
    if isinstance(metric, (list, tuple)):
        return CompositeEvalMetric([create(m, **kwargs) for m in metric])
    if callable(metric):
        return CustomMetric(metric, **kwargs)
    if isinstance(metric, str) and metric.lower() in METRICS:
        return METRICS[metric.lower()](**kwargs)
    raise ParamError(f"metric: unknown metric {metric!r}; known names: {', '.join(sorted(METRICS))}")


def to_numpy(array) -> np.ndarray:
    """A host float64 (or integer) numpy copy of a torch tensor or array."""
    if isinstance(array, torch.Tensor):
        array = array.detach()
        if array.dtype in (torch.float16, torch.bfloat16):
            array = array.float()  # numpy has no bfloat16
        return array.cpu().numpy()
    return np.asarray(array)


class EvalMetric:
    """Base class: a running ``sum_metric / num_inst``."""

    def __init__(self, name: str, output_names: Sequence[str] | None = None,
                 label_names: Sequence[str] | None = None):
        self.name = name
        self.output_names = output_names
        self.label_names = label_names
        self.reset()

    def reset(self) -> None:
        self.sum_metric = 0.0
        self.num_inst = 0

    def update(self, labels: Sequence, preds: Sequence) -> None:
        labels, preds = list(labels), list(preds)
        if len(labels) != len(preds):
            raise ParamError(f"{self.name}: {len(labels)} labels for {len(preds)} predictions; each output needs "
                             "its label")
        for label, pred in zip(labels, preds):
            label, pred = to_numpy(label), to_numpy(pred)
            if label.size == 0 and pred.size == 0:
                continue  # an empty batch (a user's loop cut at the end of the data) adds nothing
            self._update_one(label, pred)

    def update_dict(self, labels: dict, preds: dict) -> None:
        """``update`` with the labels and outputs by name (what ``Module`` calls): only those
        in ``label_names`` / ``output_names`` when the metric was given them, in that order,
        so that one metric of a multi-output network reads its own head."""
        self.update(_select(self.name, "label", labels, self.label_names),
                    _select(self.name, "output", preds, self.output_names))

    def _update_one(self, label: np.ndarray, pred: np.ndarray) -> None:
        raise NotImplementedError

    def get(self) -> tuple[str, float]:
        return self.name, (self.sum_metric / self.num_inst if self.num_inst else float("nan"))

    def get_name_value(self) -> list[tuple[str, float]]:
        name, value = self.get()
        if isinstance(name, list):
            return list(zip(name, value))
        return [(name, value)]

    def __repr__(self) -> str:
        return f"EvalMetric: {dict(self.get_name_value())}"


def _select(metric: str, what: str, arrays: dict, names: Sequence[str] | None) -> list:
    if names is None:
        return list(arrays.values())
    unknown = [n for n in names if n not in arrays]
    if unknown:
        raise ParamError(f"{metric}: {what} names {unknown} are not among the network's {what}s {list(arrays)}")
    return [arrays[n] for n in names]


def _class_labels(metric: str, label: np.ndarray, n: int) -> np.ndarray:
    """Labels as int64 class indices; a label that is not a whole number (1.7, NaN, inf) is
    refused with its position and value, never truncated to some class."""
    label = label.reshape(-1)
    if label.shape[0] != n:
        raise ParamError(f"{metric}: {label.shape[0]} labels for {n} predictions")
    if label.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(~np.isfinite(label) | (label != np.round(label)))
        if bad.size:
            raise ParamError(f"{metric}: label {bad[0]} is {label[bad[0]].item()!r}, not a class index "
                             f"({bad.size} of {label.size} labels are not whole numbers)")
    return label.astype(np.int64)


def _arg_max(pred: np.ndarray, axis: int) -> np.ndarray:
    """The arg-max along ``axis``, or -1 (no class: never right) where the scores hold a NaN.
    numpy's arg-max of a row holding NaN is the NaN's index, so an all-NaN row would be
    counted as predicting class 0."""
    guess = pred.argmax(axis=axis)
    if pred.dtype.kind == "f":
        guess = np.where(np.isnan(pred).any(axis=axis), -1, guess)
    return guess


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
            pred = _arg_max(pred, self.axis)
        elif pred.dtype.kind == "f":  # class indices: NaN is no class
            pred = np.where(np.isnan(pred), -1, pred)
        pred = pred.reshape(-1).astype(np.int64)
        label = _class_labels(self.name, label, pred.shape[0])
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
        label = _class_labels(self.name, label, pred.shape[0])
        k = min(self.top_k, pred.shape[1])
        top = np.argpartition(-pred, k - 1, axis=1)[:, :k]
        right = (top == label[:, None]).any(axis=1)
        if pred.dtype.kind == "f":  # a row holding NaN has no ranking: never right
            right &= ~np.isnan(pred).any(axis=1)
        self.sum_metric += float(right.sum())
        self.num_inst += label.shape[0]


@register("ce", "cross-entropy", "cross_entropy")
class CrossEntropy(EvalMetric):
    """Mean of ``-log(p[label] + eps)`` over samples; predictions are probabilities."""

    def __init__(self, eps: float = 1e-12, name: str = "cross-entropy", **kwargs):
        self.eps = eps
        super().__init__(name, **kwargs)

    def _update_one(self, label, pred):
        pred = pred.reshape(pred.shape[0], -1)
        label = _class_labels(self.name, label, pred.shape[0])
        if label.size and (label.min() < 0 or label.max() >= pred.shape[1]):
            raise ParamError(f"{self.name}: labels must be in [0, {pred.shape[1]}), got [{label.min()}, "
                             f"{label.max()}]")
        prob = pred[np.arange(label.shape[0]), label].astype(np.float64)
        self.sum_metric += float(-np.log(prob + self.eps).sum())
        self.num_inst += label.shape[0]


class _Regression(EvalMetric):
    """Mean over samples of a per-sample error (averaged over each sample's outputs)."""

    def _update_one(self, label, pred):
        if label.size != pred.size:
            raise ParamError(f"{self.name}: labels of shape {label.shape} do not match predictions of shape "
                             f"{pred.shape}")
        n = pred.shape[0] if pred.ndim else 1
        diff = pred.reshape(n, -1).astype(np.float64) - label.reshape(n, -1).astype(np.float64)
        self.sum_metric += float(self._error(diff).mean(axis=1).sum())
        self.num_inst += n


@register("mse")
class MSE(_Regression):
    def __init__(self, name: str = "mse", **kwargs):
        super().__init__(name, **kwargs)

    def _error(self, diff):
        return diff * diff


@register("mae")
class MAE(_Regression):
    def __init__(self, name: str = "mae", **kwargs):
        super().__init__(name, **kwargs)

    def _error(self, diff):
        return np.abs(diff)


@register("rmse")
class RMSE(MSE):
    """Root of the mean squared error over all samples seen (not a mean of batch roots)."""

    def __init__(self, name: str = "rmse", **kwargs):
        super().__init__(name, **kwargs)

    def get(self):
        name, value = super().get()
        return name, math.sqrt(value) if self.num_inst else value


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
        label = _class_labels(self.name, label, pred.shape[0])
        if self.average == "binary" and (pred.shape[1] != 2 or (label.size and (label.min() < 0 or label.max() > 1))):
            raise ParamError(f"{self.name}: average='binary' needs 2 classes and labels 0/1, got {pred.shape[1]} "
                             f"classes and labels in [{label.min()}, {label.max()}]; use F1(average='macro') for "
                             "more")
        if label.size and (label.min() < 0 or label.max() >= pred.shape[1]):
            raise ParamError(f"{self.name}: labels must be in [0, {pred.shape[1]}), got [{label.min()}, "
                             f"{label.max()}]")
        guess = _arg_max(pred, 1)  # -1 for a row holding NaN: a miss of its label's class
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


class CustomMetric(EvalMetric):
    """A metric from a function ``feval(label, pred) -> float``, averaged over updates."""

    def __init__(self, feval: Callable, name: str | None = None, **kwargs):
        self.feval = feval
        super().__init__(name or f"custom({getattr(feval, '__name__', 'feval')})", **kwargs)

    def _update_one(self, label, pred):
        self.sum_metric += float(self.feval(label, pred))
        self.num_inst += 1


class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get()`` returns a list of names and of values."""

    def __init__(self, metrics: Sequence[EvalMetric] = (), name: str = "composite", **kwargs):
        self.metrics = [create(m) for m in metrics]
        super().__init__(name, **kwargs)

    def add(self, metric) -> None:
        self.metrics.append(create(metric))

    def reset(self):
        for m in self.metrics:
            m.reset()

    def update(self, labels, preds):
        for m in self.metrics:
            m.update(labels, preds)

    def update_dict(self, labels: dict, preds: dict) -> None:
        for m in self.metrics:
            m.update_dict(labels, preds)

    def get(self):
        pairs = [pair for m in self.metrics for pair in m.get_name_value()]
        return [n for n, _ in pairs], [v for _, v in pairs]
