"""moments (MXNet's): the mean and the population variance of the data over ``axes`` (all
axes when None, where MXNet 1.9.1 refuses it), two outputs, ``keepdims`` keeping the reduced
axes as 1. The variance is the mean squared deviation from the mean, found in a second pass
over the data (``ops/moments.py``); backward reads the data and the mean."""

from __future__ import annotations

from ..ops import moments as kernels
from ..ops import reduce as reduce_kernels
from .reduce import reduced_axes
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, register, unify


def _axes(p, ndim: int) -> tuple[int, ...]:
    return reduced_axes({"axis": p["axes"]}, ndim)


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    out = reduce_kernels.reduced_shape(data, _axes(p, len(data)), p["keepdims"]) or (1,)
    return in_shapes, [unify(f"output {i}", known, out) for i, known in enumerate(out_shapes)]


def _forward(a: ForwardArgs):
    x = a.inputs[0]
    return kernels.plan_moments(x, a.outputs[0], a.outputs[1], _axes(a.params, x.dim()))


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return kernels.plan_moments_backward(a.inputs[0], a.outputs[0], a.out_grads[0], a.out_grads[1], dx,
                                         _axes(a.params, dx.dim()), accumulate=a.accumulate[0])


register(OpDef(
    name="moments",
    doc="The mean and the population variance over axes (two outputs).",
    params=[Param("axes", "ints", None, doc="the axes reduced; None or () reduces all"),
            Param("keepdims", bool, False, doc="keep the reduced axes as size 1")],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0,), (0,)),
    num_outputs=2,
    output_names=lambda p: ["output0", "output1"],
))
