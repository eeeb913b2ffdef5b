"""Dropout: a Bernoulli mask drawn in the kernel, redrawn (not stored) for backward.

Each element's keep decision is ``uniform >= p`` with ``uniform`` from Triton's Philox
(``tl.rand``, counter based): the key is the seed of ``tritonsym.random`` mixed with the
operator's own ``salt`` (so two Dropout layers draw different masks), and the counter is
the element's index in the mask plus the training step times 2**32. Seed and step are read
from a small device tensor (``random.device_state``), not passed by the host, so a captured
CUDA graph draws a new mask at every replay; the executor advances the step once per
training forward (``plan_advance``). Backward runs at the same step and draws the same
mask, so Dropout keeps nothing for backward: it costs no activation memory.

``axes`` share one draw along those axes (MXNet's variational dropout): the mask's index
of an element comes from strides that are 0 along them. The same seed gives the same
masks in Triton's interpreter and compiled, since Philox is integer arithmetic.
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
    element_block,
    element_offsets,
    elementwise_launches,
    load_wide,
    prepare_out,
    store_result,
)
from ._philox import check_state, philox_counter, philox_key

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_dropout.py")


@triton.jit
def _keep(STATE, mask_index, salt, p):
    """Whether each element survives, and nothing else: the same draw in forward and backward."""
    return tl.rand(philox_key(STATE, salt), philox_counter(STATE, mask_index)) >= p


@triton.jit
def _dropout_kernel(X, Y, STATE, n, sizes, x_strides, y_strides, m_strides, m_start, salt, p, scale: tl.float64,
                    FLAT: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    """``Y = X * keep / (1 - p)``: the forward, and (X = dY, Y = dX) the backward. Each
    element's draw is numbered by its place in the mask (``m_start`` is where this launch's
    part of the mask starts, where ``elementwise_launches`` split the plan)."""
    index, mask = element_block(n, BLOCK)
    keep = _keep(STATE, m_start + element_offsets(index, FLAT, sizes, m_strides), salt, p)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    # x times 0 or 1 / (1 - p), as the math (and torch) has it: a NaN stays NaN even where dropped.
    store_result(Y, element_offsets(index, FLAT, sizes, y_strides), x * tl.where(keep, scale.to(x.dtype), 0.0), mask,
                 ACCUMULATE)


@triton.jit
def _advance_kernel(STATE):
    tl.store(STATE + 1, tl.load(STATE + 1) + 1)


def mask_shape(shape, axes) -> tuple[int, ...]:
    """The shape of the mask: 1 along ``axes`` (one draw shared along them)."""
    normalised = {a % len(shape) for a in axes}
    return tuple(1 if d in normalised else n for d, n in enumerate(shape))


def plan_dropout(x: torch.Tensor, out: torch.Tensor, state: torch.Tensor, *, p: float, salt: int, axes=(),
                 accumulate: bool = False) -> list[Launch]:
    """``out = x * mask / (1 - p)`` (``accumulate``: add into ``out``); with ``x`` the output
    gradient and ``out`` the input gradient it is the backward, with the same mask."""
    fn = "dropout"
    check_tensor(fn, "x", x)
    if not (0.0 <= p < 1.0):
        raise KernelArgumentError(f"{fn}: p={p} must be in [0, 1)")
    check_state(fn, state, x.device)
    for a in axes:
        if not -x.dim() <= a < x.dim():
            raise KernelArgumentError(f"{fn}: axis {a} of axes={tuple(axes)} is out of range for shape "
                                      f"{tuple(x.shape)}")
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    # The mask's strides: a contiguous tensor of the mask's shape, expanded (stride 0 along axes).
    shared = torch.empty(mask_shape(tuple(x.shape), axes), dtype=torch.int8, device="meta").expand(x.shape)
    return elementwise_launches(fn, x.shape, dict(x=x, out=out, m=shared), lambda t, args, flat, grid: Launch(
        _dropout_kernel, grid, [t["x"], t["out"], state, *args, t["m"].storage_offset(), int(salt) & 0x7FFFFFFF,
                                float(p), 1.0 / (1.0 - p)],
        dict(FLAT=flat, ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK)))


def plan_advance(state: torch.Tensor) -> list[Launch]:
    """One more training step: the next masks differ."""
    return [Launch(_advance_kernel, (1,), [state], {})]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (4096, 4096) if large else (5, 3, 7)
    x, state = torch.empty(shape, dtype=dtype), torch.zeros(2, dtype=torch.int64)
    return [("dropout", plan_dropout(x, torch.empty_like(x), state, p=0.5, salt=1)[0]),
            ("dropout shared along axes", plan_dropout(x, torch.empty_like(x), state, p=0.5, salt=1, axes=(1,))[0]),
            ("dropout grad accumulating", plan_dropout(x, torch.empty_like(x), state, p=0.5, salt=1,
                                                      accumulate=True)[0]),
            ("dropout step", plan_advance(state)[0])]
