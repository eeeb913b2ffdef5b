"""Optimizer updates over flat parameter regions: SGD (with momentum), Adam and AdamW (Adam
with its weight decay applied to the weight, ``DECOUPLED``).

A bound network keeps all its trainable parameters in one contiguous region of the
workspace and their gradients in another with the same layout, so one launch updates
every parameter. The region has alignment gaps between parameters, and each parameter
has its own learning-rate and weight-decay multiplier, so the launch walks a *chunk
table*: each program updates one chunk, at most BLOCK elements of one parameter, and
reads that parameter's multipliers once. Chunks are aligned to CHUNK_ALIGN elements
but for a parameter's edges, so that the update moves 16 bytes per access (below).

Per-step scalars (learning rate, Adam's bias corrections, ...) are read from a small
device tensor ``hyper`` rather than passed as arguments: the launch is built once and
never changes, so it can be replayed (or captured in a CUDA graph) while the host only
rewrites ``hyper``. Arithmetic is float64 for float64 parameters, else float32; the
optimizer state (momentum, Adam's moments) is kept in that compute dtype.

float16/bfloat16 weights may have a float32 master copy (MXNet's ``multi_precision``):
the update then starts from the master copy and writes both it and its rounding into
the weight. Without one, an update smaller than half a unit in the weight's last place
(in bfloat16, any update below 2^-9 of the weight) is rounded away every step, and
training stalls. The master copy stands for the weight only while the weight still
holds its rounding: a weight written since (``set_params``, a loaded checkpoint,
``arg_dict[...] = ...``) differs from it and replaces it, element by element, so the
two never disagree silently, and a zero-filled master copy is a valid start.

With a loss scale (float16 training, ``LossScaler``), the loss operators multiplied the
gradients by ``scale`` so that small ones do not underflow. Before the update, one launch
per dtype counts the non-finite gradient elements into ``counters[0]``; the update
divides the gradients by ``scale`` and, where that count is not zero, writes nothing (the
step is skipped, on the device: no read-back, so the step stays one CUDA graph); then one
single-program launch adjusts the scale (``loss_scale_update``): times ``backoff_factor``
after a skipped step, times ``growth_factor`` after ``growth_interval`` good steps in a row.
Adam's bias corrections then count only the updates that were applied. With
``clip_global_norm``, every gradient is also multiplied by the coefficient that
``ops/grad_norm.py`` wrote to the device before the update (``CLIP_NORM``).

    # read 2 (SGD) or 2 + 2 (momentum / Adam) elements per parameter, write 1 (+1 or +2);
    # a master copy adds one read and one write; a loss scale adds one read (the count)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    cast_for,
    check_tensor,
    expm1,
    load_nonfinite_count,
    log1p,
    run,
    store,
)

# The slots of ``hyper``; the host fills them by name.
SGD_HYPER = ("learning_rate", "wd", "rescale_grad", "clip_gradient", "momentum")
# ``1 - beta`` comes from the host in float64 arithmetic: from float32 betas, 1 - 0.999 would
# be 0.00099998713, 1.3e-5 off, and Adam's first steps as much (6e-6) off the oracle's.
# ``step`` is the number of the update being made (from 1): the bias corrections are computed
# from it on the device, so a flat updater advances it there (``plan_advance_step``) and the
# host writes nothing per step.
ADAM_HYPER = ("learning_rate", "wd", "rescale_grad", "clip_gradient", "beta1", "beta2", "epsilon", "step",
              "one_minus_beta1", "one_minus_beta2")

# The kernels' names for the slots, in the tuples' order (a test compares them by name).
# The first four are the same for both optimizers: ``_scaled_gradient`` serves both.
LEARNING_RATE, WD, RESCALE_GRAD, CLIP_GRADIENT, MOMENTUM = map(tl.constexpr, range(len(SGD_HYPER)))
(_, _, _, _, BETA1, BETA2, EPSILON, STEP, ONE_MINUS_BETA1, ONE_MINUS_BETA2) = map(tl.constexpr,
                                                                                 range(len(ADAM_HYPER)))
# The int32 counters of a loss scale: this step's non-finite gradient elements, good steps
# since the scale last changed, and steps skipped in all.
SCALER_COUNTERS = ("nonfinite", "good_steps", "skipped_steps")
NONFINITE, GOOD_STEPS, SKIPPED_STEPS = map(tl.constexpr, range(len(SCALER_COUNTERS)))
# The weight dtypes a float32 master copy serves.
HALF_DTYPES = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the update computes in, and the optimizer state's dtype."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# Chunk bounds are read from memory, so the compiler knows nothing of their alignment and
# would compile every access to one element (two bytes in bfloat16, not the sixteen one
# instruction can move). So the chunk table cuts each parameter into *body* chunks whose
# bounds are multiples of CHUNK_ALIGN elements (16 bytes or more in every dtype) and, where
# a parameter does not start or end on such a multiple, an *edge* chunk of fewer elements
# before or after them; a kernel tells the two apart by length and compiles its update
# twice, once for each. Parameters in a bound network start on 256-byte boundaries: only
# their tails are edges.
CHUNK_ALIGN = 16
_CHUNK_ALIGN = tl.constexpr(CHUNK_ALIGN)


@triton.jit
def _chunk_bounds(CHUNK_START, CHUNK_END):
    """This program's chunk, ``[start, end)``, and whether it is a body chunk."""
    pid = tl.program_id(0)
    start = tl.load(CHUNK_START + pid)
    end = tl.load(CHUNK_END + pid)
    return start, end, end - start >= _CHUNK_ALIGN


@triton.jit
def _chunk(start, end, BODY: tl.constexpr, BLOCK: tl.constexpr):
    """The element offsets and mask of a body chunk (BODY: BLOCK lanes, its bounds in a form
    from which the compiler knows they are multiples of CHUNK_ALIGN, so that it moves 16
    bytes at a time; really computed, not assumed, so a table that breaks the rule gives
    wrong numbers the interpreter's tests see) or of an edge chunk (CHUNK_ALIGN lanes)."""
    if BODY:
        offsets = (start // _CHUNK_ALIGN) * _CHUNK_ALIGN + tl.arange(0, BLOCK)
        mask = offsets < (end // _CHUNK_ALIGN) * _CHUNK_ALIGN
    else:
        offsets = start + tl.arange(0, _CHUNK_ALIGN)
        mask = offsets < end
    return offsets, mask


@triton.jit
def _unless_overflow(mask, COUNTERS, HAS_SCALER: tl.constexpr):
    """``mask``, emptied when this step's scaled gradients held a NaN/inf: the step is skipped."""
    if HAS_SCALER:
        # Compared as a block: the interpreter's scalar-bool & block-bool is no bool mask.
        mask = mask & ((tl.zeros_like(mask).to(tl.int32) + tl.load(COUNTERS + NONFINITE)) == 0)
    return mask


@triton.jit
def _load_weight(W, MASTER, offsets, mask, HAS_MASTER: tl.constexpr, CT: tl.constexpr):
    """The weight in the compute dtype: the master copy where the weight still holds its
    rounding, else the weight (written since the last update, or a zero-filled master)."""
    w = tl.load(W + offsets, mask=mask, other=0.0).to(CT)
    if HAS_MASTER:
        master = tl.load(MASTER + offsets, mask=mask, other=0.0)
        # Compared in the compute dtype: the interpreter's half-precision comparisons are unreliable.
        w = tl.where(cast_for(W, master).to(CT) == w, master, w)
    return w


@triton.jit
def _keep(ptr, offsets, value, mask):
    """Store a state in ``ptr``'s dtype (a bfloat16 or float16 state, as torch keeps for
    such parameters, rounds to nearest even) and return what was stored, in ``value``'s
    dtype: the update then reads the state as it is kept."""
    kept = cast_for(ptr, value)
    tl.store(ptr + offsets, kept, mask=mask)
    return kept.to(value.dtype)


@triton.jit
def _store_weight(W, MASTER, offsets, w, mask, HAS_MASTER: tl.constexpr):
    if HAS_MASTER:
        tl.store(MASTER + offsets, w, mask=mask)
    store(W, offsets, w, mask)


@triton.jit
def _scaled_gradient(W, G, MASTER, HYPER, CHUNK_WD_MULT, LOSS_SCALE, CLIP_STATE, offsets, mask, CLIP: tl.constexpr,
                     HAS_MASTER: tl.constexpr, HAS_SCALER: tl.constexpr, CLIP_NORM: tl.constexpr,
                     DECOUPLED: tl.constexpr):
    """The weight and ``clip(rescale_grad * grad / loss_scale * norm_coefficient) + wd * wd_mult * weight``
    (MXNet's order; the coefficient of ``clip_global_norm`` from ``ops/grad_norm.py`` with
    ``CLIP_NORM``); ``DECOUPLED`` (AdamW): without the decay, which the update applies to the
    weight itself."""
    CT = HYPER.dtype.element_ty
    w = _load_weight(W, MASTER, offsets, mask, HAS_MASTER, CT)
    g = tl.load(G + offsets, mask=mask, other=0.0).to(CT) * tl.load(HYPER + RESCALE_GRAD)
    if HAS_SCALER:
        g = g / tl.load(LOSS_SCALE).to(CT)
    if CLIP_NORM:
        g = g * tl.load(CLIP_STATE).to(CT)
    if CLIP:
        clip = tl.load(HYPER + CLIP_GRADIENT)
        # Not tl.minimum/tl.maximum: on a GPU they return the other operand for a NaN.
        g = tl.where(g > clip, clip, tl.where(g < -clip, -clip, g))
    if DECOUPLED:
        return w, g
    wd = tl.load(HYPER + WD) * tl.load(CHUNK_WD_MULT + tl.program_id(0))
    return w, g + wd * w


@triton.jit
def _sgd_kernel(
    W, G, MOM, MASTER, CHUNK_START, CHUNK_END, CHUNK_LR_MULT, CHUNK_WD_MULT, HYPER, LOSS_SCALE, COUNTERS,
    CLIP_STATE, HAS_MOMENTUM: tl.constexpr, HAS_MASTER: tl.constexpr, HAS_SCALER: tl.constexpr,
    CLIP: tl.constexpr, CLIP_NORM: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program updates one chunk: ``mom = momentum*mom - lr*g; w += mom`` (or ``w -= lr*g``)."""
    start, end, body = _chunk_bounds(CHUNK_START, CHUNK_END)
    if body:
        _sgd_chunk(W, G, MOM, MASTER, CHUNK_LR_MULT, CHUNK_WD_MULT, HYPER, LOSS_SCALE, COUNTERS, CLIP_STATE, start,
                   end, HAS_MOMENTUM, HAS_MASTER, HAS_SCALER, CLIP, CLIP_NORM, True, BLOCK)
    else:
        _sgd_chunk(W, G, MOM, MASTER, CHUNK_LR_MULT, CHUNK_WD_MULT, HYPER, LOSS_SCALE, COUNTERS, CLIP_STATE, start,
                   end, HAS_MOMENTUM, HAS_MASTER, HAS_SCALER, CLIP, CLIP_NORM, False, BLOCK)


@triton.jit
def _sgd_chunk(
    W, G, MOM, MASTER, CHUNK_LR_MULT, CHUNK_WD_MULT, HYPER, LOSS_SCALE, COUNTERS, CLIP_STATE, start, end,
    HAS_MOMENTUM: tl.constexpr, HAS_MASTER: tl.constexpr, HAS_SCALER: tl.constexpr, CLIP: tl.constexpr,
    CLIP_NORM: tl.constexpr, BODY: tl.constexpr, BLOCK: tl.constexpr,
):
    offsets, mask = _chunk(start, end, BODY, BLOCK)
    mask = _unless_overflow(mask, COUNTERS, HAS_SCALER)
    w, g = _scaled_gradient(W, G, MASTER, HYPER, CHUNK_WD_MULT, LOSS_SCALE, CLIP_STATE, offsets, mask, CLIP,
                            HAS_MASTER, HAS_SCALER, CLIP_NORM, False)
    lr = tl.load(HYPER + LEARNING_RATE) * tl.load(CHUNK_LR_MULT + tl.program_id(0))
    if HAS_MOMENTUM:
        mom = tl.load(HYPER + MOMENTUM) * tl.load(MOM + offsets, mask=mask, other=0.0).to(g.dtype) - lr * g
        w = w + _keep(MOM, offsets, mom, mask)
    else:
        w = w - lr * g
    _store_weight(W, MASTER, offsets, w, mask, HAS_MASTER)


@triton.jit
def _bias_correction(one_minus_beta, t):
    """``1 - beta**t`` for a step count known only on the device, as
    ``-expm1(t * log1p(-(1 - beta)))``: computing ``beta**t`` first and subtracting it from 1
    would cancel the leading digits (1 - 0.999 keeps 4 of float32's 7 there)."""
    zero_beta = one_minus_beta >= 1.0  # beta = 0: the correction is 1 (t >= 1); no log(0)
    power_log = t * log1p(-tl.where(zero_beta, 0.5, one_minus_beta))
    return tl.where(zero_beta, 1.0, -expm1(power_log))


@triton.jit
def _adam_kernel(
    W, G, MEAN, VAR, MASTER, CHUNK_START, CHUNK_END, CHUNK_LR_MULT, CHUNK_WD_MULT, HYPER, LOSS_SCALE, COUNTERS,
    CLIP_STATE, HAS_MASTER: tl.constexpr, HAS_SCALER: tl.constexpr, CLIP: tl.constexpr, CLIP_NORM: tl.constexpr,
    DECOUPLED: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program updates one chunk (Kingma & Ba, with bias-corrected moments):
    ``m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²; w -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)``;
    ``DECOUPLED`` (AdamW, Loshchilov & Hutter): the weight decays by ``lr * wd`` first instead
    of ``wd * w`` joining the gradient."""
    start, end, body = _chunk_bounds(CHUNK_START, CHUNK_END)
    if body:
        _adam_chunk(W, G, MEAN, VAR, MASTER, CHUNK_LR_MULT, CHUNK_WD_MULT, HYPER, LOSS_SCALE, COUNTERS, CLIP_STATE,
                    start, end, HAS_MASTER, HAS_SCALER, CLIP, CLIP_NORM, DECOUPLED, True, BLOCK)
    else:
        _adam_chunk(W, G, MEAN, VAR, MASTER, CHUNK_LR_MULT, CHUNK_WD_MULT, HYPER, LOSS_SCALE, COUNTERS, CLIP_STATE,
                    start, end, HAS_MASTER, HAS_SCALER, CLIP, CLIP_NORM, DECOUPLED, False, BLOCK)


@triton.jit
def _adam_chunk(
    W, G, MEAN, VAR, MASTER, CHUNK_LR_MULT, CHUNK_WD_MULT, HYPER, LOSS_SCALE, COUNTERS, CLIP_STATE, start, end,
    HAS_MASTER: tl.constexpr, HAS_SCALER: tl.constexpr, CLIP: tl.constexpr, CLIP_NORM: tl.constexpr,
    DECOUPLED: tl.constexpr, BODY: tl.constexpr, BLOCK: tl.constexpr,
):
    offsets, mask = _chunk(start, end, BODY, BLOCK)
    mask = _unless_overflow(mask, COUNTERS, HAS_SCALER)
    w, g = _scaled_gradient(W, G, MASTER, HYPER, CHUNK_WD_MULT, LOSS_SCALE, CLIP_STATE, offsets, mask, CLIP,
                            HAS_MASTER, HAS_SCALER, CLIP_NORM, DECOUPLED)
    lr = tl.load(HYPER + LEARNING_RATE) * tl.load(CHUNK_LR_MULT + tl.program_id(0))
    if DECOUPLED:  # torch.optim.AdamW's order: w *= 1 - lr * wd, then the Adam step
        w = w * (1.0 - lr * (tl.load(HYPER + WD) * tl.load(CHUNK_WD_MULT + tl.program_id(0))))
    beta1 = tl.load(HYPER + BETA1)
    beta2 = tl.load(HYPER + BETA2)
    one_minus_beta1 = tl.load(HYPER + ONE_MINUS_BETA1)
    one_minus_beta2 = tl.load(HYPER + ONE_MINUS_BETA2)
    m = _keep(MEAN, offsets, beta1 * tl.load(MEAN + offsets, mask=mask, other=0.0).to(g.dtype) + one_minus_beta1 * g,
              mask)
    v = _keep(VAR, offsets, beta2 * tl.load(VAR + offsets, mask=mask, other=0.0).to(g.dtype)
              + one_minus_beta2 * g * g, mask)
    t = tl.load(HYPER + STEP)
    if HAS_SCALER:
        # Skipped steps are not updates: t counts the applied ones (the step counts every step).
        t = t - tl.load(COUNTERS + SKIPPED_STEPS).to(HYPER.dtype.element_ty)
    bias_correction1 = _bias_correction(one_minus_beta1, t)
    sqrt_bias_correction2 = tl.sqrt(_bias_correction(one_minus_beta2, t))
    denom = tl.sqrt(v) / sqrt_bias_correction2 + tl.load(HYPER + EPSILON)
    w = w - (lr / bias_correction1) * (m / denom)
    _store_weight(W, MASTER, offsets, w, mask, HAS_MASTER)


@triton.jit
def _advance_step_kernel(HYPER, SLOT: tl.constexpr):
    """One program: ``hyper[SLOT] += 1``, the update's number, before the update reads it
    (inside a captured step, so that each replay makes the next update)."""
    tl.store(HYPER + SLOT, tl.load(HYPER + SLOT) + 1.0)


@triton.jit
def _count_nonfinite_chunks_kernel(G, CHUNK_START, CHUNK_END, COUNTERS, BLOCK: tl.constexpr):
    """Each program adds how many elements of its chunk of the gradients are NaN/inf to
    counters[0] (the chunk table skips the alignment gaps between parameters)."""
    start, end, body = _chunk_bounds(CHUNK_START, CHUNK_END)
    if body:
        offsets, mask = _chunk(start, end, True, BLOCK)
        tl.atomic_add(COUNTERS + NONFINITE, load_nonfinite_count(G, offsets, mask))
    else:
        edge_offsets, edge_mask = _chunk(start, end, False, BLOCK)
        tl.atomic_add(COUNTERS + NONFINITE, load_nonfinite_count(G, edge_offsets, edge_mask))


@triton.jit
def _loss_scale_update_kernel(LOSS_SCALE, COUNTERS, growth_factor, backoff_factor, growth_interval, min_scale,
                              max_scale):
    """One program, after the update: back off after a step with NaN/inf gradients (which
    the update skipped), grow after ``growth_interval`` good steps in a row, and clear the
    count for the next step."""
    overflowed = tl.load(COUNTERS + NONFINITE) != 0
    scale = tl.load(LOSS_SCALE)
    good = tl.where(overflowed, 0, tl.load(COUNTERS + GOOD_STEPS) + 1)
    grow = good >= growth_interval
    scale = tl.where(overflowed, tl.maximum(scale * backoff_factor, min_scale),
                     tl.where(grow, tl.minimum(scale * growth_factor, max_scale), scale))
    tl.store(LOSS_SCALE, scale)
    tl.store(COUNTERS + NONFINITE, 0)
    tl.store(COUNTERS + GOOD_STEPS, tl.where(grow, 0, good))
    tl.store(COUNTERS + SKIPPED_STEPS, tl.load(COUNTERS + SKIPPED_STEPS) + overflowed.to(tl.int32))


# -------------------------------------------------------------------------- launchers


@dataclass(frozen=True)
class Segment:
    """One parameter inside a flat region: elements ``[start, start + size)``."""

    start: int
    size: int
    lr_mult: float = 1.0
    wd_mult: float = 1.0


@dataclass(frozen=True)
class ChunkTable:
    """Per-program bounds and multipliers, built once when an optimizer is bound."""

    start: torch.Tensor  # int64 element offsets
    end: torch.Tensor
    lr_mult: torch.Tensor  # compute dtype
    wd_mult: torch.Tensor
    block: int  # elements per program: a power of two, at least the longest chunk

    @property
    def programs(self) -> int:
        return self.start.numel()


def _chunk_bounds_of(start: int, end: int, block: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut into body chunks of at most ``block`` elements with bounds that are
    multiples of CHUNK_ALIGN, and the edges before and after them (fewer than CHUNK_ALIGN
    elements each)."""
    body_start = min(-(-start // CHUNK_ALIGN) * CHUNK_ALIGN, end)
    body_end = max(end // CHUNK_ALIGN * CHUNK_ALIGN, body_start)
    bounds = [(start, body_start)] if body_start > start else []
    bounds += [(b, min(b + block, body_end)) for b in range(body_start, body_end, block)]
    return bounds + ([(body_end, end)] if end > body_end else [])


def chunk_table(segments: Sequence[Segment], region_size: int, dtype: torch.dtype, device) -> ChunkTable:
    """Split each segment into chunks of at most one block (body chunks and edges, as
    CHUNK_ALIGN says); checks that segments lie in the region."""
    # The interpreter's block is large (few programs run faster there); no wider than the
    # longest segment, or every program would compute on masked-off lanes.
    longest = max((seg.size for seg in segments), default=1)
    block = min(ELEMENTWISE_BLOCK, max(16, triton.next_power_of_2(longest)))
    starts, ends, lrs, wds = [], [], [], []
    for k, seg in enumerate(segments):
        if seg.start < 0 or seg.size < 0 or seg.start + seg.size > region_size:
            raise KernelArgumentError(f"optimizer update: segment {k} (start {seg.start}, size {seg.size}) lies "
                                      f"outside the region of {region_size} elements")
        for start, end in _chunk_bounds_of(seg.start, seg.start + seg.size, block):
            starts.append(start)
            ends.append(end)
            lrs.append(seg.lr_mult)
            wds.append(seg.wd_mult)
    ct = compute_dtype(dtype)
    return ChunkTable(torch.tensor(starts, dtype=torch.int64, device=device),
                      torch.tensor(ends, dtype=torch.int64, device=device),
                      torch.tensor(lrs, dtype=ct, device=device), torch.tensor(wds, dtype=ct, device=device), block)


@dataclass(frozen=True)
class LossScaleState:
    """A dynamic loss scale on the device: ``scale`` (one float32, what the loss operators
    multiply their gradients by) and ``counters`` (int32, ``SCALER_COUNTERS``)."""

    scale: torch.Tensor
    counters: torch.Tensor

    @classmethod
    def create(cls, init_scale: float, device) -> "LossScaleState":
        return cls(torch.full((1,), float(init_scale), dtype=torch.float32, device=device),
                   torch.zeros(len(SCALER_COUNTERS), dtype=torch.int32, device=device))

    def check(self, fn: str, device) -> None:
        check_tensor(fn, "loss scale", self.scale, (torch.float32,))
        check_tensor(fn, "loss-scale counters", self.counters, (torch.int32,))
        if self.scale.numel() != 1 or self.counters.numel() != len(SCALER_COUNTERS) \
                or self.scale.device != device or self.counters.device != device:
            raise KernelArgumentError(f"{fn}: the loss scale must be 1 float32 and its counters "
                                      f"{len(SCALER_COUNTERS)} int32 on {device}, got {self.scale.numel()} on "
                                      f"{self.scale.device} and {self.counters.numel()} on {self.counters.device}")


def plan_count_nonfinite_grads(grad: torch.Tensor, chunks: ChunkTable, scaler: LossScaleState) -> list[Launch]:
    """One launch adding the number of NaN/inf elements of the parameters' gradients (flat,
    laid out as ``chunks`` says) to the scaler's ``nonfinite`` counter."""
    fn = "count_nonfinite_grads"
    check_tensor(fn, "grad", grad, FLOAT_DTYPES)
    if grad.dim() != 1 or not grad.is_contiguous():
        raise KernelArgumentError(f"{fn}: grad must be a flat contiguous tensor, got shape {tuple(grad.shape)}")
    scaler.check(fn, grad.device)
    return [Launch(_count_nonfinite_chunks_kernel, (chunks.programs,),
                   [grad, chunks.start, chunks.end, scaler.counters], dict(BLOCK=chunks.block))]


def plan_loss_scale_update(scaler: LossScaleState, growth_factor: float, backoff_factor: float,
                           growth_interval: int, min_scale: float, max_scale: float) -> list[Launch]:
    """The single-program launch that adjusts the scale after a step (run after every update
    launch that reads the count)."""
    scaler.check("loss_scale_update", scaler.scale.device)
    return [Launch(_loss_scale_update_kernel, (1,),
                   [scaler.scale, scaler.counters, float(growth_factor), float(backoff_factor), int(growth_interval),
                    float(min_scale), float(max_scale)], {})]


def _check(fn: str, weight: torch.Tensor, grad: torch.Tensor, states: dict, hyper: torch.Tensor, slots: int):
    check_tensor(fn, "weight", weight, FLOAT_DTYPES)
    check_tensor(fn, "grad", grad, FLOAT_DTYPES)
    for name, t in {"weight": weight, "grad": grad, **states}.items():
        if t.dim() != 1 or not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be a flat contiguous tensor, got shape {tuple(t.shape)} "
                                      f"and strides {t.stride()}")
        if t.device != weight.device:
            raise KernelArgumentError(f"{fn}: {name} is on {t.device} but weight is on {weight.device}")
    if grad.dtype != weight.dtype or grad.numel() != weight.numel():
        raise KernelArgumentError(f"{fn}: grad ({grad.dtype}, {grad.numel()} elements) must match weight "
                                  f"({weight.dtype}, {weight.numel()} elements)")
    ct = compute_dtype(weight.dtype)
    for name, t in states.items():
        # a state in the weight's dtype (torch's choice) or in the compute dtype; a master copy in float32
        allowed = (ct,) if name == "master" else tuple(dict.fromkeys((weight.dtype, ct)))
        if t.dtype not in allowed or t.numel() != weight.numel():
            raise KernelArgumentError(f"{fn}: {name} must be {' or '.join(map(str, allowed))} with {weight.numel()} "
                                      f"elements like weight, got {t.dtype} with {t.numel()}")
    if "master" in states and weight.dtype not in HALF_DTYPES:
        raise KernelArgumentError(f"{fn}: a master copy is for float16/bfloat16 weights; {weight.dtype} weights "
                                  "are updated in their own precision")
    if hyper.dtype != ct or hyper.numel() != slots or hyper.device != weight.device:
        raise KernelArgumentError(f"{fn}: hyper must be {slots} {ct} values on {weight.device}, got {hyper.numel()} "
                                  f"{hyper.dtype} on {hyper.device}")


def _present(**states: torch.Tensor | None) -> dict[str, torch.Tensor]:
    return {name: t for name, t in states.items() if t is not None}


def _scaler_args(fn: str, scaler: LossScaleState | None, weight: torch.Tensor) -> list[torch.Tensor]:
    if scaler is None:
        return [weight, weight]  # never read (HAS_SCALER is off): the weight stands in for the pointers
    scaler.check(fn, weight.device)
    return [scaler.scale, scaler.counters]


def _clip_state_arg(fn: str, clip_state: torch.Tensor | None, weight: torch.Tensor) -> torch.Tensor:
    if clip_state is None:
        return weight  # never read (CLIP_NORM is off)
    check_tensor(fn, "clip_state", clip_state, (torch.float64,))
    if clip_state.dim() != 1 or clip_state.numel() < 1 or clip_state.device != weight.device:
        raise KernelArgumentError(f"{fn}: clip_state must be a flat float64 tensor on {weight.device} (ops.grad_norm's "
                                  f"state), got shape {tuple(clip_state.shape)} on {clip_state.device}")
    return clip_state


def plan_sgd_update(weight: torch.Tensor, grad: torch.Tensor, momentum: torch.Tensor | None, chunks: ChunkTable,
                    hyper: torch.Tensor, clip: bool, master: torch.Tensor | None = None,
                    scaler: LossScaleState | None = None, clip_state: torch.Tensor | None = None) -> list[Launch]:
    """One launch updating ``weight`` (flat) from ``grad``; ``hyper`` holds ``SGD_HYPER``;
    ``master``: the float32 master copy of float16/bfloat16 weights, updated too;
    ``scaler``: the gradients are scaled by it, and the step is skipped where its count is not 0;
    ``clip_state``: the gradients are multiplied by its first element (``ops.grad_norm``'s
    coefficient of ``clip_global_norm``)."""
    _check("sgd_update", weight, grad, _present(momentum=momentum, master=master), hyper, len(SGD_HYPER))
    # An absent state is never read or written (HAS_MOMENTUM / HAS_MASTER); the weight stands in for its pointer.
    return [Launch(_sgd_kernel, (chunks.programs,),
                   [weight, grad, weight if momentum is None else momentum, weight if master is None else master,
                    chunks.start, chunks.end, chunks.lr_mult, chunks.wd_mult, hyper,
                    *_scaler_args("sgd_update", scaler, weight), _clip_state_arg("sgd_update", clip_state, weight)],
                   dict(HAS_MOMENTUM=momentum is not None, HAS_MASTER=master is not None,
                        HAS_SCALER=scaler is not None, CLIP=clip, CLIP_NORM=clip_state is not None,
                        BLOCK=chunks.block))]


def plan_adam_update(weight: torch.Tensor, grad: torch.Tensor, mean: torch.Tensor, var: torch.Tensor,
                     chunks: ChunkTable, hyper: torch.Tensor, clip: bool,
                     master: torch.Tensor | None = None, scaler: LossScaleState | None = None,
                     decoupled: bool = False, clip_state: torch.Tensor | None = None) -> list[Launch]:
    """One launch updating ``weight`` (flat) and Adam's moments; ``hyper`` holds ``ADAM_HYPER``;
    ``master``: the float32 master copy of float16/bfloat16 weights, updated too;
    ``scaler``: as for ``plan_sgd_update``; the bias corrections then count applied steps only.
    The bias corrections ``1 - beta**t`` are computed on the device from ``hyper``'s ``step``.
    ``decoupled``: AdamW's weight decay (``w *= 1 - lr * wd`` before the step, torch.optim.AdamW's)
    instead of L2 decay in the gradient; ``clip_state``: as for ``plan_sgd_update``."""
    _check("adam_update", weight, grad, _present(mean=mean, var=var, master=master), hyper, len(ADAM_HYPER))
    return [Launch(_adam_kernel, (chunks.programs,),
                   [weight, grad, mean, var, weight if master is None else master,
                    chunks.start, chunks.end, chunks.lr_mult, chunks.wd_mult, hyper,
                    *_scaler_args("adam_update", scaler, weight), _clip_state_arg("adam_update", clip_state, weight)],
                   dict(HAS_MASTER=master is not None, HAS_SCALER=scaler is not None, CLIP=clip,
                        CLIP_NORM=clip_state is not None, DECOUPLED=decoupled, BLOCK=chunks.block))]


def plan_advance_step(hyper: torch.Tensor, slot: int) -> list[Launch]:
    """One launch adding 1 to ``hyper[slot]`` on the device (Adam's ``step``)."""
    if not 0 <= slot < hyper.numel():
        raise KernelArgumentError(f"advance_step: slot {slot} is outside hyper of {hyper.numel()} elements")
    return [Launch(_advance_step_kernel, (1,), [hyper], dict(SLOT=slot))]


def _hyper(names: Sequence[str], values: dict, weight: torch.Tensor) -> torch.Tensor:
    return torch.tensor([float(values.get(n, 0.0)) for n in names], dtype=compute_dtype(weight.dtype),
                        device=weight.device)


def _whole(weight: torch.Tensor) -> ChunkTable:
    return chunk_table([Segment(0, weight.numel())], weight.numel(), weight.dtype, weight.device)


def _flat(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.view(-1)


def sgd_update(weight: torch.Tensor, grad: torch.Tensor, momentum: torch.Tensor | None = None, *,
               learning_rate: float, wd: float = 0.0, rescale_grad: float = 1.0, clip_gradient: float | None = None,
               momentum_factor: float = 0.0, master: torch.Tensor | None = None) -> torch.Tensor:
    """Standalone SGD step on one contiguous tensor (``momentum``, ``master``: its state and
    float32 master copy, updated too)."""
    hyper = _hyper(SGD_HYPER, dict(learning_rate=learning_rate, wd=wd, rescale_grad=rescale_grad,
                                   clip_gradient=clip_gradient or 0.0, momentum=momentum_factor), weight)
    run(plan_sgd_update(_flat(weight), _flat(grad), _flat(momentum), _whole(weight), hyper,
                        clip_gradient is not None, _flat(master)))
    return weight


def adam_update(weight: torch.Tensor, grad: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, *, step: int,
                learning_rate: float, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
                wd: float = 0.0, rescale_grad: float = 1.0, clip_gradient: float | None = None,
                master: torch.Tensor | None = None, decoupled: bool = False) -> torch.Tensor:
    """Standalone Adam step number ``step`` (from 1) on one contiguous tensor and its moments
    (``master``: its float32 master copy, updated too; ``decoupled``: AdamW's weight decay)."""
    hyper = _hyper(ADAM_HYPER, dict(learning_rate=learning_rate, wd=wd, rescale_grad=rescale_grad,
                                    clip_gradient=clip_gradient or 0.0, beta1=beta1, beta2=beta2, epsilon=epsilon,
                                    step=step, one_minus_beta1=1 - beta1, one_minus_beta2=1 - beta2), weight)
    run(plan_adam_update(_flat(weight), _flat(grad), _flat(mean), _flat(var), _whole(weight), hyper,
                         clip_gradient is not None, _flat(master), decoupled=decoupled))
    return weight


# ------------------------------------------------------------------- catalogue

# What exercises these kernels (the mutation check runs them).
TESTS = ("tests/test_kernels_optimizer.py", "tests/test_update_properties.py", "tests/test_loss_scaling.py",
         "tests/test_optimizer.py")


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """Each update in ``dtype`` over a region of two parameters with a gap (SGD with and
    without momentum, Adam, AdamW, each with and without clipping; loss-scaled; with a float32
    master copy for half dtypes; clipped by the global norm), Adam's step advance, the NaN/inf count of a loss
    scaler and its scale update: what ``ops.catalog`` compiles, reports on and checks. ``large``: a region of 2**24."""
    size = (1 << 24) if large else 3000
    flat, ct = torch.empty(size, dtype=dtype), compute_dtype(dtype)
    state = torch.empty(size, dtype=ct)
    half = size // 3
    chunks = chunk_table([Segment(0, half), Segment(half + 24, size - half - 24, 0.5, 0.0)], size, dtype, "cpu")
    sgd, adam = torch.empty(len(SGD_HYPER), dtype=ct), torch.empty(len(ADAM_HYPER), dtype=ct)
    scaler = LossScaleState(torch.empty(1), torch.empty(len(SCALER_COUNTERS), dtype=torch.int32))
    master = torch.empty(size) if dtype in HALF_DTYPES else None
    out = []
    for clip in (False, True):
        out += [(f"sgd clip={clip}", launch) for launch in plan_sgd_update(flat, flat, None, chunks, sgd, clip)]
        out += [(f"sgd momentum clip={clip}", launch) for launch in plan_sgd_update(flat, flat, state, chunks, sgd,
                                                                                     clip)]
        out += [(f"adam clip={clip}", launch) for launch in plan_adam_update(flat, flat, state, state, chunks, adam,
                                                                              clip)]
        out += [(f"adamw clip={clip}", launch) for launch in plan_adam_update(flat, flat, state, state, chunks,
                                                                               adam, clip, decoupled=True)]
    out += [("advance step", launch) for launch in plan_advance_step(adam, ADAM_HYPER.index("step"))]
    out += [("count nonfinite grads", launch) for launch in plan_count_nonfinite_grads(flat, chunks, scaler)]
    out += [("sgd momentum loss-scaled", launch) for launch in plan_sgd_update(flat, flat, state, chunks, sgd, True,
                                                                                scaler=scaler)]
    out += [("adam loss-scaled", launch) for launch in plan_adam_update(flat, flat, state, state, chunks, adam,
                                                                         False, master=master, scaler=scaler)]
    if master is not None:
        out += [("sgd momentum master", launch) for launch in plan_sgd_update(flat, flat, state, chunks, sgd, False,
                                                                               master=master)]
        out += [("adam master", launch) for launch in plan_adam_update(flat, flat, state, state, chunks, adam, False,
                                                                        master=master)]
    out += [("loss scale update", launch) for launch in plan_loss_scale_update(scaler, 2.0, 0.5, 2000, 2.0 ** -24,
                                                                                2.0 ** 24)]
    norm_state = torch.empty(2, dtype=torch.float64)  # ops.grad_norm's (coefficient, norm)
    out += [("sgd momentum global-norm clipped", launch) for launch in plan_sgd_update(
        flat, flat, state, chunks, sgd, False, clip_state=norm_state)]
    out += [("adamw global-norm clipped, loss-scaled", launch) for launch in plan_adam_update(
        flat, flat, state, state, chunks, adam, False, master=master, scaler=scaler, decoupled=True,
        clip_state=norm_state)]
    return out
