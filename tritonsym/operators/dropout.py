"""Dropout (MXNet's): in training, each element is kept with probability 1 - p and scaled by
1 / (1 - p), else zeroed; in inference (``mode='training'``) it is the identity.

The mask is drawn in the kernel from ``tritonsym.random``'s device state and redrawn by
backward from the same key (``ops/dropout.py``), so nothing is kept for backward: Dropout
adds no activation memory to a training bind. Each node draws its own stream (its name is
part of the key); ``axes`` share one draw along those axes. ``p = 0`` is a view of the
input: no launch and no memory.
"""

from __future__ import annotations

from .. import random
from ..ops import dropout as kernels
from ..ops import memory
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, same_shape_everywhere


def _infer_shape(p, in_shapes, out_shapes):
    new_in, new_out = same_shape_everywhere(["data"])(p, in_shapes, out_shapes)
    shape = new_in[0]
    if shape is not None:
        bad = [a for a in p["axes"] if not -len(shape) <= a < len(shape)]
        if bad:
            raise ShapeMismatch(f"axes={tuple(p['axes'])} has {bad[0]}, out of range for data of shape {tuple(shape)}")
    return new_in, new_out


def _drops(p: dict, is_train: bool) -> bool:
    return p["p"] > 0 and (is_train or p["mode"] == "always")


def _forward(a: ForwardArgs):
    p, x = a.params, a.inputs[0]
    if p["p"] == 0:
        return []  # the output is a view of the input
    if not _drops(p, a.is_train):
        return memory.plan_copy(x, a.outputs[0])
    return kernels.plan_dropout(x, a.outputs[0], random.device_state(x.device), p=p["p"], salt=random.salt(a.node),
                                axes=p["axes"])


def _backward(a: BackwardArgs):
    p = a.params
    dy, dx = a.out_grads[0], a.in_grads[0]
    if p["p"] == 0:
        return memory.plan_copy(dy, dx, accumulate=a.accumulate[0])
    return kernels.plan_dropout(dy, dx, random.device_state(dy.device), p=p["p"], salt=random.salt(a.node),
                                axes=p["axes"], accumulate=a.accumulate[0])


register(OpDef(
    name="Dropout",
    doc="x * mask / (1 - p) in training (mask ~ Bernoulli(1 - p), drawn on the device), x in inference.",
    params=[
        Param("p", float, 0.5, doc="the probability of dropping an element",
              check=lambda v: None if 0 <= v < 1 else "must be in [0, 1)"),
        Param("mode", str, "training", choices=("training", "always"),
              doc="'always' drops in inference too"),
        Param("axes", "shape", (), doc="axes along which one draw is shared (variational dropout)"),
        Param("cudnn_off", bool, False, doc="accepted for MXNet's scripts; there is no cuDNN here"),
    ],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),  # the mask is drawn again, not kept
    output_aliases=lambda p: {0: 0} if p["p"] == 0 else {},
    forward_in_training=lambda p: p["p"] > 0 and p["mode"] == "training",
    draws_random=lambda p: p["p"] > 0,
    draws_random_in_inference=lambda p: p["p"] > 0 and p["mode"] == "always",
    cheap=True,  # mirror may recompute it in backward: the same step draws the same mask
    inplace=lambda p: [(0, 0)] if p["p"] > 0 else [],
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))],
))
