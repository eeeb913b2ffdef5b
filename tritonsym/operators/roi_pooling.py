"""ROIPooling (MXNet's, Fast R-CNN's): each region of interest ``rois[r] = (batch, x1, y1,
x2, y2)`` (image coordinates, rounded onto the map at ``spatial_scale``) of ``data`` (N, C,
H, W) max-pooled into ``pooled_size`` (PH, PW) bins of whole pixels: (R, C, PH, PW). The
first maximum of a bin takes its gradient (a NaN pixel is a maximum nothing replaces); an
empty bin is 0. A negative batch index marks padding: output 0, no gradient; one that is
not a whole number below N, or coordinates that are not finite: NaN output. The regions
take no gradient (MXNet's is 0). Kernels: ``ops/roi_pooling.py`` (each bin's maximum found
again in backward rather than kept; the gradient summed in a fixed order, no atomics)."""

from __future__ import annotations

from ..ops import roi_pooling as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, register, unify
from .roi_align import check_regions, data_grad_temps, pooled_size_check, spatial_scale_check


def _infer_shape(p, in_shapes, out_shapes):
    data, rois = in_shapes
    check_regions(data, rois)
    out = unify("output", out_shapes[0], (rois[0] if rois else 0, data[1] if data else 0, *p["pooled_size"]))
    return [data, unify("rois", rois, (out[0], 5))], [out]


def _forward(a: ForwardArgs):
    return kernels.plan_roi_pooling(a.inputs[0], a.inputs[1], a.outputs[0], pooled_size=tuple(a.params["pooled_size"]),
                                    spatial_scale=a.params["spatial_scale"])


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_roi_pooling_backward(a.inputs[0], a.out_grads[0], a.inputs[1], a.in_grads[0],
                                             pooled_size=tuple(a.params["pooled_size"]),
                                             spatial_scale=a.params["spatial_scale"], accumulate=a.accumulate[0],
                                             scratch=a.temps.get("data_grad"))


register(OpDef(
    name="ROIPooling",
    doc="Regions of interest (R, 5) of (N, C, H, W) data max-pooled into bins of whole pixels.",
    params=[
        Param("pooled_size", "shape", check=pooled_size_check, doc="the bins (height, width) of each region"),
        Param("spatial_scale", float, check=spatial_scale_check,
              doc="the feature map's size over the image's (1 / stride)"),
    ],
    input_names=("data", "rois"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    no_grad_inputs=lambda p: {"rois"},
    backward_temps=data_grad_temps,
))
