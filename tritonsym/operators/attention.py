"""ScaledDotProductAttention: ``softmax(query key^T * scale + mask) value`` per (batch, head),
with the semantics of ``torch.nn.functional.scaled_dot_product_attention``.

query (batch, heads, seq_q, head_dim), key (batch, heads, seq_k, head_dim) and value
(batch, heads, seq_k, value_dim) give an output (batch, heads, seq_q, value_dim). ``scale``
defaults to ``1/sqrt(head_dim)``. ``causal`` hides key ``j`` from query ``i < j`` (top-left
aligned, as torch's ``is_causal``); ``use_length`` adds a ``valid_length`` input (batch,) that
hides each sequence's keys at or past its length (a length that is not a whole number in
[1, seq_k] makes that sequence NaN). ``enable_gqa`` (grouped-query attention, torch's flag)
lets key and value have fewer heads, kv_heads dividing heads: query head ``h`` reads key and
value head ``h // (heads // kv_heads)``; the backward sums each group's shares of dK and dV
(scratch of the query heads' size during the step). ``window`` (with ``causal``; Mistral's
sliding window) lets query ``i`` see only keys ``i - window + 1 .. i``: the kernels visit
only the key blocks inside it, so the cost grows with ``seq * window``, not ``seq**2``. A
query that sees no key through the window (``window`` or more past its sequence's length,
or past the last key) outputs 0 and passes no gradient.

FlashAttention-2 kernels (``ops/attention.py``): the training forward keeps one
log-sum-exp per query row for backward (``saved_for_backward``), so the memory of an
attention layer grows with ``seq``, never ``seq**2``; backward recomputes the probabilities
from it block by block. Where the sequences are too few to fill a GPU (decoding: one query
each over a long cache), the forward splits the keys across programs and adds the splits
after (FlashDecoding; ``forward_temps`` plans their partial sums).
"""

from __future__ import annotations

from ..ops import attention as kernels
from .batch_dot import product_params
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, index_dtype, register, unify

_NAMES = ("query", "key", "value")


def _agree(what: str, dims: list[tuple[str, int]]) -> int:
    """One dimension several arrays share (0 where none knows it yet)."""
    known = {d for _, d in dims if d}
    if len(known) > 1:
        raise ShapeMismatch(f"{what} differs: " + ", ".join(f"{name} has {d}" for name, d in dims if d))
    return known.pop() if known else 0


def _infer_shape(p, in_shapes, out_shapes):
    if p["window"] is not None and not p["causal"]:
        raise ShapeMismatch(f"window={p['window']} is a causal sliding window: it needs causal=True")
    shapes = {name: in_shapes[k] for k, name in enumerate(_NAMES)}
    shapes["output"] = out_shapes[0]
    for name, shape in shapes.items():
        if shape is not None and len(shape) != 4:
            raise ShapeMismatch(f"{name} {tuple(shape)} must be 4-d (batch, heads, seq, head_dim)")
    dims = {name: tuple(shape) if shape is not None else (0, 0, 0, 0) for name, shape in shapes.items()}
    batch = _agree("the batch size", [(n, d[0]) for n, d in dims.items()])
    if p["enable_gqa"]:  # the query's heads (the output's) and the key's and value's, a divisor of them
        heads = _agree("the number of query heads", [(n, dims[n][1]) for n in ("query", "output")])
        kv_heads = _agree("the number of key and value heads", [(n, dims[n][1]) for n in ("key", "value")])
        if heads and kv_heads and heads % kv_heads:
            raise ShapeMismatch(f"query has {heads} heads, key and value {kv_heads}: with enable_gqa the query's "
                                "must be a multiple of theirs")
    else:
        heads = kv_heads = _agree("the number of heads", [(n, d[1]) for n, d in dims.items()])
    seq_q = _agree("the query length", [("query", dims["query"][2]), ("output", dims["output"][2])])
    seq_k = _agree("the key length", [("key", dims["key"][2]), ("value", dims["value"][2])])
    head_dim = _agree("head_dim", [("query", dims["query"][3]), ("key", dims["key"][3])])
    value_dim = _agree("value_dim", [("value", dims["value"][3]), ("output", dims["output"][3])])

    def shape(*d):
        return tuple(d) if any(d) else None

    new_in = [shape(batch, heads, seq_q, head_dim), shape(batch, kv_heads, seq_k, head_dim),
              shape(batch, kv_heads, seq_k, value_dim)]
    if p["use_length"]:
        new_in.append(unify("valid_length", in_shapes[3], (batch,) if batch else None))
    return new_in, [shape(batch, heads, seq_q, value_dim)]


def _infer_type(p, in_types, out_types):
    known = next((t for t in [*in_types[:3], *out_types] if t is not None), None)
    data = [unify(f"{name} dtype", t, known) for name, t in zip(_NAMES, in_types)]
    out = [unify("output dtype", out_types[0], known)]
    if not p["use_length"]:
        return data, out
    return data + [index_dtype(in_types[3], known)], out


def _length(a):
    return a.inputs[3] if a.params["use_length"] else None


def _forward(a: ForwardArgs):
    p = a.params
    q, k, v = a.inputs[:3]
    return kernels.plan_attention_forward(q, k, v, a.outputs[0], valid_length=_length(a), causal=p["causal"],
                                          scale=p["scale"], lse=a.saved.get("lse"), precision=p["precision"],
                                          enable_gqa=p["enable_gqa"], window=p["window"], scratch=a.temps)


def _backward(a: BackwardArgs):
    p = a.params
    q, k, v = a.inputs[:3]
    return kernels.plan_attention_backward(a.out_grads[0], q, k, v, a.outputs[0], a.saved["lse"], a.temps["delta"],
                                           *a.in_grads[:3], valid_length=_length(a), causal=p["causal"],
                                           scale=p["scale"], accumulate=a.accumulate[:3], precision=p["precision"],
                                           enable_gqa=p["enable_gqa"],
                                           head_grads=(a.temps["key_grads"], a.temps["value_grads"])
                                           if "key_grads" in a.temps else None, window=p["window"])


def _row_values(p, shapes, dtypes):
    """One value per query row, in the dtype the kernels compute in."""
    batch, heads, seq_q, _ = shapes[0]
    return (kernels.lse_shape(batch, heads, seq_q), kernels.compute_dtype(dtypes[0]))


def _forward_temps(p, shapes, dtypes):
    """Where the keys are split across programs (decoding: few queries, many keys), each
    split's partial sums and row maxima, live only during the step."""
    wanted = kernels.split_scratch_shapes(*shapes[:3], dtypes[0], p["causal"], p["window"])
    return {name: (shape, kernels.compute_dtype(dtypes[0])) for name, shape in wanted.items()}


def _backward_temps(p, shapes, dtypes):
    """delta, one value per query row; with grouped query heads, each query head's share of
    dK and dV too (summed over its group into the key's and value's gradients)."""
    temps = {"delta": _row_values(p, shapes, dtypes)}
    if shapes[0][1] != shapes[1][1]:
        key, value = kernels.grouped_head_grads_shapes(*shapes[:3])
        temps["key_grads"] = (key, kernels.compute_dtype(dtypes[0]))
        temps["value_grads"] = (value, kernels.compute_dtype(dtypes[0]))
    return temps


register(OpDef(
    name="ScaledDotProductAttention",
    hint="attention",
    doc="softmax(query key^T * scale + mask) value per (batch, head): FlashAttention-2 forward and backward.",
    params=[
        Param("causal", bool, False, doc="hide key j from query i < j (top-left aligned)"),
        Param("scale", "optional_float", None, doc="multiplies query key^T; None: 1/sqrt(head_dim)"),
        Param("use_length", bool, False, doc="take a valid_length input (batch,) hiding keys past each length"),
        Param("enable_gqa", bool, False, doc="key and value may have fewer heads, each shared by a group of query "
                                             "heads (grouped-query attention)"),
        product_params()[-1],  # precision, as dot's and batch_dot's
        Param("window", "optional_int", None, check=lambda v: None if v is None or v >= 1 else "must be at least 1",
              doc="with causal: query i sees only keys i - window + 1 .. i (a sliding window); None: all before it"),
    ],
    input_names=("query", "key", "value", "valid_length"),
    active_inputs=lambda p: ["query", "key", "value", "valid_length"] if p["use_length"] else list(_NAMES),
    infer_shape=_infer_shape,
    infer_type=_infer_type,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1, 2, 3) if p["use_length"] else (0, 1, 2), (0,)),
    no_grad_inputs=lambda p: {"valid_length"},
    # The kernels take any strides: heads split or merged by a transpose cost nothing.
    strided_inputs=lambda p: (0, 1, 2),
    strided_outputs=lambda p: (0,),
    # Self-attention on one array: dQ launched first, dK + dV summed into one store (ops/attention.py).
    repeated_input_grads=True,
    class_inputs=lambda p, shapes: {3: shapes[1][2] + 1} if p["use_length"] and shapes[1] else {},
    saved_for_backward=lambda p, shapes, dtypes: {"lse": _row_values(p, shapes, dtypes)},
    forward_temps=_forward_temps,
    backward_temps=_backward_temps,
))
