"""The metric base class, the registry of names, and the helpers the metrics share."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..base import ParamError

METRICS: dict[str, type["EvalMetric"]] = {}


def register(*names: str):
    def wrap(cls):
        for name in names:
            METRICS[name] = cls
        return cls
    return wrap


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


def class_labels(metric: str, label: np.ndarray, n: int) -> np.ndarray:
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


def arg_max(pred: np.ndarray, axis: int) -> np.ndarray:
    """The arg-max along ``axis``, or -1 (no class: never right) where the scores hold a NaN.
    numpy's arg-max of a row holding NaN is the NaN's index, so an all-NaN row would be
    counted as predicting class 0."""
    guess = pred.argmax(axis=axis)
    if pred.dtype.kind == "f":
        guess = np.where(np.isnan(pred).any(axis=axis), -1, guess)
    return guess
