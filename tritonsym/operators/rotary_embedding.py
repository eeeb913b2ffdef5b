"""RotaryEmbedding: rotary position embedding (RoPE), the position encoding of Llama, GPT-NeoX
and most transformers since. Each pair of features of the last axis turns by the row's
position along ``axis`` (plus ``offset``) times the pair's frequency ``base ** (-2 i /
rotary_dim)``; applied to queries and keys, their dot products depend only on the distance
between positions. MXNet 1.x has none; the pairs are Hugging Face's ``rotate_half`` halves,
or Meta's interleaved neighbours with ``interleaved=True``.

One strided pass each way that computes its angles in registers (``ops/rotary.py``): no
table, nothing kept for backward, whose gradient is the head gradient turned back.
"""

from __future__ import annotations

from ..ops import rotary as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, same_shape_everywhere


def _infer_shape(p, in_shapes, out_shapes):
    new_in, new_out = same_shape_everywhere(["data"])(p, in_shapes, out_shapes)
    data = new_in[0]
    if data is None:
        return new_in, new_out
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


def _settings(p) -> dict:
    return dict(axis=p["axis"], base=p["base"], interleaved=p["interleaved"], rotary_dim=p["rotary_dim"],
                offset=p["offset"])


def _forward(a: ForwardArgs):
    return kernels.plan_rotary(a.inputs[0], a.outputs[0], **_settings(a.params))


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_rotary(a.out_grads[0], a.in_grads[0], **_settings(a.params), inverse=True,
                               accumulate=a.accumulate[0])


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
    ],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    inplace=lambda p: [(0, 0)],
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))],
    strided_inputs=lambda p: (0,),
    strided_outputs=lambda p: (0,),
    cheap=True,
))
