"""stack (MXNet's): its inputs, all of one shape, joined along a new axis ``axis`` (negative:
counted from the end of the output's axes). Each input is one strided copy into its place
in the output; backward copies each place of the output gradient back. ``num_args`` is set
from the inputs given (``stack(a, b, axis=1)``)."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify


def _axis(p, ndim: int) -> int:
    """The new axis among the output's ``ndim + 1``, checked."""
    if not -(ndim + 1) <= p["axis"] <= ndim:
        raise ShapeMismatch(f"axis={p['axis']} is out of range for stacking inputs of {ndim} dimension(s) "
                            f"(the output has {ndim + 1})")
    return p["axis"] % (ndim + 1)


def _infer_shape(p, in_shapes, out_shapes):
    known = [s for s in in_shapes if s is not None]
    out = out_shapes[0]
    if not known and out is None:
        return in_shapes, out_shapes
    ndim = len(known[0]) if known else len(out) - 1
    axis = _axis(p, ndim)
    one = None
    try:
        for s in known:
            one = unify("inputs", one, tuple(s))
        if out is not None:
            if out[axis] not in (0, p["num_args"]):
                raise ShapeMismatch("")
            one = unify("inputs", one, tuple(out[:axis]) + tuple(out[axis + 1:]))
    except ShapeMismatch:
        raise ShapeMismatch(f"inputs {', '.join(str(tuple(s)) for s in known)} must all have one shape"
                            + (f" that makes the output's {tuple(out)} along axis={p['axis']}" if out else "")) \
            from None
    return [one] * len(in_shapes), [tuple(one[:axis]) + (p["num_args"],) + tuple(one[axis:])]


def _forward(a: ForwardArgs):
    axis = _axis(a.params, a.inputs[0].dim())
    return [launch for k, x in enumerate(a.inputs) for launch in kernels.plan_copy(x, a.outputs[0].select(axis, k))]


def _backward(a: BackwardArgs):
    dy = a.out_grads[0]
    axis = _axis(a.params, dy.dim() - 1)
    return [launch for k, (grad, add) in enumerate(zip(a.in_grads, a.accumulate)) if grad is not None
            for launch in kernels.plan_copy(dy.select(axis, k), grad, accumulate=add)]


register(OpDef(
    name="stack",
    doc="Joins its inputs (of one shape) along a new axis.",
    params=[Param("num_args", int, check=positive, doc="how many inputs (set from the inputs given)"),
            Param("axis", int, 0, doc="where the new axis goes among the output's axes")],
    input_names=("data",),
    active_inputs=lambda p: [f"arg{k}" for k in range(p["num_args"])],
    variadic=True,
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    # stack(x, x): one copy per input, launched in input order
    repeated_input_grads=True,
    cheap=True,
))
