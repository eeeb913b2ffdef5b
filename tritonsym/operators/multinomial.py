"""_sample_multinomial (MXNet's; ``ts.sym.random.multinomial`` calls it): ``shape`` draws of a
category from each row of weights along the data's last axis (output: the data's shape but
the last axis, then ``shape``; one draw, and for 1-d data ``(1,)``, when ``shape`` is ()).

With ``get_prob`` a second output holds the log of each drawn weight (the log-likelihood
where the rows sum to 1, as MXNet asks; the draws themselves follow weight / total, so rows
that do not sum to 1 are drawn from correctly too); its gradient reaches the data as MXNet's
does (REINFORCE: give the reward as that output's head gradient). A row with a NaN or a
negative weight, or none positive, draws -1 (Embedding or take reading it give NaN) with a
NaN log-probability and a NaN gradient. Each forward draws anew from ``tritonsym.random``'s
device state, training or not. Kernels: ``ops/multinomial.py``.
"""

from __future__ import annotations

import torch

from .. import random
from ..ops import multinomial as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

DTYPES = {"int32": torch.int32, "int64": torch.int64, "float32": torch.float32, "float64": torch.float64}


def _drawn_shape(p, data) -> tuple[int, ...]:
    if len(data) < 1:
        raise ShapeMismatch("data must have an axis of categories (its last)")
    return (*data[:-1], *p["shape"]) or (1,)


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    drawn = _drawn_shape(p, data)
    return in_shapes, [unify(f"output {k}", out, drawn) for k, out in enumerate(out_shapes)]


def _infer_type(p, in_types, out_types):
    chosen = DTYPES[p["dtype"]]
    index = unify("output 0 dtype (the categories drawn)", out_types[0], chosen)
    if not p["get_prob"]:
        return list(in_types), [index]
    data = unify("data dtype", in_types[0], out_types[1])
    return [data], [index, data]


def _forward(a: ForwardArgs):
    return kernels.plan_multinomial(a.inputs[0], a.outputs[0], random.device_state(a.inputs[0].device),
                                    salt=random.salt(a.node),
                                    log_p=a.outputs[1] if a.params["get_prob"] else None)


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_multinomial_backward(a.inputs[0], a.outputs[0], a.out_grads[1], a.in_grads[0],
                                             a.accumulate[0])


register(OpDef(
    name="_sample_multinomial",
    doc="shape draws of a category from each row of weights along the data's last axis (and, with get_prob, the "
        "log of each drawn weight).",
    params=[Param("shape", "shape", (), doc="the draws per row (empty: one)"),
            Param("get_prob", bool, False, doc="a second output: the log of each drawn weight, with a gradient"),
            Param("dtype", str, "int32", choices=tuple(DTYPES), doc="the categories' dtype")],
    input_names=("data",),
    num_outputs=lambda p: 2 if p["get_prob"] else 1,
    output_names=lambda p: ["output0", "output1"] if p["get_prob"] else ["output"],
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0,), (0,)),
    no_grad_inputs=lambda p: set() if p["get_prob"] else {"data"},
    class_inputs=lambda p, shapes: {},
    draws_random=lambda p: True,
    draws_random_in_inference=lambda p: True,
    aliases=("sample_multinomial",),
))
