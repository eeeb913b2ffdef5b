"""dot (MXNet's): the product of lhs and rhs over lhs's last axis and rhs's first (lhs's first
with ``transpose_a``, rhs's last with ``transpose_b``): ``(a..., k) . (k, b...)`` is
``(a..., b...)``, computed as one matrix product on views (``ops/batch_dot.py``). Two vectors
give shape (1,), as in MXNet."""

from __future__ import annotations

import math

from ..ops import batch_dot as kernels
from .batch_dot import product_params
from .registry import BackwardArgs, ForwardArgs, OpDef, ShapeMismatch, register, unify


def _split(p, lhs, rhs):
    """The kept axes of each side and the contracted lengths."""
    lhs_kept, k = (lhs[1:], lhs[0]) if p["transpose_a"] else (lhs[:-1], lhs[-1])
    rhs_kept, k2 = (rhs[:-1], rhs[-1]) if p["transpose_b"] else (rhs[1:], rhs[0])
    return tuple(lhs_kept), k, tuple(rhs_kept), k2


def _infer_shape(p, in_shapes, out_shapes):
    lhs, rhs = in_shapes
    if lhs is None or rhs is None:
        return in_shapes, out_shapes
    if not lhs or not rhs:
        raise ShapeMismatch(f"lhs {tuple(lhs)} and rhs {tuple(rhs)} must have at least one axis")
    lhs_kept, k, rhs_kept, k2 = _split(p, lhs, rhs)
    if k and k2 and k != k2:
        raise ShapeMismatch(f"lhs {tuple(lhs)} and rhs {tuple(rhs)} (transpose_a={p['transpose_a']}, transpose_b="
                            f"{p['transpose_b']}) contract {k} with {k2}")
    return in_shapes, [unify("output", out_shapes[0], (*lhs_kept, *rhs_kept) or (1,))]


def _matrix(t, contracted_first: bool, transposed: bool):
    """``t`` as the (1, rows, columns) view the product reads; ``contracted_first``: the
    contracted axis is t's first (else its last); ``transposed``: read it transposed."""
    if t is None:
        return None
    k = t.shape[0] if contracted_first else t.shape[-1]
    rest = math.prod(t.shape) // k if k else 0
    matrix = t.view(k, rest) if contracted_first else t.view(rest, k)
    return (matrix.t() if transposed else matrix).unsqueeze(0)


def _operands(p, lhs, rhs, out):
    """lhs as (1, M, K), rhs as (1, K, N), out as (1, M, N)."""
    a = _matrix(lhs, contracted_first=p["transpose_a"], transposed=p["transpose_a"])
    b = _matrix(rhs, contracted_first=not p["transpose_b"], transposed=p["transpose_b"])
    return a, b, out.view(1, a.shape[1], b.shape[2])


def _forward(a: ForwardArgs):
    lhs, rhs, out = _operands(a.params, a.inputs[0], a.inputs[1], a.outputs[0])
    return kernels.plan_batch_dot(lhs, rhs, out, precision=a.params["precision"])


def _backward(a: BackwardArgs):
    p = a.params
    lhs, rhs, grad_out = _operands(p, a.inputs[0], a.inputs[1], a.out_grads[0])
    # The gradients are laid out as their inputs: viewed the same way, and the product's
    # gradient rule reads them as op(lhs), op(rhs) with no transposes left.
    grad_lhs = _matrix(a.in_grads[0], contracted_first=p["transpose_a"], transposed=p["transpose_a"])
    grad_rhs = _matrix(a.in_grads[1], contracted_first=not p["transpose_b"], transposed=p["transpose_b"])
    return kernels.plan_batch_dot_backward(grad_out, lhs, rhs, grad_lhs, grad_rhs, accumulate_a=a.accumulate[0],
                                           accumulate_b=a.accumulate[1], precision=p["precision"])


register(OpDef(
    name="dot",
    doc="Matrix product contracting lhs's last axis (first, transposed) with rhs's first (last, transposed).",
    params=product_params(),
    input_names=("lhs", "rhs"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    # dot(x, x): lhs's gradient launched before rhs's, which adds (and reads neither)
    repeated_input_grads=True,
))
