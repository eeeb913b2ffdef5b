"""MXNet's ``_linalg_gelqf``: the LQ factorization ``A = L Q`` of m x n matrices (the last two
axes), m <= n and full rank, two outputs: Q (m x n, orthonormal rows) and L (m x m, lower
triangular), signed as LAPACK's (and MXNet's) Householder reflections sign them; also named
``linalg_gelqf``, reached as ``ts.sym.linalg.gelqf``. ``ops/linalg_householder.py``, in
float32 scratch for half-precision data.

The gradient is MXNet's: ``A' = L^-T (Q' + sym(M) Q)``, ``M = L^T L' - Q' Q^T``, sym the
symmetric matrix of M's lower triangle: the GEMM, the mirror kernel and a triangular solve.
"""

from __future__ import annotations

from ..ops import batch_dot as products
from ..ops import linalg_householder as kernels
from ..ops import linalg_solve as solve
from ..ops import linalg_triangle as triangle
from ..ops import memory
from .linalg_triangular import batched, transposed
from .registry import BackwardArgs, ForwardArgs, OpDef, ShapeMismatch, register, unify


def _shapes(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    if len(a) < 2 or a[-2] > a[-1]:
        raise ShapeMismatch(f"A {tuple(a)} must be m x n matrices on its last two axes with m <= n (an LQ "
                            "factorization)")
    m = a[-2]
    return in_shapes, [unify("output 0", out_shapes[0], tuple(a)), unify("output 1", out_shapes[1], (*a[:-1], m))]


def _forward(a: ForwardArgs):
    work, q_work = batched(a.temps["work"]), batched(a.temps["q"])
    m = work.shape[1]
    launches = memory.plan_copy(batched(a.inputs[0]), work)
    launches += kernels.plan_lq(work, q_work, a.temps["tau"].reshape(-1, m))
    launches += memory.plan_copy(q_work, batched(a.outputs[0]))
    return launches + triangle.plan_copy_triangle(work[:, :, :m], batched(a.outputs[1]))


def _backward(a: BackwardArgs):
    """A' = L^-T (Q' + sym(L^T L' - Q' Q^T) Q)."""
    grad = batched(a.in_grads[0])
    if grad is None:
        return []
    q, factor = batched(a.outputs[0]), batched(a.outputs[1])
    head_q, head_l = batched(a.out_grads[0]), batched(a.out_grads[1])
    m_work, mirrored, t = batched(a.temps["m"]), batched(a.temps["mirrored"]), batched(a.temps["t"])
    launches = products.plan_batch_dot(transposed(factor), head_l, m_work)
    launches += products.plan_batch_dot(head_q, transposed(q), m_work, accumulate=True, alpha=-1.0)
    launches += triangle.plan_copy_triangle(m_work, mirrored, mirror=True)
    launches += products.plan_batch_dot(mirrored, q, t)
    launches += memory.plan_copy(head_q, t, accumulate=True)
    if a.accumulate[0]:
        launches += solve.plan_solve(transposed(factor), t, t, upper=True)
        return launches + memory.plan_copy(t, grad, accumulate=True)
    return launches + solve.plan_solve(transposed(factor), t, grad, upper=True)


def _backward_temps(p, shapes, dtypes):
    a, dtype = tuple(shapes[0]), dtypes[0]
    square = (*a[:-1], a[-2])
    return {"m": (square, dtype), "mirrored": (square, dtype), "t": (a, dtype)}


register(OpDef(
    name="_linalg_gelqf",
    aliases=("linalg_gelqf",),
    doc="The LQ factorization A = L Q of m x n matrices (the last two axes), m <= n and full rank: Q (orthonormal "
        "rows) and L (lower triangular), by Householder reflections, signed as LAPACK's.",
    params=[],
    num_outputs=2,
    output_names=lambda p: ["output0", "output1"],
    input_names=("A",),
    infer_shape=_shapes,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), (0, 1)),
    forward_temps=lambda p, shapes, dtypes: {"work": (tuple(shapes[0]), kernels.compute_dtype(dtypes[0])),
                                             "q": (tuple(shapes[0]), kernels.compute_dtype(dtypes[0])),
                                             "tau": (tuple(shapes[0][:-1]), kernels.compute_dtype(dtypes[0]))},
    backward_temps=_backward_temps,
))
