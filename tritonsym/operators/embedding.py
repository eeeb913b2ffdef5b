"""Embedding (MXNet's): ``out[..., :] = weight[data[...], :]``, a table of ``input_dim`` rows
of ``output_dim`` values looked up by index; the output has the data's shape plus one axis.

The indices may be floats (as MXNet's iterators give them) or integers; they take no
gradient. An index that is not a whole number in ``[0, input_dim)`` gives a NaN row where
MXNet would silently clip or truncate it. The weight gradient sums the rows of repeated
indices in a fixed order: the same bits every run (``ops/embedding.py``).
"""

from __future__ import annotations

import torch

from ..ops import embedding as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, positive, register, unify

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _infer_shape(p, in_shapes, out_shapes):
    weight = unify("weight", in_shapes[1], (p["input_dim"], p["output_dim"]))
    data, out = in_shapes[0], out_shapes[0]
    if data is not None:
        out = unify("output", out, (*data, p["output_dim"]))
    elif out is not None:
        data = tuple(out[:-1])
    return [data, weight], [out]


def _infer_type(p, in_types, out_types):
    # The table's dtype is the output's: the dtype parameter unless the graph says otherwise.
    table = unify("weight dtype", in_types[1], out_types[0]) or DTYPES[p["dtype"]]
    data = in_types[0]
    if data is None:  # indices above 256 (bfloat16) or 2048 (float16) need a wider dtype
        data = torch.float32 if table in (torch.float16, torch.bfloat16) else table
    return [data, table], [table]


def _forward(a: ForwardArgs):
    return kernels.plan_embedding(a.inputs[0], a.inputs[1], a.outputs[0])


def _backward(a: BackwardArgs):
    launches = []
    if a.in_grads[1] is not None:
        launches += kernels.plan_embedding_weight_grad(a.inputs[0], a.out_grads[0], a.in_grads[1], a.accumulate[1])
    return launches


register(OpDef(
    name="Embedding",
    doc="Looks up rows of weight (input_dim, output_dim) by the indices in data.",
    params=[
        Param("input_dim", int, check=positive, doc="rows of the table (the vocabulary's size)"),
        Param("output_dim", int, check=positive, doc="values per row"),
        Param("dtype", str, "float32", choices=tuple(DTYPES), doc="the table's dtype when nothing else sets it"),
        Param("sparse_grad", bool, False, doc="MXNet's row-sparse gradient; only False (dense) here",
              check=lambda v: "is not supported: the weight gradient is dense" if v else None),
    ],
    input_names=("data", "weight"),
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0,), ()),
    no_grad_inputs=lambda p: {"data"},
    class_inputs=lambda p, shapes: {0: p["input_dim"]},
))
