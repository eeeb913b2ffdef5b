"""The bind-time memory planner: one byte offset per internal value, in its dtype's arena.

Internal values are operator outputs, gradients of internal values, head gradients,
backward scratch buffers and recomputed values (``mirror``); arguments, auxiliary states
and argument gradients have fixed places of their own (``memory.py``).

1. **Schedule.** Forward steps, then the head-gradient copy, then backward steps (with
   recompute steps), one position each; the symbol's outputs are read at one more
   position at the end, because the caller reads them after forward and after backward.
   Backward steps read only what their operator's ``backward_needs`` declared, so a
   forward value nobody needs later is dead at its last forward reader.
2. **Blocks.** A view (``Flatten``, identity outputs) shares its source's block. Then, in
   schedule order, MXNet's in-place rule: an output (or an input gradient) written first
   by a step joins an input's block when this step is the last to touch that block, the
   operator declares the pair (``OpDef.inplace`` / ``backward_inplace``), and both have the
   same dtype and size. A block lives from its first write to its last read.
3. **Offsets.** Blocks whose lifetimes intersect (a block that dies at a step and one born
   there do intersect) must not overlap in bytes. Two assignments are computed and the
   smaller kept: MXNet's (walk the schedule; a block born takes a freed storage of a
   matching size, best fit, largest blocks first; storages are laid end to end) and
   greedy by size (largest block first, each into the tightest gap among the blocks
   already placed that it meets; Pisarchyk and Lee 2020).
4. **Lower bound.** The largest total of block bytes live at one position: no assignment
   of these lifetimes can use less. Reported per dtype arena and summed.

``memory_plan`` selects ``"auto"`` (the smaller of the two), ``"greedy"``, ``"mxnet"`` or
``"none"`` (every block its own storage: no in-place, no reuse; views stay views).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..base import BindError
from .program import Program, Step, Value

ALIGN_BYTES = 256
PLANNED_KINDS = ("internal", "grad", "head_grad", "temp", "recompute")
MEMORY_PLANS = ("auto", "greedy", "mxnet", "none")
# MXNet's GraphAllocator matches a freed storage to a request within this size ratio.
MATCH_RANGE = 16


def aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGN_BYTES) * ALIGN_BYTES


def is_planned(value: Value) -> bool:
    return value.root().kind in PLANNED_KINDS


@dataclass
class Event:
    """One position of the schedule: the values a step reads and those it writes first."""

    label: str
    step: Step | None
    reads: list[Value]
    writes: list[Value]


@dataclass(eq=False)
class Block:
    """Storage shared by views of one value and by the values written in place over it."""

    values: list[Value]
    dtype: torch.dtype
    nbytes: int
    start: int
    end: int
    offset: int = 0

    @property
    def size(self) -> int:
        return aligned(self.nbytes)

    def meets(self, other: "Block") -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True)
class InPlace:
    position: int
    target: Value
    source: Value


@dataclass
class MemoryPlan:
    events: list[Event]
    blocks: list[Block]
    block_of: dict[int, Block]  # id(value) -> its block
    region_bytes: dict[torch.dtype, int]  # bytes of each dtype's internal region
    lower_bound_bytes: int
    lower_bound_aligned_bytes: int  # the same with every block rounded up to the alignment
    peak_position: int
    algorithm: str
    inplace: list[InPlace] = field(default_factory=list)
    backward_position: int = 0  # first position after forward (the head-gradient copy)
    naive_bytes: int = 0  # set by bind, from the unfused program
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)  # id(value) -> (first write, last read)

    @property
    def planned_bytes(self) -> int:
        return sum(self.region_bytes.values())

    def label(self, position: int) -> str:
        return self.events[position].label if position < len(self.events) else "the caller reads the outputs"

    def backward_overwrites_forward(self) -> bool:
        """Whether backward writes over forward values that backward itself reads, so a
        second backward needs a new forward first."""
        b = self.backward_position
        written_in_backward = {id(v) for event in self.events[b:] for v in event.writes}
        kept = [k for k in self.blocks if k.start < b <= k.end]
        later = [k for k in self.blocks if k.start >= b]
        for k in kept:
            if any(id(v) in written_in_backward for v in k.values):
                return True
            if any(o.dtype == k.dtype and _bytes_meet(k, o) for o in later):
                return True
        return False


def _bytes_meet(a: Block, b: Block) -> bool:
    return a.offset < b.offset + b.size and b.offset < a.offset + a.size and a.size > 0 and b.size > 0


# ---------------------------------------------------------------------- schedule


def schedule(program: Program) -> list[Event]:
    """Every position of one forward + backward, with what it reads and writes first."""
    events = [Event(step.label, step, list(step.inputs), list(step.outputs)) for step in program.forward_steps]
    if program.backward_steps or any(g is not None for g in program.head_grads):
        heads = [g for g in program.head_grads if g is not None]
        events.append(Event("head gradients copied in", None, [], heads))
    for step in program.backward_steps:
        if step.phase == "recompute":
            events.append(Event(step.label, step, list(step.inputs), list(step.outputs)))
            continue
        reads = [v for v in step.inputs + step.outputs + step.out_grads if v is not None]
        reads += [g for g, add in zip(step.in_grads, step.accumulate) if g is not None and add]
        writes = [g for g, add in zip(step.in_grads, step.accumulate) if g is not None and not add]
        events.append(Event(step.label, step, reads, writes + list(step.temps.values())))
    return events


# ------------------------------------------------------------------------ blocks


class _Blocks:
    """Union of values into blocks, with lifetimes."""

    def __init__(self, program: Program, events: list[Event]):
        self.block_of: dict[int, Block] = {}
        for value in program.values:
            if is_planned(value) and value.alias_of is None:
                self.block_of[id(value)] = Block([value], value.dtype, value.nbytes, len(events) + 1, -1)
        for value in program.values:  # views share their root's block
            if value.alias_of is not None and id(value.root()) in self.block_of:
                block = self.block_of[id(value.root())]
                block.values.append(value)
                self.block_of[id(value)] = block
        for position, event in enumerate(events):
            for value in event.writes:
                if id(value) in self.block_of:
                    block = self.block_of[id(value)]
                    block.start = min(block.start, position)
                    block.end = max(block.end, position)
            for value in event.reads:
                if id(value) in self.block_of:
                    self.block_of[id(value)].end = max(self.block_of[id(value)].end, position)
        end = len(events)
        for value in program.outputs:
            if id(value) in self.block_of:
                self.block_of[id(value)].end = end
        for block in self.blocks():
            if block.start > end:  # never written (cannot happen for a well-formed program)
                block.start = 0
            block.end = max(block.end, block.start)

    def blocks(self) -> list[Block]:
        return list({id(b): b for b in self.block_of.values()}.values())

    def merge(self, keep: Block, gone: Block) -> None:
        keep.values += gone.values
        keep.start = min(keep.start, gone.start)
        keep.end = max(keep.end, gone.end)
        keep.nbytes = max(keep.nbytes, gone.nbytes)
        for value in gone.values:
            self.block_of[id(value)] = keep


def _inplace_candidates(event: Event) -> list[tuple[Value, Value]]:
    """(target, source) pairs the operator of ``event`` allows, in its order of preference."""
    step = event.step
    if step is None:
        return []
    if step.phase in ("forward", "recompute"):
        return [(step.outputs[o], step.inputs[i]) for i, o in step.op.inplace(step.params)]
    pairs = []
    sources = {"out_grad": step.out_grads, "output": step.outputs, "input": step.inputs}
    for k, (kind, index) in step.op.backward_inplace(step.params, step.epilogue):
        target, source = step.in_grads[k], sources[kind][index]
        if target is not None and source is not None and not step.accumulate[k]:
            pairs.append((target, source))
    return pairs


def _apply_inplace(blocks: _Blocks, events: list[Event]) -> list[InPlace]:
    done = []
    for position, event in enumerate(events):
        taken: set[int] = set()
        for target, source in _inplace_candidates(event):
            t, s = blocks.block_of.get(id(target)), blocks.block_of.get(id(source))
            if t is None or s is None or t is s or id(t) in taken or id(s) in taken:
                continue
            if t.start != position or s.end != position:  # target born here, source dies here
                continue
            if target.dtype != source.dtype or target.nbytes != source.nbytes or t.nbytes != s.nbytes:
                continue
            blocks.merge(s, t)
            taken.update((id(s), id(t)))
            done.append(InPlace(position, target, source))
    return done


# ----------------------------------------------------------------------- offsets


def greedy_by_size(blocks: list[Block]) -> dict[int, int]:
    """Largest block first, each into the tightest gap among the placed blocks it meets."""
    placed: list[tuple[Block, int]] = []
    offsets: dict[int, int] = {}
    for block in sorted(blocks, key=lambda b: (-b.size, b.start, b.end)):
        taken = sorted((offset, b.size) for b, offset in placed if b.meets(block) and b.size > 0)
        best, best_gap, cursor = None, None, 0
        for offset, size in taken:
            gap = offset - cursor
            if gap >= block.size and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, offset + size)
        offsets[id(block)] = cursor if best is None else best
        placed.append((block, offsets[id(block)]))
    return offsets


def mxnet_storage(blocks: list[Block]) -> dict[int, int]:
    """MXNet's allocator: walk the schedule, reuse freed storages by size, lay them end to end."""
    born: dict[int, list[Block]] = {}
    dies: dict[int, list[Block]] = {}
    for block in blocks:
        born.setdefault(block.start, []).append(block)
        dies.setdefault(block.end, []).append(block)
    sizes: list[int] = []
    free: list[int] = []
    storage_of: dict[int, int] = {}
    for position in sorted(set(born) | set(dies)):
        for block in sorted(born.get(position, []), key=lambda b: -b.size):
            storage = _take_free(free, sizes, block.size)
            if storage is None:
                storage = len(sizes)
                sizes.append(block.size)
            sizes[storage] = max(sizes[storage], block.size)
            storage_of[id(block)] = storage
        for block in dies.get(position, []):
            free.append(storage_of[id(block)])
    starts, cursor = [], 0
    for size in sizes:
        starts.append(cursor)
        cursor += size
    return {key: starts[storage] for key, storage in storage_of.items()}


def _take_free(free: list[int], sizes: list[int], size: int) -> int | None:
    """The smallest free storage that fits, else the largest smaller one (it grows), within
    MATCH_RANGE of the request."""
    fits = [s for s in free if size <= sizes[s] <= size * MATCH_RANGE]
    smaller = [s for s in free if sizes[s] < size and sizes[s] * MATCH_RANGE >= size]
    if fits:
        choice = min(fits, key=lambda s: sizes[s])
    elif smaller:
        choice = max(smaller, key=lambda s: sizes[s])
    else:
        return None
    free.remove(choice)
    return choice


def one_storage_each(blocks: list[Block]) -> dict[int, int]:
    offsets, cursor = {}, 0
    for block in blocks:
        offsets[id(block)] = cursor
        cursor += block.size
    return offsets


def _extent(blocks: list[Block], offsets: dict[int, int]) -> int:
    return max((offsets[id(b)] + b.size for b in blocks), default=0)


def lower_bound(blocks: list[Block], aligned_sizes: bool = False) -> tuple[int, int]:
    """(largest total of bytes live at one position, that position)."""
    live: dict[int, int] = {}
    for block in blocks:
        for position in range(block.start, block.end + 1):
            live[position] = live.get(position, 0) + (block.size if aligned_sizes else block.nbytes)
    if not live:
        return 0, 0
    position = max(live, key=lambda p: (live[p], -p))
    return live[position], position


# -------------------------------------------------------------------------- plan


def plan_memory(program: Program, memory_plan: str = "auto") -> MemoryPlan:
    if memory_plan not in MEMORY_PLANS:
        raise BindError(f"memory_plan={memory_plan!r} is not one of {', '.join(MEMORY_PLANS)}")
    events = schedule(program)
    unmerged = _Blocks(program, events)
    merged = _Blocks(program, events)
    inplace = _apply_inplace(merged, events)
    blocks = merged.blocks()

    bound = bound_aligned = 0
    peak_position, peak_bytes = 0, -1
    for dtype in {b.dtype for b in blocks}:
        mine = [b for b in blocks if b.dtype == dtype]
        raw, position = lower_bound(mine)
        bound += raw
        bound_aligned += lower_bound(mine, aligned_sizes=True)[0]
        if raw > peak_bytes:
            peak_bytes, peak_position = raw, position

    if memory_plan == "none":
        blocks, block_of, inplace, algorithm = unmerged.blocks(), unmerged.block_of, [], "none"
        layouts = {"none": one_storage_each}
    else:
        block_of = merged.block_of
        layouts = {"greedy": greedy_by_size, "mxnet": mxnet_storage}
        if memory_plan != "auto":
            layouts = {memory_plan: layouts[memory_plan]}
    best = None
    for algorithm, layout in layouts.items():
        offsets, region = {}, {}
        for dtype in {b.dtype for b in blocks}:
            mine = [b for b in blocks if b.dtype == dtype]
            offsets.update(layout(mine))
            region[dtype] = aligned(_extent(mine, offsets))
        if best is None or sum(region.values()) < sum(best[2].values()):
            best = (algorithm, offsets, region)
    algorithm, offsets, region = best
    for block in blocks:
        block.offset = offsets[id(block)]
    spans = {key: (b.start, b.end) for key, b in unmerged.block_of.items()}
    return MemoryPlan(events, blocks, block_of, region, bound, bound_aligned, peak_position, algorithm, inplace,
                      backward_position=len(program.forward_steps), spans=spans)


def naive_bytes(program: Program) -> int:
    """Every internal value in a buffer of its own (views excepted: they never have one)."""
    return sum(v.nbytes for v in program.values if v.alias_of is None and is_planned(v))
