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


def _interleaved(p, data_shape) -> tuple[int, ...]:
    """(reps[0], shape[0], reps[1], shape[1], ...): the output's shape with every repeat an axis of its own."""
    shape, reps = aligned(p, data_shape)
    return tuple(n for pair in zip(reps, shape) for n in pair)


def plan_repeated_copy(x, out, split, repeat_axes) -> list:
    """``out`` viewed as ``split`` filled from ``x`` read with stride 0 along ``repeat_axes``
    (the axes of ``split`` holding the repeats; ``x`` has 1 there): one strided copy."""
    source = x.reshape(tuple(1 if k in repeat_axes else n for k, n in enumerate(split))).expand(split)
    return kernels.plan_copy(source, out.view(split))


def plan_repeated_sum(dy, dx, split, repeat_axes, accumulate: bool) -> list:
    """``dx (+)=`` ``dy`` (viewed as ``split``) summed over ``repeat_axes``: the gradient of a repeated copy."""
    axes = tuple(k for k in repeat_axes if split[k] > 1)
    if not axes:
        return kernels.plan_copy(dy, dx, accumulate=accumulate)
    return plan_reduce(dy.view(split), dx, "sum", axes, accumulate=accumulate)


def _forward(a: ForwardArgs):
    split = _interleaved(a.params, a.inputs[0].shape)
    return plan_repeated_copy(a.inputs[0], a.outputs[0], split, range(0, len(split), 2))


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    split = _interleaved(a.params, a.input_shapes[0])
    return plan_repeated_sum(a.out_grads[0], a.in_grads[0], split, range(0, len(split), 2), a.accumulate[0])


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
