"""im2col and col2im (MXNet's): the sliding blocks of (N, C, *spatial) data, 1 to 3 spatial
axes, as columns, and the sum of such columns back into an image. Each is the other's
adjoint, so each one's gradient is a launch of the other.

- im2col: ``cols[n, (c, k), l] = x[n, c, l * stride - pad + k * dilate]`` for every kernel
  tap k and block position l (the convolution's output positions), 0 where the tap reaches
  into the padding. One thread per column element: a gather, NaN copied like any value.
- col2im: ``x[n, c, i] = sum over taps k of cols[n, (c, k), l]`` for the block l that reads
  position i through tap k, if there is one: ``(i + pad - k * dilate) / stride`` whole and
  inside the blocks. One thread per image element visits its taps in a fixed order: the
  same bits every run, no atomics. A position no block reads gets 0.

Every shape is viewed as 3-d (``convolution.as_volume``), so one kernel of each serves 1-,
2- and 3-d data. Operands are contiguous, of one float dtype; sums are in float32 (float64
for float64) and rounded once.
"""

from __future__ import annotations

import math

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
    load_wide,
    store_result,
    widen,
)
from .convolution import _output_of_tap, _split3, as_volume, output_length, volume_geometry

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_im2col.py")


@triton.jit
def _im2col_kernel(X, COLS, n, C, D, H, W, OD, OH, OW, KD, KH, KW, st_d, st_h, st_w, dl_d, dl_h, dl_w,
                   pd_d, pd_h, pd_w, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    blocks = OD * OH * OW
    taps = KD * KH * KW
    image_tap, block = index // blocks, index % blocks
    image, tap = image_tap // taps, image_tap % taps  # image = batch * C + channel
    kd, kh, kw = _split3(tap, KH, KW)
    od, oh, ow = _split3(block, OH, OW)
    z, y, x = od * st_d - pd_d + kd * dl_d, oh * st_h - pd_h + kh * dl_h, ow * st_w - pd_w + kw * dl_w
    inside = mask & (z >= 0) & (z < D) & (y >= 0) & (y < H) & (x >= 0) & (x < W)
    value = load_wide(X, ((image * D + z) * H + y) * W + x, inside, 0.0)
    store_result(COLS, index, value, mask, ACCUMULATE)


@triton.jit
def _col2im_kernel(COLS, X, n, D, H, W, OD, OH, OW, KD, KH, KW, st_d, st_h, st_w, dl_d, dl_h, dl_w,
                   pd_d, pd_h, pd_w, ACCUMULATE: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    image_z, y, x = _split3(index, H, W)
    image, z = image_z // D, image_z % D
    blocks = OD * OH * OW
    first_column = image * (KD * KH * KW)  # the column of this image's tap 0
    acc = widen(tl.zeros((BLOCK,), tl.float32), X)
    for kd in range(0, KD):
        reads_d, od = _output_of_tap(z, kd, pd_d, dl_d, st_d, OD)
        for kh in range(0, KH):
            reads_h, oh = _output_of_tap(y, kh, pd_h, dl_h, st_h, OH)
            for kw in range(0, KW):
                reads_w, ow = _output_of_tap(x, kw, pd_w, dl_w, st_w, OW)
                reads = mask & reads_d & reads_h & reads_w
                column = first_column + (kd * KH + kh) * KW + kw
                acc += load_wide(COLS, column * blocks + (od * OH + oh) * OW + ow, reads, 0.0)
    store_result(X, index, acc, mask, ACCUMULATE)


def block_grid(fn: str, image_shape, kernel, stride, dilate, pad) -> tuple[int, ...]:
    """The block positions along each spatial axis of an image of ``image_shape`` (N, C,
    *spatial): the convolution's output shape. Refuses parameters of the wrong length or
    range and a dilated kernel longer than the padded image."""
    spatial = len(image_shape) - 2
    if not 1 <= spatial <= 3:
        raise KernelArgumentError(f"{fn}: the image must be (batch, channels, 1 to 3 spatial axes), got shape "
                                  f"{tuple(image_shape)}")
    for name, values, low in (("kernel", kernel, 1), ("stride", stride, 1), ("dilate", dilate, 1), ("pad", pad, 0)):
        if len(values) != spatial or min(values) < low:
            raise KernelArgumentError(f"{fn}: {name}={tuple(values)} needs {spatial} value(s) >= {low}")
    grid = tuple(output_length(*axis) for axis in zip(image_shape[2:], kernel, stride, dilate, pad))
    if min(grid) < 1:
        raise KernelArgumentError(f"{fn}: kernel {tuple(kernel)} dilated by {tuple(dilate)} is longer than the "
                                  f"image's spatial shape {tuple(image_shape[2:])} padded by {tuple(pad)}")
    return grid


def columns_shape(image_shape, kernel, grid) -> tuple[int, int, int]:
    """(N, C x prod(kernel), prod(grid)): the columns of an image of ``image_shape``."""
    return image_shape[0], image_shape[1] * math.prod(kernel), math.prod(grid)


def _checked_pair(fn: str, image: torch.Tensor, cols: torch.Tensor, kernel, stride, dilate, pad) -> list:
    """The launch scalars after checking ``image`` and ``cols`` against each other and the
    geometry: (D, H, W, OD, OH, OW, KD, KH, KW, strides, dilations, pads), each 3-d."""
    for name, t in (("image", image), ("cols", cols)):
        check_tensor(fn, name, t, FLOAT_DTYPES)
        if not t.is_contiguous():
            raise KernelArgumentError(f"{fn}: {name} must be contiguous, got shape {tuple(t.shape)} strides "
                                      f"{t.stride()}")
    grid = block_grid(fn, tuple(image.shape), kernel, stride, dilate, pad)
    expected = columns_shape(tuple(image.shape), kernel, grid)
    if tuple(cols.shape) != expected or cols.dtype != image.dtype or cols.device != image.device:
        raise KernelArgumentError(f"{fn}: cols {tuple(cols.shape)} ({cols.dtype} on {cols.device}) must be {expected} "
                                  f"of the image's dtype {image.dtype} on {image.device} for an image "
                                  f"{tuple(image.shape)}, kernel {tuple(kernel)}, stride {tuple(stride)}, dilate "
                                  f"{tuple(dilate)}, pad {tuple(pad)}")
    spatial = len(kernel)
    return [*as_volume(image).shape[2:], *volume_geometry(grid, spatial, 1), *volume_geometry(kernel, spatial, 1),
            *volume_geometry(stride, spatial, 1), *volume_geometry(dilate, spatial, 1),
            *volume_geometry(pad, spatial, 0)]


def plan_im2col(x: torch.Tensor, cols: torch.Tensor, *, kernel, stride, dilate, pad,
                accumulate: bool = False) -> list[Launch]:
    """``cols (+)=`` the sliding blocks of ``x`` (N, C, *spatial) as columns (N, C x
    prod(kernel), blocks)."""
    fn = "im2col"
    scalars = _checked_pair(fn, x, cols, kernel, stride, dilate, pad)
    check_writable(fn, "cols", cols)
    n = cols.numel()
    return [Launch(_im2col_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),), [x, cols, n, x.shape[1], *scalars],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def plan_col2im(cols: torch.Tensor, x: torch.Tensor, *, kernel, stride, dilate, pad,
                accumulate: bool = False) -> list[Launch]:
    """``x (+)=`` the columns ``cols`` summed back into the image (N, C, *spatial) that
    ``plan_im2col`` would take them from."""
    fn = "col2im"
    scalars = _checked_pair(fn, x, cols, kernel, stride, dilate, pad)
    check_writable(fn, "x", x)
    n = x.numel()
    return [Launch(_col2im_kernel, (triton.cdiv(max(n, 1), ELEMENTWISE_BLOCK),), [cols, x, n, *scalars],
                   dict(ACCUMULATE=accumulate, BLOCK=ELEMENTWISE_BLOCK))]


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    # a ResNet stem's 7 x 7 stride-2 blocks of 3 channels, and a 3 x 3 dilated 3-d one
    n, c, h, w = (32, 3, 224, 224) if large else (2, 3, 9, 8)
    x = torch.empty(n, c, h, w, dtype=dtype)
    stem = dict(kernel=(7, 7), stride=(2, 2), dilate=(1, 1), pad=(3, 3))
    cols = torch.empty(columns_shape(x.shape, stem["kernel"], block_grid("im2col", x.shape, **stem)), dtype=dtype)
    volume = torch.empty(2, 4, 5, 6, 7, dtype=dtype)
    dilated = dict(kernel=(3, 3, 3), stride=(1, 2, 1), dilate=(2, 1, 2), pad=(1, 1, 1))
    volume_cols = torch.empty(columns_shape(volume.shape, dilated["kernel"], block_grid("im2col", volume.shape,
                                                                                        **dilated)), dtype=dtype)
    return [("im2col", plan_im2col(x, cols, **stem)[0]),
            ("im2col 3-d accumulating", plan_im2col(volume, volume_cols, accumulate=True, **dilated)[0]),
            ("col2im", plan_col2im(cols, x, **stem)[0]),
            ("col2im 3-d accumulating", plan_col2im(volume_cols, volume, accumulate=True, **dilated)[0])]
