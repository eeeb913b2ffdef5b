"""Rotary position embedding (RoPE, Su et al. 2021): each pair of features of a row is
rotated by an angle proportional to the row's position, so that the dot product of a
rotated query and a rotated key depends only on how far apart their positions are.

Pair ``i`` of ``rotary_dim / 2`` turns by ``position * base ** (-2 i / rotary_dim)``. Its two
features are ``i`` and ``i + rotary_dim / 2`` (the halves layout: GPT-NeoX's and Hugging Face
Llama's ``rotate_half``) or ``2 i`` and ``2 i + 1`` (``INTERLEAVED`` layout: Meta's Llama,
GPT-J). Features past ``rotary_dim`` pass through unchanged (a copy launch).

No table of cosines and sines is read: each program computes its columns' frequencies and
the angles of its rows in registers, in float64 (the float32 tables of the reference
implementations are off by ~1e-3 radian at position 16K), then their cosines and sines in
the compute type (``_cos_sin``), so the operator costs one read and one write per element
and no memory, and float32 outputs are right to float32 rounding at any position. The
gradient is the output's gradient turned back by the same angles (``INVERSE``: a rotation's
inverse is its transpose), so nothing is kept for backward either.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from . import memory
from ._common import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    INTERPRET,
    MAX_DIMS,
    KernelArgumentError,
    Launch,
    check_tensor,
    collapse_dims,
    element_offsets,
    load_wide,
    prepare_out,
    store_result,
)

# Pairs a program's tile holds: short rows are taken several at a time. The interpreter runs
# programs one after another, so it gets few large ones. On sm_90 1024 pairs over 4 warps
# keep 64-76 registers (the float64 angles take two each; 2048 took 122-142) and still read
# a bfloat16 row 16 bytes at a time (perf/results/kernels-sm90-*.md).
TILE = 1 << 14 if INTERPRET else 1024
MAX_COLS = 128  # a row's pairs beyond this are taken in steps of it
_HALF_PI = tl.constexpr(math.pi / 2)
_TWO_OVER_PI = tl.constexpr(2 / math.pi)
_LARGEST_POSITION = tl.constexpr(2.0 ** 53)  # float64 holds every whole number below it
TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_rotary.py")


@triton.jit
def _cos_sin(angle, LIKE):
    """cos and sin of the float64 ``angle`` (any size), in ``LIKE``'s compute type.

    The angle is cut to ``quarter * pi/2 + r`` with ``|r| <= pi/4`` in float64 (exact to
    ~1e-16 of the angle), then rounded. float64 takes the library's cosine and sine of r;
    float32 their Taylor polynomials, whose next terms are below 2e-9 on that range: no
    libdevice range reduction for huge arguments (which costs a GPU some 100 registers and
    local memory), and the interpreter and a GPU compute the same way."""
    quarter = tl.floor(angle * _TWO_OVER_PI + 0.5)
    r = angle - quarter * _HALF_PI
    if LIKE.dtype.element_ty == tl.float64:
        c = tl.cos(r)
        s = tl.sin(r)
    else:
        r = r.to(tl.float32)
        r2 = r * r
        s = r * (1.0 + r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880)))))
        c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 + r2 * (-1.0 / 3628800)))))
    q = quarter.to(tl.int64) & 3  # turned by q quarters: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c)
    cos = tl.where((q & 1) == 1, s, c)
    sin = tl.where((q & 1) == 1, c, s)
    cos = tl.where((q == 1) | (q == 2), -cos, cos)
    sin = tl.where(q >= 2, -sin, sin)
    return cos, sin


@triton.jit
def _rotary_kernel(
    X, Y, POSITION, rows, sizes, x_strides, y_strides, x_col, y_col, x_partner, y_partner, pairs, inner, length,
    offset, per_batch, log2_step: tl.float64, INTERLEAVED: tl.constexpr, INVERSE: tl.constexpr,
    ACCUMULATE: tl.constexpr, HAS_POSITION: tl.constexpr, ROWS: tl.constexpr, COLS: tl.constexpr,
):
    """Each program rotates the ``pairs`` pairs of ROWS rows, COLS pairs at a time. Row ``r``
    (row-major over the leading dimensions) sits at ``offset + (r // inner) % length``, plus
    with ``HAS_POSITION`` its batch row's ``POSITION[r // per_batch]`` (a whole number >= 0;
    any other makes the row NaN); pair ``i`` of a row is at ``i * col`` and ``i * col +
    partner`` (elements of the last axis)."""
    row = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    row_ok = row < rows
    x_row = element_offsets(row, False, sizes, x_strides)[:, None]
    y_row = element_offsets(row, False, sizes, y_strides)[:, None]
    position = ((row // inner) % length + offset).to(tl.float64)
    if HAS_POSITION:
        start = tl.load(POSITION + row // per_batch, mask=row_ok, other=0).to(tl.float64)
        whole = (start >= 0) & (start == tl.floor(start)) & (start < _LARGEST_POSITION)
        position = tl.where(whole, position + start, float("nan"))
    position = position[:, None]
    for start in range(0, pairs, COLS):
        col = start + tl.arange(0, COLS)
        # base ** (-2 i / rotary_dim), once per column, and the angles in float64: a float32
        # angle at position 16K is off by ~1e-3 radian.
        frequency = tl.exp2(col.to(tl.float64) * log2_step)[None, :]
        cos, sin = _cos_sin(position * frequency, Y)
        if INVERSE:
            sin = -sin
        if INTERLEAVED:
            # A pair is two neighbours: the row's 2 * COLS features are read as one run
            # (wide loads where the last axis is contiguous) and split into their pairs.
            feature = 2 * start + tl.arange(0, 2 * COLS)
            wide_mask = row_ok[:, None] & (feature < 2 * pairs)[None, :]
            x_at = x_row + feature[None, :] * x_partner
            y_at = y_row + feature[None, :] * y_partner
            first, second = tl.split(tl.reshape(load_wide(X, x_at, wide_mask, 0.0), (ROWS, COLS, 2)))
            rotated = tl.join(first * cos - second * sin, second * cos + first * sin)
            store_result(Y, y_at, tl.reshape(rotated, (ROWS, 2 * COLS)), wide_mask, ACCUMULATE)
        else:
            mask = row_ok[:, None] & (col < pairs)[None, :]
            x_at = x_row + col[None, :] * x_col
            y_at = y_row + col[None, :] * y_col
            first = load_wide(X, x_at, mask, 0.0)
            second = load_wide(X, x_at + x_partner, mask, 0.0)
            store_result(Y, y_at, first * cos - second * sin, mask, ACCUMULATE)
            store_result(Y, y_at + y_partner, second * cos + first * sin, mask, ACCUMULATE)


def _check_params(fn: str, x: torch.Tensor, axis: int, base: float, rotary_dim: int | None,
                  offset: int) -> tuple[int, int]:
    """(the position axis, counted from the front; rotary_dim) after checking both."""
    if x.dim() < 2:
        raise KernelArgumentError(f"{fn}: data of shape {tuple(x.shape)} needs a position axis and a feature axis")
    if not -x.dim() <= axis < x.dim() or axis % x.dim() == x.dim() - 1:
        raise KernelArgumentError(f"{fn}: axis={axis} is not a position axis of data of shape {tuple(x.shape)} "
                                  "(any axis but the last, whose pairs of features are rotated)")
    features = x.shape[-1]
    rotary_dim = features if rotary_dim is None else rotary_dim
    if rotary_dim % 2 or not 2 <= rotary_dim <= features:
        raise KernelArgumentError(f"{fn}: rotary_dim={rotary_dim} must be even and between 2 and the "
                                  f"{features} features of data of shape {tuple(x.shape)}")
    if not (math.isfinite(base) and base > 0):
        raise KernelArgumentError(f"{fn}: base={base} must be a positive number")
    if offset < 0:
        raise KernelArgumentError(f"{fn}: offset={offset} must not be negative (the first row's position)")
    return axis % x.dim(), rotary_dim


def plan_rotary(x: torch.Tensor, out: torch.Tensor | None, axis: int = -2, base: float = 10000.0,
                interleaved: bool = False, rotary_dim: int | None = None, offset: int = 0, inverse: bool = False,
                accumulate: bool = False, position: torch.Tensor | None = None) -> list[Launch]:
    """``out (+)= x`` with each pair of its last axis's first ``rotary_dim`` features rotated
    by its position along ``axis`` (plus ``offset``, plus ``position[b]`` for the rows of
    batch row ``b`` when given: a decoding step's place in its text, read when the kernel
    runs) times its frequency; ``inverse`` rotates back (the gradient). Any strides for
    both; ``out`` may be ``x`` itself."""
    fn = "rotary embedding"
    check_tensor(fn, "x", x, FLOAT_DTYPES)
    axis, rotary_dim = _check_params(fn, x, axis, base, rotary_dim, offset)
    if position is not None:
        check_tensor(fn, "position", position, FLOAT_DTYPES + INDEX_DTYPES)
        if axis == 0 or tuple(position.shape) != (x.shape[0],) or not position.is_contiguous() \
                or position.device != x.device:
            raise KernelArgumentError(f"{fn}: position must be contiguous of shape ({x.shape[0]},) on {x.device}, "
                                      f"one per batch row (axis 0, so the position axis {axis} must be another), "
                                      f"got shape {tuple(position.shape)} on {position.device}")
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    pairs = rotary_dim // 2
    leading = list(x.shape[:-1])
    sizes, (xs, ys) = collapse_dims(leading, x.stride()[:-1], out.stride()[:-1])
    if len(sizes) > MAX_DIMS:
        raise KernelArgumentError(f"{fn}: data of shape {tuple(x.shape)} and strides {x.stride()} (out "
                                  f"{out.stride()}) has more than {MAX_DIMS} leading dimensions that cannot be "
                                  "merged; pass a contiguous tensor")
    pad = MAX_DIMS - len(sizes)
    sizes, xs, ys = [1] * pad + sizes, [0] * pad + xs, [0] * pad + ys
    rows = math.prod(leading)
    inner = math.prod(leading[axis + 1:])  # rows from one position to the next
    # Halves: pair i is features (i, i + pairs); interleaved: (2i, 2i + 1).
    step_x, step_y = x.stride(-1), out.stride(-1)
    x_col, y_col = (2 * step_x, 2 * step_y) if interleaved else (step_x, step_y)
    x_partner, y_partner = (step_x, step_y) if interleaved else (pairs * step_x, pairs * step_y)
    cols = min(MAX_COLS, triton.next_power_of_2(pairs))
    block_rows = max(1, min(TILE // cols, triton.next_power_of_2(max(rows, 1))))
    launches = [Launch(_rotary_kernel, (triton.cdiv(max(rows, 1), block_rows),),
                       [x, out, position if position is not None else x, rows, tuple(sizes[1:]), tuple(xs),
                        tuple(ys), x_col, y_col, x_partner, y_partner, pairs, max(inner, 1), max(x.shape[axis], 1),
                        offset, max(rows // max(x.shape[0], 1), 1), -2.0 * math.log2(base) / rotary_dim],
                       dict(INTERLEAVED=interleaved, INVERSE=inverse, ACCUMULATE=accumulate,
                            HAS_POSITION=position is not None, ROWS=block_rows, COLS=cols))]
    in_place = out.data_ptr() == x.data_ptr() and out.stride() == x.stride()
    if rotary_dim < x.shape[-1] and not (in_place and not accumulate):
        launches += memory.plan_copy(x[..., rotary_dim:], out[..., rotary_dim:], accumulate=accumulate)
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # (batch, heads, positions, head_dim), the heads a transposed view as attention's inputs are
    shape = (8, 2048, 16, 128) if large else (3, 7, 2, 10)
    x = torch.empty(shape, dtype=dtype).transpose(1, 2)
    out = torch.empty(x.shape, dtype=dtype)
    return [("rotary embedding", plan_rotary(x, out)[0]),
            ("rotary embedding interleaved, gradient added", plan_rotary(out, x, interleaved=True, inverse=True,
                                                                         accumulate=True)[0]),
            ("rotary embedding at run-time positions", plan_rotary(x, out, position=torch.empty(
                (shape[0],), dtype=torch.int64))[0])]
