"""all_finite (MXNet's ``all_finite`` and ``multi_all_finite``, as its mixed-precision
trainer checks gradients before a step): one float32 holding 1 if every element of one or
more float arrays is finite, else 0.

The output is set to 1, then each program of each array's launch counts the NaN and
infinite elements of its block and, if there are any, lowers the output to 0 with an atomic
minimum: any order of the programs gives the same answer (0 and 1 are the only values
written), and one launch per array covers arrays of any sizes and dtypes.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    element_block,
    load_nonfinite_count,
)
from .memory import plan_fill

TESTS = ("tests/test_operators.py", "tests/test_all_finite.py")


@triton.jit
def _lower_if_nonfinite_kernel(X, OUT, n, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    bad = load_nonfinite_count(X, index, mask)
    tl.atomic_min(OUT, tl.where(bad > 0, 0.0, 1.0))


def plan_all_finite(arrays, out: torch.Tensor) -> list[Launch]:
    """``out`` (one float32) = 1 if every element of every tensor of ``arrays`` is finite,
    else 0."""
    fn = "all_finite"
    check_tensor(fn, "out", out, (torch.float32,))
    if out.numel() != 1:
        raise KernelArgumentError(f"{fn}: out must hold one float32, got shape {tuple(out.shape)}")
    launches = plan_fill(out, 1.0)
    for k, x in enumerate(arrays):
        check_tensor(fn, f"arrays[{k}]", x, FLOAT_DTYPES)
        if not x.is_contiguous() or x.device != out.device:
            raise KernelArgumentError(f"{fn}: arrays[{k}] must be contiguous and on {out.device}, got strides "
                                      f"{x.stride()} on {x.device}")
        n = x.numel()
        if n:
            launches.append(Launch(_lower_if_nonfinite_kernel, (triton.cdiv(n, ELEMENTWISE_BLOCK),), [x, out, n],
                                   dict(BLOCK=ELEMENTWISE_BLOCK)))
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    n = 1 << 24 if large else 37
    return [("all finite", plan_all_finite([torch.empty(n, dtype=dtype)], torch.empty(1))[1])]
