"""box_nms (MXNet's ``contrib.box_nms``): greedy non-maximum suppression of each image's
boxes, rows of ``data`` (..., N, W) holding a score, four coordinates and optionally a
class id. A box is a candidate when its score is above ``valid_thresh`` (and its id is not
``background_id``); candidates are taken by descending score, ties by row (MXNet's stable
sort), the first ``topk`` of each image; each one not yet suppressed suppresses every later
candidate it overlaps by an IoU above ``overlap_thresh`` (of its own class, unless
``force_suppress``). The survivors' rows are written first, in that order, their
coordinates re-encoded when ``out_format`` differs; every other row is -1.

Four launches, each ordered after the last, no atomics, the same bits every run:
  1. rank: one program per (image, block of rows) counts the candidates before each of its
     rows (every pair compared in tiles, as ``ops/sort.py`` ranks) and writes the row to its
     place in ``ORDER``; it marks every row's ``POSITION`` (its output row) -1;
  2. suppress: one program per image walks its candidates in blocks of ``BLOCK``: the
     survivors so far (``RECORD``'s first rows) suppress a block in parallel, tiles of
     survivors against the block, then the block's own boxes suppress each other in order;
     its survivors go to ``RECORD`` (which input row each output row takes) and
     ``POSITION``. The program reads back what it wrote, so a barrier follows each block;
  3. assign: each output row copies its input row (or -1), re-encoded;
  4. backward: each input row takes its output row's gradient (0 if suppressed), through
     the re-encoding's Jacobian (MXNet copies it unchanged).
Launches 1 and 2 (``plan_suppression``) also suppress ``ops/multibox_detection.py``'s
detections, there at an IoU equal to the threshold too (``inclusive``).
An image holding a NaN score, coordinate or class id has every output and gradient NaN:
the order of its boxes is unknowable (MXNet's comparisons drop such a box quietly). IoU is
MXNet's: sides ``max(min(right) - max(left), 0)``, a center box's corners ``x -+ w / 2``,
areas 0 for a negative side; float32 arithmetic (float64 for float64).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._boxes import corners_of_center, load_box
from ._common import (
    FLOAT_DTYPES,
    INTERPRET,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    load_wide,
    store,
    store_result,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_box_nms.py")
FORMATS = ("corner", "center")
DROPPED = tl.constexpr(-1)  # RECORD/POSITION: no box (the output row is -1, the input row takes no gradient)
NAN_IMAGE = tl.constexpr(-2)  # RECORD/POSITION: the image holds a NaN
BLOCK = 128  # candidates a suppressing program decides at once
BLOCK_SURVIVORS = 32  # survivors compared against them at once
BLOCK_ROWS = 64  # rows an assign or gradient program copies
# Rows ranked and compared at once: the interpreter prefers few large tiles.
RANK_BLOCK_I, RANK_BLOCK_J = (256, 256) if INTERPRET else (64, 64)
_CONVERSIONS = {("corner", "corner"): 0, ("center", "center"): 0, ("corner", "center"): 1, ("center", "corner"): 2}


@triton.jit
def _candidates(DATA, row, mask, W, SCORE, ID, valid_thresh, background, HAS_ID: tl.constexpr):
    """Which rows are candidates (score above the threshold, id not the background)."""
    score = load_wide(DATA, row * W + SCORE, mask, 0.0)
    valid = mask & (score > valid_thresh)
    if HAS_ID:
        valid = valid & (load_wide(DATA, row * W + ID, mask, 0.0) != background)
    return valid, score


@triton.jit
def _box(DATA, row, mask, W, COORD, CENTER: tl.constexpr):
    """(left, top, right, bottom, area) of rows ``row`` as MXNet computes them: a center
    box's corners x -+ w / 2 and its area w * h; the area 0 where a side is negative."""
    a, b, c, d = load_box(DATA, row, mask, W, COORD)
    if CENTER:
        left, top, right, bottom = corners_of_center(a, b, c, d)
        width, height = c, d
    else:
        left, top, right, bottom, width, height = a, b, c, d, c - a, d - b
    area = tl.where((width < 0) | (height < 0), 0.0, width * height)
    return left, top, right, bottom, area


@triton.jit
def _overlaps(l0, t0, r0, b0, a0, l1, t1, r1, b1, a1, overlap_thresh, INCLUSIVE: tl.constexpr):
    """IoU above the threshold (at or above it: ``INCLUSIVE``, MultiBoxDetection's rule), the
    intersection a product of non-negative sides."""
    wx = tl.minimum(r0, r1) - tl.maximum(l0, l1)
    wy = tl.minimum(b0, b1) - tl.maximum(t0, t1)
    inter = tl.where(wx > 0, wx, 0.0) * tl.where(wy > 0, wy, 0.0)
    if INCLUSIVE:
        return inter / (a0 + a1 - inter) >= overlap_thresh
    else:
        return inter / (a0 + a1 - inter) > overlap_thresh


@triton.jit
def _rank_kernel(DATA, ORDER, POSITION, N, W, K, tiles, SCORE, ID, valid_thresh, background,
                 HAS_ID: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    image, tile = pid // tiles, pid % tiles
    i = tile * BLOCK_I + tl.arange(0, BLOCK_I).to(tl.int64)
    inside = i < N
    valid_i, score_i = _candidates(DATA, image * N + i, inside, W, SCORE, ID, valid_thresh, background, HAS_ID)
    rank = tl.zeros((BLOCK_I,), tl.int32)
    for start in range(0, N, BLOCK_J):
        j = start + tl.arange(0, BLOCK_J).to(tl.int64)
        valid_j, score_j = _candidates(DATA, image * N + j, j < N, W, SCORE, ID, valid_thresh, background, HAS_ID)
        a, b = score_i[:, None], score_j[None, :]
        precedes = valid_j[None, :] & ((b > a) | ((b == a) & (j[None, :] < i[:, None])))
        rank += tl.sum(precedes.to(tl.int32), axis=1)
    tl.store(ORDER + image * N + rank, i.to(tl.int32), mask=valid_i & (rank < K))
    tl.store(POSITION + image * N + i, tl.zeros((BLOCK_I,), tl.int32) + DROPPED, mask=inside)


@triton.jit
def _suppress_kernel(DATA, ORDER, RECORD, POSITION, N, W, K, COORD, SCORE, ID, valid_thresh, background,
                     overlap_thresh, HAS_ID: tl.constexpr, CLASSWISE: tl.constexpr, CENTER: tl.constexpr,
                     INCLUSIVE: tl.constexpr, BLOCK: tl.constexpr, BLOCK_S: tl.constexpr):
    image = tl.program_id(0).to(tl.int64)
    base = image * N
    lanes = tl.arange(0, BLOCK)
    # one pass over the image: its candidates, and any NaN among what suppression reads
    valid_lanes = tl.zeros((BLOCK,), tl.int32)
    nan_lanes = tl.zeros((BLOCK,), tl.int32)
    for start in range(0, N, BLOCK):
        i = start + lanes
        inside = i < N
        valid, score = _candidates(DATA, base + i, inside, W, SCORE, ID, valid_thresh, background, HAS_ID)
        a, b, c, d = load_box(DATA, base + i, inside, W, COORD)
        bad = (score != score) | (a != a) | (b != b) | (c != c) | (d != d)
        if HAS_ID:
            label = load_wide(DATA, (base + i) * W + ID, inside, 0.0)
            bad = bad | (label != label)
        valid_lanes += valid.to(tl.int32)
        nan_lanes += (bad & inside).to(tl.int32)
    count = tl.minimum(tl.sum(valid_lanes), K)
    if tl.sum(nan_lanes) > 0:
        for start in range(0, N, BLOCK):
            i = start + lanes
            mark = tl.zeros((BLOCK,), tl.int32) + NAN_IMAGE
            tl.store(RECORD + base + i, mark, mask=i < N)
            tl.store(POSITION + base + i, mark, mask=i < N)
    else:
        kept = tl.sum(tl.zeros((BLOCK,), tl.int32))
        for first in range(0, count, BLOCK):
            alive = first + lanes < count
            source = tl.load(ORDER + base + first + lanes, mask=alive, other=0).to(tl.int64)
            left, top, right, bottom, area = _box(DATA, base + source, alive, W, COORD, CENTER)
            label = tl.zeros((BLOCK,), tl.int32)
            if CLASSWISE:  # MXNet compares ids as ints
                label = load_wide(DATA, (base + source) * W + ID, alive, 0.0).to(tl.int32)
            # the survivors of earlier blocks, a tile of them against the whole block at once
            for s0 in range(0, kept, BLOCK_S):
                s = s0 + tl.arange(0, BLOCK_S)
                is_survivor = s < kept
                s_row = base + tl.load(RECORD + base + s, mask=is_survivor, other=0).to(tl.int64)
                sl, st, sr, sb, sa = _box(DATA, s_row, is_survivor, W, COORD, CENTER)
                hit = _overlaps(sl[:, None], st[:, None], sr[:, None], sb[:, None], sa[:, None], left[None, :],
                                top[None, :], right[None, :], bottom[None, :], area[None, :], overlap_thresh,
                                INCLUSIVE)
                hit = hit & is_survivor[:, None]
                if CLASSWISE:
                    s_label = load_wide(DATA, s_row * W + ID, is_survivor, 0.0).to(tl.int32)
                    hit = hit & (s_label[:, None] == label[None, :])
                alive = alive & (tl.max(hit.to(tl.int32), axis=0) == 0)
            # then the block's own boxes, in order: each survivor suppresses those after it
            for j in range(0, tl.minimum(count - first, BLOCK)):
                pick = lanes == j
                ref_alive = (tl.sum((pick & alive).to(tl.int32)) + tl.zeros((BLOCK,), tl.int32)) > 0
                hit = _overlaps(tl.sum(tl.where(pick, left, 0.0)), tl.sum(tl.where(pick, top, 0.0)),
                                tl.sum(tl.where(pick, right, 0.0)), tl.sum(tl.where(pick, bottom, 0.0)),
                                tl.sum(tl.where(pick, area, 0.0)), left, top, right, bottom, area, overlap_thresh,
                                INCLUSIVE)
                hit = hit & ref_alive & (lanes > j)
                if CLASSWISE:
                    hit = hit & (label == tl.sum(tl.where(pick, label, 0)))
                alive = alive & (hit == 0)
            position = kept + tl.cumsum(alive.to(tl.int32), axis=0) - 1
            tl.store(RECORD + base + position, source.to(tl.int32), mask=alive)
            tl.store(POSITION + base + source, position, mask=alive)
            kept += tl.sum(alive.to(tl.int32))
            tl.debug_barrier()  # the next block reads these survivors back, on other lanes
        for start in range(0, N, BLOCK):
            p = start + lanes
            tl.store(RECORD + base + p, tl.zeros((BLOCK,), tl.int32) + DROPPED, mask=(p < N) & (p >= kept))


@triton.jit
def _encoded(a, b, c, d, CONVERT: tl.constexpr):
    """Four coordinates re-encoded: 1 corner to center, 2 center to corner."""
    if CONVERT == 1:
        return (a + c) / 2, (b + d) / 2, c - a, d - b
    else:
        return a - c / 2, b - d / 2, a + c / 2, b + d / 2


@triton.jit
def _in_coordinates(value, k, n0, n1, n2, n3):
    """``value`` with its columns k = 0..3 (of the coordinates) replaced by n0..n3."""
    new = tl.where(k == 0, n0[:, None], tl.where(k == 1, n1[:, None], tl.where(k == 2, n2[:, None], n3[:, None])))
    return tl.where((k >= 0) & (k < 4), new, value)


@triton.jit
def _assign_kernel(DATA, RECORD, OUT, rows, N, W, COORD, CONVERT: tl.constexpr, BLOCK_ROWS: tl.constexpr,
                   BLOCK_W: tl.constexpr):
    p = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    inside = p < rows
    source = tl.load(RECORD + p, mask=inside, other=DROPPED).to(tl.int64)
    have = inside & (source >= 0)
    row = (p // N) * N + source
    col = tl.arange(0, BLOCK_W)
    value = load_wide(DATA, row[:, None] * W + col[None, :], have[:, None] & (col < W)[None, :], 0.0)
    if CONVERT != 0:
        a, b, c, d = load_box(DATA, row, have, W, COORD)
        n0, n1, n2, n3 = _encoded(a, b, c, d, CONVERT)
        value = _in_coordinates(value, col[None, :] - COORD, n0, n1, n2, n3)
    value = tl.where((source == DROPPED)[:, None], -1.0, value)
    value = tl.where((source == NAN_IMAGE)[:, None], float("nan"), value)
    store(OUT, p[:, None] * W + col[None, :], value, inside[:, None] & (col < W)[None, :])


@triton.jit
def _grad_kernel(DOUT, POSITION, DDATA, rows, N, W, COORD, CONVERT: tl.constexpr, ACCUMULATE: tl.constexpr,
                 BLOCK_ROWS: tl.constexpr, BLOCK_W: tl.constexpr):
    i = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    inside = i < rows
    position = tl.load(POSITION + i, mask=inside, other=DROPPED).to(tl.int64)
    have = inside & (position >= 0)
    row = (i // N) * N + position
    col = tl.arange(0, BLOCK_W)
    grad = load_wide(DOUT, row[:, None] * W + col[None, :], have[:, None] & (col < W)[None, :], 0.0)
    if CONVERT != 0:  # the transposed Jacobian of the re-encoding
        h0, h1, h2, h3 = load_box(DOUT, row, have, W, COORD)
        if CONVERT == 1:  # center (x, y, w, h) of corners: x = (l + r) / 2, w = r - l
            grad = _in_coordinates(grad, col[None, :] - COORD, h0 / 2 - h2, h1 / 2 - h3, h0 / 2 + h2, h1 / 2 + h3)
        else:  # corners of center: l = x - w / 2, r = x + w / 2
            grad = _in_coordinates(grad, col[None, :] - COORD, h0 + h2, h1 + h3, (h2 - h0) / 2, (h3 - h1) / 2)
    grad = tl.where((position == NAN_IMAGE)[:, None], float("nan"), grad)
    store_result(DDATA, i[:, None] * W + col[None, :], grad, inside[:, None] & (col < W)[None, :], ACCUMULATE)


def check_layout(fn: str, shape, coord_start: int, score_index: int, id_index: int) -> str | None:
    """What is wrong with data of ``shape`` for these columns (MXNet's checks), or None."""
    if len(shape) < 2:
        return f"data of shape {tuple(shape)} must have at least 2 axes (boxes, and each box's values)"
    width = shape[-1]
    needed = 6 if id_index >= 0 else 5
    if width < needed:
        return (f"data of shape {tuple(shape)} holds {width} values a box, fewer than the {needed} of a score, "
                f"4 coordinates" + (" and a class id" if id_index >= 0 else ""))
    coords = range(coord_start, coord_start + 4)
    if coord_start < 0 or coord_start + 3 >= width:
        return f"coord_start={coord_start}: the coordinates {coord_start}..{coord_start + 3} are not in [0, {width})"
    for name, index in (("score_index", score_index), ("id_index", id_index)):
        if name == "id_index" and index < 0:
            continue
        if not 0 <= index < width:
            return f"{name}={index} is not in [0, {width}) (data of shape {tuple(shape)})"
        if index in coords:
            return f"{name}={index} is one of the coordinates {coord_start}..{coord_start + 3}"
    if id_index == score_index:
        return f"id_index={id_index} is score_index too"
    return None


def _layout(fn: str, data: torch.Tensor, others: dict, coord_start: int, score_index: int, id_index: int,
            in_format: str, out_format: str) -> tuple[int, int, int]:
    """(images, boxes an image, values a box) after checking every argument."""
    check_tensor(fn, "data", data, FLOAT_DTYPES)
    complaint = check_layout(fn, tuple(data.shape), coord_start, score_index, id_index)
    if complaint:
        raise KernelArgumentError(f"{fn}: {complaint}")
    for name, fmt in (("in_format", in_format), ("out_format", out_format)):
        if fmt not in FORMATS:
            raise KernelArgumentError(f"{fn}: {name}={fmt!r} is not one of {FORMATS}")
    if not data.is_contiguous():
        raise KernelArgumentError(f"{fn}: data must be contiguous, got strides {data.stride()}")
    images, boxes, width = math.prod(data.shape[:-2]), data.shape[-2], data.shape[-1]
    if boxes >= 1 << 31:
        raise KernelArgumentError(f"{fn}: {boxes} boxes an image have rows beyond int32")
    for name, (t, dtype, shape) in others.items():
        check_tensor(fn, name, t, (dtype,))
        if tuple(t.shape) != tuple(shape) or not t.is_contiguous() or t.device != data.device:
            raise KernelArgumentError(f"{fn}: {name} must be contiguous {tuple(shape)} {dtype} on {data.device}, "
                                      f"got {tuple(t.shape)} {t.dtype} strides {t.stride()} on {t.device}")
    return images, boxes, width


def scratch_shape(data_shape) -> tuple[int]:
    """The shape of each of the three int32 scratch arrays (order, record, position)."""
    return (math.prod(data_shape[:-1]),)


def _thresholds(dtype: torch.dtype, overlap_thresh: float, valid_thresh: float) -> tuple[float, float]:
    """MXNet's: float parameters, the score threshold compared in the data's dtype."""
    overlap = torch.tensor(overlap_thresh, dtype=torch.float32).item()
    valid = torch.tensor(valid_thresh, dtype=torch.float32).to(dtype).item()
    return overlap, valid


def plan_suppression(fn, data, order, record, position, overlap_thresh, valid_thresh, topk, coord_start, score_index,
                     id_index, background_id, force_suppress, in_format, out_format,
                     inclusive: bool = False) -> tuple[list[Launch], tuple]:
    """The rank and suppression launches (their results in ``order``, ``record`` and
    ``position``, as the module's docstring says), and (rows, boxes, width, conversion);
    ``inclusive``: suppress at an IoU equal to the threshold too (MultiBoxDetection's)."""
    scratch = scratch_shape(data.shape) if data.dim() >= 2 else (0,)
    images, boxes, width = _layout(fn, data, {name: (t, torch.int32, scratch) for name, t in (
        ("order", order), ("record", record), ("position", position))}, coord_start, score_index, id_index,
        in_format, out_format)
    if topk == 0 or topk < -1:
        raise KernelArgumentError(f"{fn}: topk={topk} must be -1 (every box) or at least 1")
    k = boxes if topk < 0 else min(boxes, topk)
    overlap, valid = _thresholds(data.dtype, overlap_thresh, valid_thresh)
    geometry = (images * boxes, boxes, width, _CONVERSIONS[(in_format, out_format)])
    if images * boxes == 0:
        return [], geometry
    tiles = triton.cdiv(boxes, RANK_BLOCK_I)
    has_id = id_index >= 0
    score_id = (score_index, max(id_index, 0), valid, background_id)
    return [Launch(_rank_kernel, (images * tiles,), [data, order, position, boxes, width, k, tiles, *score_id],
                   dict(HAS_ID=has_id, BLOCK_I=RANK_BLOCK_I, BLOCK_J=RANK_BLOCK_J)),
            Launch(_suppress_kernel, (images,),
                   [data, order, record, position, boxes, width, k, coord_start, *score_id, overlap],
                   dict(HAS_ID=has_id, CLASSWISE=has_id and not force_suppress, CENTER=in_format == "center",
                        INCLUSIVE=inclusive, BLOCK=BLOCK, BLOCK_S=BLOCK_SURVIVORS))], geometry


def plan_box_nms(data: torch.Tensor, out: torch.Tensor, order: torch.Tensor, record: torch.Tensor,
                 position: torch.Tensor, *, overlap_thresh: float = 0.5, valid_thresh: float = 0.0, topk: int = -1,
                 coord_start: int = 2, score_index: int = 1, id_index: int = -1, background_id: int = -1,
                 force_suppress: bool = False, in_format: str = "corner", out_format: str = "corner") -> list[Launch]:
    """``out`` = the survivors of non-maximum suppression of each image's rows of ``data``
    (..., N, W), first and in order, the rest -1; ``order``, ``record`` and ``position``
    are int32 scratch of ``scratch_shape(data.shape)``."""
    fn = "box_nms"
    launches, (rows, boxes, width, convert) = plan_suppression(
        fn, data, order, record, position, overlap_thresh, valid_thresh, topk, coord_start, score_index, id_index,
        background_id, force_suppress, in_format, out_format)
    if tuple(out.shape) != tuple(data.shape) or out.dtype != data.dtype or not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: out must be contiguous {tuple(data.shape)} {data.dtype}, got "
                                  f"{tuple(out.shape)} {out.dtype} strides {out.stride()}")
    check_writable(fn, "out", out)
    if rows:
        launches.append(Launch(_assign_kernel, (triton.cdiv(rows, BLOCK_ROWS),),
                               [data, record, out, rows, boxes, width, coord_start],
                               dict(CONVERT=convert, BLOCK_ROWS=BLOCK_ROWS, BLOCK_W=triton.next_power_of_2(width))))
    return launches


def plan_box_nms_backward(dout: torch.Tensor, data: torch.Tensor, ddata: torch.Tensor, order: torch.Tensor,
                          record: torch.Tensor, position: torch.Tensor, *, accumulate: bool = False,
                          **params) -> list[Launch]:
    """``ddata (+)=`` each surviving row's output gradient (through the re-encoding), 0 for
    the others: the suppression recomputed from ``data`` (``params`` as ``plan_box_nms``)."""
    fn = "box_nms_backward"
    params = dict(dict(overlap_thresh=0.5, valid_thresh=0.0, topk=-1, coord_start=2, score_index=1, id_index=-1,
                       background_id=-1, force_suppress=False, in_format="corner", out_format="corner"), **params)
    launches, (rows, boxes, width, convert) = plan_suppression(fn, data, order, record, position, **params)
    for name, t in (("dout", dout), ("ddata", ddata)):
        if tuple(t.shape) != tuple(data.shape) or t.dtype != data.dtype or not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be contiguous {tuple(data.shape)} {data.dtype}, got "
                                      f"{tuple(t.shape)} {t.dtype} strides {t.stride()}")
    check_writable(fn, "ddata", ddata)
    if rows:
        launches.append(Launch(_grad_kernel, (triton.cdiv(rows, BLOCK_ROWS),),
                               [dout, position, ddata, rows, boxes, width, params["coord_start"]],
                               dict(CONVERT=convert, ACCUMULATE=accumulate, BLOCK_ROWS=BLOCK_ROWS,
                                    BLOCK_W=triton.next_power_of_2(width))))
    return launches


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # SSD's detections: 8 images of 8732 boxes (id, score, corners), the 400 best of each; 2 of 7
    images, boxes, topk = (8, 8732, 400) if large else (2, 7, 4)
    data = torch.empty(images, boxes, 6, dtype=dtype)
    scratch = [torch.empty(scratch_shape(data.shape), dtype=torch.int32) for _ in range(3)]
    params = dict(topk=topk, id_index=0, background_id=0)
    forward = plan_box_nms(data, torch.empty_like(data), *scratch, **params)
    converting = plan_box_nms(data, torch.empty_like(data), *scratch, in_format="center", out_format="corner",
                              force_suppress=True, **params)
    backward = plan_box_nms_backward(data, data, torch.empty_like(data), *scratch, accumulate=True,
                                     in_format="corner", out_format="center", **params)
    return [("box nms rank", forward[0]), ("box nms suppress by class", forward[1]),
            ("box nms suppress center forced", converting[1]), ("box nms assign", forward[2]),
            ("box nms assign converting", converting[2]), ("box nms gradient converting accumulating", backward[2])]
