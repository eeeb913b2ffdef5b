"""zeros_like and ones_like (MXNet's): an array of the data's shape and dtype filled with 0
or 1. The data's values are never read (only its shape), and it gets no gradient: one
fill launch forward, nothing backward."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import OpDef, register, same_shape_everywhere


def _register(name: str, value: float) -> None:
    register(OpDef(
        name=name,
        doc=f"An array of the data's shape and dtype filled with {value:g}; no gradient flows to data.",
        params=[],
        input_names=("data",),
        infer_shape=same_shape_everywhere(["data"]),
        forward=lambda a: kernels.plan_fill(a.outputs[0], value),
        backward=lambda a: [],
        backward_needs=lambda p, epilogue: ((), ()),
        no_grad_inputs=lambda p: {"data"},
        cheap=True,
    ))


_register("zeros_like", 0.0)
_register("ones_like", 1.0)
