"""An optimizer bound to an executor's flat parameter regions: one launch per dtype per step.

``FlatUpdater`` builds, once, the chunk table of every trainable parameter (with its
``lr_mult`` / ``wd_mult``), the state buffers (one flat buffer per state, laid out like the
parameter region) and the launch. ``step()`` then advances the update counter, writes
the step's scalars into the small ``hyper`` tensor when they change (Adam's update number
is advanced on the device, and its bias corrections computed there: no copy per step),
and runs the launch.
With an executor bound with ``cuda_graph=True`` the launches replay as one graph (or join
the step's single graph through ``Executor.forward_backward(then=updater.launch_all)``);
the scalars are written before it, outside the graph, so a schedule still changes the rate.

With a loss scaler, ``launch_all`` counts the non-finite gradients of every dtype first,
then runs the updates (which unscale, or skip the step), then adjusts the scale: all on
the device, so the whole step is still one graph. With ``clip_global_norm``, it takes the
norm of every gradient of every dtype before the updates (``ops/grad_norm.py``), and the
updates multiply each gradient by the clipping coefficient, also on the device.
"""

from __future__ import annotations

import inspect
import math

import torch

from ..base import ParamError
from ..ops import grad_norm, precompile
from ..ops import optimizer as kernels
from ..ops._common import Launch, run
from .optimizer import Optimizer


class _Group:
    """The parameters of one dtype: their flat views, states, chunk table and launch."""

    def __init__(self, optimizer: Optimizer, region, scaler: kernels.LossScaleState | None,
                 clip_state: torch.Tensor | None):
        self.region = region
        ct = kernels.compute_dtype(region.dtype)
        device = region.weights.device
        segments = [kernels.Segment(start, size, *optimizer.multipliers(name))
                    for name, start, size in region.members]
        self.chunks = kernels.chunk_table(segments, region.weights.numel(), region.dtype, device)
        optimizer.warn_if_updates_may_vanish(region.dtype)
        # A zero-filled master copy is a valid start: the kernel adopts the weights (ops/optimizer.py).
        # States in the parameters' dtype unless the optimizer asks for float32 (state_dtype_for).
        self.states = {s: torch.zeros(region.weights.numel(), device=device,
                                      dtype=ct if s == "master" else optimizer.state_dtype_for(region.dtype))
                       for s in optimizer.state_names(region.dtype)}
        self.hyper = torch.zeros(len(optimizer.hyper_slots), dtype=ct, device=device)
        # Host values are written into this buffer in place (no tensor per step), then copied
        # over with a blocking copy, so the buffer is free again when step() returns. Its
        # device is named: a script may have made CUDA torch's default device.
        self.host = self.hyper if self.hyper.device.type == "cpu" else torch.zeros(
            self.hyper.shape, dtype=ct, device="cpu", pin_memory=True)
        self.count_launches = [] if scaler is None else kernels.plan_count_nonfinite_grads(region.grads,
                                                                                           self.chunks, scaler)
        # An optimizer's plan() need not take scaler= or clip_state= (FlatUpdater checks it does when needed).
        extra = ({} if scaler is None else {"scaler": scaler}) | ({} if clip_state is None else
                                                                  {"clip_state": clip_state})
        self.launches = optimizer.plan(region.weights, region.grads, self.states, self.chunks, self.hyper, **extra)
        # An update number in the scalars (Adam's step) is advanced on the device, first
        # thing in each update, so the host need not write it every step.
        slots = optimizer.hyper_slots
        self.step_slot = slots.index("step") if "step" in slots else None
        self.advance_launches = [] if self.step_slot is None else kernels.plan_advance_step(self.hyper,
                                                                                            self.step_slot)
        self.written: list[float] | None = None  # the scalars last written, the step left out


class FlatUpdater:
    """Applies ``optimizer`` to every argument of ``executor`` that takes a gradient (of
    those in ``names`` when given: a Module passes its parameters, so that a data input bound
    with ``inputs_need_grad`` is not updated)."""

    graphable = True  # its launches may join a captured CUDA graph (Executor.forward_backward(then=...))

    def __init__(self, optimizer: Optimizer, executor, names=None):
        self.optimizer = optimizer
        self.scaler = self._bind_scaler(optimizer, executor)
        self.clip_state = self._clip_state(optimizer, executor)
        self.groups = [_Group(optimizer, region, self.scaler, self.clip_state)
                       for region in executor.param_regions(names)]
        self.norm_launches = [] if self.clip_state is None or not self.groups else grad_norm.plan_global_norm(
            [(g.region.grads, g.chunks) for g in self.groups],
            torch.zeros(grad_norm.partial_count([g.chunks for g in self.groups]), dtype=torch.float64,
                        device=self.clip_state.device),
            self.clip_state, self.groups[0].hyper, optimizer.hyper_slots.index("rescale_grad"),
            optimizer.clip_global_norm, self.scaler)
        scaling = optimizer.loss_scaler
        self.scale_launches = [] if scaling is None else kernels.plan_loss_scale_update(
            self.scaler, scaling.growth_factor, scaling.backoff_factor, scaling.growth_interval, scaling.min_scale,
            scaling.max_scale)
        self.param_names = [name for g in self.groups for name, _, _ in g.region.members]
        self.shapes = {n: tuple(t.shape) for n, t in executor.grad_dict.items() if t is not None}
        self.phases = executor.phases
        self._prepared: int | None = None  # the update number the last prepare() wrote for
        # On a GPU, compile the update's kernels in parallel now, as the executor did its own.
        self.precompiled = precompile.warm(
            [launch for group in self.groups for launch in group.advance_launches + group.count_launches
             + list(group.launches) if isinstance(launch, Launch)] + self.norm_launches + self.scale_launches,
            executor.loss_scale.device)

    @staticmethod
    def _bind_scaler(optimizer: Optimizer, executor) -> kernels.LossScaleState | None:
        """The executor's loss scale (shared by its loss operators) set to the scaler's first
        value, or back to 1 without one, and the scaler's counters."""
        scaling = optimizer.loss_scaler
        owner = type(optimizer).__name__
        scale = executor.loss_scale
        if scaling is None:
            scale.copy_(torch.ones(1, dtype=scale.dtype))
            return None
        problems = executor.loss_scaling_problems()
        if problems:
            raise ParamError(f"{owner}: loss_scale needs every gradient to start at a loss operator that applies "
                             f"the scale, but {'; '.join(problems)}")
        if "scaler" not in inspect.signature(optimizer.plan).parameters:
            raise ParamError(f"{owner}: loss_scale needs an optimizer whose plan() takes scaler= (to unscale the "
                             f"gradients and skip overflowed steps); {owner}.plan does not")
        scale.copy_(torch.full((1,), scaling.init_scale, dtype=scale.dtype))
        return kernels.LossScaleState(scale, torch.zeros(len(kernels.SCALER_COUNTERS), dtype=torch.int32,
                                                         device=scale.device))

    @staticmethod
    def _clip_state(optimizer: Optimizer, executor) -> torch.Tensor | None:
        """The device buffer of ``ops.grad_norm`` (coefficient, norm) when the optimizer clips
        by the global norm, after checking that its plan() can take it."""
        if optimizer.clip_global_norm is None:
            return None
        owner = type(optimizer).__name__
        parameters = inspect.signature(optimizer.plan).parameters
        if "clip_state" not in parameters or "rescale_grad" not in optimizer.hyper_slots:
            raise ParamError(f"{owner}: clip_global_norm needs an optimizer whose plan() takes clip_state= (to "
                             f"multiply the gradients by the clipping coefficient) and whose hyper_slots hold "
                             f"'rescale_grad'; {owner}'s do not")
        return grad_norm.new_state(executor.loss_scale.device)

    def grad_norm(self) -> float | None:
        """The norm of all the gradients of the last update (after ``rescale_grad`` and the
        loss scale: what ``clip_global_norm`` compared; one read-back from the device), or
        None without ``clip_global_norm``."""
        if self.clip_state is None:
            return None
        return float(self.clip_state[grad_norm.GRAD_NORM_STATE.index("norm")].item())

    def step(self) -> None:
        """One update of every parameter from its current gradient."""
        self.prepare()
        self.phases.run("update", self.launch_all)

    def prepare(self) -> None:
        """Advance the update counter and write this step's scalars (learning rate, ...)
        into the device buffer the kernels read; ``launch_all`` then applies the update.
        Split from ``step`` so that the launches can join another phase's graph
        (``Executor.forward_backward(then=updater.launch_all)``) while the scalars, host
        values, stay outside it."""
        opt = self.optimizer
        # The device's step is this update's number less one, as the last update left it,
        # unless the count was set since (a checkpoint loaded, begin_num_update).
        in_step = opt.num_update == self._prepared
        opt.num_update += 1
        self._prepared = opt.num_update
        values = opt.hyper(opt.num_update)
        row = [float(values[k]) for k in opt.hyper_slots]
        for group in self.groups:
            steady = [v for k, v in enumerate(row) if k != group.step_slot]
            if steady != group.written or not in_step:  # a host-to-device copy only when a scalar changed
                if group.step_slot is not None:
                    row[group.step_slot] = opt.num_update - 1  # launch_all advances it first
                group.host.numpy()[:] = row
                if group.host is not group.hyper:
                    group.hyper.copy_(group.host)
                group.written = steady

    def launch_all(self) -> None:
        """The update's launches, one per dtype, with the scalars ``prepare`` wrote last (with
        a loss scaler: every dtype's overflow count first, the scale's adjustment last; with
        ``clip_global_norm``: the norm of every dtype's gradients before the updates)."""
        for group in self.groups:
            run(group.advance_launches)
            run(group.count_launches)
        run(self.norm_launches)
        for group in self.groups:
            run(group.launches)
        run(self.scale_launches)

    def loss_scale_status(self) -> dict | None:
        """``{"scale", "good_steps", "skipped_steps"}`` of the loss scaler (one read-back from
        the device), or None without one."""
        if self.scaler is None:
            return None
        counters = self.scaler.counters.tolist()
        return {"scale": float(self.scaler.scale.item()),
                "good_steps": counters[kernels.SCALER_COUNTERS.index("good_steps")],
                "skipped_steps": counters[kernels.SCALER_COUNTERS.index("skipped_steps")]}

    # -------------------------------------------------------------- checkpointing

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Each parameter's state as ``"<state>:<param>"`` (CPU copies), plus ``num_update``
        and, with a loss scaler, ``loss_scale`` and ``loss_scale_counters``."""
        out = {"num_update": torch.tensor(self.optimizer.num_update, dtype=torch.int64, device="cpu")}
        if self.scaler is not None:
            out["loss_scale"] = self.scaler.scale.to("cpu", copy=True)
            out["loss_scale_counters"] = self.scaler.counters.to("cpu", copy=True)
        for group in self.groups:
            for state, flat in group.states.items():
                for name, start, size in group.region.members:
                    out[f"{state}:{name}"] = flat[start:start + size].to("cpu", copy=True).view(self.shapes[name])
        return out

    def load_state_dict(self, states: dict[str, torch.Tensor]) -> None:
        """Restore what ``state_dict`` returned; names, sizes and dtypes must match."""
        expected = {f"{state}:{name}": (group, state, start, size)
                    for group in self.groups for state in group.states for name, start, size in group.region.members}
        # A master copy left out (states saved without multi_precision) starts zero-filled: the
        # kernel then adopts the weights themselves, which is all such a checkpoint knows.
        missing = sorted(k for k in set(expected) - set(states) if not k.startswith("master:"))
        scaler_keys = {"loss_scale", "loss_scale_counters"}
        extra = sorted(set(states) - set(expected) - {"num_update"} - (scaler_keys if self.scaler else set()))
        if missing or extra:
            hint = ("; the states hold float32 master copies: pass multi_precision=True to the optimizer"
                    if any(k.startswith("master:") for k in extra) else "")
            hint += ("; the states hold a loss scale: pass loss_scale= to the optimizer" if scaler_keys & set(extra)
                     else "")
            raise ParamError(f"optimizer states: missing {missing or 'none'}, unexpected {extra or 'none'} (for "
                             f"{type(self.optimizer).__name__} over {', '.join(self.param_names)}){hint}")
        for key, (group, state, start, size) in expected.items():
            value = states.get(key)
            if value is not None and (value.numel() != size or value.dtype != group.states[state].dtype):
                hint = ("; these states were kept in float32: pass state_dtype='float32' to the optimizer"
                        if value.dtype == torch.float32 and group.states[state].dtype != torch.float32 else "")
                raise ParamError(f"optimizer state {key!r}: {value.numel()} elements of {value.dtype}, expected "
                                 f"{size} of {group.states[state].dtype}{hint}")
        # A loss scale left out (states saved without one) starts from the scaler's init_scale.
        scaler_states = {k: states[k] for k in ("loss_scale", "loss_scale_counters") if self.scaler and k in states}
        for key, value in scaler_states.items():
            target = self.scaler.scale if key == "loss_scale" else self.scaler.counters
            if value.numel() != target.numel() or value.dtype != target.dtype:
                raise ParamError(f"optimizer state {key!r}: {value.numel()} elements of {value.dtype}, expected "
                                 f"{target.numel()} of {target.dtype}")
            scale = float(value.reshape(-1)[0]) if key == "loss_scale" else 1.0
            if not (math.isfinite(scale) and scale > 0):
                raise ParamError(f"optimizer state 'loss_scale': {scale} is not a positive finite scale")
        for key, (group, state, start, size) in expected.items():
            if key in states:
                group.states[state][start:start + size].copy_(states[key].reshape(-1))
            else:
                group.states[state][start:start + size].zero_()
        for key, value in scaler_states.items():
            (self.scaler.scale if key == "loss_scale" else self.scaler.counters).copy_(value.reshape(-1))
        if "num_update" in states:
            self.optimizer.num_update = int(states["num_update"])

