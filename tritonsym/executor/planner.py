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
3. **Lower bound.** The largest total of block bytes live at one position: no assignment
   of these lifetimes can use less. Reported per dtype arena and summed, as the least
   over the schedules the executor could run: this one and that of the unfused graph
   (``prepare.py`` plans both), so a fusion that kept more alive would show as a plan
   above the bound.
4. **Offsets.** Blocks whose lifetimes intersect (a block that dies at a step and one born
   there do intersect) must not overlap in bytes. Three assignments are computed and the
   smallest kept: MXNet's (walk the schedule; a block born takes a freed storage of a
   matching size, best fit, largest blocks first; storages are laid end to end), greedy
   by size and greedy by breadth (Pisarchyk and Lee 2020: blocks in order of size, or
   of the most crowded position first, each into the tightest gap among the placed
   blocks it meets). If the best is above the lower bound (rounded to the alignment), a
   budgeted exact search looks for a placement at the bound, and failing that a search
   for the lowest ceiling under which blocks fit alternating between the arena's two ends.
   On every chain MLP and gated network tried (hundreds of random sizes, training and
   inference) the plan equals the aligned lower bound.

``memory_plan`` selects ``"auto"`` (all of the above), one heuristic alone (``"greedy"``,
``"breadth"``, ``"mxnet"``), or ``"none"`` (every block its own storage: no in-place, no
reuse; views stay views).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..base import BindError
from .program import Program, Step, Value

ALIGN_BYTES = 256
PLANNED_KINDS = ("internal", "grad", "head_grad", "temp", "recompute", "saved")
MEMORY_PLANS = ("auto", "greedy", "breadth", "mxnet", "none")
# MXNet's GraphAllocator matches a freed storage to a request within this size ratio.
MATCH_RANGE = 16
# Placements the exact search may try before the heuristics' best plan is kept: at least
# SEARCH_BUDGET, and more for few blocks, where a placement costs little (a placement
# scans the blocks placed, so SEARCH_WORK bounds the block visits: about 0.3 s).
SEARCH_BUDGET = 10000
SEARCH_WORK = 2_500_000
SEARCH_MAX_BLOCKS = 256  # the search recurses once per block
UNBOUNDED = 1 << 62


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
    # The least, over the schedules the executor could run (``prepare.py``), of the most
    # bytes live at one position; and the same with every block rounded up to the alignment.
    lower_bound_bytes: int
    lower_bound_aligned_bytes: int
    peak_position: int
    algorithm: str
    inplace: list[InPlace] = field(default_factory=list)
    backward_position: int = 0  # first position after forward (the head-gradient copy)
    naive_bytes: int = 0  # set by bind, from the unfused program
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)  # id(value) -> (first write, last read)
    # The bound of this plan's own schedule (what its offsets can reach), raw and aligned.
    schedule_bound_bytes: int = 0
    schedule_bound_aligned_bytes: int = 0

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
            if any(o.dtype == k.dtype and bytes_meet(k, o) for o in later):
                return True
        return False


def bytes_meet(a: Block, b: Block) -> bool:
    return a.offset < b.offset + b.size and b.offset < a.offset + a.size and a.size > 0 and b.size > 0


# ---------------------------------------------------------------------- schedule


def schedule(program: Program) -> list[Event]:
    """Every position of one forward + backward, with what it reads and writes first."""
    events = [Event(step.label, step, list(step.inputs),
                    list(step.outputs) + list(step.temps.values()) + list(step.saved.values()))
              for step in program.forward_steps]
    if program.backward_steps or any(g is not None for g in program.head_grads):
        heads = [g for g in program.head_grads if g is not None]
        events.append(Event("head gradients copied in", None, [], heads))
    for step in program.backward_steps:
        if step.phase == "recompute":
            events.append(Event(step.label, step, list(step.inputs), list(step.outputs) + list(step.temps.values())))
            continue
        reads = [v for v in step.inputs + step.outputs + step.out_grads if v is not None] + list(step.saved.values())
        added, writes = step.gradient_accesses()
        reads += added
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
    sources = {"out_grad": step.out_grads, "output": step.outputs, "input": step.inputs, "saved": step.saved}
    for k, (kind, index) in step.op.backward_inplace(step.params, step.epilogue):
        target, source = step.in_grads[k], sources[kind].get(index) if kind == "saved" else sources[kind][index]
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
            if target.permute is not None or source.permute is not None:
                continue  # the operator would read and write one storage in two element orders
            if t.start != position or s.end != position:  # target born here, source dies here
                continue
            if target.dtype != source.dtype or target.nbytes != source.nbytes or t.nbytes != s.nbytes:
                continue
            blocks.merge(s, t)
            taken.update((id(s), id(t)))
            done.append(InPlace(position, target, source))
    return done


# ----------------------------------------------------------------------- offsets


def free_gaps(placed: list[tuple[Block, int]], block: Block, ceiling: int) -> list[tuple[int, int]]:
    """The free byte ranges [lo, hi) below ``ceiling`` that ``block`` could use: between the
    placed blocks whose lifetimes meet its own, and above them all."""
    gaps, cursor = [], 0
    for offset, size in sorted((o, b.size) for b, o in placed if b.meets(block) and b.size > 0):
        if offset > cursor:
            gaps.append((cursor, offset))
        cursor = max(cursor, offset + size)
    gaps.append((cursor, ceiling))  # empty (or negative) when the placed blocks reach the ceiling
    return gaps


def _place_in_order(blocks: list[Block]) -> dict[int, int]:
    """Each block, in the given order, into the tightest gap among the placed blocks it
    meets, or above them all."""
    placed: list[tuple[Block, int]] = []
    offsets: dict[int, int] = {}
    for block in blocks:
        *between, (top, _) = free_gaps(placed, block, 0)
        fitting = [(hi - lo, lo) for lo, hi in between if hi - lo >= block.size]
        offsets[id(block)] = min(fitting)[1] if fitting else top
        placed.append((block, offsets[id(block)]))
    return offsets


def greedy_by_size(blocks: list[Block]) -> dict[int, int]:
    """Largest block first (Pisarchyk and Lee 2020, "greedy by size")."""
    return _place_in_order(sorted(blocks, key=lambda b: (-b.size, b.start, b.end)))


def greedy_by_breadth(blocks: list[Block]) -> dict[int, int]:
    """The blocks of the most crowded position first, largest first, then those of the next
    most crowded position, and so on (Pisarchyk and Lee 2020, "greedy by breadth"): the
    peak position is packed without holes and the rest fits around it."""
    return _place_in_order(greedy_by_breadth_order(blocks))


def greedy_by_breadth_order(blocks: list[Block]) -> list[Block]:
    live: dict[int, list[Block]] = {}
    for block in blocks:
        for position in range(block.start, block.end + 1):
            live.setdefault(position, []).append(block)
    order, seen = [], set()
    for position in sorted(live, key=lambda p: (-sum(b.size for b in live[p]), p)):
        for block in sorted(live[position], key=lambda b: (-b.size, b.start, b.end)):
            if id(block) not in seen:
                seen.add(id(block))
                order.append(block)
    return order


def _place_under(blocks: list[Block], ceiling: int) -> dict[int, int] | None:
    """Each block, in the given order, into the tightest gap below ``ceiling`` among the
    placed blocks it meets; None when one does not fit. A gap that reaches the ceiling
    from above a placed block is filled from the top, any other from the bottom, so that
    blocks alternate between the two ends of the arena (a chain of pairwise-overlapping
    values then fits in the largest pair of neighbours, which filling from the bottom
    alone cannot do)."""
    placed: list[tuple[Block, int]] = []
    offsets: dict[int, int] = {}
    for block in blocks:
        fitting = [(hi - lo, lo, hi) for lo, hi in free_gaps(placed, block, ceiling) if hi - lo >= block.size]
        if not fitting:
            return None
        _, lo, hi = min(fitting)
        offsets[id(block)] = hi - block.size if hi == ceiling and lo > 0 else lo
        placed.append((block, offsets[id(block)]))
    return offsets


def bounded_search(blocks: list[Block], low: int, high: int) -> dict[int, int] | None:
    """The smallest ceiling in [low, high) (a binary search in alignment steps) under which
    ``_place_under`` fits every block, trying the blocks in order of birth, of size and of
    breadth; None if none fits below ``high``."""
    orders = [sorted(blocks, key=lambda b: (b.start, -b.size, b.end)),
              sorted(blocks, key=lambda b: (-b.size, b.start, b.end))]
    breadth = greedy_by_breadth_order(blocks)
    orders.append(breadth)

    def attempt(ceiling):
        for order in orders:
            offsets = _place_under(order, ceiling)
            if offsets is not None:
                return offsets
        return None

    best = None
    lo, hi = low // ALIGN_BYTES, (high - 1) // ALIGN_BYTES
    while lo <= hi:
        mid = (lo + hi) // 2
        offsets = attempt(mid * ALIGN_BYTES)
        if offsets is None:
            lo = mid + 1
        else:
            best, hi = offsets, mid - 1
    return best


def search_budget(blocks: list[Block]) -> int:
    return max(SEARCH_BUDGET, SEARCH_WORK // max(len(blocks), 1))


def exact_search(blocks: list[Block], ceiling: int, budget: int | None = None) -> dict[int, int] | None:
    """A placement of every block below ``ceiling``, found by depth-first search, or None
    (none exists, or none was found within ``budget`` placements: ``search_budget``'s by
    default).

    Some optimal placement is reached by placing the blocks in the order of their optimal
    offsets, each at the lowest offset where it fits (drop every block of an optimal
    placement as low as it goes: nothing gets higher); so the search tries orders, placing
    at the lowest fit, and abandons an order as soon as a block ends above the ceiling.
    Identical blocks (same size and lifetime) are tried once per choice. Long-lived blocks
    are tried first: they form the stack at the bottom of a training schedule, and in
    practice this finds a placement in a few hundred steps where one exists."""
    steps = [0]
    budget = search_budget(blocks) if budget is None else budget

    def lowest_fit(placed, block):
        return next(lo for lo, hi in free_gaps(placed, block, UNBOUNDED) if hi - lo >= block.size)

    def search(placed, remaining):
        if not remaining:
            return {id(b): o for b, o in placed}
        tried = set()
        for i, block in enumerate(remaining):
            key = (block.size, block.start, block.end)
            if key in tried:
                continue
            tried.add(key)
            steps[0] += 1
            if steps[0] > budget:
                return None
            offset = lowest_fit(placed, block)
            if offset + block.size <= ceiling:
                found = search(placed + [(block, offset)], remaining[:i] + remaining[i + 1:])
                if found is not None:
                    return found
        return None

    return search([], sorted(blocks, key=lambda b: (b.start - b.end, -b.size, b.start)))


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
    """(largest total of bytes live at one position, the first position where it is live):
    the memory report names that step as the peak."""
    live: dict[int, int] = {}
    for block in blocks:
        for position in range(block.start, block.end + 1):
            live[position] = live.get(position, 0) + (block.size if aligned_sizes else block.nbytes)
    if not live:
        return 0, 0
    position = max(live, key=lambda p: (live[p], -p))
    return live[position], position


# -------------------------------------------------------------------------- plan


def schedule_lower_bound(program: Program) -> tuple[int, int]:
    """The lower bound of ``program``'s schedule with the in-place pairs taken (bytes summed
    over dtype arenas; raw and with blocks aligned): what ``plan_memory`` reports, without
    placing anything."""
    events = schedule(program)
    merged = _Blocks(program, events)
    _apply_inplace(merged, events)
    blocks = merged.blocks()
    arenas = [[b for b in blocks if b.dtype == dtype] for dtype in {b.dtype for b in blocks}]
    return (sum(lower_bound(mine)[0] for mine in arenas),
            sum(aligned(lower_bound(mine, aligned_sizes=True)[0]) for mine in arenas))


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
        layouts = {"greedy": greedy_by_size, "breadth": greedy_by_breadth, "mxnet": mxnet_storage}
        if memory_plan != "auto":
            layouts = {memory_plan: layouts[memory_plan]}
    offsets, region, chosen = {}, {}, {}
    for dtype in {b.dtype for b in blocks}:
        mine = [b for b in blocks if b.dtype == dtype]
        candidates = [(aligned(_extent(mine, found)), name, found)
                      for name, found in ((name, layout(mine)) for name, layout in layouts.items())]
        extent, name, found = min(candidates, key=lambda c: c[0])
        floor = aligned(lower_bound(mine, aligned_sizes=True)[0])
        if memory_plan == "auto" and extent > floor:
            exact = exact_search(mine, floor) if len(mine) <= SEARCH_MAX_BLOCKS else None
            if exact is not None:
                extent, name, found = aligned(_extent(mine, exact)), "search", exact
            else:
                bounded = bounded_search(mine, floor, extent)
                if bounded is not None:
                    extent, name, found = aligned(_extent(mine, bounded)), "bounded", bounded
        offsets.update(found)
        region[dtype] = extent
        chosen[dtype] = name
    algorithm = chosen[max(region, key=region.get)] if region else "none"
    for block in blocks:
        block.offset = offsets[id(block)]
    spans = {key: (b.start, b.end) for key, b in unmerged.block_of.items()}
    return MemoryPlan(events, blocks, block_of, region, bound, bound_aligned, peak_position, algorithm, inplace,
                      backward_position=len(program.forward_steps), spans=spans, schedule_bound_bytes=bound,
                      schedule_bound_aligned_bytes=bound_aligned)


def naive_bytes(program: Program) -> int:
    """MXNet's baseline: every internal value of the unfused graph in a buffer of its own
    (views excepted: they never have one). The unfused graph has, for each fused step, the
    output the activation replaced and, where a gradient flows back through the step, that
    output's gradient too, and no grad epilogue scratch; a gradient that a training forward
    made (``backward_inplace`` from a saved value) is MXNet's backward's, counted once;
    counted here from the fused program, before mirror adds to it. A transpose the program
    made a view (``Value.permute``) is a copy there: its array and gradient are counted; so
    is a slice the program made a window (``Value.window``)."""
    total = sum(v.nbytes for v in program.values if v.alias_of is None and is_planned(v))
    total += sum(v.nbytes for v in program.values
                 if (v.permute is not None or v.window is not None) and v.kind in PLANNED_KINDS)
    with_backward = {s.name for s in program.backward_steps if s.phase == "backward"}
    # the unfused graph has no grad epilogue, nor its scratch
    total -= sum(s.temps[name].nbytes for s in program.backward_steps for name in s.epilogue_temps)
    total -= sum(s.saved[index].nbytes for s in program.backward_steps if s.phase == "backward"
                 for _, (kind, index) in s.op.backward_inplace(s.params, s.epilogue)
                 if kind == "saved" and index in s.saved)
    for step in program.forward_steps:
        if step.fused_away is not None:
            # its gradient is counted above where the activation's backward writes one
            gradient = step.name in with_backward and step.fused_away_grad is None
            total += step.fused_away.nbytes * (2 if gradient else 1)
    return total
