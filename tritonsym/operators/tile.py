"""tile (MXNet's): the data repeated ``reps[k]`` times along each axis k, as numpy's
``np.tile``: where reps is shorter than the data's rank it counts for the last axes, where
longer the data gains leading axes of size 1. Forward is one strided copy that reads the
data through stride-0 axes; backward sums the output gradient over the repeats
(``ops/reduce.py``), never storing the data."""

from __future__ import annotations

from ..ops import memory as kernels
from ..ops.reduce import plan_reduce
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, register, unify


def _positive(reps) -> str | None:
    return "must hold positive counts" if any(r < 1 for r in reps) else None


def aligned(p, shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The data's shape and the reps, both padded with leading 1s to one rank."""
    reps = tuple(p["reps"])
    rank = max(len(shape), len(reps))
    return (1,) * (rank - len(shape)) + tuple(shape), (1,) * (rank - len(reps)) + reps


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    shape, reps = aligned(p, data)
    return in_shapes, [unify("output", out_shapes[0], tuple(d * r for d, r in zip(shape, reps)))]


def _interleaved(p, data_shape):
    """(reps[0], shape[0], reps[1], shape[1], ...): the output's shape with every repeat an axis of its own."""
    shape, reps = aligned(p, data_shape)
    return shape, tuple(n for pair in zip(reps, shape) for n in pair)


def _forward(a: ForwardArgs):
    x = a.inputs[0]
    shape, split = _interleaved(a.params, x.shape)
    source = x.reshape(tuple(n for d in shape for n in (1, d))).expand(split)
    return kernels.plan_copy(source, a.outputs[0].view(split))


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    _, split = _interleaved(a.params, a.input_shapes[0])
    repeated = tuple(2 * k for k, r in enumerate(aligned(a.params, a.input_shapes[0])[1]) if r > 1)
    dy = a.out_grads[0].view(split)
    if not repeated:
        return kernels.plan_copy(a.out_grads[0], dx, accumulate=a.accumulate[0])
    return plan_reduce(dy, dx, "sum", repeated, accumulate=a.accumulate[0])


register(OpDef(
    name="tile",
    doc="The data repeated reps[k] times along each axis (numpy's tile).",
    params=[Param("reps", "shape", check=_positive, doc="the number of repeats along each (trailing) axis")],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    cheap=True,
))
