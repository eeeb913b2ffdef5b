"""What every kernel file shares: the launch record, argument checks and jit helpers."""

from __future__ import annotations

import inspect
import math
import os
import threading
from typing import Iterable, Sequence

import numpy as np
import torch
import triton
import triton.language as tl

from . import _interpreter, memcheck
from ._mode import INTERPRET
from .prebind import autotuned_constants, prebind

if INTERPRET:
    _interpreter.install()

FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
INDEX_DTYPES = (torch.int32, torch.int64)
# The largest whole number each float dtype holds exactly, and every one below it: indices,
# class ids and markers kept in a float array must stay at or below it.
EXACT_INTEGERS = {torch.float16: 2 ** 11, torch.bfloat16: 2 ** 8, torch.float32: 2 ** 24, torch.float64: 2 ** 53}

# TRITONSYM_AUTOTUNE=0: autotuned kernels run their first (untuned) config, for a fast bind
# and one run of each kernel under compute-sanitizer.
AUTOTUNE = os.environ.get("TRITONSYM_AUTOTUNE", "1") != "0"


def _not_raced(kernel_call, quantiles) -> list[float]:
    """The autotuner's timing where nothing is raced: no run, equal times, so it keeps the
    first config its pruning left (the untuned one). Triton 3.8+ skips timing a single
    config by itself; 3.6 and 3.7 would run it through do_bench, which the interpreter
    cannot do (no driver) and which under compute-sanitizer means hundreds of runs."""
    return [0.0] * len(quantiles)


def _autotune_options() -> dict:
    """``triton.autotune`` arguments for every autotuned kernel. Where it races configs,
    results are kept in Triton's cache directory where this Triton can (3.3 and later), so
    a second bind of the same shapes skips the benchmarking."""
    accepted = inspect.signature(triton.autotune).parameters
    if INTERPRET or not AUTOTUNE:
        return {"do_bench": _not_raced} if "do_bench" in accepted else {}
    return {"cache_results": True} if "cache_results" in accepted else {}


AUTOTUNE_OPTIONS = _autotune_options()


_INTERPRETER = threading.RLock()  # one interpreted launch at a time, process-wide


class KernelArgumentError(ValueError):
    """A launcher was given arguments it cannot run on; the message names them."""


class Launch:
    """One kernel launch with everything resolved: kernel, grid and arguments.

    The executor builds these once at bind and calls them with no arguments. The first
    call dispatches through Triton's JIT (compiling and autotuning); on a GPU later calls
    go straight to the compiled kernel's launcher with the arguments bound once
    (``prebind.py``), so a step costs one launcher call per kernel and nothing else.
    """

    __slots__ = ("kernel", "grid", "args", "kwargs", "_call", "_first", "_spans")

    def __init__(self, kernel, grid, args: Sequence, kwargs: dict):
        self.kernel = kernel
        self.grid = grid
        self.args = _interpreted_scalars(kernel, args) if INTERPRET else tuple(args)
        self.kwargs = kwargs
        self._call = None  # from the second call on: the pre-bound launch, or the JIT dispatch
        self._first = None  # what the first call compiled, and with which autotuned constants
        self._spans = None  # under TRITONSYM_MEMCHECK: the memory its tensor arguments may be accessed in

    def __call__(self) -> None:
        if INTERPRET:
            # Triton's interpreter keeps the running grid and its patched language in module
            # globals: two threads interpreting at once corrupt each other's launch.
            with _INTERPRETER:
                self._checked_launch()
        else:
            self._checked_launch()

    def _checked_launch(self) -> None:
        if memcheck.ENABLED:
            if self._spans is None:
                names = list(getattr(self.kernel, "arg_names", ()))[:len(self.args)]
                names += [f"argument {i}" for i in range(len(names), len(self.args))]
                self._spans = memcheck.spans([*names, *self.kwargs], [*self.args, *self.kwargs.values()])
            with memcheck.checking(self.name, self._spans):
                self._launch()
        else:
            self._launch()

    def _launch(self) -> None:
        if self._call is not None:
            self._call()
            return
        if self._first is None:
            # A launch made for one call (a standalone kernel function) never pays for binding.
            compiled = self.kernel[self.grid](*self.args, **self.kwargs)
            self._first = (compiled, autotuned_constants(self.kernel))
            return
        self._call = prebind(self, *self._first) or self.dispatch
        self._first = None
        self._call()

    def dispatch(self) -> None:
        """Launch through Triton's JIT (``kernel[grid](*args)``), as every first call does."""
        self.kernel[self.grid](*self.args, **self.kwargs)

    @property
    def prebound(self) -> bool:
        """Do calls skip the JIT's dispatch now?"""
        return self._call is not None and self._call != self.dispatch

    @property
    def name(self) -> str:
        """The kernel's name (through its autotuner)."""
        return getattr(self.kernel, "__name__", None) or getattr(getattr(self.kernel, "fn", None), "__name__", "kernel")

    def __repr__(self) -> str:
        return f"Launch({self.name}, grid={self.grid})"


def _interpreted_scalars(kernel, args: Sequence) -> tuple:
    """``args`` with each Python float as the type a compiled kernel would receive it in.

    A compiled kernel receives a Python float as float32 unless its parameter is annotated
    ``tl.float64``: a float64 kernel that takes ``eps`` unannotated computes with
    ``float32(eps)`` on a GPU, off by ~1e-8 relative, without an error. The interpreter
    would pass the float through at full precision and hide that, so here it gets exactly
    what the GPU gets: a float32 tensor, or a float64 one where the parameter says so (an
    interpreter tensor is passed through untouched; a converted Python float would be
    rounded to float32 by ``tl.cast``).
    """
    from triton.runtime.interpreter import TensorHandle

    if not any(isinstance(arg, float) for arg in args):
        return tuple(args)
    fn = kernel
    while hasattr(fn, "fn"):  # through autotuners and heuristics to the Python function
        fn = fn.fn
    annotations = [str(p.annotation) for p in inspect.signature(fn).parameters.values()]
    scalars = []
    for position, arg in enumerate(args):
        if isinstance(arg, float):
            wide = position < len(annotations) and any(t in annotations[position] for t in ("float64", "fp64"))
            dtype, ty = (np.float64, tl.float64) if wide else (np.float32, tl.float32)
            arg = tl.tensor(TensorHandle(np.array([arg], dtype=dtype), ty), ty)
        scalars.append(arg)
    return tuple(scalars)


def persistent_programs(device: torch.device) -> int:
    """Programs of a persistent launch: one per SM (three in the interpreter, so that its
    tests give each program several pieces of work)."""
    if device.type == "cuda" and not INTERPRET:
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 3


def run(launches: Sequence[Launch]) -> None:
    for launch in launches:
        launch()


# ----------------------------------------------------------------------------- checks


def check_tensor(fn: str, name: str, t, dtypes: Sequence[torch.dtype] = FLOAT_DTYPES) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise KernelArgumentError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        got = str(t.dtype).replace("torch.", "")
        raise KernelArgumentError(f"{fn}: {name} has dtype {got}; expected one of {names}")
    return t


def check_same(fn: str, what: str, **tensors: torch.Tensor | None) -> None:
    """All given tensors agree on ``what`` ('shape', 'dtype' or 'device')."""
    present = {k: v for k, v in tensors.items() if v is not None}
    values = {k: tuple(v.shape) if what == "shape" else getattr(v, what) for k, v in present.items()}
    if len(set(values.values())) > 1:
        detail = ", ".join(f"{k} {what} {v}" for k, v in values.items())
        raise KernelArgumentError(f"{fn}: arguments must have the same {what}: {detail}")


def check_loss_scale(fn: str, loss_scale: torch.Tensor | None, device: torch.device) -> None:
    """A loss operator's dynamic loss scale: one float32 on the data's device (or None)."""
    if loss_scale is None:
        return
    check_tensor(fn, "loss_scale", loss_scale, (torch.float32,))
    if loss_scale.numel() != 1 or loss_scale.device != device:
        raise KernelArgumentError(f"{fn}: loss_scale must be one float32 on {device}, got {loss_scale.numel()} "
                                  f"element(s) on {loss_scale.device}")


def check_contiguous_like(fn: str, like: torch.Tensor, **tensors: torch.Tensor | None) -> None:
    """Each given tensor is a float tensor, contiguous, of ``like``'s shape (what kernels that
    index one flat layout for all of them need)."""
    for name, t in tensors.items():
        if t is not None:
            check_tensor(fn, name, t)
            if tuple(t.shape) != tuple(like.shape) or not t.is_contiguous():
                raise KernelArgumentError(f"{fn}: {name} must be contiguous of shape {tuple(like.shape)}")


def check_writable(fn: str, name: str, out: torch.Tensor) -> None:
    """An output written by many programs must not have two elements at one address."""
    for size, stride in zip(out.shape, out.stride()):
        if size > 1 and stride == 0:
            raise KernelArgumentError(
                f"{fn}: {name} has a zero stride (shape {tuple(out.shape)}, strides {out.stride()}); "
                "an expanded tensor cannot be written"
            )


def check_image_pair(fn: str, x: torch.Tensor, y: torch.Tensor, names: tuple[str, str]) -> None:
    """Two contiguous (batch, channels, height, width) arrays with a height and a width, of
    one batch, channel count, dtype and device: a resampling's input and output."""
    for name, t in zip(names, (x, y)):
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if t.dim() != 4 or not t.is_contiguous() or min(t.shape[2:]) < 1:
            raise KernelArgumentError(f"{fn}: {name} must be contiguous (batch, channels, height, width) with a "
                                      f"height and width, got shape {tuple(t.shape)} strides {t.stride()}")
    if x.dtype != y.dtype or x.device != y.device or x.shape[:2] != y.shape[:2]:
        raise KernelArgumentError(f"{fn}: {names[0]} {tuple(x.shape)} ({x.dtype} on {x.device}) and {names[1]} "
                                  f"{tuple(y.shape)} ({y.dtype} on {y.device}) must share the batch, the channels, "
                                  "a dtype and a device")


def overlap(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Do the bytes two views can address overlap (an output planned over its input)?"""
    (a_low, a_high), (b_low, b_high) = memcheck.byte_span(a), memcheck.byte_span(b)
    return a_low < b_high and b_low < a_high


def prepare_out(fn: str, name: str, out: torch.Tensor | None, shape, dtype, device) -> torch.Tensor:
    """Check a given output buffer, or allocate one when the launcher runs standalone."""
    shape = tuple(shape)
    if out is None:
        return torch.empty(shape, dtype=dtype, device=device)
    check_tensor(fn, name, out, FLOAT_DTYPES + INDEX_DTYPES)
    if tuple(out.shape) != shape:
        raise KernelArgumentError(f"{fn}: {name} has shape {tuple(out.shape)} but the result has shape {shape}")
    if out.dtype != dtype:
        raise KernelArgumentError(f"{fn}: {name} has dtype {out.dtype} but the result has dtype {dtype}")
    if out.device != device:
        raise KernelArgumentError(f"{fn}: {name} is on {out.device} but the inputs are on {device}")
    check_writable(fn, name, out)
    return out


def as_2d(fn: str, name: str, t: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """View ``t`` as (rows, cols) without copying, or say why that is impossible."""
    try:
        return t.view(rows, cols)
    except RuntimeError:
        raise KernelArgumentError(
            f"{fn}: {name} with shape {tuple(t.shape)} and strides {t.stride()} cannot be viewed as "
            f"({rows}, {cols}) without a copy; pass a contiguous tensor"
        ) from None


# ------------------------------------------------------------------- strided elementwise

MAX_DIMS = 4


def collapse_dims(shape: Sequence[int], *strides: Sequence[int]) -> tuple[list[int], list[list[int]]]:
    """Merge neighbouring dimensions that are contiguous in every tensor, drop size-1 ones.

    Elementwise kernels index up to ``MAX_DIMS`` dimensions; after this almost every
    real layout (contiguous, transposed, sliced, expanded) needs one or two.
    """
    dims = [(n, [s[i] for s in strides]) for i, n in enumerate(shape) if n != 1]
    merged: list[tuple[int, list[int]]] = []
    for n, st in dims:
        if merged:
            pn, pst = merged[-1]
            if all(ps == s * n for ps, s in zip(pst, st)):
                merged[-1] = (pn * n, st)
                continue
        merged.append((n, st))
    if not merged:
        merged = [(1, [1] * len(strides))]
    sizes = [n for n, _ in merged]
    per_tensor = [[st[k] for _, st in merged] for k in range(len(strides))]
    return sizes, per_tensor


def strided_layout(fn: str, shape: Sequence[int], tensors: dict[str, torch.Tensor]) -> tuple[list[int], dict]:
    """Sizes padded to 4 dims and each tensor's 4 strides, for the ``element_offsets`` helper."""
    names = list(tensors)
    sizes, per_tensor = collapse_dims(shape, *[tensors[k].stride() for k in names])
    if len(sizes) > MAX_DIMS:
        detail = ", ".join(f"{k} strides {tensors[k].stride()}" for k in names)
        raise KernelArgumentError(
            f"{fn}: shape {tuple(shape)} has more than {MAX_DIMS} dimensions that cannot be merged ({detail}); "
            "pass contiguous tensors"
        )
    pad = MAX_DIMS - len(sizes)
    sizes = [1] * pad + sizes
    strides = {k: [0] * pad + st for k, st in zip(names, per_tensor)}
    return sizes, strides


def along_axis(shape: Sequence[int], axis: int) -> tuple[int, int, int]:
    """(length along ``axis``, inner, how many of them) of a contiguous tensor of ``shape``
    seen as (outer, length, inner): ``inner`` elements apart along the axis, ``outer * inner``
    of them (BatchNorm's channels, LayerNorm's rows)."""
    axis = axis % len(shape)
    length, inner = shape[axis], math.prod(shape[axis + 1:])
    return length, inner, math.prod(shape) // length if length else 0


def is_flat(sizes: Sequence[int], *stride_lists: Sequence[int]) -> bool:
    """True when every tensor is one contiguous run, so the kernel can skip index math."""
    return all(n == 1 for n in sizes[:-1]) and all(st[-1] == 1 for st in stride_lists)


def numel(shape: Sequence[int]) -> int:
    return math.prod(shape)


# The interpreter runs programs one after another in Python: few large programs are far
# faster there. On a GPU, 1024 elements over 4 warps keeps every load 16 bytes wide.
ELEMENTWISE_BLOCK = 1 << 16 if INTERPRET else 1024


def elementwise_args(fn: str, shape: Sequence[int], **tensors: torch.Tensor) -> tuple[list, bool, tuple]:
    """Kernel arguments ``n, sizes`` (the sizes of dimensions 1-3) then one tuple of 4 strides
    per tensor, in order: what ``element_block`` and ``element_offsets`` take.

    Returns the arguments, whether every tensor is one contiguous run (the kernel then
    skips index math), and the grid.
    """
    sizes, strides = strided_layout(fn, shape, tensors)
    n = numel(shape)
    args = [n, tuple(sizes[1:]), *(tuple(strides[name]) for name in tensors)]
    flat = is_flat(sizes, *strides.values())
    return args, flat, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),)


def elementwise_launches(fn: str, shape: Sequence[int], tensors: dict[str, torch.Tensor], make) -> list:
    """``make(tensors, args, flat, grid)`` (a Launch from ``elementwise_args``'s results) for
    tensors of one index ``shape``; where more than ``MAX_DIMS`` of their dimensions cannot
    merge (a 5-d transpose, a broadcast over 5 axes), one launch per index of the smallest
    dimension, each on the tensors' slices there, until the rest merge. A kernel whose
    numbers depend on an element's place (Dropout's draws) reads it from a tensor's
    ``storage_offset()`` and strides, as each part keeps them."""
    for name, t in tensors.items():  # each is sliced along the index axes: a broadcast must be expanded first
        if tuple(t.shape) != tuple(shape):
            raise KernelArgumentError(f"{fn}: {name} has shape {tuple(t.shape)} where {tuple(shape)} is indexed")
    sizes, _ = collapse_dims(shape, *[t.stride() for t in tensors.values()])
    if len(sizes) <= MAX_DIMS:
        args, flat, grid = elementwise_args(fn, shape, **tensors)
        return [make(tensors, args, flat, grid)]
    axis = min((k for k, n in enumerate(shape) if n != 1), key=lambda k: shape[k])
    rest = tuple(shape[:axis]) + tuple(shape[axis + 1:])
    return [launch for i in range(shape[axis])
            for launch in elementwise_launches(fn, rest, {k: t.select(axis, i) for k, t in tensors.items()}, make)]


# ------------------------------------------------------------------------- jit helpers


@triton.jit
def keep_nan(v, d):
    """``d``, or NaN where ``v`` is NaN. A value chosen by a comparison (``tl.where(x > 0,
    ...)``) would turn a NaN into a plausible 0 or 1; NaN in must give NaN out."""
    return tl.where(v != v, v, d)


@triton.jit
def expm1(z):
    """exp(z) - 1 without cancellation near 0 (Kahan's trick)."""
    u = tl.exp(z)
    um1 = u - 1.0
    log_u = tl.log(tl.where(u == 1.0, 2.0, u))
    r = um1 * z / log_u
    r = tl.where(u == 1.0, z, r)
    r = tl.where(um1 == -1.0, -1.0, r)
    return tl.where(u == float("inf"), u, r)


@triton.jit
def log1p(t):
    """log(1 + t) without cancellation near 0 (Goldberg's trick)."""
    u = 1.0 + t
    r = tl.log(u) * (t / tl.where(u == 1.0, 1.0, u - 1.0))
    r = tl.where(u == 1.0, t, r)
    return tl.where(u == float("inf"), u, r)


@triton.jit
def round_to_bf16(x):
    """fp32 -> bf16, rounding to nearest even on the bits.

    The interpreter's own conversion truncates; doing it here makes the interpreter and
    the GPU store the same bits.
    """
    bits = x.to(tl.uint32, bitcast=True)
    lsb = (bits >> 16) & 1
    rounded = ((bits + 0x7FFF + lsb) & 0xFFFF0000).to(tl.float32, bitcast=True)
    return tl.where(x != x, x, rounded).to(tl.bfloat16)


@triton.jit
def load_nonfinite_count(X, offsets, mask):
    """How many of the masked elements of X are NaN or +-inf (an int32 scalar)."""
    x = load_wide(X, offsets, mask, 0.0)  # half-precision compares need an upcast
    bad = (x - x) != 0.0  # inf - inf and NaN - NaN are NaN; any finite x gives 0
    return tl.sum(bad.to(tl.int32), axis=0)


@triton.jit
def cast_for(ptr, value):
    """A float32/float64 value in ``ptr``'s element type, rounded to nearest even."""
    if ptr.dtype.element_ty == tl.bfloat16:
        return round_to_bf16(value.to(tl.float32))
    else:
        return value.to(ptr.dtype.element_ty)


@triton.jit
def store(ptr, offsets, value, mask):
    """Store a float32/float64 value into ``ptr``'s dtype with round-to-nearest-even."""
    tl.store(ptr + offsets, cast_for(ptr, value), mask=mask)


@triton.jit
def store_result(ptr, offsets, value, mask, ACCUMULATE: tl.constexpr):
    """Write (``ACCUMULATE=False``) or add to (``True``) what ``ptr`` holds: grad_req write/add."""
    if ACCUMULATE:
        value = value + tl.load(ptr + offsets, mask=mask, other=0.0).to(value.dtype)
    store(ptr, offsets, value, mask)


def row_alignment(*values: int) -> int:
    """The largest power of two, up to 16, that divides every value (row lengths and
    strides, in elements): the ``ALIGN`` a kernel passes to ``aligned``."""
    align = 16
    while align > 1 and any(v % align for v in values):
        align //= 2
    return align


def contiguous_alignment(steps: Iterable[int], *values: int) -> int:
    """``row_alignment(*values)`` for a launch that copies rows whose element strides are
    ``steps``; 1 unless every one is 1: rows that are not contiguous are not copied 16 bytes
    at a time whatever their alignment, and one variant then serves them all."""
    return row_alignment(*values) if all(step == 1 for step in steps) else 1


@triton.jit
def aligned(value, ALIGN: tl.constexpr):
    """``value``, a multiple of ALIGN (``row_alignment`` said so), in a form from which the
    compiler knows it. Triton specialises an integer argument's divisibility by 16 only: a
    row of 1000 float32 columns (or 1000 bfloat16 ones) would otherwise be read and written
    one element at a time instead of 16 bytes at a time. The value is really computed (not
    assumed), so a wrong ALIGN gives wrong numbers the interpreter's tests see. At 16 the
    compiler already knows (the argument was specialised): nothing is added."""
    if ALIGN > 1 and ALIGN < 16:
        return (value // ALIGN) * ALIGN
    else:
        return value


@triton.jit
def aligned_strides(strides, ALIGN: tl.constexpr):
    """(outer, axis, inner) strides with the outer and inner ones ``aligned``."""
    return aligned(strides[0], ALIGN), strides[1], aligned(strides[2], ALIGN)


@triton.jit
def element_block(n, BLOCK: tl.constexpr):
    """This program's BLOCK flat (row-major) element numbers, in int64 so that offsets past
    2**31 do not wrap, and the mask of those below ``n``."""
    index = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    return index, index < n


@triton.jit
def element_offsets(index, FLAT: tl.constexpr, sizes, strides):
    """Memory offsets of the flat elements ``index`` of one operand: ``index`` itself when
    every operand is one contiguous run (FLAT; the index math is compiled out), else through
    its 4 ``strides`` and the ``sizes`` of dimensions 1-3 (``elementwise_args`` makes both)."""
    if FLAT:
        return index
    else:
        i0, i1, i2, i3 = unravel(index, sizes[0], sizes[1], sizes[2])
        return i0 * strides[0] + i1 * strides[1] + i2 * strides[2] + i3 * strides[3]


@triton.jit
def unravel(index, n1, n2, n3):
    """The coordinates (i0, i1, i2, i3) of the flat (row-major) elements ``index`` of a
    4-d array whose last three dimensions have sizes n1, n2, n3."""
    i3 = index % n3
    rest = index // n3
    i2 = rest % n2
    rest = rest // n2
    return rest // n1, rest % n1, i2, i3


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The torch dtype kernels compute in for ``dtype`` data (``widen``'s): float64 for
    float64, float32 for the rest; scratch that keeps intermediate results takes it."""
    return torch.float64 if dtype == torch.float64 else torch.float32


@triton.jit
def widen(x, LIKE):
    """``x`` in the type kernels compute in for ``LIKE``'s elements: float64 for float64,
    float32 for the rest (half precision computes in float32 and rounds once, at the store)."""
    return x.to(tl.float64 if LIKE.dtype.element_ty == tl.float64 else tl.float32)


@triton.jit
def load_wide(ptr, offsets, mask, other):
    """The masked elements of ``ptr`` in its compute type (``widen``); ``other`` elsewhere."""
    return widen(tl.load(ptr + offsets, mask=mask, other=other), ptr)
