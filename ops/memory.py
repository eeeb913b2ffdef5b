"""Fill, copy and accumulate: the data movement the executor needs between operators.

``fill`` zeroes a gradient nobody contributes to (or writes a constant loss gradient,
times a dynamic loss scale read on the device),
``copy`` moves a gradient through a reshape, ``accumulate`` adds into an existing buffer
(``grad_req='add'``). All index up to 4 strided dimensions, like the elementwise kernels.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    KernelArgumentError,
    Launch,
    check_loss_scale,
    check_tensor,
    check_writable,
    element_block,
    element_offsets,
    elementwise_launches,
    load_nonfinite_count,
    run,
    store_result,
    widen,
)


@triton.jit
def _fill_kernel(
    OUT, SCALE, DIVISOR, value: tl.float64, n, sizes, out_strides,
    HAS_SCALE: tl.constexpr, HAS_DIVISOR: tl.constexpr, ACCUMULATE: tl.constexpr, FLAT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Each program sets (or adds ``value`` [* scale] [/ max(1, divisor)] to) BLOCK elements of out."""
    index, mask = element_block(n, BLOCK)
    v = widen(tl.full((BLOCK,), 0.0, tl.float32), OUT) + widen(value, OUT)
    if HAS_DIVISOR:  # a count made on the device (MakeLoss's valid elements); NaN stays NaN
        d = widen(tl.load(DIVISOR), OUT)
        v = v / tl.where(d < 1.0, 1.0, d)
    if HAS_SCALE:
        v = v * widen(tl.load(SCALE), OUT)
    store_result(OUT, element_offsets(index, FLAT, sizes, out_strides), v, mask, ACCUMULATE)


@triton.jit
def _copy_kernel(
    SRC, DST, scale: tl.float64, n, sizes, src_strides, dst_strides,
    ACCUMULATE: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program copies (or adds) BLOCK elements of src, times scale, into dst."""
    index, mask = element_block(n, BLOCK)
    v = tl.load(SRC + element_offsets(index, FLAT, sizes, src_strides), mask=mask, other=0.0)
    # float64 when either side is: a float64 source rounds once, at the store, and an int64
    # index converts exactly into a float64 destination.
    v = v.to(tl.float64) if SRC.dtype.element_ty == tl.float64 else widen(v, DST)
    v = v * widen(scale, DST)  # exact where scale is 1
    store_result(DST, element_offsets(index, FLAT, sizes, dst_strides), v, mask, ACCUMULATE)


def plan_fill(out: torch.Tensor, value: float, accumulate: bool = False,
              loss_scale: torch.Tensor | None = None, divisor: torch.Tensor | None = None) -> list[Launch]:
    fn = "fill"
    check_tensor(fn, "out", out, FLOAT_DTYPES)
    check_writable(fn, "out", out)
    check_loss_scale(fn, loss_scale, out.device)
    if divisor is not None:
        check_tensor(fn, "divisor", divisor, FLOAT_DTYPES)
        if divisor.numel() != 1 or divisor.device != out.device:
            raise KernelArgumentError(f"{fn}: divisor must be one element on {out.device}, got shape "
                                      f"{tuple(divisor.shape)} on {divisor.device}")
    return elementwise_launches(fn, out.shape, dict(out=out), lambda t, args, flat, grid: Launch(
        _fill_kernel, grid, [t["out"], t["out"] if loss_scale is None else loss_scale,
                             t["out"] if divisor is None else divisor, float(value), *args],
        dict(HAS_SCALE=loss_scale is not None, HAS_DIVISOR=divisor is not None, ACCUMULATE=accumulate, FLAT=flat,
             BLOCK=ELEMENTWISE_BLOCK)))


def fill(out: torch.Tensor, value: float, accumulate: bool = False,
         loss_scale: torch.Tensor | None = None, divisor: torch.Tensor | None = None) -> torch.Tensor:
    """``out[...] = value`` (or ``+= value``), times the one-element ``loss_scale`` and
    divided by the one-element ``divisor`` (1 where below 1) when given; any strides, float
    dtypes."""
    run(plan_fill(out, value, accumulate, loss_scale, divisor))
    return out


def plan_copy(src: torch.Tensor, dst: torch.Tensor, accumulate: bool = False, scale: float = 1.0) -> list[Launch]:
    """``dst (+)= scale src`` with dtype conversion (a contiguous src may have another shape)."""
    fn = "accumulate" if accumulate else "copy"
    check_tensor(fn, "src", src, FLOAT_DTYPES + INDEX_DTYPES)
    check_tensor(fn, "dst", dst, FLOAT_DTYPES)
    if src.numel() != dst.numel():
        raise KernelArgumentError(f"{fn}: src has {src.numel()} elements (shape {tuple(src.shape)}) but dst has "
                                  f"{dst.numel()} (shape {tuple(dst.shape)})")
    if src.device != dst.device:
        raise KernelArgumentError(f"{fn}: src is on {src.device} but dst is on {dst.device}")
    check_writable(fn, "dst", dst)
    if tuple(src.shape) != tuple(dst.shape):
        # A reshape between two layouts: both must be viewable in dst's shape.
        src = src.reshape(dst.shape) if src.is_contiguous() else src
        if tuple(src.shape) != tuple(dst.shape):
            raise KernelArgumentError(f"{fn}: src with shape {tuple(src.shape)} and strides {src.stride()} cannot be "
                                      f"viewed as dst's shape {tuple(dst.shape)} without a copy")
    return elementwise_launches(fn, dst.shape, dict(src=src, dst=dst), lambda t, args, flat, grid: Launch(
        _copy_kernel, grid, [t["src"], t["dst"], float(scale), *args],
        dict(ACCUMULATE=accumulate, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def copy(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """``dst[...] = src`` with dtype conversion; same number of elements (a contiguous src may
    have another shape: a reshape)."""
    run(plan_copy(src, dst))
    return dst


def accumulate(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """``dst += src`` (what ``grad_req='add'`` does)."""
    run(plan_copy(src, dst, accumulate=True))
    return dst


@triton.jit
def _count_nonfinite_kernel(X, COUNT, n, BLOCK: tl.constexpr):
    """Each program adds how many of its BLOCK elements of x are NaN or +-inf to count[0]."""
    index = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    tl.atomic_add(COUNT, load_nonfinite_count(X, index, index < n))


def plan_count_nonfinite(x: torch.Tensor, count: torch.Tensor) -> list[Launch]:
    """Launches that add the number of NaN/inf elements of contiguous ``x`` to ``count[0]`` (int32)."""
    fn = "count_nonfinite"
    check_tensor(fn, "x", x, FLOAT_DTYPES)
    check_tensor(fn, "count", count, (torch.int32,))
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: x must be contiguous, got shape {tuple(x.shape)} strides {x.stride()}")
    n = x.numel()
    return [Launch(_count_nonfinite_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),), [x, count, n],
                   dict(BLOCK=ELEMENTWISE_BLOCK))]


# ------------------------------------------------------------------- catalogue

TESTS = ("tests/test_kernels_memory.py",)  # what exercises these kernels (the mutation check runs them)


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """One launch of each kernel and variant in ``dtype`` (fill, loss-scaled fill, fill
    divided by a device count, accumulating copy from a transposed view, a transformer's split heads, the NaN/inf
    count), on irregular shapes or (``large``) 2**24 elements: what ``ops.catalog``
    compiles, reports on and checks."""
    rows, cols = (1 << 12, 1 << 12) if large else (33, 17)
    v = torch.empty(rows, cols, dtype=dtype)
    heads = torch.empty((8, 1024, 8, 64) if large else (2, 5, 3, 4), dtype=dtype)
    return [*(("fill", launch) for launch in plan_fill(v, 0.0)),
            *(("fill loss-scaled", launch) for launch in plan_fill(v, 0.5, loss_scale=torch.empty(1))),
            *(("fill divided", launch) for launch in plan_fill(v, 0.5, divisor=torch.empty(1, dtype=torch.float64))),
            *(("copy accumulating", launch) for launch in plan_copy(v.T, torch.empty(cols, rows, dtype=dtype),
                                                                    accumulate=True)),
            # A transformer's heads: (batch, positions, heads, features) -> (batch, heads, positions, features).
            *(("copy of split heads", launch) for launch in plan_copy(heads.permute(0, 2, 1, 3),
                                                                      torch.empty(heads.permute(0, 2, 1, 3).shape,
                                                                                  dtype=dtype))),
            *(("count nonfinite", launch) for launch in plan_count_nonfinite(v, torch.empty(1, dtype=torch.int32)))]
