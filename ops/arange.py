"""Arrays made from nothing but parameters: ramps (MXNet's ``_arange``, ``_linspace``,
``_contrib_arange_like``, and with a step of 0 ``_zeros``, ``_ones``, ``_full``) and the
identity-like ``_eye``.

A ramp's element ``i`` is ``start + step * (i // repeat)``, computed in float64 and rounded
once into the output's dtype, so a float32 or half ramp has no drift from repeated adds.
Integer outputs (int32, int64: positions for Embedding or take) are written exactly up to
2**53. Nothing is read, so these run the same whether the graph is training or not.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    element_block,
    store,
)

TESTS = ("tests/test_operators.py", "tests/test_arange.py")


@triton.jit
def _ramp_kernel(OUT, n, start: tl.float64, step: tl.float64, repeat, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    v = start + step * (index // repeat).to(tl.float64)
    store(OUT, index, v, mask)


@triton.jit
def _eye_kernel(OUT, n, cols, k, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    row = index // cols
    on = (index - row * cols - row) == k
    store(OUT, index, tl.where(on, 1.0, 0.0).to(tl.float64), mask)


def _check_out(fn: str, out: torch.Tensor) -> int:
    check_tensor(fn, "out", out, FLOAT_DTYPES + INDEX_DTYPES)
    check_writable(fn, "out", out)
    if not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: out must be contiguous, got strides {out.stride()}")
    return out.numel()


def plan_ramp(out: torch.Tensor, start: float, step: float, repeat: int = 1) -> list[Launch]:
    """``out.flatten()[i] = start + step * (i // repeat)``; for an integer ``out`` start and
    step are first made integers (truncated, as MXNet and numpy do)."""
    fn = "ramp"
    n = _check_out(fn, out)
    if repeat < 1:
        raise KernelArgumentError(f"{fn}: repeat={repeat} must be at least 1")
    if not out.dtype.is_floating_point:
        start, step = float(int(start)), float(int(step))
    return [Launch(_ramp_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [out, n, float(start), float(step), int(repeat)], dict(BLOCK=ELEMENTWISE_BLOCK))]


def plan_eye(out: torch.Tensor, k: int = 0) -> list[Launch]:
    """``out`` (rows, cols) = 1 on diagonal ``k`` (above the main one when positive), else 0."""
    fn = "eye"
    n = _check_out(fn, out)
    if out.dim() != 2:
        raise KernelArgumentError(f"{fn}: out must be a matrix, got shape {tuple(out.shape)}")
    return [Launch(_eye_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),), [out, n, out.shape[1], int(k)],
                   dict(BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    n = 1 << 20 if large else 37
    launches = [("ramp", plan_ramp(torch.empty(n, dtype=dtype), 0.5, 0.25, 2)[0]),
                ("eye", plan_eye(torch.empty(n // 8 + 1, 9, dtype=dtype), 1)[0])]
    if dtype == torch.float32:  # integer positions, as Embedding reads them
        launches += [("ramp of int32", plan_ramp(torch.empty(n, dtype=torch.int32), 0, 1)[0]),
                     ("ramp of int64", plan_ramp(torch.empty(n, dtype=torch.int64), 0, 1)[0])]
    return launches
