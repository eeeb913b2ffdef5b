"""Executor: a symbol bound to arrays, running pre-built kernel launches.

Everything is decided at bind: shapes, dtypes, the gradient graph, the fusion pass, the
workspace and every launch. ``forward`` and ``backward`` then run the step lists; they
allocate nothing and no array's address ever changes, so a step can be captured and
replayed as a CUDA graph.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import torch

from .. import random
from ..base import BindError, ExecutionError, converted_exactly, converted_on_host, dtype_name, user_tensor
from ..context import Context
from ..operators.registry import BackwardArgs, ForwardArgs, GradEpilogue
from ..ops import memory as kernels
from ..ops import precompile
from ..ops._common import Launch
from ..symbol.infer import propagate
from .graphs import EAGER, PhaseGraphs
from .memory import ParamRegion, Workspace, allocate, param_regions
from .options import BindOptions
from .prepare import prepare, shape_of
from .program import REPEATED, Program, Step
from .report import MemoryReport, memory_report


class Executor:
    """The result of ``Symbol.bind`` / ``simple_bind``. Arrays are torch tensors."""

    def __init__(self, symbol, ctx: Context, program: Program, workspace: Workspace, unset: set[str],
                 options: BindOptions | None = None, loss_scale: torch.Tensor | None = None):
        self._symbol = symbol
        self._ctx = ctx
        self._program = program
        self._workspace = workspace
        self._options = options or BindOptions()
        self._unset = set(unset)  # arguments never given a value (simple_bind arrays not yet written)
        self._last_forward: str | None = None  # None, "training", "inference" or "used" (by a backward)
        # A plan may give backward the storage of forward values it has finished reading.
        self._backward_consumes_forward = workspace.plan.backward_overwrites_forward()
        self._memory: MemoryReport | None = None
        # What every loss operator multiplies its gradient by, read on the device: 1 unless an
        # optimizer's LossScaler rewrites it. Executors made by reshape share it.
        self._loss_scale = loss_scale if loss_scale is not None else torch.ones(1, dtype=torch.float32,
                                                                                device=ctx.torch_device)
        self._build_launches()
        self._graphs = PhaseGraphs(ctx.torch_device) if self._options.cuda_graph else None
        self._phases = self._graphs or EAGER  # how forward, backward and an optimizer run their launches

    # ---------------------------------------------------------------------- arrays

    @property
    def arg_arrays(self) -> list[torch.Tensor]:
        self._unset.clear()  # all handed out: the caller may write any of them
        return [self._program.args[n].tensor for n in self._program.arg_names]

    @property
    def grad_arrays(self) -> list[torch.Tensor | None]:
        return [g.tensor if (g := self._program.arg_grads.get(n)) else None for n in self._program.arg_names]

    @property
    def aux_arrays(self) -> list[torch.Tensor]:
        return [self._program.aux[n].tensor for n in self._program.aux_names]

    @property
    def arg_dict(self) -> dict[str, torch.Tensor]:
        """Arrays by argument name. Handing them out counts as giving them values."""
        return dict(zip(self._program.arg_names, self.arg_arrays))

    @property
    def grad_dict(self) -> dict[str, torch.Tensor | None]:
        return dict(zip(self._program.arg_names, self.grad_arrays))

    @property
    def aux_dict(self) -> dict[str, torch.Tensor]:
        return dict(zip(self._program.aux_names, self.aux_arrays))

    @property
    def outputs(self) -> list[torch.Tensor]:
        return [v.tensor for v in self._program.outputs]

    @property
    def output_dict(self) -> dict[str, torch.Tensor]:
        return dict(zip(self._program.output_names, self.outputs))

    @property
    def needs_out_grads(self) -> list[bool]:
        """Per output: does backward need its gradient in ``out_grads``? (False for loss
        outputs, which write the gradient of their own loss.)"""
        return [g is not None for g in self._program.head_grads]

    @property
    def symbol(self):
        return self._symbol

    @property
    def ctx(self) -> Context:
        return self._ctx

    @property
    def draws_random(self) -> bool:
        """Whether a forward draws random masks (Dropout), from its device's
        ``random.device_state``."""
        return bool(self._advance or self._advance_inference)

    @property
    def workspace(self) -> Workspace:
        return self._workspace

    @property
    def memory(self) -> MemoryReport:
        """The memory plan: ``naive_bytes``, ``planned_bytes``, ``lower_bound_bytes`` (internal
        values only), ``workspace_bytes`` (everything), and where each value lives."""
        if self._memory is None:
            self._memory = memory_report(self._program, self._workspace, self._options.mirror)
        return self._memory

    @property
    def graphs(self) -> PhaseGraphs | None:
        """The recorded CUDA graphs (``cuda_graph=True``), else None."""
        return self._graphs

    @property
    def phases(self):
        """Where launch lists run: the CUDA graphs, or directly (``run(phase, launch_all)``)."""
        return self._phases

    @property
    def loss_scale(self) -> torch.Tensor:
        """The one-element float32 device tensor every loss operator's gradient is multiplied
        by (1 unless an optimizer with a ``LossScaler`` drives it)."""
        return self._loss_scale

    def loss_scaling_problems(self) -> list[str]:
        """Why a loss scale would not reach every gradient: a loss operator that makes its
        gradient without applying ``loss_scale`` (a custom op without ``applies_loss_scale``),
        or an output whose gradient comes from ``out_grads``. Empty when scaling is exact."""
        program = self._program
        problems = [f"{step.name} ({step.op.name}) makes its own gradient without applying the loss scale "
                    "(its OpDef lacks applies_loss_scale=True)"
                    for step in program.backward_steps
                    if step.phase == "backward" and not step.op.needs_head_grad(step.params)
                    and not step.op.applies_loss_scale and any(g is not None for g in step.in_grads)]
        producers = {id(o): s for s in program.forward_steps for o in s.outputs}
        for value, name, head in zip(program.outputs, program.output_names, program.head_grads):
            producer = producers.get(id(value))
            if head is not None and (producer is None or not producer.op.applies_loss_scale):
                problems.append(f"output {name!r} takes its gradient from out_grads, which the loss scale does "
                                "not multiply (wrap it in MakeLoss, or in BlockGrad if it is only monitored)")
        return problems

    def nonfinite(self, names: Sequence[str]) -> dict[str, int]:
        """How many NaN/inf each named argument or output holds, for those that hold any:
        one Triton launch each and one read-back (it synchronises: for once an epoch, not
        every step). Integer arrays hold neither and are skipped."""
        # The program's own tensors: reading arg_dict would count as giving every argument a value.
        arrays = {**self.output_dict, **{n: v.tensor for n, v in self._program.args.items()}}
        unknown = [n for n in names if n not in arrays]
        if unknown:
            raise BindError(f"nonfinite: {unknown} are neither arguments nor outputs of this executor")
        tensors = {n: arrays[n] for n in names if arrays[n].is_floating_point()}
        if not tensors:
            return {}
        counts = torch.zeros(len(tensors), dtype=torch.int32, device=next(iter(tensors.values())).device)
        for k, tensor in enumerate(tensors.values()):
            for launch in kernels.plan_count_nonfinite(tensor, counts[k:k + 1]):
                launch()
        return {name: c for name, c in zip(tensors, counts.tolist()) if c}

    def param_regions(self, names=None) -> list[ParamRegion]:
        """The arguments that take a gradient (those in ``names`` when given), as one flat
        weight view and one flat gradient view per dtype with the same layout (what an
        optimizer updates in one launch)."""
        return param_regions(self._program, self._workspace, names)

    # ------------------------------------------------------------------- execution

    def _build_launches(self) -> None:
        for step in self._program.forward_steps:
            step.launches = _launches(step, "forward", step.op.forward(_forward_args(step, False, self._loss_scale)))
            if step.op.forward_in_training(step.params) or step.saved:  # a training forward keeps them
                step.train_launches = _launches(step, "forward", step.op.forward(_forward_args(step, True,
                                                                                               self._loss_scale)))
        # A network that draws random masks moves the device's random state to the next step at
        # each training forward, first (in the same phase: a graph replay draws new masks).
        draws = any(s.op.draws_random(s.params) for s in self._program.forward_steps)
        self._advance = random.advance_launches(self._ctx.torch_device) if draws else []
        # Mode 'always' draws in inference too: each inference forward draws anew (MC dropout).
        self._advance_inference = random.advance_launches(self._ctx.torch_device) if any(
            s.op.draws_random_in_inference(s.params) for s in self._program.forward_steps) else []
        # Forward phases run other launches when training: a captured graph for each.
        self._train_phase = "forward:train" if draws or any(s.train_launches is not None
                                                            for s in self._program.forward_steps) else "forward"
        for step in self._program.backward_steps:
            if step.phase == "recompute":  # backward re-runs a training forward
                step.launches = _launches(step, "forward", step.op.forward(_forward_args(step, True, self._loss_scale,
                                                                                         saved=False)))
                continue
            zeroing = [launch for g in step.zero_filled for launch in kernels.plan_fill(g.tensor, 0.0)]
            # An array read at several inputs: the later inputs' gradients, in scratch, added in after.
            adding = [launch for scratch, g in step.repeated_grads
                      for launch in kernels.plan_copy(scratch.tensor, g.tensor, accumulate=True)]
            step.launches = zeroing + _launches(step, "backward", step.op.backward(BackwardArgs(
                step.params,
                [v.tensor if v is not None else None for v in step.inputs],
                [v.tensor if v is not None else None for v in step.outputs],
                [g.tensor if g is not None else None for g in step.out_grads],
                [g.tensor if g is not None else None for g in step.in_grads],
                list(step.accumulate),
                {k: v.tensor for k, v in step.temps.items() if not k.startswith(("zero-filled ", REPEATED))},
                step.epilogue, self._loss_scale, {k: v.tensor for k, v in step.saved.items()}, step.name,
                list(step.input_shapes), _grad_epilogue_args(step)))) + adding
        self._zero_launches = [launch for g in self._program.zero_grads for launch in kernels.plan_fill(g.tensor, 0.0)]
        self._zero_all_launches = [launch for g in self._program.arg_grads.values()
                                   for launch in kernels.plan_fill(g.tensor, 0.0)]
        # On a GPU, compile in parallel what the first run would compile one kernel at a time.
        self.precompiled = precompile.warm(
            [launch for step in self._program.forward_steps + self._program.backward_steps
             for launch in step.launches + (step.train_launches or [])]
            + self._advance + self._advance_inference + self._zero_launches + self._zero_all_launches,
            self._ctx.torch_device)
        self._forward_reads = {is_train: self._program.reads(self._program.forward_steps, is_train)
                               for is_train in (False, True)}
        self._backward_reads = self._program.reads(self._program.backward_steps)
        self._finite_checks = _FiniteChecks(self._program) if self._options.check_finite else None

    def forward(self, is_train: bool = False, **inputs) -> list[torch.Tensor]:
        """Run forward. ``inputs`` (torch tensors or numpy arrays) are copied into the
        arguments of those names first. Returns ``outputs``."""
        self._write_arguments("forward", inputs)
        self._check_set("forward", self._forward_reads[is_train])
        if self._finite_checks is not None:
            self._finite_checks.arguments(self._forward_reads[is_train])
        self._phases.run(self._train_phase if is_train else "forward", lambda: self._run_forward(is_train))
        self._last_forward = "training" if is_train else "inference"
        return self.outputs

    def backward(self, out_grads: torch.Tensor | Sequence | dict | None = None,
                 after_step: Callable[[int], None] | None = None) -> None:
        """Compute the gradients of the arguments (into ``grad_arrays``) after a
        ``forward(is_train=True)``. Loss outputs make their own gradient; any other output
        needs one in ``out_grads`` (a tensor/array per output, or a dict by output name).
        ``after_step(i)`` is called after backward step ``i`` (and with -1 before the first;
        see ``grad_ready_steps``): how a data-parallel run starts reducing a gradient as
        soon as it is final. With no gradient to compute (``grad_req='null'`` everywhere)
        it does nothing, as in MXNet."""
        if self._last_forward != "training":
            why = {None: "forward has not run", "inference": "the last forward was for inference (is_train=False)",
                   "used": "the memory plan gave the last backward the storage of forward values it had "
                           "finished reading, so each backward needs its own forward (bind with "
                           "memory_plan='none' to call backward repeatedly)"}[self._last_forward]
            raise ExecutionError(f"backward: call forward(is_train=True) first; {why}")
        if not self._program.arg_grads:
            return  # grad_req 'null' everywhere (or bind without args_grad): nothing to compute, as in MXNet
        self._check_set("backward", self._backward_reads)
        self._copy_head_grads(out_grads)
        if self._backward_consumes_forward:
            self._last_forward = "used"
        if after_step is None:
            self._phases.run("backward", self._run_backward)
        else:  # a callback between steps runs on the host: no graph
            self._run_backward(after_step)

    def forward_backward(self, out_grads: torch.Tensor | Sequence | dict | None = None,
                         then: Callable[[], None] | None = None, **inputs) -> list[torch.Tensor]:
        """``forward(is_train=True, **inputs)`` and ``backward(out_grads)`` as one phase, with
        ``then`` (more launches: an optimizer's ``FlatUpdater.launch_all``) run last in it.
        With ``cuda_graph=True`` a whole training step is then one graph replay instead of
        three. Every argument check happens before anything runs. The phase is recorded
        once per ``then`` (per object, for a bound method), so ``then`` must launch the same
        kernels on the same memory every call. Returns ``outputs``."""
        self._write_arguments("forward_backward", inputs)
        self._check_set("forward_backward", self._forward_reads[True] | self._backward_reads)
        if not self._program.arg_grads:
            raise ExecutionError("forward_backward: this executor computes no gradients (grad_req is 'null' for "
                                 "every argument, or bind got no args_grad); bind with grad_req='write'")
        self._copy_head_grads(out_grads)
        if self._finite_checks is not None:
            self._finite_checks.arguments(self._forward_reads[True])

        def launch_all() -> None:
            self._run_forward(is_train=True)
            self._run_backward()
            if then is not None:
                then()

        self._phases.run(_phase_name(then), launch_all)
        self._last_forward = "used" if self._backward_consumes_forward else "training"
        return self.outputs

    def _run_forward(self, is_train: bool) -> None:
        for launch in self._advance if is_train else self._advance_inference:
            launch()
        self._run(self._program.forward_steps, is_train=is_train)

    def _run_backward(self, after_step: Callable[[int], None] | None = None) -> None:
        try:
            for launch in self._zero_launches:
                launch()
        except Exception as e:
            raise ExecutionError(f"backward: zeroing unused gradients failed: {e}") from e
        if after_step is not None:
            after_step(-1)  # gradients no step writes are final now (zeroed above)
        self._run(self._program.backward_steps, after_step)

    def zero_grad(self) -> None:
        """Set every argument gradient to zero (before accumulating with grad_req='add')."""
        for launch in self._zero_all_launches:
            launch()

    def _run(self, steps: list[Step], after_step: Callable[[int], None] | None = None, is_train: bool = False) -> None:
        for i, step in enumerate(steps):
            try:
                for launch in step.launches_for(is_train):
                    launch()
            except Exception as e:
                raise ExecutionError(f"while running {step.label}: {type(e).__name__}: {e}") from e
            if self._finite_checks is not None:
                self._finite_checks.step(step)
            if after_step is not None:
                after_step(i)

    def grad_ready_steps(self) -> dict[str, int]:
        """For each argument that takes a gradient, the index of the backward step after
        which its gradient is final (-1: no step writes it; it is zeroed before them)."""
        ready = {}
        for name, grad in self._program.arg_grads.items():
            last = -1
            for i, step in enumerate(self._program.backward_steps):
                if any(g.root() is grad.root() for g in step.grads_written):
                    last = i
            ready[name] = last
        return ready

    def _copy_head_grads(self, out_grads) -> None:
        """Copy the head gradients into their buffers, all checked before any is written. An
        output listed more than once (``Group([y, y])``) has one buffer: its first head
        gradient is written and the later ones are added, so it gets their sum."""
        program = self._program
        needed = [(k, name, g) for k, (name, g) in enumerate(zip(program.output_names, program.head_grads))
                  if g is not None]
        if not needed:
            return
        if out_grads is None:
            names = ", ".join(dict.fromkeys(name for _, name, _ in needed))
            raise ExecutionError(f"backward: output(s) {names} are not loss outputs, so backward needs their "
                                 "gradient: pass out_grads=[...]. To train on such an output, wrap it in "
                                 "MakeLoss (a loss) or BlockGrad (monitoring only, no gradient)")
        if isinstance(out_grads, dict):
            repeated = sorted({n for n in program.output_names if program.output_names.count(n) > 1})
            if repeated:
                raise ExecutionError(f"backward: output {repeated[0]!r} is listed more than once, so out_grads as a "
                                     "dict cannot say which gradient is whose: pass a list, one per output, in "
                                     f"order ({', '.join(program.output_names)})")
            given = [out_grads.get(name) for name in program.output_names]
        else:
            if isinstance(out_grads, (torch.Tensor, np.ndarray)):
                out_grads = [out_grads]
            given = list(out_grads)
            if len(given) != len(program.output_names):
                raise ExecutionError(f"backward: {len(given)} out_grads for {len(program.output_names)} outputs "
                                     f"({', '.join(program.output_names)})")
        writes, first = [], set()
        for k, name, grad in needed:
            if given[k] is None:
                raise ExecutionError(f"backward: out_grads has no gradient for output {k} ({name!r})")
            # An output that is itself an argument adds to that argument's gradient under 'add';
            # a repeated output adds its later head gradients to its first.
            add = id(grad) in first or any(g is grad and program.grad_req[n] == "add"
                                           for n, g in program.arg_grads.items())
            first.add(id(grad))
            writes.append((grad.tensor, _prepared(f"backward: out_grads[{k}] ({name!r})", grad.tensor, given[k]),
                           add))
        for dst, src, add in writes:  # every gradient checked before any is written
            _write(dst, src, add)

    # ------------------------------------------------------------------- arguments

    def _write_arguments(self, what: str, values: dict) -> None:
        """Copy ``values`` into the arguments of those names, each checked before any is
        written: a bad one leaves every argument as it was."""
        program = self._program
        unknown = [name for name in values if name not in program.args]
        if unknown:
            raise BindError(f"{what}: {unknown[0]!r} is not an argument of this executor; its arguments are "
                            f"{', '.join(program.arg_names)}")
        prepared = {name: _prepared(f"{what}: argument {name!r}", program.args[name].tensor, value,
                                    exact=name in program.class_args)
                    for name, value in values.items()}
        for name, src in prepared.items():
            _write(program.args[name].tensor, src)
            self._unset.discard(name)

    def _check_set(self, what: str, reads: set[str]) -> None:
        if not self._unset:  # the usual case once every argument has a value: nothing to scan
            return
        missing = [n for n in self._program.arg_names if n in reads and n in self._unset]
        if missing:
            raise ExecutionError(f"{what}: argument(s) {', '.join(missing)} have never been given a value; pass "
                                 f"them as forward({missing[0]}=...) or write into arg_dict[{missing[0]!r}] "
                                 "(simple_bind allocates arrays without filling them)")

    def copy_params_from(self, arg_params: dict, aux_params: dict | None = None,
                         allow_extra_params: bool = False) -> None:
        """Copy parameter values (tensors or numpy arrays) into the bound arrays by name.
        Every value is checked before any is written."""
        program = self._program
        for name in arg_params:
            if name not in program.args and not allow_extra_params:
                raise BindError(f"copy_params_from: {name!r} is not an argument of this executor (arguments: "
                                f"{', '.join(program.arg_names)}); pass allow_extra_params=True to skip it")
        for name in aux_params or {}:
            if name not in program.aux and not allow_extra_params:
                raise BindError(f"copy_params_from: {name!r} is not an auxiliary state of this executor")
        aux = {name: _prepared(f"copy_params_from: auxiliary state {name!r}", program.aux[name].tensor, value)
               for name, value in (aux_params or {}).items() if name in program.aux}
        self._write_arguments("copy_params_from", {k: v for k, v in arg_params.items() if k in program.args})
        for name, src in aux.items():
            _write(program.aux[name].tensor, src)

    def reshape(self, partial_shaping: bool = False, allow_up_sizing: bool = False, **shapes) -> "Executor":
        """A new executor for new input shapes that shares this one's arrays for every
        argument whose shape does not change (parameters and their gradients); the rest,
        and all internal values, get a new workspace. An argument that shrinks keeps its
        leading elements, as MXNet's does (one that grows has no value until it is given
        one). A parameter whose shape would change
        is an error unless named in ``shapes`` or ``partial_shaping=True``.
        (``allow_up_sizing`` is accepted for MXNet compatibility: memory is never reused
        across executors here.)"""
        program = self._program
        given = {k: shape_of(k, v) for k, v in shapes.items()}
        values, nodes = propagate(self.symbol, given, "shape")
        inferred = {n.name: values.get((id(n), 0)) for n in nodes if n.is_variable}
        final, kept = dict(given), []
        for name, value in program.args.items():
            if name in given:
                continue
            new = inferred.get(name)
            if new is None or tuple(new) == value.shape:
                final[name] = value.shape
                kept.append(name)
            elif partial_shaping:
                final[name] = new
            else:
                raise BindError(f"reshape: argument {name!r} would change shape from {value.shape} to "
                                f"{tuple(new)}; give its new shape too, or pass partial_shaping=True")
        dtypes = {n: v.dtype for n, v in program.args.items()}
        ctx, new_program, plan = prepare(self.symbol, self._ctx, final, dtypes, program.grad_req, self._options)
        # unchanged arguments, their gradients and the auxiliary states are shared, not copied
        provided = self.shared_arrays(new_program, kept, new_program.aux_names)
        workspace = allocate(new_program, plan, provided, ctx.torch_device)
        unset = {n for n in new_program.arg_names if n not in kept or n in self._unset}
        for name in sorted(unset - self._unset):
            # MXNet's new executor reads a smaller argument out of the old one's memory, so its
            # values carry over (its leading elements); here they are copied, once.
            old, new = program.args[name].tensor, new_program.args[name].tensor
            if old.dtype == new.dtype and 0 < new.numel() <= old.numel():
                _write(new, old.reshape(-1)[:new.numel()].view(new.shape))
                unset.discard(name)
        return Executor(self.symbol, ctx, new_program, workspace, unset, options=self._options,
                        loss_scale=self.loss_scale)

    def shared_arrays(self, program: Program, arg_names, aux_names=()) -> dict[int, torch.Tensor]:
        """This executor's arrays for another ``program``'s arguments ``arg_names`` (with their
        gradients) and auxiliary states ``aux_names``, as ``allocate`` takes them (by the other
        program's value): what ``reshape`` and ``simple_bind(shared_exec=...)`` share. Each
        must have this executor's shape and dtype, and a gradient there must have one here."""
        mine = self._program
        provided = {}
        for kind, names, theirs, ours in (("argument", arg_names, program.args, mine.args),
                                          ("auxiliary state", aux_names, program.aux, mine.aux)):
            for name in names:
                if name not in ours:
                    raise BindError(f"shared_exec: {kind} {name!r} is not one of the shared executor's (its "
                                    f"{kind}s: {', '.join(ours) or 'none'})")
                if (theirs[name].shape, theirs[name].dtype) != (ours[name].shape, ours[name].dtype):
                    raise BindError(f"shared_exec: {kind} {name!r} is {theirs[name].shape} "
                                    f"{dtype_name(theirs[name].dtype)} here but {ours[name].shape} "
                                    f"{dtype_name(ours[name].dtype)} in the shared executor")
                provided[id(theirs[name])] = ours[name].tensor
                if kind == "argument" and name in program.arg_grads:
                    if name not in mine.arg_grads:
                        raise BindError(f"shared_exec: argument {name!r} takes a gradient here but not in the shared "
                                        "executor, which would have to keep it")
                    provided[id(program.arg_grads[name])] = mine.arg_grads[name].tensor
        return provided

    def debug_str(self) -> str:
        """The bound program: each step with its launches, each argument and gradient with
        size and offset, then the memory plan (``memory``)."""
        program, ws = self._program, self._workspace
        lines = [f"Executor on {self._ctx}: {len(program.forward_steps)} forward steps, "
                 f"{len(program.backward_steps)} backward steps, workspace {ws.nbytes} bytes "
                 f"({', '.join(f'{dtype_name(d)} {a.numel() * a.element_size()}' for d, a in ws.arenas.items())})"]
        for step in program.forward_steps + program.backward_steps:
            lines.append(f"  {step.label}: {len(step.launches)} launch(es)")
        lines.append("  arguments and gradients:")
        for v in program.values:
            if v.root().kind not in ("arg", "aux", "arg_grad"):
                continue
            where = (f"view of {v.alias_of.name}" + (f" from element {v.window}" if v.window else "")
                     if v.alias_of is not None
                     else f"offset {ws.offsets[id(v)]}" if id(v) in ws.offsets else "user array")
            lines.append(f"    {v.name:<28} {v.kind:<9} {dtype_name(v.dtype):<8} {str(v.shape):<16} "
                         f"{v.nbytes:>10} B  {where}")
        lines += ["  " + line for line in str(self.memory).splitlines()]
        # MXNet's closing line (whole MiB, rounded down as MXNet's): the whole workspace here.
        lines.append(f"Total {ws.nbytes >> 20} MB allocated")
        return "\n".join(lines) + "\n"


def _launches(step: Step, rule: str, launches) -> list[Launch]:
    """What an operator's rule returned, checked: a list of ``Launch`` (the executor reads a
    launch's kernel, grid and tensors to plan, check and replay it; a plain function hides
    them). Checked at bind, before anything runs: the rule sees tensors only then."""
    if not isinstance(launches, (list, tuple)):
        raise BindError(f"{step.name} ({step.op.name}): its {rule} rule returned {type(launches).__name__}; it must "
                        "return a list of tritonsym.operator.Launch(kernel, grid, args, kwargs)")
    for k, launch in enumerate(launches):
        if not isinstance(launch, Launch):
            raise BindError(f"{step.name} ({step.op.name}): item {k} of its {rule} rule's list is "
                            f"{getattr(launch, '__qualname__', type(launch).__name__)!r}, not a launch; it must be "
                            "tritonsym.operator.Launch(kernel, grid, args, kwargs) of a @triton.jit kernel (or of "
                            "tritonsym.ops' kernels)")
    return list(launches)


def _grad_epilogue_args(step: Step) -> GradEpilogue | None:
    """The step's grad epilogue with its bias gradient's tensor."""
    finish = step.grad_epilogue
    if finish is None or finish.bias_grad is None:
        return finish
    return dataclasses.replace(finish, bias_grad=finish.bias_grad.tensor)


def _forward_args(step: Step, is_train: bool, loss_scale: torch.Tensor, saved: bool = True) -> ForwardArgs:
    """What a forward (or recompute) step's rule gets: the tensors of its values; where to
    keep values for backward only for a training forward (not a recompute: mirror's)."""
    kept = {k: v.tensor for k, v in step.saved.items()} if is_train and saved else {}
    return ForwardArgs(step.params, [v.tensor for v in step.inputs], [v.tensor for v in step.outputs], step.epilogue,
                       {k: v.tensor for k, v in step.temps.items()}, is_train, kept, step.name, loss_scale)


def _phase_name(then: Callable | None) -> str:
    """The phase of a forward_backward followed by ``then``: one recording per callable. A
    bound method is a new object at each attribute access, so its instance names it."""
    if then is None:
        return "forward_backward"
    owner = getattr(then, "__self__", then)
    return f"forward_backward+{getattr(then, '__qualname__', type(then).__name__)}@{id(owner):x}"


def _prepared(what: str, dst: torch.Tensor, src, exact: bool = False) -> torch.Tensor:
    """User data as a tensor ready to copy into the bound array ``dst``: the shape must
    match exactly; host data is converted to ``dst``'s dtype here, and checked: into an
    integer array, or with ``exact`` (class indices), no value may change."""
    src = user_tensor(what, src, BindError)
    if tuple(src.shape) != tuple(dst.shape):
        raise BindError(f"{what} has shape {tuple(src.shape)} but the bound array has shape {tuple(dst.shape)}")
    if src.device.type == "cpu" and src.dtype != dst.dtype and (exact or not dst.dtype.is_floating_point):
        src = converted_exactly(what, src, dst.dtype, BindError)
    elif src.device.type == "cpu" and dst.dtype.is_floating_point and src.dtype != dst.dtype and \
            dst.dtype.itemsize < src.element_size():
        # Converted here, on the host, to check for values the narrower dtype cannot hold (1e6
        # into float16, 1e300 into float32): an error naming the argument, not a silent inf. A
        # device tensor is copied by torch unchecked: checking it would synchronise.
        src = converted_on_host(what, src, dst.dtype, BindError)
    return src


def _write(dst: torch.Tensor, src: torch.Tensor, accumulate: bool = False) -> None:
    if accumulate:
        kernels.accumulate(src.to(device=dst.device), dst)
    else:
        # Host-to-device data movement (with dtype conversion) at the boundary of a step,
        # not compute: torch's copy is the transfer.
        dst.copy_(src)


class _FiniteChecks:
    """``check_finite``: count NaN/inf (with a Triton kernel) in every argument before
    forward and in every value a step writes, and stop at the first that has any. A
    debugging aid: each check reads its count back to the host, which synchronises."""

    def __init__(self, program: Program):
        self.program = program
        written = [v for step in program.forward_steps + program.backward_steps
                   for v in (step.outputs if step.phase != "backward" else step.grads_written) if v is not None]
        args = [v for v in program.args.values() if v.tensor.is_floating_point()]
        checked = {id(v): v for v in written + args}
        device = next(iter(checked.values())).tensor.device if checked else None
        self.counts = torch.zeros(max(len(checked), 1), dtype=torch.int32, device=device)
        self.slot = {key: k for k, key in enumerate(checked)}
        self.launches = {key: kernels.plan_count_nonfinite(checked[key].tensor, self.counts[k:k + 1])
                         for key, k in self.slot.items()}

    def _bad(self, value) -> int:
        k = self.slot[id(value)]
        self.counts[k:k + 1].zero_()  # debug bookkeeping on a counter, not part of the computation
        for launch in self.launches[id(value)]:
            launch()
        return int(self.counts[k].item())

    def arguments(self, reads: set[str]) -> None:
        for name in self.program.arg_names:
            value = self.program.args[name]
            if name in reads and id(value) in self.slot and (bad := self._bad(value)):
                raise ExecutionError(f"check_finite: argument {name!r} {value.shape} holds {bad} NaN/inf "
                                     "value(s) before forward")

    def step(self, step: Step) -> None:
        written = step.outputs if step.phase != "backward" else step.grads_written
        for value in written:
            if value is not None and (bad := self._bad(value)):
                raise ExecutionError(f"check_finite: {step.label} wrote {bad} NaN/inf value(s) into {value.name} "
                                     f"{value.shape}; every value before it was finite (its inputs: "
                                     f"{', '.join(v.name for v in step.inputs if v is not None)})")
