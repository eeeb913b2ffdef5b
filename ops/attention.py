"""Scaled dot-product attention in the FlashAttention-2 manner, forward and handwritten backward.

``O = softmax(Q K^T * scale + mask) V`` for (batch, heads, seq, head_dim) tensors of any
strides, per (batch, head). The mask hides keys at or past a sequence's ``valid_length`` and,
when ``causal``, key ``j`` from query ``i < j`` (top-left aligned, as
``torch.nn.functional.scaled_dot_product_attention(is_causal=True)``); a causal ``window``
also hides keys ``j <= i - window`` (a sliding window: only the key blocks inside it are
visited, every one masked, in all three directions). Through a window, a query ``window``
or more past its sequence's length (or the last key) sees no key: its output row is 0 and
its log-sum-exp -inf, and it adds nothing to any gradient (FlashAttention's rows with no
key, and tritonsym's softmax of a row of nothing but -inf).

Forward: one program owns a block of query rows and streams over blocks of keys with an
online softmax (running row maximum ``m`` and sum ``l``, the accumulator rescaled when the
maximum grows), so the ``seq x seq`` score matrix never exists. The only value kept for
backward is each row's log-sum-exp ``m + log(l)``: memory grows with ``seq``, never ``seq**2``.

Backward, three launches and no atomics (the same bits every run):
1. ``delta_i = sum_d dO_id * O_id``, once per query row;
2. per block of keys, streaming over the query blocks that see it: the probabilities
   recomputed from the log-sum-exp, ``dV += P^T dO``, ``dS = P * (dO V^T - delta)``,
   ``dK += dS^T Q * scale``;
3. per block of queries, streaming over the key blocks it sees: ``dQ += dS K * scale``.
Causal blocks wholly above the diagonal are never visited, in either direction, and keys
past a sequence's length are not read at all.

Decoding (FlashDecoding's split): where the (batch, head) sequences and their query blocks
are too few programs to fill the GPU (one query each over a long cache), the forward cuts
each sequence's keys into splits, one program each, that write their rows' unnormalised
sums, maxima and totals (``_attention_split_kernel``), and one more launch adds the splits
in order, rescaled to the largest maximum (``_attention_combine_kernel``): the same
result, the same bits every run. Not causal and no window; the scratch is planned at bind
(``split_scratch_shapes``).

head_dim (and value_dim) are padded in registers to a power of two (at least 16, what a
tensor-core product needs), never in memory. Each kernel is told the alignment of its rows
(``ALIGN``: of the feature dims and of every batch, head and position stride, see
``aligned``), so that rows of 40 features (Stable Diffusion's heads) are copied 16 bytes at
a time, as rows of 64 are, where Triton alone would copy them one element at a time.
float16/bfloat16 products run on tensor cores with float32 accumulation and the
probabilities rounded to the input dtype before ``P V`` (as FlashAttention does); float32
is exact (``precision="ieee"``) unless ``"tf32"`` is asked for; float64 computes in
float64, for gradient checks.

A ``valid_length`` that is not a whole number in [1, seq_k] (zero keys leave the softmax
undefined) makes its sequence's output, log-sum-exp and gradients NaN. Within the blocks on
the diagonal of a causal attention, a NaN or infinity in a value, query or head gradient may
also reach the positions the mask hides in that block (a masked probability is an exact 0,
and 0 * NaN is NaN), as in torch's reference implementation, which spreads it to all of them;
finite inputs are never affected.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import triton
import triton.language as tl

from ._common import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    INTERPRET,
    KernelArgumentError,
    Launch,
    aligned,
    check_tensor,
    check_writable,
    contiguous_alignment,
    prepare_out,
    store,
    store_result,
)
from .fully_connected import PRECISIONS, _mma, _operand, _rounded_operand

TESTS = ("tests/test_attention.py", "tests/test_operators.py", "tests/test_gradcheck.py",
         "tests/test_nan_propagation.py")
MAX_HEAD_DIM = 256  # a 256-wide row of Q, K and V per program still fits registers and shared memory
MAX_PROGRAMS = 65535  # a CUDA grid's second axis holds the blocks of one sequence

# Tiles and launch shape. A program owns BLOCK_M query rows (or BLOCK_N key rows) of GROUP
# (batch, head) sequences at once, the sequences side by side in one tile whose products
# mask the pairs of two different sequences. On a GPU GROUP is 1 (one sequence per program,
# FlashAttention's layout). Triton's interpreter runs programs one after another and pays
# per operation, not per element, so there tiles are sized to the sequences and filled
# with several sequences: a 16-token attention over 64 (batch, head) pairs takes 8 programs,
# not 64. Tests set both (None: chosen from the shapes) to run every tail, diagonal and
# grouping path on short sequences.
# Splitting the keys (FlashDecoding): where a forward has too few programs to fill the GPU, a
# handful of queries per sequence (decoding: one) over many keys, each sequence's keys are
# cut into splits, each split a program of its own, and one more launch adds the splits'
# partial sums. Not causal, no window (decoding reads its cache through lengths). On a GPU
# the programs wanted are about two per SM of an H100 (132); splits of at least
# SPLIT_MIN_KEYS keys. The interpreter, which pays per program, never splits unless a test
# asks (SPLIT_TARGET_PROGRAMS).
SPLIT_TARGET_PROGRAMS = 0 if INTERPRET else 256
SPLIT_MIN_KEYS = 256
MAX_SPLITS = 64
INTERPRETER_BLOCKS: tuple[int, int] | None = None
INTERPRETER_GROUP: int | None = None
INTERPRETER_TILE_ROWS = 512


def _gpu_blocks(dtype: torch.dtype, head_dim: int, backward: str | None) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) on a GPU, FlashAttention-2's and Triton's
    tutorial's choices for Hopper: wide query tiles forward; backward, the kernel that owns
    keys streams narrow query tiles and the one that owns queries narrow key tiles."""
    wide = 4 if dtype == torch.float64 else 2 if dtype == torch.float32 else 1
    if backward == "keys":
        return 32, 128 // wide, 4, 3 if head_dim > 64 else 4
    if backward == "queries":
        return 128 // wide, 32, 4, 3 if head_dim > 64 else 4
    return 128 // wide, 64 if head_dim <= 64 else 32 if wide > 1 else 64, 4 if head_dim <= 64 else 8, 3


def _blocks(dtype, head_dim: int, pairs: int, seq_q: int, seq_k: int, backward=None) -> dict:
    if INTERPRET:
        fit = min(64, max(16, triton.next_power_of_2(max(seq_q, seq_k))))
        block_m, block_n = INTERPRETER_BLOCKS or (fit, fit)
        group = INTERPRETER_GROUP or min(triton.next_power_of_2(pairs), max(1, INTERPRETER_TILE_ROWS // block_m))
        return dict(BLOCK_M=block_m, BLOCK_N=block_n, GROUP=group)
    block_m, block_n, warps, stages = _gpu_blocks(dtype, head_dim, backward)
    return dict(BLOCK_M=block_m, BLOCK_N=block_n, GROUP=1, num_warps=warps, num_stages=stages)


@triton.jit
def _tile_rows(first_pair, start, pairs, heads, seq, GROUP: tl.constexpr, BLOCK: tl.constexpr):
    """The rows of a tile of GROUP sequences x BLOCK positions: each row's (batch, head) pair,
    batch, head and position, and whether it exists."""
    r = tl.arange(0, GROUP * BLOCK)
    pair = first_pair + r // BLOCK
    pos = start + r % BLOCK
    return pair, (pair // heads).to(tl.int64), (pair % heads).to(tl.int64), pos, (pair < pairs) & (pos < seq)


@triton.jit
def _keys_seen(LENGTH, b, pair, pairs, seq_k, HAS_LENGTH: tl.constexpr):
    """Per row of a tile: how many keys its sequence attends to (0 for a row of no sequence),
    and whether its length is a whole number in [1, seq_k]; an invalid one attends to every
    key (staying in bounds) and is made NaN at the end."""
    if HAS_LENGTH:
        length = tl.load(LENGTH + b, mask=pair < pairs, other=1).to(tl.float64)
        valid = (length >= 1) & (length <= seq_k) & (length == tl.floor(length))
        keys = tl.where(valid, length, seq_k).to(tl.int32)
    else:
        valid = True
        keys = seq_k
    return tl.where(pair < pairs, keys, 0), valid


@triton.jit
def _nan_unless(x, valid, hits, HAS_LENGTH: tl.constexpr):
    """x (a tile), NaN where the row's sequence length is invalid (``valid``: one per row) or a
    masked product met a non-finite."""
    x = tl.where(hits == 0, x, float("nan"))
    if HAS_LENGTH:
        x = tl.where(valid[:, None], x, float("nan"))
    return x


@triton.jit
def _scores(q, kt, pair_r, pair_c, rm, rn, keys_c, scale_hi, scale_lo, window, MASK_CAUSAL: tl.constexpr,
            WINDOW: tl.constexpr, GROUP: tl.constexpr, PRECISION: tl.constexpr):
    """q @ k^T * scale for one (query tile, key tile) and which pairs the mask keeps: keys of
    the row's own sequence, before its length, and with MASK_CAUSAL j <= i (and with WINDOW
    j > i - window: the sliding window). The scale comes as two float32 halves so that
    float64 keeps every digit of it (a float argument is float32)."""
    ACC = tl.float64 if q.dtype == tl.float64 else tl.float32
    s = _mma(q, kt, tl.zeros((q.shape[0], kt.shape[1]), ACC), PRECISION)
    s = s * (scale_hi.to(ACC) + scale_lo.to(ACC))
    keep = (rn < keys_c)[None, :]
    if GROUP > 1:
        keep = keep & (pair_r[:, None] == pair_c[None, :])
    if MASK_CAUSAL:
        keep = keep & (rn[None, :] <= rm[:, None])
        if WINDOW:
            keep = keep & (rn[None, :] > rm[:, None] - window)
    return s, keep


@triton.jit
def _rows_of(PTR, b, h, pos, row_ok, cols, n_cols, s_b, s_h, s_l, s_d):
    """Rows (b, h, pos) of a (batch, heads, seq, dim) array, the columns padded with zeros in
    registers to the block's power of two."""
    return tl.load(PTR + b[:, None] * s_b + h[:, None] * s_h + pos[:, None].to(tl.int64) * s_l + cols[None, :] * s_d,
                   mask=row_ok[:, None] & (cols < n_cols)[None, :], other=0.0)


@triton.jit
def _aligned_rows(s_b, s_h, s_l, ALIGN: tl.constexpr):
    """A (batch, heads, seq, dim) array's batch, head and position strides, ``aligned``."""
    return aligned(s_b, ALIGN), aligned(s_h, ALIGN), aligned(s_l, ALIGN)


@triton.jit
def _key_blocks(keys_c, start_m, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """(below, end) for a tile of queries from start_m: the key blocks in [0, below) are seen
    whole, with no mask; causal, those in [below, end), up to the last row's key, take the
    causal mask."""
    end = tl.max(keys_c)
    below = end
    if CAUSAL:
        end = tl.minimum(end, start_m + BLOCK_M)
        below = tl.minimum(end, (start_m // BLOCK_N) * BLOCK_N)
    return below, end


@triton.jit
def _window_start(start_m, window, BLOCK_N: tl.constexpr):
    """The first key block a tile of queries from start_m sees through a sliding window: the
    one holding key start_m - window + 1 (or 0)."""
    return (tl.maximum(start_m - window + 1, 0) // BLOCK_N) * BLOCK_N


@triton.jit
def _finite_or_zero(x):
    return tl.where(tl.abs(x) < float("inf"), x, 0.0).to(x.dtype)  # NaN fails the comparison too


@triton.jit
def _masked_product(c, keep, x, acc, hits, SANITIZE: tl.constexpr, PRECISION: tl.constexpr):
    """acc + c @ x where ``c`` is exactly 0 wherever ``keep`` is False. Where a tile holds
    masked pairs (the causal diagonal; two sequences side by side) a masked pair must not carry
    a NaN or infinity of ``x`` into the sum (0 * NaN is NaN): there the product takes x's
    finite part, and ``hits`` counts, per result, the kept pairs whose x is not finite (that
    result is made NaN at the end)."""
    if SANITIZE:
        bad = tl.where(tl.abs(x) < float("inf"), 0.0, 1.0).to(x.dtype)
        hits = _mma(keep.to(x.dtype), bad, hits, PRECISION)
        x = _finite_or_zero(x)
    return _mma(c, x, acc, PRECISION), hits


@triton.jit
def _query_tile(Q, K, V, LENGTH, pairs, heads, kv_group, seq_q, seq_k, head_dim, sq_b, sq_h, sq_l, sq_d, sk_b, sk_h,
                sv_b, sv_h, HAS_LENGTH: tl.constexpr, UPCAST: tl.constexpr, ALIGN: tl.constexpr,
                BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP: tl.constexpr):
    """What a forward program (``program_id`` 0: its GROUP sequences, 1: its block of query
    rows) starts from: the block's first row, each row's (pair, batch, head, position) and
    whether it exists, the pair of each key row, the queries, whether each row's length is
    valid, the keys each key row's sequence sees, and the key and value heads it reads
    (grouped query heads share one)."""
    sq_b, sq_h, sq_l = _aligned_rows(sq_b, sq_h, sq_l, ALIGN)
    sk_b, sk_h = aligned(sk_b, ALIGN), aligned(sk_h, ALIGN)
    sv_b, sv_h = aligned(sv_b, ALIGN), aligned(sv_h, ALIGN)
    first = tl.program_id(0) * GROUP
    start_m = tl.program_id(1) * BLOCK_M
    pair_r, b_r, h_r, rm, row_ok = _tile_rows(first, start_m, pairs, heads, seq_q, GROUP, BLOCK_M)
    pair_c, b_c, h_c, _, _ = _tile_rows(first, 0, pairs, heads, seq_k, GROUP, BLOCK_N)
    q = _operand(_rows_of(Q, b_r, h_r, rm, row_ok, tl.arange(0, BLOCK_D), head_dim, sq_b, sq_h, sq_l, sq_d), UPCAST)
    _, valid = _keys_seen(LENGTH, b_r, pair_r, pairs, seq_k, HAS_LENGTH)
    keys_c, _ = _keys_seen(LENGTH, b_c, pair_c, pairs, seq_k, HAS_LENGTH)
    K_ = K + b_c * sk_b + (h_c // kv_group) * sk_h
    V_ = V + b_c * sv_b + (h_c // kv_group) * sv_h
    return start_m, pair_r, b_r, h_r, rm, row_ok, pair_c, q, valid, keys_c, K_, V_


@triton.jit
def _forward_block(q, K_, V_, m_i, l_i, acc, hits, pair_r, pair_c, rm, start_n, keys_c, head_dim, value_dim,
                   sk_l, sk_d, sv_l, sv_d, scale_hi, scale_lo, window, MASK_CAUSAL: tl.constexpr,
                   WINDOW: tl.constexpr, GROUP: tl.constexpr,
                   PRECISION: tl.constexpr, UPCAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
                   BLOCK_N: tl.constexpr):
    """One block of keys folded into the online softmax of a tile of queries."""
    rn = start_n + tl.arange(0, GROUP * BLOCK_N) % BLOCK_N
    rd = tl.arange(0, BLOCK_D)
    rv = tl.arange(0, BLOCK_DV)
    kt = tl.load(K_[None, :] + rn[None, :].to(tl.int64) * sk_l + rd[:, None] * sk_d,
                 mask=(rn < keys_c)[None, :] & (rd < head_dim)[:, None], other=0.0)
    s, keep = _scores(q, _operand(kt, UPCAST), pair_r, pair_c, rm, rn, keys_c, scale_hi, scale_lo, window,
                      MASK_CAUSAL, WINDOW, GROUP, PRECISION)
    s = tl.where(keep, s, float("-inf"))
    # A row of a sequence sees that sequence's key 0 in the first block, so its maximum is
    # finite (or NaN) from then on; only a row of no sequence stays at -inf (and is not stored).
    m_new = tl.maximum(m_i, tl.max(s, 1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    alpha = tl.exp(m_i - m_safe)
    p = tl.exp(s - m_safe[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    v = tl.load(V_[:, None] + rn[:, None].to(tl.int64) * sv_l + rv[None, :] * sv_d,
                mask=(rn < keys_c)[:, None] & (rv < value_dim)[None, :], other=0.0)
    v = _operand(v, UPCAST)
    acc, hits = _masked_product(_rounded_operand(p, V_.dtype.element_ty, UPCAST), keep, v, acc * alpha[:, None],
                                hits, MASK_CAUSAL or GROUP > 1, PRECISION)
    return m_new, l_i, acc, hits


@triton.jit
def _attention_forward_kernel(
        Q, K, V, OUT, LSE, LENGTH, scale_hi, scale_lo, pairs, heads, kv_group, window, seq_q, seq_k, head_dim,
        value_dim, sq_b, sq_h, sq_l, sq_d, sk_b, sk_h, sk_l, sk_d, sv_b, sv_h, sv_l, sv_d, so_b, so_h, so_l, so_d,
        CAUSAL: tl.constexpr, WINDOW: tl.constexpr, HAS_LENGTH: tl.constexpr, KEEP_LSE: tl.constexpr,
        PRECISION: tl.constexpr,
        UPCAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, ALIGN: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP: tl.constexpr):
    head_dim, value_dim = aligned(head_dim, ALIGN), aligned(value_dim, ALIGN)
    so_b, so_h, so_l = _aligned_rows(so_b, so_h, so_l, ALIGN)
    sk_l, sv_l = aligned(sk_l, ALIGN), aligned(sv_l, ALIGN)
    start_m, pair_r, b_r, h_r, rm, row_ok, pair_c, q, valid, keys_c, K_, V_ = _query_tile(
        Q, K, V, LENGTH, pairs, heads, kv_group, seq_q, seq_k, head_dim, sq_b, sq_h, sq_l, sq_d, sk_b, sk_h, sv_b,
        sv_h, HAS_LENGTH, UPCAST, ALIGN, BLOCK_D, BLOCK_M, BLOCK_N, GROUP)
    rv = tl.arange(0, BLOCK_DV)
    ACC = tl.float64 if OUT.dtype.element_ty == tl.float64 else tl.float32
    m_i = tl.full((GROUP * BLOCK_M,), float("-inf"), ACC)
    l_i = tl.zeros((GROUP * BLOCK_M,), ACC)
    acc = tl.zeros((GROUP * BLOCK_M, BLOCK_DV), ACC)
    hits = tl.zeros((GROUP * BLOCK_M, BLOCK_DV), ACC)
    below, end = _key_blocks(keys_c, start_m, CAUSAL, BLOCK_M, BLOCK_N)
    if WINDOW:  # only the key blocks from the first row's window on, every one masked
        for start_n in range(_window_start(start_m, window, BLOCK_N), end, BLOCK_N):
            m_i, l_i, acc, hits = _forward_block(q, K_, V_, m_i, l_i, acc, hits, pair_r, pair_c, rm, start_n, keys_c,
                                                 head_dim, value_dim, sk_l, sk_d, sv_l, sv_d, scale_hi, scale_lo,
                                                 window, True, True, GROUP, PRECISION, UPCAST, BLOCK_D, BLOCK_DV,
                                                 BLOCK_N)
    else:
        for start_n in range(0, below, BLOCK_N):
            m_i, l_i, acc, hits = _forward_block(q, K_, V_, m_i, l_i, acc, hits, pair_r, pair_c, rm, start_n, keys_c,
                                                 head_dim, value_dim, sk_l, sk_d, sv_l, sv_d, scale_hi, scale_lo,
                                                 window, False, False, GROUP, PRECISION, UPCAST, BLOCK_D, BLOCK_DV,
                                                 BLOCK_N)
        if CAUSAL:
            for start_n in range(below, end, BLOCK_N):
                m_i, l_i, acc, hits = _forward_block(q, K_, V_, m_i, l_i, acc, hits, pair_r, pair_c, rm, start_n,
                                                     keys_c, head_dim, value_dim, sk_l, sk_d, sv_l, sv_d, scale_hi,
                                                     scale_lo, window, True, False, GROUP, PRECISION, UPCAST, BLOCK_D,
                                                     BLOCK_DV, BLOCK_N)
    out = acc / tl.where(l_i == 0, 1.0, l_i)[:, None]  # l is 0 only on rows that saw no key: 0
    out = _nan_unless(out, valid, hits, HAS_LENGTH)
    store(OUT, b_r[:, None] * so_b + h_r[:, None] * so_h + rm[:, None].to(tl.int64) * so_l + rv[None, :] * so_d, out,
          row_ok[:, None] & (rv < value_dim)[None, :])
    if KEEP_LSE:
        lse = m_i + tl.log(tl.where(l_i == 0, 1.0, l_i))
        if HAS_LENGTH:
            lse = tl.where(valid, lse, float("nan"))
        tl.store(LSE + pair_r.to(tl.int64) * seq_q + rm, lse, mask=row_ok)


@triton.jit
def _attention_split_kernel(
        Q, K, V, PARTIAL, MAX_SUM, LENGTH, scale_hi, scale_lo, pairs, heads, kv_group, seq_q, seq_k, head_dim,
        value_dim, split_keys, sq_b, sq_h, sq_l, sq_d, sk_b, sk_h, sk_l, sk_d, sv_b, sv_h, sv_l, sv_d,
        HAS_LENGTH: tl.constexpr, PRECISION: tl.constexpr, UPCAST: tl.constexpr, BLOCK_D: tl.constexpr,
        BLOCK_DV: tl.constexpr, ALIGN: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
        GROUP: tl.constexpr):
    """The forward over one split of the keys (``split_keys`` from key ``program_id(2) *
    split_keys`` on; not causal): each query row's unnormalised sum of values, running
    maximum and sum of exponentials, for ``_attention_combine_kernel``. A split past a row's
    keys leaves it (0, -inf, 0), which adds nothing."""
    head_dim, value_dim = aligned(head_dim, ALIGN), aligned(value_dim, ALIGN)
    sk_l, sv_l = aligned(sk_l, ALIGN), aligned(sv_l, ALIGN)
    _, pair_r, _, _, rm, row_ok, pair_c, q, valid, keys_c, K_, V_ = _query_tile(
        Q, K, V, LENGTH, pairs, heads, kv_group, seq_q, seq_k, head_dim, sq_b, sq_h, sq_l, sq_d, sk_b, sk_h, sv_b,
        sv_h, HAS_LENGTH, UPCAST, ALIGN, BLOCK_D, BLOCK_M, BLOCK_N, GROUP)
    split = tl.program_id(2)
    rv = tl.arange(0, BLOCK_DV)
    ACC = tl.float64 if PARTIAL.dtype.element_ty == tl.float64 else tl.float32
    m_i = tl.full((GROUP * BLOCK_M,), float("-inf"), ACC)
    l_i = tl.zeros((GROUP * BLOCK_M,), ACC)
    acc = tl.zeros((GROUP * BLOCK_M, BLOCK_DV), ACC)
    hits = tl.zeros((GROUP * BLOCK_M, BLOCK_DV), ACC)
    start = split * split_keys
    for start_n in range(start, tl.minimum(tl.max(keys_c), start + split_keys), BLOCK_N):
        m_i, l_i, acc, hits = _forward_block(q, K_, V_, m_i, l_i, acc, hits, pair_r, pair_c, rm, start_n, keys_c,
                                             head_dim, value_dim, sk_l, sk_d, sv_l, sv_d, scale_hi, scale_lo, 0,
                                             False, False, GROUP, PRECISION, UPCAST, BLOCK_D, BLOCK_DV, BLOCK_N)
    acc = _nan_unless(acc, valid, hits, HAS_LENGTH)
    if HAS_LENGTH:  # the total too, so that the log-sum-exp says it
        l_i = tl.where(valid, l_i, float("nan"))
    rows = pairs * seq_q
    row = pair_r.to(tl.int64) * seq_q + rm
    at = split * rows + row
    tl.store(PARTIAL + at[:, None] * BLOCK_DV + rv[None, :], acc, mask=row_ok[:, None])
    tl.store(MAX_SUM + at, m_i, mask=row_ok)
    tl.store(MAX_SUM + (tl.num_programs(2) + split) * rows + row, l_i, mask=row_ok)


@triton.jit
def _attention_combine_kernel(PARTIAL, MAX_SUM, OUT, LSE, rows, splits, heads, seq_q, value_dim, so_b, so_h, so_l,
                              so_d, KEEP_LSE: tl.constexpr, BLOCK_DV: tl.constexpr, ALIGN: tl.constexpr,
                              BLOCK: tl.constexpr):
    """Each query row's output from its splits' partial sums: every split rescaled to the
    largest maximum, the sums added in split order (the same bits every run), then divided
    by the total; and its log-sum-exp when kept."""
    value_dim = aligned(value_dim, ALIGN)
    so_b, so_h, so_l = _aligned_rows(so_b, so_h, so_l, ALIGN)
    row = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    row_ok = row < rows
    rv = tl.arange(0, BLOCK_DV)
    ACC = tl.float64 if PARTIAL.dtype.element_ty == tl.float64 else tl.float32
    largest = tl.full((BLOCK,), float("-inf"), ACC)
    for split in range(0, splits):
        largest = tl.maximum(largest, tl.load(MAX_SUM + split * rows + row, mask=row_ok, other=float("-inf")))
    largest = tl.where(largest == float("-inf"), 0.0, largest)  # a row of no keys at all: none exists
    total = tl.zeros((BLOCK,), ACC)
    acc = tl.zeros((BLOCK, BLOCK_DV), ACC)
    for split in range(0, splits):
        weight = tl.exp(tl.load(MAX_SUM + split * rows + row, mask=row_ok, other=float("-inf")) - largest)
        total += weight * tl.load(MAX_SUM + (splits + split) * rows + row, mask=row_ok, other=0.0)
        acc += weight[:, None] * tl.load(PARTIAL + (split * rows + row)[:, None] * BLOCK_DV + rv[None, :],
                                         mask=row_ok[:, None], other=0.0)
    pair, rm = row // seq_q, row % seq_q
    b, h = pair // heads, pair % heads
    store(OUT, (b * so_b + h * so_h + rm * so_l)[:, None] + rv[None, :] * so_d,
          acc / tl.where(total == 0, 1.0, total)[:, None], row_ok[:, None] & (rv < value_dim)[None, :])
    if KEEP_LSE:
        tl.store(LSE + row, largest + tl.log(tl.where(total == 0, 1.0, total)), mask=row_ok)


@triton.jit
def _attention_delta_kernel(OUT, DO, DELTA, rows, heads, seq_q, value_dim, so_b, so_h, so_l, so_d,
                            sg_b, sg_h, sg_l, sg_d, BLOCK_DV: tl.constexpr, ALIGN: tl.constexpr,
                            BLOCK: tl.constexpr):
    """delta_i = sum_d dO_id * O_id for BLOCK of all (batch, head, query) rows: the row term of
    the softmax gradient, computed once."""
    value_dim = aligned(value_dim, ALIGN)
    so_b, so_h, so_l = _aligned_rows(so_b, so_h, so_l, ALIGN)
    sg_b, sg_h, sg_l = _aligned_rows(sg_b, sg_h, sg_l, ALIGN)
    row = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    pair, rm = row // seq_q, row % seq_q
    b, h = pair // heads, pair % heads
    rv = tl.arange(0, BLOCK_DV)
    mask = (row < rows)[:, None] & (rv < value_dim)[None, :]
    ACC = tl.float64 if OUT.dtype.element_ty == tl.float64 else tl.float32
    o = tl.load(OUT + (b * so_b + h * so_h + rm * so_l)[:, None] + rv[None, :] * so_d, mask=mask, other=0.0)
    do = tl.load(DO + (b * sg_b + h * sg_h + rm * sg_l)[:, None] + rv[None, :] * sg_d, mask=mask, other=0.0)
    tl.store(DELTA + row, tl.sum(o.to(ACC) * do.to(ACC), 1), mask=row < rows)


@triton.jit
def _keys_block(kt, v, dk, dv, hits_k, hits_v, Q_, DO_, LSE_, DELTA_, pair_r, pair_c, start_m, rn, keys_c, pairs,
                seq_q, head_dim, value_dim, sq_l, sq_d, sg_l, sg_d, scale_hi, scale_lo, window, WANT_DK: tl.constexpr,
                WANT_DV: tl.constexpr, MASK_CAUSAL: tl.constexpr, WINDOW: tl.constexpr, GROUP: tl.constexpr,
                PRECISION: tl.constexpr,
                UPCAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, BLOCK_M: tl.constexpr):
    """One tile of queries' share of dK and dV for a tile of keys."""
    rm = start_m + tl.arange(0, GROUP * BLOCK_M) % BLOCK_M
    row_ok = (pair_r < pairs) & (rm < seq_q)
    rd = tl.arange(0, BLOCK_D)
    rv = tl.arange(0, BLOCK_DV)
    ACC = tl.float64 if kt.dtype == tl.float64 else tl.float32
    DTYPE = Q_.dtype.element_ty
    q = tl.load(Q_[:, None] + rm[:, None].to(tl.int64) * sq_l + rd[None, :] * sq_d,
                mask=row_ok[:, None] & (rd < head_dim)[None, :], other=0.0)
    do = tl.load(DO_[:, None] + rm[:, None].to(tl.int64) * sg_l + rv[None, :] * sg_d,
                 mask=row_ok[:, None] & (rv < value_dim)[None, :], other=0.0)
    q = _operand(q, UPCAST)
    do = _operand(do, UPCAST)
    lse = tl.load(LSE_ + rm, mask=row_ok, other=0.0)
    s, keep = _scores(q, kt, pair_r, pair_c, rm, rn, keys_c, scale_hi, scale_lo, window, MASK_CAUSAL, WINDOW, GROUP,
                      PRECISION)
    keep = keep & row_ok[:, None]
    p = tl.where(keep, tl.exp(s - lse[:, None]), 0.0)  # masked before any product: no 0 * inf
    keep_t = tl.trans(keep)
    if WANT_DV:
        dv, hits_v = _masked_product(_rounded_operand(tl.trans(p), DTYPE, UPCAST), keep_t, do, dv, hits_v,
                                     MASK_CAUSAL or GROUP > 1, PRECISION)
    if WANT_DK:
        delta = tl.load(DELTA_ + rm, mask=row_ok, other=0.0)
        dp = _mma(do, tl.trans(v), tl.zeros((GROUP * BLOCK_M, kt.shape[1]), ACC), PRECISION)
        ds = tl.where(keep, p * (dp - delta[:, None]), 0.0)
        dk, hits_k = _masked_product(_rounded_operand(tl.trans(ds), DTYPE, UPCAST), keep_t, q, dk, hits_k,
                                     MASK_CAUSAL or GROUP > 1, PRECISION)
    return dk, dv, hits_k, hits_v


@triton.jit
def _attention_backward_keys_kernel(
        Q, K, V, DO, LSE, DELTA, DK, DV, LENGTH, scale_hi, scale_lo, pairs, heads, kv_group, window, seq_q, seq_k,
        head_dim, value_dim, sq_b, sq_h, sq_l, sq_d, sk_b, sk_h, sk_l, sk_d, sv_b, sv_h, sv_l, sv_d, sg_b, sg_h, sg_l,
        sg_d, sdk_b, sdk_h, sdk_l, sdk_d, sdv_b, sdv_h, sdv_l, sdv_d,
        CAUSAL: tl.constexpr, WINDOW: tl.constexpr, HAS_LENGTH: tl.constexpr, WANT_DK: tl.constexpr,
        WANT_DV: tl.constexpr,
        ACCUMULATE_DK: tl.constexpr, ACCUMULATE_DV: tl.constexpr, DV_INTO_DK: tl.constexpr, PRECISION: tl.constexpr,
        UPCAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, ALIGN: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP: tl.constexpr):
    """dK and dV of one tile of keys, streaming over the query tiles that see it; DV_INTO_DK
    (key and value are one array, so are their gradients): dK + dV stored once, into DK.
    With grouped query heads (``kv_group`` > 1) a tile is one query head's share: DK and DV
    are then per query head, summed over each group by ``_group_sum_kernel``."""
    head_dim, value_dim = aligned(head_dim, ALIGN), aligned(value_dim, ALIGN)
    sq_b, sq_h, sq_l = _aligned_rows(sq_b, sq_h, sq_l, ALIGN)
    sk_b, sk_h, sk_l = _aligned_rows(sk_b, sk_h, sk_l, ALIGN)
    sv_b, sv_h, sv_l = _aligned_rows(sv_b, sv_h, sv_l, ALIGN)
    sg_b, sg_h, sg_l = _aligned_rows(sg_b, sg_h, sg_l, ALIGN)
    sdk_b, sdk_h, sdk_l = _aligned_rows(sdk_b, sdk_h, sdk_l, ALIGN)
    sdv_b, sdv_h, sdv_l = _aligned_rows(sdv_b, sdv_h, sdv_l, ALIGN)
    first = tl.program_id(0) * GROUP
    start_n = tl.program_id(1) * BLOCK_N
    pair_c, b_c, h_c, rn, col_ok = _tile_rows(first, start_n, pairs, heads, seq_k, GROUP, BLOCK_N)
    pair_r, b_r, h_r, _, _ = _tile_rows(first, 0, pairs, heads, seq_q, GROUP, BLOCK_M)
    rd = tl.arange(0, BLOCK_D)
    rv = tl.arange(0, BLOCK_DV)
    ACC = tl.float64 if Q.dtype.element_ty == tl.float64 else tl.float32
    keys_c, valid = _keys_seen(LENGTH, b_c, pair_c, pairs, seq_k, HAS_LENGTH)
    kv_c = h_c // kv_group
    kt = tl.load(K + b_c[None, :] * sk_b + kv_c[None, :] * sk_h + rn[None, :].to(tl.int64) * sk_l + rd[:, None] * sk_d,
                 mask=(rn < keys_c)[None, :] & (rd < head_dim)[:, None], other=0.0)
    v = tl.load(V + b_c[:, None] * sv_b + kv_c[:, None] * sv_h + rn[:, None].to(tl.int64) * sv_l + rv[None, :] * sv_d,
                mask=(rn < keys_c)[:, None] & (rv < value_dim)[None, :], other=0.0)
    kt = _operand(kt, UPCAST)
    v = _operand(v, UPCAST)
    dk = tl.zeros((GROUP * BLOCK_N, BLOCK_D), ACC)
    dv = tl.zeros((GROUP * BLOCK_N, BLOCK_DV), ACC)
    hits_k = tl.zeros((GROUP * BLOCK_N, BLOCK_D), ACC)
    hits_v = tl.zeros((GROUP * BLOCK_N, BLOCK_DV), ACC)
    Q_ = Q + b_r * sq_b + h_r * sq_h
    DO_ = DO + b_r * sg_b + h_r * sg_h
    LSE_ = LSE + pair_r.to(tl.int64) * seq_q
    DELTA_ = DELTA + pair_r.to(tl.int64) * seq_q
    # Keys wholly past every sequence's length are seen by no query. Causal: queries before
    # this tile's first key see none of it; the query blocks up to its last key take the
    # causal mask, those after see it whole.
    end = tl.where(start_n < tl.max(keys_c), seq_q, 0)
    if WINDOW:
        # Through a sliding window, key j is seen by queries j .. j + window - 1 only: the
        # query blocks from this tile's first key to its last key's last query, all masked.
        stop = tl.minimum(end, start_n + BLOCK_N + window - 1)
        for start_m in range((start_n // BLOCK_M) * BLOCK_M, stop, BLOCK_M):
            dk, dv, hits_k, hits_v = _keys_block(kt, v, dk, dv, hits_k, hits_v, Q_, DO_, LSE_, DELTA_, pair_r, pair_c,
                                                 start_m, rn, keys_c, pairs, seq_q, head_dim, value_dim, sq_l, sq_d,
                                                 sg_l, sg_d, scale_hi, scale_lo, window, WANT_DK, WANT_DV, True, True,
                                                 GROUP, PRECISION, UPCAST, BLOCK_D, BLOCK_DV, BLOCK_M)
    else:
        above = 0
        if CAUSAL:
            begin = (start_n // BLOCK_M) * BLOCK_M
            above = tl.minimum(end, tl.cdiv(start_n + BLOCK_N - 1, BLOCK_M) * BLOCK_M)
            for start_m in range(begin, above, BLOCK_M):
                dk, dv, hits_k, hits_v = _keys_block(kt, v, dk, dv, hits_k, hits_v, Q_, DO_, LSE_, DELTA_, pair_r,
                                                     pair_c, start_m, rn, keys_c, pairs, seq_q, head_dim, value_dim,
                                                     sq_l, sq_d, sg_l, sg_d, scale_hi, scale_lo, window, WANT_DK,
                                                     WANT_DV, True, False, GROUP, PRECISION, UPCAST, BLOCK_D, BLOCK_DV,
                                                     BLOCK_M)
            above = tl.maximum(above, begin)
        for start_m in range(above, end, BLOCK_M):
            dk, dv, hits_k, hits_v = _keys_block(kt, v, dk, dv, hits_k, hits_v, Q_, DO_, LSE_, DELTA_, pair_r, pair_c,
                                                 start_m, rn, keys_c, pairs, seq_q, head_dim, value_dim, sq_l, sq_d,
                                                 sg_l, sg_d, scale_hi, scale_lo, window, WANT_DK, WANT_DV, False, False,
                                                 GROUP, PRECISION, UPCAST, BLOCK_D, BLOCK_DV, BLOCK_M)
    # Keys past the length are masked from every query: their gradient is an exact zero, also
    # where a NaN query or head gradient met their (masked, 0) probability in the products.
    seen = (rn < keys_c)[:, None]
    if WANT_DV:
        dv = _nan_unless(tl.where(seen, dv, 0.0), valid, hits_v, HAS_LENGTH)
    if WANT_DK:
        dk = tl.where(seen, dk * (scale_hi.to(ACC) + scale_lo.to(ACC)), 0.0)
        dk = _nan_unless(dk, valid, hits_k, HAS_LENGTH)
        if DV_INTO_DK:  # one store: a second one adding into the first could see it unwritten
            dk = dk + dv
        store_result(DK, b_c[:, None] * sdk_b + h_c[:, None] * sdk_h + rn[:, None].to(tl.int64) * sdk_l
                     + rd[None, :] * sdk_d, dk, col_ok[:, None] & (rd < head_dim)[None, :], ACCUMULATE_DK)
    if WANT_DV and not DV_INTO_DK:
        store_result(DV, b_c[:, None] * sdv_b + h_c[:, None] * sdv_h + rn[:, None].to(tl.int64) * sdv_l
                     + rv[None, :] * sdv_d, dv, col_ok[:, None] & (rv < value_dim)[None, :], ACCUMULATE_DV)


@triton.jit
def _queries_block(q, do, lse, delta, dq, hits, K_, V_, pair_r, pair_c, rm, start_n, keys_c, head_dim, value_dim,
                   sk_l, sk_d, sv_l, sv_d, scale_hi, scale_lo, window, MASK_CAUSAL: tl.constexpr,
                   WINDOW: tl.constexpr, GROUP: tl.constexpr,
                   PRECISION: tl.constexpr, UPCAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr,
                   BLOCK_N: tl.constexpr):
    """One tile of keys' share of dQ for a tile of queries."""
    rn = start_n + tl.arange(0, GROUP * BLOCK_N) % BLOCK_N
    rd = tl.arange(0, BLOCK_D)
    rv = tl.arange(0, BLOCK_DV)
    ACC = tl.float64 if q.dtype == tl.float64 else tl.float32
    kt = tl.load(K_[None, :] + rn[None, :].to(tl.int64) * sk_l + rd[:, None] * sk_d,
                 mask=(rn < keys_c)[None, :] & (rd < head_dim)[:, None], other=0.0)
    vt = tl.load(V_[None, :] + rn[None, :].to(tl.int64) * sv_l + rv[:, None] * sv_d,
                 mask=(rn < keys_c)[None, :] & (rv < value_dim)[:, None], other=0.0)
    kt = _operand(kt, UPCAST)
    s, keep = _scores(q, kt, pair_r, pair_c, rm, rn, keys_c, scale_hi, scale_lo, window, MASK_CAUSAL, WINDOW, GROUP,
                      PRECISION)
    p = tl.where(keep, tl.exp(s - lse[:, None]), 0.0)
    dp = _mma(do, _operand(vt, UPCAST), tl.zeros((q.shape[0], GROUP * BLOCK_N), ACC), PRECISION)
    ds = tl.where(keep, p * (dp - delta[:, None]), 0.0)
    return _masked_product(_rounded_operand(ds, K_.dtype.element_ty, UPCAST), keep, tl.trans(kt), dq, hits,
                           MASK_CAUSAL or GROUP > 1, PRECISION)


@triton.jit
def _attention_backward_queries_kernel(
        Q, K, V, DO, LSE, DELTA, DQ, LENGTH, scale_hi, scale_lo, pairs, heads, kv_group, window, seq_q, seq_k,
        head_dim, value_dim, sq_b, sq_h, sq_l, sq_d, sk_b, sk_h, sk_l, sk_d, sv_b, sv_h, sv_l, sv_d, sg_b, sg_h, sg_l,
        sg_d, sdq_b, sdq_h, sdq_l, sdq_d,
        CAUSAL: tl.constexpr, WINDOW: tl.constexpr, HAS_LENGTH: tl.constexpr, ACCUMULATE: tl.constexpr,
        PRECISION: tl.constexpr,
        UPCAST: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_DV: tl.constexpr, ALIGN: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP: tl.constexpr):
    """dQ of one tile of queries, streaming over the key blocks it sees."""
    head_dim, value_dim = aligned(head_dim, ALIGN), aligned(value_dim, ALIGN)
    sq_b, sq_h, sq_l = _aligned_rows(sq_b, sq_h, sq_l, ALIGN)
    sk_b, sk_h, sk_l = _aligned_rows(sk_b, sk_h, sk_l, ALIGN)
    sv_b, sv_h, sv_l = _aligned_rows(sv_b, sv_h, sv_l, ALIGN)
    sg_b, sg_h, sg_l = _aligned_rows(sg_b, sg_h, sg_l, ALIGN)
    sdq_b, sdq_h, sdq_l = _aligned_rows(sdq_b, sdq_h, sdq_l, ALIGN)
    first = tl.program_id(0) * GROUP
    start_m = tl.program_id(1) * BLOCK_M
    pair_r, b_r, h_r, rm, row_ok = _tile_rows(first, start_m, pairs, heads, seq_q, GROUP, BLOCK_M)
    pair_c, b_c, h_c, _, _ = _tile_rows(first, 0, pairs, heads, seq_k, GROUP, BLOCK_N)
    rd = tl.arange(0, BLOCK_D)
    rv = tl.arange(0, BLOCK_DV)
    ACC = tl.float64 if Q.dtype.element_ty == tl.float64 else tl.float32
    rows = pair_r.to(tl.int64) * seq_q + rm
    q = _operand(_rows_of(Q, b_r, h_r, rm, row_ok, rd, head_dim, sq_b, sq_h, sq_l, sq_d), UPCAST)
    do = _operand(_rows_of(DO, b_r, h_r, rm, row_ok, rv, value_dim, sg_b, sg_h, sg_l, sg_d), UPCAST)
    lse = tl.load(LSE + rows, mask=row_ok, other=0.0)
    delta = tl.load(DELTA + rows, mask=row_ok, other=0.0)
    _, valid = _keys_seen(LENGTH, b_r, pair_r, pairs, seq_k, HAS_LENGTH)
    keys_c, _ = _keys_seen(LENGTH, b_c, pair_c, pairs, seq_k, HAS_LENGTH)
    K_ = K + b_c * sk_b + (h_c // kv_group) * sk_h  # grouped query heads share a key and value head
    V_ = V + b_c * sv_b + (h_c // kv_group) * sv_h
    dq = tl.zeros((GROUP * BLOCK_M, BLOCK_D), ACC)
    hits = tl.zeros((GROUP * BLOCK_M, BLOCK_D), ACC)
    below, end = _key_blocks(keys_c, start_m, CAUSAL, BLOCK_M, BLOCK_N)  # as the forward
    if WINDOW:
        for start_n in range(_window_start(start_m, window, BLOCK_N), end, BLOCK_N):
            dq, hits = _queries_block(q, do, lse, delta, dq, hits, K_, V_, pair_r, pair_c, rm, start_n, keys_c,
                                      head_dim, value_dim, sk_l, sk_d, sv_l, sv_d, scale_hi, scale_lo, window, True,
                                      True, GROUP, PRECISION, UPCAST, BLOCK_D, BLOCK_DV, BLOCK_N)
    else:
        for start_n in range(0, below, BLOCK_N):
            dq, hits = _queries_block(q, do, lse, delta, dq, hits, K_, V_, pair_r, pair_c, rm, start_n, keys_c,
                                      head_dim, value_dim, sk_l, sk_d, sv_l, sv_d, scale_hi, scale_lo, window, False,
                                      False, GROUP, PRECISION, UPCAST, BLOCK_D, BLOCK_DV, BLOCK_N)
        if CAUSAL:
            for start_n in range(below, end, BLOCK_N):
                dq, hits = _queries_block(q, do, lse, delta, dq, hits, K_, V_, pair_r, pair_c, rm, start_n, keys_c,
                                          head_dim, value_dim, sk_l, sk_d, sv_l, sv_d, scale_hi, scale_lo, window,
                                          True, False, GROUP, PRECISION, UPCAST, BLOCK_D, BLOCK_DV, BLOCK_N)
    dq = dq * (scale_hi.to(ACC) + scale_lo.to(ACC))
    dq = _nan_unless(dq, valid, hits, HAS_LENGTH)
    store_result(DQ, b_r[:, None] * sdq_b + h_r[:, None] * sdq_h + rm[:, None].to(tl.int64) * sdq_l
                 + rd[None, :] * sdq_d, dq, row_ok[:, None] & (rd < head_dim)[None, :], ACCUMULATE)


@triton.jit
def _group_sum_kernel(SRC, SRC2, DST, rows, kv_heads, seq_k, kv_group, dim, ss_b, ss_h, ss_l, ss_d,
                      sd_b, sd_h, sd_l, sd_d, SECOND: tl.constexpr, ACCUMULATE: tl.constexpr,
                      BLOCK_D: tl.constexpr, ALIGN: tl.constexpr, BLOCK: tl.constexpr):
    """DST[b, g, j] = (+)= sum over the group's query heads h of SRC[b, h, j] (+ SRC2[b, h, j]
    with SECOND: key and value one array): the per-query-head gradients of a shared key or
    value head, added in head order (the same bits every run), rounded once."""
    dim = aligned(dim, ALIGN)
    ss_b, ss_h, ss_l = _aligned_rows(ss_b, ss_h, ss_l, ALIGN)
    sd_b, sd_h, sd_l = _aligned_rows(sd_b, sd_h, sd_l, ALIGN)
    row = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    pos, pair = row % seq_k, row // seq_k
    b, g = pair // kv_heads, pair % kv_heads
    rd = tl.arange(0, BLOCK_D)
    mask = (row < rows)[:, None] & (rd < dim)[None, :]
    ACC = tl.float64 if SRC.dtype.element_ty == tl.float64 else tl.float32
    total = tl.zeros((BLOCK, BLOCK_D), ACC)
    for i in range(0, kv_group):
        at = (b * ss_b + (g * kv_group + i) * ss_h + pos * ss_l)[:, None] + rd[None, :] * ss_d
        total += tl.load(SRC + at, mask=mask, other=0.0).to(ACC)
        if SECOND:
            total += tl.load(SRC2 + at, mask=mask, other=0.0).to(ACC)
    store_result(DST, (b * sd_b + g * sd_h + pos * sd_l)[:, None] + rd[None, :] * sd_d, total, mask, ACCUMULATE)


# ------------------------------------------------------------------ launchers


def default_scale(head_dim: int) -> float:
    return 1.0 / math.sqrt(head_dim)


def _scale_halves(scale: float) -> tuple[float, float]:
    """``scale`` as float32 high and low parts whose float64 sum is ``scale`` to ~48 bits."""
    hi = float(np.float32(scale))
    return hi, float(np.float32(scale - hi))


def _dim_block(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def alignment(head_dim: int, value_dim: int, *tensors: torch.Tensor) -> int:
    """The ``ALIGN`` of a launch over these (batch, heads, seq, dim) tensors: the largest
    power of two up to 16 dividing the feature dims and every batch, head and position
    stride (``aligned``); 1 where a tensor's features are not contiguous (nothing could be
    copied 16 bytes at a time, and one variant serves them all)."""
    return contiguous_alignment((t.stride(3) for t in tensors), head_dim, value_dim,
                                *(s for t in tensors for s in t.stride()[:3]))


def _check(fn: str, q, k, v, length, precision: str, enable_gqa: bool):
    for name, t in (("query", q), ("key", k), ("value", v)):
        check_tensor(fn, name, t)
        if t.dim() != 4:
            raise KernelArgumentError(f"{fn}: {name} must be 4-d (batch, heads, seq, head_dim), got shape "
                                      f"{tuple(t.shape)}")
    if not (q.dtype == k.dtype == v.dtype) or not (q.device == k.device == v.device):
        raise KernelArgumentError(f"{fn}: query ({q.dtype} on {q.device}), key ({k.dtype} on {k.device}) and value "
                                  f"({v.dtype} on {v.device}) must share a dtype and a device")
    (batch, heads, seq_q, head_dim), (kv_heads, seq_k, value_dim) = q.shape, (k.shape[1], k.shape[2], v.shape[3])
    if tuple(k.shape) != (batch, kv_heads, seq_k, head_dim) or tuple(v.shape[:3]) != (batch, kv_heads, seq_k):
        raise KernelArgumentError(f"{fn}: query {tuple(q.shape)}, key {tuple(k.shape)} and value {tuple(v.shape)} "
                                  "must be (batch, heads, seq_q, head_dim), (batch, kv_heads, seq_k, head_dim) and "
                                  "(batch, kv_heads, seq_k, value_dim)")
    if kv_heads != heads and not (enable_gqa and kv_heads and heads % kv_heads == 0):
        raise KernelArgumentError(f"{fn}: query has {heads} heads, key and value {kv_heads}: they must be equal, or "
                                  f"with enable_gqa=True (now {enable_gqa}) the query's a multiple of theirs")
    if min(q.shape) == 0 or seq_k == 0 or value_dim == 0:
        raise KernelArgumentError(f"{fn}: query {tuple(q.shape)}, key {tuple(k.shape)}, value {tuple(v.shape)}: "
                                  "attention needs at least one query, key and feature")
    if max(head_dim, value_dim) > MAX_HEAD_DIM:
        raise KernelArgumentError(f"{fn}: head_dim {head_dim} and value_dim {value_dim} must be at most "
                                  f"{MAX_HEAD_DIM}")
    if batch * heads * max(seq_q, seq_k) > 2**31 - 1 or triton.cdiv(max(seq_q, seq_k), 16) > MAX_PROGRAMS:
        raise KernelArgumentError(f"{fn}: {batch} x {heads} sequences of {max(seq_q, seq_k)} are more than a launch "
                                  "holds")
    if length is not None:
        check_tensor(fn, "valid_length", length, FLOAT_DTYPES + INDEX_DTYPES)
        if tuple(length.shape) != (batch,) or not length.is_contiguous():
            raise KernelArgumentError(f"{fn}: valid_length must be contiguous of shape ({batch},), got "
                                      f"{tuple(length.shape)} with strides {length.stride()}")
    if precision not in PRECISIONS:
        raise KernelArgumentError(f"{fn}: precision={precision!r} is not one of {', '.join(PRECISIONS)}")
    return batch, heads, seq_q, seq_k, head_dim, value_dim


def _check_window(fn: str, window: int | None, causal: bool) -> int:
    """The kernels' ``window`` (0: none). A query may then see no key (``window`` or more
    past its sequence's length or the last key): its row is 0, as the module says."""
    if window is None:
        return 0
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise KernelArgumentError(f"{fn}: window={window!r} must be a positive number of keys")
    if not causal:
        raise KernelArgumentError(f"{fn}: window={window} is a causal sliding window: it needs causal=True")
    return window


def query_heads_per_key(q: torch.Tensor, k: torch.Tensor) -> int:
    """How many query heads share each key and value head (1 unless grouped)."""
    return q.shape[1] // k.shape[1]


def _options(q: torch.Tensor, precision: str) -> dict:
    return dict(PRECISION=precision if q.dtype == torch.float32 else "ieee",
                UPCAST=INTERPRET and q.dtype == torch.bfloat16)


def lse_shape(batch: int, heads: int, seq_q: int) -> tuple[int]:
    """What the forward keeps for backward: one log-sum-exp per query row."""
    return (batch * heads * seq_q,)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of the kept log-sum-exp and of every accumulation."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def plan_attention_forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor | None = None, *,
                           valid_length: torch.Tensor | None = None, causal: bool = False,
                           scale: float | None = None, lse: torch.Tensor | None = None,
                           precision: str = "ieee", enable_gqa: bool = False,
                           window: int | None = None, scratch: dict | None = None) -> list[Launch]:
    """``out = softmax(q k^T * scale + mask) v``; ``lse`` (``lse_shape``, ``compute_dtype``),
    when given, receives each query row's log-sum-exp for the backward. ``enable_gqa``: k and
    v may have fewer heads, each shared by a group of consecutive query heads (torch's
    ``enable_gqa``: query head h reads key head h // (heads // kv_heads)). ``window`` (with
    ``causal``): query i sees only keys i - window + 1 .. i (a sliding window, Mistral's).
    Where the sequences are too few to fill the GPU (``key_splits``: decoding), the keys are
    split across programs, into ``scratch`` (``split_scratch_shapes``; allocated if None)."""
    fn = "attention"
    batch, heads, seq_q, seq_k, head_dim, value_dim = _check(fn, q, k, v, valid_length, precision, enable_gqa)
    window = _check_window(fn, window, causal)
    out = prepare_out(fn, "out", out, (batch, heads, seq_q, value_dim), q.dtype, q.device)
    check_writable(fn, "out", out)
    if lse is not None:
        _check_row_buffer(fn, "lse", lse, batch, heads, seq_q, q)
    scale = default_scale(head_dim) if scale is None else scale
    splits = key_splits(q.shape, k.shape, q.dtype, causal, window)
    if splits > 1:
        return _split_forward(q, k, v, out, lse, valid_length, scale, precision, scratch, splits,
                              (batch, heads, seq_q, seq_k, head_dim, value_dim))
    pairs = batch * heads
    blocks = _blocks(q.dtype, head_dim, pairs, seq_q, seq_k)

    def grid(meta):
        return (triton.cdiv(pairs, meta["GROUP"]), triton.cdiv(seq_q, meta["BLOCK_M"]))

    return [Launch(_attention_forward_kernel, grid,
                   [q, k, v, out, lse if lse is not None else out, valid_length if valid_length is not None else q,
                    *_scale_halves(scale), pairs, heads, query_heads_per_key(q, k), window, seq_q, seq_k, head_dim,
                    value_dim, *q.stride(), *k.stride(), *v.stride(), *out.stride()],
                   dict(CAUSAL=causal, WINDOW=window > 0, HAS_LENGTH=valid_length is not None, KEEP_LSE=lse is not None,
                        BLOCK_D=_dim_block(head_dim), BLOCK_DV=_dim_block(value_dim),
                        ALIGN=alignment(head_dim, value_dim, q, k, v, out), **_options(q, precision), **blocks))]


def key_splits(q_shape, k_shape, dtype: torch.dtype, causal: bool, window: int | None) -> int:
    """Into how many splits the forward cuts each sequence's keys (1: none), from the shapes
    alone, so that a bind plans the same scratch as the launch uses (``split_scratch_shapes``)."""
    batch, heads, seq_q, head_dim = q_shape
    seq_k = k_shape[2]
    if causal or window or not SPLIT_TARGET_PROGRAMS:
        return 1
    blocks = _blocks(dtype, head_dim, batch * heads, seq_q, seq_k)
    programs = triton.cdiv(batch * heads, blocks["GROUP"]) * triton.cdiv(seq_q, blocks["BLOCK_M"])
    wanted = min(triton.cdiv(SPLIT_TARGET_PROGRAMS, programs), triton.cdiv(seq_k, SPLIT_MIN_KEYS), MAX_SPLITS)
    return _split_layout(wanted, seq_k, blocks["BLOCK_N"])[0] if wanted > 1 else 1


def _split_layout(wanted: int, seq_k: int, block_n: int) -> tuple[int, int]:
    """(splits, keys per split): whole key blocks per split, and no split left empty."""
    per_split = triton.cdiv(triton.cdiv(seq_k, wanted), block_n) * block_n
    return triton.cdiv(seq_k, per_split), per_split


def split_scratch_shapes(q_shape, k_shape, v_shape, dtype: torch.dtype, causal: bool,
                         window: int | None) -> dict[str, tuple]:
    """The scratch a split forward needs ({} when it does not split), in ``compute_dtype``:
    each split's partial sums per query row (padded to the block of value_dim), and its
    running maxima and sums."""
    splits = key_splits(q_shape, k_shape, dtype, causal, window)
    return _split_shapes(q_shape, k_shape, v_shape, splits) if splits > 1 else {}


def _split_shapes(q_shape, k_shape, v_shape, splits: int) -> dict[str, tuple]:
    rows = q_shape[0] * q_shape[1] * q_shape[2]
    return {"partial": (splits, rows, _dim_block(v_shape[3])), "max_sum": (2, splits, rows)}


def _split_forward(q, k, v, out, lse, valid_length, scale, precision, scratch, splits, dims) -> list[Launch]:
    """The split forward: partial sums over each split of the keys, then one launch adding them."""
    fn = "attention"
    batch, heads, seq_q, seq_k, head_dim, value_dim = dims
    pairs = batch * heads
    blocks = _blocks(q.dtype, head_dim, pairs, seq_q, seq_k)
    splits, per_split = _split_layout(splits, seq_k, blocks["BLOCK_N"])
    want = _split_shapes(q.shape, k.shape, v.shape, splits)
    if scratch is None:
        scratch = {name: torch.empty(shape, dtype=compute_dtype(q.dtype), device=q.device)
                   for name, shape in want.items()}
    for name, shape in want.items():
        t = scratch.get(name)
        if t is None or tuple(t.shape) != shape or t.dtype != compute_dtype(q.dtype) or not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: scratch {name!r} must be contiguous {compute_dtype(q.dtype)} of shape "
                                      f"{shape} (split_scratch_shapes), got "
                                      f"{None if t is None else (t.dtype, tuple(t.shape))}")
    align = alignment(head_dim, value_dim, q, k, v, out)
    partial, max_sum = scratch["partial"], scratch["max_sum"]
    rows = pairs * seq_q
    block = min(16, triton.next_power_of_2(rows))  # 16 rows of 128 values: ~125 registers at 64 rows
    return [Launch(_attention_split_kernel, (triton.cdiv(pairs, blocks["GROUP"]), triton.cdiv(seq_q, blocks["BLOCK_M"]),
                                             splits),
                   [q, k, v, partial, max_sum, valid_length if valid_length is not None else q, *_scale_halves(scale),
                    pairs, heads, query_heads_per_key(q, k), seq_q, seq_k, head_dim, value_dim, per_split,
                    *q.stride(), *k.stride(), *v.stride()],
                   dict(HAS_LENGTH=valid_length is not None, BLOCK_D=_dim_block(head_dim),
                        BLOCK_DV=_dim_block(value_dim), ALIGN=align, **_options(q, precision), **blocks)),
            Launch(_attention_combine_kernel, (triton.cdiv(rows, block),),
                   [partial, max_sum, out, lse if lse is not None else max_sum, rows, splits, heads, seq_q, value_dim,
                    *out.stride()],
                   dict(KEEP_LSE=lse is not None, BLOCK_DV=_dim_block(value_dim), ALIGN=align, BLOCK=block))]


def _check_row_buffer(fn, name, t, batch, heads, seq_q, q):
    want = compute_dtype(q.dtype)
    if tuple(t.shape) != lse_shape(batch, heads, seq_q) or t.dtype != want or not t.is_contiguous() \
            or t.device != q.device:
        raise KernelArgumentError(f"{fn}: {name} must be contiguous {want} of shape "
                                  f"{lse_shape(batch, heads, seq_q)} on {q.device}, got {t.dtype} "
                                  f"{tuple(t.shape)} on {t.device}")


def plan_attention_backward(grad_out: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                            out: torch.Tensor, lse: torch.Tensor, delta: torch.Tensor,
                            grad_q: torch.Tensor | None, grad_k: torch.Tensor | None, grad_v: torch.Tensor | None,
                            *, valid_length: torch.Tensor | None = None, causal: bool = False,
                            scale: float | None = None, accumulate=(False, False, False),
                            precision: str = "ieee", enable_gqa: bool = False,
                            head_grads: tuple[torch.Tensor, torch.Tensor] | None = None,
                            window: int | None = None) -> list[Launch]:
    """The gradients of ``out`` (what the forward wrote, with its log-sum-exp ``lse``) into
    ``grad_q``, ``grad_k``, ``grad_v`` (None: not wanted); ``delta`` is a scratch of
    ``lse``'s shape and dtype. ``accumulate[i]``: add into the gradient rather than write it.
    With grouped query heads (``enable_gqa``, k and v with fewer heads than q),
    ``head_grads`` is scratch for each query head's share of dK and dV
    (``grouped_head_grads_shapes``, ``compute_dtype``), summed over each group after.
    ``window``: the forward's sliding window."""
    fn = "attention_backward"
    batch, heads, seq_q, seq_k, head_dim, value_dim = _check(fn, q, k, v, valid_length, precision, enable_gqa)
    window = _check_window(fn, window, causal)
    kv_group = query_heads_per_key(q, k)
    dv_into_dk, queries_first = _shared_gradients(fn, (grad_q, grad_k, grad_v), accumulate)
    for name, t, like in (("grad_out", grad_out, out), ("out", out, out), ("grad_q", grad_q, q), ("grad_k", grad_k, k),
                          ("grad_v", grad_v, v)):
        if t is not None:
            check_tensor(fn, name, t, (q.dtype,))
            if t.shape != like.shape or (name == "out" and tuple(t.shape) != (batch, heads, seq_q, value_dim)):
                raise KernelArgumentError(f"{fn}: {name} has shape {tuple(t.shape)}, expected {tuple(like.shape)}")
    for name in ("grad_q", "grad_k", "grad_v"):
        if locals()[name] is not None:
            check_writable(fn, name, locals()[name])
    _check_row_buffer(fn, "lse", lse, batch, heads, seq_q, q)
    _check_row_buffer(fn, "delta", delta, batch, heads, seq_q, q)
    halves = _scale_halves(default_scale(head_dim) if scale is None else scale)
    length = valid_length if valid_length is not None else q
    # One alignment for the three launches: of every array any of them reads or writes.
    align = alignment(head_dim, value_dim, q, k, v, out, grad_out,
                      *(t for t in (grad_q, grad_k, grad_v) if t is not None))
    common = dict(CAUSAL=causal, WINDOW=window > 0, HAS_LENGTH=valid_length is not None, BLOCK_D=_dim_block(head_dim),
                  BLOCK_DV=_dim_block(value_dim), ALIGN=align, **_options(q, precision))
    pairs = batch * heads
    shape = [pairs, heads, kv_group, window, seq_q, seq_k, head_dim, value_dim]
    strides = [*q.stride(), *k.stride(), *v.stride(), *grad_out.stride()]
    rows = pairs * seq_q
    row_block = 1024 if INTERPRET else 64  # one (batch, head, query) row per thread group; few programs interpreted
    launches = [Launch(_attention_delta_kernel, (triton.cdiv(rows, row_block),),
                       [out, grad_out, delta, rows, heads, seq_q, value_dim, *out.stride(), *grad_out.stride()],
                       dict(BLOCK_DV=_dim_block(value_dim), ALIGN=align, BLOCK=row_block))]
    if grad_k is not None or grad_v is not None:
        blocks = _blocks(q.dtype, head_dim, pairs, seq_q, seq_k, "keys")

        def keys_grid(meta):
            return (triton.cdiv(pairs, meta["GROUP"]), triton.cdiv(seq_k, meta["BLOCK_N"]))

        dk, dv = (grad_k if grad_k is not None else k), (grad_v if grad_v is not None else v)
        if kv_group > 1:  # each query head's share first, then summed over its group
            dk, dv = _check_head_grads(fn, head_grads, q, k, v)
        launches.append(Launch(_attention_backward_keys_kernel, keys_grid,
                               [q, k, v, grad_out, lse, delta, dk, dv, length, *halves, *shape, *strides,
                                *dk.stride(), *dv.stride()],
                               dict(WANT_DK=grad_k is not None, WANT_DV=grad_v is not None,
                                    ACCUMULATE_DK=bool(accumulate[1]) and kv_group == 1,
                                    ACCUMULATE_DV=bool(accumulate[2]) and kv_group == 1,
                                    DV_INTO_DK=dv_into_dk and kv_group == 1, **common, **blocks)))
        if kv_group > 1:
            launches += _group_sums(dk, dv, grad_k, grad_v, accumulate, dv_into_dk, kv_group)
    if grad_q is not None:
        blocks = _blocks(q.dtype, head_dim, pairs, seq_q, seq_k, "queries")

        def queries_grid(meta):
            return (triton.cdiv(pairs, meta["GROUP"]), triton.cdiv(seq_q, meta["BLOCK_M"]))

        launches.append(Launch(_attention_backward_queries_kernel, queries_grid,
                               [q, k, v, grad_out, lse, delta, grad_q, length, *halves, *shape, *strides,
                                *grad_q.stride()],
                               dict(ACCUMULATE=bool(accumulate[0]), **common, **blocks)))
        if queries_first:  # dQ is written first, dK / dV added into it (after the delta launch)
            launches.insert(1, launches.pop())
    return launches


def grouped_head_grads_shapes(q_shape, k_shape, v_shape) -> tuple[tuple, tuple]:
    """The scratch of a grouped-query backward: dK's and dV's shares per query head."""
    return (*q_shape[:2], *k_shape[2:]), (*q_shape[:2], *v_shape[2:])


def _check_head_grads(fn, head_grads, q, k, v) -> tuple[torch.Tensor, torch.Tensor]:
    want = grouped_head_grads_shapes(q.shape, k.shape, v.shape)
    if head_grads is None or len(head_grads) != 2:
        raise KernelArgumentError(f"{fn}: query has {q.shape[1]} heads, key and value {k.shape[1]}: the backward "
                                  f"needs head_grads, scratch of shapes {want[0]} and {want[1]}")
    for name, t, shape in zip(("head_grads[0]", "head_grads[1]"), head_grads, want):
        check_tensor(fn, name, t, (compute_dtype(q.dtype),))
        check_writable(fn, name, t)
        if tuple(t.shape) != shape or not t.is_contiguous() or t.device != q.device:
            raise KernelArgumentError(f"{fn}: {name} must be contiguous {compute_dtype(q.dtype)} of shape {shape} on "
                                      f"{q.device}, got {tuple(t.shape)} with strides {t.stride()} on {t.device}")
    return head_grads


def _group_sums(dk_heads, dv_heads, grad_k, grad_v, accumulate, dv_into_dk: bool, kv_group: int) -> list[Launch]:
    """Each key (value) head's gradient: its query heads' shares summed, written or added
    (``accumulate``); key and value one array: both sums in one store."""
    launches = []
    for heads_grad, grad, second, acc in ((dk_heads, grad_k, dv_into_dk, accumulate[1]),
                                          (dv_heads, None if dv_into_dk else grad_v, False, accumulate[2])):
        if grad is None:
            continue
        batch, kv_heads, seq_k, dim = grad.shape
        rows, block = batch * kv_heads * seq_k, 1024 if INTERPRET else 32
        launches.append(Launch(_group_sum_kernel, (triton.cdiv(rows, block),),
                               [heads_grad, dv_heads, grad, rows, kv_heads, seq_k, kv_group, dim,
                                *heads_grad.stride(), *grad.stride()],
                               dict(SECOND=second, ACCUMULATE=bool(acc), BLOCK_D=_dim_block(dim),
                                    ALIGN=alignment(dim, dim, heads_grad, grad), BLOCK=block)))
    return launches


def _overlap(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two tensors share any byte (their spans meet)."""
    def span(t):
        end = t.data_ptr() + (sum((n - 1) * st for n, st in zip(t.shape, t.stride())) + 1) * t.element_size()
        return t.data_ptr(), end
    (a0, a1), (b0, b1) = span(a), span(b)
    return a.numel() > 0 and b.numel() > 0 and a0 < b1 and b0 < a1


def _shared_gradients(fn: str, grads, accumulate) -> tuple[bool, bool]:
    """Where one array is read as two of query, key and value (self-attention on one
    array), their gradients are one array too: the first writes or adds, the later ones
    must add (``accumulate``). (dK and dV summed into one store, dQ launched first)."""
    names = ("grad_q", "grad_k", "grad_v")
    shared = [(i, j) for i in range(3) for j in range(i + 1, 3)
              if grads[i] is not None and grads[j] is not None and _overlap(grads[i], grads[j])]
    for i, j in shared:
        if not accumulate[j] or (grads[i].data_ptr(), grads[i].shape, grads[i].stride()) != \
                (grads[j].data_ptr(), grads[j].shape, grads[j].stride()):
            raise KernelArgumentError(f"{fn}: {names[i]} and {names[j]} share memory; they must be one array, "
                                      f"{names[j]} adding into it (accumulate[{j}]), got accumulate "
                                      f"{tuple(bool(a) for a in accumulate)}, shapes {tuple(grads[i].shape)} and "
                                      f"{tuple(grads[j].shape)}, strides {grads[i].stride()} and {grads[j].stride()}")
    return (1, 2) in shared, any(i == 0 for i, _ in shared)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, valid_length: torch.Tensor | None = None,
              causal: bool = False, scale: float | None = None, precision: str = "ieee",
              enable_gqa: bool = False) -> torch.Tensor:
    """Standalone forward (no log-sum-exp kept)."""
    launches = plan_attention_forward(q, k, v, valid_length=valid_length, causal=causal, scale=scale,
                                      precision=precision, enable_gqa=enable_gqa)
    for launch in launches:
        launch()
    return launches[0].args[3]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    batch, heads, seq, head_dim = (4, 16, 2048, 128) if large else (2, 3, 37, 24)
    q, k, v = (torch.empty(batch, heads, seq, head_dim, dtype=dtype) for _ in range(3))
    out = torch.empty_like(q)
    lse = torch.empty(lse_shape(batch, heads, seq), dtype=compute_dtype(dtype))
    length = torch.empty(batch, dtype=torch.int32)
    grads = [torch.empty_like(q) for _ in range(3)]
    backward = plan_attention_backward(out, q, k, v, out, lse, torch.empty_like(lse), *grads, causal=True)
    backward_len = plan_attention_backward(out, q, k, v, out, lse, torch.empty_like(lse), *grads,
                                           valid_length=length, accumulate=(True, True, True))
    # Self-attention on one array as key and value: their gradients summed into one store.
    one_kv = plan_attention_backward(out, q, k, k, out, lse, torch.empty_like(lse), grads[0], grads[1], grads[1],
                                     accumulate=(False, False, True))
    # Grouped query heads (16 query heads on 4 key and value heads; 3 on 1): each query
    # head's share of dK and dV, then summed over its group.
    kv = [torch.empty(batch, max(1, heads // 4), seq, head_dim, dtype=dtype) for _ in range(4)]
    shares = [torch.empty(shape, dtype=compute_dtype(dtype))
              for shape in grouped_head_grads_shapes(q.shape, kv[0].shape, kv[1].shape)]
    grouped = plan_attention_backward(out, q, kv[0], kv[1], out, lse, torch.empty_like(lse), grads[0], kv[2], kv[3],
                                      enable_gqa=True, head_grads=shares)
    # A sliding window (Mistral's 4096 of 32K; here an eighth of the sequence).
    window = seq // 8
    windowed = plan_attention_backward(out, q, k, v, out, lse, torch.empty_like(lse), *grads, causal=True,
                                       window=window)
    # A decoding step: one query per head over a cache of keys (8K, large) read through
    # lengths, grouped heads, the keys split across programs (whatever the thresholds say).
    cached = 8192 if large else 300
    step_q = torch.empty(batch, heads, 1, head_dim, dtype=dtype)
    cache = torch.empty(batch, max(1, heads // 4), cached, head_dim, dtype=dtype)
    step_lse = torch.empty(lse_shape(batch, heads, 1), dtype=compute_dtype(dtype))
    dims = (batch, heads, 1, cached, head_dim, head_dim)
    step = _split_forward(step_q, cache, cache, torch.empty_like(step_q), None, length, default_scale(head_dim), "ieee",
                          None, 4, dims)
    step_kept = _split_forward(step_q, cache, cache, torch.empty_like(step_q), step_lse, None, default_scale(head_dim),
                               "ieee", None, 4, dims)
    # Heads of 40 features (Stable Diffusion's): rows a multiple of 8 elements, not 16 (ALIGN 8).
    narrow = [torch.empty(batch, heads, seq, 40, dtype=dtype) for _ in range(5)]
    narrow_backward = plan_attention_backward(narrow[0], *narrow[:3], narrow[3], lse, torch.empty_like(lse),
                                              *narrow[2:5])
    return [("attention decoding step, keys split, with lengths", step[0]),
            ("attention decoding step, splits added", step[1]),
            ("attention keys split, keeping the log-sum-exp", step_kept[0]),
            ("attention splits added, keeping the log-sum-exp", step_kept[1]),
            ("attention forward heads of 40", plan_attention_forward(*narrow[:3], narrow[3], lse=lse)[0]),
            *((f"attention backward {what} heads of 40", launch)
              for what, launch in zip(("delta", "keys", "queries"), narrow_backward)),
            ("attention forward", plan_attention_forward(q, k, v, out, lse=lse)[0]),
            ("attention forward causal, inference", plan_attention_forward(q, k, v, out, causal=True)[0]),
            ("attention forward with valid_length", plan_attention_forward(q, k, v, out, lse=lse,
                                                                           valid_length=length)[0]),
            ("attention backward delta", backward[0]),
            ("attention backward keys causal", backward[1]),
            ("attention backward queries causal", backward[2]),
            ("attention backward keys with valid_length, accumulating", backward_len[1]),
            ("attention backward queries with valid_length, accumulating", backward_len[2]),
            ("attention backward keys, one array as key and value", one_kv[1]),
            ("attention forward, grouped query heads", plan_attention_forward(q, kv[0], kv[1], out, lse=lse,
                                                                              enable_gqa=True)[0]),
            ("attention backward keys, grouped query heads", grouped[1]),
            ("attention backward key heads summed over their query heads", grouped[2]),
            ("attention forward, sliding window", plan_attention_forward(q, k, v, out, lse=lse, causal=True,
                                                                         window=window)[0]),
            ("attention backward keys, sliding window", windowed[1]),
            ("attention backward queries, sliding window", windowed[2])]
