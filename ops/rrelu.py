"""Randomized leaky ReLU (MXNet's LeakyReLU with ``act_type='rrelu'``, Xu et al. 2015): in
training each element's negative slope is drawn uniformly from [lower, upper) in the
kernel (Philox, keyed and counted as Dropout's masks are: ``_philox.py``), and redrawn by
backward at the same step instead of stored, so the slopes cost no memory; in inference
the slope is their mean, a plain leaky ReLU (``activation.py``).

``y = x`` where ``x > 0``, else ``slope * x``; the gradient ``dy`` there, else ``slope * dy``
(NaN where x is NaN: a comparison chooses the derivative, and NaN chooses none).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    KernelArgumentError,
    Launch,
    check_same,
    check_tensor,
    element_block,
    element_offsets,
    elementwise_launches,
    load_wide,
    store_result,
)
from ._philox import check_state, philox_counter, philox_key

TESTS = ("tests/test_rrelu.py", "tests/test_operators.py", "tests/test_gradcheck.py")


@triton.jit
def _slope(STATE, index, salt, lower: tl.float64, upper: tl.float64):
    """Each element's slope, the same draw in forward and backward."""
    u = tl.rand(philox_key(STATE, salt), philox_counter(STATE, index)).to(tl.float64)
    return lower + (upper - lower) * u


@triton.jit
def _rrelu_kernel(X, DY, OUT, STATE, n, sizes, x_strides, dy_strides, out_strides, p_strides, p_start, salt,
                  lower: tl.float64, upper: tl.float64, GRADIENT: tl.constexpr, ACCUMULATE: tl.constexpr,
                  FLAT: tl.constexpr, BLOCK: tl.constexpr):
    """OUT = rrelu(X), or (GRADIENT) OUT (+)= DY * rrelu'(X), for BLOCK elements, each drawing
    at its row-major place in the data (``p_start`` and ``p_strides``: where this launch's
    part starts, where ``elementwise_launches`` split the plan, as Dropout's masks)."""
    index, mask = element_block(n, BLOCK)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    place = p_start + element_offsets(index, FLAT, sizes, p_strides)
    slope = _slope(STATE, place, salt, lower, upper).to(x.dtype)
    if GRADIENT:
        dy = load_wide(DY, element_offsets(index, FLAT, sizes, dy_strides), mask, 0.0)
        value = tl.where(x != x, float("nan"), tl.where(x > 0, dy, dy * slope))
    else:
        value = tl.where(x > 0, x, x * slope)  # NaN: x * slope, NaN
    store_result(OUT, element_offsets(index, FLAT, sizes, out_strides), value, mask, ACCUMULATE)


def plan_rrelu(x: torch.Tensor, out: torch.Tensor, state: torch.Tensor, *, lower: float, upper: float, salt: int,
               grad_out: torch.Tensor | None = None, accumulate: bool = False) -> list[Launch]:
    """``out = rrelu(x)`` with this step's slopes; with ``grad_out``, ``out (+)=`` its gradient
    (the same slopes)."""
    fn = "rrelu_backward" if grad_out is not None else "rrelu"
    check_tensor(fn, "x", x)
    if not lower <= upper:
        raise KernelArgumentError(f"{fn}: lower={lower} is above upper={upper}")
    check_state(fn, state, x.device)
    given = dict(x=x, out=out, grad_out=grad_out)
    check_same(fn, "shape", **given)
    check_same(fn, "dtype", **given)
    # each element's place in row-major order: a contiguous (meta) tensor of the data's shape
    places = torch.empty(tuple(x.shape), dtype=torch.int8, device="meta")
    tensors = dict(x=x, dy=grad_out if grad_out is not None else x, out=out, p=places)
    return elementwise_launches(fn, x.shape, tensors, lambda t, args, flat, grid: Launch(
        _rrelu_kernel, grid, [t["x"], t["dy"], t["out"], state, *args, t["p"].storage_offset(),
                              int(salt) & 0x7FFFFFFF, float(lower), float(upper)],
        dict(GRADIENT=grad_out is not None, ACCUMULATE=accumulate, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (4096, 4096) if large else (5, 3, 7)
    x, state = torch.empty(shape, dtype=dtype), torch.zeros(2, dtype=torch.int64)
    return [("rrelu", plan_rrelu(x, torch.empty_like(x), state, lower=0.125, upper=0.334, salt=1)[0]),
            ("rrelu backward accumulating", plan_rrelu(x, torch.empty_like(x), state, lower=0.125, upper=0.334,
                                                       salt=1, grad_out=x, accumulate=True)[0])]
