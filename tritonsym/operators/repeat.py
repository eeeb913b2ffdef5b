"""repeat (MXNet's): every element repeated ``repeats`` times in place along ``axis``
(``[a, b] -> [a, a, b, b]``), or along the flattened data where ``axis`` is None, as
numpy's ``np.repeat``. Forward is one strided copy reading the data through a stride-0
axis; backward sums the output gradient over the repeats (``ops/reduce.py``), as tile's."""

from __future__ import annotations

from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, size, unify
from .tile import plan_repeated_copy, plan_repeated_sum


def _axis(p, ndim: int) -> int | None:
    if p["axis"] is None:
        return None
    if not -ndim <= p["axis"] < ndim:
        raise ShapeMismatch(f"axis={p['axis']} is out of range for data with {ndim} dimension(s)")
    return p["axis"] % ndim


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    axis = _axis(p, len(data))
    if axis is None:
        out = (size(data) * p["repeats"],)
    else:
        out = tuple(n * p["repeats"] if k == axis else n for k, n in enumerate(data))
    return in_shapes, [unify("output", out_shapes[0], out)]


def _split(p, shape) -> tuple[tuple[int, ...], int]:
    """The data's shape with the repeats as an axis of their own after ``axis``, and that axis."""
    axis = _axis(p, len(shape))
    shape = (size(shape),) if axis is None else tuple(shape)
    axis = 0 if axis is None else axis
    return shape[:axis + 1] + (p["repeats"],) + shape[axis + 1:], axis + 1


def _forward(a: ForwardArgs):
    split, at = _split(a.params, a.inputs[0].shape)
    return plan_repeated_copy(a.inputs[0], a.outputs[0], split, (at,))


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    split, at = _split(a.params, a.input_shapes[0])
    return plan_repeated_sum(a.out_grads[0], a.in_grads[0], split, (at,), a.accumulate[0])


register(OpDef(
    name="repeat",
    doc="Every element repeated `repeats` times along axis (None: the flattened data), numpy's repeat.",
    params=[Param("repeats", int, check=positive, doc="how many times each element appears"),
            Param("axis", "optional_int", None, doc="the axis to repeat along (None: flatten first)")],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    cheap=True,
))
