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


from .base import METRICS, EvalMetric, register, to_numpy
from .classification import F1, MCC, Accuracy, TopKAccuracy
from .composite import Caffe, CompositeEvalMetric, CustomMetric, Loss, Torch, create
from .probability import CrossEntropy, NegativeLogLikelihood, Perplexity
from .regression import MAE, MSE, RMSE, PearsonCorrelation

__all__ = ["F1", "MAE", "MCC", "METRICS", "MSE", "RMSE", "Accuracy", "Caffe", "CompositeEvalMetric", "CrossEntropy",
           "CustomMetric", "EvalMetric", "Loss", "NegativeLogLikelihood", "PearsonCorrelation", "Perplexity",
           "TopKAccuracy", "Torch", "create", "register", "to_numpy"]
