"""_contrib_box_encode (MXNet's ``contrib.box_encode``): a detector's regression targets,
each positive anchor's (sample above 0.5) normalized center offsets to the ground-truth box
it was matched with, ``((x_ref - x) / w - means[0]) / stds[0]``, ``(log(w_ref / w) -
means[2]) / stds[2]`` and likewise y and h, boxes corner encoded; outputs the targets and
the masks (1 for a positive, both 0 for the rest). Matches float or integer; one that is
not a whole number in [0, M) for a positive gives NaN targets, a NaN sample NaN targets and
masks. No input takes a gradient (the targets are labels, as MXNet's)
(``ops/box_encode.py``)."""

from __future__ import annotations

import torch

from ..ops import box_encode as kernels
from .registry import ForwardArgs, OpDef, ShapeMismatch, register, unify

INPUTS = ("samples", "matches", "anchors", "refs", "means", "stds")


def _check_rank(name: str, shape, rank: int, form: str) -> None:
    if shape is not None and (len(shape) != rank or (rank == 3 and shape[-1] not in (0, 4))):
        raise ShapeMismatch(f"{name} of shape {tuple(shape)} must be {form}")


def _infer_shape(p, in_shapes, out_shapes):
    samples, matches, anchors, refs, means, stds = in_shapes
    for name, shape, rank, form in (("samples", samples, 2, "(batch, anchors)"),
                                    ("matches", matches, 2, "(batch, anchors)"),
                                    ("anchors", anchors, 3, "(batch, anchors, 4)"),
                                    ("refs", refs, 3, "(batch, refs, 4)")):
        _check_rank(name, shape, rank, form)
    for shape in out_shapes:
        if shape is not None:
            anchors = unify("anchors", anchors, shape)
    for name, shape in (("samples", samples), ("matches", matches)):
        if shape is not None:
            anchors = unify("anchors", anchors, (*shape, 4)) if anchors is None else anchors
            if tuple(shape) != tuple(anchors[:2]):
                raise ShapeMismatch(f"{name} of shape {tuple(shape)} must hold one value for each of the anchors "
                                    f"{tuple(anchors)}: {tuple(anchors[:2])}")
    if anchors is not None and refs is not None and 0 not in (anchors[0], refs[0]) and anchors[0] != refs[0]:
        raise ShapeMismatch(f"refs of shape {tuple(refs)} must be of anchors' batch of {anchors[0]} images")
    means = unify("means", means, (4,))
    stds = unify("stds", stds, (4,))
    if anchors is None:
        return [samples, matches, anchors, refs, means, stds], out_shapes
    anchors = tuple(anchors)
    return [anchors[:2], anchors[:2], anchors, refs, means, stds], [anchors, anchors]


def _infer_type(p, in_types, out_types):
    data = next((t for t in (*in_types[2:], *out_types) if t is not None), None) or in_types[0]
    if data is None:
        return in_types, out_types
    matches = in_types[1]
    if matches is None:  # a match past 256 (bfloat16) or 2048 (float16) needs a wider dtype
        matches = torch.float32 if data in (torch.float16, torch.bfloat16) else data
    return ([in_types[0] or data, matches, data, data, data, data],
            [unify("targets' dtype", out_types[0], data), unify("masks' dtype", out_types[1], data)])


def _forward(a: ForwardArgs):
    return kernels.plan_box_encode(*a.inputs, a.outputs[0], a.outputs[1])


register(OpDef(
    name="_contrib_box_encode",
    doc="A detector's regression targets: each positive anchor's normalized center offsets to the box it was "
        "matched with (corner boxes), and the masks of the positives.",
    params=[],
    input_names=INPUTS,
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=lambda a: [],
    backward_needs=lambda p, epilogue: ((), ()),
    num_outputs=2,
    output_names=lambda p: ["output0", "output1"],
    no_grad_inputs=lambda p: set(INPUTS),
    class_inputs=lambda p, shapes: {} if shapes[3] is None else {1: shapes[3][1]},
    cheap=True,
))
