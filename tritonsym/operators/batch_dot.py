"""batch_dot (MXNet's): ``out[..., :, :] = op(lhs[..., :, :]) @ op(rhs[..., :, :])`` over the
leading (batch) axes of two arrays of one rank >= 3, op a transpose where ``transpose_a`` /
``transpose_b`` asks. One batched GEMM launch forward, one per gradient backward; transposes
are strides, never copies (``ops/batch_dot.py``), also a ``transpose`` next to it, which the
program makes a view (``OpDef.strided_inputs``)."""

from __future__ import annotations

from ..ops import batch_dot as kernels
from .fully_connected import PRECISION
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _matrices(p, lhs, rhs):
    """(M, K) of op(lhs) and (K', N) of op(rhs)."""
    m, k = (lhs[-1], lhs[-2]) if p["transpose_a"] else (lhs[-2], lhs[-1])
    k2, n = (rhs[-1], rhs[-2]) if p["transpose_b"] else (rhs[-2], rhs[-1])
    return m, k, k2, n


def _infer_shape(p, in_shapes, out_shapes):
    lhs, rhs = in_shapes
    if lhs is None or rhs is None:
        return in_shapes, out_shapes
    if len(lhs) < 3 or len(lhs) != len(rhs):
        raise ShapeMismatch(f"lhs {tuple(lhs)} and rhs {tuple(rhs)} must have one rank, at least 3 (batch..., rows, "
                            "columns)")
    m, k, k2, n = _matrices(p, lhs, rhs)
    batch = unify("the batch axes", tuple(lhs[:-2]), tuple(rhs[:-2]))
    if k and k2 and k != k2:
        raise ShapeMismatch(f"lhs {tuple(lhs)} and rhs {tuple(rhs)} (transpose_a={p['transpose_a']}, transpose_b="
                            f"{p['transpose_b']}) multiply {k} columns by {k2} rows")
    return in_shapes, [unify("output", out_shapes[0], (*batch, m, n))]


def as_3d(*tensors) -> list[tuple]:
    """The tensors (one batch shape; None stays None) as 3-d (batch, rows, columns) views: one
    tuple where each one's batch axes merge into one, else a tuple per index of the first
    batch axis, recursively (heads split by a transpose the program made a view: the
    (batch, heads) axes of a (batch, length, heads, width) array do not merge)."""
    try:
        return [tuple(None if t is None else t.view(-1, *t.shape[-2:]) for t in tensors)]
    except RuntimeError:
        return [part for i in range(next(t for t in tensors if t is not None).shape[0])
                for part in as_3d(*(None if t is None else t[i] for t in tensors))]


def _forward(a: ForwardArgs):
    p = a.params
    launches = []
    for lhs, rhs, out in as_3d(a.inputs[0], a.inputs[1], a.outputs[0]):
        lhs = lhs.transpose(1, 2) if p["transpose_a"] else lhs
        rhs = rhs.transpose(1, 2) if p["transpose_b"] else rhs
        launches += kernels.plan_batch_dot(lhs, rhs, out, precision=p["precision"])
    return launches


def _backward(a: BackwardArgs):
    p = a.params
    return [launch for grad_out, lhs, rhs, grad_lhs, grad_rhs in
            as_3d(a.out_grads[0], a.inputs[0], a.inputs[1], a.in_grads[0], a.in_grads[1])
            for launch in kernels.plan_batch_dot_backward(
                grad_out, lhs, rhs, grad_lhs, grad_rhs, transpose_a=p["transpose_a"], transpose_b=p["transpose_b"],
                accumulate_a=a.accumulate[0], accumulate_b=a.accumulate[1], precision=p["precision"])]


def product_params():
    """dot's and batch_dot's parameters (MXNet's, and FullyConnected's precision)."""
    return [
        Param("transpose_a", bool, False, doc="multiply by lhs transposed"),
        Param("transpose_b", bool, False, doc="multiply by rhs transposed"),
        Param("forward_stype", str, "None", choices=("None", "default"),
              doc="MXNet's storage-type hint; only dense ('default') storage here"),
        PRECISION,
    ]


register(OpDef(
    name="batch_dot",
    doc="Batched matrix product over the leading axes: op(lhs) @ op(rhs).",
    params=product_params(),
    input_names=("lhs", "rhs"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    # batch_dot(x, x): lhs's gradient launched before rhs's, which adds (and reads neither)
    repeated_input_grads=True,
    # The kernel takes any strides: heads split or merged by a transpose cost nothing (batch
    # axes that do not merge take a launch per index of the first).
    strided_inputs=lambda p: (0, 1),
    strided_outputs=lambda p: (0,),
))
