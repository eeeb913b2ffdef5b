"""Sampling grids (MXNet's ``GridGenerator``): for each image n, a (2, H, W) grid of source
positions, x in channel 0 and y in channel 1, in [-1, 1] coordinates (-1 the first
pixel's centre, 1 the last's), the grid ``BilinearSampler`` reads.

- affine: ``theta`` (N, 6) is a 2 x 3 matrix per image mapping the target pixel's own
  coordinates ``(x_t, y_t, 1)`` to its source, ``x_t = -1 + 2 w / (W - 1)`` and
  ``y_t = -1 + 2 h / (H - 1)``. One thread per grid element. Gradient: ``dtheta[n, 3 r +
  k] = sum over pixels of dgrid[n, r] times (x_t, y_t, 1)[k]``, one program per (image,
  row) summing the pixels in a fixed order of blocks: the same bits every run.
- warp: ``flow`` (N, 2, H, W) is a displacement in pixels: ``grid = (pixel + flow) /
  ((size - 1) / 2) - 1`` per axis. Elementwise, and so is its gradient.

Both need H and W of at least 2 (the coordinates divide by size - 1). Sums and products
are in float32 (float64 for float64) and rounded once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    compute_dtype,
    element_block,
    load_wide,
    store_result,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_spatial_transformer.py")
REDUCE_BLOCK = 256  # pixels a program sums at a time in the affine gradient


@triton.jit
def _target_coordinates(pixel, H, W, LIKE):
    """(x_t, y_t) of the flat target pixels ``pixel`` of an H x W grid, in [-1, 1]."""
    x = widen(pixel % W, LIKE)
    y = widen(pixel // W, LIKE)
    return -1.0 + 2.0 * x / (W - 1), -1.0 + 2.0 * y / (H - 1)


@triton.jit
def _affine_kernel(THETA, GRID, n, H, W, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    plane = H * W
    pixel = index % plane
    row = index // plane  # n * 2 + r: the row of theta this element uses
    x, y = _target_coordinates(pixel, H, W, GRID)
    value = (load_wide(THETA, row * 3, mask, 0.0) * x + load_wide(THETA, row * 3 + 1, mask, 0.0) * y
             + load_wide(THETA, row * 3 + 2, mask, 0.0))
    store_result(GRID, index, value, mask, ACCUMULATE)


@triton.jit
def _affine_grad_kernel(DGRID, DTHETA, H, W, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)  # n * 2 + r
    plane = H * W
    offsets = tl.arange(0, BLOCK)
    zero = widen(tl.zeros((BLOCK,), tl.float32), DTHETA)
    sum_x, sum_y, sum_1 = zero, zero, zero
    for start in range(0, plane, BLOCK):
        pixel = start + offsets
        mask = pixel < plane
        d = load_wide(DGRID, row * plane + pixel, mask, 0.0)
        x, y = _target_coordinates(pixel, H, W, DTHETA)
        sum_x += d * x
        sum_y += d * y
        sum_1 += d
    store_result(DTHETA, row * 3, tl.sum(sum_x, axis=0), True, ACCUMULATE)
    store_result(DTHETA, row * 3 + 1, tl.sum(sum_y, axis=0), True, ACCUMULATE)
    store_result(DTHETA, row * 3 + 2, tl.sum(sum_1, axis=0), True, ACCUMULATE)


@triton.jit
def _warp_kernel(FLOW, GRID, n, H, W, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    plane = H * W
    pixel = index % plane
    is_x = (index // plane) % 2 == 0
    position = widen(tl.where(is_x, pixel % W, pixel // W), GRID)
    half_size = widen(tl.where(is_x, W - 1, H - 1), GRID) / 2.0
    value = (load_wide(FLOW, index, mask, 0.0) + position) / half_size - 1.0
    store_result(GRID, index, value, mask, ACCUMULATE)


@triton.jit
def _warp_grad_kernel(DGRID, DFLOW, n, H, W, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    is_x = (index // (H * W)) % 2 == 0
    half_size = widen(tl.where(is_x, W - 1, H - 1), DFLOW) / 2.0
    store_result(DFLOW, index, load_wide(DGRID, index, mask, 0.0) / half_size, mask, ACCUMULATE)


def check_grid_size(fn: str, what: str, height: int, width: int) -> None:
    if height < 2 or width < 2:
        raise KernelArgumentError(f"{fn}: {what} (H, W) = ({height}, {width}) must be at least 2 each: the grid's "
                                  f"[-1, 1] coordinates divide by H - 1 and W - 1")


def _check(fn: str, name: str, t: torch.Tensor, shape: tuple, like: torch.Tensor | None = None) -> None:
    """``t`` contiguous of ``shape``, of ``like``'s device and dtype or its compute dtype (a
    grid kept unrounded for half-precision data)."""
    check_tensor(fn, name, t, FLOAT_DTYPES)
    if tuple(t.shape) != shape or not t.is_contiguous() or (like is not None and (
            t.dtype not in (like.dtype, compute_dtype(like.dtype)) or t.device != like.device)):
        also = f" of {like.dtype} (or {compute_dtype(like.dtype)}) on {like.device}" if like is not None else ""
        raise KernelArgumentError(f"{fn}: {name} must be contiguous of shape {shape}{also}, got {tuple(t.shape)} "
                                  f"({t.dtype} on {t.device}, strides {t.stride()})")


def _affine_shapes(fn: str, theta: torch.Tensor, grid: torch.Tensor) -> tuple[int, int]:
    if grid.dim() != 4:
        raise KernelArgumentError(f"{fn}: grid must be (N, 2, H, W), got shape {tuple(grid.shape)}")
    batch, _, height, width = grid.shape
    check_grid_size(fn, "the grid's size", height, width)
    _check(fn, "theta", theta, (batch, 6))
    _check(fn, "grid", grid, (batch, 2, height, width), theta)
    return height, width


def plan_affine_grid(theta: torch.Tensor, grid: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``grid`` (N, 2, H, W) ``(+)=`` the source positions of the affine maps ``theta`` (N, 6)."""
    fn = "affine_grid"
    height, width = _affine_shapes(fn, theta, grid)
    check_writable(fn, "grid", grid)
    n = grid.numel()
    if n == 0:
        return []
    return [Launch(_affine_kernel, (triton.cdiv(n, ELEMENTWISE_BLOCK),), [theta, grid, n, height, width],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def plan_affine_grid_backward(dgrid: torch.Tensor, dtheta: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``dtheta`` (N, 6) ``(+)=`` the gradient of the affine grid through its gradient ``dgrid``."""
    fn = "affine_grid_backward"
    height, width = _affine_shapes(fn, dtheta, dgrid)
    check_writable(fn, "dtheta", dtheta)
    rows = dtheta.shape[0] * 2
    if rows == 0:
        return []
    return [Launch(_affine_grad_kernel, (rows,), [dgrid, dtheta, height, width],
                   dict(ACCUMULATE=accumulate, BLOCK=REDUCE_BLOCK))]


def _warp_shapes(fn: str, flow: torch.Tensor, grid: torch.Tensor) -> tuple[int, int]:
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise KernelArgumentError(f"{fn}: flow must be (N, 2, H, W), got shape {tuple(flow.shape)}")
    check_grid_size(fn, "the flow's size", flow.shape[2], flow.shape[3])
    _check(fn, "flow", flow, tuple(flow.shape))
    _check(fn, "grid", grid, tuple(flow.shape), flow)
    return flow.shape[2], flow.shape[3]


def plan_warp_grid(flow: torch.Tensor, grid: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``grid (+)=`` the source positions of the pixels displaced by ``flow`` (N, 2, H, W)."""
    fn = "warp_grid"
    height, width = _warp_shapes(fn, flow, grid)
    check_writable(fn, "grid", grid)
    n = grid.numel()
    if n == 0:
        return []
    return [Launch(_warp_kernel, (triton.cdiv(n, ELEMENTWISE_BLOCK),), [flow, grid, n, height, width],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def plan_warp_grid_backward(dgrid: torch.Tensor, dflow: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``dflow (+)=`` the gradient of the warp grid through its gradient ``dgrid``."""
    fn = "warp_grid_backward"
    height, width = _warp_shapes(fn, dflow, dgrid)
    check_writable(fn, "dflow", dflow)
    n = dflow.numel()
    if n == 0:
        return []
    return [Launch(_warp_grad_kernel, (triton.cdiv(n, ELEMENTWISE_BLOCK),), [dgrid, dflow, n, height, width],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # a spatial transformer's 224 x 224 grids for a batch of 64, and a flow field of 2 x 7 x 5
    batch, height, width = (64, 224, 224) if large else (3, 5, 6)
    theta, grid = torch.empty(batch, 6, dtype=dtype), torch.empty(batch, 2, height, width, dtype=dtype)
    return [("affine grid", plan_affine_grid(theta, grid)[0]),
            ("affine grid gradient", plan_affine_grid_backward(grid, theta)[0]),
            ("warp grid", plan_warp_grid(grid, grid.clone())[0]),
            ("warp grid gradient accumulating", plan_warp_grid_backward(grid, grid.clone(), accumulate=True)[0])]
