"""Transposed convolution (MXNet's Deconvolution) of 1-, 2- or 3-d data in NC(D)(H)W layout:
the adjoint of ``ops/convolution.py``'s convolution, computed by its three kernels with
the roles of data and gradient exchanged, so no kernel of its own and no col2im buffer.

For x (N, C, *in) and weight (C, F / groups, *kernel), the output (N, F, *out) with
``out = stride*(in - 1) + dilate*(kernel - 1) + 1 - 2*pad + adj`` per axis is

    y[n, f, o] = sum over (c, i, k) with o = i*stride + k*dilate - pad of x[n, c, i] * w[c, f, k]

(+ bias[f]): the full transposed convolution, cropped by ``pad`` on both sides and
extended by ``adj`` at the end. That is the input gradient of a convolution whose input
has the output's shape, so

- forward: the convolution input-gradient kernel with x as its "dy" (each output position
  gathers the inputs joined to it through each tap; the bias added per channel);
- data gradient: the convolution forward kernel over dy, the cropped positions read as the
  zeros they are (times a NaN weight they give NaN, as MXNet's and torch's do);
- weight gradient: the convolution weight-gradient kernel with x as its "dy" and dy as
  its data, reduced in a fixed order (same bits every run);
- bias gradient: the reduction kernel's sum of dy over all axes but the channels.
"""

from __future__ import annotations

import torch

from ._common import KernelArgumentError, Launch, check_tensor, check_writable, prepare_out
from .convolution import (
    MAX_GROUPS,
    _conv_forward_kernel,
    _conv_input_grad_kernel,
    _conv_weight_grad_kernel,
    _grid,
    _options,
    as_volume,
    check_operands,
    volume_geometry,
)
from .reduce import plan_reduce

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_deconvolution.py")


def output_length(length: int, kernel: int, stride: int, dilate: int, pad: int, adj: int) -> int:
    """Output positions along one axis (MXNet's formula); < 1 when the padding crops it all."""
    return stride * (length - 1) + dilate * (kernel - 1) + 1 - 2 * pad + adj


def _geometry(fn: str, x: torch.Tensor, weight: torch.Tensor, stride, dilate, pad, adj, groups: int):
    """The output's shape and the convolution kernels' common scalars, seen from the
    convolution whose input has the output's shape and whose output has x's."""
    spatial = check_operands(fn, x, weight, "(channels, filters / groups, *kernel)", stride=stride, dilate=dilate,
                             pad=pad, adj=adj)
    if any(a >= s for a, s in zip(adj, stride)):
        raise KernelArgumentError(f"{fn}: adj={tuple(adj)} must be smaller than stride={tuple(stride)} on every axis")
    if groups < 1 or groups > MAX_GROUPS or x.shape[1] != weight.shape[0] or x.shape[1] % groups:
        raise KernelArgumentError(f"{fn}: x has {x.shape[1]} channels and weight {tuple(weight.shape)} with "
                                  f"groups={groups}: weight.shape[0] must be the channels, a multiple of groups")
    out_spatial = [output_length(n, k, s, d, p, a)
                   for n, k, s, d, p, a in zip(x.shape[2:], weight.shape[2:], stride, dilate, pad, adj)]
    if min(out_spatial) < 1:
        raise KernelArgumentError(f"{fn}: pad={tuple(pad)} crops away the whole output of x's spatial shape "
                                  f"{tuple(x.shape[2:])} under kernel {tuple(weight.shape[2:])}, stride "
                                  f"{tuple(stride)}, dilate {tuple(dilate)}")
    scalars = [*volume_geometry(out_spatial, spatial, 1), *as_volume(x).shape[2:], *as_volume(weight).shape[2:],
               *volume_geometry(stride, spatial, 1), *volume_geometry(dilate, spatial, 1),
               *volume_geometry(pad, spatial, 0)]
    return (x.shape[0], weight.shape[1] * groups, *out_spatial), scalars


def plan_deconvolution(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor | None,
                       *, stride, dilate, pad, adj, groups: int = 1, accumulate: bool = False,
                       precision: str = "ieee") -> list[Launch]:
    """``out (+)= deconv(x, weight) + bias``: x (N, C, *spatial), weight (C, F / groups,
    *kernel), bias (F,) or None; ``stride``/``dilate``/``pad``/``adj`` one value per axis."""
    fn = "deconvolution"
    out_shape, scalars = _geometry(fn, x, weight, stride, dilate, pad, adj, groups)
    if bias is not None:
        check_tensor(fn, "bias", bias)
        if tuple(bias.shape) != (out_shape[1],) or bias.dtype != x.dtype:
            raise KernelArgumentError(f"{fn}: bias has shape {tuple(bias.shape)} ({bias.dtype}); expected "
                                      f"({out_shape[1]},) of x's dtype {x.dtype}")
    out = prepare_out(fn, "out", out, out_shape, x.dtype, x.device)
    check_writable(fn, "out", out)
    x5, w5, y5 = as_volume(x), as_volume(weight), as_volume(out)
    rows, per_group = out.numel() // out.shape[1], x.shape[1] // groups
    return [Launch(_conv_input_grad_kernel, _grid(rows, weight.shape[1], groups),
                   [x5, w5, bias if bias is not None else out, y5, rows, weight.shape[1],
                    per_group * w5[0, 0].numel(), per_group, *scalars, *y5.stride(), *w5.stride(), *x5.stride()],
                   dict(HAS_BIAS=bias is not None, ACCUMULATE=accumulate, **_options(x.dtype, precision)))]


def plan_deconvolution_backward(grad_out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                                grad_x: torch.Tensor | None, grad_weight: torch.Tensor | None,
                                grad_bias: torch.Tensor | None, *, stride, dilate, pad, adj, groups: int = 1,
                                accumulate=(False, False, False), precision: str = "ieee") -> list[Launch]:
    """The gradients of ``deconv(x, weight) + bias`` that are wanted (None: not wanted), each
    written or, where ``accumulate`` says so, added."""
    fn = "deconvolution_backward"
    out_shape, scalars = _geometry(fn, x, weight, stride, dilate, pad, adj, groups)
    check_tensor(fn, "grad_out", grad_out)
    if tuple(grad_out.shape) != out_shape or grad_out.dtype != x.dtype:
        raise KernelArgumentError(f"{fn}: grad_out has shape {tuple(grad_out.shape)} ({grad_out.dtype}); "
                                  f"expected {out_shape} of x's dtype")
    options = _options(x.dtype, precision)
    x5, w5, dy5 = as_volume(x), as_volume(weight), as_volume(grad_out)
    per_group, positions = x.shape[1] // groups, x.numel() // x.shape[1]
    launches = []
    if grad_x is not None:
        grad_x = prepare_out(fn, "grad_x", grad_x, x.shape, x.dtype, x.device)
        check_writable(fn, "grad_x", grad_x)
        dx5 = as_volume(grad_x)
        launches.append(Launch(_conv_forward_kernel, _grid(positions, per_group, groups),
                               [dy5, w5, dx5, dx5, positions, per_group, w5[0].numel(), weight.shape[1], *scalars,
                                *dy5.stride(), *w5.stride(), *dx5.stride()],
                               dict(HAS_BIAS=False, ACCUMULATE=accumulate[0], **options)))
    if grad_weight is not None:
        grad_weight = prepare_out(fn, "grad_weight", grad_weight, weight.shape, x.dtype, x.device)
        check_writable(fn, "grad_weight", grad_weight)
        dw5 = as_volume(grad_weight)
        launches.append(Launch(_conv_weight_grad_kernel, _grid(per_group, w5[0].numel(), groups),
                               [x5, dy5, dw5, per_group, w5[0].numel(), positions, weight.shape[1], *scalars,
                                *dy5.stride(), *dw5.stride(), *x5.stride()],
                               dict(ACCUMULATE=accumulate[1], **options)))
    if grad_bias is not None:
        launches += plan_reduce(grad_out, grad_bias, "sum", [0, *range(2, grad_out.dim())], accumulate=accumulate[2])
    return launches


def deconvolution(x, weight, bias=None, *, stride=None, dilate=None, pad=None, adj=None, groups=1,
                  precision="ieee"):
    """Standalone transposed convolution (defaults: stride and dilation 1, no pad, no adj)."""
    spatial = x.dim() - 2
    launches = plan_deconvolution(x, weight, bias, None, stride=stride or (1,) * spatial,
                                  dilate=dilate or (1,) * spatial, pad=pad or (0,) * spatial,
                                  adj=adj or (0,) * spatial, groups=groups, precision=precision)
    for launch in launches:
        launch()
    y5 = launches[0].args[3]
    return y5.reshape(y5.shape[:2] + y5.shape[5 - spatial:])


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    if large:  # a decoder's upsampling: 4x4/2 from 28x28 to 56x56 with 64 channels, batch 32
        x, w = torch.empty(32, 64, 28, 28, dtype=dtype), torch.empty(64, 64, 4, 4, dtype=dtype)
        geometry = dict(stride=(2, 2), dilate=(1, 1), pad=(1, 1), adj=(0, 0))
    else:
        x, w = torch.empty(2, 4, 5, 3, dtype=dtype), torch.empty(4, 3, 3, 2, dtype=dtype)
        geometry = dict(stride=(2, 1), dilate=(1, 2), pad=(1, 0), adj=(1, 0), groups=2)
    b = torch.empty(w.shape[1] * geometry.get("groups", 1), dtype=dtype)
    forward = plan_deconvolution(x, w, b, None, **geometry)[0]
    y5 = forward.args[3]
    y = y5.reshape(y5.shape[:2] + y5.shape[3:])
    backward = plan_deconvolution_backward(y, x, w, torch.empty_like(x), torch.empty_like(w), None, **geometry,
                                           accumulate=(True, False, False))
    return [("deconvolution", forward), ("deconvolution data gradient accumulating", backward[0]),
            ("deconvolution weight gradient", backward[1])]
