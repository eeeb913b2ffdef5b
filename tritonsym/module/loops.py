"""The loops over a data iterator: ``Module.fit``, ``score``, ``predict`` (MXNet's BaseModule).

Padded samples (the filler an iterator adds to complete its last batch) are left out of
every metric and every prediction; MXNet's ``score`` counted them.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .. import metric as metric_module
from ..base import ExecutionError, ParamError
from ..callback import BatchEndParam
from ..io.ndarray_iter import DataIter, NDArrayIter


def _callbacks(callbacks) -> list[Callable]:
    if callbacks is None:
        return []
    return list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]


class TrainingLoops:
    """``fit``, ``score``, ``predict`` and ``iter_predict``: the loops over a data iterator
    that ``Module`` inherits (MXNet's BaseModule). They drive the module through its
    public one-step API (``bind``, ``forward``, ``train_step``, ``update_metric``) and ask
    its executor for what only a kernel can count."""

    def fit(self, train_data: DataIter, eval_data: DataIter | None = None, eval_metric="acc",
            epoch_end_callback=None, batch_end_callback=None, kvstore="local", optimizer="sgd",
            optimizer_params=None, eval_end_callback=None, eval_batch_end_callback=None,
            initializer=None, arg_params=None, aux_params=None, allow_missing: bool = False,
            force_rebind: bool = False, force_init: bool = False, begin_epoch: int = 0, num_epoch: int | None = None,
            validation_metric=None) -> list[dict]:
        """Train for epochs ``begin_epoch .. num_epoch - 1``: bind, initialize parameters
        (``initializer``, default ``Uniform(0.01)``, unless already set) and the optimizer,
        then per batch forward, backward, update (``train_step``: one CUDA graph replay with
        ``cuda_graph=True``). Logs each epoch's training metric, time,
        samples/s and validation metric, and returns one dict per epoch with those figures.
        Stops with ``ExecutionError`` after an epoch that left a NaN/inf parameter. With a loss
        scaler, each epoch also logs the loss scale and how many steps it skipped (their
        gradients overflowed), and fit stops when the gradients are NaN/inf even at the
        smallest scale (or at every step of an epoch at a static scale): not an overflow."""
        if not isinstance(num_epoch, int) or num_epoch <= begin_epoch:
            raise ParamError(f"Module.fit: num_epoch={num_epoch!r} must be an integer above begin_epoch={begin_epoch}")
        # A module the caller already bound and set up (the intermediate API) is used as it is.
        if not self.binded or force_rebind:
            self.bind(data_shapes=train_data.provide_data, label_shapes=train_data.provide_label, for_training=True,
                      force_rebind=force_rebind)
        self.init_params(initializer, arg_params, aux_params, allow_missing=allow_missing, force_init=force_init)
        if not self.optimizer_initialized or force_init:
            self.init_optimizer(kvstore=kvstore, optimizer=optimizer, optimizer_params=optimizer_params,
                                force_init=force_init)
        validation_metric = validation_metric if validation_metric is not None else eval_metric
        train_metric = metric_module.create(eval_metric)
        history = []
        scale_status = self._updater.loss_scale_status()  # then read once per epoch, at its end
        for epoch in range(begin_epoch, num_epoch):
            if hasattr(train_data, "set_epoch"):  # the epoch's batch order, also when resuming at begin_epoch
                train_data.set_epoch(epoch)
            tic = time.perf_counter()
            train_metric.reset()
            samples = steps = 0
            for nbatch, batch in enumerate(train_data):
                self.train_step(batch)
                steps += 1
                self.update_metric(train_metric, self._batch_labels(batch), batch.pad)
                samples += batch.data[0].shape[0] - batch.pad
                for callback in _callbacks(batch_end_callback):
                    callback(BatchEndParam(epoch, nbatch, train_metric, locals()))
            elapsed = time.perf_counter() - tic
            if steps == 0:  # an epoch that trains nothing must not pass for one that did
                raise ParamError(f"Module.fit: train_data gave no batch in epoch {epoch}; it was read to its end "
                                 "before fit (score, predict or a loop of yours): call train_data.reset() first")
            self._stop_if_parameters_not_finite(epoch)
            record = {"epoch": epoch, "train": dict(train_metric.get_name_value()), "time": elapsed,
                      "samples_per_sec": samples / elapsed if elapsed > 0 else float("inf")}
            if scale_status is not None:
                scale_status = self._loss_scale_report(epoch, scale_status, steps, record)
            self._stop_if_outputs_not_finite(epoch)
            for name, value in train_metric.get_name_value():
                self.logger.info("Epoch[%d] Train-%s=%f", epoch, name, value)
            self.logger.info("Epoch[%d] Time cost=%.3f s (%.0f samples/s)", epoch, elapsed, record["samples_per_sec"])
            if epoch_end_callback is not None:
                arg_params, aux_params = self.get_params()
                for callback in _callbacks(epoch_end_callback):
                    callback(epoch, self.symbol, arg_params, aux_params)
            if eval_data is not None:
                result = self.score(eval_data, validation_metric, score_end_callback=eval_end_callback,
                                    batch_end_callback=eval_batch_end_callback, epoch=epoch)
                record["validation"] = dict(result)
                for name, value in result:
                    self.logger.info("Epoch[%d] Validation-%s=%f", epoch, name, value)
            history.append(record)
            train_data.reset()
        return history

    def score(self, eval_data: DataIter, eval_metric="acc", num_batch: int | None = None, batch_end_callback=None,
              score_end_callback=None, reset: bool = True, epoch: int = 0) -> list[tuple[str, float]]:
        """Evaluate on ``eval_data``; returns ``[(name, value), ...]``. Padded samples are not counted.
        ``batch_end_callback`` is called after each batch, ``score_end_callback`` once at the end
        with the number of batches evaluated as ``nbatch`` (as MXNet's)."""
        self._require("score", bound=True, params=True)
        metric = metric_module.create(eval_metric)
        metric.reset()
        evaluated = 0
        for nbatch, batch in self._batches(eval_data, num_batch, reset):
            self.forward(batch, is_train=False)
            self.update_metric(metric, self._batch_labels(batch), batch.pad)
            evaluated += 1
            for callback in _callbacks(batch_end_callback):
                callback(BatchEndParam(epoch, nbatch, metric, locals()))
        for callback in _callbacks(score_end_callback):
            callback(BatchEndParam(epoch, evaluated, metric, locals()))
        return metric.get_name_value()

    def iter_predict(self, eval_data, num_batch: int | None = None, reset: bool = True):
        """Yield ``(outputs, nbatch, batch)`` per batch; outputs are host copies without the padding."""
        self._require("iter_predict", bound=True, params=True)
        for nbatch, batch in self._batches(eval_data, num_batch, reset):
            self.forward(batch, is_train=False)
            keep = batch.data[0].shape[0] - batch.pad
            yield [out[:keep].to("cpu", copy=True) for out in self.get_outputs()], nbatch, batch

    def predict(self, eval_data, num_batch: int | None = None, merge_batches: bool = True, reset: bool = True,
                always_output_list: bool = False) -> torch.Tensor | Sequence:
        """The outputs over ``eval_data`` (an iterator, or an array split into batches), as host
        tensors concatenated over batches without the padding: one tensor for a one-output
        symbol, else a list (or per-batch lists with ``merge_batches=False``)."""
        self._require("predict", bound=True, params=True)
        per_batch = [outputs for outputs, _, _ in self.iter_predict(eval_data, num_batch, reset)]
        if not merge_batches:
            return per_batch
        if not per_batch:
            raise ParamError("Module.predict: the iterator yielded no batches")
        merged = [torch.cat([outs[k] for outs in per_batch]) for k in range(len(per_batch[0]))]
        return merged[0] if len(merged) == 1 and not always_output_list else merged

    def _stop_if_parameters_not_finite(self, epoch: int) -> None:
        """Once per epoch, count NaN/inf in every parameter (one Triton launch each, one
        read-back). A NaN or inf parameter never recovers and turns every later output into
        NaN, so fit stops before the epoch's callbacks write a checkpoint of it."""
        params = self.executor.arg_dict
        bad = self.executor.nonfinite([n for n in params if n in self._param_names])
        if bad:
            raise ExecutionError(
                f"Module.fit: after epoch {epoch} the parameters hold NaN/inf values "
                f"({', '.join(f'{name}: {c} of {params[name].numel()}' for name, c in bad.items())}), so fit stops "
                "before this epoch's callbacks (a checkpoint of it would hold them too). Module(..., "
                "check_finite=True) names the first operator that produces one; a lower learning rate or "
                "clip_gradient often helps")

    def _stop_if_outputs_not_finite(self, epoch: int) -> None:
        """Finite parameters with NaN/inf predictions: the data or the labels hold them (a NaN
        input row predicts NaN, and its gradient would soon reach the parameters)."""
        bad, sizes = {}, {}
        for executor in self._current_executors():  # each context's part of the batch
            outputs = executor.output_dict
            for name, count in executor.nonfinite(list(outputs)).items():
                bad[name] = bad.get(name, 0) + count
            for name, tensor in outputs.items():
                sizes[name] = sizes.get(name, 0) + tensor.numel()
        if bad:
            raise ExecutionError(
                f"Module.fit: in epoch {epoch} the last batch's outputs hold NaN/inf values "
                f"({', '.join(f'{name}: {c} of {sizes[name]}' for name, c in bad.items())}) although every "
                "parameter is finite: the data or the labels hold NaN/inf. Module(..., check_finite=True) names the "
                "argument before forward")

    def _loss_scale_report(self, epoch: int, before: dict, steps: int, record: dict) -> dict:
        """The epoch's loss scale and skipped steps (one read-back), logged and added to its
        record; an ExecutionError when the gradients were NaN/inf where no scale explains it.
        Returns the status read, the next epoch's starting point."""
        status = self._updater.loss_scale_status()
        skipped = status["skipped_steps"] - before["skipped_steps"]
        self.logger.info("Epoch[%d] Loss-scale=%g (%d of %d steps skipped: NaN/inf gradients)", epoch, status["scale"],
                         skipped, steps)
        scaler = self._optimizer.loss_scaler
        if scaler.dynamic:
            stuck = skipped > 0 and status["good_steps"] == 0 and status["scale"] <= scaler.min_scale
            where = f"even at the smallest loss scale (min_scale={scaler.min_scale:g})"
        else:
            stuck = skipped == steps  # fit has refused an epoch of no steps already
            where = f"at every step of the epoch at the static loss scale {status['scale']:g}"
        if stuck:
            raise ExecutionError(
                f"Module.fit: in epoch {epoch} the gradients held NaN/inf {where}, so the updates were skipped: this "
                "is not an overflow that loss scaling can fix. Module(..., check_finite=True) names the first "
                "operator that produces one (check the data and the learning rate)")
        record.update(loss_scale=status["scale"], skipped_steps=skipped)
        return status

    def _batches(self, data, num_batch: int | None, reset: bool) -> Iterator:
        if isinstance(data, (np.ndarray, torch.Tensor)):  # MXNet's predict(array): batches of the bound size
            data = NDArrayIter(data, batch_size=self.data_shapes[0].shape[0], last_batch_handle="pad",
                               dtype=self.data_shapes[0].dtype)
        if not isinstance(data, DataIter) and not hasattr(data, "reset"):
            raise ParamError(f"Module: expected a data iterator (e.g. NDArrayIter) or an array, got "
                             f"{type(data).__name__}")
        if reset:
            data.reset()
        for nbatch, batch in enumerate(data):
            if num_batch is not None and nbatch == num_batch:
                break
            yield nbatch, batch
