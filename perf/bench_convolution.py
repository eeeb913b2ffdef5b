"""Convolution, Deconvolution, Pooling, GroupNorm, LRN, Pad, UpSampling and deformable
convolution on the GPU's tensor cores and memory: a ResNet stage's 3x3 convolution (forward,
input gradient, weight gradient), then a 3x3 max pooling of stride 2 over its output
(forward and backward), a GroupNorm of it (32 groups: forward and backward, against
``group_norm``) and AlexNet's LRN (against ``local_response_norm``), then a decoder's
4x4/2 transposed convolution of the pooled output to twice its size (forward, data and
weight gradients), a reflect Pad around the convolution's output and a nearest UpSampling
of the pooled output (forward and backward), and a 3x3 DCN v2 layer
(ModulatedDeformableConvolution) over the pooled output (forward, then every gradient),
against cuDNN and torch through PyTorch eager (``torch.nn.functional.conv2d``,
``conv_transpose2d``, ``torch.ops.aten.convolution_backward``, ``max_pool2d``, ``pad``,
``interpolate`` and their autograd, ``torchvision.ops.deform_conv2d`` where installed), with
the convolutions' TFLOP/s and the memory-bound rows' share of the measured copy bandwidth.

No issue sets a target: the rows say how far tritonsym's implicit GEMMs (no im2col buffer;
the input gradient masks the taps a stride skips; the weight gradient reduces every
output position in one program per tile, in a fixed order) are from cuDNN.

Run: python perf/bench_convolution.py [--shapes 32x64x56x64x3,...] [--dtypes bfloat16,float32]
"""

from __future__ import annotations

import argparse

import torch
from common import DEVICE, ON_GPU, Table, copy_bandwidth_gbs, copy_note, environment, ratio, time_ms
from tritonsym.ops import convolution, deconvolution, deformable_convolution, group_norm, lrn, pad, pooling, upsampling
from tritonsym.ops._common import run

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def _row(op: str, dtype: str, shape, ms: float, eager_ms: float | None, flops: float | None = None,
         nbytes: int | None = None, copy_gbs: float | None = None) -> dict:
    share = f"{100 * nbytes / ms / 1e6 / copy_gbs:.0f}" if nbytes and copy_gbs else ""
    return {"operator": op, "dtype": dtype, "shape": "x".join(map(str, shape)), "ms": f"{ms:.4f}",
            "vs torch": ratio(ms, eager_ms), "TFLOP/s": f"{flops / ms / 1e9:.1f}" if flops else "",
            "% of copy": share}


def convolution_rows(batch: int, channels: int, size: int, filters: int, kernel: int, name: str,
                     copy_gbs) -> list[dict]:
    """A kernel x kernel convolution of a size x size image, padded to keep its size, then a
    3x3 max pooling of stride 2 over its output, each against cuDNN through torch."""
    dtype = DTYPES[name]
    gen = torch.Generator(device=DEVICE).manual_seed(batch)
    x = torch.randn(batch, channels, size, size, device=DEVICE, generator=gen).to(dtype)
    w = torch.randn(filters, channels, kernel, kernel, device=DEVICE, generator=gen).to(dtype) * 0.05
    dy = torch.randn(batch, filters, size, size, device=DEVICE, generator=gen).to(dtype)
    geometry = dict(stride=(1, 1), dilate=(1, 1), pad=(kernel // 2,) * 2)
    precision = "tf32" if dtype == torch.float32 else "ieee"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    y, dx, dw = torch.empty_like(dy), torch.empty_like(x), torch.empty_like(w)
    forward = convolution.plan_convolution(x, w, None, y, precision=precision, **geometry)
    grads = convolution.plan_convolution_backward(dy, x, w, dx, dw, None, precision=precision, **geometry)
    run(forward + grads)  # autotune outside the timing
    flops = 2.0 * batch * filters * size * size * channels * kernel * kernel

    def torch_grad(mask):
        return lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [1, 1], [kernel // 2] * 2, [1, 1], False,
                                                           [0, 0], 1, mask)
    label = f"Convolution {kernel}x{kernel}{' (tf32)' if precision == 'tf32' else ''}"
    shape = (batch, channels, size, size, filters)
    rows = [_row(f"{label} forward", name, shape, time_ms(lambda: run(forward)),
                 time_ms(lambda: torch.nn.functional.conv2d(x, w, padding=kernel // 2)), flops),
            _row(f"{label} input gradient", name, shape, time_ms(lambda: run(grads[:1])),
                 time_ms(torch_grad([True, False, False])), flops),
            _row(f"{label} weight gradient", name, shape, time_ms(lambda: run(grads[1:])),
                 time_ms(torch_grad([False, True, False])), flops)]
    pooled_shape = (batch, filters, (size - 1) // 2 + 1, (size - 1) // 2 + 1)
    pooled, argmax, dpool = (torch.empty(pooled_shape, device=DEVICE, dtype=t) for t in (dtype, torch.int32, dtype))
    pool_geometry = dict(kind="max", kernel=(3, 3), stride=(2, 2), pad=(1, 1))
    pool = pooling.plan_pooling(y, pooled, argmax=argmax, **pool_geometry)
    unpool = pooling.plan_pooling_backward(dpool, None, None, argmax, dy, **pool_geometry)
    yr = y.detach().clone().requires_grad_()
    out = torch.nn.functional.max_pool2d(yr, 3, 2, 1)
    moved = y.numel() * y.element_size() + pooled.numel() * (pooled.element_size() + 4)
    rows += [_row("max Pooling 3x3/2 forward", name, y.shape, time_ms(lambda: run(pool)),
                  time_ms(lambda: torch.nn.functional.max_pool2d(y, 3, 2, 1)), nbytes=moved, copy_gbs=copy_gbs),
             _row("max Pooling 3x3/2 backward", name, y.shape, time_ms(lambda: run(unpool)),
                  time_ms(lambda: torch.autograd.grad(out, yr, dpool, retain_graph=True)), nbytes=moved,
                  copy_gbs=copy_gbs)]
    return (rows + group_norm_rows(y, dy, name, copy_gbs) + lrn_rows(y, dy, name, copy_gbs)
            + deconvolution_rows(pooled, channels, precision, name)
            + resampling_rows(y, pooled, name, copy_gbs)
            # the interpreter walks the data gradient's taps one by one: a corner of one image there
            + deformable_rows(pooled if ON_GPU else pooled[:1, :, :3, :3].contiguous(), precision, name))


def group_norm_rows(y: torch.Tensor, dy: torch.Tensor, name: str, copy_gbs) -> list[dict]:
    """GroupNorm of the convolution's output in groups of (up to) 32, forward and backward,
    against torch's group_norm (one gamma per channel there: the same values repeated)."""
    groups = max(g for g in (32, 16, 8, 4, 2, 1) if y.shape[1] % g == 0)
    per_group, rows = y.shape[1] // groups, y.shape[0] * groups
    stats = torch.float32
    g, b = torch.ones(groups, device=DEVICE, dtype=y.dtype), torch.zeros(groups, device=DEVICE, dtype=y.dtype)
    out, dx, dg, db = torch.empty_like(y), torch.empty_like(y), torch.empty_like(g), torch.empty_like(b)
    mean, rstd, row_dg, row_db = (torch.empty(rows, device=DEVICE, dtype=stats) for _ in range(4))
    forward = group_norm.plan_group_norm_forward(y, g, b, out, groups=groups, eps=1e-5, kept_mean=mean,
                                                 kept_rstd=rstd)
    backward = group_norm.plan_group_norm_backward(y, dy, g, mean, rstd, dx, dg, db, groups=groups, row_dgamma=row_dg,
                                                   row_dbeta=row_db)
    run(forward + backward)
    gc, bc = g.repeat_interleave(per_group), b.repeat_interleave(per_group)
    yr, gr, br = (t.detach().clone().requires_grad_() for t in (y, gc, bc))
    ref = torch.nn.functional.group_norm(yr, groups, gr, br, 1e-5)
    size = y.numel() * y.element_size()
    label = f"GroupNorm ({groups} groups)"
    return [_row(f"{label} forward", name, y.shape, time_ms(lambda: run(forward)),
                 time_ms(lambda: torch.nn.functional.group_norm(y, groups, gc, bc, 1e-5)), nbytes=2 * size,
                 copy_gbs=copy_gbs),
            _row(f"{label} backward", name, y.shape, time_ms(lambda: run(backward)),
                 time_ms(lambda: torch.autograd.grad(ref, (yr, gr, br), dy, retain_graph=True)), nbytes=3 * size,
                 copy_gbs=copy_gbs)]


def lrn_rows(y: torch.Tensor, dy: torch.Tensor, name: str, copy_gbs) -> list[dict]:
    """AlexNet's LRN (nsize 5) of the convolution's output, forward and backward, against
    torch's local_response_norm (and its autograd)."""
    constants = dict(nsize=5, alpha=1e-4, beta=0.75, knorm=2.0)
    out, dx = torch.empty_like(y), torch.empty_like(y)
    terms = torch.empty(y.shape, device=DEVICE, dtype=lrn.scratch_dtype(y.dtype))
    forward, backward = lrn.plan_lrn(y, out, **constants), lrn.plan_lrn_backward(y, dy, terms, dx, **constants)
    # torch's CPU build has no half-precision avg_pool3d, which local_response_norm runs on:
    # the interpreter's rows (timing nothing that matters) compare with float32 there
    y_ref, dy_ref = (y, dy) if ON_GPU else (y.float(), dy.float())
    yr = y_ref.detach().clone().requires_grad_()
    ref = torch.nn.functional.local_response_norm(yr, 5, 1e-4, 0.75, 2.0)
    size = y.numel() * y.element_size()
    return [_row("LRN 5 forward", name, y.shape, time_ms(lambda: run(forward)),
                 time_ms(lambda: torch.nn.functional.local_response_norm(y_ref, 5, 1e-4, 0.75, 2.0)),
                 nbytes=2 * size, copy_gbs=copy_gbs),
            _row("LRN 5 backward", name, y.shape, time_ms(lambda: run(backward)),
                 time_ms(lambda: torch.autograd.grad(ref, yr, dy_ref, retain_graph=True)), nbytes=3 * size,
                 copy_gbs=copy_gbs)]


def deconvolution_rows(x: torch.Tensor, channels: int, precision: str, name: str) -> list[dict]:
    """A 4x4 transposed convolution of stride 2 and pad 1 (a decoder's 2x upsampling) of the
    pooled x into ``channels`` channels of twice its size, against cuDNN through torch."""
    batch, size = x.shape[0], 2 * x.shape[2]
    gen = torch.Generator(device=DEVICE).manual_seed(batch)
    w = torch.randn(x.shape[1], channels, 4, 4, device=DEVICE, generator=gen).to(x.dtype) * 0.05
    geometry = dict(stride=(2, 2), dilate=(1, 1), pad=(1, 1), adj=(0, 0))
    y = torch.empty(batch, channels, size, size, device=DEVICE, dtype=x.dtype)
    dy, dx, dw = torch.randn_like(y), torch.empty_like(x), torch.empty_like(w)
    forward = deconvolution.plan_deconvolution(x, w, None, y, precision=precision, **geometry)
    grads = deconvolution.plan_deconvolution_backward(dy, x, w, dx, dw, None, precision=precision, **geometry)
    run(forward + grads)  # autotune outside the timing
    flops = 2.0 * x.numel() * channels * 16

    def torch_grad(mask):
        return lambda: torch.ops.aten.convolution_backward(dy, x, w, None, [2, 2], [1, 1], [1, 1], True,
                                                           [0, 0], 1, mask)
    label = f"Deconvolution 4x4/2{' (tf32)' if precision == 'tf32' else ''}"
    shape = (*x.shape, channels)
    return [_row(f"{label} forward", name, shape, time_ms(lambda: run(forward)),
                 time_ms(lambda: torch.nn.functional.conv_transpose2d(x, w, stride=2, padding=1)), flops),
            _row(f"{label} data gradient", name, shape, time_ms(lambda: run(grads[:1])),
                 time_ms(torch_grad([True, False, False])), flops),
            _row(f"{label} weight gradient", name, shape, time_ms(lambda: run(grads[1:])),
                 time_ms(torch_grad([False, True, False])), flops)]


def deformable_rows(x: torch.Tensor, precision: str, name: str) -> list[dict]:
    """A 3x3 DCN v2 layer over x keeping its channels and size (offsets of up to 2 pixels, a
    mask in (0, 1)): forward, then every gradient (the column gradient, the offsets' and
    mask's, the data's walked in order, the weight's); against torchvision's deform_conv2d
    and its autograd where torchvision is installed."""
    batch, channels, size = x.shape[0], x.shape[1], x.shape[2]
    gen = torch.Generator(device=DEVICE).manual_seed(channels)
    w = (torch.randn(channels, channels, 3, 3, device=DEVICE, generator=gen) * 0.05).to(x.dtype)
    offset = (torch.rand(batch, 18, size, x.shape[3], device=DEVICE, generator=gen) * 4 - 2).to(x.dtype)
    mask = torch.rand(batch, 9, size, x.shape[3], device=DEVICE, generator=gen).to(x.dtype)
    y = torch.empty(batch, channels, size, x.shape[3], device=DEVICE, dtype=x.dtype)
    geometry = dict(kernel=(3, 3), stride=(1, 1), dilate=(1, 1), pad=(1, 1), zero_pad=True, precision=precision)
    grads = [torch.empty_like(t) for t in (x, offset, mask, w)]
    forward = deformable_convolution.plan_deformable_convolution(x, offset, mask, w, None, y, **geometry)
    backward = deformable_convolution.plan_deformable_convolution_backward(y, x, offset, mask, w, *grads, None,
                                                                           **geometry)
    run(forward + backward)  # autotune outside the timing
    flops = 2.0 * batch * channels * size * x.shape[3] * channels * 9
    eager_fwd = eager_bwd = None
    try:
        from torchvision.ops import deform_conv2d
    except ImportError:  # not installed (the CPU machine): tritonsym's times alone
        deform_conv2d = None
    if deform_conv2d is not None:
        leaves = [t.detach().clone().requires_grad_() for t in (x, offset, w, mask)]
        out = deform_conv2d(leaves[0], leaves[1], leaves[2], padding=1, mask=leaves[3])
        eager_fwd = time_ms(lambda: deform_conv2d(x, offset, w, padding=1, mask=mask))
        eager_bwd = time_ms(lambda: torch.autograd.grad(out, leaves, y, retain_graph=True))
    label = f"ModulatedDeformableConvolution 3x3{' (tf32)' if precision == 'tf32' else ''}"
    shape = (batch, channels, size, x.shape[3], channels)
    return [_row(f"{label} forward", name, shape, time_ms(lambda: run(forward)), eager_fwd, flops),
            _row(f"{label} backward", name, shape, time_ms(lambda: run(backward)), eager_bwd, 2 * flops)]


def resampling_rows(y: torch.Tensor, pooled: torch.Tensor, name: str, copy_gbs) -> list[dict]:
    """A reflect Pad of 1 around the convolution's output and a nearest UpSampling of the
    pooled output to twice its size, forward and backward, against torch's pad and
    interpolate (and their autograd)."""
    pads = ((0, 0), (0, 0), (1, 1), (1, 1))
    padded = torch.empty(pad.output_shape(y.shape, pads), device=DEVICE, dtype=y.dtype)
    dpadded, dy = torch.randn_like(padded), torch.empty_like(y)
    pad_forward = pad.plan_pad(y, padded, "reflect", pads)
    pad_backward = pad.plan_pad_backward(dpadded, dy, "reflect", pads)
    big = torch.empty(*pooled.shape[:2], 2 * pooled.shape[2], 2 * pooled.shape[3], device=DEVICE, dtype=y.dtype)
    dbig, dpooled = torch.randn_like(big), torch.empty_like(pooled)
    up_forward, up_backward = upsampling.plan_nearest(pooled, big), upsampling.plan_nearest_backward(dbig, dpooled)
    run(pad_forward + pad_backward + up_forward + up_backward)
    yr, pr = y.detach().clone().requires_grad_(), pooled.detach().clone().requires_grad_()
    pad_ref = torch.nn.functional.pad(yr, (1, 1, 1, 1), mode="reflect")
    up_ref = torch.nn.functional.interpolate(pr, scale_factor=2, mode="nearest")
    pad_bytes = (y.numel() + padded.numel()) * y.element_size()
    up_bytes = (pooled.numel() + big.numel()) * y.element_size()
    return [_row("Pad reflect 1 forward", name, y.shape, time_ms(lambda: run(pad_forward)),
                 time_ms(lambda: torch.nn.functional.pad(y, (1, 1, 1, 1), mode="reflect")), nbytes=pad_bytes,
                 copy_gbs=copy_gbs),
            _row("Pad reflect 1 backward", name, y.shape, time_ms(lambda: run(pad_backward)),
                 time_ms(lambda: torch.autograd.grad(pad_ref, yr, dpadded, retain_graph=True)), nbytes=pad_bytes,
                 copy_gbs=copy_gbs),
            _row("UpSampling nearest x2 forward", name, pooled.shape, time_ms(lambda: run(up_forward)),
                 time_ms(lambda: torch.nn.functional.interpolate(pooled, scale_factor=2, mode="nearest")),
                 nbytes=up_bytes, copy_gbs=copy_gbs),
            _row("UpSampling nearest x2 backward", name, pooled.shape, time_ms(lambda: run(up_backward)),
                 time_ms(lambda: torch.autograd.grad(up_ref, pr, dbig, retain_graph=True)), nbytes=up_bytes,
                 copy_gbs=copy_gbs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="32x64x56x64x3,32x256x14x256x3" if ON_GPU else "2x3x9x4x3",
                        help="batch x channels x image size x filters x kernel, comma-separated")
    parser.add_argument("--dtypes", default="bfloat16,float32")
    args = parser.parse_args()
    names = [d for d in args.dtypes.split(",") if d]
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",") if s]
    copy_gbs = copy_bandwidth_gbs()
    notes = copy_note(copy_gbs) + ("Convolution's shape: batch x channels x size x size x filters, padded to keep "
                                   "the size; TFLOP/s of the forward's products for each of its three rows (each "
                                   "gradient costs as many); float32 on TF32 tensor cores, as cuDNN's (allowed for "
                                   "the comparison). max Pooling 3x3/2 over the convolution's output: `% of copy` "
                                   "counts one read of its input and one write of its output and kept positions "
                                   "(backward: those reads and one write). GroupNorm over the convolution's output: "
                                   "`% of copy` counts one read and one write (backward: two reads, one write); "
                                   "LRN 5 (AlexNet's) over it alike (its backward's scratch and windows not counted). "
                                   "Deconvolution 4x4/2: the pooled output "
                                   "(shape: batch x its channels x size x size x the image's channels) upsampled "
                                   "to twice its size; TFLOP/s of its forward's products. Pad reflect 1 around the "
                                   "convolution's output and UpSampling nearest x2 of the pooled output: `% of "
                                   "copy` counts one read of the smaller and one write of the larger tensor (the "
                                   "backward: the reverse). ModulatedDeformableConvolution 3x3 over the pooled "
                                   "output (shape: batch x channels x size x size x filters; offsets up to 2 pixels): "
                                   "its forward's products for TFLOP/s, its backward's twice them (the column and "
                                   "weight gradients), against torchvision.ops.deform_conv2d where installed. "
                                   "`vs torch` is "
                                   "tritonsym's speed-up over torch eager (cuDNN on a GPU).")
    table = Table("convolution", len(names) * len(shapes) * 18, notes)
    for name in names:  # bfloat16 first: the rows that matter most if a run is cut short
        for shape in shapes:
            for row in convolution_rows(*shape, name, copy_gbs):
                table.add(row)
    print(f"{environment()}\nwrote {table.path}")


if __name__ == "__main__":
    main()

