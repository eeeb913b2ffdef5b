"""Concat (MXNet's; alias ``concat``): its inputs joined along ``dim``, each copied into its
slice of the output by one strided copy; backward copies each slice of the output gradient
back. ``num_args`` is set from the inputs given (``Concat(a, b, c, dim=0)``)."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    known = [s for s in in_shapes if s is not None]
    if not known:
        return in_shapes, out_shapes
    ndim = len(known[0])
    if not -ndim <= p["dim"] < ndim:
        raise ShapeMismatch(f"dim={p['dim']} is out of range for inputs of {ndim} dimension(s)")
    axis = p["dim"] % ndim
    if any(len(s) != ndim for s in known):
        raise ShapeMismatch(f"inputs {', '.join(str(tuple(s)) for s in known)} must have one rank")
    # Every axis but dim agrees across inputs and the output.
    rest = None
    for s in [*known, *(o for o in out_shapes if o is not None)]:
        cut = tuple(d for k, d in enumerate(s) if k != axis)
        try:
            rest = unify("the axes other than dim", rest, cut)
        except ShapeMismatch:
            raise ShapeMismatch(f"inputs {', '.join(str(tuple(x)) for x in known)} differ outside dim={p['dim']}") \
                from None
    filled = [tuple(rest[:axis]) + (s[axis] if s is not None else 0,) + tuple(rest[axis:]) for s in in_shapes]
    sizes = [s[axis] for s in filled]
    out = tuple(rest[:axis]) + ((sum(sizes) if all(sizes) else 0),) + tuple(rest[axis:])
    return filled, [unify("output", out_shapes[0], out)]


def _slices(t, axis, sizes):
    start = 0
    for size in sizes:
        yield t.narrow(axis, start, size)
        start += size


def _forward(a: ForwardArgs):
    axis = a.params["dim"] % a.outputs[0].dim()
    return [launch for x, part in zip(a.inputs, _slices(a.outputs[0], axis, [x.shape[axis] for x in a.inputs]))
            for launch in kernels.plan_copy(x, part)]


def _backward(a: BackwardArgs):
    dy = a.out_grads[0]
    axis = a.params["dim"] % dy.dim()
    widths = [shape[axis] for shape in a.input_shapes]
    return [launch for grad, part, add in zip(a.in_grads, _slices(dy, axis, widths), a.accumulate)
            if grad is not None for launch in kernels.plan_copy(part, grad, accumulate=add)]


register(OpDef(
    name="Concat",
    doc="Joins its inputs along dim (the other axes agree).",
    params=[Param("num_args", int, check=positive, doc="how many inputs (set from the inputs given)"),
            Param("dim", int, 1, doc="the axis to join along")],
    input_names=("data",),
    active_inputs=lambda p: [f"arg{k}" for k in range(p["num_args"])],
    variadic=True,
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    # Concat(x, x): one copy per input, launched in input order
    repeated_input_grads=True,
    aliases=("concat",),
    cheap=True,
))
