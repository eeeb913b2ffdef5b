"""RotaryEmbedding: rotary position embedding (RoPE), the position encoding of Llama, GPT-NeoX
and most transformers since. Each pair of features of the last axis turns by the row's
position along ``axis`` (plus ``offset``) times the pair's frequency ``base ** (-2 i /
rotary_dim)``; applied to queries and keys, their dot products depend only on the distance
between positions. MXNet 1.x has none; the pairs are Hugging Face's ``rotate_half`` halves,
or Meta's interleaved neighbours with ``interleaved=True``.

One strided pass each way that computes its angles in registers (``ops/rotary.py``): no
table, nothing kept for backward, whose gradient is the head gradient turned back.

``use_position`` adds a ``position`` input (batch,): each batch row's positions start there
(after ``offset``), read when the kernel runs, so one bound decoding step serves every
place in a text (``CacheWrite`` keeps the keys of the places before). A position that is
not a whole number >= 0 makes its rows NaN.
"""

from __future__ import annotations

from ..ops import rotary as kernels
from .registry import (
    BackwardArgs,
    ForwardArgs,
    OpDef,
    Param,
    ShapeMismatch,
    index_dtype,
    register,
    same_dtype_everywhere,
    same_shape_everywhere,
    unify,
)


def _infer_shape(p, in_shapes, out_shapes):
    new_in, new_out = same_shape_everywhere(["data"])(p, in_shapes[:1], out_shapes)
    data = new_in[0]
    if p["use_position"]:
        new_in.append(unify("position", in_shapes[1], (data[0],) if data is not None and data[0] else None))
    if data is None:
        return new_in, new_out
    if p["use_position"] and p["axis"] % len(data) == 0:
        raise ShapeMismatch(f"axis={p['axis']} with use_position: the positions are one per batch row (axis 0), "
                            "so the position axis must be another")
    if len(data) < 2 or not -len(data) <= p["axis"] < len(data) or p["axis"] % len(data) == len(data) - 1:
        raise ShapeMismatch(f"axis={p['axis']} is not a position axis of data of shape {tuple(data)} (any axis "
                            "but the last, whose pairs of features are rotated)")
    features, rotary_dim = data[-1], p["rotary_dim"]
    if features and rotary_dim is not None and rotary_dim > features:
        raise ShapeMismatch(f"rotary_dim={rotary_dim} is more than the {features} features of data of shape "
                            f"{tuple(data)}")
    if features and rotary_dim is None and features % 2:
        raise ShapeMismatch(f"data of shape {tuple(data)} has an odd number of features ({features}): they cannot "
                            "all be paired; give an even rotary_dim to rotate only the first ones")
    return new_in, new_out


def _infer_type(p, in_types, out_types):
    new_in, new_out = same_dtype_everywhere(p, in_types[:1], out_types)
    if p["use_position"]:
        new_in.append(index_dtype(in_types[1], new_in[0]))
    return new_in, new_out


def _settings(p) -> dict:
    return dict(axis=p["axis"], base=p["base"], interleaved=p["interleaved"], rotary_dim=p["rotary_dim"],
                offset=p["offset"])


def _position(a):
    return a.inputs[1] if a.params["use_position"] else None


def _forward(a: ForwardArgs):
    return kernels.plan_rotary(a.inputs[0], a.outputs[0], **_settings(a.params), position=_position(a))


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_rotary(a.out_grads[0], a.in_grads[0], **_settings(a.params), inverse=True,
                               accumulate=a.accumulate[0], position=_position(a))


def _even(v):
    return None if v is None or (v >= 2 and v % 2 == 0) else "must be even and at least 2 (pairs of features)"


register(OpDef(
    name="RotaryEmbedding",
    doc="Rotates each pair of features of the last axis by the position along `axis` times the pair's frequency "
        "base ** (-2 i / rotary_dim) (RoPE).",
    params=[
        Param("axis", int, -2, doc="the axis positions count along (any but the last)"),
        Param("base", float, 10000.0, doc="the frequencies' base: pair i turns base ** (-2 i / rotary_dim) a position",
              check=lambda v: None if v > 0 else "must be positive"),
        Param("interleaved", bool, False,
              doc="pair features 2i and 2i+1 (Meta's Llama, GPT-J) instead of i and i + rotary_dim/2 (GPT-NeoX, "
                  "Hugging Face)"),
        Param("rotary_dim", "optional_int", None, check=_even,
              doc="rotate only the first rotary_dim features, pass the rest; None: all of them"),
        Param("offset", int, 0, check=lambda v: None if v >= 0 else "must not be negative",
              doc="the position of the first element along axis (a continuation after `offset` tokens)"),
        Param("use_position", bool, False,
              doc="take a position input (batch,): each batch row's positions start there (after offset)"),
    ],
    input_names=("data", "position"),
    active_inputs=lambda p: ["data", "position"] if p["use_position"] else ["data"],
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((1,) if p["use_position"] else (), ()),
    no_grad_inputs=lambda p: {"position"},
    # Whole numbers: float16 holds them exactly only up to 2048, integer dtypes are welcome.
    class_inputs=lambda p, shapes: {1: p["offset"] + shapes[0][p["axis"]]} if p["use_position"] and shapes[0] else {},
    inplace=lambda p: [(0, 0)],
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))],
    strided_inputs=lambda p: (0,),
    strided_outputs=lambda p: (0,),
    cheap=True,
))
