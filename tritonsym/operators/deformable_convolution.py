"""_contrib_DeformableConvolution (DCN v1) and _contrib_ModulatedDeformableConvolution (DCN
v2), MXNet's: a 2-d convolution of data (N, C, H, W) whose taps read at learned fractional
displacements, ``offset`` (N, 2 x num_deformable_group x KH x KW, OH, OW) holding each
tap's (y, x) shift per output position, interpolated bilinearly; v2 multiplies each tap by
``mask`` (N, num_deformable_group x KH x KW, OH, OW). The channels split into
``num_deformable_group`` groups that share offsets, and, independently, into ``num_group``
groups of filters as in Convolution. Weight (num_filter, C / num_group, KH, KW).

Sampling as MXNet does it: v1 counts a point inside [0, H) x [0, W) and reads its last row
(column) without the fraction; v2 counts a point inside (-1, H) x (-1, W) and reads 0
outside the image. A NaN offset gives NaN (MXNet's reads 0 there).

``workspace`` (MB) bounds the backward's scratch (the column gradient, the sample points'
pixels and the data gradient's parts of the images it works on at once, one at least); v2's
``im2col_step`` bounds those images too, and the batch need not be a multiple of it.
Kernels: ``ops/deformable_convolution.py`` (an implicit GEMM forward, no column buffer;
gradients in a fixed order, no atomics)."""

from __future__ import annotations

from ..ops import deformable_convolution as kernels
from .convolution import check_layout, spatial_params
from .fully_connected import PRECISION
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify

MB = 1 << 20


def _modulated(op: str) -> bool:
    return op == "_contrib_ModulatedDeformableConvolution"


def _names(modulated: bool):
    return ("data", "offset", "mask", "weight", "bias") if modulated else ("data", "offset", "weight", "bias")


def _geometry(p) -> dict:
    return dict(kernel=tuple(p["kernel"]), **spatial_params(p), groups=p["num_group"],
                deformable_groups=p["num_deformable_group"])


def _column_limits(p, modulated: bool) -> dict:
    """The backward scratch's bounds: ``workspace`` MB, and for v2 ``im2col_step`` images."""
    return dict(workspace_bytes=p["workspace"] * MB, max_images=p["im2col_step"] if modulated else None)


def _check_params(op: str):
    def check(p) -> str | None:
        if len(p["kernel"]) != 2 or min(p["kernel"]) < 1:
            return f"kernel={tuple(p['kernel'])} must be (height, width), both positive: {op} is 2-d only"
        if p["num_filter"] % p["num_group"]:
            return f"num_filter={p['num_filter']} is not a multiple of num_group={p['num_group']}"
        return None
    return check


def _infer_shape(op: str):
    modulated = _modulated(op)
    names = _names(modulated)

    def infer(p, in_shapes, out_shapes):
        check_layout(op, p, 2)
        geometry = spatial_params(p)
        shapes = dict(zip(names, in_shapes))
        data, filters = shapes["data"], p["num_filter"]
        groups, dgroups = p["num_group"], p["num_deformable_group"]
        taps = p["kernel"][0] * p["kernel"][1]
        if data is None:
            return in_shapes, out_shapes
        if len(data) != 4:
            raise ShapeMismatch(f"data of shape {tuple(data)} must be (batch, channels, height, width)")
        for what, count in (("num_group", groups), ("num_deformable_group", dgroups)):
            if data[1] % count:
                raise ShapeMismatch(f"data has {data[1]} channels, not a multiple of {what}={count}")
        out = [kernels.output_length(n, k, s, d, q) for n, k, s, d, q in
               zip(data[2:], p["kernel"], geometry["stride"], geometry["dilate"], geometry["pad"])]
        if min(out) < 1:
            raise ShapeMismatch(f"kernel={tuple(p['kernel'])} dilated by {geometry['dilate']} does not fit in data "
                                f"of spatial shape {tuple(data[2:])} padded by {geometry['pad']}")
        shapes["offset"] = unify("offset", shapes["offset"], (data[0], 2 * dgroups * taps, *out))
        if modulated:
            shapes["mask"] = unify("mask", shapes["mask"], (data[0], dgroups * taps, *out))
        shapes["weight"] = unify("weight", shapes["weight"], (filters, data[1] // groups, *p["kernel"]))
        if not p["no_bias"]:
            shapes["bias"] = unify("bias", shapes["bias"], (filters,))
        new_in = [shapes[name] for name in names[:len(in_shapes)]]
        return new_in, [unify("output", out_shapes[0], (data[0], filters, *out))]
    return infer


def _split(modulated: bool, values):
    """(data, offset, mask or None, weight, bias or None) from a rule's inputs (or gradients)."""
    values = list(values) + [None] * (5 - len(values))
    if modulated:
        return values[0], values[1], values[2], values[3], values[4]
    return values[0], values[1], None, values[2], values[3]


def _forward(op: str):
    modulated = _modulated(op)

    def forward(a: ForwardArgs):
        p = a.params
        data, offset, mask, weight, bias = _split(modulated, a.inputs)
        return kernels.plan_deformable_convolution(data, offset, mask, weight, None if p["no_bias"] else bias,
                                                   a.outputs[0], zero_pad=modulated, precision=p["precision"],
                                                   **_geometry(p))
    return forward


def _backward_temps(op: str):
    modulated = _modulated(op)

    def temps(p, shapes, dtypes) -> dict:
        data, offset, _, weight, _ = _split(modulated, shapes)
        if data is None or offset is None or weight is None:
            return {}
        out = (data[0], weight[0], *offset[2:])
        return kernels.backward_scratch(tuple(data), tuple(weight), out, dtypes[0], p["num_deformable_group"],
                                        **_column_limits(p, modulated))
    return temps


def _backward(op: str):
    modulated = _modulated(op)

    def backward(a: BackwardArgs):
        p = a.params
        grads = _split(modulated, a.in_grads)
        if all(g is None for g in grads):
            return []
        data, offset, mask, weight, _ = _split(modulated, a.inputs)
        accumulate = [bool(flag) for flag in _split(modulated, a.accumulate)]
        return kernels.plan_deformable_convolution_backward(
            a.out_grads[0], data, offset, mask, weight, *grads, zero_pad=modulated, scratch=a.temps,
            accumulate=accumulate, precision=p["precision"], **_column_limits(p, modulated), **_geometry(p))
    return backward


def _register(op: str, alias: str, doc: str) -> None:
    modulated = _modulated(op)
    names = _names(modulated)
    params = [
        Param("kernel", "shape", doc="the filters' spatial shape (height, width)"),
        Param("num_filter", int, doc="number of filters (output channels)", check=positive),
        Param("stride", "shape", (), doc="step between windows per axis (default 1)"),
        Param("dilate", "shape", (), doc="spacing between the kernel's taps per axis (default 1)"),
        Param("pad", "shape", (), doc="zeros added on both sides per axis (default 0)"),
        Param("num_group", int, 1, doc="split channels and filters into this many independent groups",
              check=positive),
        Param("num_deformable_group", int, 1, doc="split channels into this many groups, each with its own offsets",
              check=positive),
        Param("no_bias", bool, False, doc="leave out the bias term"),
        Param("workspace", int, 1024, check=positive,
              doc="MB the backward's scratch may take (one image's at least)"),
        Param("layout", str, None, choices=("NCW", "NCHW", "NCDHW"), doc="the data's layout; only NCHW"),
        PRECISION,
    ]
    if modulated:
        params.insert(8, Param("im2col_step", int, 64, check=positive,
                               doc="images the backward works on at once, at most"))
    register(OpDef(
        name=op,
        doc=doc,
        params=params,
        input_names=names,
        active_inputs=lambda p: list(names[:-1] if p["no_bias"] else names),
        infer_shape=_infer_shape(op),
        forward=_forward(op),
        backward=_backward(op),
        backward_needs=lambda p, epilogue: (tuple(range(len(names) - 1)), ()),
        backward_temps=_backward_temps(op),
        check_params=_check_params(op),
        aliases=(alias,),
    ))


_register("_contrib_DeformableConvolution", "_npx_deformable_convolution",
          "Deformable convolution (DCN v1): 2-d convolution whose taps read data (N, C, H, W) bilinearly at "
          "offset (N, 2 x num_deformable_group x KH x KW, OH, OW) from their places.")
_register("_contrib_ModulatedDeformableConvolution", "_npx_modulated_deformable_convolution",
          "Modulated deformable convolution (DCN v2): a deformable convolution whose taps are each multiplied by "
          "mask (N, num_deformable_group x KH x KW, OH, OW).")
