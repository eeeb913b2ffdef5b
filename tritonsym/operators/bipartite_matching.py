"""_contrib_bipartite_matching (MXNet's ``contrib.bipartite_matching``): greedy matching of
each image's rows with its columns by the scores ``data`` (..., N, M), best score first
(least with ``is_ascend``), ties by flat position; a pair of a free row and a free column
is matched unless its score fails ``threshold``, which ends the matching, as do ``topk``
matches. Two outputs: each row's column (..., N) and each column's row (..., M), -1 where
unmatched, in the data's dtype; an image holding a NaN has NaN markers. The data takes no
gradient (the markers' derivative is 0) (``ops/bipartite_matching.py``)."""

from __future__ import annotations

from ..ops import bipartite_matching as kernels
from .registry import REQUIRED, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    if len(data) < 2:
        raise ShapeMismatch(f"data of shape {tuple(data)} must be (..., rows, columns)")
    return [data], [unify("rows' markers", out_shapes[0], tuple(data[:-1])),
                    unify("columns' markers", out_shapes[1], (*data[:-2], data[-1]))]


def _forward(a: ForwardArgs):
    p = a.params
    return kernels.plan_bipartite_matching(a.inputs[0], a.outputs[0], a.outputs[1], p["threshold"], p["is_ascend"],
                                           p["topk"])


register(OpDef(
    name="_contrib_bipartite_matching",
    doc="Greedy matching of rows with columns by a score matrix, best score first: each row's column and each "
        "column's row, -1 where unmatched.",
    params=[Param("is_ascend", bool, False, doc="the least score first (then a match's score must be below "
                                                 "threshold)"),
            Param("threshold", float, REQUIRED, check=lambda v: None if v == v and abs(v) != float("inf") else
                  "must be a finite number", doc="a match's score must be above it (below it: is_ascend)"),
            Param("topk", int, -1, check=lambda v: None if v == -1 or v >= 1 else
                  "must be -1 (no limit) or at least 1", doc="the most matches an image makes")],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=lambda a: [],
    backward_needs=lambda p, epilogue: ((), ()),
    num_outputs=2,
    output_names=lambda p: ["output0", "output1"],
    no_grad_inputs=lambda p: {"data"},
))
