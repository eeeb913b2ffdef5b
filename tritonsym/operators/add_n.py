"""add_n (MXNet's; alias ``ElementWiseSum``): the elementwise sum of its inputs, all of one
shape, added in input order (``(a + b) + c``, each sum rounded to the dtype as an eager
framework's would be): one elementwise add, then one accumulating pass per further input.
Every input's gradient is the output gradient: the first input's may be that very array
(``backward_inplace``; where that input is given again, the array is then multiplied by the
number of its places, after the other copies read it), the others are copies of it. ``num_args`` is set from the inputs
given (``add_n(a, b, c)``)."""

from __future__ import annotations

from ..ops import elementwise
from ..ops import memory as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, positive, register, same_shape_everywhere


def _forward(a: ForwardArgs):
    x, out = a.inputs, a.outputs[0]
    first = kernels.plan_copy(x[0], out) if len(x) == 1 else elementwise.plan_binary_forward("add", x[0], x[1], out)
    return first + [launch for more in x[2:] for launch in kernels.plan_copy(more, out, accumulate=True)]


def _backward(a: BackwardArgs):
    dy = a.out_grads[0]
    launches, over_dy = [], 0
    for grad, add in zip(a.in_grads, a.accumulate):  # in input order: a repeated input's later places add
        if grad is None:
            continue
        if grad.data_ptr() == dy.data_ptr():
            over_dy += 1  # the planner put this gradient over the output gradient: already there (once)
            continue
        launches += kernels.plan_copy(dy, grad, accumulate=add)
    if over_dy > 1:  # that input given again (add_n(x, x)): dy counted once per place, after the copies read it
        launches += elementwise.plan_scalar_forward("mul", dy, float(over_dy), dy)
    return launches


register(OpDef(
    name="add_n",
    doc="The elementwise sum of its inputs (all of one shape).",
    params=[Param("num_args", int, check=positive, doc="how many inputs (set from the inputs given)")],
    input_names=("args",),
    active_inputs=lambda p: [f"arg{k}" for k in range(p["num_args"])],
    variadic=True,
    infer_shape=lambda p, in_shapes, out_shapes: same_shape_everywhere(
        [f"arg{k}" for k in range(p["num_args"])])(p, in_shapes, out_shapes),
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))],
    # add_n(x, x): the first copy writes, the second adds, in input order
    repeated_input_grads=True,
    aliases=("ElementWiseSum",),
    cheap=True,
))
