"""ROIAlign (MXNet's ``contrib.ROIAlign``, Mask R-CNN's): each region of interest ``rois[r] =
(batch, x1, y1, x2, y2)`` (image coordinates, times ``spatial_scale`` on the feature map)
cut into PH x PW bins, each bin the mean of the data bilinearly interpolated at a grid of
sample points, as MXNet (and Detectron) compute it:

- a bin's grid is ``sample_ratio`` points a side, or ``ceil(roi size / bins)`` where it is
  not positive; a point at ``start + bin (p + (i + 0.5) / grid)``;
- a point outside [-1, H] x [-1, W] adds 0 (and still counts in the mean); inside, it is
  clamped to [0, H - 1] x [0, W - 1] and its four neighbours weighted as MXNet does;
- ``aligned`` (Detectron2's): coordinates shifted by half a pixel, sizes not raised to 1;
- ``position_sensitive`` (R-FCN's): output channel c of bin b reads data channel
  ``c PH PW + b``.

A region whose batch index is negative is padding: its output is 0 and it takes no
gradient (MXNet's rule). One whose batch index is not a whole number below N, whose
coordinates are not finite, or (``aligned``) of no positive size has NaN output (MXNet
truncates the index, reads past the batch, or raises) and adds nothing to the gradient.
Only the points inside [-1, H] x [-1, W] are visited: a huge region costs what the map
holds, not its sample count.

Forward: one program per (region, bin, block of channels). Data gradient: a scatter that
any number of regions share; for the same bits every run one program per (image, block of
channels, part of the regions) walks its regions in order, adding into a gradient of its
own (each element owned by one thread: ``BLOCK_C`` at least a warp, one warp), the parts
(up to ``MAX_PARTS`` copies in scratch) then added in order. The regions take no gradient
(MXNet's is 0). Sums in float32 (float64 for float64), rounded once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    compute_dtype,
    load_wide,
    store_result,
    widen,
)
from .bilinear_sampler import plan_in_parts

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_roi_align.py")
WARP = 32  # threads of the one warp a gradient program runs on: BLOCK_C is at least this
REGIONS_PER_PART = 16  # regions a gradient program walks, up to MAX_PARTS parts
MAX_PARTS = 8  # the data gradient's scratch holds at most this many copies of it
VALID, PADDING, INVALID = 0, 1, 2


@triton.jit
def _region(ROIS, roi, N, spatial_scale, PH, PW, SAMPLE_RATIO, ALIGNED: tl.constexpr):
    """Region ``roi``'s (state, batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w), each a
    scalar: VALID, PADDING (a negative whole batch index) or INVALID (NaN output)."""
    batch = load_wide(ROIS, roi * 5, True, 0.0)
    offset = 0.5 if ALIGNED else 0.0
    start_w = load_wide(ROIS, roi * 5 + 1, True, 0.0) * spatial_scale - offset
    start_h = load_wide(ROIS, roi * 5 + 2, True, 0.0) * spatial_scale - offset
    end_w = load_wide(ROIS, roi * 5 + 3, True, 0.0) * spatial_scale - offset
    end_h = load_wide(ROIS, roi * 5 + 4, True, 0.0) * spatial_scale - offset
    width = end_w - start_w
    height = end_h - start_h
    finite = ((start_w - start_w) == 0.0) & ((start_h - start_h) == 0.0) & ((end_w - end_w) == 0.0) \
        & ((end_h - end_h) == 0.0)
    if ALIGNED:
        sized = (width > 0.0) & (height > 0.0)
    else:
        width = tl.maximum(width, 1.0)
        height = tl.maximum(height, 1.0)
        sized = finite
    whole = batch == tl.floor(batch)
    state = tl.where(whole & (batch < 0.0), 1, tl.where(whole & (batch < N) & finite & sized, 0, 2))
    bin_h = height / PH
    bin_w = width / PW
    ratio = SAMPLE_RATIO + 0.0 * bin_h  # in the compute dtype
    grid_h = tl.where(ratio > 0.0, ratio, tl.ceil(height / PH))
    grid_w = tl.where(ratio > 0.0, ratio, tl.ceil(width / PW))
    safe = state == 0
    return (state, tl.where(safe, batch, 0.0).to(tl.int64), tl.where(safe, start_h, 0.0),
            tl.where(safe, start_w, 0.0), tl.where(safe, bin_h, 1.0), tl.where(safe, bin_w, 1.0),
            tl.where(safe, grid_h, 1.0), tl.where(safe, grid_w, 1.0))


@triton.jit
def _sample_range(start, p, bin_size, grid, size, state):
    """The sample indices [first, last] of bin ``p`` along one axis that may lie inside
    [-1, size] (a superset: each point is checked again), as int32; empty unless VALID."""
    origin = start + p * bin_size
    step = bin_size / grid
    first = tl.ceil((-1.0 - origin) / step - 0.5) - 1.0
    last = tl.floor((size - origin) / step - 0.5) + 1.0
    first = tl.minimum(tl.maximum(first, 0.0), grid)
    last = tl.minimum(tl.maximum(last, -1.0), grid - 1.0)
    last = tl.where(state == 0, last, -1.0)
    return first.to(tl.int32), last.to(tl.int32)


@triton.jit
def _neighbours(y, size):
    """Along one axis, a point inside [-1, size] clamped as MXNet clamps it: (low, high, the
    weight of high) with low == high at the last pixel."""
    y = tl.maximum(y, 0.0)
    low = tl.floor(y)
    at_end = low >= size - 1
    low = tl.where(at_end, size - 1.0, low)
    high = tl.where(at_end, low, low + 1.0)
    y = tl.where(at_end, low, y)
    return low.to(tl.int64), high.to(tl.int64), y - low


@triton.jit
def _forward_kernel(DATA, ROIS, OUT, C, H, W, N, PH, PW, spatial_scale, SAMPLE_RATIO,
                    POSITION_SENSITIVE: tl.constexpr, ALIGNED: tl.constexpr, ACCUMULATE: tl.constexpr,
                    BLOCK_C: tl.constexpr):
    """OUT (R, C, PH, PW); C the output's channels (the data has C PH PW position-sensitively)."""
    program = tl.program_id(0).to(tl.int64)
    roi, bin = program // (PH * PW), program % (PH * PW)
    ph, pw = bin // PW, bin % PW
    channel = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    live = channel < C
    state, batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w = _region(ROIS, roi, N, spatial_scale, PH, PW,
                                                                           SAMPLE_RATIO, ALIGNED)
    if POSITION_SENSITIVE:
        plane = (batch * C * PH * PW + channel * PH * PW + bin) * H * W
    else:
        plane = (batch * C + channel) * H * W
    acc = widen(tl.zeros((BLOCK_C,), tl.float32), OUT)
    first_y, last_y = _sample_range(start_h, ph, bin_h, grid_h, H, state)
    first_x, last_x = _sample_range(start_w, pw, bin_w, grid_w, W, state)
    for iy in range(first_y, last_y + 1):
        y = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
        for ix in range(first_x, last_x + 1):
            x = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
            if (y >= -1.0) & (y <= H) & (x >= -1.0) & (x <= W):
                y_low, y_high, ly = _neighbours(y, H)
                x_low, x_high, lx = _neighbours(x, W)
                acc += ((1.0 - ly) * (1.0 - lx) * load_wide(DATA, plane + y_low * W + x_low, live, 0.0)
                        + (1.0 - ly) * lx * load_wide(DATA, plane + y_low * W + x_high, live, 0.0)
                        + ly * (1.0 - lx) * load_wide(DATA, plane + y_high * W + x_low, live, 0.0)
                        + ly * lx * load_wide(DATA, plane + y_high * W + x_high, live, 0.0))
    value = acc / (grid_h * grid_w)
    value = tl.where(state == 2, float("nan"), tl.where(state == 1, 0.0, value))
    store_result(OUT, (roi * C + channel) * PH * PW + bin, value, live, ACCUMULATE)


@triton.jit
def _add(DDATA, at, value, mask):
    tl.store(DDATA + at, tl.load(DDATA + at, mask=mask, other=0.0) + value, mask=mask)


@triton.jit
def _grad_kernel(DOUT, ROIS, DDATA, R, C, H, W, N, PH, PW, spatial_scale, SAMPLE_RATIO, PER_PART, PART,
                 POSITION_SENSITIVE: tl.constexpr, ALIGNED: tl.constexpr, BLOCK_C: tl.constexpr):
    """DDATA (zeroed or holding what to add to, in the compute dtype) += the scatter of the
    regions [s PER_PART, (s + 1) PER_PART) of image n, in order, into part s (PART
    elements further on), one program per (image n, BLOCK_C output channels, part s)."""
    image = tl.program_id(0).to(tl.int64)
    channel = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    part = tl.program_id(2).to(tl.int64)
    live = channel < C
    for roi in range(part * PER_PART, tl.minimum(part * PER_PART + PER_PART, R)):
        state, batch, start_h, start_w, bin_h, bin_w, grid_h, grid_w = _region(ROIS, roi, N, spatial_scale, PH,
                                                                               PW, SAMPLE_RATIO, ALIGNED)
        if (state == 0) & (batch == image):
            count = grid_h * grid_w
            for bin in range(0, PH * PW):
                ph, pw = bin // PW, bin % PW
                share = load_wide(DOUT, (roi * C + channel) * PH * PW + bin, live, 0.0) / count
                if POSITION_SENSITIVE:
                    plane = part * PART + (image * C * PH * PW + channel * PH * PW + bin) * H * W
                else:
                    plane = part * PART + (image * C + channel) * H * W
                first_y, last_y = _sample_range(start_h, ph, bin_h, grid_h, H, state)
                first_x, last_x = _sample_range(start_w, pw, bin_w, grid_w, W, state)
                for iy in range(first_y, last_y + 1):
                    y = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(first_x, last_x + 1):
                        x = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        if (y >= -1.0) & (y <= H) & (x >= -1.0) & (x <= W):
                            y_low, y_high, ly = _neighbours(y, H)
                            x_low, x_high, lx = _neighbours(x, W)
                            # a clamped neighbour repeats its pair at weight 0: skipped, so
                            # no element is updated twice in one step (the masks as vectors:
                            # the interpreter cannot mix a scalar truth with a vector one)
                            right = live & ((x_high != x_low).to(tl.int32) + tl.zeros((BLOCK_C,), tl.int32) > 0)
                            below = live & ((y_high != y_low).to(tl.int32) + tl.zeros((BLOCK_C,), tl.int32) > 0)
                            _add(DDATA, plane + y_low * W + x_low, share * (1.0 - ly) * (1.0 - lx), live)
                            _add(DDATA, plane + y_low * W + x_high, share * (1.0 - ly) * lx, right)
                            _add(DDATA, plane + y_high * W + x_low, share * ly * (1.0 - lx), below)
                            _add(DDATA, plane + y_high * W + x_high, share * ly * lx, right & below)


def output_channels(data_channels: int, pooled_size, position_sensitive: bool) -> int:
    return data_channels // (pooled_size[0] * pooled_size[1]) if position_sensitive else data_channels


def check_region_tensors(fn: str, data: torch.Tensor, rois: torch.Tensor, out: torch.Tensor) -> None:
    """data (N, C, H, W), rois (R, 5) and the output (or its gradient): contiguous, one float
    dtype and device (every region-pooling operator's)."""
    for name, t in (("data", data), ("rois", rois), ("out", out)):
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if not t.is_contiguous() or t.dtype != data.dtype or t.device != data.device:
            raise KernelArgumentError(f"{fn}: {name} must be contiguous, of the data's {data.dtype} on {data.device}, "
                                      f"got {tuple(t.shape)} {t.dtype} on {t.device} strides {t.stride()}")
    if data.dim() != 4 or rois.dim() != 2 or rois.shape[1] != 5:
        raise KernelArgumentError(f"{fn}: data {tuple(data.shape)} must be (N, C, H, W) and rois {tuple(rois.shape)} "
                                  f"(R, 5)")


def check_regions(fn: str, data: torch.Tensor, rois: torch.Tensor, out: torch.Tensor, pooled_size,
                  position_sensitive: bool = False) -> None:
    """data (N, C, H, W), rois (R, 5) and the output (or its gradient) (R, C', PH, PW):
    contiguous, one float dtype and device (ROIPooling's too)."""
    check_region_tensors(fn, data, rois, out)
    bins = pooled_size[0] * pooled_size[1]
    if position_sensitive and data.shape[1] % bins:
        raise KernelArgumentError(f"{fn}: position-sensitive data's {data.shape[1]} channels must be a multiple of "
                                  f"the {bins} bins of pooled_size {tuple(pooled_size)}")
    expected = (rois.shape[0], output_channels(data.shape[1], pooled_size, position_sensitive), *pooled_size)
    if tuple(out.shape) != expected:
        raise KernelArgumentError(f"{fn}: out must be {expected} for data {tuple(data.shape)}, rois "
                                  f"{tuple(rois.shape)} and pooled_size {tuple(pooled_size)}, got {tuple(out.shape)}")


def channel_block(channels: int) -> int:
    """BLOCK_C of a gradient program: at least a warp (each element owned by one thread of
    the program's one warp), at most four."""
    return max(WARP, min(triton.next_power_of_2(max(channels, 1)), 4 * WARP))


def plan_roi_align(data: torch.Tensor, rois: torch.Tensor, out: torch.Tensor, *, pooled_size, spatial_scale: float,
                   sample_ratio: int = -1, position_sensitive: bool = False, aligned: bool = False,
                   accumulate: bool = False) -> list[Launch]:
    """``out`` (R, C', PH, PW) ``(+)=`` the regions ``rois`` (R, 5) of ``data`` (N, C, H, W)
    pooled bin by bin."""
    fn = "roi_align"
    check_regions(fn, data, rois, out, pooled_size, position_sensitive)
    check_writable(fn, "out", out)
    if out.numel() == 0:
        return []
    channels = out.shape[1]
    return [Launch(_forward_kernel, (out.shape[0] * pooled_size[0] * pooled_size[1], triton.cdiv(channels, 32)),
                   [data, rois, out, channels, data.shape[2], data.shape[3], data.shape[0], pooled_size[0],
                    pooled_size[1], float(spatial_scale), int(sample_ratio)],
                   dict(POSITION_SENSITIVE=position_sensitive, ALIGNED=aligned, ACCUMULATE=accumulate, BLOCK_C=32))]


def grad_parts(regions: int) -> int:
    """Into how many parts the data gradient's regions are cut (``REGIONS_PER_PART`` each,
    up to ``MAX_PARTS``)."""
    return max(1, min(triton.cdiv(regions, REGIONS_PER_PART), MAX_PARTS))


def grad_scratch(data_shape, regions: int, dtype: torch.dtype) -> tuple[tuple, torch.dtype] | None:
    """(shape, dtype) of the scratch the data gradient sums in, None where it sums in the
    gradient itself (float32 and float64 data in one part)."""
    parts = grad_parts(regions)
    if parts == 1 and compute_dtype(dtype) == dtype:
        return None
    return (parts, *data_shape), compute_dtype(dtype)


def plan_roi_align_backward(dout: torch.Tensor, rois: torch.Tensor, ddata: torch.Tensor, *, pooled_size,
                            spatial_scale: float, sample_ratio: int = -1, position_sensitive: bool = False,
                            aligned: bool = False, accumulate: bool = False,
                            scratch: torch.Tensor | None = None) -> list[Launch]:
    """``ddata`` (N, C, H, W) ``(+)=`` the data's gradient through ``dout`` (R, C', PH, PW),
    summed in ``scratch`` where ``grad_scratch`` asks for it."""
    fn = "roi_align_backward"
    check_regions(fn, ddata, rois, dout, pooled_size, position_sensitive)
    check_writable(fn, "ddata", ddata)
    regions, channels = rois.shape[0], dout.shape[1]
    parts, block = grad_parts(regions), channel_block(channels)
    return plan_in_parts(fn, ddata, scratch, grad_scratch(tuple(ddata.shape), regions, ddata.dtype), parts,
                         accumulate, f"with {regions} regions", lambda target: [] if not regions else [Launch(
                             _grad_kernel, (ddata.shape[0], triton.cdiv(channels, block), parts),
                             [dout, rois, target, regions, channels, ddata.shape[2], ddata.shape[3], ddata.shape[0],
                              pooled_size[0], pooled_size[1], float(spatial_scale), int(sample_ratio),
                              triton.cdiv(regions, parts), ddata.numel()],
                             dict(POSITION_SENSITIVE=position_sensitive, ALIGNED=aligned, BLOCK_C=block,
                                  num_warps=1))])


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # Mask R-CNN's 512 regions of 7 x 7 bins on 2 maps of 256 x 50 x 68; 5 regions of 2 x 3 on 2 maps of 4 x 6 x 7
    n, c, h, w, regions, pooled = (2, 256, 50, 68, 512, (7, 7)) if large else (2, 4, 6, 7, 5, (2, 3))
    data, rois = torch.empty(n, c, h, w, dtype=dtype), torch.empty(regions, 5, dtype=dtype)
    out = torch.empty(regions, c, *pooled, dtype=dtype)
    geometry = dict(pooled_size=pooled, spatial_scale=0.25)
    wanted = grad_scratch(data.shape, regions, dtype)
    scratch = None if wanted is None else torch.empty(wanted[0], dtype=wanted[1])
    backward = plan_roi_align_backward(out, rois, data, accumulate=True, scratch=scratch, **geometry)
    # R-FCN's position-sensitive maps: 2 output channels per bin
    sensitive = torch.empty(n, 2 * pooled[0] * pooled[1], h, w, dtype=dtype)
    return [("roi align", plan_roi_align(data, rois, out, **geometry)[0]),
            ("roi align aligned position-sensitive",
             plan_roi_align(sensitive, rois, torch.empty(regions, 2, *pooled, dtype=dtype), aligned=True,
                            position_sensitive=True, sample_ratio=2, **geometry)[0]),
            *(("roi align gradient", launch) for launch in backward if launch.kernel is _grad_kernel)]
