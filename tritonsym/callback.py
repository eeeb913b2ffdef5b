"""Callbacks for ``Module.fit`` (MXNet's ``mx.callback``).

A batch-end callback is called as ``callback(BatchEndParam(epoch, nbatch, eval_metric,
locals))`` after each training batch; an epoch-end callback as ``callback(epoch, symbol,
arg_params, aux_params)`` after each epoch. Messages go through ``logging``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from typing import NamedTuple

from .base import ParamError


class BatchEndParam(NamedTuple):
    epoch: int
    nbatch: int
    eval_metric: object
    locals: dict | None = None


def _metric_text(metric) -> str:
    if metric is None:
        return ""
    return "".join(f"\t{name}={value:f}" for name, value in metric.get_name_value())


class Speedometer:
    """Log training speed (samples/s) and the training metric every ``frequent`` batches.

    ``auto_reset`` resets the metric after each log, so the figure covers the last
    ``frequent`` batches only."""

    def __init__(self, batch_size: int, frequent: int = 50, auto_reset: bool = True,
                 logger: logging.Logger | None = None):
        if batch_size < 1 or frequent < 1:
            raise ParamError(f"Speedometer: batch_size={batch_size} and frequent={frequent} must be >= 1")
        self.batch_size, self.frequent, self.auto_reset = batch_size, frequent, auto_reset
        self.logger = logger or logging.getLogger("tritonsym")
        self._tic = None
        self._epoch = self._last = None
        self.speed = float("nan")  # the last samples/s figure logged

    def __call__(self, param: BatchEndParam) -> None:
        count = param.nbatch
        # A new epoch (or a new fit, whose epochs may count from the same number): start the
        # clock. An epoch of one batch must not be timed against the last one's start.
        if self._tic is None or param.epoch != self._epoch or count < self._last:
            self._tic, self._epoch, self._last = time.perf_counter(), param.epoch, count
            return
        if count % self.frequent == 0:
            elapsed = time.perf_counter() - self._tic
            self.speed = (count - self._last) * self.batch_size / elapsed if elapsed > 0 else float("inf")
            self.logger.info("Epoch[%d] Batch [%d-%d]\tSpeed: %.2f samples/sec%s", param.epoch, self._last, count,
                             self.speed, _metric_text(param.eval_metric))
            if self.auto_reset and param.eval_metric is not None:
                param.eval_metric.reset()
            self._tic, self._last = time.perf_counter(), count


class ProgressBar:
    """A tqdm progress bar over the batches of each epoch (``total`` batches per epoch),
    showing the training metric. Written to stderr; falls back to nothing when tqdm is
    missing."""

    def __init__(self, total: int | None = None, file=None):
        self.total, self.file = total, file or sys.stderr
        self._bar = None
        self._epoch = None

    def __call__(self, param: BatchEndParam) -> None:
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency; stay silent without it
            return
        if self._epoch != param.epoch:
            self.close()
            self._bar = tqdm(total=self.total, desc=f"epoch {param.epoch}", unit="batch", file=self.file,
                             leave=False, dynamic_ncols=True)
            self._epoch = param.epoch
        self._bar.update(1)
        if param.eval_metric is not None:
            self._bar.set_postfix(dict(param.eval_metric.get_name_value()), refresh=False)
        if self.total is not None and self._bar.n >= self.total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class LogValidationMetricsCallback:
    """Log each validation metric at the end of evaluation (``eval_end_callback``)."""

    def __call__(self, param: BatchEndParam) -> None:
        for name, value in param.eval_metric.get_name_value():
            logging.getLogger("tritonsym").info("Epoch[%d] Validation-%s=%f", param.epoch, name, value)


def log_train_metric(period: int, auto_reset: bool = False):
    """A batch-end callback logging the training metric every ``period`` batches."""

    def callback(param: BatchEndParam) -> None:
        if param.nbatch % period == 0 and param.eval_metric is not None:
            for name, value in param.eval_metric.get_name_value():
                logging.getLogger("tritonsym").info("Iter[%d] Batch[%d] Train-%s=%f", param.epoch, param.nbatch,
                                                    name, value)
            if auto_reset:
                param.eval_metric.reset()
    return callback


def _check_prefix(what: str, prefix: str, period: int) -> None:
    """Checked when the callback is made, before training, rather than when the first
    epoch's save fails: the period, and a folder that exists and takes a new file (a
    writable-looking folder such as /proc/net does not)."""
    if isinstance(period, bool) or not isinstance(period, int) or period < 1:
        raise ParamError(f"{what}: period={period!r} must be an integer >= 1")
    folder = os.path.dirname(os.path.abspath(prefix))
    if not os.path.isdir(folder):
        raise ParamError(f"{what}: prefix {prefix!r} saves into the folder {folder}, which does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ParamError(f"{what}: prefix {prefix!r} saves into the folder {folder}, which does not take new files "
                         f"({e.strerror or e})") from None


def do_checkpoint(prefix: str, period: int = 1):
    """An epoch-end callback saving ``prefix-symbol.json`` and ``prefix-%04d.safetensors``
    every ``period`` epochs (numbered from 1: the checkpoint after the first epoch is 0001)."""
    from .model import save_checkpoint

    _check_prefix("do_checkpoint", prefix, period)

    def callback(epoch: int, symbol, arg_params: dict, aux_params: dict) -> None:
        if (epoch + 1) % period == 0:
            save_checkpoint(prefix, epoch + 1, symbol, arg_params, aux_params)
            logging.getLogger("tritonsym").info("Saved checkpoint to \"%s-%04d.safetensors\"", prefix, epoch + 1)
    return callback


def module_checkpoint(mod, prefix: str, period: int = 1, save_optimizer_states: bool = False):
    """MXNet's epoch-end callback that saves through the module: ``mod.save_checkpoint(prefix,
    epoch + 1, save_optimizer_states)`` every ``period`` epochs. With the optimizer states
    (which record the weights file they belong to) a run can resume bit for bit:
    ``Module.load(prefix, n, load_optimizer_states=True)`` and ``fit(begin_epoch=n)``."""
    _check_prefix("module_checkpoint", prefix, period)

    def callback(epoch: int, symbol=None, arg_params=None, aux_params=None) -> None:
        if (epoch + 1) % period == 0:
            mod.save_checkpoint(prefix, epoch + 1, save_optimizer_states)
            logging.getLogger("tritonsym").info("Saved checkpoint to \"%s-%04d.safetensors\"", prefix, epoch + 1)
    return callback
