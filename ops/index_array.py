"""index_array (MXNet's ``contrib.index_array``): for data of shape (d_1, ..., d_n), an
int64 array (d_1, ..., d_n, m) whose element [i_1, ..., i_n, j] is i_{axes[j]}, each
position's own coordinates along ``axes`` (all of them by default), as positions for a
gather or a mask built inside a graph.

The values depend on the shape alone, so nothing is read. One launch per coordinate j
writes column j of every position: ``(position // stride) % length`` of its axis, exact in
int64 integer arithmetic.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import ELEMENTWISE_BLOCK, INDEX_DTYPES, KernelArgumentError, Launch, check_tensor, element_block

TESTS = ("tests/test_operators.py", "tests/test_index_array.py")


@triton.jit
def _coordinate_kernel(OUT, positions, columns, column, stride, length, BLOCK: tl.constexpr):
    position, mask = element_block(positions, BLOCK)
    value = (position // stride) % length
    tl.store(OUT + position * columns + column, value.to(OUT.dtype.element_ty), mask=mask)


def plan_index_array(shape, axes, out: torch.Tensor) -> list[Launch]:
    """``out`` (*shape, len(axes)) = each position's coordinates along ``axes`` (axes of
    ``shape``, from 0)."""
    fn = "index_array"
    shape, axes = tuple(shape), tuple(axes)
    check_tensor(fn, "out", out, INDEX_DTYPES)
    if tuple(out.shape) != shape + (len(axes),) or not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: out must be contiguous of shape {shape + (len(axes),)}, got "
                                  f"{tuple(out.shape)} strides {out.stride()}")
    if any(not 0 <= a < len(shape) for a in axes):
        raise KernelArgumentError(f"{fn}: axes {axes} must be axes of shape {shape}")
    positions = out.numel() // max(len(axes), 1)
    launches = []
    for column, axis in enumerate(axes):
        stride = 1
        for length in shape[axis + 1:]:
            stride *= length
        if positions:
            launches.append(Launch(_coordinate_kernel, (triton.cdiv(positions, ELEMENTWISE_BLOCK),),
                                   [out, positions, len(axes), column, stride, shape[axis]],
                                   dict(BLOCK=ELEMENTWISE_BLOCK)))
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    if dtype != torch.float32:  # an int64 output whatever the data's dtype: one row is enough
        return []
    shape = (64, 512, 512) if large else (3, 5, 7)
    out = torch.empty(*shape, 2, dtype=torch.int64)
    return [("index array", plan_index_array(shape, (2, 0), out)[0])]
