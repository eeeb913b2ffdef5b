"""_contrib_index_copy (MXNet's ``contrib.index_copy``): ``old_tensor`` (R, ...) with rows
``index_vector[i]`` replaced by rows i of ``new_tensor`` (M, ...), M at most R; the index
float or integer. A repeated index: its last row wins, and only that row of new takes a
gradient (MXNet leaves the winner to its threads and gives every repeat one). An index
that is not a whole number in [0, R): the output and the gradients all NaN (MXNet writes
past the array). Gradients: old's where no row landed, new's rows read at their index
(``ops/index_copy.py``: one program per block of output rows, no atomics)."""

from __future__ import annotations

import torch

from ..ops import index_copy as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, ShapeMismatch, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    old, index, new = in_shapes
    old = unify("old_tensor", old, out_shapes[0]) if out_shapes[0] is not None else old
    if index is not None and len(index) != 1:
        raise ShapeMismatch(f"index_vector of shape {tuple(index)} must be a vector")
    if old is not None and new is not None:
        if len(old) != len(new) or tuple(old[1:]) != tuple(new[1:]) or new[0] > old[0]:
            raise ShapeMismatch(f"new_tensor {tuple(new)} must hold rows of old_tensor {tuple(old)}, at most as many")
    if index is not None and new is not None and index[0] != new[0]:
        raise ShapeMismatch(f"new_tensor {tuple(new)} must have one row per index: index_vector is {tuple(index)}")
    rows = index[0] if index is not None else (new[0] if new is not None else 0)
    if old is not None:
        new = unify("new_tensor", new, (rows, *old[1:]))
    if new is not None and index is None:
        index = (new[0],)
    return [old, index, new], [old]


def _infer_type(p, in_types, out_types):
    data = in_types[0] or in_types[2] or out_types[0]
    if data is None:
        return in_types, out_types
    index = in_types[1]
    if index is None:  # rows past 256 (bfloat16) or 2048 (float16) need a wider dtype
        index = torch.float32 if data in (torch.float16, torch.bfloat16) else data
    return [data, index, data], [unify("output dtype", out_types[0], data)]


def _winners(p, shapes, dtypes) -> dict:
    return {} if shapes[0] is None else {"winners": (kernels.scratch_shape(shapes[0][0]), torch.int64)}


def _forward(a: ForwardArgs):
    return kernels.plan_index_copy(a.inputs[0], a.inputs[1], a.inputs[2], a.outputs[0], a.temps["winners"])


def _backward(a: BackwardArgs):
    dold, _, dnew = a.in_grads
    if dold is None and dnew is None:
        return []
    return kernels.plan_index_copy_backward(a.out_grads[0], a.inputs[1], a.temps["winners"], dold, dnew,
                                            accumulate_old=a.accumulate[0], accumulate_new=a.accumulate[2])


register(OpDef(
    name="_contrib_index_copy",
    doc="old_tensor with rows index_vector[i] replaced by rows i of new_tensor (the last repeat wins; NaN for an "
        "index outside the rows).",
    params=[],
    input_names=("old_tensor", "index_vector", "new_tensor"),
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((1,), ()),
    no_grad_inputs=lambda p: {"index_vector"},
    class_inputs=lambda p, shapes: {} if shapes[0] is None else {1: shapes[0][0]},
    forward_temps=_winners,
    backward_temps=_winners,
))
