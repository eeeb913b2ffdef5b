"""Pooling (MXNet's) of 1-, 2- or 3-d data in NC(D)(H)W layout: max, average, sum and
Lp pooling over windows, viewed as 3-d as convolution's are (``convolution.as_volume``).

Forward: each program takes a block of output elements and walks its window, tap by tap,
reading only positions inside the data (padding is never read: a padded position adds
nothing to a sum and is never a maximum).

- ``max``: the largest element; the first NaN if the window holds one (NaN in gives NaN
  out, where MXNet 1.9.1 skips NaN), else the first of ties, in the window's row-major
  order. A training forward keeps the chosen element's position (one int32 per output:
  ``plan_pooling(..., argmax=)``) for backward.
- ``avg``: the sum over the window divided by its size: with ``count_include_pad`` the
  window clipped to the padded data (MXNet's rule: a window of the ``full`` convention that
  passes the padding counts only up to its end), else only the data's positions.
- ``sum``; ``lp`` with p of 1, 2 or 3 as MXNet computes it: ``sum(x)``, ``sqrt(sum(x^2))``,
  ``cbrt(sum(x^3))`` (no absolute values, as MXNet).

Backward gathers: each program takes a block of input elements and visits the few windows
that hold each one (at most ceil(kernel / stride) per axis), adding their gradients in a
fixed order: the same bits every run, no atomics. Max pooling adds the gradient of the
windows whose kept position is this element; Lp pooling's gradient is ``dy * (x / y)^(p-1)``
(0 where y is 0, as MXNet).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    prepare_out,
    store_result,
)
from .convolution import as_volume, volume_geometry

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_pooling.py")
KINDS = ("max", "avg", "sum", "lp")
P_VALUES = (1, 2, 3)


@triton.jit
def _split_position(i, OD, OH, OW):
    """A flat index over (N*C, OD, OH, OW) as its four parts."""
    return i // (OD * OH * OW), (i // (OH * OW)) % OD, (i // OW) % OH, i % OW


@triton.jit
def _cbrt(s):
    """The real cube root (negative for a negative sum), to the last bit after one Newton step."""
    a = tl.abs(s)
    # log(0), the step's 0/0 and inf - inf are kept out of every lane, also those not taken:
    # 0, inf and NaN are their own cube roots.
    some = (a > 0) & (a < float("inf"))
    r = tl.where(some, tl.exp(tl.log(tl.where(some, a, 1.0)) / 3.0), a)
    r = tl.where(some, r - (r * r * r - a) / tl.where(some, 3.0 * r * r, 1.0), r)
    return tl.where(s < 0, -r, r)


@triton.jit
def _window_size(od, oh, ow, D, H, W, KD, KH, KW, st_d, st_h, st_w, pd_d, pd_h, pd_w, COUNT_PAD: tl.constexpr):
    """How many positions average pooling divides a window's sum by."""
    d0, h0, w0 = od * st_d - pd_d, oh * st_h - pd_h, ow * st_w - pd_w
    d1, h1, w1 = tl.minimum(d0 + KD, D + pd_d), tl.minimum(h0 + KH, H + pd_h), tl.minimum(w0 + KW, W + pd_w)
    if not COUNT_PAD:
        d0, h0, w0 = tl.maximum(d0, 0), tl.maximum(h0, 0), tl.maximum(w0, 0)
        d1, h1, w1 = tl.minimum(d1, D), tl.minimum(h1, H), tl.minimum(w1, W)
    return (d1 - d0) * (h1 - h0) * (w1 - w0)


@triton.jit
def _pool_forward_kernel(X, Y, ARGMAX, total, C, D, H, W, OD, OH, OW, KD, KH, KW,
                         st_d, st_h, st_w, pd_d, pd_h, pd_w,
                         sx_n, sx_c, sx_d, sx_h, sx_w, sy_n, sy_c, sy_d, sy_h, sy_w,
                         KIND: tl.constexpr, P: tl.constexpr, COUNT_PAD: tl.constexpr, KEEP_ARGMAX: tl.constexpr,
                         ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = offs < total
    nc, od, oh, ow = _split_position(offs, OD, OH, OW)
    n, c = nc // C, nc % C
    x_base = X + n * sx_n + c * sx_c
    d0, h0, w0 = od * st_d - pd_d, oh * st_h - pd_h, ow * st_w - pd_w
    ACC = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    acc = tl.full((BLOCK,), float("-inf"), ACC) if KIND == "max" else tl.zeros((BLOCK,), ACC)
    best = tl.full((BLOCK,), -1, tl.int32)
    for kd in range(0, KD):
        di = d0 + kd
        for kh in range(0, KH):
            hi = h0 + kh
            for kw in range(0, KW):
                wi = w0 + kw
                inside = live & (di >= 0) & (di < D) & (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
                # Widened as loaded (exact; bfloat16 is bit patterns to the interpreter's arithmetic).
                v = tl.load(x_base + di * sx_d + hi * sx_h + wi * sx_w, mask=inside, other=0.0).to(ACC)
                if KIND == "max":
                    # The first NaN, else the first of the largest: a later element must be
                    # larger, or the first NaN after numbers.
                    take = inside & ((best < 0) | (v > acc) | ((v != v) & (acc == acc)))
                    acc = tl.where(take, v, acc)
                    best = tl.where(take, ((di * H + hi) * W + wi).to(tl.int32), best)
                elif KIND == "lp":
                    if P == 1:
                        acc += v
                    elif P == 2:
                        acc += v * v
                    else:
                        acc += v * v * v
                else:
                    acc += v
    if KIND == "max":
        result = acc
        if KEEP_ARGMAX:
            tl.store(ARGMAX + offs, best, mask=live)
    elif KIND == "avg":
        result = acc / _window_size(od, oh, ow, D, H, W, KD, KH, KW, st_d, st_h, st_w, pd_d, pd_h, pd_w,
                                    COUNT_PAD).to(ACC)
    elif KIND == "lp" and P == 2:
        result = tl.sqrt(acc)
    elif KIND == "lp" and P == 3:
        result = _cbrt(acc)
    else:
        result = acc
    store_result(Y + n * sy_n + c * sy_c + od * sy_d + oh * sy_h + ow * sy_w, 0, result, live, ACCUMULATE)


@triton.jit
def _first_window(i, pad, K, stride):
    """The first output position whose window (start o*stride - pad, K long) holds input i."""
    num = i + pad - K + 1
    return tl.where(num > 0, (tl.maximum(num, 0) + stride - 1) // stride, 0)


@triton.jit
def _pool_backward_kernel(DY, X, Y, ARGMAX, DX, total, C, D, H, W, OD, OH, OW, KD, KH, KW,
                          st_d, st_h, st_w, pd_d, pd_h, pd_w, WD, WH, WW,
                          sx_n, sx_c, sx_d, sx_h, sx_w, sy_n, sy_c, sy_d, sy_h, sy_w,
                          sg_n, sg_c, sg_d, sg_h, sg_w, sd_n, sd_c, sd_d, sd_h, sd_w,
                          KIND: tl.constexpr, P: tl.constexpr, COUNT_PAD: tl.constexpr,
                          ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """dx for a block of input elements: the sum over the (at most WD x WH x WW) windows
    holding each, in order."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = offs < total
    nc, di, hi, wi = _split_position(offs, D, H, W)
    n, c = nc // C, nc % C
    ACC = tl.float64 if DX.dtype.element_ty == tl.float64 else tl.float32
    if KIND == "lp":
        x = tl.load(X + n * sx_n + c * sx_c + di * sx_d + hi * sx_h + wi * sx_w, mask=live, other=0.0).to(ACC)
    me = ((di * H + hi) * W + wi).to(tl.int32)
    od0, oh0, ow0 = _first_window(di, pd_d, KD, st_d), _first_window(hi, pd_h, KH, st_h), \
        _first_window(wi, pd_w, KW, st_w)
    acc = tl.zeros((BLOCK,), ACC)
    for jd in range(0, WD):
        od = od0 + jd
        in_d = (od < OD) & (od * st_d - pd_d <= di)
        for jh in range(0, WH):
            oh = oh0 + jh
            in_h = in_d & (oh < OH) & (oh * st_h - pd_h <= hi)
            for jw in range(0, WW):
                ow = ow0 + jw
                hold = live & in_h & (ow < OW) & (ow * st_w - pd_w <= wi)
                g = tl.load(DY + n * sg_n + c * sg_c + od * sg_d + oh * sg_h + ow * sg_w, mask=hold,
                            other=0.0).to(ACC)
                if KIND == "max":
                    chosen = tl.load(ARGMAX + ((nc * OD + od) * OH + oh) * OW + ow, mask=hold, other=-1)
                    acc += tl.where(hold & (chosen == me), g, 0.0)
                elif KIND == "avg":
                    size = _window_size(od, oh, ow, D, H, W, KD, KH, KW, st_d, st_h, st_w, pd_d, pd_h, pd_w,
                                        COUNT_PAD)
                    acc += tl.where(hold, g / tl.maximum(size, 1).to(ACC), 0.0)
                elif KIND == "lp" and P > 1:
                    y = tl.load(Y + n * sy_n + c * sy_c + od * sy_d + oh * sy_h + ow * sy_w, mask=hold,
                                other=0.0).to(ACC)
                    ratio = tl.where(y != 0, x / tl.where(y != 0, y, 1.0), 0.0)
                    if P == 3:
                        ratio = ratio * ratio
                    acc += tl.where(hold, g * ratio, 0.0)
                else:
                    acc += g
    store_result(DX + n * sd_n + c * sd_c + di * sd_d + hi * sd_h + wi * sd_w, 0, acc, live, ACCUMULATE)


def output_length(length: int, kernel: int, stride: int, pad: int, convention: str) -> int:
    """Output positions along one axis: MXNet's ``valid`` (windows wholly inside the padded
    data) or ``full`` (a last window may pass its end) convention."""
    span = length + 2 * pad - kernel
    return (span // stride if convention == "valid" else -(-span // stride)) + 1


def empty_window(length: int, kernel: int, stride: int, pad: int, convention: str) -> bool:
    """Does some window hold no element of the data (only padding, or past the end)? The
    first starts at -pad, the last at (outputs - 1) * stride - pad."""
    last = (output_length(length, kernel, stride, pad, convention) - 1) * stride - pad
    return pad >= kernel or last >= length


def _geometry(fn: str, x: torch.Tensor, kernel, stride, pad, convention: str):
    check_tensor(fn, "x", x)
    spatial = x.dim() - 2
    if not 1 <= spatial <= 3:
        raise KernelArgumentError(f"{fn}: x must be (batch, channels, 1 to 3 spatial axes), got shape "
                                  f"{tuple(x.shape)}")
    for name, values, low in (("kernel", kernel, 1), ("stride", stride, 1), ("pad", pad, 0)):
        if len(values) != spatial or any(v < low for v in values):
            raise KernelArgumentError(f"{fn}: {name}={tuple(values)} needs {spatial} value(s) >= {low}")
    if convention not in ("valid", "full"):
        raise KernelArgumentError(f"{fn}: pooling_convention={convention!r} is not 'valid' or 'full'")
    lengths = tuple(x.shape[2:])
    if any(k > n + 2 * p for n, k, p in zip(lengths, kernel, pad)):
        raise KernelArgumentError(f"{fn}: kernel {tuple(kernel)} is longer than x's spatial shape {lengths} "
                                  f"padded by {tuple(pad)}")
    if any(empty_window(n, k, s, p, convention) for n, k, s, p in zip(lengths, kernel, stride, pad)):
        raise KernelArgumentError(f"{fn}: with kernel {tuple(kernel)}, stride {tuple(stride)}, pad {tuple(pad)} and "
                                  f"the {convention!r} convention a window of x's spatial shape {lengths} holds "
                                  "only padding")
    out = tuple(output_length(n, k, s, p, convention) for n, k, s, p in zip(lengths, kernel, stride, pad))
    scalars = [*as_volume(x).shape[2:], *volume_geometry(out, spatial, 1), *volume_geometry(kernel, spatial, 1),
               *volume_geometry(stride, spatial, 1), *volume_geometry(pad, spatial, 0)]
    return (*x.shape[:2], *out), scalars


def _kind(fn: str, kind: str, p_value) -> int:
    if kind not in KINDS:
        raise KernelArgumentError(f"{fn}: pool_type={kind!r} is not one of {', '.join(KINDS)}")
    if kind == "lp" and p_value not in P_VALUES:
        raise KernelArgumentError(f"{fn}: lp pooling needs p_value of 1, 2 or 3, got {p_value!r}")
    return p_value if kind == "lp" else 1


def plan_pooling(x: torch.Tensor, out: torch.Tensor | None, *, kind: str, kernel, stride, pad,
                 convention: str = "valid", count_include_pad: bool = True, p_value: int | None = None,
                 argmax: torch.Tensor | None = None, accumulate: bool = False) -> list[Launch]:
    """``out (+)=`` the pooling of x (N, C, *spatial) over windows ``kernel`` long every
    ``stride``, ``pad`` of padding each side; ``argmax``: int32 of the output's shape, where
    max pooling keeps each window's chosen position (for ``plan_pooling_backward``)."""
    fn = f"pooling_{kind}"
    p = _kind(fn, kind, p_value)
    out_shape, scalars = _geometry(fn, x, kernel, stride, pad, convention)
    out = prepare_out(fn, "out", out, out_shape, x.dtype, x.device)
    check_writable(fn, "out", out)
    if argmax is not None:
        argmax = prepare_out(fn, "argmax", argmax, out_shape, torch.int32, x.device)
        if kind != "max" or not argmax.is_contiguous():
            raise KernelArgumentError(f"{fn}: argmax is kept by max pooling only, in a contiguous int32 tensor")
    x5, y5 = as_volume(x), as_volume(out)
    total = out.numel()
    if total == 0:
        return []
    return [Launch(_pool_forward_kernel, (triton.cdiv(total, ELEMENTWISE_BLOCK),),
                   [x5, y5, argmax if argmax is not None else y5, total, x.shape[1], *scalars, *x5.stride(),
                    *y5.stride()],
                   dict(KIND=kind, P=p, COUNT_PAD=count_include_pad, KEEP_ARGMAX=argmax is not None,
                        ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def plan_pooling_backward(grad_out: torch.Tensor, x: torch.Tensor | None, out: torch.Tensor | None,
                          argmax: torch.Tensor | None, grad_x: torch.Tensor, *, kind: str, kernel, stride, pad,
                          convention: str = "valid", count_include_pad: bool = True, p_value: int | None = None,
                          accumulate: bool = False) -> list[Launch]:
    """``grad_x (+)=`` the gradient of ``plan_pooling``'s output: max pooling reads the kept
    ``argmax``, Lp pooling (p > 1) x and the output ``out``; the others read neither (x may
    be None: grad_x gives its shape)."""
    fn = f"pooling_{kind}_backward"
    p = _kind(fn, kind, p_value)
    if x is None:
        if kind == "lp" and p > 1:
            raise KernelArgumentError(f"{fn}: Lp pooling's gradient needs x")
        x = grad_x
    out_shape, scalars = _geometry(fn, x, kernel, stride, pad, convention)
    for name, t, dtype in (("grad_out", grad_out, x.dtype), ("out", out, x.dtype), ("argmax", argmax, torch.int32)):
        if t is not None and (tuple(t.shape) != out_shape or t.dtype != dtype):
            raise KernelArgumentError(f"{fn}: {name} has shape {tuple(t.shape)} ({t.dtype}); expected {out_shape} "
                                      f"({dtype})")
    if kind == "max" and (argmax is None or not argmax.is_contiguous()):
        raise KernelArgumentError(f"{fn}: max pooling's gradient needs the forward's contiguous argmax")
    if kind == "lp" and p > 1 and out is None:
        raise KernelArgumentError(f"{fn}: Lp pooling's gradient needs the forward's output")
    grad_x = prepare_out(fn, "grad_x", grad_x, x.shape, x.dtype, x.device)
    total = x.numel()
    if total == 0:
        return []
    x5, dy5, dx5 = as_volume(x), as_volume(grad_out), as_volume(grad_x)
    y5 = as_volume(out) if out is not None else dy5
    windows = volume_geometry([-(-k // s) for k, s in zip(kernel, stride)], x.dim() - 2, 1)
    return [Launch(_pool_backward_kernel, (triton.cdiv(total, ELEMENTWISE_BLOCK),),
                   [dy5, x5, y5, argmax if argmax is not None else dy5, dx5, total, x.shape[1], *scalars, *windows,
                    *x5.stride(), *y5.stride(), *dy5.stride(), *dx5.stride()],
                   dict(KIND=kind, P=p, COUNT_PAD=count_include_pad, ACCUMULATE=accumulate,
                        BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (32, 64, 56, 56) if large else (2, 3, 7, 6)
    x = torch.empty(shape, dtype=dtype)
    geometry = dict(kernel=(3, 3), stride=(2, 2), pad=(1, 1))
    launches = []
    for kind, p in (("max", None), ("avg", None), ("sum", None), ("lp", 2), ("lp", 3)):
        y = torch.empty(shape[:2] + tuple(output_length(n, 3, 2, 1, "valid") for n in shape[2:]), dtype=dtype)
        argmax = torch.empty(y.shape, dtype=torch.int32) if kind == "max" else None
        launches.append((f"{kind} pooling{p or ''}", plan_pooling(x, y, kind=kind, p_value=p, argmax=argmax,
                                                                  **geometry)[0]))
        launches.append((f"{kind} pooling{p or ''} gradient", plan_pooling_backward(
            y, x, y, argmax, torch.empty_like(x), kind=kind, p_value=p, **geometry)[0]))
    return launches
