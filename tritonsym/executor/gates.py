"""Gated products as one step: ``act(g) * h`` becomes ``GatedActivation(h, g, act)``.

A SwiGLU block written by hand (``LeakyReLU(gate, act_type="silu") * up``, or GLU's
``sigmoid(gate) * x``) runs an activation and a product: two launches each way, and a
training step keeps ``act(g)`` for the product's backward beside ``g`` for the
activation's. Where the activation's output is read by that product alone (not by another
step, not an output of the symbol, no view of it) and the product's two inputs and output
have one shape and dtype, the pair runs as the GatedActivation operator instead: one
launch each way, and ``act(g)`` is computed again in backward, never stored. Operators
take part through their registry entries (``OpDef.gate``, ``OpDef.gate_product``).

In float32 and float64 the numbers are the unfused graph's, bit for bit; in float16 and
bfloat16 ``act(g)`` is no longer rounded to the half-precision dtype before the product
(as a FullyConnected's fused activation is not), so they may differ in the last bit, the
way the fused result is nearer the exact one. An activation fused into a FullyConnected's
epilogue stays there: that pair keeps no more than the gated one does.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..operators.registry import get_op

if TYPE_CHECKING:
    from .program import Step, Value


def fuse_gates(steps: list[Step], heads: set[int], viewed: set[int]) -> list[Step]:
    """``steps`` with each (gate activation -> product) pair merged into one GatedActivation
    step, placed where the product was. ``heads``: ids of the symbol's outputs; ``viewed``:
    ids of values some other value is a view of."""
    readers: dict[int, int] = {}
    made_by: dict[int, Step] = {}
    for s in steps:
        for v in s.inputs:
            readers[id(v)] = readers.get(id(v), 0) + 1
        if len(s.outputs) == 1:
            made_by[id(s.outputs[0])] = s
    merged: dict[int, Step] = {}  # id(product step) -> the gated step that replaces it
    absorbed: set[int] = set()  # ids of the activation steps merged away
    for s in steps:
        if not s.op.gate_product or len(s.inputs) != 2:
            continue
        out = s.outputs[0]
        if any(v.shape != out.shape or v.dtype != out.dtype for v in s.inputs):
            continue  # a broadcast, or mixed dtypes: not one elementwise pair
        for k in (0, 1):
            y, other = s.inputs[k], s.inputs[1 - k]
            act = made_by.get(id(y))
            if act is None or id(act) in absorbed or act.epilogue is not None or len(act.inputs) != 1:
                continue
            gate = act.op.gate(act.params)
            if gate is None or readers[id(y)] != 1 or id(y) in heads or id(y) in viewed or y.alias_of is not None:
                continue
            merged[id(s)] = _gated_step(act, s, other, act.inputs[0], gate)
            absorbed.add(id(act))
            break
    return [merged.get(id(s), s) for s in steps if id(s) not in absorbed]


def _gated_step(act: Step, product: Step, data: Value, gate_input: Value, gate: str) -> Step:
    """The product's step, as GatedActivation(data, gate_input) under both steps' names."""
    op = get_op("GatedActivation")
    return replace(product, name=f"{act.name}+{product.name}", op=op, params=op.parse_params({"act_type": gate}),
                   inputs=[data, gate_input])
