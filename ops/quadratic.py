"""The quadratic ``a x**2 + b x + c`` of every element (MXNet's ``contrib.quadratic``) and its
gradient ``(2 a x + b) * dy``, in Horner's form (one rounding fewer than the sum of powers);
any strides, up to 4 merged dimensions per launch, like the elementwise kernels."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    Launch,
    check_tensor,
    check_writable,
    element_block,
    element_offsets,
    elementwise_launches,
    load_wide,
    store_result,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_contrib_elementwise.py")


@triton.jit
def _forward_kernel(X, OUT, a: tl.float64, b: tl.float64, c: tl.float64, n, sizes, x_strides, out_strides,
                    FLAT: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    y = (widen(a, X) * x + widen(b, X)) * x + widen(c, X)
    store_result(OUT, element_offsets(index, FLAT, sizes, out_strides), y, mask, False)


@triton.jit
def _backward_kernel(DY, X, DX, a: tl.float64, b: tl.float64, n, sizes, dy_strides, x_strides, dx_strides,
                     ACCUMULATE: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    dy = load_wide(DY, element_offsets(index, FLAT, sizes, dy_strides), mask, 0.0)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    slope = 2.0 * widen(a, X) * x + widen(b, X)
    store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), slope * dy, mask, ACCUMULATE)


def plan_quadratic(x: torch.Tensor, out: torch.Tensor, a: float, b: float, c: float) -> list[Launch]:
    """``out = a x**2 + b x + c``."""
    fn = "quadratic"
    check_tensor(fn, "x", x, FLOAT_DTYPES)
    check_tensor(fn, "out", out, (x.dtype,))
    check_writable(fn, "out", out)
    return elementwise_launches(fn, x.shape, dict(x=x, out=out), lambda t, args, flat, grid: Launch(
        _forward_kernel, grid, [*t.values(), float(a), float(b), float(c), *args],
        dict(FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def plan_quadratic_backward(dy: torch.Tensor, x: torch.Tensor, dx: torch.Tensor, a: float, b: float,
                            accumulate: bool = False) -> list[Launch]:
    """``dx (+)= (2 a x + b) * dy``."""
    fn = "quadratic backward"
    for name, t in (("dy", dy), ("x", x), ("dx", dx)):
        check_tensor(fn, name, t, (x.dtype,) if name != "x" else FLOAT_DTYPES)
    check_writable(fn, "dx", dx)
    return elementwise_launches(fn, x.shape, dict(dy=dy, x=x, dx=dx), lambda t, args, flat, grid: Launch(
        _backward_kernel, grid, [*t.values(), float(a), float(b), *args],
        dict(ACCUMULATE=accumulate, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    n = 1 << 24 if large else 37
    x, out = torch.empty(n, dtype=dtype), torch.empty(n, dtype=dtype)
    columns = torch.empty(4, n // 4 if large else 9, dtype=dtype).t()  # a transposed view: strided
    return [("quadratic", plan_quadratic(x, out, 0.5, -2.0, 3.0)[0]),
            ("quadratic grad", plan_quadratic_backward(x, x, out, 0.5, -2.0)[0]),
            ("quadratic grad strided accumulating",
             plan_quadratic_backward(columns, columns, columns.clone(), 0.5, -2.0, accumulate=True)[0])]
