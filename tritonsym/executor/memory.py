"""The static workspace: one allocation per dtype, every array a view into it.

Layout of each dtype's arena, in order: the arguments that take a gradient (in argument
order), their gradients (same order, so parameter i and its gradient sit at the same
offset of two contiguous regions: an optimizer update or an all-reduce is one launch
over a flat slice), the other arguments, then the internal region, where the memory
planner (``planner.py``) has placed every internal value, gradient and scratch buffer,
sharing storage between values whose lifetimes do not meet. Offsets are aligned to 256
bytes.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from ..base import BindError
from .planner import ALIGN_BYTES, MemoryPlan, is_planned
from .planner import aligned as _aligned
from .program import Program, Value


@dataclass
class Region:
    """Where one named group of values lies in a dtype's arena, in bytes."""

    start: int
    end: int


@dataclass
class Workspace:
    arenas: dict[torch.dtype, torch.Tensor]
    offsets: dict[int, int]  # id(value) -> byte offset in its dtype's arena
    regions: dict[tuple[torch.dtype, str], Region]
    plan: MemoryPlan

    @property
    def nbytes(self) -> int:
        return sum(a.numel() * a.element_size() for a in self.arenas.values())

    def region_view(self, dtype: torch.dtype, name: str) -> torch.Tensor:
        """The flat slice of ``dtype``'s arena holding region ``name`` ("params", "param_grads")."""
        region = self.regions[(dtype, name)]
        return self.arenas[dtype][region.start // dtype.itemsize: region.end // dtype.itemsize]


@dataclass(frozen=True)
class ParamRegion:
    """The trainable parameters of one dtype as flat views: ``weights`` and ``grads`` have
    the same layout, and parameter ``name`` is ``weights[start:start + size]``. Gaps left
    by alignment lie between members."""

    dtype: torch.dtype
    weights: torch.Tensor
    grads: torch.Tensor
    members: tuple[tuple[str, int, int], ...]  # (name, start element, size)


def param_regions(program: Program, workspace: Workspace, names=None) -> list[ParamRegion]:
    """One ``ParamRegion`` per dtype of the arguments that take a gradient (of those in
    ``names`` when given: a Module's parameters, not the data inputs whose gradient it was
    asked for, which must be neither updated nor summed across devices). Each region spans
    its first member to its last. Every such argument must live in the workspace
    (``simple_bind``), not in a user array (``bind``)."""
    members: dict[torch.dtype, list[tuple[str, int, int]]] = {}
    for name in program.arg_names:
        value, grad = program.args[name], program.arg_grads.get(name)
        if grad is None or (names is not None and name not in names):
            continue
        if id(value) not in workspace.offsets or id(grad) not in workspace.offsets:
            raise BindError(f"{name!r} or its gradient is an array given to bind(), outside the workspace; the flat "
                            "optimizer update needs every trained parameter in it: use simple_bind (or Module), or "
                            "set grad_req='null' for that argument")
        start = workspace.offsets[id(value)] - workspace.regions[(value.dtype, "params")].start
        # Parameters and gradients are laid out alike; the flat update relies on it.
        assert start == workspace.offsets[id(grad)] - workspace.regions[(value.dtype, "param_grads")].start, name
        members.setdefault(value.dtype, []).append((name, start // value.dtype.itemsize,
                                                    value.nbytes // value.dtype.itemsize))
    regions = []
    for dtype, group in members.items():
        first, end = min(s for _, s, _ in group), max(s + n for _, s, n in group)
        regions.append(ParamRegion(dtype, workspace.region_view(dtype, "params")[first:end],
                                   workspace.region_view(dtype, "param_grads")[first:end],
                                   tuple((name, start - first, size) for name, start, size in group)))
    return regions


def allocate(program: Program, plan: MemoryPlan, provided: dict[int, torch.Tensor],
             device: torch.device) -> Workspace:
    """Give every value of ``program`` a tensor: a provided one (``bind``), a view of
    another value (aliases), or a view into the workspace at its planned offset."""
    groups: list[tuple[str, list[Value]]] = [
        ("params", [program.args[n] for n in program.arg_names if n in program.arg_grads]),
        ("param_grads", [program.arg_grads[n] for n in program.arg_names if n in program.arg_grads]),
        ("inputs", [program.args[n] for n in program.arg_names if n not in program.arg_grads]
         + [program.aux[n] for n in program.aux_names]),
    ]
    cursor: dict[torch.dtype, int] = {}
    offsets: dict[int, int] = {}
    regions: dict[tuple[torch.dtype, str], Region] = {}
    for group, members in groups:
        for value in members:
            if id(value) in provided or value.alias_of is not None:
                continue
            start = _aligned(cursor.get(value.dtype, 0))
            offsets[id(value)] = start
            cursor[value.dtype] = start + value.nbytes
            region = regions.setdefault((value.dtype, group), Region(start, start))
            region.end = start + value.nbytes
    for dtype, nbytes in plan.region_bytes.items():
        start = _aligned(cursor.get(dtype, 0))
        regions[(dtype, "internal")] = Region(start, start + nbytes)
        cursor[dtype] = start + nbytes
    for value in program.values:
        if is_planned(value) and value.alias_of is None:
            offsets[id(value)] = regions[(value.dtype, "internal")].start + plan.block_of[id(value)].offset
    sizes = {dtype: max(_aligned(size), ALIGN_BYTES) for dtype, size in cursor.items()}
    check_fits(sum(sizes.values()), device, {f"{str(d)[6:]} arena": n for d, n in sizes.items()})
    try:
        arenas = {dtype: torch.zeros(n // dtype.itemsize, dtype=dtype, device=device) for dtype, n in sizes.items()}
    except (torch.OutOfMemoryError, RuntimeError, MemoryError) as e:
        raise BindError(f"bind: allocating the workspace ({_mib(sum(sizes.values()))}) on {device} failed: {e}") \
            from None
    for value in program.values:
        if id(value) in provided:
            value.tensor = provided[id(value)]
        elif value.alias_of is None:
            start = offsets[id(value)] // value.dtype.itemsize
            n = value.nbytes // value.dtype.itemsize
            value.tensor = arenas[value.dtype][start:start + n].view(value.shape)
    # Aliases last, each after its source: its root's tensor under its shape, its source's
    # with the axes permuted, or a window of its source's elements.
    for value in sorted((v for v in program.values if v.alias_of is not None), key=_alias_depth):
        if value.permute is not None:
            value.tensor = value.alias_of.tensor.permute(value.permute)
        elif value.window is not None:
            n = math.prod(value.shape)
            value.tensor = value.alias_of.tensor.view(-1)[value.window:value.window + n].view(value.shape)
        else:
            value.tensor = value.alias_of.tensor.view(value.shape)
    return Workspace(arenas, offsets, regions, plan)


def _alias_depth(value: Value) -> int:
    depth = 0
    while value.alias_of is not None:
        if value.permute is None and value.alias_of.permute is not None:
            # A reshape of a permuted view would read it as if contiguous.
            raise BindError(f"bind: {value.name} is a reshaped view (or window) of {value.alias_of.name}, a permuted "
                            f"view")
        value, depth = value.alias_of, depth + 1
    return depth


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.1f} MiB"


def free_bytes(device: torch.device) -> int | None:
    """Memory free for a new allocation on ``device`` (None when it cannot be told)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:  # Linux: what can be allocated without swapping
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(nbytes: int, device: torch.device, parts: dict[str, int]) -> None:
    """Refuse, before allocating, a workspace larger than the device's free memory."""
    free = free_bytes(device)
    if free is not None and nbytes > free:
        detail = ", ".join(f"{name} {_mib(n)}" for name, n in parts.items())
        raise BindError(f"bind: the workspace needs {_mib(nbytes)} ({detail}) but only {_mib(free)} are free on "
                        f"{device}; use a smaller batch or network, mirror=True, or another device")
