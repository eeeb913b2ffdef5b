"""Pooling (MXNet's): max, average, sum or Lp pooling of 1-, 2- or 3-d data in NC(D)(H)W
layout over windows of ``kernel``, every ``stride``, with ``pad`` on both sides;
``global_pool`` pools each channel's whole extent (kernel, stride and pad then unused).
``pooling_convention``: ``valid`` (windows wholly inside the padded data) or ``full``
(MXNet's ceil: a last window may pass its end); a setting that gives a window with no
element of the data (pad as long as the kernel, say) is refused at bind, where MXNet
answers -DBL_MAX for max and 0 for the others.

Max pooling's training forward keeps each window's chosen position (one int32 per output,
``saved_for_backward``) so that its backward reads neither the data nor the output; a NaN
in a window is its maximum (MXNet 1.9.1 skips NaN). ``cudnn_off`` is read and changes
nothing; ``layout`` as Convolution's.
"""

from __future__ import annotations

import torch

from ..ops import pooling as kernels
from .convolution import LAYOUTS, check_layout, spatial_params
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def geometry(p, data) -> dict:
    """kernel, stride and pad for data of shape ``data``: the whole extent for global pooling."""
    spatial = len(data) - 2
    if p["global_pool"]:
        return dict(kernel=tuple(data[2:]), stride=(1,) * spatial, pad=(0,) * spatial)
    if len(p["kernel"]) != spatial:
        raise ShapeMismatch(f"kernel={p['kernel']} must have one size per spatial axis of data {tuple(data)} "
                            f"(or set global_pool=True)")
    if min(p["kernel"]) < 1:
        raise ShapeMismatch(f"kernel={p['kernel']} must be positive")
    return dict(kernel=tuple(p["kernel"]), **spatial_params(p, names=("stride", "pad")))


def _options(p, data) -> dict:
    return dict(kind=p["pool_type"], convention=p["pooling_convention"], count_include_pad=p["count_include_pad"],
                p_value=p["p_value"], **geometry(p, data))


def _output_shape(p, data):
    g = geometry(p, data)
    lengths = tuple(data[2:])
    if any(k > n + 2 * q for n, k, q in zip(lengths, g["kernel"], g["pad"])):
        raise ShapeMismatch(f"kernel {g['kernel']} is longer than data's spatial shape {lengths} padded by "
                            f"{g['pad']}")
    convention = p["pooling_convention"]
    if any(kernels.empty_window(n, k, s, q, convention) for n, k, s, q in zip(lengths, *g.values())):
        raise ShapeMismatch(f"kernel {g['kernel']}, stride {g['stride']}, pad {g['pad']} and the {convention!r} "
                            f"convention give a window holding only padding on data of spatial shape {lengths}")
    return (*data[:2], *(kernels.output_length(n, k, s, q, convention) for n, k, s, q in zip(lengths, *g.values())))


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if p["pooling_convention"] == "same":
        raise ShapeMismatch("pooling_convention='same' is not supported (MXNet 1.9.1 fails on it but for 1-d data); "
                            "use 'valid' or 'full' with a pad")
    if p["pool_type"] == "lp" and p["p_value"] not in kernels.P_VALUES:
        raise ShapeMismatch(f"pool_type='lp' needs p_value of 1, 2 or 3, got {p['p_value']}")
    if data is None:
        return in_shapes, out_shapes
    if not 3 <= len(data) <= 5:
        raise ShapeMismatch(f"data of shape {tuple(data)} must be (batch, channels) and 1 to 3 spatial axes")
    check_layout("Pooling", p, len(data) - 2)
    return [data], [unify("output", out_shapes[0], _output_shape(p, data))]


def _keeps_argmax(p) -> bool:
    return p["pool_type"] == "max"


def _reads_values(p) -> bool:
    return p["pool_type"] == "lp" and p["p_value"] > 1


def _forward(a: ForwardArgs):
    x = a.inputs[0]
    return kernels.plan_pooling(x, a.outputs[0], argmax=a.saved.get("argmax"), **_options(a.params, x.shape))


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return kernels.plan_pooling_backward(a.out_grads[0], a.inputs[0], a.outputs[0], a.saved.get("argmax"), dx,
                                         accumulate=a.accumulate[0], **_options(a.params, a.input_shapes[0]))


register(OpDef(
    name="Pooling",
    doc="Pools data (batch, channels, *spatial) over windows: max, avg, sum or lp.",
    params=[
        Param("kernel", "shape", (), doc="the window's spatial shape: (w,), (h, w) or (d, h, w)"),
        Param("pool_type", str, "max", choices=kernels.KINDS, doc="max, avg, sum or lp"),
        Param("global_pool", bool, False, doc="pool each channel's whole extent, ignoring kernel, stride, pad"),
        Param("cudnn_off", bool, False, doc="MXNet's switch off cuDNN: read, no effect here"),
        Param("pooling_convention", str, "valid", choices=("valid", "full", "same"),
              doc="'valid': windows inside the padded data; 'full': a last window may pass its end ('same' is "
                  "refused)"),
        Param("stride", "shape", (), doc="step between windows per axis (default 1)"),
        Param("pad", "shape", (), doc="padding on both sides per axis (default 0); never read as a value"),
        Param("p_value", "optional_int", None, doc="lp pooling's p: 1, 2 or 3"),
        Param("count_include_pad", bool, True, doc="avg: divide by the window's size with its padding (else by "
                                                   "the data's positions in it)"),
        Param("layout", str, None, choices=LAYOUTS, doc="the data's layout; only channels first (NCW, NCHW, NCDHW)"),
    ],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0,), (0,)) if _reads_values(p) else ((), ()),
    saved_for_backward=lambda p, shapes, dtypes: (
        {"argmax": (_output_shape(p, shapes[0]), torch.int32)} if _keeps_argmax(p) else {}),
))
