"""PSROIPooling (MXNet's ``contrib.PSROIPooling``, R-FCN's position-sensitive pooling): each
region of interest ``rois[r] = (batch, x1, y1, x2, y2)`` (image coordinates) cut into P x P
bins, output channel k of bin (i, j) the mean of data channel ``(k G + gi) G + gj`` over the
bin's pixels, ``gi = floor(i G / P)`` (G = ``group_size``, P by default), as MXNet
computes them:

- the region ``[round(x1) s, (round(x2) + 1) s)`` on the map (s = ``spatial_scale``,
  rounding half away from zero), its sizes at least 0.1; bin i covers rows
  ``[floor(start + i size / P), ceil(start + (i + 1) size / P))`` clipped to the map; an
  empty bin is 0 and takes no gradient;
- each pixel of a bin takes the bin's gradient over its pixel count.

A negative whole batch index is padding: output 0, no gradient (ROIPooling's rule). One
that is not a whole number below N, or coordinates that are not finite: NaN output, no
gradient (MXNet truncates the index, reading past the batch).

Forward: one program per (region, bin, block of output channels). Data gradient: one
program per (image, block of output channels, the bin group (gi, gj) they read, part of
the regions) walks its regions in order, adding each of their bins of that group over its
pixels into a gradient of its own (each element owned by one thread: ROIAlign's scheme,
``ops/roi_align.py``), the parts then added in order: the same bits every run.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import KernelArgumentError, Launch, check_writable, load_wide, store_result
from .bilinear_sampler import plan_in_parts
from .roi_align import channel_block, check_region_tensors, grad_parts, grad_scratch
from .roi_pooling import _round_half_away

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_psroi_pooling.py")


@triton.jit
def _region(ROIS, roi, N, spatial_scale):
    """Region ``roi``'s (state, batch, start_h, start_w, height, width) as scalars: state 0
    valid, 1 padding, 2 invalid."""
    batch = load_wide(ROIS, roi * 5, True, 0.0)
    start_w = _round_half_away(load_wide(ROIS, roi * 5 + 1, True, 0.0)) * spatial_scale
    start_h = _round_half_away(load_wide(ROIS, roi * 5 + 2, True, 0.0)) * spatial_scale
    end_w = (_round_half_away(load_wide(ROIS, roi * 5 + 3, True, 0.0)) + 1.0) * spatial_scale
    end_h = (_round_half_away(load_wide(ROIS, roi * 5 + 4, True, 0.0)) + 1.0) * spatial_scale
    finite = ((start_w - start_w) == 0.0) & ((start_h - start_h) == 0.0) & ((end_w - end_w) == 0.0) \
        & ((end_h - end_h) == 0.0)
    whole = batch == tl.floor(batch)
    state = tl.where(whole & (batch < 0.0), 1, tl.where(whole & (batch < N) & finite, 0, 2))
    safe = state == 0
    return (state, tl.where(safe, batch, 0.0).to(tl.int64), tl.where(safe, start_h, 0.0),
            tl.where(safe, start_w, 0.0), tl.where(safe, tl.maximum(end_h - start_h, 0.1), 1.0),
            tl.where(safe, tl.maximum(end_w - start_w, 0.1), 1.0))


@triton.jit
def _bin_bounds(start, p, size, P, limit):
    """[first, end) of bin p along one axis, whole pixels clipped to [0, limit], as int32."""
    bin_size = size / P
    first = tl.minimum(tl.maximum(tl.floor(p * bin_size + start), 0.0), limit)
    end = tl.minimum(tl.maximum(tl.ceil((p + 1) * bin_size + start), 0.0), limit)
    return first.to(tl.int32), end.to(tl.int32)


@triton.jit
def _group(p, G, P):
    """The bin group ``min(floor(p G / P), G - 1)`` of bin p along one axis."""
    return tl.minimum((p * G) // P, G - 1)


@triton.jit
def _forward_kernel(DATA, ROIS, OUT, C, K, H, W, N, P, G, spatial_scale, ACCUMULATE: tl.constexpr,
                    BLOCK_C: tl.constexpr):
    program = tl.program_id(0).to(tl.int64)
    roi, bin = program // (P * P), program % (P * P)
    ph, pw = bin // P, bin % P
    out_channel = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    live = out_channel < K
    state, batch, start_h, start_w, height, width = _region(ROIS, roi, N, spatial_scale)
    first_y, end_y = _bin_bounds(start_h, ph, height, P, H)
    first_x, end_x = _bin_bounds(start_w, pw, width, P, W)
    end_y = tl.where(state == 0, end_y, first_y)  # nothing to read unless valid
    channel = (out_channel * G + _group(ph, G, P)) * G + _group(pw, G, P)
    plane = (batch * C + channel) * H * W
    total = load_wide(DATA, plane, False, 0.0)  # zeros of the compute type
    for y in range(first_y, end_y):
        for x in range(first_x, end_x):
            total += load_wide(DATA, plane + y * W + x, live, 0.0)
    area = (end_y - first_y) * (end_x - first_x)
    value = tl.where(area > 0, total / tl.maximum(area, 1), 0.0)
    value = tl.where(state == 2, float("nan"), value)
    store_result(OUT, (roi * K + out_channel) * P * P + bin, value, live, ACCUMULATE)


@triton.jit
def _grad_kernel(DOUT, ROIS, DDATA, R, C, K, H, W, N, P, G, spatial_scale, PER_PART, PART, BLOCK_C: tl.constexpr):
    """DDATA (zeroed or holding what to add to, in the compute dtype) += the bins of bin
    group program_id(1) % (G G) of the regions [s PER_PART, (s + 1) PER_PART) of image n, in
    order, each bin's gradient over its pixel count on each of its pixels, into part s (PART
    elements further on): one program per (n, output channels and group, s)."""
    image = tl.program_id(0).to(tl.int64)
    blocks = tl.cdiv(K, BLOCK_C)
    group = tl.program_id(1) // blocks
    gh, gw = group // G, group % G
    out_channel = (tl.program_id(1) % blocks) * BLOCK_C + tl.arange(0, BLOCK_C)
    part = tl.program_id(2).to(tl.int64)
    live = out_channel < K
    plane = part * PART + (image * C + (out_channel * G + gh) * G + gw) * H * W
    for roi in range(part * PER_PART, tl.minimum(part * PER_PART + PER_PART, R)):
        state, batch, start_h, start_w, height, width = _region(ROIS, roi, N, spatial_scale)
        if (state == 0) & (batch == image):
            for bin in range(0, P * P):
                ph, pw = bin // P, bin % P
                if (_group(ph, G, P) == gh) & (_group(pw, G, P) == gw):
                    first_y, end_y = _bin_bounds(start_h, ph, height, P, H)
                    first_x, end_x = _bin_bounds(start_w, pw, width, P, W)
                    area = tl.maximum((end_y - first_y) * (end_x - first_x), 1)
                    d = load_wide(DOUT, (roi * K + out_channel) * P * P + bin, live, 0.0) / area
                    for y in range(first_y, end_y):
                        for x in range(first_x, end_x):
                            at = DDATA + plane + y * W + x
                            tl.store(at, tl.load(at, mask=live, other=0.0) + d, mask=live)


def check_regions(fn: str, data: torch.Tensor, rois: torch.Tensor, out: torch.Tensor, output_dim: int,
                  pooled_size: int, group_size: int) -> None:
    """data (N, C, H, W) of at least output_dim G G channels, rois (R, 5) and the output (or
    its gradient) (R, output_dim, P, P): contiguous, one float dtype and device."""
    check_region_tensors(fn, data, rois, out)
    if min(output_dim, pooled_size, group_size) < 1 or data.shape[1] < output_dim * group_size ** 2:
        raise KernelArgumentError(f"{fn}: data's {data.shape[1]} channels must hold output_dim={output_dim} x "
                                  f"group_size={group_size} squared (each at least 1; pooled_size={pooled_size})")
    expected = (rois.shape[0], output_dim, pooled_size, pooled_size)
    if tuple(out.shape) != expected:
        raise KernelArgumentError(f"{fn}: out must be {expected}, got {tuple(out.shape)}")


def plan_psroi_pooling(data: torch.Tensor, rois: torch.Tensor, out: torch.Tensor, *, output_dim: int,
                       pooled_size: int, group_size: int, spatial_scale: float,
                       accumulate: bool = False) -> list[Launch]:
    """``out`` (R, output_dim, P, P) ``(+)=`` the regions ``rois`` (R, 5) of ``data`` (N, C,
    H, W) average-pooled bin by bin, each bin from its own group of channels."""
    fn = "psroi_pooling"
    check_regions(fn, data, rois, out, output_dim, pooled_size, group_size)
    check_writable(fn, "out", out)
    if out.numel() == 0:
        return []
    return [Launch(_forward_kernel, (out.shape[0] * pooled_size ** 2, triton.cdiv(output_dim, 32)),
                   [data, rois, out, data.shape[1], output_dim, data.shape[2], data.shape[3], data.shape[0],
                    pooled_size, group_size, float(spatial_scale)], dict(ACCUMULATE=accumulate, BLOCK_C=32))]


def plan_psroi_pooling_backward(dout: torch.Tensor, rois: torch.Tensor, ddata: torch.Tensor, *, output_dim: int,
                                pooled_size: int, group_size: int, spatial_scale: float, accumulate: bool = False,
                                scratch: torch.Tensor | None = None) -> list[Launch]:
    """``ddata (+)=`` each bin's gradient in ``dout`` spread evenly over the bin's pixels of
    its channels, summed in ``scratch`` where ``roi_align.grad_scratch`` asks for it."""
    fn = "psroi_pooling_backward"
    check_regions(fn, ddata, rois, dout, output_dim, pooled_size, group_size)
    check_writable(fn, "ddata", ddata)
    regions = rois.shape[0]
    parts, block = grad_parts(regions), channel_block(output_dim)
    return plan_in_parts(fn, ddata, scratch, grad_scratch(tuple(ddata.shape), regions, ddata.dtype), parts,
                         accumulate, f"with {regions} regions", lambda target: [] if not regions else [Launch(
                             _grad_kernel, (ddata.shape[0], triton.cdiv(output_dim, block) * group_size ** 2, parts),
                             [dout, rois, target, regions, ddata.shape[1], output_dim, ddata.shape[2],
                              ddata.shape[3], ddata.shape[0], pooled_size, group_size, float(spatial_scale),
                              triton.cdiv(regions, parts), ddata.numel()], dict(BLOCK_C=block, num_warps=1))])


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # R-FCN's 300 regions of 7 x 7 bins over 21 classes on 2 maps of 1029 x 38 x 50; 5 regions of 3 x 3 on
    # 2 maps of 18 x 6 x 7
    n, k, h, w, regions, p = (2, 21, 38, 50, 300, 7) if large else (2, 2, 6, 7, 5, 3)
    data, rois = torch.empty(n, k * p * p, h, w, dtype=dtype), torch.empty(regions, 5, dtype=dtype)
    out = torch.empty(regions, k, p, p, dtype=dtype)
    geometry = dict(output_dim=k, pooled_size=p, group_size=p, spatial_scale=0.0625)
    wanted = grad_scratch(data.shape, regions, dtype)
    scratch = None if wanted is None else torch.empty(wanted[0], dtype=wanted[1])
    backward = plan_psroi_pooling_backward(out, rois, torch.empty_like(data), accumulate=True, scratch=scratch,
                                           **geometry)
    return [("psroi pooling", plan_psroi_pooling(data, rois, out, **geometry)[0]),
            *(("psroi pooling gradient", launch) for launch in backward if launch.kernel is _grad_kernel)]
