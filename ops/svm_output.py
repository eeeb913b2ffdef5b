"""SVMOutput's gradient (MXNet's support-vector-machine output layer): forward is the
identity; backward writes, for each row of scores x over the last axis with class label k,

- L2-SVM (MXNet's default): ``-2 (margin - x_k)`` at the label where ``x_k < margin``, and
  ``2 (margin + x_j)`` at every other class where ``x_j > -margin`` (0 elsewhere);
- L1-SVM (``use_linear``): -1 at the label where ``x_k < margin``, 1 at every other class
  where ``x_j > -margin``;

times ``regularization_coefficient`` (and the one-element device ``loss_scale`` when
given). A label that is not a whole number in ``[0, classes)`` (NaN, 1.5, -1, ``classes``)
gives its row a NaN gradient, where MXNet truncates it or treats every class as wrong; a NaN
score gives NaN, where MXNet's comparisons give 0.
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
    check_loss_scale,
    check_tensor,
    check_writable,
    element_block,
    keep_nan,
    load_wide,
    store_result,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_svm_output.py")


@triton.jit
def _svm_backward_kernel(X, LABEL, DX, LOSS_SCALE, margin: tl.float64, coefficient: tl.float64, n, classes,
                         LINEAR: tl.constexpr, HAS_LOSS_SCALE: tl.constexpr, ACCUMULATE: tl.constexpr,
                         BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    row, column = index // classes, index % classes
    x = load_wide(X, index, mask, 0.0)
    label = tl.load(LABEL + row, mask=mask, other=0).to(tl.float64)
    is_class = (label >= 0) & (label < classes) & (label == tl.floor(label))  # NaN is not
    m = widen(margin, DX)
    at_label = column.to(tl.float64) == label
    if LINEAR:
        grad = tl.where(at_label, tl.where(x < m, -1.0, 0.0), tl.where(x > -m, 1.0, 0.0))
    else:
        grad = tl.where(at_label, tl.where(x < m, -2.0 * (m - x), 0.0), tl.where(x > -m, 2.0 * (m + x), 0.0))
    factor = widen(coefficient, DX)
    if HAS_LOSS_SCALE:
        factor = factor * widen(tl.load(LOSS_SCALE), DX)
    grad = tl.where(is_class, keep_nan(x, grad) * factor, float("nan"))
    store_result(DX, index, grad, mask, ACCUMULATE)


def plan_svm_output_backward(out: torch.Tensor, label: torch.Tensor, grad: torch.Tensor, *, margin: float = 1.0,
                             coefficient: float = 1.0, linear: bool = False, accumulate: bool = False,
                             loss_scale: torch.Tensor | None = None) -> list[Launch]:
    """``grad (+)=`` the SVM gradient of the scores ``out`` (..., classes) for ``label`` (...)."""
    fn = "svm_output_backward"
    check_tensor(fn, "out", out, FLOAT_DTYPES)
    check_tensor(fn, "label", label, FLOAT_DTYPES + INDEX_DTYPES)
    check_tensor(fn, "grad", grad, (out.dtype,))
    check_writable(fn, "grad", grad)
    check_loss_scale(fn, loss_scale, out.device)
    if out.dim() < 2 or tuple(label.shape) != tuple(out.shape[:-1]) or tuple(grad.shape) != tuple(out.shape):
        raise KernelArgumentError(f"{fn}: out {tuple(out.shape)} must be (..., classes), label {tuple(label.shape)} "
                                  f"its shape without the classes and grad {tuple(grad.shape)} its shape")
    if not (out.is_contiguous() and label.is_contiguous() and grad.is_contiguous()):
        raise KernelArgumentError(f"{fn}: out, label and grad must be contiguous")
    n = out.numel()
    return [Launch(_svm_backward_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),),
                   [out, label, grad, out if loss_scale is None else loss_scale, float(margin), float(coefficient), n,
                    out.shape[-1]],
                   dict(LINEAR=linear, HAS_LOSS_SCALE=loss_scale is not None, ACCUMULATE=accumulate,
                        BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    rows, classes = (65536, 1000) if large else (7, 5)
    x, grad = torch.empty(rows, classes, dtype=dtype), torch.empty(rows, classes, dtype=dtype)
    label, scale = torch.empty(rows, dtype=torch.int32), torch.ones(1, dtype=torch.float32)
    return [("svm output grad (L2) of float32 labels", plan_svm_output_backward(x, label.float(), grad)[0]),
            ("svm output grad (L1) of int32 labels, loss-scaled, accumulating",
             plan_svm_output_backward(x, label, grad, linear=True, accumulate=True, loss_scale=scale)[0])]
