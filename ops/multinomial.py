"""Categorical draws from rows of weights (MXNet's ``_sample_multinomial``), and the
gradient of the log of the drawn weights (what REINFORCE differentiates).

One program draws a block of samples from one row: a first pass over the row sums its
weights and checks them (a NaN or a negative weight, or a total that is 0 or infinite,
makes the row invalid), then each draw ``u`` (Philox, keyed as Dropout's masks and the
samplers' numbers are: ``_philox.py``) is scaled by the total and located in the running
cumulative sum, block of categories by block (the count of cumulative sums not above ``u``
is the category; a category of weight 0 is never drawn). All in float64: the cumulative
sums of 32000 float32 weights keep their last bits. The weights need not sum to 1 (the
draws follow weight / total, as ``torch.multinomial``'s do); an invalid row draws -1, so
that Embedding or take reading it gives NaN, and its log-probability is NaN.

``log_p`` is the log of the drawn weight as given: the log-likelihood where the rows sum to
1, as MXNet asks of them. Its gradient is, at each category of each row, the sum of the
log-probability gradients of the draws that chose it divided by its weight (MXNet's), summed
in a fixed order within one program per block of categories (no atomics); an invalid row's
gradient is NaN.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    INTERPRET,
    KernelArgumentError,
    Launch,
    check_tensor,
    store,
    store_result,
)
from ._philox import STATE_SLOTS, check_state, philox_counter, philox_key

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_multinomial.py")
BLOCK_S = 16  # draws per program
BLOCK_K = 256 if INTERPRET else 128  # categories per step of the loops


@triton.jit
def _row_total(P, row, K, BLOCK: tl.constexpr):
    """The row's total weight (float64) and how many of its weights are NaN or negative."""
    total = tl.zeros((), tl.float64)
    bad = tl.zeros((), tl.int32)
    for k0 in range(0, K, BLOCK):
        k = k0 + tl.arange(0, BLOCK)
        p = tl.load(P + row * K + k, mask=k < K, other=0.0).to(tl.float64)
        total += tl.sum(p, axis=0)
        bad += tl.sum(((p < 0.0) | (p != p)).to(tl.int32), axis=0)
    return total, bad


@triton.jit
def _multinomial_kernel(P, OUT, LOG_P, STATE, K, S, salt, HAS_PROB: tl.constexpr, BLOCK_S: tl.constexpr,
                        BLOCK_K: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    draws = tl.program_id(1) * BLOCK_S + tl.arange(0, BLOCK_S)
    in_range = draws < S
    total, bad = _row_total(P, row, K, BLOCK_K)
    valid = (bad == 0) & (total > 0.0) & (total < float("inf"))
    u = tl.rand(philox_key(STATE, salt), philox_counter(STATE, row * S + draws)).to(tl.float64) * total
    count = tl.zeros((BLOCK_S,), tl.int64)
    last = tl.zeros((), tl.int64) - 1  # the last category of positive weight
    running = tl.zeros((), tl.float64)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + tl.arange(0, BLOCK_K)
        in_row = k < K
        p = tl.load(P + row * K + k, mask=in_row, other=0.0).to(tl.float64)
        below = (tl.cumsum(p, axis=0) + running)[None, :] <= u[:, None]
        count += tl.sum((below & in_row[None, :]).to(tl.int64), axis=1)
        running += tl.sum(p, axis=0)
        last = tl.maximum(last, tl.max(tl.where(in_row & (p > 0.0), k.to(tl.int64), -1), axis=0))
    # u rounded up to the total would count every category: the last one of positive weight.
    index = tl.where(valid, tl.minimum(count, last), -1)
    tl.store(OUT + row * S + draws, index.to(OUT.dtype.element_ty), mask=in_range)
    if HAS_PROB:
        chosen = tl.load(P + row * K + tl.maximum(index, 0), mask=in_range, other=1.0).to(tl.float64)
        store(LOG_P, row * S + draws, tl.where(valid, tl.log(chosen), float("nan")), in_range)


@triton.jit
def _multinomial_backward_kernel(P, INDEX, D_LOG_P, DP, K, S, ACCUMULATE: tl.constexpr, BLOCK_S: tl.constexpr,
                                 BLOCK_K: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    k = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    in_row = k < K
    summed = tl.zeros((BLOCK_K,), tl.float64)
    hits = tl.zeros((BLOCK_K,), tl.int32)
    invalid = tl.zeros((), tl.int32)
    for s0 in range(0, S, BLOCK_S):
        d = s0 + tl.arange(0, BLOCK_S)
        in_range = d < S
        index = tl.load(INDEX + row * S + d, mask=in_range, other=-2).to(tl.int64)
        g = tl.load(D_LOG_P + row * S + d, mask=in_range, other=0.0).to(tl.float64)
        hit = index[:, None] == k[None, :].to(tl.int64)
        summed += tl.sum(tl.where(hit, g[:, None], 0.0), axis=0)
        hits += tl.sum(hit.to(tl.int32), axis=0)
        invalid += tl.sum((index == -1).to(tl.int32), axis=0)
    p = tl.load(P + row * K + k, mask=in_row, other=1.0).to(tl.float64)
    grad = tl.where(hits > 0, summed / tl.where(hits > 0, p, 1.0), 0.0)  # a weight never drawn: 0
    grad = tl.where(invalid > 0, float("nan"), grad)
    store_result(DP, row * K + k, grad, in_row, ACCUMULATE)


def _layout(fn: str, p: torch.Tensor, index: torch.Tensor) -> tuple[int, int, int]:
    """(rows, categories, draws per row), checked."""
    check_tensor(fn, "p", p)
    check_tensor(fn, "index", index, INDEX_DTYPES + (torch.float32, torch.float64))
    if p.dim() < 1 or p.shape[-1] < 1 or not p.is_contiguous() or not index.is_contiguous():
        raise KernelArgumentError(f"{fn}: p (shape {tuple(p.shape)}) and index must be contiguous, p with "
                                  "categories along its last axis")
    k = p.shape[-1]
    rows = p.numel() // k
    if index.numel() % max(rows, 1) or index.device != p.device:
        raise KernelArgumentError(f"{fn}: index of shape {tuple(index.shape)} holds no whole number of draws for each "
                                  f"of the {rows} rows of p")
    if index.dtype == torch.float32 and k > 2 ** 24:
        raise KernelArgumentError(f"{fn}: float32 indices hold categories exactly only up to 2**24, p has {k}")
    return rows, k, index.numel() // max(rows, 1)


def plan_multinomial(p: torch.Tensor, out: torch.Tensor, state: torch.Tensor, *, salt: int,
                     log_p: torch.Tensor | None = None) -> list[Launch]:
    """``out[row, s]``: a category drawn from row ``row`` of ``p`` (weights along the last
    axis), -1 where the row is invalid; ``log_p`` (when given): the log of the drawn weight."""
    fn = "multinomial"
    rows, k, s = _layout(fn, p, out)
    check_state(fn, state, p.device)
    if log_p is not None and (log_p.shape != out.shape or log_p.dtype != p.dtype or not log_p.is_contiguous()):
        raise KernelArgumentError(f"{fn}: log_p must be contiguous of out's shape {tuple(out.shape)} and p's dtype "
                                  f"{p.dtype}")
    return [Launch(_multinomial_kernel, (rows, triton.cdiv(s, BLOCK_S)),
                   [p, out, out if log_p is None else log_p, state, k, s, int(salt) & 0x7FFFFFFF],
                   dict(HAS_PROB=log_p is not None, BLOCK_S=BLOCK_S, BLOCK_K=BLOCK_K))]


def plan_multinomial_backward(p: torch.Tensor, index: torch.Tensor, grad_log_p: torch.Tensor, grad_p: torch.Tensor,
                              accumulate: bool = False) -> list[Launch]:
    """``grad_p (+)=`` at each category the summed ``grad_log_p`` of its draws over its weight."""
    fn = "multinomial backward"
    rows, k, s = _layout(fn, p, index)
    check_tensor(fn, "grad_p", grad_p, FLOAT_DTYPES)
    if grad_p.shape != p.shape or not grad_p.is_contiguous() or grad_log_p.shape != index.shape \
            or not grad_log_p.is_contiguous():
        raise KernelArgumentError(f"{fn}: grad_p must be contiguous of p's shape and grad_log_p of index's")
    return [Launch(_multinomial_backward_kernel, (rows, triton.cdiv(k, BLOCK_K)), [p, index, grad_log_p, grad_p, k, s],
                   dict(ACCUMULATE=accumulate, BLOCK_S=BLOCK_S, BLOCK_K=BLOCK_K))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    rows, k, s = (4096, 32000, 4) if large else (3, 7, 5)
    p, state = torch.empty(rows, k, dtype=dtype), torch.zeros(len(STATE_SLOTS), dtype=torch.int64)
    index, log_p = torch.empty(rows, s, dtype=torch.int32), torch.empty(rows, s, dtype=dtype)
    return [("multinomial", plan_multinomial(p, index, state, salt=1)[0]),
            ("multinomial with log-probabilities", plan_multinomial(p, index, state, salt=1, log_p=log_p)[0]),
            ("multinomial backward", plan_multinomial_backward(p, index, log_p, torch.empty_like(p))[0])]
