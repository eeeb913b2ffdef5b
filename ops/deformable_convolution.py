"""Deformable convolution (MXNet's ``contrib.DeformableConvolution``, DCN v1, and
``contrib.ModulatedDeformableConvolution``, DCN v2) of 2-d data (N, C, H, W): a convolution
whose every tap reads the data at a learned fractional displacement of its place,

    out[n, f, p] = sum over (c, t) of w[f, c, t] * m[n, g, t, p] * v(x[n, c], y_t(p), x_t(p))

with ``y_t(p) = oh * stride_h - pad_h + kh * dilate_h + offset[n, 2 (g T + t), p]`` and ``x_t``
likewise from ``offset[n, 2 (g T + t) + 1, p]`` (T = KH KW taps, g the channel's deformable
group, ``C / num_deformable_group`` channels each), ``v`` the bilinear interpolation of the
channel at that point and ``m`` the modulation (DCN v2's mask; 1 for v1). Where the two
differ, as MXNet computes them:

- v1 (``ZERO_PAD=False``): a point counts only inside [0, H) x [0, W); in its last row (or
  column) the fraction is dropped, the value read from that row alone, its derivative 0;
- v2 (``ZERO_PAD=True``): a point counts inside (-1, H) x (-1, W), pixels outside the image
  reading 0 (the interpolation of a zero-padded image).

A point outside adds 0; a NaN offset gives NaN (MXNet's reads 0 there).

Kernels, all in a fixed order (the same bits every run, no atomics):

- forward: an implicit GEMM (output positions x filters over channels x taps) whose data
  tile is interpolated as it is gathered: no column buffer;
- weight gradient: the same gathered tile as the reduced operand, ``dw = dy @ cols^T``;
- column gradient ``dcol[n, c, t, p] = sum over f of w[f, c, t] dy[n, f, p]``, a GEMM into
  scratch (float32, float64 for float64); the backward works on a chunk of images at a
  time so that its scratch stays within the ``workspace`` the operator allows;
- offset and mask gradients: one program per (block of positions, group, tap) reducing the
  group's channels: ``doffset_y = m sum_c dcol dv/dy``, ``dmask = sum_c dcol v``; it also
  writes each sample point's four pixels and weights (times m) to scratch;
- data gradient: each column entry scatters ``dcol`` times those weights onto those
  pixels. One program per (image, block of channels, part of the positions) walks its
  positions and taps in order, adding into a gradient of its own (BilinearSampler's
  scheme, ``plan_in_parts``, the chunk's parts summed after its walk); the pixels found
  beforehand keep each step short.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    compute_dtype,
    load_wide,
    prepare_out,
    store_result,
)
from .bilinear_sampler import WARP, data_grad_parts, plan_in_parts
from .convolution import _grid, _options, check_bias, output_length
from .fully_connected import _TMA_SHARED_LIMIT, _autotune, _mma, _operand, _prune, _rounded_operand, _tile
from .reduce import plan_reduce

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_deformable_convolution.py")
MAX_GROUPS = 65535  # a CUDA grid's second axis
BLOCK_P = 64  # positions an offset-gradient program reduces the channels of
BLOCK_C = 32  # channels per step of that reduction


def _gathered_shared_bytes(config, element_size: int, gathered: int, other: int, mask: bool) -> int:
    """Shared memory a gathering kernel's pipeline takes, by Triton 3.9's compile for sm_90
    (perf/results/kernels-sm90-triton-3.9.md): in float32 and float64 each stage keeps the
    interpolation's loads (the four pixels, the two offsets, the mask: about 5 tiles of the
    gathered operand, 6 with a mask) besides the other operand's tile; a half-precision
    kernel keeps them in registers."""
    if element_size < 4:
        return 0
    return config.num_stages * ((5 + mask) * gathered + other) * element_size


def _gather_prune(gathered_rows: str, gathered_cols: str, other_rows: str, other_cols: str):
    """FullyConnected's pruning, then the configs whose pipelined gathers cannot fit in a
    program's shared memory dropped (the smallest kept where none fits): each tile's shape
    named by the config's BLOCK_M, BLOCK_N, BLOCK_K."""
    def prune(configs, named_args, **kwargs):
        kept = _prune(configs, named_args, **kwargs)
        size = next(v for v in named_args.values() if isinstance(v, torch.Tensor)).element_size()

        def fits(c):
            k = c.kwargs
            return _gathered_shared_bytes(c, size, k[gathered_rows] * k[gathered_cols], k[other_rows] * k[other_cols],
                                          bool(kwargs.get("HAS_MASK"))) <= _TMA_SHARED_LIMIT
        return [c for c in kept if fits(c)] or [min(configs, key=lambda c: c.num_stages * sum(
            c.kwargs[name] for name in ("BLOCK_M", "BLOCK_N", "BLOCK_K")))]
    return prune


@triton.jit
def _corners(py, px, H, W, ZERO_PAD: tl.constexpr):
    """A point (py, px)'s interpolation: the top-left pixel (y0, x0) as whole numbers (brought
    into [-1, H] x [-1, W], NaN to 0, so that a far point still makes a small offset), the
    fractions (ly, lx), whether it counts, and whether its bottom row, right column, top row
    and left column lie inside the image. v1 drops the fraction in the last row (column)."""
    y0f = tl.floor(py)
    x0f = tl.floor(px)
    ly = py - y0f
    lx = px - x0f
    if ZERO_PAD:
        inside = (py > -1.0) & (px > -1.0) & (py < H) & (px < W)
        top = y0f >= 0.0
        left = x0f >= 0.0
        bottom = y0f + 1.0 <= H - 1
        right = x0f + 1.0 <= W - 1
    else:
        inside = (py >= 0.0) & (px >= 0.0) & (py < H) & (px < W)
        top = inside
        left = inside
        bottom = y0f < H - 1
        right = x0f < W - 1
        ly = tl.where(bottom, ly, 0.0)
        lx = tl.where(right, lx, 0.0)
    y0 = tl.minimum(tl.maximum(tl.where(y0f == y0f, y0f, 0.0), -1.0), H).to(tl.int64)
    x0 = tl.minimum(tl.maximum(tl.where(x0f == x0f, x0f, 0.0), -1.0), W).to(tl.int64)
    return y0, x0, ly, lx, inside, top, bottom, left, right


@triton.jit
def _four(X, base, y0, x0, sx_h, sx_w, live, top, bottom, left, right):
    """The four pixels around a point, 0 outside the image (and where not ``live``)."""
    at = base + y0 * sx_h + x0 * sx_w
    v00 = load_wide(X, at, live & top & left, 0.0)
    v01 = load_wide(X, at + sx_w, live & top & right, 0.0)
    v10 = load_wide(X, at + sx_h, live & bottom & left, 0.0)
    v11 = load_wide(X, at + sx_h + sx_w, live & bottom & right, 0.0)
    return v00, v01, v10, v11


@triton.jit
def _points(OFF, n, oh, ow, dg, tap, kh, kw, live, T, st_h, st_w, dl_h, dl_w, pd_h, pd_w,
            so_n, so_c, so_h, so_w, ACC: tl.constexpr):
    """Where tap ``tap`` (kh, kw) of output position (oh, ow) of image n reads for deformable
    group dg: its place in the padded image plus its two offsets, in ``ACC``. The arguments
    broadcast against each other (a tile of positions x taps, or a vector)."""
    at = n * so_n + (dg * 2 * T + 2 * tap) * so_c + oh * so_h + ow * so_w
    dy = tl.load(OFF + at, mask=live, other=0.0).to(ACC)
    dx = tl.load(OFF + at + so_c, mask=live, other=0.0).to(ACC)
    py = (oh * st_h - pd_h + kh * dl_h).to(ACC) + dy
    px = (ow * st_w - pd_w + kw * dl_w).to(ACC) + dx
    return py, px


@triton.jit
def _modulation(MASK, n, oh, ow, dg, tap, live, T, sm_n, sm_c, sm_h, sm_w, ACC: tl.constexpr):
    return tl.load(MASK + n * sm_n + (dg * T + tap) * sm_c + oh * sm_h + ow * sm_w, mask=live, other=0.0).to(ACC)


@triton.jit
def _column_tile(X, OFF, MASK, n, oh, ow, live_p, c, kh, kw, live_k, C_DG, T, KW, H, W,
                 st_h, st_w, dl_h, dl_w, pd_h, pd_w, sx_n, sx_c, sx_h, sx_w, so_n, so_c, so_h, so_w,
                 sm_n, sm_c, sm_h, sm_w, HAS_MASK: tl.constexpr, ZERO_PAD: tl.constexpr, ACC: tl.constexpr):
    """The column entries ``m v`` of positions (n, oh, ow) (a column vector) and channel taps
    (c, kh, kw) (a row vector): a (positions x taps) tile in ``ACC``."""
    n2, oh2, ow2, live_p2 = n[:, None], oh[:, None], ow[:, None], live_p[:, None]
    dg, tap = (c // C_DG)[None, :], (kh * KW + kw)[None, :]
    live = live_p2 & live_k[None, :]
    py, px = _points(OFF, n2, oh2, ow2, dg, tap, kh[None, :], kw[None, :], live, T, st_h, st_w, dl_h, dl_w,
                     pd_h, pd_w, so_n, so_c, so_h, so_w, ACC)
    y0, x0, ly, lx, inside, top, bottom, left, right = _corners(py, px, H, W, ZERO_PAD)
    v00, v01, v10, v11 = _four(X, n2 * sx_n + c[None, :] * sx_c, y0, x0, sx_h, sx_w, live & inside, top, bottom,
                               left, right)
    value = ((1.0 - ly) * ((1.0 - lx) * v00 + lx * v01) + ly * ((1.0 - lx) * v10 + lx * v11)).to(ACC)
    value = tl.where(inside, value, 0.0)
    value = tl.where((py == py) & (px == px), value, float("nan"))
    if HAS_MASK:
        value *= _modulation(MASK, n2, oh2, ow2, dg, tap, live, T, sm_n, sm_c, sm_h, sm_w, ACC)
    return value


@_autotune(restore=["Y"], prune=_gather_prune("BLOCK_M", "BLOCK_K", "BLOCK_K", "BLOCK_N"))
@triton.jit
def _forward_kernel(X, OFF, MASK, Wt, Bias, Y, M, N, K, C_IN, C_DG, H, W, OH, OW, KH, KW,
                    st_h, st_w, dl_h, dl_w, pd_h, pd_w, sx_n, sx_c, sx_h, sx_w, so_n, so_c, so_h, so_w,
                    sm_n, sm_c, sm_h, sm_w, sk_o, sk_i, sk_h, sk_w, sy_n, sy_c, sy_h, sy_w,
                    HAS_MASK: tl.constexpr, ZERO_PAD: tl.constexpr, HAS_BIAS: tl.constexpr,
                    ACCUMULATE: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    """One (output positions) x (filters) tile of group program_id(1): M = N*OH*OW rows, N =
    filters per group, K = C_IN*KH*KW taps of the group's C_IN channels."""
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    group = tl.program_id(1).to(tl.int64)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K).to(tl.int64)
    n, oh, ow = rm // (OH * OW), (rm // OW) % OH, rm % OW
    filters = group * N + rn
    T = KH * KW
    ACC = tl.float64 if Y.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_M, BLOCK_N), ACC)
    for start in range(0, K, BLOCK_K):
        kk = start + rk
        c, kh, kw = kk // T, (kk % T) // KW, kk % KW
        cols = _column_tile(X, OFF, MASK, n, oh, ow, rm < M, group * C_IN + c, kh, kw, kk < K, C_DG, T, KW, H, W,
                            st_h, st_w, dl_h, dl_w, pd_h, pd_w, sx_n, sx_c, sx_h, sx_w, so_n, so_c, so_h, so_w,
                            sm_n, sm_c, sm_h, sm_w, HAS_MASK, ZERO_PAD, ACC)
        w = tl.load(Wt + (c * sk_i + kh * sk_h + kw * sk_w)[:, None] + filters[None, :] * sk_o,
                    mask=(kk < K)[:, None] & (rn < N)[None, :], other=0.0)
        acc = _mma(_rounded_operand(cols, Wt.dtype.element_ty, UPCAST), _operand(w, UPCAST), acc, PRECISION)
    if HAS_BIAS:
        acc += tl.load(Bias + filters, mask=rn < N, other=0.0).to(ACC)[None, :]
    y = Y + (n * sy_n + oh * sy_h + ow * sy_w)[:, None] + filters[None, :] * sy_c
    store_result(y, 0, acc, (rm < M)[:, None] & (rn < N)[None, :], ACCUMULATE)


@_autotune(restore=["DW"], prune=_gather_prune("BLOCK_K", "BLOCK_N", "BLOCK_M", "BLOCK_K"))
@triton.jit
def _weight_grad_kernel(DY, X, OFF, MASK, DW, M, N, K, C_IN, C_DG, H, W, OH, OW, KH, KW,
                        st_h, st_w, dl_h, dl_w, pd_h, pd_w, sx_n, sx_c, sx_h, sx_w, so_n, so_c, so_h, so_w,
                        sm_n, sm_c, sm_h, sm_w, sk_o, sk_i, sk_h, sk_w, sy_n, sy_c, sy_h, sy_w,
                        HAS_MASK: tl.constexpr, ZERO_PAD: tl.constexpr, ACCUMULATE: tl.constexpr,
                        PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    """One (filters) x (channels x taps) tile of dw for group program_id(1): M = filters per
    group, N = C_IN*KH*KW, K = N*OH*OW output positions, reduced in order."""
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    group = tl.program_id(1).to(tl.int64)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K).to(tl.int64)
    filters = group * M + rm
    T = KH * KW
    c, kh, kw = rn // T, (rn % T) // KW, rn % KW
    ACC = tl.float64 if DW.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_M, BLOCK_N), ACC)
    for start in range(0, K, BLOCK_K):
        kk = start + rk
        n, oh, ow = kk // (OH * OW), (kk // OW) % OH, kk % OW
        dy = tl.load(DY + (n * sy_n + oh * sy_h + ow * sy_w)[None, :] + filters[:, None] * sy_c,
                     mask=(rm < M)[:, None] & (kk < K)[None, :], other=0.0)
        cols = _column_tile(X, OFF, MASK, n, oh, ow, kk < K, group * C_IN + c, kh, kw, rn < N, C_DG, T, KW, H, W,
                            st_h, st_w, dl_h, dl_w, pd_h, pd_w, sx_n, sx_c, sx_h, sx_w, so_n, so_c, so_h, so_w,
                            sm_n, sm_c, sm_h, sm_w, HAS_MASK, ZERO_PAD, ACC)
        acc = _mma(_operand(dy, UPCAST), _rounded_operand(cols, DY.dtype.element_ty, UPCAST), acc, PRECISION)
    dw = DW + filters[:, None] * sk_o + (c * sk_i + kh * sk_h + kw * sk_w)[None, :]
    store_result(dw, 0, acc, (rm < M)[:, None] & (rn < N)[None, :], ACCUMULATE)


@_autotune(restore=[])
@triton.jit
def _column_grad_kernel(Wt, DY, DCOL, M, N, K, C_IN, C, T, KW, OH, OW, first, sk_o, sk_i, sk_h, sk_w,
                        sy_n, sy_c, sy_h, sy_w,
                        PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    """One (channels x taps) x (positions) tile of group program_id(1)'s column gradient for
    images [first, first + chunk): M = C_IN*T, N = chunk*OH*OW, K = filters per group. DCOL
    is contiguous (chunk, C*T, OH*OW) in the compute dtype."""
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    group = tl.program_id(1).to(tl.int64)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K).to(tl.int64)
    P = OH * OW
    image, p = rn // P, rn % P
    dy_at = (first + image) * sy_n + (p // OW) * sy_h + (p % OW) * sy_w
    w_rows = rm // T * sk_i + (rm % T) // KW * sk_h + rm % KW * sk_w
    ACC = tl.float64 if DCOL.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_M, BLOCK_N), ACC)
    for start in range(0, K, BLOCK_K):
        kk = start + rk
        filters = group * K + kk
        w = tl.load(Wt + w_rows[:, None] + filters[None, :] * sk_o,
                    mask=(rm < M)[:, None] & (kk < K)[None, :], other=0.0)
        dy = tl.load(DY + dy_at[None, :] + filters[:, None] * sy_c, mask=(kk < K)[:, None] & (rn < N)[None, :],
                     other=0.0)
        acc = _mma(_operand(w, UPCAST), _operand(dy, UPCAST), acc, PRECISION)
    at = (image * C * T + group * C_IN * T)[None, :] * P + rm[:, None] * P + p[None, :]
    tl.store(DCOL + at, acc, mask=(rm < M)[:, None] & (rn < N)[None, :])


@triton.jit
def _points_grad_kernel(X, OFF, MASK, DCOL, DOFF, DMASK, CIDX, CW, first, NP, C, C_DG, H, W, OH, OW, KW, T,
                        st_h, st_w, dl_h, dl_w, pd_h, pd_w, sx_n, sx_c, sx_h, sx_w, so_n, so_c, so_h, so_w,
                        sm_n, sm_c, sm_h, sm_w, HAS_MASK: tl.constexpr, ZERO_PAD: tl.constexpr,
                        WANT_OFFSET: tl.constexpr, WANT_MASK: tl.constexpr, WANT_CORNERS: tl.constexpr,
                        ACCUMULATE_OFFSET: tl.constexpr, ACCUMULATE_MASK: tl.constexpr, BLOCK_P: tl.constexpr,
                        BLOCK_C: tl.constexpr):
    """What each sample point of BLOCK_P positions of images [first, first + chunk) (NP =
    chunk*OH*OW) at tap program_id(1) % T of group program_id(1) // T takes from the column
    gradient: the offset (and mask) gradients, each the sum over the group's C_DG channels in
    order (DOFF and DMASK have OFF's and MASK's strides); and for the data gradient the four
    pixels it reads (their flat place in the image, -1 for none: CIDX, int32) with their
    weights times the mask (CW), both (chunk, groups, T, OH*OW, 4)."""
    q = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    dg = tl.program_id(1).to(tl.int64) // T
    tap = tl.program_id(1).to(tl.int64) % T
    kh, kw = tap // KW, tap % KW
    live = q < NP
    P = OH * OW
    image, p = q // P, q % P
    n, oh, ow = first + image, p // OW, p % OW
    ACC = tl.float64 if DCOL.dtype.element_ty == tl.float64 else tl.float32
    py, px = _points(OFF, n, oh, ow, dg, tap, kh, kw, live, T, st_h, st_w, dl_h, dl_w, pd_h, pd_w,
                     so_n, so_c, so_h, so_w, ACC)
    y0, x0, ly, lx, inside, top, bottom, left, right = _corners(py, px, H, W, ZERO_PAD)
    m = tl.full((BLOCK_P,), 1.0, ACC)
    if HAS_MASK:
        m = _modulation(MASK, n, oh, ow, dg, tap, live, T, sm_n, sm_c, sm_h, sm_w, ACC)
    if WANT_CORNERS:
        entry = (((image * (C // C_DG) + dg) * T + tap) * P + p) * 4
        pixel = y0 * W + x0
        for corner in tl.static_range(4):
            if corner == 0:
                delta, weight, counts = 0, (1.0 - ly) * (1.0 - lx), top & left
            elif corner == 1:
                delta, weight, counts = 1, (1.0 - ly) * lx, top & right
            elif corner == 2:
                delta, weight, counts = W, ly * (1.0 - lx), bottom & left
            else:
                delta, weight, counts = W + 1, ly * lx, bottom & right
            tl.store(CIDX + entry + corner, tl.where(inside & counts, pixel + delta, -1).to(tl.int32), mask=live)
            tl.store(CW + entry + corner, weight * m, mask=live)
    if WANT_OFFSET or WANT_MASK:
        d_y = tl.zeros((BLOCK_P,), ACC)
        d_x = tl.zeros((BLOCK_P,), ACC)
        d_m = tl.zeros((BLOCK_P,), ACC)
        rc = tl.arange(0, BLOCK_C).to(tl.int64)
        # v1 drops the fraction in the last row and column: no derivative there. A NaN in
        # the column gradient still reaches every point (NaN times a derivative of 0).
        slope_y = inside & bottom if not ZERO_PAD else inside
        slope_x = inside & right if not ZERO_PAD else inside
        lx2, ly2 = lx[:, None], ly[:, None]
        for start in range(0, C_DG, BLOCK_C):
            c = dg * C_DG + start + rc
            both = live[:, None] & (start + rc < C_DG)[None, :]
            v00, v01, v10, v11 = _four(X, n[:, None] * sx_n + c[None, :] * sx_c, y0[:, None], x0[:, None], sx_h,
                                       sx_w, both & inside[:, None], top[:, None], bottom[:, None], left[:, None],
                                       right[:, None])
            dcol = tl.load(DCOL + (image[:, None] * C * T + c[None, :] * T + tap) * P + p[:, None], mask=both,
                           other=0.0)
            dv_dy = tl.where(slope_y[:, None], (1.0 - lx2) * (v10 - v00) + lx2 * (v11 - v01), 0.0)
            dv_dx = tl.where(slope_x[:, None], (1.0 - ly2) * (v01 - v00) + ly2 * (v11 - v10), 0.0)
            d_y += tl.sum(dcol * dv_dy, axis=1)
            d_x += tl.sum(dcol * dv_dx, axis=1)
            d_m += tl.sum(dcol * ((1.0 - ly2) * ((1.0 - lx2) * v00 + lx2 * v01)
                                  + ly2 * ((1.0 - lx2) * v10 + lx2 * v11)), axis=1)
        nan_point = (py != py) | (px != px)
        if WANT_MASK:
            d_m = tl.where(nan_point, float("nan"), d_m)
            store_result(DMASK, n * sm_n + (dg * T + tap) * sm_c + oh * sm_h + ow * sm_w, d_m, live,
                         ACCUMULATE_MASK)
        if WANT_OFFSET:
            at = n * so_n + (dg * 2 * T + 2 * tap) * so_c + oh * so_h + ow * so_w
            store_result(DOFF, at, tl.where(nan_point, float("nan"), d_y * m), live, ACCUMULATE_OFFSET)
            store_result(DOFF, at + so_c, tl.where(nan_point, float("nan"), d_x * m), live, ACCUMULATE_OFFSET)


@triton.jit
def _data_grad_kernel(CIDX, CW, DCOL, DX, C, C_DG, H, W, P, T, SEGMENT, PART, BLOCK_C: tl.constexpr):
    """DX (the chunk's images, C, H, W) contiguous, zeroed or holding what to add to, in the
    compute dtype (PART elements further on per part) += the scatter of the chunk's image
    program_id(0)'s positions [s SEGMENT, (s + 1) SEGMENT) and all their taps, in order,
    into part s, each onto the four pixels ``_points_grad_kernel`` found for the channel's
    group: one program per (image, BLOCK_C channels, part s); each channel's pixels are one
    thread's."""
    image = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C).to(tl.int64)
    part = tl.program_id(2).to(tl.int64)
    live = c < C
    base = part * PART + (image * C + c) * H * W
    columns = (image * C * T + c * T) * P  # channel c's tap 0 at position 0 of the column gradient
    points = (image * (C // C_DG) + c // C_DG) * T * P * 4  # its group's tap 0 at position 0 of the corners
    for p in range(part * SEGMENT, tl.minimum(part * SEGMENT + SEGMENT, P)):
        for tap in range(0, T):
            entry = points + (tap * P + p) * 4
            d = tl.load(DCOL + columns + tap * P + p, mask=live, other=0.0)
            for corner in tl.static_range(4):
                pixel = tl.load(CIDX + entry + corner, mask=live, other=-1)
                where = live & (pixel >= 0)
                at = base + pixel
                tl.store(DX + at, tl.load(DX + at, mask=where, other=0.0)
                         + d * tl.load(CW + entry + corner, mask=live, other=0.0), mask=where)


def _check(fn: str, x, offset, mask, weight, *, kernel, stride, dilate, pad, groups: int, deformable_groups: int):
    """The output shape (N, F, OH, OW) after checking every operand against the others."""
    for name, t in (("x", x), ("offset", offset), ("weight", weight), ("mask", mask)):
        if t is None:
            continue
        check_tensor(fn, name, t)
        if t.dim() != 4 or t.dtype != x.dtype or t.device != x.device:
            raise KernelArgumentError(f"{fn}: {name} of shape {tuple(t.shape)} ({t.dtype}) must be 4-d of x's dtype "
                                      f"{x.dtype} on its device")
    for name, values, low in (("kernel", kernel, 1), ("stride", stride, 1), ("dilate", dilate, 1), ("pad", pad, 0)):
        if len(values) != 2 or min(values) < low:
            raise KernelArgumentError(f"{fn}: {name}={tuple(values)} needs 2 values >= {low}")
    batch, channels, height, width = x.shape
    filters = weight.shape[0]
    if (groups < 1 or groups > MAX_GROUPS or deformable_groups < 1 or channels % groups or filters % groups
            or channels % deformable_groups
            or tuple(weight.shape) != (filters, channels // groups, *kernel)):
        raise KernelArgumentError(f"{fn}: x has {channels} channels and weight {tuple(weight.shape)} with "
                                  f"groups={groups}, deformable_groups={deformable_groups}: the weight must be "
                                  f"(filters, channels / groups, *kernel={tuple(kernel)}), the channels and filters "
                                  f"multiples of groups, the channels of deformable_groups")
    out = [output_length(n, k, s, d, p) for n, k, s, d, p in zip((height, width), kernel, stride, dilate, pad)]
    if min(out) < 1:
        raise KernelArgumentError(f"{fn}: kernel {tuple(kernel)} dilated by {tuple(dilate)} is longer than x's "
                                  f"spatial shape {(height, width)} padded by {tuple(pad)}")
    taps = kernel[0] * kernel[1]
    for name, t, per_tap in (("offset", offset, 2), ("mask", mask, 1)):
        expected = (batch, deformable_groups * per_tap * taps, *out)
        if t is not None and tuple(t.shape) != expected:
            raise KernelArgumentError(f"{fn}: {name} must be {expected} ((N, {per_tap} x deformable groups x taps, "
                                      f"OH, OW)), got {tuple(t.shape)}")
    return (batch, filters, *out)


def _geometry(x, offset, mask, weight, kernel, stride, dilate, pad, groups, deformable_groups):
    """The scalars every kernel takes after its tensors: (C_IN, C_DG, H, W, OH, OW, KH, KW,
    strides, dilations, pads) and the strides of x, offset and mask (offset's where no mask)."""
    out_h, out_w = output_length(x.shape[2], kernel[0], stride[0], dilate[0], pad[0]), \
        output_length(x.shape[3], kernel[1], stride[1], dilate[1], pad[1])
    return [x.shape[1] // groups, x.shape[1] // deformable_groups, x.shape[2], x.shape[3], out_h, out_w, *kernel,
            *stride, *dilate, *pad, *x.stride(), *offset.stride(), *(mask if mask is not None else offset).stride()]


def plan_deformable_convolution(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor | None,
                                weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor | None, *,
                                kernel, stride, dilate, pad, groups: int = 1, deformable_groups: int = 1,
                                zero_pad: bool = False, accumulate: bool = False,
                                precision: str = "ieee") -> list[Launch]:
    """``out (+)=`` the deformable convolution of x (N, C, H, W) with weight (F, C / groups,
    KH, KW), sampled at ``offset`` (N, 2 DG KH KW, OH, OW), modulated by ``mask`` (N, DG KH
    KW, OH, OW; None for DCN v1), plus bias (F,) or None. ``zero_pad``: v2's sampling."""
    fn = "deformable_convolution"
    out_shape = _check(fn, x, offset, mask, weight, kernel=kernel, stride=stride, dilate=dilate, pad=pad,
                       groups=groups, deformable_groups=deformable_groups)
    check_bias(fn, bias, weight.shape[0], x.dtype)
    out = prepare_out(fn, "out", out, out_shape, x.dtype, x.device)
    check_writable(fn, "out", out)
    rows, cols = out.numel() // out.shape[1], weight.shape[0] // groups
    if rows == 0 or cols == 0:
        return []
    taps = weight[0].numel()
    return [Launch(_forward_kernel, _grid(rows, cols, groups),
                   [x, offset, mask if mask is not None else offset, weight, bias if bias is not None else out, out,
                    rows, cols, taps, *_geometry(x, offset, mask, weight, kernel, stride, dilate, pad, groups,
                                                 deformable_groups), *weight.stride(), *out.stride()],
                   dict(HAS_MASK=mask is not None, ZERO_PAD=zero_pad, HAS_BIAS=bias is not None,
                        ACCUMULATE=accumulate, **_options(x.dtype, precision)))]


def _per_image_scratch(shape, weight_shape, out_shape, dtype: torch.dtype,
                       deformable_groups: int) -> dict[str, tuple[tuple, torch.dtype]]:
    """One image's share of each scratch buffer of the backward, (shape without the images'
    axis, dtype)."""
    taps = weight_shape[2] * weight_shape[3]
    positions = out_shape[2] * out_shape[3]
    points = (deformable_groups, taps, positions, 4)
    wanted = {"columns": ((shape[1] * taps, positions), compute_dtype(dtype)), "corners": (points, torch.int32),
              "corner_weights": (points, compute_dtype(dtype))}
    parts = data_grad_parts(positions * taps)
    if parts > 1 or compute_dtype(dtype) != dtype:
        wanted["data_grad"] = ((parts, *shape[1:]), compute_dtype(dtype))
    return wanted


def column_images(shape, weight_shape, out_shape, dtype: torch.dtype, deformable_groups: int,
                  workspace_bytes: int, max_images: int | None = None) -> int:
    """How many images the backward works on at once (its column gradient, their sample
    points' pixels and the parts of their data gradient in scratch): as many as
    ``workspace_bytes`` holds, up to ``max_images`` (None: any), at least one."""
    per_image = sum(math.prod(each) * torch.empty((), dtype=kind).element_size() for each, kind in
                    _per_image_scratch(shape, weight_shape, out_shape, dtype, deformable_groups).values())
    return max(1, min(shape[0], workspace_bytes // max(per_image, 1), max_images or shape[0]))


def backward_scratch(shape, weight_shape, out_shape, dtype: torch.dtype, deformable_groups: int, *,
                     workspace_bytes: int = 1 << 30,
                     max_images: int | None = None) -> dict[str, tuple[tuple, torch.dtype]]:
    """The backward's scratch by name, (shape, dtype), for a chunk of images at a time: the
    column gradient ("columns"); for the data's gradient, the four pixels of each sample
    point and their weights ("corners", "corner_weights"), and where it sums in parts, those
    ((parts, chunk, C, H, W): "data_grad")."""
    chunk = column_images(shape, weight_shape, out_shape, dtype, deformable_groups, workspace_bytes, max_images)
    wanted = _per_image_scratch(shape, weight_shape, out_shape, dtype, deformable_groups)
    wanted = {name: ((chunk, *each), kind) for name, (each, kind) in wanted.items()}
    if "data_grad" in wanted:  # the parts axis first
        (_, parts, *image), kind = wanted["data_grad"]
        wanted["data_grad"] = ((parts, chunk, *image), kind)
    return wanted


def plan_deformable_convolution_backward(
        grad_out: torch.Tensor, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor | None,
        weight: torch.Tensor, grad_x: torch.Tensor | None, grad_offset: torch.Tensor | None,
        grad_mask: torch.Tensor | None, grad_weight: torch.Tensor | None, grad_bias: torch.Tensor | None, *,
        kernel, stride, dilate, pad, groups: int = 1, deformable_groups: int = 1, zero_pad: bool = False,
        accumulate=(False, False, False, False, False), scratch: dict | None = None,
        workspace_bytes: int = 1 << 30, max_images: int | None = None, precision: str = "ieee") -> list[Launch]:
    """The wanted gradients (None: not wanted) of x, offset, mask, weight and bias, each
    written or, where ``accumulate`` says so, added; ``scratch`` holds ``backward_scratch``'s
    buffers (allocated here when None: standalone use) for ``workspace_bytes`` and
    ``max_images``."""
    fn = "deformable_convolution_backward"
    out_shape = _check(fn, x, offset, mask, weight, kernel=kernel, stride=stride, dilate=dilate, pad=pad,
                       groups=groups, deformable_groups=deformable_groups)
    check_tensor(fn, "grad_out", grad_out)
    if tuple(grad_out.shape) != out_shape or grad_out.dtype != x.dtype:
        raise KernelArgumentError(f"{fn}: grad_out has shape {tuple(grad_out.shape)} ({grad_out.dtype}); expected "
                                  f"{out_shape} of x's dtype")
    if grad_mask is not None and mask is None:
        raise KernelArgumentError(f"{fn}: grad_mask is wanted but there is no mask")
    wanted_grads = [(name, g, like) for name, g, like in (("grad_x", grad_x, x), ("grad_offset", grad_offset, offset),
                                                         ("grad_mask", grad_mask, mask),
                                                         ("grad_weight", grad_weight, weight)) if g is not None]
    for name, g, like in wanted_grads:
        check_tensor(fn, name, g)
        if g.shape != like.shape or g.dtype != x.dtype:
            raise KernelArgumentError(f"{fn}: {name} has shape {tuple(g.shape)} ({g.dtype}); expected "
                                      f"{tuple(like.shape)} of x's dtype")
        check_writable(fn, name, g)
    if grad_x is not None and not grad_x.is_contiguous():
        raise KernelArgumentError(f"{fn}: grad_x must be contiguous, got strides {grad_x.stride()}")
    if grad_offset is not None and grad_offset.stride() != offset.stride():
        raise KernelArgumentError(f"{fn}: grad_offset's strides {grad_offset.stride()} must be offset's "
                                  f"{offset.stride()}")
    if grad_mask is not None and grad_mask.stride() != mask.stride():
        raise KernelArgumentError(f"{fn}: grad_mask's strides {grad_mask.stride()} must be mask's {mask.stride()}")
    options = _options(x.dtype, precision)
    geometry = _geometry(x, offset, mask, weight, kernel, stride, dilate, pad, groups, deformable_groups)
    flags = dict(HAS_MASK=mask is not None, ZERO_PAD=zero_pad)
    mask_or_offset = mask if mask is not None else offset
    filters = weight.shape[0] // groups
    taps = kernel[0] * kernel[1]
    positions = out_shape[2] * out_shape[3]
    launches = []
    if grad_out.numel() == 0:
        return launches
    if grad_weight is not None:
        cols = weight[0].numel()
        launches.append(Launch(_weight_grad_kernel, _grid(filters, cols, groups),
                               [grad_out, x, offset, mask_or_offset, grad_weight, filters, cols,
                                grad_out.numel() // grad_out.shape[1], *geometry, *grad_weight.stride(),
                                *grad_out.stride()], dict(ACCUMULATE=accumulate[3], **flags, **options)))
    if grad_bias is not None:
        launches += plan_reduce(grad_out, grad_bias, "sum", [0, 2, 3], accumulate=accumulate[4])
    if grad_x is None and grad_offset is None and grad_mask is None:
        return launches
    wanted = backward_scratch(tuple(x.shape), tuple(weight.shape), out_shape, x.dtype, deformable_groups,
                              workspace_bytes=workspace_bytes, max_images=max_images)
    if scratch is None:
        scratch = {name: torch.empty(shape, dtype=dtype, device=x.device) for name, (shape, dtype) in wanted.items()}
    for name in ("columns", "corners", "corner_weights"):
        given = scratch.get(name)
        if name in wanted and (given is None or (tuple(given.shape), given.dtype) != wanted[name]
                               or not given.is_contiguous()):
            got = "none" if given is None else f"{tuple(given.shape)} {given.dtype}"
            raise KernelArgumentError(f"{fn}: {name} needs contiguous scratch {wanted[name]}, got {got}")
    columns, corners, corner_weights = scratch["columns"], scratch.get("corners"), scratch.get("corner_weights")
    chunk = columns.shape[0]
    parts = data_grad_parts(positions * taps)
    block_c = max(WARP, min(triton.next_power_of_2(x.shape[1]), 4 * WARP))
    (c_in, c_dg, height, width, out_h, out_w, _, kw, *spatial) = geometry[:14]
    offset_and_mask_strides = geometry[18:]

    wanted_parts = wanted.get("data_grad")
    image_size = x[0].numel()
    launches_of_chunks = []
    for first in range(0, x.shape[0], chunk):
        images = min(chunk, x.shape[0] - first)
        launches_of_chunks.append(Launch(_column_grad_kernel, _grid(c_in * taps, images * positions, groups),
                                         [weight, grad_out, columns, c_in * taps, images * positions, filters, c_in,
                                          x.shape[1], taps, kw, out_h, out_w, first, *weight.stride(),
                                          *grad_out.stride()], options))
        launches_of_chunks.append(Launch(
            _points_grad_kernel, (triton.cdiv(images * positions, BLOCK_P), deformable_groups * taps),
            [x, offset, mask_or_offset, columns, grad_offset if grad_offset is not None else offset,
             grad_mask if grad_mask is not None else mask_or_offset,
             corners if corners is not None else columns,
             corner_weights if corner_weights is not None else columns, first, images * positions, x.shape[1],
             c_dg, height, width, out_h, out_w, kw, taps, *spatial, *x.stride(), *offset_and_mask_strides],
            dict(**flags, WANT_OFFSET=grad_offset is not None, WANT_MASK=grad_mask is not None,
                 WANT_CORNERS=grad_x is not None, ACCUMULATE_OFFSET=accumulate[1], ACCUMULATE_MASK=accumulate[2],
                 BLOCK_P=BLOCK_P, BLOCK_C=BLOCK_C)))
        if grad_x is None:
            continue
        # the chunk's images of the data gradient, and its parts in the front of the parts' scratch
        target = grad_x[first:first + images]
        parts_wanted = parts_scratch = None
        if wanted_parts is not None:
            parts_wanted = ((parts, images, *x.shape[1:]), wanted_parts[1])
            parts_scratch = scratch["data_grad"].view(-1)[:parts * images * image_size].view(parts_wanted[0])
        launches_of_chunks += plan_in_parts(
            fn, target, parts_scratch, parts_wanted, parts, accumulate[0],
            f"sampled at {positions} positions of {taps} taps",
            lambda into, images=images: [Launch(
                _data_grad_kernel, (images, triton.cdiv(x.shape[1], block_c), parts),
                [corners, corner_weights, columns, into, x.shape[1], c_dg, height, width, positions, taps,
                 triton.cdiv(positions, parts), images * image_size], dict(BLOCK_C=block_c, num_warps=1))])
    return launches + launches_of_chunks


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    if large:  # a DCN layer of a detector's last stage: 3x3 over 25x42 with 512 channels, batch 2
        x, w = torch.empty(2, 512, 25, 42, dtype=dtype), torch.empty(512, 512, 3, 3, dtype=dtype)
        geometry = dict(kernel=(3, 3), stride=(1, 1), dilate=(1, 1), pad=(1, 1))
        out_hw, dgroups = (25, 42), 1
    else:
        x, w = torch.empty(2, 6, 7, 9, dtype=dtype), torch.empty(4, 3, 3, 2, dtype=dtype)
        geometry = dict(kernel=(3, 2), stride=(2, 1), dilate=(1, 2), pad=(1, 0), groups=2)
        out_hw, dgroups = (4, 7), 3
    taps = w.shape[2] * w.shape[3]
    offset = torch.empty(x.shape[0], 2 * dgroups * taps, *out_hw, dtype=dtype)
    mask = torch.empty(x.shape[0], dgroups * taps, *out_hw, dtype=dtype)
    y = torch.empty(x.shape[0], w.shape[0], *out_hw, dtype=dtype)
    chosen = []
    for name, m in (("", None), (" modulated", mask)):
        forward = plan_deformable_convolution(x, offset, m, w, None, y, **geometry, deformable_groups=dgroups,
                                              zero_pad=m is not None)[0]
        backward = plan_deformable_convolution_backward(
            y, x, offset, m, w, torch.empty_like(x), torch.empty_like(offset), None if m is None else m.clone(),
            torch.empty_like(w), None, **geometry, deformable_groups=dgroups, zero_pad=m is not None)
        chosen.append((f"deformable convolution{name}", forward))
        for launch in backward:
            what = {_weight_grad_kernel: "weight gradient", _column_grad_kernel: "column gradient",
                    _points_grad_kernel: "offset gradient", _data_grad_kernel: "data gradient"}.get(launch.kernel)
            if what and not any(label.endswith(f"{name} {what}") for label, _ in chosen):
                chosen.append((f"deformable convolution{name} {what}", launch))
    return chosen
