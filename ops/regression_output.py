"""Regression outputs (linear, logistic and mean absolute error) backward: ``grad = (out -
label) * scale``, or for the absolute error ``sign(out - label) * scale``.

Forward is the identity (linear, absolute) or a sigmoid (logistic, ``activation.py``); with
the sigmoid, ``out - label`` is exactly the gradient of the cross-entropy, so both share this
kernel. The absolute error's sign is MXNet's: -1 where out equals the label (a subgradient),
and NaN where either is NaN (MXNet's gives -1 there). ``scale`` is ``grad_scale /
num_outputs`` (MXNet's convention), times the one-element device tensor ``loss_scale``
when one is given (a dynamic loss scale).
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
    check_loss_scale,
    check_same,
    check_tensor,
    element_block,
    element_offsets,
    elementwise_launches,
    prepare_out,
    run,
    store_result,
    widen,
)


@triton.jit
def _regression_backward_kernel(
    OUT, LABEL, DX, LOSS_SCALE, scale: tl.float64, n, sizes, out_strides, label_strides, dx_strides,
    HAS_LOSS_SCALE: tl.constexpr, ACCUMULATE: tl.constexpr, ABSOLUTE: tl.constexpr, FLAT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Each program computes dx (+)= (out - label) * scale [* loss_scale] for BLOCK elements
    (``ABSOLUTE``: its sign instead of the difference)."""
    index, mask = element_block(n, BLOCK)
    out = widen(tl.load(OUT + element_offsets(index, FLAT, sizes, out_strides), mask=mask, other=0.0), DX)
    label = widen(tl.load(LABEL + element_offsets(index, FLAT, sizes, label_strides), mask=mask, other=0.0), DX)
    factor = widen(scale, DX)
    if HAS_LOSS_SCALE:
        factor = factor * widen(tl.load(LOSS_SCALE), DX)
    difference = out - label
    if ABSOLUTE:  # NaN stays NaN
        difference = tl.where(difference != difference, difference, tl.where(difference > 0, 1.0, -1.0))
    store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), difference * factor, mask, ACCUMULATE)


def plan_regression_output_backward(out: torch.Tensor, label: torch.Tensor, grad_in: torch.Tensor,
                                    scale: float, accumulate: bool = False,
                                    loss_scale: torch.Tensor | None = None, absolute: bool = False) -> list[Launch]:
    """``grad_in (+)= (out - label) * scale [* loss_scale]`` (``absolute``: its sign, -1 at 0)."""
    fn = "regression_output_backward"
    check_tensor(fn, "out", out)
    check_loss_scale(fn, loss_scale, out.device)
    check_tensor(fn, "label", label, FLOAT_DTYPES)
    check_same(fn, "device", out=out, label=label)
    if label.numel() != out.numel():
        raise KernelArgumentError(f"{fn}: label has shape {tuple(label.shape)} but out has shape {tuple(out.shape)}")
    if tuple(label.shape) != tuple(out.shape):
        try:  # (N,) labels for (N, 1) outputs: the same elements in another shape
            label = label.view(out.shape)
        except RuntimeError:
            raise KernelArgumentError(f"{fn}: label with shape {tuple(label.shape)} and strides {label.stride()} "
                                      f"cannot be viewed as {tuple(out.shape)}") from None
    grad_in = prepare_out(fn, "grad_in", grad_in, out.shape, out.dtype, out.device)
    return elementwise_launches(fn, out.shape, dict(out=out, label=label, grad_in=grad_in),
                                lambda t, args, flat, grid: Launch(
        _regression_backward_kernel, grid,
        [*t.values(), loss_scale if loss_scale is not None else t["grad_in"], float(scale), *args],
        dict(HAS_LOSS_SCALE=loss_scale is not None, ACCUMULATE=accumulate, ABSOLUTE=absolute, FLAT=flat,
             BLOCK=ELEMENTWISE_BLOCK)))


def regression_output_backward(out: torch.Tensor, label: torch.Tensor, scale: float = 1.0,
                               grad_in: torch.Tensor | None = None, accumulate: bool = False,
                               loss_scale: torch.Tensor | None = None) -> torch.Tensor:
    """``grad_in (+)= (out - label) * scale [* loss_scale]``."""
    grad_in = prepare_out("regression_output_backward", "grad_in", grad_in, out.shape, out.dtype, out.device)
    run(plan_regression_output_backward(out, label, grad_in, scale, accumulate, loss_scale))
    return grad_in


# ------------------------------------------------------------------- catalogue

# What exercises these kernels (the mutation check runs them).
TESTS = ("tests/test_kernels_softmax.py", "tests/test_loss_scaling.py")


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """The regression loss gradient in ``dtype``, plain and loss-scaled, on an irregular
    shape or (``large``) 2**24 elements: what ``ops.catalog`` compiles, reports on and checks."""
    v = torch.empty((1 << 12, 1 << 12) if large else (33, 17), dtype=dtype)
    return [*(("regression", launch) for launch in plan_regression_output_backward(v, v, v, 0.5)),
            *(("regression loss-scaled", launch) for launch in plan_regression_output_backward(
                v, v, v, 0.5, loss_scale=torch.empty(1)))]
