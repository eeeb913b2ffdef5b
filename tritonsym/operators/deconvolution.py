"""Deconvolution (MXNet's): the transposed convolution, Convolution's gradient with respect
to its data taken as an operator of its own, the upsampling layer of decoders and
generators. Data (batch, channels, *spatial) in NC(D)(H)W layout, weight
``(channels, num_filter / num_group, *kernel)``, bias ``(num_filter,)`` (left out unless
``no_bias=False``: MXNet's default is no bias); per axis the output has
``stride*(n - 1) + dilate*(kernel - 1) + 1 - 2*pad + adj`` positions, ``adj < stride``.

``target_shape`` asks for an output size instead: ``pad`` and ``adj`` are then computed as
MXNet computes them (the padding rounded up, ``adj`` the odd remainder) and the given ones
ignored. ``workspace``, ``cudnn_tune``, ``cudnn_off`` and ``layout`` as Convolution's.
Kernels: ``ops/deconvolution.py`` (Convolution's three, with data and gradient exchanged)."""

from __future__ import annotations

from ..ops import deconvolution as kernels
from .convolution import check_grouped, cudnn_params, spatial_params
from .fully_connected import PRECISION, inputs_with_bias
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify


def geometry(p, lengths) -> dict[str, tuple[int, ...]]:
    """stride, dilate, pad and adj for data of spatial shape ``lengths``: as given, or from
    ``target_shape`` (MXNet's rule) when it names any size."""
    g = spatial_params(p, names=("stride", "dilate", "pad", "adj"))
    target = p["target_shape"]
    if any(target):
        if len(target) != len(lengths):
            raise ShapeMismatch(f"target_shape={tuple(target)} must have one size per kernel axis: "
                                f"kernel={p['kernel']}")
        full = [s * (n - 1) + d * (k - 1) + 1 for n, k, s, d in zip(lengths, p["kernel"], g["stride"], g["dilate"])]
        if any(f < t for f, t in zip(full, target)):
            raise ShapeMismatch(f"target_shape={tuple(target)} is larger than the {tuple(full)} that data of spatial "
                                f"shape {tuple(lengths)} reaches with kernel={p['kernel']}, stride={g['stride']}, "
                                f"dilate={g['dilate']} and no padding")
        g["pad"] = tuple((f - t + 1) // 2 for f, t in zip(full, target))
        g["adj"] = tuple((f - t) % 2 for f, t in zip(full, target))
    if any(a >= s for a, s in zip(g["adj"], g["stride"])):
        given = "computed from target_shape" if any(target) else "given"
        raise ShapeMismatch(f"adj={g['adj']} ({given}) must be smaller than stride={g['stride']} on every axis")
    return g


def _infer_shape(p, in_shapes, out_shapes):
    check_grouped("Deconvolution", p, in_shapes[0])
    data, filters, groups = in_shapes[0], p["num_filter"], p["num_group"]
    weight = in_shapes[1]
    if data is not None:
        weight = unify("weight", weight, (data[1], filters // groups, *p["kernel"]))
        g = geometry(p, data[2:])
        out = [kernels.output_length(n, k, s, d, q, a) for n, k, s, d, q, a in
               zip(data[2:], p["kernel"], g["stride"], g["dilate"], g["pad"], g["adj"])]
        if min(out) < 1:
            raise ShapeMismatch(f"pad={g['pad']} crops away the whole output of data of spatial shape "
                                f"{tuple(data[2:])} (kernel={p['kernel']}, stride={g['stride']}, "
                                f"dilate={g['dilate']}, adj={g['adj']})")
        out_shapes = [unify("output", out_shapes[0], (data[0], filters, *out))]
    elif weight is not None:
        weight = unify("weight", weight, (weight[0], filters // groups, *p["kernel"]))
    new_in = [data, weight]
    if not p["no_bias"]:
        new_in.append(unify("bias", in_shapes[2], (filters,)))
    return new_in, out_shapes


def _forward(a: ForwardArgs):
    p, x = a.params, a.inputs[0]
    bias = None if p["no_bias"] else a.inputs[2]
    return kernels.plan_deconvolution(x, a.inputs[1], bias, a.outputs[0], groups=p["num_group"],
                                      precision=p["precision"], **geometry(p, x.shape[2:]))


def _backward(a: BackwardArgs):
    p, x = a.params, a.inputs[0]
    grads = list(a.in_grads) + [None] * (3 - len(a.in_grads))
    accumulate = list(a.accumulate) + [False] * (3 - len(a.accumulate))
    if all(g is None for g in grads):
        return []
    return kernels.plan_deconvolution_backward(a.out_grads[0], x, a.inputs[1], *grads, groups=p["num_group"],
                                               accumulate=accumulate, precision=p["precision"],
                                               **geometry(p, x.shape[2:]))


register(OpDef(
    name="Deconvolution",
    doc="Transposed convolution of data (batch, channels, *spatial) into num_filter channels: the gradient of "
        "Convolution with respect to its data, in NC(D)(H)W layout.",
    params=[
        Param("kernel", "shape", doc="the filters' spatial shape: (w,), (h, w) or (d, h, w)"),
        Param("num_filter", int, doc="number of filters (output channels)", check=positive),
        Param("stride", "shape", (), doc="the corresponding convolution's step per axis (default 1)"),
        Param("dilate", "shape", (), doc="spacing between the kernel's taps per axis (default 1)"),
        Param("pad", "shape", (), doc="positions cropped from both ends of the output per axis (default 0)"),
        Param("adj", "shape", (), doc="positions added at the output's end per axis, each < stride (default 0)"),
        Param("target_shape", "shape", (), doc="the output's spatial shape: pad and adj computed, the given ignored"),
        Param("num_group", int, 1, doc="split channels and filters into this many independent groups",
              check=positive),
        Param("no_bias", bool, True, doc="leave out the bias term (MXNet's default)"),
        *cudnn_params(workspace=512),
        PRECISION,
    ],
    input_names=("data", "weight", "bias"),
    active_inputs=inputs_with_bias,
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
))
