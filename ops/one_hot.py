"""one_hot: each index as a row of ``depth`` values, ``on_value`` at the index and
``off_value`` elsewhere.

An index may be a float or an integer. A whole number outside ``[0, depth)`` gives a row of
``off_value`` (MXNet's rule, which a label to be ignored relies on); one that is not a whole
number (NaN, 1.5) gives a row of NaN, so a wrong index shows (MXNet truncates it).
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
    element_block,
    prepare_out,
    store,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_one_hot.py")


@triton.jit
def _one_hot_kernel(IDX, OUT, on_value: tl.float64, off_value: tl.float64, n, depth, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    k = tl.load(IDX + index // depth, mask=mask, other=0).to(tl.float64)
    column = (index % depth).to(tl.float64)
    on, off = on_value.to(tl.float64), off_value.to(tl.float64)
    v = tl.where(k == column, on, off)
    v = tl.where(k == tl.floor(k), v, float("nan"))  # NaN and 1.5 fail (inf is whole: out of range)
    store(OUT, index, widen(v, OUT), mask)


def plan_one_hot(indices: torch.Tensor, out: torch.Tensor, depth: int, on_value: float = 1.0,
                 off_value: float = 0.0) -> list[Launch]:
    """``out[..., c] = on_value if indices[...] == c else off_value`` (``out``: indices' shape + (depth,))."""
    fn = "one_hot"
    check_tensor(fn, "indices", indices, FLOAT_DTYPES + INDEX_DTYPES)
    if depth < 1:
        raise KernelArgumentError(f"{fn}: depth={depth} must be positive")
    out = prepare_out(fn, "out", out, (*indices.shape, depth), out.dtype if out is not None else torch.float32,
                      indices.device)
    check_tensor(fn, "out", out)
    for name, t in (("indices", indices), ("out", out)):
        if not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be contiguous, got strides {t.stride()}")
    n = out.numel()
    return [Launch(_one_hot_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [indices, out, float(on_value), float(off_value), n, depth], dict(BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """one_hot from float and from int64 indices."""
    positions, depth = ((8192,), 32000) if large else ((5, 3), 7)
    out = torch.empty((*positions, depth), dtype=dtype)
    return [("one_hot", plan_one_hot(torch.empty(positions), out, depth)[0]),
            # a depth of one: Triton compiles it in as a constant
            ("one_hot depth one", plan_one_hot(torch.empty(positions), torch.empty((*positions, 1), dtype=dtype),
                                               1)[0]),
            ("one_hot int64 indices", plan_one_hot(torch.empty(positions, dtype=torch.int64), out, depth, 5.0,
                                                   -1.0)[0])]
