"""Out-of-bounds checks for interpreted kernels: every byte a launch loads or stores must
lie inside one of the tensors it was given.

compute-sanitizer's memcheck needs a GPU and checks *allocations*. Every buffer of a
bound network is a view into one workspace arena, so a kernel that runs off the end of
its output into the neighbouring buffer stays inside the allocation and passes there.
This check runs wherever kernels run in Triton's interpreter (CI, any CPU) and is
tighter: a launch may touch only the span of each tensor argument's view, from its lowest
to its highest addressable byte (a TMA descriptor: its base tensor's). Masked-off lanes
are not accesses and are not checked.

Switched on for a process by ``TRITONSYM_MEMCHECK=1`` in the interpreter (the test suite
sets it), or for a block by ``with enabled():`` (``tritonsym.test_utils.memcheck()``), it
wraps the interpreter's memory primitives (``load``, ``store`` and the atomics, the same
names from Triton 3.6 to 3.9). Only :class:`~._common.Launch` calls are checked; a kernel
launched directly, not through a ``Launch``, runs unchecked; a custom operator's launches
(``tritonsym.operator.Launch``) are checked like the built-in ones. The first bad access
raises :class:`MemoryAccessError`, naming the kernel, the access, the argument it came
nearest to and by how many bytes it missed.

At the end of each launch it also checks for races between its programs, which the
interpreter (running programs one after another) would otherwise hide: two programs
storing to one element, or one loading an element another stores. Atomics are exempt.
Programs race only within one run of the kernel: where a launch runs its kernel several
times (an autotuner racing its configs, each with its own grid), each run is checked apart.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import numpy as np
import torch

from ._mode import INTERPRET

ENABLED = INTERPRET and os.environ.get("TRITONSYM_MEMCHECK", "0") == "1"


class MemoryAccessError(RuntimeError):
    """An interpreted kernel touched memory outside every tensor of its launch."""


def byte_span(tensor: torch.Tensor) -> tuple[int, int]:
    """The bytes [low, high) that a view can address (empty for no elements)."""
    low = high = tensor.data_ptr()
    if tensor.numel():
        size = tensor.element_size()
        low += sum(min(0, (n - 1) * s) for n, s in zip(tensor.shape, tensor.stride())) * size
        high += sum(max(0, (n - 1) * s) for n, s in zip(tensor.shape, tensor.stride())) * size + size
    return low, high


class Span:
    """The bytes a tensor argument's view can address: [low, high)."""

    __slots__ = ("name", "low", "high", "described")

    def __init__(self, name: str, tensor: torch.Tensor):
        self.name = name
        self.low, self.high = byte_span(tensor)
        self.described = (f"{name} (shape {tuple(tensor.shape)}, strides {tuple(tensor.stride())}, "
                          f"{str(tensor.dtype).removeprefix('torch.')})")

    def miss(self, address: int, size: int) -> int:
        """Bytes by which [address, address + size) misses this span (0: inside)."""
        return max(self.low - address, address + size - self.high, 0)


def spans(names, values) -> list[Span]:
    """The spans of a launch's tensor arguments (and TMA descriptors' base tensors)."""
    found = []
    for name, value in zip(names, values):
        tensor = getattr(value, "base", value)  # a host TensorDescriptor: the tensor it reads
        if isinstance(tensor, torch.Tensor):
            found.append(Span(name, tensor))
    return found


class _Checked:
    """The launch being checked on this thread: its spans merged into disjoint ranges."""

    def __init__(self, kernel: str, launch_spans: list[Span]):
        self.kernel = kernel
        self.spans = launch_spans
        self.error: MemoryAccessError | None = None
        merged: list[list[int]] = []
        for low, high in sorted((s.low, s.high) for s in launch_spans if s.high > s.low):
            if merged and low <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        self.lows = np.array([m[0] for m in merged], dtype=np.uint64)
        self.highs = np.array([m[1] for m in merged], dtype=np.uint64)
        # Plain (not atomic) accesses by run and program, for the race check at the end of the launch.
        self.accessed: dict[str, list[tuple[np.ndarray, int, int]]] = {"load": [], "store": []}
        self.runs = 0  # runs of the kernel so far (the interpreter's grid executor counts them)

    def check(self, what: str, pointers: np.ndarray, mask: np.ndarray | None, size: int) -> None:
        addresses = pointers.astype(np.uint64, copy=False).ravel()
        if mask is not None:
            addresses = addresses[np.broadcast_to(mask, pointers.shape).ravel()]
        if addresses.size == 0:
            return
        if what in self.accessed:
            self.accessed[what].append((addresses, self.runs, _program()))
        index = np.searchsorted(self.lows, addresses, side="right").astype(np.int64) - 1
        inside = index >= 0
        inside[inside] = addresses[inside] + np.uint64(size) <= self.highs[index[inside]]
        if inside.all():
            return
        bad = addresses[~inside]
        address = int(bad[0])
        nearest = min(self.spans, key=lambda s: s.miss(address, size), default=None)
        where = "no tensor argument at all" if nearest is None else (
            f"{nearest.miss(address, size)} bytes "
            f"{'before the start' if address < nearest.low else 'past the end'} of {nearest.described}")
        self.error = MemoryAccessError(
            f"memcheck: {self.kernel} {what} of {size} bytes at {address:#x} is outside every tensor of the launch: "
            f"{where}; {bad.size} of {addresses.size} active lanes out of bounds")
        raise self.error

    def check_races(self) -> None:
        """No two programs of the launch may store to one element, and no program may load
        an element another one stores: on a GPU their order is undefined (atomics aside).
        The interpreter runs programs one after another, so without this check such a
        kernel would pass every CPU test. Accesses are compared by their first byte."""
        for run in sorted({r for accesses in self.accessed.values() for _, r, _ in accesses}):
            self._check_run(run)

    def _check_run(self, run: int) -> None:
        stores, loads = (self._by_program(kind, run) for kind in ("store", "load"))
        if stores is None:
            return
        address, program = stores
        order = np.lexsort((program, address))
        address, program = address[order], program[order]
        clash = np.flatnonzero((address[1:] == address[:-1]) & (program[1:] != program[:-1]))
        if clash.size:
            i = clash[0]
            self._race(f"programs {_grid_index(program[i])} and {_grid_index(program[i + 1])} both store to",
                       int(address[i]), int(np.unique(address[clash]).size))
        if loads is None:
            return
        written, first = np.unique(address, return_index=True)  # one program per element now
        writer = program[first]
        read, reader = loads
        index = np.minimum(np.searchsorted(written, read), written.size - 1)
        clash = np.flatnonzero((written[index] == read) & (writer[index] != reader))
        if clash.size:
            i = clash[0]
            self._race(f"program {_grid_index(reader[i])} loads what program {_grid_index(writer[index[i]])} "
                       "stores, at", int(read[i]), int(np.unique(read[clash]).size))

    def _by_program(self, kind: str, run: int) -> tuple[np.ndarray, np.ndarray] | None:
        found = [(a, p) for a, r, p in self.accessed[kind] if r == run]
        if not found:
            return None
        address = np.concatenate([a for a, _ in found])
        program = np.concatenate([np.full(a.size, p, dtype=np.int64) for a, p in found])
        return address, program

    def _race(self, what: str, address: int, elements: int) -> None:
        owner = next((s for s in self.spans if s.low <= address < s.high), None)
        where = f"byte {address - owner.low} of {owner.described}" if owner else f"{address:#x}"
        self.error = MemoryAccessError(f"memcheck: race in {self.kernel}: {what} {where} ({elements} element(s) "
                                       "so); their order is undefined on a GPU")
        raise self.error


def _program() -> int:
    """The interpreter's current program, as one number."""
    from triton.runtime.interpreter import interpreter_builder as grid

    (x, y, z), (gx, gy, _) = grid.grid_idx, grid.grid_dim
    return x + gx * (y + gy * z)


def _grid_index(program: int) -> tuple[int, int, int]:
    from triton.runtime.interpreter import interpreter_builder as grid

    gx, gy, _ = grid.grid_dim
    return int(program % gx), int(program // gx % gy), int(program // (gx * gy))


_current = threading.local()


class _CheckedInterpreter:
    """Triton's interpreter memory primitives, each access checked against the current
    launch first; everything else is the real module's."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    @staticmethod
    def _check(what: str, pointers, mask, size: int) -> None:
        checked = getattr(_current, "launch", None)
        if checked is not None:
            checked.check(what, np.asarray(pointers), None if mask is None else np.asarray(mask, dtype=bool), size)

    def load(self, pointers, mask, other, dtype):
        self._check("load", pointers, mask, np.dtype(dtype).itemsize)
        return self._real.load(pointers, mask, other, dtype)

    def store(self, pointers, value, mask):
        self._check("store", pointers, mask, np.asarray(value).dtype.itemsize)
        return self._real.store(pointers, value, mask)

    def atomic_rmw(self, op, pointers, value, mask, sem):
        self._check("atomic", pointers, mask, np.asarray(value).dtype.itemsize)
        return self._real.atomic_rmw(op, pointers, value, mask, sem)

    def atomic_cas(self, pointers, compare, value, sem):
        self._check("atomic compare-and-swap", pointers, None, np.asarray(value).dtype.itemsize)
        return self._real.atomic_cas(pointers, compare, value, sem)


def install() -> None:
    """Route the interpreter's memory accesses through the checks, and count the runs of a
    kernel within a launch (once per process)."""
    from triton.runtime import interpreter

    if not isinstance(interpreter._interpreter, _CheckedInterpreter):
        interpreter._interpreter = _CheckedInterpreter(interpreter._interpreter)
    executor = interpreter.GridExecutor
    if not getattr(executor.__call__, "_counts_runs", False):
        run_grid = executor.__call__

        def counted(self, *args, **kwargs):
            checked = getattr(_current, "launch", None)
            if checked is not None:
                checked.runs += 1
            return run_grid(self, *args, **kwargs)

        counted._counts_runs = True
        executor.__call__ = counted


@contextmanager
def checking(kernel: str, launch_spans: list[Span]):
    """Check every access made inside this block against ``launch_spans``."""
    install()
    previous = getattr(_current, "launch", None)
    checked = _Checked(kernel, launch_spans)
    _current.launch = checked
    try:
        yield
        checked.check_races()
    except Exception as error:
        if checked.error is None or error is checked.error:
            raise
        # The interpreter re-raises it as an InterpreterError that only repeats its text.
        raise checked.error from error
    finally:
        _current.launch = previous


@contextmanager
def enabled():
    """Check every launch made inside this block, as ``TRITONSYM_MEMCHECK=1`` does for a
    whole process. Only kernels in Triton's interpreter can be checked."""
    global ENABLED
    if not INTERPRET:
        raise RuntimeError("memcheck: kernels are compiled for the GPU here, and only the interpreter's accesses can "
                           "be checked; set TRITONSYM_INTERPRET=1 before importing tritonsym, or run the GPU under "
                           "compute-sanitizer --tool memcheck")
    previous, ENABLED = ENABLED, True
    try:
        yield
    finally:
        ENABLED = previous
