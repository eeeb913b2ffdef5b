"""The global gradient norm and the coefficient that clips it (``clip_global_norm``, what
``torch.nn.utils.clip_grad_norm_`` and MXNet Gluon's ``clip_global_norm`` do between
backward and the update).

The norm is over every trainable parameter of every dtype: each dtype's gradient region
is read through its optimizer chunk table (the alignment gaps between parameters are no
gradients), one program per chunk writing its sum of squares into its own slot of a
float64 ``partials`` buffer; then one program adds the slots in order (no atomics: the
same bits every run), scales the root by ``rescale_grad`` and one over the loss scale (the
norm of the gradients the update will use) and writes ``state = (coefficient, norm)`` with
``coefficient = min(1, max_norm / (norm + 1e-6))``, torch's. The update kernels multiply
each gradient by the coefficient (``ops/optimizer.py``, ``CLIP_NORM``), so nothing leaves
the device and the step stays one CUDA graph. A NaN or inf gradient makes the norm and
the coefficient NaN and so every updated parameter (torch's ``clip_grad_norm_`` does the
same without ``error_if_nonfinite``); under a loss scaler such a step is skipped anyway.
"""

from __future__ import annotations

from typing import Sequence

import torch
import triton
import triton.language as tl

from ._common import FLOAT_DTYPES, INTERPRET, KernelArgumentError, Launch, check_tensor
from .optimizer import SCALER_COUNTERS, ChunkTable, LossScaleState, Segment, _chunk, _chunk_bounds, chunk_table

GRAD_NORM_STATE = ("coefficient", "norm")  # the float64 state the update reads its coefficient from
SUM_BLOCK = 4096 if INTERPRET else 1024  # partial sums the final program adds per step
TESTS = ("tests/test_grad_norm.py",)


@triton.jit
def _squares(G, offsets, mask):
    g = tl.load(G + offsets, mask=mask, other=0.0)
    g = g.to(tl.float64) if G.dtype.element_ty == tl.float64 else g.to(tl.float32)
    return tl.sum(g * g, axis=0).to(tl.float64)


@triton.jit
def _sum_squares_kernel(G, CHUNK_START, CHUNK_END, PARTIALS, first, BLOCK: tl.constexpr):
    """Program p writes the sum of squares of its chunk of the gradients to partials[first + p]."""
    start, end, body = _chunk_bounds(CHUNK_START, CHUNK_END)
    slot = PARTIALS + first + tl.program_id(0)
    if body:
        offsets, mask = _chunk(start, end, True, BLOCK)
        tl.store(slot, _squares(G, offsets, mask))
    else:
        edge_offsets, edge_mask = _chunk(start, end, False, BLOCK)
        tl.store(slot, _squares(G, edge_offsets, edge_mask))


@triton.jit
def _clip_coefficient_kernel(PARTIALS, count, HYPER, rescale_slot, LOSS_SCALE, STATE, max_norm: tl.float64,
                             HAS_SCALER: tl.constexpr, BLOCK: tl.constexpr):
    """One program: the norm from the partial sums, and ``min(1, max_norm / (norm + 1e-6))``."""
    total = tl.zeros([BLOCK], dtype=tl.float64)
    for start in range(0, count, BLOCK):
        index = start + tl.arange(0, BLOCK)
        total += tl.load(PARTIALS + index, mask=index < count, other=0.0)
    scale = tl.load(HYPER + rescale_slot).to(tl.float64)
    if HAS_SCALER:
        scale = scale / tl.load(LOSS_SCALE).to(tl.float64)
    norm = tl.sqrt(tl.sum(total, axis=0)) * tl.abs(scale)
    coefficient = max_norm / (norm + 1e-6)
    # Not tl.minimum: on a GPU it returns the other operand for a NaN, and a NaN norm must
    # reach the weights, not vanish into a coefficient of 1.
    coefficient = tl.where(coefficient > 1.0, 1.0, coefficient)
    tl.store(STATE, coefficient)
    tl.store(STATE + 1, norm)


def new_state(device) -> torch.Tensor:
    """A zeroed ``GRAD_NORM_STATE`` buffer (float64) on ``device``."""
    return torch.zeros(len(GRAD_NORM_STATE), dtype=torch.float64, device=device)


def partial_count(chunk_tables: Sequence[ChunkTable]) -> int:
    """The slots of ``partials`` that ``plan_global_norm`` over these chunk tables fills."""
    return sum(chunks.programs for chunks in chunk_tables)


def plan_global_norm(regions: Sequence[tuple[torch.Tensor, ChunkTable]], partials: torch.Tensor,
                     state: torch.Tensor, hyper: torch.Tensor, rescale_slot: int, max_norm: float,
                     scaler: LossScaleState | None = None) -> list[Launch]:
    """One launch per ``(flat gradient, chunk table)`` region and one that writes ``state``:
    the coefficient the updates multiply gradients by and the norm of those gradients
    (``grad * hyper[rescale_slot] / loss scale``) over every region."""
    fn = "global_norm"
    if not regions:
        raise KernelArgumentError(f"{fn}: no gradient regions to take the norm of")
    if not max_norm > 0:
        raise KernelArgumentError(f"{fn}: max_norm={max_norm} must be positive")
    device = regions[0][0].device
    for k, (grad, _) in enumerate(regions):
        check_tensor(fn, f"grad {k}", grad, FLOAT_DTYPES)
        if grad.dim() != 1 or not grad.is_contiguous() or grad.device != device:
            raise KernelArgumentError(f"{fn}: grad {k} must be a flat contiguous tensor on {device}, got shape "
                                      f"{tuple(grad.shape)} on {grad.device}")
    needed = partial_count([chunks for _, chunks in regions])
    for name, t, size in (("partials", partials, needed), ("state", state, len(GRAD_NORM_STATE))):
        check_tensor(fn, name, t, (torch.float64,))
        if t.dim() != 1 or t.numel() < size or t.device != device:
            raise KernelArgumentError(f"{fn}: {name} must be a flat float64 tensor of at least {size} elements on "
                                      f"{device}, got shape {tuple(t.shape)} on {t.device}")
    check_tensor(fn, "hyper", hyper, (torch.float32, torch.float64))
    if not 0 <= rescale_slot < hyper.numel():
        raise KernelArgumentError(f"{fn}: rescale_slot {rescale_slot} is outside hyper of {hyper.numel()} elements")
    if scaler is not None:
        scaler.check(fn, device)
    launches, first = [], 0
    for grad, chunks in regions:
        launches.append(Launch(_sum_squares_kernel, (chunks.programs,), [grad, chunks.start, chunks.end, partials,
                                                                        first], dict(BLOCK=chunks.block)))
        first += chunks.programs
    launches.append(Launch(_clip_coefficient_kernel, (1,),
                           [partials, needed, hyper, rescale_slot, state if scaler is None else scaler.scale, state,
                            float(max_norm)], dict(HAS_SCALER=scaler is not None, BLOCK=SUM_BLOCK)))
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    size = (1 << 24) if large else 3000
    grad = torch.empty(size, dtype=dtype)
    chunks = chunk_table([Segment(0, size // 3), Segment(size // 3 + 24, size - size // 3 - 24)], size, dtype, "cpu")
    ct = torch.float64 if dtype == torch.float64 else torch.float32
    scaler = LossScaleState(torch.empty(1), torch.empty(len(SCALER_COUNTERS), dtype=torch.int32))
    launches = plan_global_norm([(grad, chunks)], torch.empty(chunks.programs, dtype=torch.float64), new_state("cpu"),
                                torch.empty(10, dtype=ct), 2, 1.0, scaler)
    return [("gradient sum of squares", launches[0]), ("global norm clip coefficient, loss-scaled", launches[1])]
