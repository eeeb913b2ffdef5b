"""MXNet's ``_linalg_inverse``, ``_linalg_det`` and ``_linalg_slogdet`` of square matrices (the
last two axes), on an LU factorization with partial pivoting (``ops/linalg_lu.py``) into a
scratch matrix (float32 for half-precision data); also named ``linalg_<name>``, reached as
``ts.sym.linalg.<name>``.

The inverse solves ``L U X = P``: the identity's rows swapped with A's, then the unit lower
and the upper triangular solves (``ops/linalg_solve.py``). The determinant is the product
of U's diagonal times the swaps' sign; slogdet gives that sign and ``log |det|`` (shape
(1,) each for one matrix, as MXNet's). Gradients: the inverse's ``A' = -X^T G X^T``; the
determinant's ``A' = g det A^-T``; slogdet's ``A' = g A^-T`` (its sign has none). A singular
matrix has no inverse: its inverse and those gradients come out infinite or NaN, where
MXNet raises (inverse) or answers 0 (the gradients; the derivative of det there is the
adjugate, not 0 when the rank is n - 1).
"""

from __future__ import annotations

import torch

from ..ops import batch_dot as products
from ..ops import linalg_lu as kernels
from ..ops import linalg_solve as solve
from ..ops import memory
from .linalg_triangular import batched, transposed
from .registry import BackwardArgs, ForwardArgs, OpDef, ShapeMismatch, register, unify


def _square(a) -> None:
    if len(a) < 2 or a[-1] != a[-2]:
        raise ShapeMismatch(f"A {tuple(a)} must be square matrices on its last two axes")


def _inverse_shape(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    _square(a)
    return in_shapes, [unify("output", out_shapes[0], tuple(a))]


def _determinant_shape(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    _square(a)
    shape = tuple(a[:-2]) or (1,)
    return in_shapes, [unify(f"output {i}", known, shape) for i, known in enumerate(out_shapes)]


def _factor_temps(shapes, dtypes, inverse: bool = False):
    a, compute = shapes[0], kernels.compute_dtype(dtypes[0])
    batch = tuple(a[:-2]) or (1,)
    temps = {"lu": (tuple(a), compute), "sign": (batch, compute)}
    if inverse:
        temps["inverse"] = (tuple(a), compute)
    return temps


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1)


def _factor(a: torch.Tensor, temps: dict, inverse: torch.Tensor | None = None) -> list:
    """temps['lu'] and ['sign'] = A's factors; ``inverse`` (batch, n, n), when given, = A^-1."""
    lu, sign = batched(temps["lu"]), _flat(temps["sign"])
    launches = memory.plan_copy(batched(a), lu)
    if inverse is None:
        return launches + kernels.plan_lu(lu, sign)
    launches += memory.plan_fill(inverse, 0.0) + memory.plan_fill(torch.diagonal(inverse, 0, 1, 2), 1.0)
    launches += kernels.plan_lu(lu, sign, inverse)
    return (launches + solve.plan_solve(lu, inverse, inverse, upper=False, unit=True)
            + solve.plan_solve(lu, inverse, inverse, upper=True))


def _inverse_forward(a: ForwardArgs):
    out = batched(a.outputs[0])
    if out.dtype == a.temps["lu"].dtype:
        return _factor(a.inputs[0], a.temps, out)
    inverse = batched(a.temps["inverse"])  # half precision: solved in float32, rounded once
    return _factor(a.inputs[0], a.temps, inverse) + memory.plan_copy(inverse, out)


def _inverse_backward(a: BackwardArgs):
    """A' = -X^T G X^T: (X^T G) into scratch, then times -X^T."""
    grad = batched(a.in_grads[0])
    if grad is None:
        return []
    x, g, work = batched(a.outputs[0]), batched(a.out_grads[0]), batched(a.temps["work"])
    launches = products.plan_batch_dot(transposed(x), g, work)
    return launches + products.plan_batch_dot(work, transposed(x), grad, accumulate=a.accumulate[0], alpha=-1.0)


register(OpDef(
    name="_linalg_inverse",
    aliases=("linalg_inverse",),
    doc="The inverse of square matrices (the last two axes), by LU with partial pivoting; infinite or NaN where "
        "a matrix is singular.",
    params=[],
    input_names=("A",),
    infer_shape=_inverse_shape,
    forward=_inverse_forward,
    backward=_inverse_backward,
    backward_needs=lambda p, epilogue: ((), (0,)),
    # half precision solves in float32 scratch, rounded once into the output
    forward_temps=lambda p, shapes, dtypes: _factor_temps(shapes, dtypes,
                                                          inverse=dtypes[0] != kernels.compute_dtype(dtypes[0])),
    backward_temps=lambda p, shapes, dtypes: {"work": (tuple(shapes[0]), dtypes[0])},
))


def _determinant_backward(logarithm: bool):
    def backward(a: BackwardArgs):
        """A' = g det A^-T (det), g A^-T (slogdet's log |det|)."""
        grad = batched(a.in_grads[0])
        if grad is None:
            return []
        inverse = batched(a.temps["inverse"])
        launches = _factor(a.inputs[0], a.temps, inverse)
        head = _flat(a.out_grads[1] if logarithm else a.out_grads[0])
        return launches + kernels.plan_scale_matrices(
            transposed(inverse), head, grad, second=None if logarithm else _flat(a.outputs[0]),
            accumulate=a.accumulate[0])
    return backward


def _det_forward(a: ForwardArgs):
    return _factor(a.inputs[0], a.temps) + kernels.plan_determinant(
        batched(a.temps["lu"]), _flat(a.temps["sign"]), _flat(a.outputs[0]))


def _slogdet_forward(a: ForwardArgs):
    return _factor(a.inputs[0], a.temps) + kernels.plan_determinant(
        batched(a.temps["lu"]), _flat(a.temps["sign"]), _flat(a.outputs[0]), _flat(a.outputs[1]))


register(OpDef(
    name="_linalg_det",
    aliases=("linalg_det",),
    doc="The determinant of square matrices (the last two axes; shape (1,) for one matrix), by LU with partial "
        "pivoting.",
    params=[],
    input_names=("A",),
    output_names=lambda p: ["output0"],  # as MXNet names it (its det keeps its LU factors as hidden outputs)
    infer_shape=_determinant_shape,
    forward=_det_forward,
    backward=_determinant_backward(logarithm=False),
    backward_needs=lambda p, epilogue: ((0,), (0,)),
    forward_temps=lambda p, shapes, dtypes: _factor_temps(shapes, dtypes),
    backward_temps=lambda p, shapes, dtypes: _factor_temps(shapes, dtypes, inverse=True),
))

register(OpDef(
    name="_linalg_slogdet",
    aliases=("linalg_slogdet",),
    doc="The sign and the log-magnitude of the determinant of square matrices (the last two axes; shape (1,) "
        "each for one matrix): (sign, log |det|), the sign 0 and the logarithm -inf where a matrix is singular.",
    params=[],
    num_outputs=2,
    output_names=lambda p: ["output0", "output1"],
    input_names=("A",),
    infer_shape=_determinant_shape,
    forward=_slogdet_forward,
    backward=_determinant_backward(logarithm=True),
    backward_needs=lambda p, epilogue: ((0,), ()),
    forward_temps=lambda p, shapes, dtypes: _factor_temps(shapes, dtypes),
    backward_temps=lambda p, shapes, dtypes: _factor_temps(shapes, dtypes, inverse=True),
))
