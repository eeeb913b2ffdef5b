"""Convolution (MXNet's): ``num_filter`` filters of shape ``kernel`` slid over 1-, 2- or 3-d
data in NC(D)(H)W layout, with ``stride``, ``dilate``, ``pad`` (each side) and
``num_group`` groups of channels; weight ``(num_filter, channels / num_group, *kernel)``,
bias ``(num_filter,)``. Implicit GEMMs on tritonsym's tiles (``ops/convolution.py``): no
im2col buffer, a weight gradient reduced in a fixed order.

MXNet's ``workspace``, ``cudnn_tune`` and ``cudnn_off`` choose among cuDNN's algorithms: they
are read (JSON written by MXNet holds them) and change nothing here. ``layout`` may be
left out or name the channels-first layout of the data's rank; a channels-last one is
refused (transpose the data first)."""

from __future__ import annotations

from ..ops import convolution as kernels
from .fully_connected import PRECISION, inputs_with_bias
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify

CHANNELS_FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
LAYOUTS = ("NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC")
CUDNN_TUNE = ("off", "limited_workspace", "fastest")
OFFSETS = ("pad", "adj")  # the per-axis parameters that may be 0


def spatial_params(p, names=("stride", "dilate", "pad"), kernel="kernel") -> dict[str, tuple[int, ...]]:
    """Each of ``names`` with one value per kernel axis: as given (its length checked), or
    MXNet's default (1 for stride and dilate, 0 for pad and adj) where left empty."""
    n = len(p[kernel])
    result = {}
    for name in names:
        given = p[name]
        if not given:
            given = (0 if name in OFFSETS else 1,) * n
        if len(given) != n:
            raise ShapeMismatch(f"{name}={tuple(given)} must have one value per kernel axis: {kernel}={p[kernel]}")
        if name not in OFFSETS and min(given) < 1:
            raise ShapeMismatch(f"{name}={tuple(given)} must be positive")
        result[name] = tuple(given)
    return result


def cudnn_params(workspace: int) -> list[Param]:
    """MXNet's cuDNN choices (read from its JSON, no effect here) and the channels-first layout."""
    return [
        Param("workspace", int, workspace, doc="cuDNN's workspace limit in MB: read, no effect here"),
        Param("cudnn_tune", str, None, choices=CUDNN_TUNE, doc="cuDNN's algorithm choice: read, no effect here"),
        Param("cudnn_off", bool, False, doc="MXNet's switch off cuDNN: read, no effect here"),
        Param("layout", str, None, choices=LAYOUTS, doc="the data's layout; only channels first (NCW, NCHW, NCDHW)"),
    ]


def check_layout(op: str, p, spatial: int) -> None:
    layout = p["layout"]
    if layout is not None and layout != CHANNELS_FIRST[spatial]:
        raise ShapeMismatch(f"{op}: layout={layout!r} is not supported for {spatial}-d data: tritonsym takes "
                            f"{CHANNELS_FIRST[spatial]}; transpose the data into it")


def kernel_rank(p) -> int:
    """The number of spatial axes the kernel names (1 to 3)."""
    spatial = len(p["kernel"])
    if not 1 <= spatial <= 3 or min(p["kernel"]) < 1:
        raise ShapeMismatch(f"kernel={p['kernel']} must have 1 to 3 positive sizes")
    return spatial


def check_grouped(op: str, p, data) -> None:
    """The kernel, the layout, num_filter and num_group, and data (where known) of the
    kernel's rank with channels that num_group splits: Convolution's and Deconvolution's."""
    spatial = kernel_rank(p)
    check_layout(op, p, spatial)
    filters, groups = p["num_filter"], p["num_group"]
    if filters % groups:
        raise ShapeMismatch(f"num_filter={filters} is not a multiple of num_group={groups}")
    if data is not None:
        if len(data) != spatial + 2:
            raise ShapeMismatch(f"data of shape {tuple(data)} must be (batch, channels) and {spatial} spatial "
                                f"axes for kernel={p['kernel']}")
        if data[1] % groups:
            raise ShapeMismatch(f"data has {data[1]} channels, not a multiple of num_group={groups}")


def _infer_shape(p, in_shapes, out_shapes):
    check_grouped("Convolution", p, in_shapes[0])
    geometry = spatial_params(p)
    data, filters, groups = in_shapes[0], p["num_filter"], p["num_group"]
    weight = in_shapes[1]
    if data is not None:
        weight = unify("weight", weight, (filters, data[1] // groups, *p["kernel"]))
        out = [kernels.output_length(n, k, s, d, q) for n, k, s, d, q in
               zip(data[2:], p["kernel"], geometry["stride"], geometry["dilate"], geometry["pad"])]
        if min(out, default=1) < 1:
            raise ShapeMismatch(f"kernel={p['kernel']} dilated by {geometry['dilate']} does not fit in data of "
                                f"spatial shape {tuple(data[2:])} padded by {geometry['pad']}")
        out_shapes = [unify("output", out_shapes[0], (data[0], filters, *out))]
    elif weight is not None:
        weight = unify("weight", weight, (filters, weight[1], *p["kernel"]))
    new_in = [data, weight]
    if not p["no_bias"]:
        new_in.append(unify("bias", in_shapes[2], (filters,)))
    return new_in, out_shapes


def _forward(a: ForwardArgs):
    p = a.params
    bias = None if p["no_bias"] else a.inputs[2]
    return kernels.plan_convolution(a.inputs[0], a.inputs[1], bias, a.outputs[0], groups=p["num_group"],
                                    precision=p["precision"], **spatial_params(p))


def _backward(a: BackwardArgs):
    p = a.params
    grads = list(a.in_grads) + [None] * (3 - len(a.in_grads))
    accumulate = list(a.accumulate) + [False] * (3 - len(a.accumulate))
    if all(g is None for g in grads):
        return []
    return kernels.plan_convolution_backward(a.out_grads[0], a.inputs[0], a.inputs[1], *grads,
                                             groups=p["num_group"], accumulate=accumulate,
                                             precision=p["precision"], **spatial_params(p))


register(OpDef(
    name="Convolution",
    doc="Convolves data (batch, channels, *spatial) with num_filter filters of shape kernel: "
        "out = conv(data, weight) + bias, in NC(D)(H)W layout.",
    params=[
        Param("kernel", "shape", doc="the filters' spatial shape: (w,), (h, w) or (d, h, w)"),
        Param("num_filter", int, doc="number of filters (output channels)", check=positive),
        Param("stride", "shape", (), doc="step between windows per axis (default 1)"),
        Param("dilate", "shape", (), doc="spacing between the kernel's taps per axis (default 1)"),
        Param("pad", "shape", (), doc="zeros added on both sides per axis (default 0)"),
        Param("num_group", int, 1, doc="split channels and filters into this many independent groups",
              check=positive),
        Param("no_bias", bool, False, doc="leave out the bias term"),
        *cudnn_params(workspace=1024),
        PRECISION,
    ],
    input_names=("data", "weight", "bias"),
    active_inputs=inputs_with_bias,
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
))
