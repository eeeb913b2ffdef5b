"""MXNet's ``_linalg_syevd``: the eigendecomposition of symmetric matrices (the last two axes,
read from their lower triangle), two outputs: U, whose rows are the orthonormal eigenvectors
(each signed so that its entry of largest magnitude is positive, as MXNet signs them), and
L, the eigenvalues ascending, so that ``U A = diag(L) U``; also named ``linalg_syevd``,
reached as ``ts.sym.linalg.syevd``. The cyclic Jacobi method (``ops/linalg_eigen.py``), in
float32 scratch for half-precision data.

The gradient is MXNet's: ``A' = U^T Y U`` with ``Y`` symmetric, ``Y[i, i] = L'[i]`` and
``Y[i, j] = (X[i, j] - X[j, i]) / (2 (L[i] - L[j]))`` below the diagonal, ``X = U' U^T``
(the gap floored at 1e-100, 1e-30 in float32): defined where the eigenvalues are distinct.
"""

from __future__ import annotations

import torch

from ..ops import batch_dot as products
from ..ops import linalg_eigen as kernels
from ..ops import linalg_triangle as triangle
from ..ops import memory
from .linalg_triangular import batched, transposed
from .registry import BackwardArgs, ForwardArgs, OpDef, ShapeMismatch, register, unify


def _shapes(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    if len(a) < 2 or a[-1] != a[-2]:
        raise ShapeMismatch(f"A {tuple(a)} must be square matrices on its last two axes")
    return in_shapes, [unify("output 0", out_shapes[0], tuple(a)), unify("output 1", out_shapes[1], tuple(a[:-1]))]


def _values(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, t.shape[-1])


def _forward(a: ForwardArgs):
    work, vectors = batched(a.temps["work"]), batched(a.temps["vectors"])
    launches = triangle.plan_copy_triangle(batched(a.inputs[0]), work, mirror=True)
    launches += memory.plan_fill(vectors, 0.0) + memory.plan_fill(torch.diagonal(vectors, 0, 1, 2), 1.0)
    return launches + kernels.plan_jacobi(work, vectors, batched(a.outputs[0]), _values(a.outputs[1]))


def _backward(a: BackwardArgs):
    """A' = U^T Y U, Y from X = U' U^T, the eigenvalues and their gradient."""
    grad = batched(a.in_grads[0])
    if grad is None:
        return []
    u, head = batched(a.outputs[0]), batched(a.out_grads[0])
    x, y = batched(a.temps["x"]), batched(a.temps["y"])
    launches = products.plan_batch_dot(head, transposed(u), x)
    launches += kernels.plan_gradient_middle(x, _values(a.outputs[1]), _values(a.out_grads[1]), y)
    launches += products.plan_batch_dot(transposed(u), y, x)  # X is spent: U^T Y goes there
    return launches + products.plan_batch_dot(x, u, grad, accumulate=a.accumulate[0])



register(OpDef(
    name="_linalg_syevd",
    aliases=("linalg_syevd",),
    doc="The eigendecomposition of symmetric matrices (the last two axes; read from their lower triangle): U, "
        "whose rows are the eigenvectors (each signed so that its entry of largest magnitude is positive), and "
        "the eigenvalues ascending, with U A = diag(L) U.",
    params=[],
    num_outputs=2,
    output_names=lambda p: ["output0", "output1"],
    input_names=("A",),
    infer_shape=_shapes,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), (0, 1)),
    forward_temps=lambda p, shapes, dtypes: {name: (tuple(shapes[0]), kernels.compute_dtype(dtypes[0]))
                                             for name in ("work", "vectors")},
    backward_temps=lambda p, shapes, dtypes: {name: (tuple(shapes[0]), dtypes[0]) for name in ("x", "y")},
))
