"""Bilinear sampling (MXNet's ``BilinearSampler``, the sampler of spatial transformer
networks): ``out[n, c, h, w]`` is ``data[n, c]`` (N, C, H, W) interpolated at the source
position that ``grid[n, :, h, w]`` (N, 2, OH, OW) holds, x in channel 0 and y in channel 1,
in [-1, 1] coordinates: ``x = (grid_x + 1) (W - 1) / 2`` pixels, and y likewise.

As MXNet computes it: the four pixels around (y, x) weighted by ``wy = 1 - (y - floor y)``
and ``wx = 1 - (x - floor x)`` (top-left ``wy wx``, top-right ``wy (1 - wx)``, ...), a
pixel outside the image counting as 0 (zero padding). A NaN grid position gives NaN (its
weights are NaN), a NaN pixel gives NaN wherever it is one of the four, even at weight 0.

- Forward: one thread per output element, 4 loads.
- Grid gradient: one thread per grid position sums its C channels' contributions in
  order: ``dgrid_x = -(W - 1) / 2 sum_c dout (bl - br + (tl - tr - bl + br) wy)`` and
  ``dgrid_y`` likewise, the derivative of the interpolation (MXNet's).
- Data gradient: each output scatters ``dout`` times its 4 weights onto its 4 pixels, and
  any number of outputs may share a pixel. For the same bits every run, one program per
  (image, block of channels, part) visits its part's output positions in order and adds
  into a gradient of its own: every element is owned by one thread of one program
  (``BLOCK_C`` at least a warp's 32 threads, one warp), so no atomics and no races. The
  OH x OW positions are cut into parts of ``SEGMENT`` (up to ``MAX_PARTS`` parts, each
  summing into its own copy of the gradient in scratch, float32 for half dtypes), so
  that a large output keeps many programs busy; a second launch adds the parts in order
  and rounds once. One part of float32 or float64 data sums in the gradient itself.
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
from .memory import plan_fill

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_spatial_transformer.py")
WARP = 32  # threads of the one warp a data-gradient program runs on: BLOCK_C is at least this
SEGMENT = 256  # output positions a data-gradient program walks, up to MAX_PARTS parts
MAX_PARTS = 8  # the data gradient's scratch holds at most this many copies of it


@triton.jit
def _corners(GX, GY, H, W, LIKE):
    """Where the grid values (GX, GY) read: the top-left pixel (y0, x0) as whole floats,
    the top-left weights (wy, wx), and whether each of rows y0, y0 + 1 and columns x0,
    x0 + 1 lies inside the H x W image (compared as floats: a far position never wraps)."""
    x = (widen(GX, LIKE) + 1.0) * (W - 1) / 2
    y = (widen(GY, LIKE) + 1.0) * (H - 1) / 2
    x0 = tl.floor(x)
    y0 = tl.floor(y)
    wx = 1.0 - (x - x0)
    wy = 1.0 - (y - y0)
    return (y0, x0, wy, wx, (y0 >= 0) & (y0 <= H - 1), (y0 >= -1) & (y0 <= H - 2), (x0 >= 0) & (x0 <= W - 1),
            (x0 >= -1) & (x0 <= W - 2))


@triton.jit
def _pixel(y0, x0, H, W):
    """The flat offset of (y0, x0) in an H x W image, the position first brought into
    [-1, H] x [-1, W] (NaN to 0): a far or NaN position, only ever read or written masked,
    still makes a small whole offset."""
    y = tl.minimum(tl.maximum(tl.where(y0 == y0, y0, 0.0), -1.0), H)
    x = tl.minimum(tl.maximum(tl.where(x0 == x0, x0, 0.0), -1.0), W)
    return (y * W + x).to(tl.int64)


@triton.jit
def _four(DATA, base, top_left, W, mask, top, bottom, left, right):
    """The four pixels around a position, 0 outside the image."""
    tl_v = load_wide(DATA, base + top_left, mask & top & left, 0.0)
    tr_v = load_wide(DATA, base + top_left + 1, mask & top & right, 0.0)
    bl_v = load_wide(DATA, base + top_left + W, mask & bottom & left, 0.0)
    br_v = load_wide(DATA, base + top_left + W + 1, mask & bottom & right, 0.0)
    return tl_v, tr_v, bl_v, br_v


@triton.jit
def _sample_kernel(DATA, GRID, OUT, n, C, H, W, P, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    position = index % P  # (h, w) of the output, flat
    image_channel = index // P  # n * C + c
    grid_at = (image_channel // C) * 2 * P + position
    gx = tl.load(GRID + grid_at, mask=mask, other=0.0)
    gy = tl.load(GRID + grid_at + P, mask=mask, other=0.0)
    y0, x0, wy, wx, top, bottom, left, right = _corners(gx, gy, H, W, OUT)
    top_left = _pixel(y0, x0, H, W)
    tl_v, tr_v, bl_v, br_v = _four(DATA, image_channel * H * W, top_left, W, mask, top, bottom, left, right)
    value = tl_v * wy * wx + tr_v * wy * (1.0 - wx) + bl_v * (1.0 - wy) * wx + br_v * (1.0 - wy) * (1.0 - wx)
    store_result(OUT, index, value, mask, ACCUMULATE)


@triton.jit
def _grid_grad_kernel(DATA, GRID, DOUT, DGRID, n, C, H, W, P, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)  # n * P + position: one grid position
    image, position = index // P, index % P
    grid_at = image * 2 * P + position
    gx = tl.load(GRID + grid_at, mask=mask, other=0.0)
    gy = tl.load(GRID + grid_at + P, mask=mask, other=0.0)
    y0, x0, wy, wx, top, bottom, left, right = _corners(gx, gy, H, W, DGRID)
    top_left = _pixel(y0, x0, H, W)
    dy = widen(tl.zeros((BLOCK,), tl.float32), DGRID)
    dx = widen(tl.zeros((BLOCK,), tl.float32), DGRID)
    for c in range(0, C):
        image_channel = image * C + c
        tl_v, tr_v, bl_v, br_v = _four(DATA, image_channel * H * W, top_left, W, mask, top, bottom, left, right)
        d = load_wide(DOUT, image_channel * P + position, mask, 0.0)
        cross = tl_v - tr_v - bl_v + br_v
        dy -= d * (tr_v - br_v + cross * wx)
        dx -= d * (bl_v - br_v + cross * wy)
    store_result(DGRID, grid_at, dx * (W - 1) / 2, mask, ACCUMULATE)
    store_result(DGRID, grid_at + P, dy * (H - 1) / 2, mask, ACCUMULATE)


@triton.jit
def _data_grad_kernel(GRID, DOUT, DDATA, C, H, W, P, SEGMENT, PART, BLOCK_C: tl.constexpr):
    """DDATA (zeroed, or holding what to add to, in the compute dtype) += the scatter of
    output positions [s SEGMENT, (s + 1) SEGMENT), in order, into part s (PART elements
    further on per part), one program per (image, BLOCK_C channels, part s)."""
    image = tl.program_id(0).to(tl.int64)
    channel = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    part = tl.program_id(2).to(tl.int64)
    live = channel < C
    image_channel = image * C + channel
    base = part * PART + image_channel * H * W
    same = tl.zeros((BLOCK_C,), tl.int64)  # the position's grid values in every lane: vectors throughout
    for position in range(part * SEGMENT, tl.minimum(part * SEGMENT + SEGMENT, P)):
        gx = tl.load(GRID + image * 2 * P + position + same)
        gy = tl.load(GRID + image * 2 * P + P + position + same)
        y0, x0, wy, wx, top, bottom, left, right = _corners(gx, gy, H, W, DDATA)
        top_left = base + _pixel(y0, x0, H, W)
        d = load_wide(DOUT, image_channel * P + position, live, 0.0)
        for corner in tl.static_range(4):
            if corner == 0:
                at, weight, inside = top_left, wy * wx, top & left
            elif corner == 1:
                at, weight, inside = top_left + 1, wy * (1.0 - wx), top & right
            elif corner == 2:
                at, weight, inside = top_left + W, (1.0 - wy) * wx, bottom & left
            else:
                at, weight, inside = top_left + W + 1, (1.0 - wy) * (1.0 - wx), bottom & right
            where = live & inside
            tl.store(DDATA + at, tl.load(DDATA + at, mask=where, other=0.0) + d * weight, mask=where)


@triton.jit
def _sum_parts_kernel(PARTS, DDATA, n, S, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """DDATA (+)= the sum of the S parts of PARTS (S, n), in order, rounded once."""
    index, mask = element_block(n, BLOCK)
    total = load_wide(PARTS, index, mask, 0.0)
    for part in range(1, S):
        total += load_wide(PARTS, part * n + index, mask, 0.0)
    store_result(DDATA, index, total, mask, ACCUMULATE)


def _shapes(fn: str, data: torch.Tensor, grid: torch.Tensor, out: torch.Tensor) -> tuple[int, int, int, int]:
    """(C, H, W, OH x OW) after checking data (N, C, H, W), grid (N, 2, OH, OW) and the
    output (or its gradient) (N, C, OH, OW): contiguous, one float dtype and device, the
    grid's also the compute dtype (SpatialTransformer keeps its grid unrounded)."""
    for name, t in (("data", data), ("grid", grid), ("out", out)):
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if t.dim() != 4 or not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be a contiguous 4-d array, got shape {tuple(t.shape)} "
                                      f"strides {t.stride()}")
    batch, channels = data.shape[:2]
    if grid.shape[:2] != (batch, 2):
        raise KernelArgumentError(f"{fn}: grid {tuple(grid.shape)} must be (N, 2, OH, OW) for data "
                                  f"{tuple(data.shape)} (N = {batch})")
    expected = (batch, channels, *grid.shape[2:])
    if tuple(out.shape) != expected:
        raise KernelArgumentError(f"{fn}: out must be {expected} for data {tuple(data.shape)} and grid "
                                  f"{tuple(grid.shape)}, got {tuple(out.shape)}")
    if (out.dtype != data.dtype or grid.dtype not in (data.dtype, compute_dtype(data.dtype))
            or len({t.device for t in (data, grid, out)}) > 1):
        raise KernelArgumentError(f"{fn}: data, grid and out must share one dtype (the grid may be in the compute "
                                  f"dtype {compute_dtype(data.dtype)}) and device, got {data.dtype}, {grid.dtype}, "
                                  f"{out.dtype} on {data.device}, {grid.device}, {out.device}")
    return channels, data.shape[2], data.shape[3], grid.shape[2] * grid.shape[3]


def plan_bilinear_sample(data: torch.Tensor, grid: torch.Tensor, out: torch.Tensor,
                         accumulate: bool = False) -> list[Launch]:
    """``out`` (N, C, OH, OW) ``(+)=`` ``data`` (N, C, H, W) sampled at ``grid`` (N, 2, OH, OW)."""
    fn = "bilinear_sample"
    channels, height, width, positions = _shapes(fn, data, grid, out)
    check_writable(fn, "out", out)
    n = out.numel()
    if n == 0:
        return []
    return [Launch(_sample_kernel, (triton.cdiv(n, ELEMENTWISE_BLOCK),),
                   [data, grid, out, n, channels, height, width, positions],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def plan_bilinear_sample_grid_backward(data: torch.Tensor, grid: torch.Tensor, dout: torch.Tensor,
                                       dgrid: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    """``dgrid (+)=`` the gradient of the grid through ``dout``, the output's gradient."""
    fn = "bilinear_sample_grid_backward"
    channels, height, width, positions = _shapes(fn, data, grid, dout)
    if tuple(dgrid.shape) != tuple(grid.shape) or dgrid.dtype != grid.dtype or not dgrid.is_contiguous():
        raise KernelArgumentError(f"{fn}: dgrid must be contiguous {tuple(grid.shape)} of {grid.dtype}, got "
                                  f"{tuple(dgrid.shape)} ({dgrid.dtype}, strides {dgrid.stride()})")
    check_writable(fn, "dgrid", dgrid)
    n = grid.numel() // 2
    if n == 0:
        return []
    return [Launch(_grid_grad_kernel, (triton.cdiv(n, ELEMENTWISE_BLOCK),),
                   [data, grid, dout, dgrid, n, channels, height, width, positions],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def data_grad_parts(positions: int) -> int:
    """Into how many parts the data gradient's output positions are cut: one program walks
    at most ``SEGMENT`` of them, up to ``MAX_PARTS`` parts (a longer walk past that)."""
    return max(1, min(triton.cdiv(positions, SEGMENT), MAX_PARTS))


def data_grad_scratch(data_shape, grid_shape, dtype: torch.dtype) -> tuple[tuple, torch.dtype] | None:
    """(shape, dtype) of the scratch the data gradient sums in, None where it sums in the
    gradient itself (float32 and float64 data in one part): (parts, *data_shape) in the
    compute dtype."""
    parts = data_grad_parts(grid_shape[2] * grid_shape[3])
    if parts == 1 and compute_dtype(dtype) == dtype:
        return None
    return (parts, *data_shape), compute_dtype(dtype)


def plan_bilinear_sample_data_backward(grid: torch.Tensor, dout: torch.Tensor, ddata: torch.Tensor,
                                       accumulate: bool = False, scratch: torch.Tensor | None = None) -> list[Launch]:
    """``ddata`` (N, C, H, W) ``(+)=`` the gradient of the data through ``dout``, summed in
    ``scratch`` where ``data_grad_scratch`` asks for it."""
    fn = "bilinear_sample_data_backward"
    channels, height, width, positions = _shapes(fn, ddata, grid, dout)
    check_writable(fn, "ddata", ddata)
    wanted = data_grad_scratch(tuple(ddata.shape), tuple(grid.shape), ddata.dtype)
    parts = data_grad_parts(positions)
    block = max(WARP, min(triton.next_power_of_2(max(channels, 1)), 4 * WARP))
    return plan_in_parts(fn, ddata, scratch, wanted, parts, accumulate, f"sampled at {positions} positions",
                         lambda target: [Launch(
                             _data_grad_kernel, (ddata.shape[0], triton.cdiv(channels, block), parts),
                             [grid, dout, target, channels, height, width, positions, triton.cdiv(positions, parts),
                              ddata.numel()], dict(BLOCK_C=block, num_warps=1))])


def plan_in_parts(fn: str, ddata: torch.Tensor, scratch: torch.Tensor | None, wanted, parts: int, accumulate: bool,
                  what: str, scatter) -> list[Launch]:
    """The launches of a gradient scattered part by part (here, ROIAlign's, ROIPooling's):
    ``scratch`` checked against ``wanted`` ((shape, dtype) of the parts, None: the scatter
    sums in ``ddata`` itself; ``what`` says why in an error), the target zeroed unless the
    scatter adds into ddata, ``scatter(target)``'s launches, then the parts summed into
    ddata in order."""
    if wanted is not None and (scratch is None or (tuple(scratch.shape), scratch.dtype) != wanted
                               or not scratch.is_contiguous()):
        got = "none" if scratch is None else f"{tuple(scratch.shape)} {scratch.dtype}"
        raise KernelArgumentError(f"{fn}: {ddata.dtype} data {tuple(ddata.shape)} {what} sums in contiguous "
                                  f"{wanted[1]} scratch of shape {wanted[0]}, got {got}")
    if ddata.numel() == 0:
        return []
    target = ddata if wanted is None else scratch
    launches = [] if target is ddata and accumulate else plan_fill(target, 0.0)
    launches += scatter(target)
    if target is not ddata:
        launches.append(plan_sum_parts(scratch, ddata, parts, accumulate))
    return launches


def plan_sum_parts(parts_array: torch.Tensor, out: torch.Tensor, parts: int, accumulate: bool) -> Launch:
    """``out (+)=`` the sum of the first ``parts`` copies of out's shape in ``parts_array``
    (contiguous, in the compute dtype), in order: the end of a scatter that programs summed
    part by part (ROIAlign's gradient too)."""
    n = out.numel()
    if parts_array.numel() < parts * n or not parts_array.is_contiguous() or not out.is_contiguous():
        raise KernelArgumentError(f"sum_parts: parts_array {tuple(parts_array.shape)} must hold {parts} contiguous "
                                  f"copies of out {tuple(out.shape)}")
    return Launch(_sum_parts_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),), [parts_array, out, n, parts],
                  dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # a spatial transformer's 64 images of 3 x 224 x 224 sampled to 224 x 224; 5 channels of 4 x 6 to 3 x 5
    batch, channels, height, width, out_h, out_w = (64, 3, 224, 224, 224, 224) if large else (2, 5, 4, 6, 3, 5)
    data = torch.empty(batch, channels, height, width, dtype=dtype)
    grid = torch.empty(batch, 2, out_h, out_w, dtype=dtype)
    out = torch.empty(batch, channels, out_h, out_w, dtype=dtype)
    wanted = data_grad_scratch(data.shape, grid.shape, dtype)
    scratch = None if wanted is None else torch.empty(wanted[0], dtype=wanted[1])
    data_grad = plan_bilinear_sample_data_backward(grid, out, data, accumulate=True, scratch=scratch)
    chosen = [("bilinear sample data gradient", launch) for launch in data_grad if launch.kernel is _data_grad_kernel]
    chosen += [("bilinear sample data gradient parts summed", launch) for launch in data_grad
               if launch.kernel is _sum_parts_kernel]
    return [("bilinear sample", plan_bilinear_sample(data, grid, out)[0]),
            ("bilinear sample grid gradient", plan_bilinear_sample_grid_backward(data, grid, out, grid.clone())[0]),
            *chosen]
