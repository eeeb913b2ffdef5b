"""MXNet's ``_linalg_extracttrian`` (a triangle of square matrices packed into vectors) and
``_linalg_maketrian`` (vectors unpacked into a triangle of zero matrices), each the other's
gradient (``ops/linalg_triangle.py``); also named ``linalg_<name>``, reached as
``ts.sym.linalg.<name>``.

``offset`` 0 is the lower triangle with the diagonal (``lower=False``: the upper), ``k > 0``
the upper triangle from the k-th diagonal above the main one, ``k < 0`` the lower from the
k-th below. MXNet packs a lower triangle row by row and an upper one column by column, which
is the lower triangle of the transposed matrices row by row: an upper triangle is packed
from a transposed view.
"""

from __future__ import annotations

import math

import torch

from ..ops import linalg_triangle as kernels
from .registry import OpDef, Param, ShapeMismatch, register, unify

_PARAMS = [Param("offset", int, 0, doc="the triangle's first diagonal: 0 the main one, > 0 above it, < 0 below"),
           Param("lower", bool, True, doc="the lower triangle (else the upper) where offset is 0")]


def _upper(p) -> bool:
    return p["offset"] > 0 or (p["offset"] == 0 and not p["lower"])


def _matrices(p, t: torch.Tensor) -> torch.Tensor:
    """(batch, n, n), transposed for an upper triangle."""
    t = t.reshape(-1, *t.shape[-2:])
    return t.transpose(1, 2) if _upper(p) else t


def _pack(p, matrices: torch.Tensor, packed: torch.Tensor, accumulate: bool):
    return kernels.plan_triangle(_matrices(p, matrices), packed.reshape(-1, packed.shape[-1]), abs(p["offset"]),
                                 pack=True, accumulate=accumulate)


def _unpack(p, packed: torch.Tensor, matrices: torch.Tensor, accumulate: bool):
    return kernels.plan_triangle(_matrices(p, matrices), packed.reshape(-1, packed.shape[-1]), abs(p["offset"]),
                                 pack=False, accumulate=accumulate)


def _extracttrian_shape(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    if len(a) < 2 or a[-1] != a[-2]:
        raise ShapeMismatch(f"A {tuple(a)} must be square matrices on its last two axes")
    if a[-1] - abs(p["offset"]) <= 0:
        raise ShapeMismatch(f"offset={p['offset']} leaves no triangle in {a[-1]} x {a[-1]} matrices")
    return in_shapes, [unify("output", out_shapes[0], (*a[:-2], kernels.triangle_size(a[-1], abs(p["offset"]))))]


def _maketrian_shape(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    if len(a) < 1:
        raise ShapeMismatch(f"A {tuple(a)} must have at least one axis (the packed triangle's)")
    m = (math.isqrt(8 * a[-1] + 1) - 1) // 2
    if m * (m + 1) // 2 != a[-1] or m == 0:
        raise ShapeMismatch(f"A's last axis ({a[-1]}) is not the size of a triangle (1, 3, 6, 10, ...: m (m + 1) / 2)")
    n = m + abs(p["offset"])
    return in_shapes, [unify("output", out_shapes[0], (*a[:-1], n, n))]


def _gradient(move):
    def backward(a):
        if a.in_grads[0] is None:
            return []
        return move(a.params, a.out_grads[0], a.in_grads[0], a.accumulate[0])
    return backward


register(OpDef(
    name="_linalg_extracttrian",
    aliases=("linalg_extracttrian",),
    doc="A triangle of square matrices (the last two axes) packed into vectors: a lower one row by row, an upper "
        "one column by column (MXNet's order).",
    params=_PARAMS,
    input_names=("A",),
    infer_shape=_extracttrian_shape,
    forward=lambda a: _pack(a.params, a.inputs[0], a.outputs[0], False),
    backward=_gradient(lambda p, grad_out, grad_a, accumulate: _unpack(p, grad_out, grad_a, accumulate)),
    backward_needs=lambda p, epilogue: ((), ()),
    cheap=True,
))

register(OpDef(
    name="_linalg_maketrian",
    aliases=("linalg_maketrian",),
    doc="Square matrices, zero but for a triangle holding the packed vectors of A (its last axis; "
        "extracttrian's order).",
    params=_PARAMS,
    input_names=("A",),
    infer_shape=_maketrian_shape,
    forward=lambda a: _unpack(a.params, a.inputs[0], a.outputs[0], False),
    backward=_gradient(lambda p, grad_out, grad_a, accumulate: _pack(p, grad_out, grad_a, accumulate)),
    backward_needs=lambda p, epilogue: ((), ()),
    cheap=True,
))
