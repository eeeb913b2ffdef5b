"""Data parallelism over several devices of one process: ``Module(..., context=[gpu(0), gpu(1)])``.

As MXNet's ``DataParallelExecutorGroup``: the batch is split along its first axis into one
slice per context (``split_batch``, MXNet's ``_split_input_slice``: in proportion to
``work_load_list``), each context runs forward and backward on its slice with an executor
of its own, the gradients are summed, the optimizer updates once, and every context gets
the new weights.

The sum and the copy work on the flat gradient and weight regions the kvstore already
uses (``Executor.param_regions``): one accumulate launch per dtype per extra context into
the first context's gradients, where the optimizer runs (``FlatUpdater``), then one copy
launch per dtype back. A context on another device first copies its region into a
staging buffer on the first device, allocated once at bind, so a step allocates nothing.
The first context's executor is the module's own (``Module.executor``); this file holds
the others.
"""

from __future__ import annotations

import torch

from ..base import BindError
from ..ops import memory as memory_kernels
from ..ops._common import run


def split_batch(what: str, batch_size: int, work_load_list) -> list[slice]:
    """The slice of a ``batch_size`` batch each context takes, in proportion to
    ``work_load_list`` (rounded as MXNet rounds, the remainder to the last context)."""
    total = sum(work_load_list)
    counts = [round(load * batch_size / total) for load in work_load_list]
    if sum(counts) < batch_size:
        counts[-1] += batch_size - sum(counts)
    slices, end = [], 0
    for count in counts:
        begin = min(end, batch_size)
        end = min(begin + count, batch_size)
        if begin >= end:
            raise BindError(f"{what}: a batch of {batch_size} cannot be split over {len(work_load_list)} contexts "
                            f"with work_load_list={list(work_load_list)} (a context would get no sample); use fewer "
                            "contexts or larger batches")
        slices.append(slice(begin, end))
    return slices


def check_work_load(contexts: list, work_load_list) -> list[float]:
    if work_load_list is None:
        return [1.0] * len(contexts)
    loads = list(work_load_list)
    if len(loads) != len(contexts) or any(isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0
                                          for w in loads):
        raise BindError(f"Module: work_load_list={loads!r} must hold one positive number per context "
                        f"({len(contexts)} contexts: {contexts})")
    return [float(w) for w in loads]


def sliced_shapes(shapes: dict[str, tuple], part: slice) -> dict[str, tuple]:
    """Every input's shape with its first (batch) axis cut to ``part``."""
    return {name: (part.stop - part.start, *shape[1:]) for name, shape in shapes.items()}


class Replica:
    """One more context: its executor for the bound shapes and those for other shapes."""

    def __init__(self, context, executor):
        self.context = context
        self.executor = executor
        self.execs = {}  # reshaped executors, by input shapes (Module._executor_for)
        self.current = None  # the executor the last forward ran on


class Replicas:
    """The contexts after the first, kept in step with the first context's ``primary`` executor."""

    def __init__(self, primary, replicas: list[Replica], grad_req: str, param_names):
        self.primary = primary
        self.replicas = replicas
        mine = primary.param_regions(param_names)
        # (their gradients, the first context's, their weights, the first context's, staging buffer or None)
        self._pairs: list[tuple] = []
        for replica in replicas:
            theirs = replica.executor.param_regions(param_names)
            if [(r.dtype, r.members) for r in theirs] == [(r.dtype, r.members) for r in mine]:
                pairs = [(r.grads, own.grads, r.weights, own.weights) for r, own in zip(theirs, mine)]
            else:
                # The contexts' batch parts differ in size, and a data input that takes a gradient lies
                # between parameters: the layouts differ, so one pair per parameter instead.
                pairs = [(replica.executor.grad_dict[n], primary.grad_dict[n], replica.executor.arg_dict[n],
                          primary.arg_dict[n]) for r in mine for n, _, _ in r.members]
            for grads, own_grads, weights, own_weights in pairs:
                staging = None if grads.device == own_grads.device else torch.empty_like(own_grads)
                self._pairs.append((grads, own_grads, weights, own_weights, staging))
        self._sum = [launch for grads, own_grads, _, _, staging in self._pairs
                     for launch in memory_kernels.plan_copy(grads if staging is None else staging, own_grads,
                                                            accumulate=True)]
        self._zero = [launch for grads, *_ in self._pairs for launch in memory_kernels.plan_fill(grads, 0.0)
                      ] if grad_req == "add" else []
        # The weights back after each update: a pre-built copy launch on one device, a
        # device-to-device copy between two.
        self._copy_back = [launch for _, _, weights, own, _ in self._pairs if weights.device == own.device
                           for launch in memory_kernels.plan_copy(own, weights)]
        self._copy_across = [(own, weights) for _, _, weights, own, _ in self._pairs if weights.device != own.device]

    def sum_gradients(self) -> None:
        """Add every context's parameter gradients into the first context's."""
        for grads, _, _, _, staging in self._pairs:
            if staging is not None:
                staging.copy_(grads)  # device to device
        run(self._sum)
        # With grad_req='add' the first context now holds the whole sum: the others start again
        # from zero, or their part would be added twice at the next step.
        run(self._zero)

    def copy_weights(self) -> None:
        """Give every context the first context's trained weights (after an update)."""
        run(self._copy_back)
        for own, weights in self._copy_across:
            weights.copy_(own)  # device to device

    def copy_all(self, param_names) -> None:
        """Give every context the first context's parameters and auxiliary states (after they are set)."""
        for replica in self.replicas:
            for name in param_names:
                _copy(self.primary.arg_dict[name], replica.executor.arg_dict[name])
            for name, array in replica.executor.aux_dict.items():
                _copy(self.primary.aux_dict[name], array)

    def copy_loss_scale(self) -> None:
        """The loss scale the optimizer keeps on the first context, for the others' training
        forward (where a loss makes its gradient) and backward."""
        for replica in self.replicas:
            replica.executor.loss_scale.copy_(self.primary.loss_scale)


def _copy(src: torch.Tensor, dst: torch.Tensor) -> None:
    if src.device == dst.device:
        run(memory_kernels.plan_copy(src, dst))
    else:
        dst.copy_(src)  # device to device
