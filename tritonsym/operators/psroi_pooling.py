"""_contrib_PSROIPooling (MXNet's ``contrib.PSROIPooling``, R-FCN's position-sensitive
pooling): each region of interest ``rois[r] = (batch, x1, y1, x2, y2)`` (image coordinates,
rounded, times ``spatial_scale`` on the map) of ``data`` (N, C, H, W) cut into
``pooled_size`` x ``pooled_size`` bins, output channel k of bin (i, j) the mean over the
bin's pixels of data channel ``(k G + gi) G + gj`` (``gi = floor(i G / pooled_size)``, G =
``group_size``, ``pooled_size`` when 0): (R, output_dim, pooled_size, pooled_size); an empty
bin is 0. The data needs output_dim G G channels (more are left unread, as MXNet does).
Padding and invalid regions as ROIPooling's; the regions take no gradient. Kernels:
``ops/psroi_pooling.py`` (the gradient summed in a fixed order, no atomics)."""

from __future__ import annotations

from ..ops import psroi_pooling as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify
from .roi_align import check_regions, data_grad_temps


def _group_size(p) -> int:
    return p["group_size"] or p["pooled_size"]


def _geometry(p) -> dict:
    return dict(output_dim=p["output_dim"], pooled_size=p["pooled_size"], group_size=_group_size(p),
                spatial_scale=p["spatial_scale"])


def _infer_shape(p, in_shapes, out_shapes):
    data, rois = in_shapes
    check_regions(data, rois)
    needed = p["output_dim"] * _group_size(p) ** 2
    if data is not None and data[1] < needed:
        raise ShapeMismatch(f"data has {data[1]} channels; output_dim={p['output_dim']} x group_size="
                            f"{_group_size(p)} squared needs {needed}")
    size = p["pooled_size"]
    out = unify("output", out_shapes[0], (rois[0] if rois else 0, p["output_dim"], size, size))
    return [data, unify("rois", rois, (out[0], 5))], [out]


def _forward(a: ForwardArgs):
    return kernels.plan_psroi_pooling(a.inputs[0], a.inputs[1], a.outputs[0], **_geometry(a.params))


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_psroi_pooling_backward(a.out_grads[0], a.inputs[1], a.in_grads[0], accumulate=a.accumulate[0],
                                               scratch=a.temps.get("data_grad"), **_geometry(a.params))


def _not_negative(value) -> str | None:
    return None if value >= 0 else "must be at least 0 (0: pooled_size)"


register(OpDef(
    name="_contrib_PSROIPooling",
    doc="Regions of interest (R, 5) of (N, C, H, W) data average-pooled into bins, each bin from its own group of "
        "channels (R-FCN's position-sensitive pooling).",
    params=[
        Param("spatial_scale", float, check=lambda v: None if v > 0 else "must be positive",
              doc="the feature map's size over the image's (1 / stride)"),
        Param("output_dim", int, check=positive, doc="output channels (R-FCN: classes, or 4 x classes for boxes)"),
        Param("pooled_size", int, check=positive, doc="bins a side of each region"),
        Param("group_size", int, 0, check=_not_negative, doc="channel groups a side (0: pooled_size)"),
    ],
    input_names=("data", "rois"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((1,), ()),
    no_grad_inputs=lambda p: {"rois"},
    backward_temps=data_grad_temps,
))
