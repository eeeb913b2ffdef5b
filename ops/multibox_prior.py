"""multibox_prior (MXNet's ``contrib.MultiBoxPrior``): SSD's prior (anchor) boxes of a
feature map of H x W cells, as MXNet computes them. Cell (r, c) is centered at
((c + offset_x) step_x, (r + offset_y) step_y) (steps 1/W and 1/H unless given), and holds
A = len(sizes) + len(ratios) - 1 boxes, in order: each size s at the first ratio, then the
first size at every other ratio q, each of half sides

    w = s H / W sqrt(q) / 2,   h = s / sqrt(q) / 2     (MXNet's order of operations),

corner encoded (x - w, y - h, x + w, y + h): the output (1, H W A, 4), cell-major. ``clip``
clamps every coordinate into [0, 1]. The parameters are float32 (MXNet's), and so is the
arithmetic, as MXNet does it (float64 for a float64 output), rounded once. One launch per
box of a cell, one program per block of cells; nothing is read.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    element_block,
    store,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_multibox_prior.py")


@triton.jit
def _prior_kernel(OUT, cells, W, A, k, step_y: tl.float64, step_x: tl.float64, offset_y: tl.float64,
                  offset_x: tl.float64, half_w: tl.float64, half_h: tl.float64, CLIP: tl.constexpr,
                  BLOCK: tl.constexpr):
    cell, mask = element_block(cells, BLOCK)
    # the compute dtype's (float32 unless OUT is float64): the scalars arrive as float64 and
    # hold float32 values for a float32 computation, so this conversion is exact
    y = (widen((cell // W).to(tl.float32), OUT) + widen(offset_y, OUT)) * widen(step_y, OUT)
    x = (widen((cell % W).to(tl.float32), OUT) + widen(offset_x, OUT)) * widen(step_x, OUT)
    w = widen(half_w, OUT)
    h = widen(half_h, OUT)
    box = (cell * A + k) * 4
    for j in tl.static_range(4):
        if j == 0:
            v = x - w
        elif j == 1:
            v = y - h
        elif j == 2:
            v = x + w
        else:
            v = y + h
        if CLIP:
            v = tl.minimum(tl.maximum(v, 0.0), 1.0)
        store(OUT, box + j, v, mask)


def boxes_per_cell(sizes, ratios) -> int:
    """A: each size at the first ratio, the first size at every other ratio."""
    return len(sizes) + len(ratios) - 1


def _half_sides(sizes, ratios, height: int, width: int, wide: bool) -> list[tuple[float, float]]:
    """Each box's (w, h), MXNet's float32 arithmetic in its order (float64 when ``wide``)."""
    f = np.float64 if wide else np.float32
    as_param = lambda v: f(np.float32(v))  # noqa: E731 (MXNet's parameters are float32)
    first = np.sqrt(as_param(ratios[0]))
    shapes = [(as_param(s), first) for s in sizes] + [(as_param(sizes[0]), np.sqrt(as_param(q))) for q in ratios[1:]]
    return [(float(s * f(height) / f(width) * r / f(2)), float(s / r / f(2))) for s, r in shapes]


def positive_numbers_complaint(values) -> str | None:
    """What is wrong with ``sizes`` or ``ratios``: one or more positive finite numbers."""
    if len(values) == 0 or not all(math.isfinite(v) and v > 0 for v in values):
        return "must be one or more positive numbers"
    return None


def steps_complaint(steps) -> str | None:
    """Both steps given (positive) or neither (MXNet takes (0, 0.1) for neither, silently)."""
    if len(steps) != 2 or not all(math.isfinite(v) for v in steps) or (steps[0] > 0) != (steps[1] > 0):
        return "must be (step_y, step_x), both positive or neither (then 1 / height and 1 / width)"
    return None


def offsets_complaint(offsets) -> str | None:
    if len(offsets) != 2 or not all(0 <= v <= 1 for v in offsets):
        return "must be (offset_y, offset_x), each in [0, 1]"
    return None


def check_parameters(fn: str, sizes, ratios, steps, offsets) -> None:
    """MXNet's rules, and what it accepts silently refused (a step of 0 beside a positive one)."""
    for name, values, complaint in (("sizes", sizes, positive_numbers_complaint(sizes)),
                                    ("ratios", ratios, positive_numbers_complaint(ratios)),
                                    ("steps", steps, steps_complaint(steps)),
                                    ("offsets", offsets, offsets_complaint(offsets))):
        if complaint:
            raise KernelArgumentError(f"{fn}: {name}={tuple(values)} {complaint}")


def plan_multibox_prior(out: torch.Tensor, height: int, width: int, sizes=(1.0,), ratios=(1.0,), clip: bool = False,
                        steps=(-1.0, -1.0), offsets=(0.5, 0.5)) -> list[Launch]:
    """``out`` (1, height width A, 4) = the prior boxes of a height x width feature map."""
    fn = "multibox_prior"
    check_parameters(fn, sizes, ratios, steps, offsets)
    check_tensor(fn, "out", out, FLOAT_DTYPES)
    check_writable(fn, "out", out)
    count = boxes_per_cell(sizes, ratios)
    expected = (1, height * width * count, 4)
    if tuple(out.shape) != expected or not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: out must be contiguous {expected} ({height} x {width} cells of {count} "
                                  f"boxes), got {tuple(out.shape)} strides {out.stride()}")
    cells = height * width
    if cells == 0:
        return []
    wide = out.dtype == torch.float64
    f = np.float64 if wide else np.float32
    if steps[0] > 0:
        step_y, step_x = float(f(np.float32(steps[0]))), float(f(np.float32(steps[1])))
    else:
        step_y, step_x = float(f(1) / f(height)), float(f(1) / f(width))
    offset_y, offset_x = (float(f(np.float32(v))) for v in offsets)
    return [Launch(_prior_kernel, (triton.cdiv(cells, ELEMENTWISE_BLOCK),),
                   [out, cells, width, count, k, step_y, step_x, offset_y, offset_x, half_w, half_h],
                   dict(CLIP=bool(clip), BLOCK=ELEMENTWISE_BLOCK))
            for k, (half_w, half_h) in enumerate(_half_sides(sizes, ratios, height, width, wide))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # SSD300's first feature map, 38 x 38 cells of 4 boxes; 3 x 5 cells of 2
    (height, width), sizes, ratios = ((38, 38), (0.1, 0.141), (1.0, 2.0, 0.5)) if large else ((3, 5), (0.5,), (1, 2))
    out = torch.empty(1, height * width * boxes_per_cell(sizes, ratios), 4, dtype=dtype)
    return [("multibox prior", plan_multibox_prior(out, height, width, sizes, ratios)[0]),
            ("multibox prior clipped", plan_multibox_prior(out, height, width, sizes, ratios, clip=True,
                                                           steps=(0.125, 0.0625))[0])]
