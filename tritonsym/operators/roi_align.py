"""_contrib_ROIAlign (MXNet's ``contrib.ROIAlign``, Mask R-CNN's): each region of interest
``rois[r] = (batch, x1, y1, x2, y2)`` (image coordinates; times ``spatial_scale`` on the
feature map) of ``data`` (N, C, H, W) pooled into ``pooled_size`` (PH, PW) bins, each the
mean of the data interpolated bilinearly at a grid of sample points (``sample_ratio`` a
side, or adaptive); ``aligned`` shifts by half a pixel (Detectron2); ``position_sensitive``
reads a channel per bin (R-FCN), C a multiple of PH PW. Output (R, C, PH, PW), or (R,
C / (PH PW), PH, PW).

A negative batch index marks padding: output 0, no gradient. An index that is not a whole
number below N, coordinates that are not finite, or (``aligned``) a region of no positive
size: output NaN. The regions take no gradient (MXNet's is 0). Kernels:
``ops/roi_align.py`` (the data's gradient summed in a fixed order, no atomics)."""

from __future__ import annotations

from ..ops import roi_align as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def pooled_size_check(value) -> str | None:
    return None if len(value) == 2 and min(value) > 0 else "must be (height, width), both positive"


def spatial_scale_check(value) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must be in [0, 1]: the feature map's size over the image's"


def _geometry(p) -> dict:
    return dict(pooled_size=tuple(p["pooled_size"]), spatial_scale=p["spatial_scale"],
                sample_ratio=p["sample_ratio"], position_sensitive=p["position_sensitive"], aligned=p["aligned"])


def check_regions(data, rois) -> None:
    """data (N, C, H, W) and rois (R, 5), where known (ROIPooling's too)."""
    if data is not None and len(data) != 4:
        raise ShapeMismatch(f"data of shape {tuple(data)} must be (batch, channels, height, width)")
    if rois is not None and (len(rois) != 2 or rois[1] not in (0, 5)):
        raise ShapeMismatch(f"rois of shape {tuple(rois)} must be (regions, 5): (batch, x1, y1, x2, y2) each")


def _infer_shape(p, in_shapes, out_shapes):
    data, rois = in_shapes
    check_regions(data, rois)
    bins = p["pooled_size"][0] * p["pooled_size"][1]
    if data is not None and data[1] and p["position_sensitive"] and data[1] % bins:
        raise ShapeMismatch(f"position-sensitive data of {data[1]} channels must have a multiple of the {bins} bins "
                            f"of pooled_size {tuple(p['pooled_size'])}")
    regions = rois[0] if rois is not None else 0
    channels = kernels.output_channels(data[1], p["pooled_size"], p["position_sensitive"]) if data else 0
    out = unify("output", out_shapes[0], (regions, channels, *p["pooled_size"]))
    return [data, unify("rois", rois, (out[0], 5))], [out]


def data_grad_temps(p, shapes, dtypes) -> dict:
    """The scratch the data's gradient sums its parts in (ROIPooling's too)."""
    if shapes[0] is None or shapes[1] is None:
        return {}
    wanted = kernels.grad_scratch(tuple(shapes[0]), shapes[1][0], dtypes[0])
    return {} if wanted is None else {"data_grad": wanted}


def _forward(a: ForwardArgs):
    return kernels.plan_roi_align(a.inputs[0], a.inputs[1], a.outputs[0], **_geometry(a.params))


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_roi_align_backward(a.out_grads[0], a.inputs[1], a.in_grads[0], accumulate=a.accumulate[0],
                                           scratch=a.temps.get("data_grad"), **_geometry(a.params))


register(OpDef(
    name="_contrib_ROIAlign",
    doc="Regions of interest (R, 5) of (N, C, H, W) data pooled into bins of bilinearly interpolated samples.",
    params=[
        Param("pooled_size", "shape", check=pooled_size_check, doc="the bins (height, width) of each region"),
        Param("spatial_scale", float, check=spatial_scale_check,
              doc="the feature map's size over the image's (1 / stride)"),
        Param("sample_ratio", int, -1, doc="sample points a side of each bin (not positive: ceil(region / bins))"),
        Param("position_sensitive", bool, False, doc="output channel c of bin b reads data channel c PH PW + b"),
        Param("aligned", bool, False, doc="coordinates shifted by half a pixel (Detectron2's)"),
    ],
    input_names=("data", "rois"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((1,), ()),
    no_grad_inputs=lambda p: {"rois"},
    backward_temps=data_grad_temps,
))
