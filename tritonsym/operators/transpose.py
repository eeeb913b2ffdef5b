"""transpose (MXNet's): the axes permuted (reversed by default). One strided copy each way:
forward reads the input through the permuted strides, backward writes the input gradient
through them. A permutation that keeps the order is a view (no launch, no memory), and so
is one whose readers all read through strides (attention's query, key and value) or whose
input's maker writes through them (attention's output): the program then drops the step
(``OpDef.permutation``)."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def permutation(axes, ndim: int) -> tuple[int, ...]:
    """``axes`` made non-negative, checked to be a permutation of ``range(ndim)``."""
    if not axes:
        return tuple(range(ndim - 1, -1, -1))
    if len(axes) != ndim or any(not -ndim <= a < ndim for a in axes) or len({a % ndim for a in axes}) != ndim:
        raise ShapeMismatch(f"axes={tuple(axes)} is not a permutation of the {ndim} axes of the data")
    return tuple(a % ndim for a in axes)


def _infer_shape(p, in_shapes, out_shapes):
    data, out = in_shapes[0], out_shapes[0]
    ndim = len(data) if data is not None else len(out) if out is not None else None
    if ndim is None:
        return in_shapes, out_shapes
    order = permutation(p["axes"], ndim)
    if data is not None:
        out = unify("output", out, tuple(data[a] for a in order))
    back = [0] * ndim
    for k, a in enumerate(order):
        back[a] = out[k]
    return [unify("data", data, tuple(back))], [out]


def permuting_op(name: str, doc: str, params: list, order, is_view, infer_shape, aliases=()) -> OpDef:
    """An OpDef whose output is its input with the axes permuted: ``order(params, ndim)``
    the permutation, ``is_view(params)`` whether the parameters alone make it the identity
    (the planner asks before it knows shapes). Such a one is a view; any other is one strided
    copy each way, or none where the program makes the output a permuted view
    (``OpDef.permutation``)."""
    def forward(a: ForwardArgs):
        x = a.inputs[0]
        return [] if is_view(a.params) else kernels.plan_copy(x.permute(order(a.params, x.dim())), a.outputs[0])

    def backward(a: BackwardArgs):
        dy, dx = a.out_grads[0], a.in_grads[0]
        if dx is None or (is_view(a.params) and dx.data_ptr() == dy.data_ptr() and not a.accumulate[0]):
            return []
        return kernels.plan_copy(dy, dx.permute(order(a.params, dx.dim())), accumulate=a.accumulate[0])

    return OpDef(
        name=name,
        doc=doc,
        params=params,
        input_names=("data",),
        infer_shape=infer_shape,
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: ((), ()),
        output_aliases=lambda p: {0: 0} if is_view(p) else {},
        permutation=lambda p, ndim: None if is_view(p) else order(p, ndim),
        backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))] if is_view(p) else [],
        aliases=aliases,
        cheap=True,
    )


def _is_view(p) -> bool:
    axes = p["axes"]
    return bool(axes) and all(a % len(axes) == k for k, a in enumerate(axes))


register(permuting_op(
    name="transpose",
    doc="Permutes the axes (reverses them when axes is empty); one strided copy.",
    params=[Param("axes", "ints", (), doc="the new order of the axes; empty reverses them")],
    order=lambda p, ndim: permutation(p["axes"], ndim),
    is_view=_is_view,
    infer_shape=_infer_shape,
))
