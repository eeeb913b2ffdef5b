"""``Executor.memory``: the memory plan as a small structured object, and its text form.

All byte counts except ``workspace_bytes`` cover internal values only (operator outputs,
gradients of internal values, head gradients, scratch and recomputed buffers), not
arguments, auxiliary states or argument gradients, whose sizes no plan can change.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..base import dtype_name
from .memory import Workspace
from .planner import bytes_meet
from .program import Program


@dataclass(frozen=True)
class PlannedValue:
    """Where one internal value lives."""

    name: str
    kind: str
    dtype: str
    shape: tuple
    nbytes: int
    offset: int  # bytes from the start of its dtype's arena
    first_step: str  # the step that writes it first
    last_step: str  # the last step that reads it
    shares_with: tuple[str, ...]  # other values placed on some of the same bytes
    inplace_over: str | None  # the value it was written over in place, if any


@dataclass(frozen=True)
class MemoryReport:
    naive_bytes: int  # every internal value of the unfused forward+backward graph in its own buffer
    planned_bytes: int  # the internal regions of the workspace, as planned
    # The most bytes live at one step, least over the schedules the executor could run (this
    # one and the unfused graph's): no plan uses less.
    lower_bound_bytes: int
    lower_bound_aligned_bytes: int  # the same, with every buffer rounded up to the 256-byte alignment
    schedule_bound_bytes: int  # the most bytes live at one step of this schedule (>= lower_bound_bytes)
    schedule_bound_aligned_bytes: int
    workspace_bytes: int  # the whole allocation: arguments, gradients and internal values
    algorithm: str  # the offset assignment kept: greedy, breadth, mxnet, search, bounded or none
    mirror: bool
    training: bool  # planned for forward and backward (False: forward only)
    peak_step: str  # where the lower bound is reached
    values: tuple[PlannedValue, ...]

    def __str__(self) -> str:
        lines = [f"memory plan ({'training' if self.training else 'inference'}, {self.algorithm}"
                 f"{', mirror' if self.mirror else ''}): internal values {self.planned_bytes} bytes planned, "
                 f"{self.naive_bytes} naive, lower bound {self.lower_bound_bytes} "
                 f"({self.lower_bound_aligned_bytes} aligned{self._own_bound()}) at {self.peak_step}; workspace "
                 f"{self.workspace_bytes} bytes"]
        for v in self.values:
            shared = f" shares with {', '.join(v.shares_with)}" if v.shares_with else ""
            inplace = f" (in place over {v.inplace_over})" if v.inplace_over else ""
            lines.append(f"  {v.name:<30} {v.kind:<9} {v.dtype:<8} {str(v.shape):<14} {v.nbytes:>10} B @ {v.offset:>10}"
                         f"  [{v.first_step} .. {v.last_step}]{inplace}{shared}")
        return "\n".join(lines)

    def _own_bound(self) -> str:
        if self.schedule_bound_bytes == self.lower_bound_bytes:
            return ""
        return f"; {self.schedule_bound_bytes} for this schedule"


def memory_report(program: Program, workspace: Workspace, mirror: bool) -> MemoryReport:
    plan = workspace.plan
    blocks = plan.blocks
    inplace_over = {id(p.target): p.source.name for p in plan.inplace}
    values = []
    for block in sorted(blocks, key=lambda b: (str(b.dtype), b.offset, b.start)):
        overlapping = [o for o in blocks if o is not block and o.dtype == block.dtype and bytes_meet(o, block)]
        for v in block.values:
            if v.alias_of is not None:
                continue  # a view: listed with the value it views
            shares = [o.name for o in block.values if o is not v and o.alias_of is None]
            shares += [o.name for other in overlapping for o in other.values if o.alias_of is None]
            first, last = plan.spans[id(v)]
            values.append(PlannedValue(v.name, v.kind, dtype_name(v.dtype), v.shape, v.nbytes, workspace.offsets[id(v)],
                                       plan.label(first), plan.label(last), tuple(shares), inplace_over.get(id(v))))
    return MemoryReport(
        naive_bytes=plan.naive_bytes, planned_bytes=plan.planned_bytes, lower_bound_bytes=plan.lower_bound_bytes,
        lower_bound_aligned_bytes=plan.lower_bound_aligned_bytes, schedule_bound_bytes=plan.schedule_bound_bytes,
        schedule_bound_aligned_bytes=plan.schedule_bound_aligned_bytes, workspace_bytes=workspace.nbytes,
        algorithm=plan.algorithm, mirror=mirror, training=bool(program.backward_steps),
        peak_step=plan.label(plan.peak_position), values=tuple(values))
