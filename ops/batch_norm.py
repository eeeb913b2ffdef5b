"""BatchNorm along one axis (MXNet's): per-channel statistics over every other axis.

A contiguous tensor is seen as (outer, C, inner): channel ``c`` holds ``M = outer * inner``
elements. One program per channel walks them in blocks:

- forward with batch statistics (training): one pass for the mean, one for the biased
  variance of the deviations (two passes rather than sums of squares, which cancel
  catastrophically for data far from zero), one that writes the output; it keeps the mean
  and the reciprocal standard deviation for backward and moves the moving statistics
  toward the batch's (``moving = momentum * moving + (1 - momentum) * batch``, the biased
  variance, as MXNet);
- forward with the moving statistics (inference, ``use_global_stats``): one pass;
- backward: one pass for ``sum(dy)`` and ``sum(dy * xhat)``, one that writes ``dx``.

``fix_gamma`` uses a gamma of 1 and gives gamma a zero gradient, as MXNet. Half-precision
data computes in float32, float64 in float64; a NaN anywhere in a channel makes that
channel's statistics, and so its outputs, NaN.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    INTERPRET,
    KernelArgumentError,
    Launch,
    along_axis,
    check_contiguous_like,
    check_same,
    check_tensor,
    store,
    store_result,
    widen,
)

BLOCK = 4096 if INTERPRET else 1024
TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_batch_norm.py")


@triton.jit
def _channel_offsets(c, start, C, INNER, M, BLOCK: tl.constexpr):
    """Offsets of channel ``c``'s elements ``start .. start + BLOCK`` (of M) and their mask."""
    index = start + tl.arange(0, BLOCK).to(tl.int64)
    mask = index < M
    return (index // INNER) * C * INNER + c * INNER + index % INNER, mask


@triton.jit
def _channel_scale(GAMMA, c, FIX_GAMMA: tl.constexpr, LIKE):
    if FIX_GAMMA:
        return widen(tl.full((), 1.0, tl.float32), LIKE)
    return widen(tl.load(GAMMA + c), LIKE)


@triton.jit
def _forward_kernel(X, GAMMA, BETA, MOVING_MEAN, MOVING_VAR, Y, MEAN_OUT, INVSTD_OUT, KEPT_MEAN, KEPT_INVSTD,
                    C, INNER, M, eps: tl.float64, momentum: tl.float64, BATCH_STATS: tl.constexpr,
                    UPDATE_MOVING: tl.constexpr, FIX_GAMMA: tl.constexpr, WRITE_STATS: tl.constexpr,
                    KEEP: tl.constexpr, BLOCK: tl.constexpr):
    c = tl.program_id(0).to(tl.int64)
    if BATCH_STATS:
        total = widen(tl.zeros((BLOCK,), tl.float32), X)
        for start in range(0, M, BLOCK):
            offsets, mask = _channel_offsets(c, start, C, INNER, M, BLOCK)
            total += widen(tl.load(X + offsets, mask=mask, other=0.0), X)
        mean = tl.sum(total, axis=0) / M
        squares = widen(tl.zeros((BLOCK,), tl.float32), X)
        for start in range(0, M, BLOCK):
            offsets, mask = _channel_offsets(c, start, C, INNER, M, BLOCK)
            deviation = tl.where(mask, widen(tl.load(X + offsets, mask=mask, other=0.0), X) - mean, 0.0)
            squares += deviation * deviation
        var = tl.sum(squares, axis=0) / M
    else:
        mean = widen(tl.load(MOVING_MEAN + c), X)
        var = widen(tl.load(MOVING_VAR + c), X)
    invstd = 1.0 / tl.sqrt(var + eps.to(var.dtype))
    scale = _channel_scale(GAMMA, c, FIX_GAMMA, X) * invstd
    shift = widen(tl.load(BETA + c), X) - mean * scale
    for start in range(0, M, BLOCK):
        offsets, mask = _channel_offsets(c, start, C, INNER, M, BLOCK)
        x = widen(tl.load(X + offsets, mask=mask, other=0.0), X)
        store(Y, offsets, x * scale + shift, mask)
    if WRITE_STATS:  # output_mean_var: the mean and the reciprocal standard deviation, as MXNet's
        store(MEAN_OUT, c, mean, True)
        store(INVSTD_OUT, c, invstd, True)
    if KEEP:
        store(KEPT_MEAN, c, mean, True)
        store(KEPT_INVSTD, c, invstd, True)
    if UPDATE_MOVING:
        moving_mean = widen(tl.load(MOVING_MEAN + c), X)
        moving_var = widen(tl.load(MOVING_VAR + c), X)
        keep = momentum.to(mean.dtype)
        store(MOVING_MEAN, c, moving_mean * keep + mean * (1.0 - keep), True)
        store(MOVING_VAR, c, moving_var * keep + var * (1.0 - keep), True)


@triton.jit
def _backward_kernel(X, DY, GAMMA, MEAN, SPREAD, DX, DGAMMA, DBETA, C, INNER, M, eps: tl.float64,
                     BATCH_STATS: tl.constexpr, FIX_GAMMA: tl.constexpr, HAS_DX: tl.constexpr,
                     HAS_DGAMMA: tl.constexpr, HAS_DBETA: tl.constexpr, ACC_DX: tl.constexpr,
                     ACC_DGAMMA: tl.constexpr, ACC_DBETA: tl.constexpr, BLOCK: tl.constexpr):
    """``MEAN``/``SPREAD``: the kept mean and reciprocal std (batch statistics), or the moving
    mean and variance (``use_global_stats``)."""
    c = tl.program_id(0).to(tl.int64)
    mean = widen(tl.load(MEAN + c), X)
    if BATCH_STATS:
        invstd = widen(tl.load(SPREAD + c), X)
    else:
        var = widen(tl.load(SPREAD + c), X)
        invstd = 1.0 / tl.sqrt(var + eps.to(var.dtype))
    sum_dy = widen(tl.zeros((BLOCK,), tl.float32), X)
    sum_dy_xhat = widen(tl.zeros((BLOCK,), tl.float32), X)
    for start in range(0, M, BLOCK):
        offsets, mask = _channel_offsets(c, start, C, INNER, M, BLOCK)
        dy = widen(tl.load(DY + offsets, mask=mask, other=0.0), X)
        xhat = (widen(tl.load(X + offsets, mask=mask, other=0.0), X) - mean) * invstd
        sum_dy += dy
        sum_dy_xhat += tl.where(mask, dy * xhat, 0.0)
    total_dy = tl.sum(sum_dy, axis=0)
    total_dy_xhat = tl.sum(sum_dy_xhat, axis=0)
    if HAS_DBETA:
        store_result(DBETA, c, total_dy, True, ACC_DBETA)
    if HAS_DGAMMA:  # a fixed gamma takes no part: its gradient is exactly 0, whatever the data holds
        if FIX_GAMMA:
            store_result(DGAMMA, c, widen(tl.zeros((), tl.float32), X), True, ACC_DGAMMA)
        else:
            store_result(DGAMMA, c, total_dy_xhat, True, ACC_DGAMMA)
    if HAS_DX:
        scale = _channel_scale(GAMMA, c, FIX_GAMMA, X) * invstd
        for start in range(0, M, BLOCK):
            offsets, mask = _channel_offsets(c, start, C, INNER, M, BLOCK)
            dy = widen(tl.load(DY + offsets, mask=mask, other=0.0), X)
            if BATCH_STATS:
                xhat = (widen(tl.load(X + offsets, mask=mask, other=0.0), X) - mean) * invstd
                dx = scale * (dy - total_dy / M - xhat * (total_dy_xhat / M))
            else:
                dx = scale * dy
            store_result(DX, offsets, dx, mask, ACC_DX)


def _check(fn: str, x: torch.Tensor, axis: int, **vectors: torch.Tensor | None) -> tuple[int, int, int]:
    check_tensor(fn, "data", x)
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: data must be contiguous, got strides {x.stride()}")
    if not -x.dim() <= axis < x.dim():
        raise KernelArgumentError(f"{fn}: axis={axis} is out of range for data of shape {tuple(x.shape)}")
    channels, inner, m = along_axis(tuple(x.shape), axis)
    for name, v in vectors.items():
        if v is not None:
            check_tensor(fn, name, v)
            if tuple(v.shape) != (channels,):
                raise KernelArgumentError(f"{fn}: {name} has shape {tuple(v.shape)}, expected ({channels},)")
    check_same(fn, "device", data=x, **vectors)
    return channels, inner, m


def plan_batch_norm_forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, moving_mean: torch.Tensor,
                            moving_var: torch.Tensor, out: torch.Tensor, *, axis: int, eps: float, momentum: float,
                            fix_gamma: bool, batch_stats: bool, update_moving: bool,
                            mean_out: torch.Tensor | None = None, invstd_out: torch.Tensor | None = None,
                            kept_mean: torch.Tensor | None = None,
                            kept_invstd: torch.Tensor | None = None) -> list[Launch]:
    """``out = (x - mean) / sqrt(var + eps) * gamma + beta`` per channel of ``axis``, with the
    batch's statistics (``batch_stats``; ``update_moving`` then moves the moving ones) or the
    moving ones; ``mean_out``/``invstd_out`` (output_mean_var) and ``kept_*`` (for backward)
    receive the mean and reciprocal standard deviation used."""
    fn = "batch_norm_forward"
    channels, inner, m = _check(fn, x, axis, gamma=gamma, beta=beta, moving_mean=moving_mean, moving_var=moving_var,
                                mean_out=mean_out, invstd_out=invstd_out, kept_mean=kept_mean,
                                kept_invstd=kept_invstd)
    check_contiguous_like(fn, x, out=out)
    if (mean_out is None) != (invstd_out is None) or (kept_mean is None) != (kept_invstd is None):
        raise KernelArgumentError(f"{fn}: the mean and the reciprocal std are written together or not at all")
    if channels == 0:
        return []
    return [Launch(_forward_kernel, (channels,),
                   [x, gamma, beta, moving_mean, moving_var, out, x if mean_out is None else mean_out,
                    x if invstd_out is None else invstd_out, x if kept_mean is None else kept_mean,
                    x if kept_invstd is None else kept_invstd, channels, inner, m, float(eps), float(momentum)],
                   dict(BATCH_STATS=batch_stats, UPDATE_MOVING=batch_stats and update_moving, FIX_GAMMA=fix_gamma,
                        WRITE_STATS=mean_out is not None, KEEP=kept_mean is not None, BLOCK=BLOCK))]


def plan_batch_norm_backward(x: torch.Tensor, grad_out: torch.Tensor, gamma: torch.Tensor, mean: torch.Tensor,
                             spread: torch.Tensor, grad_x: torch.Tensor | None, grad_gamma: torch.Tensor | None,
                             grad_beta: torch.Tensor | None, *, axis: int, eps: float, fix_gamma: bool,
                             batch_stats: bool, accumulate=(False, False, False)) -> list[Launch]:
    """The gradients of data, gamma and beta (each None: not wanted; ``accumulate``: add
    into them). ``mean``/``spread``: the kept mean and reciprocal std (``batch_stats``) or
    the moving mean and variance."""
    fn = "batch_norm_backward"
    channels, inner, m = _check(fn, x, axis, gamma=gamma, mean=mean, spread=spread, grad_gamma=grad_gamma,
                                grad_beta=grad_beta)
    check_contiguous_like(fn, x, grad_out=grad_out, grad_x=grad_x)
    if channels == 0 or (grad_x is None and grad_gamma is None and grad_beta is None):
        return []
    return [Launch(_backward_kernel, (channels,),
                   [x, grad_out, gamma, mean, spread, x if grad_x is None else grad_x,
                    gamma if grad_gamma is None else grad_gamma, gamma if grad_beta is None else grad_beta,
                    channels, inner, m, float(eps)],
                   dict(BATCH_STATS=batch_stats, FIX_GAMMA=fix_gamma, HAS_DX=grad_x is not None,
                        HAS_DGAMMA=grad_gamma is not None, HAS_DBETA=grad_beta is not None,
                        ACC_DX=bool(accumulate[0]), ACC_DGAMMA=bool(accumulate[1]), ACC_DBETA=bool(accumulate[2]),
                        BLOCK=BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (64, 256, 28, 28) if large else (5, 3, 7)
    channels = shape[1]
    x, dy = torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)
    v = [torch.empty(channels, dtype=dtype) for _ in range(6)]
    kept = [torch.empty(channels, dtype=torch.float64 if dtype == torch.float64 else torch.float32)
            for _ in range(2)]
    common = dict(axis=1, eps=1e-3, momentum=0.9)
    out = []
    for fix_gamma in (True, False):
        out += [(f"batch norm forward training fix_gamma={fix_gamma}", plan_batch_norm_forward(
            x, v[0], v[1], v[2], v[3], torch.empty_like(x), fix_gamma=fix_gamma, batch_stats=True, update_moving=True,
            kept_mean=kept[0], kept_invstd=kept[1], **common)[0])]
        out += [(f"batch norm grad batch statistics fix_gamma={fix_gamma}", plan_batch_norm_backward(
            x, dy, v[0], kept[0], kept[1], torch.empty_like(x), v[4], v[5], axis=1, eps=1e-3, fix_gamma=fix_gamma,
            batch_stats=True)[0])]
    out += [("batch norm forward moving statistics, mean and invstd out", plan_batch_norm_forward(
        x, v[0], v[1], v[2], v[3], torch.empty_like(x), fix_gamma=False, batch_stats=False, update_moving=False,
        mean_out=v[4], invstd_out=v[5], **common)[0])]
    out += [("batch norm grad moving statistics", plan_batch_norm_backward(
        x, dy, v[0], v[2], v[3], torch.empty_like(x), v[4], v[5], axis=1, eps=1e-3, fix_gamma=False,
        batch_stats=False)[0])]
    return out
