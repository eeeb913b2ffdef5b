"""MXNet's linalg diagonal operators over the trailing two axes: ``_linalg_extractdiag`` (a
diagonal of square matrices as vectors), ``_linalg_makediag`` (vectors as a diagonal of
zero matrices), each the other's gradient, and ``_linalg_sumlogdiag`` (the sum of a
diagonal's logarithms; ``ops/linalg_sumlogdiag.py``). Each also named ``linalg_<name>``
and reached as ``ts.sym.linalg.<name>``.

A diagonal is a strided view of its matrices (``torch.diagonal``), so extracting is a copy
from that view and making a diagonal a fill of zeros then a copy into it (``ops/memory.py``);
``offset`` > 0 is a diagonal above the main one, < 0 below.
"""

from __future__ import annotations

import torch

from ..ops import linalg_sumlogdiag as kernels
from ..ops import memory
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

_OFFSET = Param("offset", int, 0, doc="the diagonal: 0 the main one, > 0 above it, < 0 below")


def _square(what: str, shape) -> int:
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ShapeMismatch(f"{what} {tuple(shape)} must be square matrices on its last two axes")
    return shape[-1]


def _diagonal(t: torch.Tensor, offset: int) -> torch.Tensor:
    return torch.diagonal(t, offset, -2, -1)


def _extractdiag_shape(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    n = _square("A", a) - abs(p["offset"])
    if n <= 0:
        raise ShapeMismatch(f"offset={p['offset']} leaves no diagonal in {a[-1]} x {a[-1]} matrices")
    return in_shapes, [unify("output", out_shapes[0], (*a[:-2], n))]


def _write_diagonal(values: torch.Tensor, matrices: torch.Tensor, offset: int, accumulate: bool):
    """matrices (+)= the zero matrices with ``values`` on a diagonal."""
    zeros = [] if accumulate else memory.plan_fill(matrices, 0.0)
    return zeros + memory.plan_copy(values, _diagonal(matrices, offset), accumulate=accumulate)


register(OpDef(
    name="_linalg_extractdiag",
    aliases=("linalg_extractdiag",),
    doc="A diagonal of square matrices (the last two axes) as vectors.",
    params=[_OFFSET],
    input_names=("A",),
    infer_shape=_extractdiag_shape,
    forward=lambda a: memory.plan_copy(_diagonal(a.inputs[0], a.params["offset"]), a.outputs[0]),
    backward=lambda a: [] if a.in_grads[0] is None else _write_diagonal(
        a.out_grads[0], a.in_grads[0], a.params["offset"], a.accumulate[0]),
    backward_needs=lambda p, epilogue: ((), ()),
    cheap=True,
))


def _makediag_shape(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    if len(a) < 1:
        raise ShapeMismatch(f"A {tuple(a)} must have at least one axis (the diagonal's)")
    n = a[-1] + abs(p["offset"])
    return in_shapes, [unify("output", out_shapes[0], (*a[:-1], n, n))]


register(OpDef(
    name="_linalg_makediag",
    aliases=("linalg_makediag",),
    doc="Square matrices, zero but for a diagonal holding the vectors of A (its last axis).",
    params=[_OFFSET],
    input_names=("A",),
    infer_shape=_makediag_shape,
    forward=lambda a: _write_diagonal(a.inputs[0], a.outputs[0], a.params["offset"], False),
    backward=lambda a: [] if a.in_grads[0] is None else memory.plan_copy(
        _diagonal(a.out_grads[0], a.params["offset"]), a.in_grads[0], accumulate=a.accumulate[0]),
    backward_needs=lambda p, epilogue: ((), ()),
    cheap=True,
))


def _sumlogdiag_shape(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    _square("A", a)
    return in_shapes, [unify("output", out_shapes[0], tuple(a[:-2]) or (1,))]


def _as_batch(t: torch.Tensor, matrices: bool) -> torch.Tensor:
    """(batch, n, n) of matrices, or (batch,) of their values."""
    return t.reshape(-1, *t.shape[-2:]) if matrices else t.reshape(-1)


def _sumlogdiag_backward(a: BackwardArgs):
    grad = a.in_grads[0]
    if grad is None:
        return []
    zeros = [] if a.accumulate[0] else memory.plan_fill(grad, 0.0)
    return zeros + kernels.plan_sumlogdiag_backward(_as_batch(a.out_grads[0], False), _as_batch(a.inputs[0], True),
                                                    _as_batch(grad, True), accumulate=a.accumulate[0])


def _sumlogdiag_forward(a: ForwardArgs):
    return kernels.plan_sumlogdiag(_as_batch(a.inputs[0], True), _as_batch(a.outputs[0], False))


register(OpDef(
    name="_linalg_sumlogdiag",
    aliases=("linalg_sumlogdiag",),
    doc="sum_i log A[..., i, i] of square matrices (the last two axes): NaN where an entry is negative; "
        "shape (1,) for one matrix, as MXNet's.",
    params=[],
    input_names=("A",),
    infer_shape=_sumlogdiag_shape,
    forward=_sumlogdiag_forward,
    backward=_sumlogdiag_backward,
    backward_needs=lambda p, epilogue: ((0,), ()),
))
