"""Convolution (MXNet's, cross-correlation as every framework computes it) of 1-, 2- or 3-d
data in NC(D)(H)W layout, as implicit GEMMs: no im2col buffer is ever written.

Every shape is viewed as 3-d (a 1-d convolution is a 3-d one over depth 1 and height 1), so
one kernel of each kind serves them all:

- forward: ``y[n, o, od, oh, ow] = sum over (c, kd, kh, kw) of x[n, c, od*s - p + kd*d, ...]
  * w[o, c, kd, kh, kw] (+ bias[o])``, a GEMM of (output positions) x (filters) over
  (channels x kernel taps); the x tile is gathered through the window's arithmetic, zeros
  where the window reaches into the padding;
- input gradient: ``dx[n, c, i...] = sum over (o, k...) of dy[n, o, (i + p - k*d)/s ...]
  * w[o, c, k...]``, taken only where that position is a whole output position inside the
  output (a stride of 2 visits each tap for half of the rows: the masked half costs
  products, never a wrong sum);
- weight gradient: ``dw[o, c, k...] = sum over (n, output positions) of dy[...] * x[...]``,
  one program per tile of the weight, reducing over every output position in a fixed order:
  the same bits every run, no atomics;
- the bias gradient is the reduction kernel's sum of dy over all axes but the channels.

Groups (``num_group``) are the grid's second axis, each a GEMM of its own channels. The
tiles, the autotuned configs and the dtype rules are FullyConnected's: float32 exact unless
``precision="tf32"``, float16/bfloat16 on tensor cores accumulating in float32, float64 in
float64. Every operand is read through its strides.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import INTERPRET, KernelArgumentError, Launch, check_tensor, check_writable, prepare_out, store_result
from .fully_connected import PRECISIONS, _autotune, _mma, _operand, _tile
from .reduce import plan_reduce

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_convolution.py")
MAX_GROUPS = 65535  # a CUDA grid's second axis


def output_length(length: int, kernel: int, stride: int, dilate: int, pad: int) -> int:
    """Output positions along one axis (MXNet's and every framework's formula); < 1 when the
    dilated kernel is longer than the padded data."""
    return (length + 2 * pad - dilate * (kernel - 1) - 1) // stride + 1


def as_volume(t: torch.Tensor) -> torch.Tensor:
    """A (N, C, *spatial) tensor of 1 to 3 spatial axes as a 5-d view (N, C, D, H, W)."""
    while t.dim() < 5:
        t = t.unsqueeze(2)
    return t


def volume_geometry(values, spatial: int, fill: int) -> tuple[int, int, int]:
    """A per-axis parameter of ``spatial`` axes as (D, H, W), ``fill`` on the axes added."""
    return (fill,) * (3 - spatial) + tuple(values)


@triton.jit
def _split3(i, A, B):
    """(i // (A*B), (i // B) % A, i % B): a flat index over (?, A, B) as its three parts."""
    return i // (A * B), (i // B) % A, i % B


@_autotune(restore=["Y"])
@triton.jit
def _conv_forward_kernel(X, Wt, Bias, Y, M, N, K, C_IN, D, H, W, OD, OH, OW, KD, KH, KW,
                         st_d, st_h, st_w, dl_d, dl_h, dl_w, pd_d, pd_h, pd_w,
                         sx_n, sx_c, sx_d, sx_h, sx_w, sk_o, sk_i, sk_d, sk_h, sk_w,
                         sy_n, sy_c, sy_d, sy_h, sy_w,
                         HAS_BIAS: tl.constexpr, ACCUMULATE: tl.constexpr, PRECISION: tl.constexpr,
                         UPCAST: tl.constexpr,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    """One (output positions) x (filters) tile of group program_id(1): M = N*OD*OH*OW rows,
    N = filters per group, K = C_IN*KD*KH*KW taps."""
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    group = tl.program_id(1).to(tl.int64)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K).to(tl.int64)
    nd, oh, ow = _split3(rm, OH, OW)
    n, od = nd // OD, nd % OD
    x_rows = X + n * sx_n + group * C_IN * sx_c
    filters = group * N + rn
    d0, h0, w0 = od * st_d - pd_d, oh * st_h - pd_h, ow * st_w - pd_w
    ACC = tl.float64 if Y.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_M, BLOCK_N), ACC)
    for start in range(0, K, BLOCK_K):
        kk = start + rk
        cd, kh, kw = _split3(kk, KH, KW)
        c, kd = cd // KD, cd % KD
        di = d0[:, None] + (kd * dl_d)[None, :]
        hi = h0[:, None] + (kh * dl_h)[None, :]
        wi = w0[:, None] + (kw * dl_w)[None, :]
        inside = (di >= 0) & (di < D) & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
        x_mask = inside & (rm < M)[:, None] & (kk < K)[None, :]
        x = tl.load(x_rows[:, None] + c[None, :] * sx_c + di * sx_d + hi * sx_h + wi * sx_w, mask=x_mask, other=0.0)
        w_taps = c * sk_i + kd * sk_d + kh * sk_h + kw * sk_w
        w = tl.load(Wt + w_taps[:, None] + filters[None, :] * sk_o, mask=(kk < K)[:, None] & (rn < N)[None, :],
                    other=0.0)
        acc = _mma(_operand(x, UPCAST), _operand(w, UPCAST), acc, PRECISION)
    if HAS_BIAS:
        acc += tl.load(Bias + filters, mask=rn < N, other=0.0).to(ACC)[None, :]
    y = Y + (n * sy_n + od * sy_d + oh * sy_h + ow * sy_w)[:, None] + filters[None, :] * sy_c
    store_result(y, 0, acc, (rm < M)[:, None] & (rn < N)[None, :], ACCUMULATE)


@triton.jit
def _output_of_tap(i, k, pad, dilate, stride, outputs):
    """(does an output position read input position i through tap k, which one): the one at
    (i + pad - k*dilate) / stride where that is whole and inside the output. Negative
    numerators are masked before dividing (// rounds them differently compiled and
    interpreted)."""
    raw = i + pad - k * dilate
    num = tl.maximum(raw, 0)
    return (raw >= 0) & (num % stride == 0) & (num // stride < outputs), num // stride


@triton.jit
def _finite(v):
    return (v == v) & (tl.abs(v) < float("inf"))


@_autotune(restore=["DX"])
@triton.jit
def _conv_input_grad_kernel(DY, Wt, Bias, DX, M, N, K, C_OUT, D, H, W, OD, OH, OW, KD, KH, KW,
                            st_d, st_h, st_w, dl_d, dl_h, dl_w, pd_d, pd_h, pd_w,
                            sx_n, sx_c, sx_d, sx_h, sx_w, sk_o, sk_i, sk_d, sk_h, sk_w,
                            sy_n, sy_c, sy_d, sy_h, sy_w,
                            HAS_BIAS: tl.constexpr, ACCUMULATE: tl.constexpr, PRECISION: tl.constexpr,
                            UPCAST: tl.constexpr,
                            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                            GROUP_M: tl.constexpr):
    """One (input positions) x (channels) tile of dx for group program_id(1): M = N*D*H*W
    rows, N = channels per group, K = C_OUT*KD*KH*KW (filters per group x taps).

    A (position, tap) pair that no output position joins (a stride skips it, or it would be
    an output past the edge) takes dy as 0, but 0 times a NaN or infinite weight is NaN
    where the math adds nothing: the product runs on the weight with its non-finite
    entries as 0, and a tile holding any adds them back tap by tap, for the pairs that are
    joined only.

    The same product is a transposed convolution's forward (``ops/deconvolution.py``), which
    adds a bias (``HAS_BIAS``) per channel of its output."""
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    group = tl.program_id(1).to(tl.int64)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K).to(tl.int64)
    nd, hi, wi = _split3(rm, H, W)
    n, di = nd // D, nd % D
    dy_rows = DY + n * sy_n + group * C_OUT * sy_c
    w_cols = Wt + group * C_OUT * sk_o + rn * sk_i
    ACC = tl.float64 if DX.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_M, BLOCK_N), ACC)
    for start in range(0, K, BLOCK_K):
        kk = start + rk
        o_kd, kh, kw = _split3(kk, KH, KW)
        o, kd = o_kd // KD, o_kd % KD
        hit_d, od = _output_of_tap(di[:, None], kd[None, :], pd_d, dl_d, st_d, OD)
        hit_h, oh = _output_of_tap(hi[:, None], kh[None, :], pd_h, dl_h, st_h, OH)
        hit_w, ow = _output_of_tap(wi[:, None], kw[None, :], pd_w, dl_w, st_w, OW)
        dy_mask = hit_d & hit_h & hit_w & (rm < M)[:, None] & (kk < K)[None, :]
        dy = tl.load(dy_rows[:, None] + o[None, :] * sy_c + od * sy_d + oh * sy_h + ow * sy_w, mask=dy_mask,
                     other=0.0)
        w_taps = o * sk_o + kd * sk_d + kh * sk_h + kw * sk_w
        w = tl.load(w_cols[None, :] + w_taps[:, None], mask=(kk < K)[:, None] & (rn < N)[None, :], other=0.0)
        finite = _finite(w)
        acc = _mma(_operand(dy, UPCAST), _operand(tl.where(finite, w, 0.0), UPCAST), acc, PRECISION)
        if tl.max(tl.where(finite, 0, 1)) > 0:
            for k in range(start, tl.minimum(start + BLOCK_K, K)):
                k_o_kd, k_h, k_w = _split3(k, KH, KW)
                k_o, k_d = k_o_kd // KD, k_o_kd % KD
                on_d, at_d = _output_of_tap(di, k_d, pd_d, dl_d, st_d, OD)
                on_h, at_h = _output_of_tap(hi, k_h, pd_h, dl_h, st_h, OH)
                on_w, at_w = _output_of_tap(wi, k_w, pd_w, dl_w, st_w, OW)
                joined = on_d & on_h & on_w & (rm < M)
                g = tl.load(dy_rows + k_o * sy_c + at_d * sy_d + at_h * sy_h + at_w * sy_w, mask=joined,
                            other=0.0).to(ACC)
                tap = tl.load(w_cols + k_o * sk_o + k_d * sk_d + k_h * sk_h + k_w * sk_w, mask=rn < N,
                              other=0.0).to(ACC)
                acc += tl.where(joined[:, None] & ~_finite(tap)[None, :], g[:, None] * tap[None, :], 0.0)
    if HAS_BIAS:
        acc += tl.load(Bias + group * N + rn, mask=rn < N, other=0.0).to(ACC)[None, :]
    dx = DX + (n * sx_n + di * sx_d + hi * sx_h + wi * sx_w)[:, None] + (group * N + rn)[None, :] * sx_c
    store_result(dx, 0, acc, (rm < M)[:, None] & (rn < N)[None, :], ACCUMULATE)


@_autotune(restore=["DW"])
@triton.jit
def _conv_weight_grad_kernel(DY, X, DW, M, N, K, C_IN, D, H, W, OD, OH, OW, KD, KH, KW,
                             st_d, st_h, st_w, dl_d, dl_h, dl_w, pd_d, pd_h, pd_w,
                             sx_n, sx_c, sx_d, sx_h, sx_w, sk_o, sk_i, sk_d, sk_h, sk_w,
                             sy_n, sy_c, sy_d, sy_h, sy_w,
                             ACCUMULATE: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr,
                             BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                             GROUP_M: tl.constexpr):
    """One (filters) x (channels x taps) tile of dw for group program_id(1): M = filters per
    group, N = C_IN*KD*KH*KW, K = N*OD*OH*OW output positions, reduced in order."""
    pid_m, pid_n = _tile(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
    group = tl.program_id(1).to(tl.int64)
    rm = pid_m.to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n.to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K).to(tl.int64)
    filters = group * M + rm
    cd, kh, kw = _split3(rn, KH, KW)
    c, kd = cd // KD, cd % KD
    x_cols = X + (group * C_IN + c) * sx_c
    ACC = tl.float64 if DW.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.zeros((BLOCK_M, BLOCK_N), ACC)
    for start in range(0, K, BLOCK_K):
        kk = start + rk
        nd, oh, ow = _split3(kk, OH, OW)
        n, od = nd // OD, nd % OD
        dy = tl.load(DY + (n * sy_n + od * sy_d + oh * sy_h + ow * sy_w)[None, :] + filters[:, None] * sy_c,
                     mask=(rm < M)[:, None] & (kk < K)[None, :], other=0.0)
        di = (od * st_d - pd_d)[:, None] + (kd * dl_d)[None, :]
        hi = (oh * st_h - pd_h)[:, None] + (kh * dl_h)[None, :]
        wi = (ow * st_w - pd_w)[:, None] + (kw * dl_w)[None, :]
        inside = (di >= 0) & (di < D) & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
        x = tl.load(x_cols[None, :] + (n * sx_n)[:, None] + di * sx_d + hi * sx_h + wi * sx_w,
                    mask=inside & (kk < K)[:, None] & (rn < N)[None, :], other=0.0)
        acc = _mma(_operand(dy, UPCAST), _operand(x, UPCAST), acc, PRECISION)
    dw = DW + filters[:, None] * sk_o + (c * sk_i + kd * sk_d + kh * sk_h + kw * sk_w)[None, :]
    store_result(dw, 0, acc, (rm < M)[:, None] & (rn < N)[None, :], ACCUMULATE)


def check_operands(fn: str, x: torch.Tensor, weight: torch.Tensor, weight_layout: str, **per_axis) -> int:
    """x (batch, channels, 1 to 3 spatial axes) and a weight of its rank, dtype and device
    laid out as ``weight_layout`` says; each of ``per_axis`` one value per spatial axis, at
    least 0 for pad and adj, 1 for the others. The number of spatial axes."""
    check_tensor(fn, "x", x)
    check_tensor(fn, "weight", weight)
    spatial = x.dim() - 2
    if not 1 <= spatial <= 3:
        raise KernelArgumentError(f"{fn}: x must be (batch, channels, 1 to 3 spatial axes), got shape "
                                  f"{tuple(x.shape)}")
    if weight.dim() != x.dim() or x.dtype != weight.dtype or x.device != weight.device:
        raise KernelArgumentError(f"{fn}: weight of shape {tuple(weight.shape)} ({weight.dtype}) must be "
                                  f"{weight_layout} of x's rank and dtype ({x.dtype})")
    for name, values in per_axis.items():
        low = 0 if name in ("pad", "adj") else 1
        if len(values) != spatial or any(v < low for v in values):
            raise KernelArgumentError(f"{fn}: {name}={tuple(values)} needs {spatial} value(s) >= {low}")
    return spatial


def check_bias(fn: str, bias: torch.Tensor | None, filters: int, dtype: torch.dtype) -> None:
    """A bias, where given, of one value per filter in the data's dtype (DeformableConvolution's too)."""
    if bias is not None:
        check_tensor(fn, "bias", bias)
        if tuple(bias.shape) != (filters,) or bias.dtype != dtype:
            raise KernelArgumentError(f"{fn}: bias has shape {tuple(bias.shape)} ({bias.dtype}); expected "
                                      f"({filters},) of x's dtype {dtype}")


def _geometry(fn: str, x: torch.Tensor, weight: torch.Tensor, stride, dilate, pad, groups: int):
    """Checked (N, C, D, H, W) views of x and the weight, and the launch's common scalars."""
    spatial = check_operands(fn, x, weight, "(filters, channels / groups, *kernel)", stride=stride, dilate=dilate,
                             pad=pad)
    filters, per_group = weight.shape[:2]
    if groups < 1 or groups > MAX_GROUPS or x.shape[1] != per_group * groups or filters % groups:
        raise KernelArgumentError(f"{fn}: x has {x.shape[1]} channels and weight {tuple(weight.shape)} with "
                                  f"groups={groups}: channels must be groups x weight.shape[1] and filters a "
                                  f"multiple of groups")
    out_spatial = [output_length(n, k, s, d, p)
                   for n, k, s, d, p in zip(x.shape[2:], weight.shape[2:], stride, dilate, pad)]
    if min(out_spatial) < 1:
        raise KernelArgumentError(f"{fn}: kernel {tuple(weight.shape[2:])} dilated by {tuple(dilate)} is longer "
                                  f"than x's spatial shape {tuple(x.shape[2:])} padded by {tuple(pad)}")
    scalars = [*as_volume(x).shape[2:], *volume_geometry(out_spatial, spatial, 1),
               *as_volume(weight).shape[2:], *volume_geometry(stride, spatial, 1),
               *volume_geometry(dilate, spatial, 1), *volume_geometry(pad, spatial, 0)]
    return (x.shape[0], filters, *out_spatial), scalars


def _grid(rows: int, cols: int, groups: int):
    def grid(meta):
        return (triton.cdiv(rows, meta["BLOCK_M"]) * triton.cdiv(cols, meta["BLOCK_N"]), groups)
    return grid


def _options(dtype: torch.dtype, precision: str) -> dict:
    if precision not in PRECISIONS:
        raise KernelArgumentError(f"convolution: precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    return dict(PRECISION=precision if dtype == torch.float32 else "ieee",
                UPCAST=INTERPRET and dtype == torch.bfloat16)


def plan_convolution(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor | None,
                     *, stride, dilate, pad, groups: int = 1, accumulate: bool = False,
                     precision: str = "ieee") -> list[Launch]:
    """``out (+)= conv(x, weight) + bias``: x (N, C, *spatial), weight (filters, C / groups,
    *kernel), bias (filters,) or None; ``stride``/``dilate``/``pad`` one value per spatial axis."""
    fn = "convolution"
    out_shape, scalars = _geometry(fn, x, weight, stride, dilate, pad, groups)
    check_bias(fn, bias, weight.shape[0], x.dtype)
    out = prepare_out(fn, "out", out, out_shape, x.dtype, x.device)
    check_writable(fn, "out", out)
    x5, w5, y5 = as_volume(x), as_volume(weight), as_volume(out)
    rows, cols, taps = out.numel() // out.shape[1], weight.shape[0] // groups, w5[0].numel()
    return [Launch(_conv_forward_kernel, _grid(rows, cols, groups),
                   [x5, w5, bias if bias is not None else out, y5, rows, cols, taps, weight.shape[1], *scalars,
                    *x5.stride(), *w5.stride(), *y5.stride()],
                   dict(HAS_BIAS=bias is not None, ACCUMULATE=accumulate, **_options(x.dtype, precision)))]


def plan_convolution_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                              grad_x: torch.Tensor | None, grad_weight: torch.Tensor | None,
                              grad_bias: torch.Tensor | None, *, stride, dilate, pad, groups: int = 1,
                              accumulate=(False, False, False), precision: str = "ieee") -> list[Launch]:
    """The gradients of ``conv(x, weight) + bias`` that are wanted (None: not wanted), each
    written or, where ``accumulate`` says so, added."""
    fn = "convolution_backward"
    out_shape, scalars = _geometry(fn, x, weight, stride, dilate, pad, groups)
    check_tensor(fn, "grad_out", grad_out)
    if tuple(grad_out.shape) != out_shape or grad_out.dtype != x.dtype:
        raise KernelArgumentError(f"{fn}: grad_out has shape {tuple(grad_out.shape)} ({grad_out.dtype}); "
                                  f"expected {out_shape} of x's dtype")
    options = _options(x.dtype, precision)
    x5, w5, dy5 = as_volume(x), as_volume(weight), as_volume(grad_out)
    filters = weight.shape[0] // groups
    launches = []
    if grad_x is not None:
        grad_x = prepare_out(fn, "grad_x", grad_x, x.shape, x.dtype, x.device)
        dx5 = as_volume(grad_x)
        rows = x.numel() // x.shape[1]
        launches.append(Launch(_conv_input_grad_kernel, _grid(rows, weight.shape[1], groups),
                               [dy5, w5, dx5, dx5, rows, weight.shape[1], filters * w5[0, 0].numel(), filters,
                                *scalars, *dx5.stride(), *w5.stride(), *dy5.stride()],
                               dict(HAS_BIAS=False, ACCUMULATE=accumulate[0], **options)))
    if grad_weight is not None:
        grad_weight = prepare_out(fn, "grad_weight", grad_weight, weight.shape, x.dtype, x.device)
        dw5 = as_volume(grad_weight)
        taps = w5[0].numel()
        launches.append(Launch(_conv_weight_grad_kernel, _grid(filters, taps, groups),
                               [dy5, x5, dw5, filters, taps, grad_out.numel() // grad_out.shape[1], weight.shape[1],
                                *scalars, *x5.stride(), *dw5.stride(), *dy5.stride()],
                               dict(ACCUMULATE=accumulate[1], **options)))
    if grad_bias is not None:
        launches += plan_reduce(grad_out, grad_bias, "sum", [0, *range(2, grad_out.dim())], accumulate=accumulate[2])
    return launches


def convolution(x, weight, bias=None, *, stride=None, dilate=None, pad=None, groups=1, precision="ieee"):
    """Standalone convolution (defaults: stride and dilation 1, no padding)."""
    spatial = x.dim() - 2
    launches = plan_convolution(x, weight, bias, None, stride=stride or (1,) * spatial,
                                dilate=dilate or (1,) * spatial, pad=pad or (0,) * spatial, groups=groups,
                                precision=precision)
    for launch in launches:
        launch()
    return launches[0].args[3].reshape(launches[0].args[3].shape[:2] + launches[0].args[3].shape[5 - spatial:])


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    if large:  # a ResNet stage: 3x3 over 56x56 with 64 channels, batch 32
        x, w = torch.empty(32, 64, 56, 56, dtype=dtype), torch.empty(64, 64, 3, 3, dtype=dtype)
        geometry = dict(stride=(1, 1), dilate=(1, 1), pad=(1, 1))
    else:
        x, w = torch.empty(2, 6, 7, 9, dtype=dtype), torch.empty(4, 3, 3, 2, dtype=dtype)
        geometry = dict(stride=(2, 1), dilate=(1, 2), pad=(1, 0), groups=2)
    b = torch.empty(w.shape[0], dtype=dtype)
    forward = plan_convolution(x, w, b, None, **geometry)[0]
    y = forward.args[3].reshape(forward.args[3].shape[:2] + forward.args[3].shape[3:])
    backward = plan_convolution_backward(y, x, w, torch.empty_like(x), torch.empty_like(w), None, **geometry,
                                         accumulate=(True, False, False))
    return [("convolution", forward), ("convolution input gradient accumulating", backward[0]),
            ("convolution weight gradient", backward[1])]
