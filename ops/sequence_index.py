"""Per-sequence time indexing: MXNet's SequenceReverse (the first ``length`` steps of each
sequence reversed, the steps past it kept) and SequenceLast (each sequence's step
``length - 1``), with their gradients.

The data is seen as (outer, steps, inner) around the time axis, and a sequence's length read
as SequenceMask's is (``sequence_mask._layout``: one per batch entry, along the other of the
first two axes), or the whole axis without lengths. A length that is not a whole number in
its range ([0, steps] for reverse, [1, steps] for last: a sequence of no steps has no last
one) makes its sequence's outputs NaN, so a wrong length shows; backward passes no gradient
there. Each kernel reads one element per output element: reversing is its own inverse, so
its backward is the same gather of the output gradient; SequenceLast's backward writes
every input-gradient element (the output gradient at the last step, 0 elsewhere), so no
separate fill is needed.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    KernelArgumentError,
    Launch,
    check_tensor,
    element_block,
    load_wide,
    prepare_out,
    store_result,
)
from .sequence_mask import _layout

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_sequence_index.py")


@triton.jit
def _sequence_length(LENGTH, o, i, steps, inner_div, outer_stride, inner_stride, mask,
                     HAS_LENGTH: tl.constexpr, SHORTEST: tl.constexpr):
    """Each element's sequence length (int64; ``steps`` without lengths) and whether the
    length given is a whole number in [SHORTEST, steps]."""
    if HAS_LENGTH:
        given = tl.load(LENGTH + o * outer_stride + (i // inner_div) * inner_stride, mask=mask, other=0)
        given = given.to(tl.float64)
        valid = (given >= SHORTEST) & (given <= steps) & (given == tl.floor(given))
        length = tl.where(valid, given, SHORTEST).to(tl.int64)
    else:
        length = tl.zeros_like(o) + steps
        valid = length == length
    return length, valid


@triton.jit
def _place(index, steps, inner):
    """(outer, step, inner) of flat element numbers of (outer, steps, inner) data."""
    rest = index // inner
    return rest // steps, rest % steps, index % inner


@triton.jit
def _reverse_kernel(X, LENGTH, OUT, n, steps, inner, inner_div, outer_stride, inner_stride,
                    HAS_LENGTH: tl.constexpr, INVALID_NAN: tl.constexpr, ACCUMULATE: tl.constexpr,
                    BLOCK: tl.constexpr):
    """out[o, t, i] = x[o, length - 1 - t, i] for t < length, x[o, t, i] past it."""
    index, mask = element_block(n, BLOCK)
    o, t, i = _place(index, steps, inner)
    length, valid = _sequence_length(LENGTH, o, i, steps, inner_div, outer_stride, inner_stride, mask,
                                     HAS_LENGTH, 0)
    source = tl.where(t < length, length - 1 - t, t)
    r = load_wide(X, (o * steps + source) * inner + i, mask, 0.0)
    if INVALID_NAN:
        r = tl.where(valid, r, float("nan"))
    else:
        r = tl.where(valid, r, 0.0)
    store_result(OUT, index, r, mask, ACCUMULATE)


@triton.jit
def _last_kernel(X, LENGTH, OUT, n, steps, inner, inner_div, outer_stride, inner_stride,
                 HAS_LENGTH: tl.constexpr, BLOCK: tl.constexpr):
    """out[o, i] = x[o, length - 1, i]."""
    index, mask = element_block(n, BLOCK)
    i = index % inner
    o = index // inner
    length, valid = _sequence_length(LENGTH, o, i, steps, inner_div, outer_stride, inner_stride, mask,
                                     HAS_LENGTH, 1)
    r = load_wide(X, (o * steps + length - 1) * inner + i, mask, 0.0)
    store_result(OUT, index, tl.where(valid, r, float("nan")), mask, False)


@triton.jit
def _last_backward_kernel(DY, LENGTH, DX, n, steps, inner, inner_div, outer_stride, inner_stride,
                          HAS_LENGTH: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """dx[o, t, i] = dy[o, i] at t = length - 1, else 0 (nothing for an invalid length)."""
    index, mask = element_block(n, BLOCK)
    o, t, i = _place(index, steps, inner)
    length, valid = _sequence_length(LENGTH, o, i, steps, inner_div, outer_stride, inner_stride, mask,
                                     HAS_LENGTH, 1)
    hit = valid & (t == length - 1)
    r = load_wide(DY, o * inner + i, mask & hit, 0.0)
    store_result(DX, index, r, mask, ACCUMULATE)


def _geometry(fn: str, x: torch.Tensor, length: torch.Tensor | None, axis: int):
    """(steps, inner, inner_div, outer_stride, inner_stride) of contiguous data ``x`` with the
    time axis ``axis`` (0 or 1, the batch axis the other)."""
    check_tensor(fn, "x", x)
    if not x.is_contiguous():
        raise KernelArgumentError(f"{fn}: x must be contiguous, got strides {x.stride()}")
    if axis not in (0, 1) or x.dim() < 2:
        raise KernelArgumentError(f"{fn}: the time axis must be 0 or 1 of data with at least 2 axes, got axis={axis} "
                                  f"for shape {tuple(x.shape)}")
    if length is None:
        return x.shape[axis], math.prod(x.shape[axis + 1:]), 1, 0, 0
    return _layout(fn, x, axis, length, 1 - axis)


def _check_out(fn: str, name: str, out: torch.Tensor | None, shape, like: torch.Tensor) -> torch.Tensor:
    out = prepare_out(fn, name, out, shape, like.dtype, like.device)
    if not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: {name} must be contiguous, got strides {out.stride()}")
    return out


def plan_sequence_reverse(x: torch.Tensor, length: torch.Tensor | None, out: torch.Tensor | None, axis: int = 0,
                          accumulate: bool = False, invalid_nan: bool = True) -> list[Launch]:
    """``out (+)= x`` with each sequence's first ``length`` steps along ``axis`` reversed (all
    of them without lengths); also its own backward (``invalid_nan=False``: a sequence with an
    invalid length gets 0, not NaN)."""
    fn = "sequence_reverse"
    steps, inner, inner_div, outer_stride, inner_stride = _geometry(fn, x, length, axis)
    out = _check_out(fn, "out", out, x.shape, x)
    n = x.numel()
    return [Launch(_reverse_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [x, x if length is None else length, out, n, steps, inner, inner_div, outer_stride, inner_stride],
                   dict(HAS_LENGTH=length is not None, INVALID_NAN=invalid_nan, ACCUMULATE=accumulate,
                        BLOCK=ELEMENTWISE_BLOCK))]


def plan_sequence_last(x: torch.Tensor, length: torch.Tensor | None, out: torch.Tensor | None,
                       axis: int = 0) -> list[Launch]:
    """``out`` = each sequence's step ``length - 1`` along ``axis`` (the last without lengths):
    x's shape without ``axis``."""
    fn = "sequence_last"
    steps, inner, inner_div, outer_stride, inner_stride = _geometry(fn, x, length, axis)
    out = _check_out(fn, "out", out, tuple(d for k, d in enumerate(x.shape) if k != axis), x)
    n = out.numel()
    return [Launch(_last_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [x, x if length is None else length, out, n, steps, inner, inner_div, outer_stride, inner_stride],
                   dict(HAS_LENGTH=length is not None, BLOCK=ELEMENTWISE_BLOCK))]


def plan_sequence_last_backward(dy: torch.Tensor, length: torch.Tensor | None, dx: torch.Tensor, axis: int = 0,
                                accumulate: bool = False) -> list[Launch]:
    """``dx (+)=`` dy at each sequence's step ``length - 1``, 0 at the others."""
    fn = "sequence_last_backward"
    steps, inner, inner_div, outer_stride, inner_stride = _geometry(fn, dx, length, axis)
    check_tensor(fn, "dy", dy)
    want = tuple(d for k, d in enumerate(dx.shape) if k != axis)
    if tuple(dy.shape) != want or not dy.is_contiguous() or dy.dtype != dx.dtype:
        raise KernelArgumentError(f"{fn}: dy must be contiguous {want} in {dx.dtype}, got {tuple(dy.shape)} "
                                  f"{dy.dtype} with strides {dy.stride()}")
    n = dx.numel()
    return [Launch(_last_backward_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [dy, dy if length is None else length, dx, n, steps, inner, inner_div, outer_stride, inner_stride],
                   dict(HAS_LENGTH=length is not None, ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (64, 16, 1024) if large else (5, 3, 7)
    x = torch.empty(shape, dtype=dtype)
    lengths = torch.zeros(shape[1], dtype=dtype)
    last = torch.empty(shape[1:], dtype=dtype)
    return [("sequence reverse", plan_sequence_reverse(x, lengths, torch.empty_like(x))[0]),
            ("sequence reverse backward accumulating",
             plan_sequence_reverse(x, lengths, torch.empty_like(x), accumulate=True, invalid_nan=False)[0]),
            ("sequence last", plan_sequence_last(x, lengths, last)[0]),
            ("sequence last of the axis", plan_sequence_last(x, None, last)[0]),
            ("sequence last backward", plan_sequence_last_backward(last, lengths, torch.empty_like(x))[0])]
