"""_shuffle (MXNet's ``random.shuffle``, also ``shuffle``): the data's slices along its first
axis in an order drawn on the device, anew at every call, training or not.

The order is a ranking of random keys (two float32-precision uniform draws a slice, joined
into one float64 key of 48 random bits, so that ties, which would keep their order, are
as good as impossible) by the rank kernel of topk (``ops/sort.py``), and the slices are
gathered by take's kernels (``ops/take.py``). MXNet 1.9.1 refuses to differentiate it;
here the gradient is the inverse permutation of the output's, take's gradient, which a
training bind reads from the order its forward kept (one float64 a slice).
"""

from __future__ import annotations

import torch

from .. import random
from ..ops import elementwise, sampling, sort, take
from .registry import BackwardArgs, ForwardArgs, OpDef, ShapeMismatch, register, same_shape_everywhere

KEY_BITS = 24  # the bits of one uniform draw (ops/sampling.py)


def _infer_shape(p, in_shapes, out_shapes):
    new_in, new_out = same_shape_everywhere(["data"])(p, in_shapes, out_shapes)
    if new_in[0] is not None and len(new_in[0]) == 0:
        raise ShapeMismatch("data must have a first axis to shuffle along, got a scalar shape ()")
    return new_in, new_out


def _order(a: ForwardArgs) -> torch.Tensor:
    return a.saved["order"] if a.saved else a.temps["order"]


def _forward(a: ForwardArgs):
    x, out, keys = a.inputs[0], a.outputs[0], a.temps["keys"]
    slices, order = x.shape[0], _order(a)
    launches = sampling.plan_sample(keys, random.device_state(x.device), "uniform", 0.0, 1.0, salt=random.salt(a.node))
    launches += elementwise.plan_scalar_forward("mul", keys[1], 2.0 ** -KEY_BITS, keys[1])
    launches += elementwise.plan_binary_forward("add", keys[0], keys[1], keys[0])  # 48 random bits a key
    launches += sort.plan_rank(keys[0], axis=0, k=slices, descending=False, indices=order, fn="_shuffle")
    return launches + take.plan_take(x, order, out, 0, "clip", {"indices": a.temps["indices"]})


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return take.plan_take_backward(a.out_grads[0], a.saved["order"], a.in_grads[0], 0, "clip",
                                   {"indices": a.temps["indices"]}, accumulate=a.accumulate[0])


def _indices(p, shapes, dtypes):
    return {"indices": ((shapes[0][0],), torch.float64)}


register(OpDef(
    name="_shuffle",
    aliases=("shuffle",),
    doc="The data's slices along its first axis in a random order (a new one every call).",
    params=[],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    saved_for_backward=lambda p, shapes, dtypes: {"order": ((shapes[0][0],), torch.float64)},
    forward_temps=lambda p, shapes, dtypes: {**_indices(p, shapes, dtypes), "order": ((shapes[0][0],), torch.float64),
                                             "keys": ((2, shapes[0][0]), torch.float64)},
    backward_temps=_indices,
    draws_random=lambda p: True,
    draws_random_in_inference=lambda p: True,
))
