"""ravel_multi_index and unravel_index (MXNet's): coordinates into an array of ``shape`` as
flat (row-major) indices, and back. Coordinates and indices are whole numbers held in a
float array; one that is not whole or lies outside the shape gives NaN, where MXNet
answers some other position.

- ravel: one launch per axis k adds ``c_k x stride_k`` (the first writes), NaN where c_k is
  not a whole number in [0, shape[k]); every partial sum is a whole number below the
  result, so it is exact wherever the result is.
- unravel: one launch per axis k writes ``(i // stride_k) % shape[k]`` in int64 arithmetic,
  NaN where i is not a whole number in [0, prod(shape)).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    element_block,
    load_wide,
    store_result,
)

TESTS = ("tests/test_operators.py", "tests/test_ravel.py")


@triton.jit
def _ravel_axis_kernel(COORDS, OUT, n, length, stride, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    c = load_wide(COORDS, index, mask, 0.0)
    inside = (c == tl.floor(c)) & (c >= 0) & (c < length)
    store_result(OUT, index, tl.where(inside, c * stride, float("nan")), mask, ACCUMULATE)


@triton.jit
def _unravel_axis_kernel(FLAT, OUT, n, total, stride, length, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    i = load_wide(FLAT, index, mask, 0.0)
    inside = (i == tl.floor(i)) & (i >= 0) & (i < total)
    whole = tl.where(inside, i, 0.0).to(tl.int64)
    coordinate = ((whole // stride) % length).to(i.dtype)
    store_result(OUT, index, tl.where(inside, coordinate, float("nan")), mask, False)


def _strides(shape) -> list[int]:
    return [math.prod(shape[k + 1:]) for k in range(len(shape))]


def _check(fn: str, shape, **tensors) -> None:
    if not shape or min(shape) < 1:
        raise KernelArgumentError(f"{fn}: shape={tuple(shape)} must have at least one axis, each of positive size")
    for name, t in tensors.items():
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be contiguous, got strides {t.stride()}")


def plan_ravel_multi_index(coords: torch.Tensor, out: torch.Tensor, shape) -> list[Launch]:
    """``out[...] =`` the flat index into ``shape`` of the coordinates ``coords[:, ...]``."""
    fn = "ravel_multi_index"
    _check(fn, shape, coords=coords, out=out)
    if coords.dim() < 1 or coords.shape[0] != len(shape) or tuple(out.shape) != tuple(coords.shape[1:]) \
            or out.dtype != coords.dtype:
        raise KernelArgumentError(f"{fn}: coords {tuple(coords.shape)} must hold {len(shape)} coordinates (one per "
                                  f"axis of shape {tuple(shape)}) along its first axis, out ({tuple(out.shape)}, "
                                  f"{out.dtype}) the rest of its shape and its dtype {coords.dtype}")
    n = out.numel()
    grid = (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),)
    return [Launch(_ravel_axis_kernel, grid, [coords[k], out, n, length, stride],
                   dict(ACCUMULATE=k > 0, BLOCK=ELEMENTWISE_BLOCK))
            for k, (length, stride) in enumerate(zip(shape, _strides(shape)))]


def plan_unravel_index(flat: torch.Tensor, out: torch.Tensor, shape) -> list[Launch]:
    """``out[:, ...] =`` the coordinates in ``shape`` of the flat indices ``flat[...]``."""
    fn = "unravel_index"
    _check(fn, shape, flat=flat, out=out)
    if tuple(out.shape) != (len(shape), *flat.shape) or out.dtype != flat.dtype:
        raise KernelArgumentError(f"{fn}: out ({tuple(out.shape)}, {out.dtype}) must be {(len(shape), *flat.shape)} "
                                  f"of flat's dtype {flat.dtype} for shape {tuple(shape)}")
    n, total = flat.numel(), math.prod(shape)
    grid = (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),)
    return [Launch(_unravel_axis_kernel, grid, [flat, out[k], n, total, stride, length], dict(BLOCK=ELEMENTWISE_BLOCK))
            for k, (length, stride) in enumerate(zip(shape, _strides(shape)))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    n, shape = (1 << 24, (64, 1024, 1024)) if large else (37, (5, 3, 4))
    coords, flat = torch.empty(3, n, dtype=dtype), torch.empty(n, dtype=dtype)
    return [("ravel axis accumulating", plan_ravel_multi_index(coords, flat, shape)[1]),
            ("unravel axis", plan_unravel_index(flat, coords, shape)[0])]
