"""_contrib_AdaptiveAvgPooling2D (MXNet's; ``ts.sym.contrib.AdaptiveAvgPooling2D``): each
(batch, channel) image of (N, C, H, W) data averaged over an ``output_size`` grid of
windows, rows [floor(i H / OH), ceil((i + 1) H / OH)) for cell i and columns likewise, as
PSPNet's pyramid pooling and global average pooling (the default, 1 x 1) use it. One
launch each way (``ops/adaptive_pooling.py``); the gradient gathers each input element's
share from the cells that hold it, with no atomics."""

from __future__ import annotations

from ..ops import adaptive_pooling as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _check_size(value) -> str | None:
    if len(value) > 2 or 0 in value:
        return "must be (), (size,) or (height, width) of positive sizes"
    return None


def _cells(p) -> tuple[int, int]:
    size = p["output_size"]
    return (1, 1) if not size else (size[0], size[-1])


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if len(data) != 4 or min(data[2:]) < 1:
        raise ShapeMismatch(f"data of shape {tuple(data)} must be (batch, channels, height, width) with a height and "
                            "a width")
    return in_shapes, [unify("output", out_shapes[0], (*data[:2], *_cells(p)))]


def _forward(a: ForwardArgs):
    return kernels.plan_adaptive_avg_pool(a.inputs[0], a.outputs[0])


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_adaptive_avg_pool_backward(a.out_grads[0], a.in_grads[0], a.accumulate[0])


register(OpDef(
    name="_contrib_AdaptiveAvgPooling2D",
    doc="Average pooling of (N, C, H, W) data to an output_size grid of adaptive windows.",
    params=[Param("output_size", "shape", (), check=_check_size,
                  doc="the grid: () for 1 x 1 (global pooling), (size,) for size x size, or (height, width)")],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
))
