"""Softmax-output (softmax + cross-entropy): the loss gradient, in one pass.

Forward is a softmax (``softmax.py``); the gradient is, per element,

    grad = (p - target) * grad_scale * loss_scale / norm      [* head_grad with out_grad]

where ``target`` is onehot(label) (smoothed by ``smooth_alpha``) or, when the label has
the data's shape, the label itself as a probability target (then ``norm`` is 1). Rows
whose label equals ``ignore_label`` (with ``use_ignore``) get zero gradient. ``norm`` is 1
(``null``), the batch size (``batch``) or the number of non-ignored labels (``valid``),
which ``count_valid_labels`` writes into a one-element buffer before backward runs.
``loss_scale`` is a one-element device tensor (a dynamic loss scale, rewritten on the
device between steps), or absent.

``plan_softmax_output_backward`` makes the gradient from the probabilities; a training
forward (``plan_softmax_output_train``) makes both from the logits, reading them once
where a row fits one block, so the backward has nothing left to do.

A class label that is not a whole number in ``[0, classes)`` (NaN, 1.5, -2, or
``classes`` itself) and is not ignored gives that row a NaN gradient: a wrong label
must not train silently.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ._common import (
    FLOAT_DTYPES,
    INDEX_DTYPES,
    INTERPRET,
    KernelArgumentError,
    Launch,
    aligned,
    aligned_strides,
    cast_for,
    check_loss_scale,
    check_same,
    check_tensor,
    overlap,
    prepare_out,
    run,
    store,
    store_result,
)
from .softmax import (
    alignment,
    axis_layout,
    block_shape,
    normalize_axis,
    num_warps_for,
    plan_softmax_forward,
    row_offsets,
    softmax_rows,
    split_stats_buffer,
)

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
def _row_scales(LABEL, COUNT, LOSS_SCALE, label_row, row_mask, cols, grad_scale, ignore_label, divisor,
                CT: tl.constexpr, LABEL_IS_PROB: tl.constexpr, USE_IGNORE: tl.constexpr,
                NORMALIZATION: tl.constexpr, HAS_LOSS_SCALE: tl.constexpr, BLOCK_R: tl.constexpr):
    """Per row: the factor its gradient is scaled by (0 for an ignored row, NaN for a bad
    class label) and its class (-1 with a probability target or a bad label)."""
    scale = tl.full((BLOCK_R,), 1.0, CT) * grad_scale.to(CT)
    cls = tl.full((BLOCK_R,), -1, tl.int64)
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
    return scale, cls


@triton.jit
def _loss_gradient(p, LABEL, label_row, label_col_stride, col, mask, scale, cls, cols, smooth_alpha,
                   LABEL_IS_PROB: tl.constexpr):
    """(p - target) * scale on a block of rows: the target is the label itself (a
    probability target) or onehot(class), smoothed by smooth_alpha."""
    if LABEL_IS_PROB:
        target = tl.load(LABEL + label_row[:, None] + col * label_col_stride, mask=mask, other=0.0).to(p.dtype)
    else:
        on_value = (1.0 - smooth_alpha).to(p.dtype)
        off_value = (smooth_alpha / tl.maximum(cols - 1, 1)).to(p.dtype)
        target = tl.where(col == cls[:, None], on_value, off_value)
    return (p - target) * scale[:, None]


@triton.jit
def _softmax_output_backward_kernel(
    P, LABEL, HEAD, DX, COUNT, LOSS_SCALE,
    rows_total, cols, inner, p_strides, label_strides, head_strides, dx_strides,
    grad_scale: tl.float64, ignore_label: tl.float64, smooth_alpha: tl.float64, divisor,
    LABEL_IS_PROB: tl.constexpr, USE_IGNORE: tl.constexpr, NORMALIZATION: tl.constexpr,
    OUT_GRAD: tl.constexpr, HAS_LOSS_SCALE: tl.constexpr, ACCUMULATE: tl.constexpr, BLOCK_R: tl.constexpr,
    BLOCK_C: tl.constexpr, ALIGN: tl.constexpr,
):
    """Program (i, j) writes the loss gradient of rows [i BLOCK_R, (i + 1) BLOCK_R), columns
    [j BLOCK_C, (j + 1) BLOCK_C): elementwise given p, so a few wide rows still spread over
    many programs."""
    cols = aligned(cols, ALIGN)
    p_strides, dx_strides = aligned_strides(p_strides, ALIGN), aligned_strides(dx_strides, ALIGN)
    if OUT_GRAD:
        head_strides = aligned_strides(head_strides, ALIGN)
    if LABEL_IS_PROB:  # class labels are one per row: their strides are not the rows'
        label_strides = aligned_strides(label_strides, ALIGN)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < rows_total
    p_row = row_offsets(rows, inner, p_strides)
    label_row = row_offsets(rows, inner, label_strides)
    head_row = row_offsets(rows, inner, head_strides)
    dx_row = row_offsets(rows, inner, dx_strides)
    CT = tl.float64 if DX.dtype.element_ty == tl.float64 else tl.float32
    scale, cls = _row_scales(LABEL, COUNT, LOSS_SCALE, label_row, row_mask, cols, grad_scale, ignore_label, divisor,
                             CT, LABEL_IS_PROB, USE_IGNORE, NORMALIZATION, HAS_LOSS_SCALE, BLOCK_R)

    col = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]
    mask = row_mask[:, None] & (col < cols)
    p = tl.load(P + p_row[:, None] + col * p_strides[1], mask=mask, other=0.0).to(CT)
    grad = _loss_gradient(p, LABEL, label_row, label_strides[1], col, mask, scale, cls, cols, smooth_alpha,
                          LABEL_IS_PROB)
    if OUT_GRAD:
        grad = grad * tl.load(HEAD + head_row[:, None] + col * head_strides[1], mask=mask, other=0.0).to(CT)
    store_result(DX, dx_row[:, None] + col * dx_strides[1], grad, mask, ACCUMULATE)


@triton.jit
def _softmax_output_train_kernel(
    X, P, LABEL, DX, COUNT, LOSS_SCALE,
    rows_total, cols, inner, x_strides, p_strides, label_strides, dx_strides,
    grad_scale: tl.float64, ignore_label: tl.float64, smooth_alpha: tl.float64, divisor,
    LABEL_IS_PROB: tl.constexpr, USE_IGNORE: tl.constexpr, NORMALIZATION: tl.constexpr,
    HAS_LOSS_SCALE: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr, ALIGN: tl.constexpr,
):
    """A training forward of rows that fit one block: the probabilities p into P and the
    loss gradient into DX from one read of x. The gradient is made from p as P keeps it
    (rounded to its dtype), so it equals, bit for bit, what the backward kernel makes."""
    cols = aligned(cols, ALIGN)
    x_strides, p_strides = aligned_strides(x_strides, ALIGN), aligned_strides(p_strides, ALIGN)
    dx_strides = aligned_strides(dx_strides, ALIGN)
    if LABEL_IS_PROB:  # class labels are one per row: their strides are not the rows'
        label_strides = aligned_strides(label_strides, ALIGN)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_mask = rows < rows_total
    x_row = row_offsets(rows, inner, x_strides)
    p_row = row_offsets(rows, inner, p_strides)
    label_row = row_offsets(rows, inner, label_strides)
    dx_row = row_offsets(rows, inner, dx_strides)
    CT = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32
    col = tl.arange(0, BLOCK_C)[None, :]
    mask = row_mask[:, None] & (col < cols)
    x = tl.load(X + x_row[:, None] + col * x_strides[1], mask=mask, other=0.0).to(CT)
    p = softmax_rows(tl.where(mask, x, float("-inf")), False)
    store(P, p_row[:, None] + col * p_strides[1], p, mask)

    scale, cls = _row_scales(LABEL, COUNT, LOSS_SCALE, label_row, row_mask, cols, grad_scale, ignore_label, divisor,
                             CT, LABEL_IS_PROB, USE_IGNORE, NORMALIZATION, HAS_LOSS_SCALE, BLOCK_R)
    kept = cast_for(P, p).to(CT)
    grad = _loss_gradient(kept, LABEL, label_row, label_strides[1], col, mask, scale, cls, cols, smooth_alpha,
                          LABEL_IS_PROB)
    store(DX, dx_row[:, None] + col * dx_strides[1], grad, mask)


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


@dataclass(frozen=True)
class _LossLayout:
    """How a loss kernel walks prob, the label and a gradient, and how it normalises."""

    rows: int
    cols: int
    inner: int
    label_is_prob: bool
    label_strides: tuple
    norm: str  # null | constant | count
    divisor: int


def _loss_layout(fn: str, prob: torch.Tensor, label: torch.Tensor, axis: int, normalization: str,
                 use_ignore: bool, valid_count: torch.Tensor | None, loss_scale: torch.Tensor | None) -> _LossLayout:
    """Checks shared by the loss-gradient launchers, and the layout they launch with."""
    check_tensor(fn, "prob", prob)
    check_loss_scale(fn, loss_scale, prob.device)
    check_tensor(fn, "label", label, FLOAT_DTYPES + INDEX_DTYPES)
    check_same(fn, "device", prob=prob, label=label)
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
    rows, cols, inner, _ = axis_layout(fn, prob, axis)
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
    return _LossLayout(rows, cols, max(inner, 1), label_is_prob, tuple(label_strides), norm, int(divisor))


def plan_softmax_output_backward(
    prob: torch.Tensor, label: torch.Tensor, grad_in: torch.Tensor, *, axis: int = -1, grad_scale: float = 1.0,
    ignore_label: float = -1.0, use_ignore: bool = False, normalization: str = "null", smooth_alpha: float = 0.0,
    head_grad: torch.Tensor | None = None, valid_count: torch.Tensor | None = None, accumulate: bool = False,
    loss_scale: torch.Tensor | None = None,
) -> list[Launch]:
    fn = "softmax_output_backward"
    layout = _loss_layout(fn, prob, label, axis, normalization, use_ignore, valid_count, loss_scale)
    grad_in = prepare_out(fn, "grad_in", grad_in, prob.shape, prob.dtype, prob.device)
    if head_grad is not None:
        check_same(fn, "device", prob=prob, head_grad=head_grad)
        check_same(fn, "shape", prob=prob, head_grad=head_grad)
    axis = normalize_axis(fn, axis, prob.dim())
    p_strides = axis_layout(fn, prob, axis)[3]
    dx_strides = axis_layout(fn, grad_in, axis)[3]
    head_strides = axis_layout(fn, head_grad, axis)[3] if head_grad is not None else (0, 0, 0)
    rows, cols = layout.rows, layout.cols
    align = alignment(cols, p_strides, dx_strides, *([head_strides] if head_grad is not None else []),
                      *([layout.label_strides] if layout.label_is_prob else []))
    block_c = min(triton.next_power_of_2(max(cols, 1)), MAX_BLOCK_C)
    block_r = max(1, min(ROW_BUDGET // block_c, triton.next_power_of_2(max(rows, 1))))
    grid = (triton.cdiv(max(rows, 1), block_r), triton.cdiv(max(cols, 1), block_c))
    return [Launch(_softmax_output_backward_kernel, grid,
                   [prob, label, head_grad if head_grad is not None else prob, grad_in,
                    valid_count if layout.norm == "count" else grad_in,
                    loss_scale if loss_scale is not None else grad_in,
                    rows, cols, layout.inner, p_strides, layout.label_strides, head_strides, dx_strides,
                    float(grad_scale), float(ignore_label), float(smooth_alpha), layout.divisor],
                   dict(LABEL_IS_PROB=layout.label_is_prob, USE_IGNORE=bool(use_ignore), NORMALIZATION=layout.norm,
                        OUT_GRAD=head_grad is not None, HAS_LOSS_SCALE=loss_scale is not None,
                        ACCUMULATE=accumulate, BLOCK_R=block_r, BLOCK_C=block_c, ALIGN=align))]


def plan_softmax_output_train(
    x: torch.Tensor, prob: torch.Tensor, label: torch.Tensor, grad_in: torch.Tensor, *, axis: int = -1,
    grad_scale: float = 1.0, ignore_label: float = -1.0, use_ignore: bool = False, normalization: str = "null",
    smooth_alpha: float = 0.0, valid_count: torch.Tensor | None = None, loss_scale: torch.Tensor | None = None,
    stats: torch.Tensor | None = None,
) -> list[Launch]:
    """A training forward: softmax of ``x`` into ``prob`` and the loss gradient (what
    ``plan_softmax_output_backward`` would write, without a head gradient) into ``grad_in``.
    Rows that fit one block take one launch that reads x once; wider rows take softmax's
    launches (``stats`` as softmax forward wants it) and then the gradient's.
    ``valid_count`` and ``loss_scale`` are read on the device when the launches run."""
    fn = "softmax_output_train"
    check_tensor(fn, "x", x)
    prob = prepare_out(fn, "prob", prob, x.shape, x.dtype, x.device)
    grad_in = prepare_out(fn, "grad_in", grad_in, x.shape, x.dtype, x.device)
    for name, other in (("prob", prob), ("label", label)):
        if overlap(grad_in, other):
            raise KernelArgumentError(f"{fn}: grad_in shares memory with {name}; the gradient needs a buffer of "
                                      "its own")
    options = dict(axis=axis, grad_scale=grad_scale, ignore_label=ignore_label, use_ignore=use_ignore,
                   normalization=normalization, smooth_alpha=smooth_alpha, valid_count=valid_count,
                   loss_scale=loss_scale)
    axis = normalize_axis(fn, axis, x.dim())
    layout = _loss_layout(fn, prob, label, axis, normalization, use_ignore, valid_count, loss_scale)
    block_r, block_c, single = block_shape(layout.rows, layout.cols)
    if not single:
        return plan_softmax_forward(x, prob, axis, stats=stats) + plan_softmax_output_backward(
            prob, label, grad_in, **options)
    strides = [axis_layout(fn, t, axis)[3] for t in (x, prob, grad_in)]
    align = alignment(layout.cols, *strides, *([layout.label_strides] if layout.label_is_prob else []))
    return [Launch(_softmax_output_train_kernel, (triton.cdiv(max(layout.rows, 1), block_r),),
                   [x, prob, label, grad_in, valid_count if layout.norm == "count" else grad_in,
                    loss_scale if loss_scale is not None else grad_in,
                    layout.rows, layout.cols, layout.inner, strides[0], strides[1], layout.label_strides, strides[2],
                    float(grad_scale), float(ignore_label), float(smooth_alpha), layout.divisor],
                   dict(LABEL_IS_PROB=layout.label_is_prob, USE_IGNORE=bool(use_ignore), NORMALIZATION=layout.norm,
                        HAS_LOSS_SCALE=loss_scale is not None, BLOCK_R=block_r, BLOCK_C=block_c, ALIGN=align,
                        num_warps=num_warps_for(block_r, block_c)))]


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


def softmax_output_train(x: torch.Tensor, label: torch.Tensor, prob: torch.Tensor | None = None,
                         grad_in: torch.Tensor | None = None, **options) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of ``x`` and its loss gradient, as a training forward makes them: returns
    (prob, grad_in). Options as ``softmax_output_backward``'s, without ``head_grad`` and
    ``accumulate``; the buffers softmax needs for split rows are made here."""
    fn = "softmax_output_train"
    check_tensor(fn, "x", x)
    prob = prepare_out(fn, "prob", prob, x.shape, x.dtype, x.device)
    grad_in = prepare_out(fn, "grad_in", grad_in, x.shape, x.dtype, x.device)
    if (options.get("normalization") == "valid" and options.get("use_ignore")
            and options.get("valid_count") is None and tuple(label.shape) != tuple(x.shape)):
        options["valid_count"] = count_valid_labels(label.contiguous(), options.get("ignore_label", -1.0))
    stats = split_stats_buffer(x, options.get("axis", -1))
    run(plan_softmax_output_train(x, prob, label, grad_in, stats=stats, **options))
    return prob, grad_in


# ------------------------------------------------------------------- catalogue

# What exercises these kernels (the mutation check runs them).
TESTS = ("tests/test_kernels_softmax.py", "tests/test_loss_scaling.py", "tests/test_loss_in_forward.py")


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """The loss gradient in ``dtype`` with class labels (ignored, valid-normalised, times a
    head gradient), with a probability target and smoothing, loss-scaled, the training
    forward, and the count of valid labels; on 33x17 or (``large``) 4096x4096: what
    ``ops.catalog`` compiles, reports on and checks."""
    rows, cols = (4096, 4096) if large else (33, 17)
    v, label = torch.empty(rows, cols, dtype=dtype), torch.empty(rows, dtype=dtype)
    v2, v3 = torch.empty_like(v), torch.empty_like(v)
    one = torch.empty(1)
    return [*(("softmax output", launch) for launch in plan_softmax_output_backward(
                v, label, v, use_ignore=True, normalization="valid", valid_count=one, head_grad=v)),
            *(("softmax output prob", launch) for launch in plan_softmax_output_backward(v, v, v, smooth_alpha=0.1)),
            *(("softmax output loss-scaled", launch) for launch in plan_softmax_output_backward(
                v, label, v, normalization="batch", loss_scale=one)),
            *(("softmax output train", launch) for launch in plan_softmax_output_train(
                v, v2, label, v3, use_ignore=True, normalization="valid", valid_count=one, loss_scale=one)),
            *(("count labels", launch) for launch in plan_count_valid_labels(torch.empty(rows, dtype=torch.int64),
                                                                             one, -1.0))]
