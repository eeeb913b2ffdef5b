"""Metrics made of others or of the user's code: a function's, several together, a loss output's."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..base import ParamError
from .base import METRICS, EvalMetric, register, to_numpy


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


@register("loss")
class Loss(EvalMetric):
    """The mean of a loss output's values (``MakeLoss``'s): the labels are not read."""

    def __init__(self, name: str = "loss", **kwargs):
        super().__init__(name, **kwargs)

    def update(self, labels, preds):
        for pred in preds:
            pred = to_numpy(pred)
            self.sum_metric += float(pred.astype(np.float64).sum())
            self.num_inst += pred.size


@register("torch")
class Torch(Loss):
    """``Loss`` under MXNet's name for losses computed by Torch modules."""

    def __init__(self, name: str = "torch", **kwargs):
        super().__init__(name, **kwargs)


@register("caffe")
class Caffe(Loss):
    """``Loss`` under MXNet's name for losses computed by Caffe layers."""

    def __init__(self, name: str = "caffe", **kwargs):
        super().__init__(name, **kwargs)
