"""all_finite and multi_all_finite (MXNet's, the check its mixed-precision trainer makes of
the gradients before a step): one float32, 1 if every element of the data (of every one of
``num_arrays`` arrays) is finite, else 0. One fill and one launch per array
(``ops/all_finite.py``); no gradient flows to the data.

MXNet's ``init_output=False`` leaves the output as it was and only lowers it to 0, for
calls that write one ``out`` array chunk by chunk; a symbol's output holds nothing before
its forward, so tritonsym refuses it rather than answer from whatever memory held."""

from __future__ import annotations

import torch

from ..ops import all_finite as kernels
from .registry import OpDef, Param, ShapeMismatch, positive, register, unify


def _check_init_output(value) -> str | None:
    if not value:
        return ("is not supported: it keeps what the output held before, and a symbol's output holds nothing "
                "before its forward")
    return None


def _infer_shape(p, in_shapes, out_shapes):
    return in_shapes, [unify("output", out_shapes[0], (1,))]


def _infer_type(p, in_types, out_types):
    for k, t in enumerate(in_types):
        if t is not None and not t.is_floating_point:
            raise ShapeMismatch(f"input {k} has dtype {str(t).replace('torch.', '')}: only float arrays can be "
                                "checked")
    return in_types, [unify("output dtype", out_types[0], torch.float32)]


def _register(name: str, doc: str, params: list[Param], variadic: bool) -> None:
    def inputs(p) -> list[str]:
        return [f"arg{k}" for k in range(p["num_arrays"])] if variadic else ["data"]

    register(OpDef(
        name=name,
        doc=doc,
        params=[*params, Param("init_output", bool, True, check=_check_init_output,
                               doc="set the output to 1 first (False, MXNet's chunked writes into one array, "
                                   "is refused)")],
        input_names=("data",),
        active_inputs=inputs if variadic else None,
        infer_shape=_infer_shape,
        infer_type=_infer_type,
        forward=lambda a: kernels.plan_all_finite(a.inputs, a.outputs[0]),
        backward=lambda a: [],
        backward_needs=lambda p, epilogue: ((), ()),
        no_grad_inputs=lambda p: set(inputs(p)),
        variadic=variadic,
        variadic_count="num_arrays",
    ))


_register("all_finite", "1 (float32) if every element of the data is finite, else 0.", [], variadic=False)
_register("multi_all_finite", "1 (float32) if every element of every one of num_arrays arrays is finite, else 0.",
          [Param("num_arrays", int, 1, check=positive, doc="how many arrays are checked (set from the arrays given)")],
          variadic=True)
