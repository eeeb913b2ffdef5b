"""MXNet's interleaved attention products (``ts.sym.contrib.interleaved_matmul_*``), the four
products with which GluonNLP's exported BERT and transformer models compute attention from
one projection of every position:

- ``_contrib_interleaved_matmul_selfatt_qk(queries_keys_values, heads)``: the input
  (seq, batch, heads * 3 * head_dim) holds each head's query, key and value side by side;
  out (batch * heads, seq, seq) = q @ k^T / sqrt(head_dim);
- ``_contrib_interleaved_matmul_selfatt_valatt(queries_keys_values, attention, heads)``:
  out (seq, batch, heads * head_dim) = attention @ v, the heads merged back;
- ``_contrib_interleaved_matmul_encdec_qk(queries, keys_values, heads)``: queries
  (seq_q, batch, heads * head_dim), keys and values (seq_k, batch, heads * 2 * head_dim);
  out (batch * heads, seq_q, seq_k) = q @ k^T / sqrt(head_dim);
- ``_contrib_interleaved_matmul_encdec_valatt(keys_values, attention, heads)``:
  out (seq_q, batch, heads * head_dim) = attention @ v.

Each head's slice is a strided view of its input (the batch and head axes merge into one
batch axis of stride ``parts * head_dim``), so every product is one launch of batch_dot's
GEMM kernel reading and writing in place, and each gradient one more: no copy and no
memory beyond the output, either way. The slices an operator does not read (the values of
a qk product, the queries and keys of a valatt one) get a gradient of 0, as in MXNet.

MXNet 1.9.1 runs these in float32 only on the CPU and reads a last axis that is not a
multiple of ``parts * heads`` without a word; here every float dtype runs and such a shape
is refused by name."""

from __future__ import annotations

import math

from ..ops import batch_dot as kernels
from ..ops import memory
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify


def _heads_param():
    return [Param("heads", int, doc="how many attention heads the last axis holds", check=positive)]


def _head_width(op: str, name: str, shape, heads: int, parts: int) -> int:
    """head_dim of a (seq, batch, heads * parts * head_dim) input, refused by name otherwise."""
    if len(shape) != 3:
        raise ShapeMismatch(f"{op}: {name} must be 3-d (seq, batch, heads * {parts} * head_dim), got shape "
                            f"{tuple(shape)}")
    if shape[2] % (heads * parts) or not shape[2]:
        raise ShapeMismatch(f"{op}: the last axis of {name} {tuple(shape)} must hold heads={heads} x {parts} "
                            f"slices of one width, but {shape[2]} is not a positive multiple of {heads * parts}")
    return shape[2] // (heads * parts)


def _heads(t, heads: int, parts: int, part: int):
    """Slice ``part`` of every head of a (seq, batch, heads * parts * width) array as a
    (batch * heads, seq, width) view (the batch and head axes merge: batch's stride is heads
    times the head's)."""
    seq, batch, _ = t.shape
    width = t.shape[2] // (heads * parts)
    return t.view(seq, batch, heads, parts, width)[:, :, :, part].permute(1, 2, 0, 3).reshape(
        batch * heads, seq, width)


def _zero_other_parts(t, heads: int, parts: int, written: tuple[int, ...], accumulate: bool) -> list:
    """A gradient of 0 for the slices of ``t`` this product does not read (nothing to add)."""
    if accumulate:
        return []
    return [launch for part in range(parts) if part not in written
            for launch in memory.plan_fill(_heads(t, heads, parts, part), 0.0)]


# ----------------------------------------------------------------------------- q @ k^T


def _qk_rule(self_attention: bool):
    op = "_contrib_interleaved_matmul_" + ("selfatt_qk" if self_attention else "encdec_qk")

    def infer_shape(p, in_shapes, out_shapes):
        heads = p["heads"]
        if self_attention:
            (qkv,) = in_shapes
            if qkv is None:
                return in_shapes, out_shapes
            _head_width(op, "queries_keys_values", qkv, heads, 3)
            return in_shapes, [unify("output", out_shapes[0], (qkv[1] * heads, qkv[0], qkv[0]))]
        queries, keys_values = in_shapes
        if queries is None or keys_values is None:
            return in_shapes, out_shapes
        width = _head_width(op, "queries", queries, heads, 1)
        if _head_width(op, "keys_values", keys_values, heads, 2) != width or queries[1] != keys_values[1]:
            raise ShapeMismatch(f"{op}: queries {tuple(queries)} (seq_q, batch, heads * head_dim) and keys_values "
                                f"{tuple(keys_values)} (seq_k, batch, heads * 2 * head_dim) disagree in batch or "
                                f"head_dim (heads={heads})")
        return in_shapes, [unify("output", out_shapes[0], (queries[1] * heads, queries[0], keys_values[0]))]

    def operands(p, inputs):
        """(queries, keys) as (batch * heads, seq, head_dim) views, and where each lies."""
        heads = p["heads"]
        if self_attention:
            return _heads(inputs[0], heads, 3, 0), _heads(inputs[0], heads, 3, 1)
        return _heads(inputs[0], heads, 1, 0), _heads(inputs[1], heads, 2, 0)

    def scale(q) -> float:
        return 1.0 / math.sqrt(q.shape[2])

    def forward(a: ForwardArgs):
        q, k = operands(a.params, a.inputs)
        return kernels.plan_batch_dot(q, k.transpose(1, 2), a.outputs[0], alpha=scale(q))

    def backward(a: BackwardArgs):
        heads = a.params["heads"]
        q, k = operands(a.params, a.inputs)
        if self_attention:
            grad = a.in_grads[0]
            if grad is None:
                return []
            dq, dk = _heads(grad, heads, 3, 0), _heads(grad, heads, 3, 1)
            return (_zero_other_parts(grad, heads, 3, (0, 1), a.accumulate[0])
                    + kernels.plan_batch_dot_backward(a.out_grads[0], q, k, dq, dk, transpose_b=True,
                                                      accumulate_a=a.accumulate[0], accumulate_b=a.accumulate[0],
                                                      alpha=scale(q)))
        dq = None if a.in_grads[0] is None else _heads(a.in_grads[0], heads, 1, 0)
        dk = None if a.in_grads[1] is None else _heads(a.in_grads[1], heads, 2, 0)
        zero = [] if a.in_grads[1] is None else _zero_other_parts(a.in_grads[1], heads, 2, (0,), a.accumulate[1])
        return zero + kernels.plan_batch_dot_backward(a.out_grads[0], q, k, dq, dk, transpose_b=True,
                                                      accumulate_a=a.accumulate[0], accumulate_b=a.accumulate[1],
                                                      alpha=scale(q))

    return op, infer_shape, forward, backward


# ---------------------------------------------------------------------- attention @ v


def _valatt_rule(self_attention: bool):
    op = "_contrib_interleaved_matmul_" + ("selfatt_valatt" if self_attention else "encdec_valatt")
    name, parts = ("queries_keys_values", 3) if self_attention else ("keys_values", 2)
    part = parts - 1  # the values come last in each head's slice

    def infer_shape(p, in_shapes, out_shapes):
        heads = p["heads"]
        packed, attention = in_shapes
        if packed is None:
            return in_shapes, out_shapes
        width = _head_width(op, name, packed, heads, parts)
        seq_k, batch = packed[0], packed[1]
        if self_attention:
            attention = unify("attention", attention, (batch * heads, seq_k, seq_k))
        elif attention is not None and (len(attention) != 3 or attention[0] != batch * heads
                                        or attention[2] != seq_k):
            raise ShapeMismatch(f"{op}: attention {tuple(attention)} must be (batch * heads, seq_q, seq_k) = "
                                f"({batch * heads}, seq_q, {seq_k}) for {name} {tuple(packed)} and heads={heads}")
        if attention is None:
            return [packed, None], out_shapes
        return [packed, attention], [unify("output", out_shapes[0], (attention[1], batch, heads * width))]

    def merged_output(out, heads: int):
        """The (seq_q, batch, heads * width) output as (batch * heads, seq_q, width)."""
        return _heads(out, heads, 1, 0)

    def forward(a: ForwardArgs):
        heads = a.params["heads"]
        values = _heads(a.inputs[0], heads, parts, part)
        return kernels.plan_batch_dot(a.inputs[1], values, merged_output(a.outputs[0], heads))

    def backward(a: BackwardArgs):
        heads = a.params["heads"]
        packed, attention = a.inputs
        grad_packed, grad_attention = a.in_grads
        values = _heads(packed, heads, parts, part)
        grad_values = None if grad_packed is None else _heads(grad_packed, heads, parts, part)
        zero = ([] if grad_packed is None
                else _zero_other_parts(grad_packed, heads, parts, (part,), a.accumulate[0]))
        return zero + kernels.plan_batch_dot_backward(merged_output(a.out_grads[0], heads), attention, values,
                                                      grad_attention, grad_values, accumulate_a=a.accumulate[1],
                                                      accumulate_b=a.accumulate[0])

    return op, infer_shape, forward, backward


_DOCS = {
    "selfatt_qk": "Self-attention scores q @ k^T / sqrt(head_dim) of every head, from one interleaved "
                  "(seq, batch, heads * 3 * head_dim) projection.",
    "selfatt_valatt": "Self-attention's attention @ v of every head, v from the interleaved projection, "
                      "the heads merged into (seq, batch, heads * head_dim).",
    "encdec_qk": "Encoder-decoder scores q @ k^T / sqrt(head_dim) of every head, keys from an interleaved "
                 "(seq_k, batch, heads * 2 * head_dim) projection of keys and values.",
    "encdec_valatt": "Encoder-decoder attention @ v of every head, v from the interleaved keys and values, "
                     "the heads merged into (seq_q, batch, heads * head_dim).",
}

for _self, _inputs in ((True, ("queries_keys_values",)), (False, ("queries", "keys_values"))):
    _op, _infer, _forward, _backward = _qk_rule(_self)
    register(OpDef(name=_op, doc=_DOCS[_op.rsplit("matmul_", 1)[1]], params=_heads_param(), input_names=_inputs,
                   infer_shape=_infer, forward=_forward, backward=_backward,
                   backward_needs=lambda p, epilogue, n=len(_inputs): (tuple(range(n)), ())))
    _op, _infer, _forward, _backward = _valatt_rule(_self)
    register(OpDef(name=_op, doc=_DOCS[_op.rsplit("matmul_", 1)[1]], params=_heads_param(),
                   input_names=(_inputs[-1], "attention"), infer_shape=_infer, forward=_forward, backward=_backward,
                   backward_needs=lambda p, epilogue: ((0, 1), ())))
