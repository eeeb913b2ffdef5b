"""BlockGrad (stop_gradient): the identity forward, no gradient backward.

Its output is a view of its input. Wrap a value in BlockGrad to expose it as an output
for monitoring without having to pass a head gradient for it.
"""

from __future__ import annotations

from .registry import OpDef, register, same_shape_everywhere

register(OpDef(
    name="BlockGrad",
    aliases=("stop_gradient",),
    doc="Passes data through unchanged and stops the gradient: nothing flows back to data.",
    params=[],
    input_names=("data",),
    infer_shape=same_shape_everywhere(["data"]),
    forward=lambda a: [],
    backward=lambda a: [],
    backward_needs=lambda p, epilogue: ((), ()),
    output_aliases=lambda p: {0: 0},
    needs_head_grad=lambda p: False,
    no_grad_inputs=lambda p: {"data"},
))
