"""MXNet's products and solves with triangular matrices: ``_linalg_trmm`` (``alpha op(A) B``,
or ``alpha B op(A)`` with ``rightside``) and ``_linalg_trsm`` (the X of ``op(A) X = alpha B``,
or of ``X op(A) = alpha B``), A lower triangular (upper with ``lower=False``), op a
transpose where ``transpose`` asks; also named ``linalg_<name>``, reached as
``ts.sym.linalg.<name>``. Only A's triangle is read, so its gradient is that triangle's.

trmm copies A's triangle (zero elsewhere) into a scratch matrix and multiplies on the
batched GEMM (``ops/batch_dot.py``); trsm runs the triangular solve (``ops/linalg_solve.py``).
Every orientation is a view: an upper A is the transpose of a lower one, a right-hand
solve ``X M = B`` is ``M^T X^T = B^T``. Gradients, with G the output's:

- trmm, out = alpha M B (M = op(A)): B' = alpha M^T G, M' = alpha G B^T; out = alpha B M:
  B' = alpha G M^T, M' = alpha B^T G.
- trsm, M X = alpha B: Y solves M^T Y = G, B' = alpha Y, M' = -Y X^T; X M = alpha B: Y
  solves Y M^T = G, B' = alpha Y, M' = -X^T Y.

A' is M' (transposed back where op transposed), kept on A's triangle. Scratch matrices
have the data's dtype (the GEMM and the solve take one dtype): half-precision data rounds
the gradients' intermediate products once more.
"""

from __future__ import annotations

import torch

from ..ops import batch_dot as products
from ..ops import linalg_solve as solve
from ..ops import linalg_triangle as triangle
from ..ops import memory
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def batched(t: torch.Tensor | None) -> torch.Tensor | None:
    """(batch, rows, columns) view of matrices on the last two axes."""
    return None if t is None else t.reshape(-1, *t.shape[-2:])


def transposed(t: torch.Tensor, flag: bool = True) -> torch.Tensor:
    return t.transpose(1, 2) if flag else t


def keep_triangle(full: torch.Tensor, grad: torch.Tensor, lower: bool, accumulate: bool, scale: float = 1.0):
    """grad (+)= scale times full's lower (or upper) triangle, zero elsewhere."""
    return triangle.plan_copy_triangle(transposed(full, not lower), transposed(grad, not lower), scale=scale,
                                       accumulate=accumulate)


def _params():
    return [Param("transpose", bool, False, doc="use A transposed"),
            Param("rightside", bool, False, doc="A on the right: B op(A)"),
            Param("lower", bool, True, doc="A is lower triangular (else upper)"),
            Param("alpha", float, 1.0, doc="the result's factor")]


def _shapes(p, in_shapes, out_shapes):
    a, b = in_shapes
    if a is None or b is None:
        return in_shapes, out_shapes
    if len(a) < 2 or a[-1] != a[-2] or len(b) != len(a):
        raise ShapeMismatch(f"A {tuple(a)} must be square matrices on its last two axes and B {tuple(b)} of its "
                            "rank")
    unify("the batch axes", tuple(a[:-2]), tuple(b[:-2]))
    side = b[-1] if p["rightside"] else b[-2]
    if a[-1] and side and a[-1] != side:
        side_name, axis_name = ("right", "columns") if p["rightside"] else ("left", "rows")
        raise ShapeMismatch(f"A {tuple(a)} cannot multiply B {tuple(b)} from the {side_name}: B's {axis_name} must "
                            f"number {a[-1]}")
    return in_shapes, [unify("output", out_shapes[0], tuple(b))]


def _op_a(p, a: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """M = op(A) as a view, and whether M is upper triangular."""
    return transposed(a, p["transpose"]), p["lower"] == p["transpose"]


def _scratch(p, shapes, dtypes, *names):
    sizes = {"triangle": (shapes[0], dtypes[0]), "full": (shapes[0], dtypes[0]), "solved": (shapes[1], dtypes[0])}
    return {name: sizes[name] for name in names}


def _trmm_triangle(p, a, temps) -> list:
    """temps['triangle'] = A's triangle, zero elsewhere."""
    return keep_triangle(a, batched(temps["triangle"]), p["lower"], accumulate=False)


def _trmm_forward(a: ForwardArgs):
    p = a.params
    launches = _trmm_triangle(p, batched(a.inputs[0]), a.temps)
    m, _ = _op_a(p, batched(a.temps["triangle"]))
    b, out = batched(a.inputs[1]), batched(a.outputs[0])
    operands = (b, m) if p["rightside"] else (m, b)
    return launches + products.plan_batch_dot(*operands, out, alpha=p["alpha"])


def _trmm_backward(a: BackwardArgs):
    p = a.params
    g, b = batched(a.out_grads[0]), batched(a.inputs[1])
    grad_a, grad_b = batched(a.in_grads[0]), batched(a.in_grads[1])
    launches = []
    if grad_b is not None:
        launches += _trmm_triangle(p, batched(a.inputs[0]), a.temps)
        m, _ = _op_a(p, batched(a.temps["triangle"]))
        operands = (g, transposed(m)) if p["rightside"] else (transposed(m), g)
        launches += products.plan_batch_dot(*operands, grad_b, accumulate=a.accumulate[1], alpha=p["alpha"])
    if grad_a is not None:
        full = batched(a.temps["full"])
        operands = (transposed(b), g) if p["rightside"] else (g, transposed(b))
        launches += products.plan_batch_dot(*operands, transposed(full, p["transpose"]), alpha=p["alpha"])
        launches += keep_triangle(full, grad_a, p["lower"], a.accumulate[0])
    return launches


register(OpDef(
    name="_linalg_trmm",
    aliases=("linalg_trmm",),
    doc="alpha op(A) @ B (alpha B @ op(A) with rightside) for triangular A (only its triangle read).",
    params=_params(),
    input_names=("A", "B"),
    infer_shape=_shapes,
    forward=_trmm_forward,
    backward=_trmm_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    forward_temps=lambda p, shapes, dtypes: _scratch(p, shapes, dtypes, "triangle"),
    backward_temps=lambda p, shapes, dtypes: _scratch(p, shapes, dtypes, "triangle", "full"),
))


def plan_triangular_solve(m: torch.Tensor, upper: bool, b: torch.Tensor, x: torch.Tensor, rightside: bool,
                          alpha: float = 1.0) -> list:
    """x = alpha m^-1 b, or with ``rightside`` alpha b m^-1 (as m^T x^T = alpha b^T)."""
    if rightside:
        return solve.plan_solve(transposed(m), transposed(b), transposed(x), upper=not upper, alpha=alpha)
    return solve.plan_solve(m, b, x, upper=upper, alpha=alpha)


def _trsm_forward(a: ForwardArgs):
    p = a.params
    m, upper = _op_a(p, batched(a.inputs[0]))
    return plan_triangular_solve(m, upper, batched(a.inputs[1]), batched(a.outputs[0]), p["rightside"], p["alpha"])


def _trsm_backward(a: BackwardArgs):
    p = a.params
    m, upper = _op_a(p, batched(a.inputs[0]))
    g, x = batched(a.out_grads[0]), batched(a.outputs[0])
    grad_a, grad_b = batched(a.in_grads[0]), batched(a.in_grads[1])
    y = batched(a.temps["solved"])
    # Y solves M^T Y = G (Y M^T = G on the right): M^T is upper where M is lower.
    launches = plan_triangular_solve(transposed(m), not upper, g, y, p["rightside"])
    if grad_b is not None:
        launches += memory.plan_copy(y, grad_b, accumulate=a.accumulate[1], scale=p["alpha"])
    if grad_a is not None:
        full = batched(a.temps["full"])
        operands = (transposed(x), y) if p["rightside"] else (y, transposed(x))
        launches += products.plan_batch_dot(*operands, transposed(full, p["transpose"]), alpha=-1.0)
        launches += keep_triangle(full, grad_a, p["lower"], a.accumulate[0])
    return launches


register(OpDef(
    name="_linalg_trsm",
    aliases=("linalg_trsm",),
    doc="The X of op(A) @ X = alpha B (X @ op(A) = alpha B with rightside) for triangular A (only its triangle "
        "read): a triangular solve.",
    params=_params(),
    input_names=("A", "B"),
    infer_shape=_shapes,
    forward=_trsm_forward,
    backward=_trsm_backward,
    backward_needs=lambda p, epilogue: ((0,), (0,)),
    backward_temps=lambda p, shapes, dtypes: _scratch(p, shapes, dtypes, "solved", "full"),
))
