"""Pad (MXNet's; alias ``pad``): data of 4 or 5 axes (batch, channels, spatial...) padded on
its spatial axes. ``pad_width`` holds a (before, after) pair per axis, flattened, the
batch's and the channels' zero as MXNet requires. ``mode``: ``constant`` fills the pad with
``constant_value``; ``edge`` repeats the edge element; ``reflect`` mirrors the data about
the edge element (which is not repeated), each pad shorter than its axis, as MXNet's.

The gradient sums, into each data element, the output elements that copied it; ``edge``
and ``reflect`` fold one padded axis at a time through scratch buffers in the compute type
(``backward_temps``). Kernels: ``ops/pad.py``.
"""

from __future__ import annotations

from ..ops import pad as kernels
from .registry import BackwardArgs, OpDef, Param, ShapeMismatch, register, unify


def pairs(p, data) -> tuple[tuple[int, int], ...]:
    """``pad_width`` as one (before, after) pair per axis of ``data``, checked as MXNet does."""
    width = tuple(p["pad_width"])
    if len(data) not in (4, 5):
        raise ShapeMismatch(f"data of shape {tuple(data)} must have 4 or 5 axes (batch, channels, spatial...), as "
                            f"MXNet's Pad")
    if len(width) != 2 * len(data):
        raise ShapeMismatch(f"pad_width={width} must hold {2 * len(data)} numbers, a (before, after) pair for each "
                            f"axis of data {tuple(data)}")
    if any(width[:4]):
        raise ShapeMismatch(f"pad_width={width} pads the batch or channel axis; its first four numbers must be 0")
    pads = tuple(zip(width[0::2], width[1::2]))
    for axis, (n, (a, b)) in enumerate(zip(data, pads)):
        if p["mode"] == "reflect" and max(a, b) >= n:
            raise ShapeMismatch(f"mode='reflect' pads axis {axis} of data {tuple(data)} by ({a}, {b}); each pad must "
                                f"be shorter than the axis ({n})")
        if p["mode"] == "edge" and n == 0 and a + b:
            raise ShapeMismatch(f"mode='edge' pads axis {axis} of data {tuple(data)}, which has no element to repeat")
    return pads


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    return [data], [unify("output", out_shapes[0], kernels.output_shape(data, pairs(p, data)))]


def _backward_temps(p, shapes, dtypes):
    pads = pairs(p, shapes[0])
    compute = kernels.compute_dtype(dtypes[0])
    return {f"fold{k}": (shape, compute) for k, shape in enumerate(kernels.fold_shapes(shapes[0], p["mode"], pads))}


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    scratch = [a.temps[f"fold{k}"] for k in range(len(a.temps))]
    return kernels.plan_pad_backward(a.out_grads[0], dx, a.params["mode"], pairs(a.params, dx.shape), scratch,
                                     accumulate=a.accumulate[0])


register(OpDef(
    name="Pad",
    doc="Pads data (batch, channels, spatial...) on its spatial axes: constant, edge or reflect.",
    params=[
        Param("mode", str, "constant", choices=kernels.MODES,
              doc="'constant': constant_value; 'edge': the edge element repeated; 'reflect': mirrored about it"),
        Param("pad_width", "shape", doc="(before, after) for each axis, flattened; the first four are 0"),
        Param("constant_value", float, 0.0, doc="what fills a constant pad"),
    ],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=lambda a: kernels.plan_pad(a.inputs[0], a.outputs[0], a.params["mode"],
                                       pairs(a.params, a.inputs[0].shape), a.params["constant_value"]),
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    backward_temps=_backward_temps,
    aliases=("pad",),
    cheap=True,
))
