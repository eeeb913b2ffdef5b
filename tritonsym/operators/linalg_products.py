"""MXNet's linalg matrix products on tritonsym's batched GEMM (``ops/batch_dot.py``):
``_linalg_gemm2`` (``alpha op(A) op(B)``), ``_linalg_gemm`` (``alpha op(A) op(B) + beta C``)
and ``_linalg_syrk`` (``alpha A A^T`` or ``alpha A^T A``), each also named ``linalg_<name>``
and reached as ``ts.sym.linalg.<name>``.

The matrices are the trailing two axes, or for gemm/gemm2 the rows on ``axis`` and the
columns on the last axis: the row axis is moved next to the last by a view (no copy), and
the other axes are the batch. alpha multiplies in the GEMM's epilogue (rounded to the
output's compute type, as BLAS takes it); gemm writes ``beta C`` into its output first and
adds the product to it (not in C's place: C may also be A or B, read after). Every dtype
(MXNet: float32 and float64 only).
"""

from __future__ import annotations

from ..ops import batch_dot as kernels
from ..ops import elementwise as elementwise_kernels
from .batch_dot import as_3d
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _row_axis(p, rank: int) -> int:
    axis = p.get("axis", -2)
    axis += rank if axis < 0 else 0
    if not 0 <= axis < rank - 1:
        raise ShapeMismatch(f"axis={p.get('axis', -2)} is not a row axis of rank-{rank} matrices: it must be in "
                            f"[{-rank}, {rank - 2}] and not the last (the columns' axis)")
    return axis


def _matrices(p, t):
    """t with its row axis moved next to its columns' (a view): (batch..., rows, columns)."""
    return None if t is None else t.movedim(_row_axis(p, t.dim()), -2)


def _products_shape(p, a, b):
    """The output shape of op(a) @ op(b) (rows on ``axis``), or raise."""
    if len(a) < 2 or len(a) != len(b):
        raise ShapeMismatch(f"A {tuple(a)} and B {tuple(b)} must have one rank, at least 2")
    axis = _row_axis(p, len(a))

    def moved(shape):
        shape = list(shape)
        return [*shape[:axis], *shape[axis + 1:-1]], shape[axis], shape[-1]

    (batch_a, rows_a, cols_a), (batch_b, rows_b, cols_b) = moved(a), moved(b)
    m, k = (cols_a, rows_a) if p["transpose_a"] else (rows_a, cols_a)
    k2, n = (cols_b, rows_b) if p["transpose_b"] else (rows_b, cols_b)
    batch = unify("the batch axes", tuple(batch_a), tuple(batch_b))
    if k and k2 and k != k2:
        raise ShapeMismatch(f"A {tuple(a)} and B {tuple(b)} (transpose_a={p['transpose_a']}, transpose_b="
                            f"{p['transpose_b']}, axis={p.get('axis', -2)}) multiply {k} columns by {k2} rows")
    batch = list(batch)
    return (*batch[:axis], m, *batch[axis:], n)


def _gemm_shapes(p, in_shapes, out_shapes):
    a, b = in_shapes[:2]
    if a is None or b is None:
        return in_shapes, out_shapes
    out = unify("output", out_shapes[0], _products_shape(p, a, b))
    if len(in_shapes) == 3:  # gemm's C has the output's shape
        out = unify("C", in_shapes[2], out)
        return [a, b, out], [out]
    return in_shapes, [out]


def _op(t, transposed: bool):
    return t.transpose(1, 2) if transposed else t


def _product_launches(p, a, b, out, *, accumulate=False):
    launches = []
    for lhs, rhs, chunk in as_3d(_matrices(p, a), _matrices(p, b), _matrices(p, out)):
        launches += kernels.plan_batch_dot(_op(lhs, p["transpose_a"]), _op(rhs, p["transpose_b"]), chunk,
                                           accumulate=accumulate, alpha=p["alpha"])
    return launches


def _product_gradients(a: BackwardArgs):
    p = a.params
    return [launch for grad_out, lhs, rhs, grad_lhs, grad_rhs in as_3d(
                *(_matrices(p, t) for t in (a.out_grads[0], a.inputs[0], a.inputs[1], a.in_grads[0], a.in_grads[1])))
            for launch in kernels.plan_batch_dot_backward(
                grad_out, lhs, rhs, grad_lhs, grad_rhs, transpose_a=p["transpose_a"], transpose_b=p["transpose_b"],
                accumulate_a=a.accumulate[0], accumulate_b=a.accumulate[1], alpha=p["alpha"])]


def _gemm_forward(a: ForwardArgs):
    p, out = a.params, a.outputs[0]
    scaled = elementwise_kernels.plan_scalar_forward("mul", a.inputs[2], p["beta"], out)
    return scaled + _product_launches(p, a.inputs[0], a.inputs[1], out, accumulate=True)


def _gemm_backward(a: BackwardArgs):
    launches = _product_gradients(a)
    if a.in_grads[2] is not None:
        launches += elementwise_kernels.plan_scalar_backward("mul", a.out_grads[0], None, None, a.in_grads[2],
                                                             a.params["beta"], a.accumulate[2])
    return launches


def _product_params():
    return [Param("transpose_a", bool, False, doc="multiply by A transposed"),
            Param("transpose_b", bool, False, doc="multiply by B transposed"),
            Param("alpha", float, 1.0, doc="the product's factor")]


_AXIS = Param("axis", int, -2, doc="the axis of the matrices' rows (their columns are the last axis)")
_COMMON = dict(
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    # gemm2(x, x): A's gradient launched before B's, which adds (and reads neither)
    repeated_input_grads=True,
)

register(OpDef(
    name="_linalg_gemm2",
    aliases=("linalg_gemm2",),
    doc="alpha op(A) @ op(B) over a batch of matrices (BLAS gemm).",
    params=[*_product_params(), _AXIS],
    input_names=("A", "B"),
    infer_shape=_gemm_shapes,
    forward=lambda a: _product_launches(a.params, a.inputs[0], a.inputs[1], a.outputs[0]),
    backward=_product_gradients,
    **_COMMON,
))

register(OpDef(
    name="_linalg_gemm",
    aliases=("linalg_gemm",),
    doc="alpha op(A) @ op(B) + beta C over a batch of matrices (BLAS gemm).",
    params=[*_product_params(), Param("beta", float, 1.0, doc="C's factor"), _AXIS],
    input_names=("A", "B", "C"),
    infer_shape=_gemm_shapes,
    forward=_gemm_forward,
    backward=_gemm_backward,
    **_COMMON,
))


def _syrk_shape(p, in_shapes, out_shapes):
    (a,) = in_shapes
    if a is None:
        return in_shapes, out_shapes
    if len(a) < 2:
        raise ShapeMismatch(f"A {tuple(a)} must have at least 2 axes (batch..., rows, columns)")
    m = a[-1] if p["transpose"] else a[-2]
    return in_shapes, [unify("output", out_shapes[0], (*a[:-2], m, m))]


def _syrk_forward(a: ForwardArgs):
    p = a.params
    return [launch for x, out in as_3d(a.inputs[0], a.outputs[0])
            for launch in kernels.plan_batch_dot(_op(x, p["transpose"]), _op(x, not p["transpose"]), out,
                                                 alpha=p["alpha"])]


def _syrk_backward(a: BackwardArgs):
    """out = alpha A A^T: A' = alpha (G + G^T) A; out = alpha A^T A: A' = alpha A (G + G^T),
    as two launches, the second adding."""
    p = a.params
    launches = []
    if a.in_grads[0] is None:
        return launches
    for grad_out, x, grad_x in as_3d(a.out_grads[0], a.inputs[0], a.in_grads[0]):
        for second, g in enumerate((grad_out, grad_out.transpose(1, 2))):
            operands = (x, g) if p["transpose"] else (g, x)
            launches += kernels.plan_batch_dot(*operands, grad_x, accumulate=bool(second) or a.accumulate[0],
                                               alpha=p["alpha"])
    return launches


register(OpDef(
    name="_linalg_syrk",
    aliases=("linalg_syrk",),
    doc="alpha A @ A^T (alpha A^T @ A with transpose) over a batch of matrices (BLAS syrk).",
    params=[Param("transpose", bool, False, doc="A^T @ A instead of A @ A^T"),
            Param("alpha", float, 1.0, doc="the product's factor")],
    input_names=("A",),
    infer_shape=_syrk_shape,
    forward=_syrk_forward,
    backward=_syrk_backward,
    backward_needs=lambda p, epilogue: ((0,), ()),
))
