"""amp_cast and amp_multicast, the casts MXNet's automatic mixed precision
(``mx.contrib.amp``) writes into the graphs it converts, so that such a graph's JSON loads
and runs here.

* ``amp_cast(data, dtype)``: data of float32, float16 or bfloat16 becomes ``dtype``; data of
  any other dtype (float64) passes unchanged, as MXNet's does.
* ``amp_multicast(*data, num_outputs, cast_narrow=False)``: each input of float32, float16
  or bfloat16 becomes one common dtype, the others pass unchanged. The common dtype is
  MXNet's: it starts as the first input's (float32 with ``cast_narrow``) and becomes each
  float32 input's where it is half precision (each half-precision input's with
  ``cast_narrow``); so float16 and float32 inputs all become float32 (float16 narrowed).

Both round to nearest (ties to even) and bring the gradient back in each input's dtype;
where a dtype does not change, the output may take the input's storage and nothing runs.
Kernels: ``ops/memory.py``'s copy, as Cast's. An integer target (MXNet casts float32 to
int32) is refused, naming it: integers reach only the inputs that take class indices.
"""

from __future__ import annotations

import torch

from ..ops import memory as kernels
from .cast import DTYPES, MXNET_INTEGER_DTYPES, same_storage
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify

CASTABLE = (torch.float32, torch.float16, torch.bfloat16)  # what AMP casts; the rest passes unchanged
HALF = (torch.float16, torch.bfloat16)


def _target(p) -> torch.dtype:
    if p["dtype"] in MXNET_INTEGER_DTYPES:
        raise ShapeMismatch(f"dtype={p['dtype']} is not supported: tritonsym computes in {', '.join(DTYPES)}")
    return DTYPES[p["dtype"]]


def _cast_type(p, in_types, out_types):
    data = in_types[0]
    if data is None:
        return in_types, out_types
    return [data], [unify("output dtype", out_types[0], _target(p) if data in CASTABLE else data)]


def _common_type(p, types: list[torch.dtype]) -> torch.dtype:
    """MXNet 1.9.1's rule (``AMPMultiCastType``), bfloat16 taken as float16 is."""
    common = torch.float32 if p["cast_narrow"] else types[0]
    for t in types:
        if not p["cast_narrow"] and (common in HALF or t == torch.float32):
            common = t
        elif p["cast_narrow"] and t in HALF:
            common = t
    return common


def _multicast_type(p, in_types, out_types):
    if any(t is None for t in in_types):
        return in_types, out_types
    common = _common_type(p, in_types)
    return list(in_types), [unify(f"output {k} dtype", out, common if t in CASTABLE else t)
                            for k, (t, out) in enumerate(zip(in_types, out_types))]


def _multicast_shape(p, in_shapes, out_shapes):
    shapes = [unify(f"input {k}", i, o) for k, (i, o) in enumerate(zip(in_shapes, out_shapes))]
    return shapes, list(shapes)


def _copies(sources, targets) -> list:
    return [launch for x, y in zip(sources, targets) if not same_storage(x, y) for launch in kernels.plan_copy(x, y)]


def _backward(a: BackwardArgs) -> list:
    launches = []
    for dy, dx, add in zip(a.out_grads, a.in_grads, a.accumulate):
        if dx is not None and dy is not None and not (same_storage(dy, dx) and not add):
            launches += kernels.plan_copy(dy, dx, accumulate=add)
    return launches


def _forward(a: ForwardArgs) -> list:
    return _copies(a.inputs, a.outputs)


register(OpDef(
    name="amp_cast",
    doc="float32, float16 or bfloat16 data cast to dtype (AMP's cast); other dtypes pass unchanged.",
    params=[Param("dtype", str, choices=(*DTYPES, *MXNET_INTEGER_DTYPES), doc="the dtype to cast to")],
    input_names=("data",),
    infer_shape=_multicast_shape,
    infer_type=_cast_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    inplace=lambda p: [(0, 0)],  # taken only where the dtype does not change (the planner's rule)
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))],
    cheap=True,
))

register(OpDef(
    name="amp_multicast",
    doc="Inputs of float32, float16 or bfloat16 cast to one dtype (AMP's, MXNet's rule), the others unchanged.",
    params=[Param("num_outputs", int, check=positive, doc="how many inputs (and outputs; set from the inputs given)"),
            Param("cast_narrow", bool, False, doc="cast to the narrowest dtype instead of the widest")],
    input_names=("data",),
    active_inputs=lambda p: [f"data{k}" for k in range(p["num_outputs"])],
    num_outputs=lambda p: p["num_outputs"],
    output_names=lambda p: [f"output{k}" for k in range(p["num_outputs"])] if p["num_outputs"] > 1 else ["output"],
    infer_shape=_multicast_shape,
    infer_type=_multicast_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    inplace=lambda p: [(k, k) for k in range(p["num_outputs"])],
    backward_inplace=lambda p, epilogue: [(k, ("out_grad", k)) for k in range(p["num_outputs"])],
    cheap=True,
    variadic=True,
    variadic_count="num_outputs",
))
