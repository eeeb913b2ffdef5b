"""flip: the elements reversed along some axes, forward and (the same map) backward.

torch views cannot have negative strides, so the kernel reads the source at ``base +``
its strides with the flipped axes' strides negated (``base``: the offset of the element that
comes first, the last along each flipped axis), through the strided element indexing every
elementwise kernel uses.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    MAX_DIMS,
    KernelArgumentError,
    Launch,
    check_tensor,
    collapse_dims,
    element_block,
    element_offsets,
    prepare_out,
    store_result,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_shape_operators.py")


@triton.jit
def _flip_kernel(X, Y, base, n, sizes, x_strides, y_strides, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    v = tl.load(X + base + element_offsets(index, False, sizes, x_strides), mask=mask, other=0.0)
    store_result(Y, element_offsets(index, False, sizes, y_strides), widen(v, Y), mask, ACCUMULATE)


def plan_flip(x: torch.Tensor, out: torch.Tensor | None, axes, accumulate: bool = False) -> list[Launch]:
    """``out (+)= x`` reversed along ``axes``."""
    fn = "flip"
    check_tensor(fn, "x", x, FLOAT_DTYPES)
    flipped = {a % x.dim() for a in axes} if x.dim() else set()
    if any(not -x.dim() <= a < x.dim() for a in axes):
        raise KernelArgumentError(f"{fn}: axes={tuple(axes)} are not axes of shape {tuple(x.shape)}")
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    x_strides = [-s if d in flipped else s for d, s in enumerate(x.stride())]
    base = sum((x.shape[d] - 1) * x.stride(d) for d in flipped if x.shape[d] > 0)
    sizes, (xs, ys) = collapse_dims(x.shape, x_strides, out.stride())
    if len(sizes) > MAX_DIMS:
        # More unmergeable dimensions than the kernel indexes: one launch per index of the
        # smallest axis (read from its far end where that axis is flipped), until the rest merge.
        axis = min((d for d, n in enumerate(x.shape) if n != 1), key=lambda d: x.shape[d])
        rest = sorted(d - (d > axis) for d in flipped if d != axis)
        n = x.shape[axis]
        return [launch for i in range(n) for launch in plan_flip(
            x.select(axis, n - 1 - i if axis in flipped else i), out.select(axis, i), rest, accumulate)]
    pad = MAX_DIMS - len(sizes)
    sizes, xs, ys = [1] * pad + sizes, [0] * pad + xs, [0] * pad + ys
    n = x.numel()
    grid = (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),)
    return [Launch(_flip_kernel, grid, [x, out, base, n, tuple(sizes[1:]), tuple(xs), tuple(ys)],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (64, 512, 1024) if large else (5, 3, 7)
    x = torch.empty(shape, dtype=dtype)
    return [("flip", plan_flip(x, torch.empty_like(x), (1,))[0]),
            ("flip accumulating", plan_flip(x, torch.empty_like(x), (0, 2), accumulate=True)[0])]
