"""ROIPooling (MXNet's, Fast R-CNN's): each region of interest ``rois[r] = (batch, x1, y1,
x2, y2)`` (image coordinates) rounded onto the feature map (``round(x spatial_scale)``,
half away from zero) and cut into PH x PW bins of whole pixels, each bin the maximum of
its pixels, as MXNet computes them:

- the region's size ``max(x2 - x1 + 1, 1)`` pixels (and its height likewise); bin p covers
  ``[floor(p size / P), ceil((p + 1) size / P))`` from the region's corner, clipped to the
  map; an empty bin is 0 and takes no gradient;
- the first maximum of a bin (rows, then columns) takes its gradient; a NaN pixel is a
  maximum that later values do not replace (NaN in gives NaN out; MXNet skips NaN, as its
  max pooling does).

A negative whole batch index is padding: output 0, no gradient (MXNet's rule for it). One
that is not a whole number below N, or coordinates that are not finite: NaN output, no
gradient (MXNet truncates the index and makes one at or past N padding).

Forward: one program per (region, bin, block of channels). Data gradient: the maximum of
each bin found again (no int64 array kept between the steps) and its output gradient added
there; for the same bits every run one program per (image, block of channels, part of the
regions) walks its regions in order (ROIAlign's scheme, ``ops/roi_align.py``), the parts
(up to ``roi_align.MAX_PARTS`` copies in scratch) then added in order.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    KernelArgumentError,
    Launch,
    check_writable,
    load_wide,
    store_result,
    widen,
)
from .bilinear_sampler import plan_in_parts
from .roi_align import channel_block, check_regions, grad_parts, grad_scratch

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_roi_pooling.py")


@triton.jit
def _round_half_away(x):
    return tl.where(x >= 0.0, tl.floor(x + 0.5), -tl.floor(-x + 0.5))


@triton.jit
def _region(ROIS, roi, N, spatial_scale):
    """Region ``roi``'s (state, batch, start_h, start_w, height, width) as scalars, the
    sizes in whole pixels as floats: state 0 valid, 1 padding, 2 invalid."""
    batch = load_wide(ROIS, roi * 5, True, 0.0)
    start_w = _round_half_away(load_wide(ROIS, roi * 5 + 1, True, 0.0) * spatial_scale)
    start_h = _round_half_away(load_wide(ROIS, roi * 5 + 2, True, 0.0) * spatial_scale)
    end_w = _round_half_away(load_wide(ROIS, roi * 5 + 3, True, 0.0) * spatial_scale)
    end_h = _round_half_away(load_wide(ROIS, roi * 5 + 4, True, 0.0) * spatial_scale)
    finite = ((start_w - start_w) == 0.0) & ((start_h - start_h) == 0.0) & ((end_w - end_w) == 0.0) \
        & ((end_h - end_h) == 0.0)
    whole = batch == tl.floor(batch)
    state = tl.where(whole & (batch < 0.0), 1, tl.where(whole & (batch < N) & finite, 0, 2))
    safe = state == 0
    return (state, tl.where(safe, batch, 0.0).to(tl.int64), tl.where(safe, start_h, 0.0),
            tl.where(safe, start_w, 0.0), tl.where(safe, tl.maximum(end_h - start_h + 1.0, 1.0), 1.0),
            tl.where(safe, tl.maximum(end_w - start_w + 1.0, 1.0), 1.0))


@triton.jit
def _bin_bounds(start, p, size, P, limit):
    """[first, end) of bin p along one axis, whole pixels clipped to [0, limit], as int32."""
    bin_size = size / P
    first = tl.minimum(tl.maximum(tl.floor(p * bin_size) + start, 0.0), limit)
    end = tl.minimum(tl.maximum(tl.ceil((p + 1) * bin_size) + start, 0.0), limit)
    return first.to(tl.int32), end.to(tl.int32)


@triton.jit
def _bin_max(DATA, plane, first_y, end_y, first_x, end_x, W, live, BLOCK_C: tl.constexpr):
    """Per lane the bin's maximum and its pixel (-1: an empty bin); the first maximum wins,
    and a NaN is one no later value replaces."""
    best = widen(tl.full((BLOCK_C,), float("-inf"), tl.float32), DATA)
    where = tl.full((BLOCK_C,), -1, tl.int64)
    for y in range(first_y, end_y):
        for x in range(first_x, end_x):
            pixel = y * W + x
            v = load_wide(DATA, plane + pixel, live, 0.0)
            take = (where < 0) | (v > best) | ((v != v) & (best == best))
            best = tl.where(take, v, best)
            where = tl.where(take, pixel, where)
    return best, where


@triton.jit
def _forward_kernel(DATA, ROIS, OUT, C, H, W, N, PH, PW, spatial_scale, ACCUMULATE: tl.constexpr,
                    BLOCK_C: tl.constexpr):
    program = tl.program_id(0).to(tl.int64)
    roi, bin = program // (PH * PW), program % (PH * PW)
    ph, pw = bin // PW, bin % PW
    channel = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    live = channel < C
    state, batch, start_h, start_w, height, width = _region(ROIS, roi, N, spatial_scale)
    first_y, end_y = _bin_bounds(start_h, ph, height, PH, H)
    first_x, end_x = _bin_bounds(start_w, pw, width, PW, W)
    end_y = tl.where(state == 0, end_y, first_y)  # nothing to read unless valid
    best, where = _bin_max(DATA, (batch * C + channel) * H * W, first_y, end_y, first_x, end_x, W, live, BLOCK_C)
    value = tl.where(where < 0, 0.0, best)
    value = tl.where(state == 2, float("nan"), value)
    store_result(OUT, (roi * C + channel) * PH * PW + bin, value, live, ACCUMULATE)


@triton.jit
def _grad_kernel(DATA, DOUT, ROIS, DDATA, R, C, H, W, N, PH, PW, spatial_scale, PER_PART, PART,
                 BLOCK_C: tl.constexpr):
    """DDATA (zeroed or holding what to add to, in the compute dtype) += each bin's output
    gradient at its maximum, for the regions [s PER_PART, (s + 1) PER_PART) of image n in
    order, into part s (PART elements further on): one program per (n, channels, s)."""
    image = tl.program_id(0).to(tl.int64)
    channel = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    part = tl.program_id(2).to(tl.int64)
    live = channel < C
    plane = (image * C + channel) * H * W
    for roi in range(part * PER_PART, tl.minimum(part * PER_PART + PER_PART, R)):
        state, batch, start_h, start_w, height, width = _region(ROIS, roi, N, spatial_scale)
        if (state == 0) & (batch == image):
            for bin in range(0, PH * PW):
                ph, pw = bin // PW, bin % PW
                first_y, end_y = _bin_bounds(start_h, ph, height, PH, H)
                first_x, end_x = _bin_bounds(start_w, pw, width, PW, W)
                _, where = _bin_max(DATA, plane, first_y, end_y, first_x, end_x, W, live, BLOCK_C)
                d = load_wide(DOUT, (roi * C + channel) * PH * PW + bin, live, 0.0)
                at = DDATA + part * PART + plane + where
                hit = live & (where >= 0)
                tl.store(at, tl.load(at, mask=hit, other=0.0) + d, mask=hit)


def plan_roi_pooling(data: torch.Tensor, rois: torch.Tensor, out: torch.Tensor, *, pooled_size,
                     spatial_scale: float, accumulate: bool = False) -> list[Launch]:
    """``out`` (R, C, PH, PW) ``(+)=`` the regions ``rois`` (R, 5) of ``data`` (N, C, H, W)
    max-pooled bin by bin."""
    fn = "roi_pooling"
    check_regions(fn, data, rois, out, pooled_size)
    check_writable(fn, "out", out)
    if out.numel() == 0:
        return []
    return [Launch(_forward_kernel, (out.shape[0] * pooled_size[0] * pooled_size[1], triton.cdiv(out.shape[1], 32)),
                   [data, rois, out, data.shape[1], data.shape[2], data.shape[3], data.shape[0], pooled_size[0],
                    pooled_size[1], float(spatial_scale)], dict(ACCUMULATE=accumulate, BLOCK_C=32))]


def plan_roi_pooling_backward(data: torch.Tensor, dout: torch.Tensor, rois: torch.Tensor, ddata: torch.Tensor, *,
                              pooled_size, spatial_scale: float, accumulate: bool = False,
                              scratch: torch.Tensor | None = None) -> list[Launch]:
    """``ddata (+)=`` each bin's gradient in ``dout`` at the bin's maximum in ``data``, summed
    in ``scratch`` where ``roi_align.grad_scratch`` asks for it."""
    fn = "roi_pooling_backward"
    check_regions(fn, data, rois, dout, pooled_size)
    if tuple(ddata.shape) != tuple(data.shape) or ddata.dtype != data.dtype or not ddata.is_contiguous():
        raise KernelArgumentError(f"{fn}: ddata must be contiguous {tuple(data.shape)} {data.dtype}, got "
                                  f"{tuple(ddata.shape)} {ddata.dtype}")
    check_writable(fn, "ddata", ddata)
    regions, channels = rois.shape[0], data.shape[1]
    parts, block = grad_parts(regions), channel_block(channels)
    return plan_in_parts(fn, ddata, scratch, grad_scratch(tuple(ddata.shape), regions, ddata.dtype), parts,
                         accumulate, f"with {regions} regions", lambda target: [] if not regions else [Launch(
                             _grad_kernel, (data.shape[0], triton.cdiv(channels, block), parts),
                             [data, dout, rois, target, regions, channels, data.shape[2], data.shape[3],
                              data.shape[0], pooled_size[0], pooled_size[1], float(spatial_scale),
                              triton.cdiv(regions, parts), ddata.numel()], dict(BLOCK_C=block, num_warps=1))])


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # Fast R-CNN's 128 regions of 7 x 7 bins on 2 maps of 512 x 38 x 50; 5 regions of 2 x 3 on 2 maps of 4 x 6 x 7
    n, c, h, w, regions, pooled = (2, 512, 38, 50, 128, (7, 7)) if large else (2, 4, 6, 7, 5, (2, 3))
    data, rois = torch.empty(n, c, h, w, dtype=dtype), torch.empty(regions, 5, dtype=dtype)
    out = torch.empty(regions, c, *pooled, dtype=dtype)
    geometry = dict(pooled_size=pooled, spatial_scale=0.0625)
    wanted = grad_scratch(data.shape, regions, dtype)
    scratch = None if wanted is None else torch.empty(wanted[0], dtype=wanted[1])
    backward = plan_roi_pooling_backward(data, out, rois, torch.empty_like(data), accumulate=True, scratch=scratch,
                                         **geometry)
    return [("roi pooling", plan_roi_pooling(data, rois, out, **geometry)[0]),
            *(("roi pooling gradient", launch) for launch in backward if launch.kernel is _grad_kernel)]
