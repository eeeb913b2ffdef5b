"""box_decode (MXNet's ``contrib.box_decode``): boxes from a detector's regression offsets
against its anchors, as MXNet computes them. An anchor (x, y, w, h) (``center``; a
``corner`` anchor's center and sides from its corners), offsets (t0, t1, t2, t3) of
``data`` (B, N, 4) against anchor n of ``anchors`` (1, N, 4):

    x' = t0 std0 w + x,  y' = t1 std1 h + y,
    w' = exp(min(t2 std2, clip)) w,  h' = exp(min(t3 std3, clip)) h   (clip when clip > 0)

and the box (x' - w'/2, y' - h'/2, x' + w'/2, y' + h'/2). Both inputs take the gradient
(MXNet gives 0: losses on decoded boxes, GIoU's, need it); a clipped side none through
its offset (MXNet's ``t < clip ? t : clip`` takes clip at the tie). NaN stays NaN (MXNet's
comparison turns a NaN offset into clip). The anchors, shared by the batch, sum their
gradient over it: one program per block of anchors walks the images in order (no atomics,
the same bits every run) and writes the offsets' gradient on the way. Float32 arithmetic
(float64 for float64), rounded once.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ._boxes import center_of_corners, load_box
from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    element_block,
    store,
    store_result,
    widen,
)

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_box_decode.py")
FORMATS = ("corner", "center")
BLOCK_ANCHORS = 128  # anchors a gradient program owns


@triton.jit
def _anchor(ANCHORS, n, mask, CORNER: tl.constexpr):
    """(x, y, w, h) of anchors ``n``, a corner anchor's as MXNet computes them."""
    a, b, c, d = load_box(ANCHORS, n, mask, 4, 0)
    if CORNER:
        return center_of_corners(a, b, c, d)
    else:
        return a, b, c, d


@triton.jit
def _clipped(t, clip, CLIP: tl.constexpr):
    """``min(t, clip)`` as MXNet's ``t < clip ? t : clip`` (NaN kept), and whether clip won."""
    if CLIP:
        won = t >= clip
        return tl.where(won, clip, t), won
    else:
        return t, t < t  # never clipped: False everywhere, NaN included


@triton.jit
def _decode_kernel(DATA, ANCHORS, OUT, n_boxes, N, s0, s1, s2, s3, clip, CORNER: tl.constexpr,
                   CLIP: tl.constexpr, BLOCK: tl.constexpr):
    box, mask = element_block(n_boxes, BLOCK)
    x, y, w, h = _anchor(ANCHORS, box % N, mask, CORNER)
    t0, t1, t2, t3 = load_box(DATA, box, mask, 4, 0)
    ox = t0 * s0 * w + x
    oy = t1 * s1 * h + y
    dw, _ = _clipped(t2 * s2, clip, CLIP)
    dh, _ = _clipped(t3 * s3, clip, CLIP)
    ow = tl.exp(dw) * w * 0.5
    oh = tl.exp(dh) * h * 0.5
    store(OUT, box * 4, ox - ow, mask)
    store(OUT, box * 4 + 1, oy - oh, mask)
    store(OUT, box * 4 + 2, ox + ow, mask)
    store(OUT, box * 4 + 3, oy + oh, mask)


@triton.jit
def _grad_kernel(DOUT, DATA, ANCHORS, DDATA, DANCHORS, N, B, s0, s1, s2, s3, clip, CORNER: tl.constexpr,
                 CLIP: tl.constexpr, WANT_DATA: tl.constexpr, WANT_ANCHORS: tl.constexpr,
                 ACCUMULATE_DATA: tl.constexpr, ACCUMULATE_ANCHORS: tl.constexpr, BLOCK: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    x, y, w, h = _anchor(ANCHORS, n, mask, CORNER)
    zero = widen(tl.zeros((BLOCK,), tl.float32), DANCHORS)
    gx, gy, gw, gh = zero, zero, zero, zero
    for b in range(0, B):
        box = b * N + n
        g0, g1, g2, g3 = load_box(DOUT, box, mask, 4, 0)
        t0, t1, t2, t3 = load_box(DATA, box, mask, 4, 0)
        dox, doy, dow, doh = g0 + g2, g1 + g3, g2 - g0, g3 - g1  # of x', y', w'/2, h'/2
        dw, w_clipped = _clipped(t2 * s2, clip, CLIP)
        dh, h_clipped = _clipped(t3 * s3, clip, CLIP)
        ew, eh = tl.exp(dw), tl.exp(dh)
        if WANT_DATA:
            store_result(DDATA, box * 4, dox * s0 * w, mask, ACCUMULATE_DATA)
            store_result(DDATA, box * 4 + 1, doy * s1 * h, mask, ACCUMULATE_DATA)
            store_result(DDATA, box * 4 + 2, tl.where(w_clipped, 0.0 * dow, dow * ew * w * 0.5 * s2), mask,
                         ACCUMULATE_DATA)
            store_result(DDATA, box * 4 + 3, tl.where(h_clipped, 0.0 * doh, doh * eh * h * 0.5 * s3), mask,
                         ACCUMULATE_DATA)
        gx += dox
        gy += doy
        gw += dox * t0 * s0 + dow * ew * 0.5
        gh += doy * t1 * s1 + doh * eh * 0.5
    if WANT_ANCHORS:
        if CORNER:  # x = a0 + (a2 - a0) / 2, w = a2 - a0 (and likewise y, h)
            gx, gy, gw, gh = gx * 0.5 - gw, gy * 0.5 - gh, gx * 0.5 + gw, gy * 0.5 + gh
        store_result(DANCHORS, n * 4, gx, mask, ACCUMULATE_ANCHORS)
        store_result(DANCHORS, n * 4 + 1, gy, mask, ACCUMULATE_ANCHORS)
        store_result(DANCHORS, n * 4 + 2, gw, mask, ACCUMULATE_ANCHORS)
        store_result(DANCHORS, n * 4 + 3, gh, mask, ACCUMULATE_ANCHORS)


def _layout(fn: str, data: torch.Tensor, anchors: torch.Tensor, fmt: str) -> tuple[int, int]:
    """(images, boxes an image) after checking data (B, N, 4) and anchors (1, N, 4)."""
    if fmt not in FORMATS:
        raise KernelArgumentError(f"{fn}: format={fmt!r} is not one of {FORMATS}")
    for name, t in (("data", data), ("anchors", anchors)):
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if not t.is_contiguous() or t.dtype != data.dtype or t.device != data.device:
            raise KernelArgumentError(f"{fn}: {name} must be contiguous, of data's {data.dtype} on {data.device}, "
                                      f"got {tuple(t.shape)} {t.dtype} on {t.device} strides {t.stride()}")
    if data.dim() != 3 or data.shape[-1] != 4:
        raise KernelArgumentError(f"{fn}: data of shape {tuple(data.shape)} must be (batch, boxes, 4)")
    if anchors.dim() < 3 or anchors.shape[-1] != 4 or math.prod(anchors.shape[:-1]) != data.shape[1]:
        raise KernelArgumentError(f"{fn}: anchors of shape {tuple(anchors.shape)} must be (1, {data.shape[1]}, 4): "
                                  f"one anchor for each of data's {data.shape[1]} boxes")
    return data.shape[0], data.shape[1]


def _constants(dtype: torch.dtype, stds, clip: float) -> list[float]:
    """MXNet's: float parameters cast to the data's dtype."""
    return [torch.tensor(v, dtype=torch.float32).to(dtype).item() for v in (*stds, clip)]


def plan_box_decode(data: torch.Tensor, anchors: torch.Tensor, out: torch.Tensor, stds=(1.0, 1.0, 1.0, 1.0),
                    clip: float = -1.0, fmt: str = "center") -> list[Launch]:
    """``out`` = the boxes (x1, y1, x2, y2) ``data``'s offsets decode to against ``anchors``."""
    fn = "box_decode"
    images, boxes = _layout(fn, data, anchors, fmt)
    if tuple(out.shape) != tuple(data.shape) or out.dtype != data.dtype or not out.is_contiguous():
        raise KernelArgumentError(f"{fn}: out must be contiguous {tuple(data.shape)} {data.dtype}, got "
                                  f"{tuple(out.shape)} {out.dtype} strides {out.stride()}")
    check_writable(fn, "out", out)
    n_boxes = images * boxes
    if n_boxes == 0:
        return []
    return [Launch(_decode_kernel, (triton.cdiv(n_boxes, ELEMENTWISE_BLOCK),),
                   [data, anchors, out, n_boxes, boxes, *_constants(data.dtype, stds, clip)],
                   dict(CORNER=fmt == "corner", CLIP=clip > 0, BLOCK=ELEMENTWISE_BLOCK))]


def plan_box_decode_backward(dout: torch.Tensor, data: torch.Tensor, anchors: torch.Tensor,
                             ddata: torch.Tensor | None, danchors: torch.Tensor | None, stds=(1.0, 1.0, 1.0, 1.0),
                             clip: float = -1.0, fmt: str = "center", accumulate_data: bool = False,
                             accumulate_anchors: bool = False) -> list[Launch]:
    """``ddata``, ``danchors`` ``(+)=`` the gradients of the offsets and of the anchors (summed
    over the batch) through ``dout`` (None: not wanted)."""
    fn = "box_decode_backward"
    images, boxes = _layout(fn, data, anchors, fmt)
    for name, grad, like in (("dout", dout, data), ("ddata", ddata, data), ("danchors", danchors, anchors)):
        if grad is None:
            continue
        if tuple(grad.shape) != tuple(like.shape) or grad.dtype != like.dtype or not grad.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be contiguous {tuple(like.shape)} {like.dtype}, got "
                                      f"{tuple(grad.shape)} {grad.dtype} strides {grad.stride()}")
        if name != "dout":
            check_writable(fn, name, grad)
    if (ddata is None and danchors is None) or boxes == 0:
        return []
    return [Launch(_grad_kernel, (triton.cdiv(boxes, BLOCK_ANCHORS),),
                   [dout, data, anchors, ddata if ddata is not None else data,
                    danchors if danchors is not None else anchors, boxes, images,
                    *_constants(data.dtype, stds, clip)],
                   dict(CORNER=fmt == "corner", CLIP=clip > 0, WANT_DATA=ddata is not None,
                        WANT_ANCHORS=danchors is not None, ACCUMULATE_DATA=accumulate_data,
                        ACCUMULATE_ANCHORS=accumulate_anchors, BLOCK=BLOCK_ANCHORS))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # SSD's 8732 anchors decoding a batch of 32 images' offsets; 2 images of 7
    images, boxes = (32, 8732) if large else (2, 7)
    data, anchors = torch.empty(images, boxes, 4, dtype=dtype), torch.empty(1, boxes, 4, dtype=dtype)
    out = torch.empty_like(data)
    stds = (0.1, 0.1, 0.2, 0.2)
    return [("box decode center", plan_box_decode(data, anchors, out, stds)[0]),
            ("box decode corner clipped", plan_box_decode(data, anchors, out, stds, clip=4.135, fmt="corner")[0]),
            ("box decode gradient corner clipped", plan_box_decode_backward(
                out, data, anchors, torch.empty_like(data), torch.empty_like(anchors), stds, clip=4.135,
                fmt="corner")[0]),
            ("box decode gradient of the offsets accumulating", plan_box_decode_backward(
                out, data, anchors, torch.empty_like(data), None, stds, accumulate_data=True)[0])]
