"""MXNet's Cholesky operators: ``_linalg_potrf`` (the Cholesky factor L of a symmetric
positive-definite A, ``A = L L^T``, from A's lower triangle; ``lower=False``: the upper U
with ``A = U^T U``, from A's upper triangle) and ``_linalg_potri`` (``(L L^T)^-1`` from the
factor L, ``(U^T U)^-1`` from an upper U); also named ``linalg_<name>``, reached as
``ts.sym.linalg.<name>``. An upper factor is the transpose of a lower one: every step runs
on lower-triangular views.

potrf runs the Cholesky kernel (``ops/linalg_cholesky.py``; a matrix that is not positive
definite comes out NaN, where MXNet raises). Its gradient is MXNet's symmetric one,
``A' = 0.5 L^-T sym(L^T L') L^-1`` with sym the symmetric matrix of a lower triangle (the
derivative for symmetric perturbations of A, which a symmetric A's are), by the GEMM, the
mirror kernel and two triangular solves. potri inverts L by a solve against the identity
(M = L^-1) and multiplies ``M^T M``; its gradient is ``L' = -tril(P (G + G^T) M^T)`` with
P the output and G the head gradient (MXNet 1.9.1's, for any G).
"""

from __future__ import annotations

import torch

from ..ops import batch_dot as products
from ..ops import linalg_cholesky as kernels
from ..ops import linalg_solve as solve
from ..ops import linalg_triangle as triangle
from ..ops import memory
from .linalg_triangular import batched, transposed
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

_LOWER = Param("lower", bool, True, doc="the lower factor (else the upper: A = U^T U)")


def _square(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    if len(a) < 2 or a[-1] != a[-2]:
        raise ShapeMismatch(f"A {tuple(a)} must be square matrices on its last two axes")
    return in_shapes, [unify("output", out_shapes[0], tuple(a))]


def _lower_view(p, t: torch.Tensor | None) -> torch.Tensor | None:
    """(batch, n, n) view of t in which the factor is lower triangular."""
    return None if t is None else transposed(batched(t), not p["lower"])


def _scratch(shapes, dtypes, *names):
    return {name: (shapes[0], dtypes[0]) for name in names}


def _potrf_backward(a: BackwardArgs):
    """A' = 0.5 L^-T sym(L^T L') L^-1, all on lower views."""
    grad = _lower_view(a.params, a.in_grads[0])
    if grad is None:
        return []
    factor, head = _lower_view(a.params, a.outputs[0]), _lower_view(a.params, a.out_grads[0])
    work, mirrored = (_lower_view(a.params, a.temps[name]) for name in ("work", "mirrored"))
    launches = products.plan_batch_dot(transposed(factor), head, work)
    launches += triangle.plan_copy_triangle(work, mirrored, mirror=True)
    launches += solve.plan_solve(transposed(factor), mirrored, mirrored, upper=True)  # L^-T S
    # (L^-T S) L^-1 solves X L = 0.5 L^-T S, that is L^T X^T = 0.5 (L^-T S)^T
    target = mirrored if a.accumulate[0] else grad
    launches += solve.plan_solve(transposed(factor), transposed(mirrored), transposed(target), upper=True,
                                 alpha=0.5)
    if a.accumulate[0]:
        launches += memory.plan_copy(mirrored, grad, accumulate=True)
    return launches


register(OpDef(
    name="_linalg_potrf",
    aliases=("linalg_potrf",),
    doc="The Cholesky factor of symmetric positive-definite matrices (the last two axes): lower L with A = L L^T "
        "(upper U with A = U^T U where lower=False), read from that triangle of A; NaN where A is not positive "
        "definite.",
    params=[_LOWER],
    input_names=("A",),
    infer_shape=_square,
    forward=lambda a: kernels.plan_cholesky(_lower_view(a.params, a.inputs[0]), _lower_view(a.params, a.outputs[0])),
    backward=_potrf_backward,
    backward_needs=lambda p, epilogue: ((), (0,)),
    inplace=lambda p: [(0, 0)],  # the kernel reads each column of A before writing L's
    backward_temps=lambda p, shapes, dtypes: _scratch(shapes, dtypes, "work", "mirrored"),
))


def _inverse_factor(factor: torch.Tensor, inverse: torch.Tensor) -> list:
    """inverse = factor^-1 of lower-triangular matrices: a solve against the identity."""
    return (memory.plan_fill(inverse, 0.0) + memory.plan_fill(torch.diagonal(inverse, 0, 1, 2), 1.0)
            + solve.plan_solve(factor, inverse, inverse, upper=False))


def _potri_forward(a: ForwardArgs):
    factor, inverse = _lower_view(a.params, a.inputs[0]), _lower_view(a.params, a.temps["inverse"])
    # (L L^T)^-1 = M^T M: symmetric, so the output needs no view
    return _inverse_factor(factor, inverse) + products.plan_batch_dot(transposed(inverse), inverse,
                                                                      batched(a.outputs[0]))


def _potri_backward(a: BackwardArgs):
    """L' = -tril(P (G + G^T) M^T), M = L^-1, P the output."""
    grad = _lower_view(a.params, a.in_grads[0])
    if grad is None:
        return []
    factor, inverse = _lower_view(a.params, a.inputs[0]), _lower_view(a.params, a.temps["inverse"])
    out, head = batched(a.outputs[0]), batched(a.out_grads[0])  # (an upper U's gradient: L's, through the view)
    work, full = batched(a.temps["work"]), batched(a.temps["full"])
    launches = _inverse_factor(factor, inverse)
    launches += products.plan_batch_dot(out, head, work)
    launches += products.plan_batch_dot(out, transposed(head), work, accumulate=True)
    launches += products.plan_batch_dot(work, transposed(inverse), full)
    return launches + triangle.plan_copy_triangle(full, grad, scale=-1.0, accumulate=a.accumulate[0])


register(OpDef(
    name="_linalg_potri",
    aliases=("linalg_potri",),
    doc="(L L^T)^-1 from lower-triangular Cholesky factors L (the last two axes; (U^T U)^-1 from upper ones where "
        "lower=False), reading only that triangle: the inverse of the matrix potrf factored.",
    params=[_LOWER],
    input_names=("A",),
    infer_shape=_square,
    forward=_potri_forward,
    backward=_potri_backward,
    backward_needs=lambda p, epilogue: ((0,), (0,)),
    forward_temps=lambda p, shapes, dtypes: _scratch(shapes, dtypes, "inverse"),
    backward_temps=lambda p, shapes, dtypes: _scratch(shapes, dtypes, "inverse", "work", "full"),
))
