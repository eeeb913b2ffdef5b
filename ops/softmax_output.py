"""Softmax-output (softmax + cross-entropy) backward, in one pass over the probabilities.

Forward is a softmax (``softmax.py``). Backward writes, per element,

    grad = (p - target) * grad_scale * loss_scale / norm      [* head_grad with out_grad]

where ``target`` is onehot(label) (smoothed by ``smooth_alpha``) or, when the label has
the data's shape, the label itself as a probability target (then ``norm`` is 1). Rows
whose label equals ``ignore_label`` (with ``use_ignore``) get zero gradient. ``norm`` is 1
(``null``), the batch size (``batch``) or the number of non-ignored labels (``valid``),
which ``count_valid_labels`` writes into a one-element buffer before backward runs.
``loss_scale`` is a one-element device tensor (a dynamic loss scale, rewritten on the
device between steps), or absent.

A class label that is not a whole number in ``[0, classes)`` (NaN, 1.5, -2, or
``classes`` itself) and is not ignored gives that row a NaN gradient: a wrong label
must not train silently.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    INTERPRET,
    KernelArgumentError,
    Launch,
    check_loss_scale,
    check_same,
    check_tensor,
    prepare_out,
    run,
    store_result,
)
from .softmax import axis_layout, normalize_axis, row_offsets

NORMALIZATIONS = ("null", "batch", "valid")
COUNT_BLOCK = 1 << 16 if INTERPRET else 4096
MAX_BLOCK_C = 1 << 14 if INTERPRET else 2048  # classes per program: wider rows take several programs
ROW_BUDGET = 1 << 16 if INTERPRET else 2048  # elements per program: narrow rows share one


@triton.jit
def _count_valid_kernel(LABEL, COUNT, n, ignore_label: tl.float64, BLOCK: tl.constexpr):
    """One program counts the labels that differ from ignore_label (at least 1)."""
    total = tl.zeros((BLOCK,), tl.float32)
    for start in range(0, n, BLOCK):
        index = start + tl.arange(0, BLOCK)
        mask = index < n
        label = tl.load(LABEL + index, mask=mask, other=0).to(tl.float64)
        total += tl.where(mask & (label != ignore_label), 1.0, 0.0)
    tl.store(COUNT, tl.maximum(tl.sum(total, 0), 1.0))


@triton.jit
def _softmax_output_backward_kernel(
    P, LABEL, HEAD, DX, COUNT, LOSS_SCALE,
    rows_total, cols, inner, p_strides, label_strides, head_strides, dx_strides,
    grad_scale: tl.float64, ignore_label: tl.float64, smooth_alpha: tl.float64, divisor,
    LABEL_IS_PROB: tl.constexpr, USE_IGNORE: tl.constexpr, NORMALIZATION: tl.constexpr,
    OUT_GRAD: tl.constexpr, HAS_LOSS_SCALE: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """Program (i, j) writes the loss gradient of rows [i BLOCK_R, (i + 1) BLOCK_R), columns
    [j BLOCK_C, (j + 1) BLOCK_C): elementwise given p, so a few wide rows still spread over
    many programs."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < rows_total
    p_row = row_offsets(rows, inner, p_strides)
    label_row = row_offsets(rows, inner, label_strides)
    head_row = row_offsets(rows, inner, head_strides)
    dx_row = row_offsets(rows, inner, dx_strides)
    CT = tl.float64 if DX.dtype.element_ty == tl.float64 else tl.float32

    scale = tl.full((BLOCK_R,), 1.0, CT) * grad_scale.to(CT)
    if HAS_LOSS_SCALE:
        scale = scale * tl.load(LOSS_SCALE).to(CT)
    if not LABEL_IS_PROB:
        label = tl.load(LABEL + label_row, mask=row_mask, other=0).to(tl.float64)
        # A class is a whole number in [0, classes); NaN, fractions and negatives are not
        # (MXNet truncates them to some class silently). Only in-range values are converted
        # to integers: NaN or 1e30 has no int64 value.
        in_range = (label >= 0) & (label < cols)
        cls = tl.where(in_range, label, -1.0).to(tl.int64)
        is_class = in_range & (cls.to(tl.float64) == label)
        if USE_IGNORE:
            keep = label != ignore_label
            scale = tl.where(keep, scale, 0.0)
            scale = tl.where(keep & ~is_class, float("nan"), scale)
        else:
            scale = tl.where(is_class, scale, float("nan"))
        if NORMALIZATION == "constant":
            scale = scale / divisor
        elif NORMALIZATION == "count":
            scale = scale / tl.load(COUNT).to(CT)
        on_value = (1.0 - smooth_alpha).to(CT)
        off_value = (smooth_alpha / tl.maximum(cols - 1, 1)).to(CT)

    col = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]
    mask = row_mask[:, None] & (col < cols)
    p = tl.load(P + p_row[:, None] + col * p_strides[1], mask=mask, other=0.0).to(CT)
    if LABEL_IS_PROB:
        target = tl.load(LABEL + label_row[:, None] + col * label_strides[1], mask=mask, other=0.0).to(CT)
    else:
        target = tl.where(col == cls[:, None], on_value, off_value)
    grad = (p - target) * scale[:, None]
    if OUT_GRAD:
        grad = grad * tl.load(HEAD + head_row[:, None] + col * head_strides[1], mask=mask, other=0.0).to(CT)
    store_result(DX, dx_row[:, None] + col * dx_strides[1], grad, mask, ACCUMULATE)


# ------------------------------------------------------------------------ launchers


def plan_count_valid_labels(label: torch.Tensor, count: torch.Tensor, ignore_label: float) -> list[Launch]:
    fn = "count_valid_labels"
    check_tensor(fn, "label", label, FLOAT_DTYPES + INDEX_DTYPES)
    check_tensor(fn, "count", count, (torch.float32,))
    if count.numel() != 1:
        raise KernelArgumentError(f"{fn}: count must hold one float32, got shape {tuple(count.shape)}")
    if not label.is_contiguous():
        raise KernelArgumentError(f"{fn}: label must be contiguous, got strides {label.stride()}")
    return [Launch(_count_valid_kernel, (1,), [label, count, label.numel(), float(ignore_label)],
                   dict(BLOCK=COUNT_BLOCK))]


def count_valid_labels(label: torch.Tensor, ignore_label: float, count: torch.Tensor | None = None) -> torch.Tensor:
    """Number of labels different from ``ignore_label`` (at least 1), as a one-element float32."""
    count = prepare_out("count_valid_labels", "count", count, (1,), torch.float32, label.device)
    run(plan_count_valid_labels(label, count, ignore_label))
    return count


def plan_softmax_output_backward(
    prob: torch.Tensor, label: torch.Tensor, grad_in: torch.Tensor, *, axis: int = -1, grad_scale: float = 1.0,
    ignore_label: float = -1.0, use_ignore: bool = False, normalization: str = "null", smooth_alpha: float = 0.0,
    head_grad: torch.Tensor | None = None, valid_count: torch.Tensor | None = None, accumulate: bool = False,
    loss_scale: torch.Tensor | None = None,
) -> list[Launch]:
    fn = "softmax_output_backward"
    check_tensor(fn, "prob", prob)
    check_loss_scale(fn, loss_scale, prob.device)
    check_tensor(fn, "label", label, FLOAT_DTYPES + INDEX_DTYPES)
    check_same(fn, "device", prob=prob, label=label, head_grad=head_grad)
    if normalization not in NORMALIZATIONS:
        raise KernelArgumentError(f"{fn}: normalization={normalization!r} is not one of {', '.join(NORMALIZATIONS)}")
    if prob.dim() == 0:
        raise KernelArgumentError(f"{fn}: prob must have at least one dimension")
    axis = normalize_axis(fn, axis, prob.dim())
    label_is_prob = tuple(label.shape) == tuple(prob.shape)
    row_shape = tuple(prob.shape[:axis]) + tuple(prob.shape[axis + 1:])
    if not label_is_prob and tuple(label.shape) != row_shape:
        raise KernelArgumentError(f"{fn}: label has shape {tuple(label.shape)}; expected {row_shape} (class indices) "
                                  f"or {tuple(prob.shape)} (probabilities)")
    if normalization == "valid" and not label_is_prob and use_ignore and valid_count is None:
        raise KernelArgumentError(f"{fn}: normalization='valid' with use_ignore needs valid_count "
                                  "(see count_valid_labels)")
    grad_in = prepare_out(fn, "grad_in", grad_in, prob.shape, prob.dtype, prob.device)
    if head_grad is not None:
        check_same(fn, "shape", prob=prob, head_grad=head_grad)

    rows, cols, inner, p_strides = axis_layout(fn, prob, axis)
    dx_strides = axis_layout(fn, grad_in, axis)[3]
    head_strides = axis_layout(fn, head_grad, axis)[3] if head_grad is not None else (0, 0, 0)
    if label_is_prob:
        label_strides = axis_layout(fn, label, axis)[3]
    else:
        # Class labels have the row shape: view them with a unit axis where the classes were.
        label_strides = axis_layout(fn, label.unsqueeze(axis), axis)[3]

    # How the loss is normalised: by nothing, by a number known now, or by the label count
    # that count_valid_labels wrote into valid_count.
    if label_is_prob or normalization == "null":
        norm, divisor = "null", 1
    elif normalization == "batch":
        norm, divisor = "constant", prob.shape[0]
    elif use_ignore:
        norm, divisor = "count", 1
    else:
        norm, divisor = "constant", rows  # nothing is ignored: every label is valid
    count = valid_count if norm == "count" else grad_in

    block_c = min(triton.next_power_of_2(max(cols, 1)), MAX_BLOCK_C)
    block_r = max(1, min(ROW_BUDGET // block_c, triton.next_power_of_2(max(rows, 1))))
    grid = (triton.cdiv(max(rows, 1), block_r), triton.cdiv(max(cols, 1), block_c))
    return [Launch(_softmax_output_backward_kernel, grid,
                   [prob, label, head_grad if head_grad is not None else prob, grad_in, count,
                    loss_scale if loss_scale is not None else grad_in,
                    rows, cols, max(inner, 1), p_strides, label_strides, head_strides, dx_strides,
                    float(grad_scale), float(ignore_label), float(smooth_alpha), int(divisor)],
                   dict(LABEL_IS_PROB=label_is_prob, USE_IGNORE=bool(use_ignore), NORMALIZATION=norm,
                        OUT_GRAD=head_grad is not None, HAS_LOSS_SCALE=loss_scale is not None,
                        ACCUMULATE=accumulate, BLOCK_R=block_r, BLOCK_C=block_c))]


def softmax_output_backward(prob: torch.Tensor, label: torch.Tensor, grad_in: torch.Tensor | None = None,
                            **options) -> torch.Tensor:
    """Loss gradient of softmax-output from its probabilities ``prob`` and ``label``.

    Options: ``axis`` (the class axis, default -1), ``grad_scale``, ``ignore_label``,
    ``use_ignore``, ``normalization`` (null | batch | valid), ``smooth_alpha``,
    ``head_grad`` (multiply elementwise, MXNet's ``out_grad``), ``accumulate``,
    ``loss_scale`` (a one-element float32 tensor read on the device).
    Standalone, ``valid`` normalization with ``use_ignore`` counts the labels itself.
    """
    grad_in = prepare_out("softmax_output_backward", "grad_in", grad_in, prob.shape, prob.dtype, prob.device)
    if (options.get("normalization") == "valid" and options.get("use_ignore")
            and options.get("valid_count") is None and tuple(label.shape) != tuple(prob.shape)):
        options["valid_count"] = count_valid_labels(label.contiguous(), options.get("ignore_label", -1.0))
    run(plan_softmax_output_backward(prob, label, grad_in, **options))
    return grad_in


# ------------------------------------------------------------------- catalogue

# What exercises these kernels (the mutation check runs them).
TESTS = ("tests/test_kernels_softmax.py", "tests/test_loss_scaling.py")


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """The loss gradient in ``dtype`` with class labels (ignored, valid-normalised, times a
    head gradient), with a probability target and smoothing, loss-scaled, and the count of
    valid labels; on 33x17 or (``large``) 4096x4096: what ``ops.catalog`` compiles, reports
    on and checks."""
    rows, cols = (4096, 4096) if large else (33, 17)
    v, label = torch.empty(rows, cols, dtype=dtype), torch.empty(rows, dtype=dtype)
    one = torch.empty(1)
    return [*(("softmax output", launch) for launch in plan_softmax_output_backward(
                v, label, v, use_ignore=True, normalization="valid", valid_count=one, head_grad=v)),
            *(("softmax output prob", launch) for launch in plan_softmax_output_backward(v, v, v, smooth_alpha=0.1)),
            *(("softmax output loss-scaled", launch) for launch in plan_softmax_output_backward(
                v, label, v, normalization="batch", loss_scale=one)),
            *(("count labels", launch) for launch in plan_count_valid_labels(torch.empty(rows, dtype=torch.int64),
                                                                             one, -1.0))]
