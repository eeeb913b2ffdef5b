"""Connectionist temporal classification (Graves et al. 2006), MXNet's ``ctc_loss``: the
negative log-probability of each sample's label sequence under every alignment of it to
the data's steps, the softmax over the data's last axis giving each step's distribution,
blanks between and around the labels (``S = 2 L + 1`` extended positions, a repeated label
needing a blank between its copies).

One program per sample, every extended position in one vector: the forward recursion
``alpha_t(s) = log p_t(ext s) + logsumexp(alpha_{t-1}(s), alpha_{t-1}(s-1),
alpha_{t-1}(s-2))`` (the last where ext s is a label other than ext s-2) steps through the
sample's steps, each row stored and read back shifted after a barrier (a vector cannot be
shifted in registers); a training forward keeps every row and each step's log-sum-exp of
the data for backward. Backward runs the beta recursion from the last step down and
writes each step's gradient ``(softmax - posterior) * head`` channel block by channel
block, the posterior of a channel summed over the positions that carry it; steps past a
sample's length get 0.

A label that is not a whole number in the alphabet (or is the blank), a length that is
not a whole number in range, or NaN in the data makes the sample's loss and gradient
NaN; an alignment that cannot exist (too few steps for the labels and the blanks their
repeats need) makes the loss inf. Where the loss is not finite, the gradient of every
channel of the sample's steps is NaN (steps past its length: 0, they do not reach the
loss; all of them where a length or label is unusable).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    compute_dtype,
    load_wide,
    store,
    store_result,
)

TESTS = ("tests/test_ctc_loss.py", "tests/test_operators.py", "tests/test_gradcheck.py")
BLOCK_C = 64  # channels a step reads at once


def positions_block(label_length: int) -> int:
    """The vector of extended positions a program holds: 2 L + 1 rounded up to a power of two."""
    return max(16, triton.next_power_of_2(2 * label_length + 1))


@triton.jit
def _logaddexp(a, b):
    """log(e^a + e^b): -inf where both are, NaN where either is."""
    top = tl.maximum(a, b)
    safe = tl.where(top == float("-inf"), 0.0, top)
    out = tl.where(top == float("-inf"), float("-inf"), safe + tl.log(tl.exp(a - safe) + tl.exp(b - safe)))
    return tl.where((a != a) | (b != b), float("nan"), out)


@triton.jit
def _pick(values, s, index):
    """values[index] of a vector over positions s, -inf where index < 0; NaN kept (a max
    over the others would drop it)."""
    return tl.where(index >= 0, tl.sum(tl.where(s == index, values, 0.0), axis=0), float("-inf"))


@triton.jit
def _extended(LABEL, n, label_n, label_l, position, label_count, blank, C):
    """The channel at extended positions ``position`` (int32): the blank at even ones, label
    (position - 1) / 2 at odd ones inside the sample's labels; the blank outside, and where
    the label is not a channel (the sample is NaN then)."""
    odd = (position % 2) == 1
    at = tl.where(odd, (position - 1) // 2, 0)
    value = tl.load(LABEL + n * label_n + at * label_l, mask=odd & (at >= 0) & (at < label_count), other=0)
    value = value.to(tl.float64)
    usable = odd & (at >= 0) & (at < label_count) & (value == tl.floor(value)) & (value >= 0) & (value < C)
    return tl.where(usable, value, blank).to(tl.int32)


@triton.jit
def _sample(LABEL, DATA_LEN, LABEL_LEN, n, T, C, L, label_n, label_l, blank, pad, s,
            HAS_DATA_LEN: tl.constexpr, HAS_LABEL_LEN: tl.constexpr, BLOCK_S: tl.constexpr):
    """Sample n's steps, label count and extended positions (int32 scalars), the channel at
    each position ``s``, and whether its label and lengths are valid: lengths whole numbers
    in range, labels whole numbers in the alphabet and not the blank."""
    k = tl.arange(0, BLOCK_S)
    labels = tl.load(LABEL + n * label_n + k * label_l, mask=k < L, other=0).to(tl.float64)
    if HAS_LABEL_LEN:
        length = tl.load(LABEL_LEN + n).to(tl.float64)
        length_ok = (length == tl.floor(length)) & (length >= 0) & (length <= L)
        label_count = tl.where(length_ok, length, 0.0).to(tl.int32)
    else:  # up to the first padding value
        label_count = tl.min(tl.where((labels == pad) & (k < L), k, L), axis=0)
        length_ok = label_count >= 0
    if HAS_DATA_LEN:
        steps = tl.load(DATA_LEN + n).to(tl.float64)
        steps_ok = (steps == tl.floor(steps)) & (steps >= 0) & (steps <= T)
        t_n = tl.where(steps_ok, steps, 0.0).to(tl.int32)
    else:
        steps_ok = T >= 0
        t_n = T + n * 0
    whole = (labels == tl.floor(labels)) & (labels >= 0) & (labels < C) & (labels != blank)
    labels_ok = tl.sum(((k < label_count) & ~whole).to(tl.int32), axis=0) == 0
    ext = _extended(LABEL, n, label_n, label_l, s, label_count, blank, C)
    return t_n, label_count, 2 * label_count + 1, ext, steps_ok & length_ok & labels_ok


@triton.jit
def _step_log_sum_exp(X, row, C, CT: tl.constexpr, BLOCK_C: tl.constexpr):
    """logsumexp of one step's C channels (at X + row), each lane keeping its own running max
    and sum (softmax.py's online pass); NaN where a channel is."""
    m = tl.full((BLOCK_C,), float("-inf"), CT)
    total = tl.zeros((BLOCK_C,), CT)
    for c0 in range(0, C, BLOCK_C):
        cols = c0 + tl.arange(0, BLOCK_C)
        x = load_wide(X, row + cols, cols < C, float("-inf")).to(CT)
        new_m = tl.maximum(m, x)
        safe = tl.where(new_m == float("-inf"), 0.0, new_m)
        total = total * tl.exp(m - safe) + tl.exp(x - safe)
        m = new_m
    top = tl.max(m, axis=0)
    safe_top = tl.where(top == float("-inf"), 0.0, top)
    total = tl.sum(total * tl.exp(m - safe_top), axis=0)
    out = tl.where(top == float("-inf"), float("-inf"), safe_top + tl.log(total))
    return tl.where(total != total, float("nan"), out)


@triton.jit
def _store_scalar(PTR, value, CT: tl.constexpr):
    one = tl.arange(0, 1)
    store(PTR, one, tl.zeros((1,), CT) + value, one < 1)


@triton.jit
def _ctc_forward_kernel(X, LABEL, DATA_LEN, LABEL_LEN, LOSS, ALPHA, LSE, T, C, L, blank, pad: tl.float64,
                        x_t, x_n, label_n, label_l, alpha_t, alpha_n, lse_t,
                        HAS_DATA_LEN: tl.constexpr, HAS_LABEL_LEN: tl.constexpr, KEEP: tl.constexpr,
                        CT: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_C: tl.constexpr):
    """Sample n's loss; with KEEP (1) every alpha row (ALPHA[t]) and step log-sum-exp
    (LSE[t]) stay for backward, else (0) one alpha row is rewritten step by step."""
    n = tl.program_id(0)
    s = tl.arange(0, BLOCK_S)
    t_n, label_count, s_n, ext, ok = _sample(LABEL, DATA_LEN, LABEL_LEN, n, T, C, L, label_n, label_l, blank, pad,
                                             s, HAS_DATA_LEN, HAS_LABEL_LEN, BLOCK_S)
    inside = s < s_n
    skip = inside & (s >= 2) & (ext != blank) & (ext != _extended(LABEL, n, label_n, label_l, s - 2, label_count,
                                                                   blank, C))
    alpha = tl.where(s == 0, 0.0, float("-inf")).to(CT)  # before the first step: the empty prefix
    for t in range(0, t_n):
        lse = _step_log_sum_exp(X, t * x_t + n * x_n, C, CT, BLOCK_C)
        if KEEP:
            _store_scalar(LSE + t * lse_t + n, lse, CT)
        lp = load_wide(X, t * x_t + n * x_n + ext, inside, 0.0).to(CT) - lse
        previous = ALPHA + (t - 1) * KEEP * alpha_t + n * alpha_n  # row t - 1 (the one row without KEEP)
        a1 = tl.load(previous + s - 1, mask=inside & (s >= 1) & (t > 0), other=float("-inf")).to(CT)
        a2 = tl.load(previous + s - 2, mask=skip & (t > 0), other=float("-inf")).to(CT)
        a1 = tl.where((t == 0) & (s == 1), 0.0, a1)  # position 1 starts from the empty prefix too
        alpha = tl.where(inside, lp + _logaddexp(_logaddexp(alpha, a1), a2), float("-inf"))
        tl.debug_barrier()  # every lane has read the previous row
        tl.store(ALPHA + t * KEEP * alpha_t + n * alpha_n + s, alpha.to(ALPHA.dtype.element_ty), mask=s < 2 * L + 1)
        tl.debug_barrier()  # the row is written before the next step reads it shifted
    loss = -_logaddexp(_pick(alpha, s, s_n - 1), _pick(alpha, s, s_n - 2))
    _store_scalar(LOSS + n, tl.where(ok, loss, float("nan")), CT)


@triton.jit
def _ctc_backward_kernel(X, LABEL, DATA_LEN, LABEL_LEN, HEAD, ALPHA, LSE, BETA, DX, T, C, L, blank,
                         pad: tl.float64, x_t, x_n, label_n, label_l, alpha_t, alpha_n, lse_t, dx_t, dx_n,
                         HAS_DATA_LEN: tl.constexpr, HAS_LABEL_LEN: tl.constexpr, ACCUMULATE: tl.constexpr,
                         CT: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_C: tl.constexpr):
    """Sample n's data gradient, head * (softmax - posterior), from the last step down; 0
    past its length. BETA is one row of scratch for the shifted reads."""
    n = tl.program_id(0)
    s = tl.arange(0, BLOCK_S)
    t_n, label_count, s_n, ext, ok = _sample(LABEL, DATA_LEN, LABEL_LEN, n, T, C, L, label_n, label_l, blank, pad,
                                             s, HAS_DATA_LEN, HAS_LABEL_LEN, BLOCK_S)
    inside = s < s_n
    ahead = _extended(LABEL, n, label_n, label_l, s + 2, label_count, blank, C)
    skip_ahead = (s + 2 < s_n) & (ahead != blank) & (ahead != ext)
    # the loss again from the last alpha row, in the compute type (the output may be rounded to half precision)
    last = tl.load(ALPHA + (t_n - 1) * alpha_t + n * alpha_n + s, mask=inside & (s * 0 + t_n > 0),
                   other=float("-inf")).to(CT)
    loss = -_logaddexp(_pick(last, s, s_n - 1), _pick(last, s, s_n - 2))
    head = tl.sum(load_wide(HEAD, n + s * 0, s == 0, 0.0).to(CT), axis=0)
    loss = tl.where(ok, loss, float("nan"))
    # a loss that is not finite has no derivative: every channel of the sample's steps is NaN
    head = tl.where((loss == loss) & (loss < float("inf")), head, float("nan"))
    beta = tl.where(inside & (s >= s_n - 2), 0.0, float("-inf")).to(CT)  # after the last step
    for back in range(0, t_n):
        t = t_n - 1 - back
        alpha = tl.load(ALPHA + t * alpha_t + n * alpha_n + s, mask=inside, other=float("-inf")).to(CT)
        posterior = tl.exp(alpha + beta + loss)  # NaN where the loss is inf or NaN
        posterior = tl.where(inside, posterior, 0.0)
        lse = tl.sum(load_wide(LSE, t * lse_t + n + s * 0, s == 0, 0.0).to(CT), axis=0)
        for c0 in range(0, C, BLOCK_C):
            cols = c0 + tl.arange(0, BLOCK_C)
            x = load_wide(X, t * x_t + n * x_n + cols, cols < C, 0.0).to(CT)
            carried = tl.sum(tl.where(ext[:, None] == cols[None, :], posterior[:, None], 0.0), axis=0)
            store_result(DX, t * dx_t + n * dx_n + cols, (tl.exp(x - lse) - carried) * head, cols < C, ACCUMULATE)
        lp = load_wide(X, t * x_t + n * x_n + ext, inside, 0.0).to(CT) - lse
        emitted = tl.where(inside, beta + lp, float("-inf"))
        tl.debug_barrier()  # the previous step's reads of the row are done
        tl.store(BETA + n * alpha_n + s, emitted.to(BETA.dtype.element_ty), mask=s < 2 * L + 1)
        tl.debug_barrier()
        b1 = tl.load(BETA + n * alpha_n + s + 1, mask=s + 1 < s_n, other=float("-inf")).to(CT)
        b2 = tl.load(BETA + n * alpha_n + s + 2, mask=skip_ahead, other=float("-inf")).to(CT)
        beta = tl.where(inside, _logaddexp(_logaddexp(emitted, b1), b2), float("-inf"))
    # past the sample's length: no gradient; every step NaN where a length or label is unusable
    rest = tl.zeros((BLOCK_C,), CT) + tl.where(ok, 0.0, float("nan"))
    for t in range(t_n, T):
        for c0 in range(0, C, BLOCK_C):
            cols = c0 + tl.arange(0, BLOCK_C)
            store_result(DX, t * dx_t + n * dx_n + cols, rest, cols < C, ACCUMULATE)


# ------------------------------------------------------------------------- planning


def _check(fn: str, data, label, data_lengths, label_lengths) -> tuple[int, int, int, int]:
    check_tensor(fn, "data", data)
    if data.dim() != 3 or data.stride(2) != 1:
        raise KernelArgumentError(f"{fn}: data must be (steps, batch, channels) with contiguous channels, got shape "
                                  f"{tuple(data.shape)} and strides {data.stride()}")
    steps, batch, channels = data.shape
    check_tensor(fn, "label", label, FLOAT_DTYPES + INDEX_DTYPES)
    if label.dim() != 2 or label.shape[0] != batch:
        raise KernelArgumentError(f"{fn}: label must be (batch, labels) = ({batch}, L), got {tuple(label.shape)}")
    for name, lengths in (("data_lengths", data_lengths), ("label_lengths", label_lengths)):
        if lengths is not None:
            check_tensor(fn, name, lengths, FLOAT_DTYPES + INDEX_DTYPES)
            if tuple(lengths.shape) != (batch,):
                raise KernelArgumentError(f"{fn}: {name} must be ({batch},), got {tuple(lengths.shape)}")
    return steps, batch, channels, label.shape[1]


def kept_shapes(steps: int, batch: int, labels: int, dtype: torch.dtype) -> dict[str, tuple[tuple, torch.dtype]]:
    """What a training forward keeps for backward: every alpha row and each step's log-sum-exp."""
    wide = compute_dtype(dtype)
    return {"alpha": ((steps, batch, 2 * labels + 1), wide), "lse": ((steps, batch), wide)}


def scratch_shape(batch: int, labels: int, dtype: torch.dtype) -> tuple[tuple, torch.dtype]:
    """One row of extended positions a sample: an inference forward's alpha, backward's beta."""
    return (batch, 2 * labels + 1), compute_dtype(dtype)


def _options(data, label, data_lengths, label_lengths, blank_first: bool) -> tuple[list, dict]:
    channels = data.shape[2]
    blank, pad = (0, 0.0) if blank_first else (channels - 1, -1.0)
    ct = tl.float64 if data.dtype == torch.float64 else tl.float32
    return [blank, pad], dict(HAS_DATA_LEN=data_lengths is not None, HAS_LABEL_LEN=label_lengths is not None,
                              CT=ct, BLOCK_S=positions_block(label.shape[1]), BLOCK_C=BLOCK_C)


def _check_rows(fn: str, name: str, t: torch.Tensor, shape: tuple) -> None:
    if tuple(t.shape) != shape or t.stride(-1) != 1:
        raise KernelArgumentError(f"{fn}: {name} must be {shape} with a contiguous last axis, got shape "
                                  f"{tuple(t.shape)} and strides {t.stride()}")


def plan_ctc_loss(data, label, loss, alpha, *, lse=None, data_lengths=None, label_lengths=None,
                  blank_first: bool = True) -> list[Launch]:
    """``loss`` (batch,) of ``data`` (steps, batch, channels) against ``label`` (batch, L).
    ``alpha``: (steps, batch, 2 L + 1) with ``lse`` (steps, batch) to keep for backward
    (``kept_shapes``), else one row a sample (``scratch_shape``)."""
    fn = "ctc_loss"
    steps, batch, channels, labels = _check(fn, data, label, data_lengths, label_lengths)
    _check_rows(fn, "loss", loss, (batch,))
    keep = lse is not None
    _check_rows(fn, "alpha", alpha, (steps, batch, 2 * labels + 1) if keep else (batch, 2 * labels + 1))
    if keep:
        _check_rows(fn, "lse", lse, (steps, batch))
    scalars, options = _options(data, label, data_lengths, label_lengths, blank_first)
    return [Launch(_ctc_forward_kernel, (batch,),
                   [data, label, data_lengths if data_lengths is not None else label,
                    label_lengths if label_lengths is not None else label, loss, alpha,
                    lse if keep else alpha, steps, channels, labels, *scalars, data.stride(0), data.stride(1),
                    *label.stride(), alpha.stride(0) if keep else 0, alpha.stride(-2), lse.stride(0) if keep else 0],
                   dict(KEEP=int(keep), **options))]


def plan_ctc_loss_backward(data, label, head, alpha, lse, beta, grad_data, *, data_lengths=None,
                           label_lengths=None, blank_first: bool = True, accumulate: bool = False) -> list[Launch]:
    """``grad_data`` (+)= head * (softmax(data) - posterior), from what the training forward
    kept (``alpha``, ``lse``); ``beta``: one row a sample of scratch."""
    fn = "ctc_loss_backward"
    steps, batch, channels, labels = _check(fn, data, label, data_lengths, label_lengths)
    for name, t, shape in (("head", head, (batch,)),
                           ("alpha", alpha, (steps, batch, 2 * labels + 1)), ("lse", lse, (steps, batch)),
                           ("beta", beta, (batch, 2 * labels + 1)), ("grad_data", grad_data, tuple(data.shape))):
        _check_rows(fn, name, t, shape)
    if alpha.stride(1) != beta.stride(0):
        raise KernelArgumentError(f"{fn}: alpha's and beta's rows must have one stride, got {alpha.stride(1)} and "
                                  f"{beta.stride(0)}")
    scalars, options = _options(data, label, data_lengths, label_lengths, blank_first)
    return [Launch(_ctc_backward_kernel, (batch,),
                   [data, label, data_lengths if data_lengths is not None else label,
                    label_lengths if label_lengths is not None else label, head, alpha, lse, beta, grad_data,
                    steps, channels, labels, *scalars, data.stride(0), data.stride(1), *label.stride(),
                    alpha.stride(0), alpha.stride(1), lse.stride(0), grad_data.stride(0), grad_data.stride(1)],
                   dict(ACCUMULATE=accumulate, **options))]


# ------------------------------------------------------------------- catalogue


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    steps, batch, channels, labels = (400, 64, 1024, 100) if large else (6, 3, 5, 2)
    data = torch.empty((steps, batch, channels), dtype=dtype)
    label = torch.zeros((batch, labels), dtype=torch.int32)
    loss, head = torch.empty((batch,), dtype=dtype), torch.empty((batch,), dtype=dtype)
    kept = {k: torch.empty(shape, dtype=t) for k, (shape, t) in kept_shapes(steps, batch, labels, dtype).items()}
    scratch = torch.empty(scratch_shape(batch, labels, dtype)[0], dtype=compute_dtype(dtype))
    return [("ctc loss", plan_ctc_loss(data, label, loss, kept["alpha"], lse=kept["lse"])[0]),
            ("ctc loss inference", plan_ctc_loss(data, label, loss, scratch)[0]),
            ("ctc loss backward", plan_ctc_loss_backward(data, label, head, kept["alpha"], kept["lse"], scratch,
                                                         torch.empty_like(data))[0])]
