"""take: slices of ``a`` along ``axis`` gathered by index, an out-of-range whole index
clipped to the axis or wrapped around it, and the gradient summed per slice in a fixed order.

One kernel of its own moves the indices into the axis (float64: clipped or wrapped where
whole, NaN where not, so that the gather gives that position NaN and the gradient nothing,
as Embedding does); the gather and the gradient are Embedding's (``ops/embedding.py``) on
``a`` seen as a (length, columns) table. Where ``axis`` is not the first, the table is a
copy of ``a`` with that axis moved to the front, and the gathered rows are copied back into
place (``ops/memory.py``'s strided copy; backward: the same moves the other way).
"""

from __future__ import annotations

import math

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
)
from .embedding import plan_embedding, plan_embedding_weight_grad
from .memory import plan_copy

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_take.py")
# An index outside the axis: clipped to its ends, wrapped around it, or (``raise``: a kernel
# cannot raise) given NaN as an index that is not whole is.
MODES = ("clip", "wrap", "raise")


@triton.jit
def _indices_kernel(IDX, OUT, n, length: tl.float64, MODE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    i = tl.load(IDX + index, mask=mask, other=0).to(tl.float64)
    whole = (i == tl.floor(i)) & (tl.abs(i) < float("inf"))  # NaN, the infinities and 1.5 are not
    if MODE == 0:  # clip
        moved = tl.minimum(tl.maximum(i, 0.0), length - 1.0)
    elif MODE == 1:  # wrap: Python's modulo, into [0, length)
        moved = i - tl.floor(i / length) * length
    else:  # raise: outside the axis is not an index
        moved = i
        whole = whole & (i >= 0.0) & (i < length)
    tl.store(OUT + index, tl.where(whole, moved, float("nan")), mask=mask)


def layout(shape, axis: int) -> tuple[int, int, int]:
    """(outer, length, inner) of ``shape`` around ``axis``."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def scratch_shapes(shape, axis: int, count: int) -> dict[str, tuple[int, ...]]:
    """The scratch ``plan_take`` and ``plan_take_backward`` need for ``a`` of ``shape`` and
    ``count`` indices (float64 ``indices``; where ``axis`` is not the first, ``table`` and
    ``rows`` in a's dtype): {name: shape}."""
    outer, length, inner = layout(shape, axis)
    shapes = {"indices": (count,)}
    if outer > 1:
        shapes.update(table=(length, outer * inner), rows=(count, outer * inner))
    return shapes


def _check(fn: str, a: torch.Tensor, indices: torch.Tensor, axis: int, mode: str, scratch: dict) -> tuple:
    check_tensor(fn, "a", a, FLOAT_DTYPES)
    check_tensor(fn, "indices", indices, FLOAT_DTYPES + INDEX_DTYPES)
    if mode not in MODES:
        raise KernelArgumentError(f"{fn}: mode={mode!r} must be one of {', '.join(MODES)}")
    if not 0 <= axis < a.dim() or a.shape[axis] == 0:
        raise KernelArgumentError(f"{fn}: axis={axis} is not an axis of a (shape {tuple(a.shape)}) with elements")
    if not a.is_contiguous() or not indices.is_contiguous():
        raise KernelArgumentError(f"{fn}: a and indices must be contiguous")
    for name, want in scratch_shapes(a.shape, axis, indices.numel()).items():
        have = scratch.get(name)
        dtype = torch.float64 if name == "indices" else a.dtype
        if have is None or tuple(have.shape) != want or have.dtype != dtype or not have.is_contiguous():
            raise KernelArgumentError(f"{fn}: scratch {name!r} must be contiguous {dtype} of shape {want}")
    return layout(a.shape, axis)


def _prepare(indices, prepared, length: int, mode: str) -> Launch:
    n = indices.numel()
    return Launch(_indices_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),), [indices, prepared, n, float(length)],
                  dict(MODE=MODES.index(mode), BLOCK=ELEMENTWISE_BLOCK))


def plan_take(a: torch.Tensor, indices: torch.Tensor, out: torch.Tensor, axis: int, mode: str,
              scratch: dict) -> list[Launch]:
    """``out = a`` gathered along ``axis`` at ``indices`` (out: a.shape[:axis] +
    indices.shape + a.shape[axis + 1:]); ``scratch`` as ``scratch_shapes`` says."""
    fn = "take"
    outer, length, inner = _check(fn, a, indices, axis, mode, scratch)
    count = indices.numel()
    if tuple(out.shape) != (*a.shape[:axis], *indices.shape, *a.shape[axis + 1:]) or out.dtype != a.dtype \
            or not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: out of shape {tuple(out.shape)} ({out.dtype}) must be contiguous "
                                  f"{a.dtype} of shape {(*a.shape[:axis], *indices.shape, *a.shape[axis + 1:])}")
    prepared = scratch["indices"]
    launches = [_prepare(indices, prepared, length, mode)]
    if outer == 1:
        return launches + plan_embedding(prepared, a.view(length, inner), out.view(count, inner))
    table, rows = scratch["table"], scratch["rows"]
    return (launches + plan_copy(a.view(outer, length, inner).permute(1, 0, 2), table.view(length, outer, inner))
            + plan_embedding(prepared, table, rows)
            + plan_copy(rows.view(count, outer, inner).permute(1, 0, 2), out.view(outer, count, inner)))


def plan_take_backward(grad_out: torch.Tensor, indices: torch.Tensor, grad_a: torch.Tensor, axis: int, mode: str,
                       scratch: dict, accumulate: bool = False) -> list[Launch]:
    """``grad_a (+)=`` the gradient of ``plan_take``: each slice of a the sum of the output
    slices its index gathered, in a fixed order."""
    fn = "take backward"
    outer, length, inner = _check(fn, grad_a, indices, axis, mode, scratch)
    count = indices.numel()
    check_tensor(fn, "grad_out", grad_out, (grad_a.dtype,))
    if grad_out.numel() != outer * count * inner or not grad_out.is_contiguous():
        raise KernelArgumentError(f"{fn}: grad_out of shape {tuple(grad_out.shape)} must be contiguous with "
                                  f"{outer * count * inner} elements")
    prepared = scratch["indices"]
    launches = [_prepare(indices, prepared, length, mode)]
    if outer == 1:
        return launches + plan_embedding_weight_grad(prepared, grad_out.reshape(count, inner),
                                                     grad_a.view(length, inner), accumulate=accumulate)
    table, rows = scratch["table"], scratch["rows"]
    return (launches + plan_copy(grad_out.view(outer, count, inner).permute(1, 0, 2), rows.view(count, outer, inner))
            + plan_embedding_weight_grad(prepared, rows, table)
            + plan_copy(table.view(length, outer, inner).permute(1, 0, 2), grad_a.view(outer, length, inner),
                        accumulate=accumulate))


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """The index kernel on indices of ``dtype`` in every mode, and on int64 ones (the gather and
    its gradient are Embedding's launches)."""
    count = 4096 if large else 7
    prepared = torch.empty(count, dtype=torch.float64)
    launches = [(f"take indices {mode}", _prepare(torch.empty(count, dtype=dtype), prepared, 100, mode))
                for mode in MODES]
    return launches + [("take integer indices", _prepare(torch.empty(count, dtype=torch.int64), prepared, 100, "clip"))]
