"""Metrics of predicted values: MSE, MAE, RMSE, Pearson correlation."""

from __future__ import annotations

import math

import numpy as np

from ..base import ParamError
from .base import EvalMetric, register


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


@register("pearsonr")
class PearsonCorrelation(EvalMetric):
    """Pearson correlation between predictions and labels (flattened). ``average="micro"``
    (the default) is the coefficient over every value seen, from running sums; ``"macro"``
    is MXNet 1.9.1's default, the mean of the per-batch coefficients."""

    def __init__(self, name: str = "pearsonr", average: str = "micro", **kwargs):
        if average not in ("micro", "macro"):
            raise ParamError(f"PearsonCorrelation: average={average!r} must be 'micro' (over all values) or 'macro' "
                             "(mean over batches)")
        self.average = average
        super().__init__(name, **kwargs)

    def reset(self):
        super().reset()
        self.sums = np.zeros(5)  # sum p, sum l, sum p², sum l², sum p·l (float64), with num_inst values

    def _update_one(self, label, pred):
        if label.size != pred.size:
            raise ParamError(f"{self.name}: labels of shape {label.shape} do not match predictions of shape "
                             f"{pred.shape}")
        p, lab = pred.reshape(-1).astype(np.float64), label.reshape(-1).astype(np.float64)
        if self.average == "macro":
            self.sum_metric += float(np.corrcoef(p, lab)[0, 1])
            self.num_inst += 1
            return
        # Centred on this batch's means before accumulating, so that large offsets do not cancel.
        self._merge(p.size, p.mean(), lab.mean(), ((p - p.mean()) ** 2).sum(), ((lab - lab.mean()) ** 2).sum(),
                    ((p - p.mean()) * (lab - lab.mean())).sum())

    def _merge(self, n, mean_p, mean_l, ss_p, ss_l, cov):
        """Chan et al.'s pairwise update of counts, means and centred sums of squares."""
        total = self.num_inst + n
        if self.num_inst:
            old_p, old_l = self.sums[0], self.sums[1]
            factor = self.num_inst * n / total
            self.sums[2] += ss_p + (mean_p - old_p) ** 2 * factor
            self.sums[3] += ss_l + (mean_l - old_l) ** 2 * factor
            self.sums[4] += cov + (mean_p - old_p) * (mean_l - old_l) * factor
            self.sums[0] += (mean_p - old_p) * n / total
            self.sums[1] += (mean_l - old_l) * n / total
        else:
            self.sums[:] = (mean_p, mean_l, ss_p, ss_l, cov)
        self.num_inst = total

    def get(self):
        if not self.num_inst:
            return self.name, float("nan")
        if self.average == "macro":
            return self.name, self.sum_metric / self.num_inst
        _, _, ss_p, ss_l, cov = self.sums
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.name, float(cov / np.sqrt(ss_p * ss_l))
