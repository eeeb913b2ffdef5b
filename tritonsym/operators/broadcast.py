"""Broadcast operators (MXNet's): ``broadcast_add`` (``broadcast_plus``), ``broadcast_sub``
(``broadcast_minus``), ``broadcast_mul``, ``broadcast_div``, ``broadcast_maximum``,
``broadcast_minimum``, ``broadcast_power``, ``broadcast_hypot``, ``broadcast_mod``, the comparisons
``broadcast_equal`` ... ``broadcast_lesser_equal`` and ``broadcast_logical_and/or/xor`` (1.0
or 0.0, gradient 0), and ``broadcast_to``, ``broadcast_axis`` (``broadcast_axes``) and
``broadcast_like``. Shapes broadcast as numpy's (aligned at the right; each axis equal or 1).
Nothing is copied forward; a broadcast operand's gradient is summed over its repeated axes
through an output-shaped scratch buffer of the backward step (``ops/broadcast.py``)."""

from __future__ import annotations

from ..ops import broadcast as kernels
from ..ops import elementwise
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

BINARY = {"broadcast_add": "add", "broadcast_sub": "sub", "broadcast_mul": "mul", "broadcast_div": "div",
          "broadcast_maximum": "maximum", "broadcast_minimum": "minimum", "broadcast_power": "power",
          "broadcast_hypot": "hypot", "broadcast_mod": "mod",
          **{f"broadcast_{kind}": kind for kind in (*elementwise.COMPARISONS, *elementwise.LOGICAL)}}
ALIASES = {"broadcast_add": ("broadcast_plus",), "broadcast_sub": ("broadcast_minus",)}


def _merge_axis(x: int, y: int) -> int:
    """One axis of the broadcast shape from two operands' (0: not known yet)."""
    if x == y or y == 1:
        return x
    if x == 1:
        return y
    if x == 0 or y == 0:
        return max(x, y) if max(x, y) > 1 else 0  # an unknown against n > 1 is n (or 1, giving n)
    raise ShapeMismatch("")


def _broadcast(shapes) -> tuple[int, ...]:
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis, sizes in enumerate(zip(*padded)):
        merged = sizes[0]
        for size in sizes[1:]:
            try:
                merged = _merge_axis(merged, size)
            except ShapeMismatch:
                raise ShapeMismatch(f"shapes {', '.join(str(tuple(s)) for s in shapes)} cannot be broadcast together "
                                    f"(axis {axis} of the aligned shapes: {sizes})") from None
        out.append(merged)
    return tuple(out)


def _binary_shape(p, in_shapes, out_shapes):
    lhs, rhs = in_shapes
    if lhs is None or rhs is None:
        return in_shapes, out_shapes
    return in_shapes, [unify("output", out_shapes[0], _broadcast([lhs, rhs]))]


def _register_binary(name: str, kind: str):
    def forward(a: ForwardArgs):
        return kernels.plan_broadcast_binary_forward(kind, a.inputs[0], a.inputs[1], a.outputs[0])

    def backward(a: BackwardArgs):
        return kernels.plan_broadcast_binary_backward(
            kind, a.out_grads[0], a.inputs[0], a.inputs[1], a.in_grads[0], a.in_grads[1],
            a_shape=a.input_shapes[0], b_shape=a.input_shapes[1], accumulate_a=a.accumulate[0],
            accumulate_b=a.accumulate[1], scratch_a=a.temps.get("lhs_scratch"), scratch_b=a.temps.get("rhs_scratch"))

    def temps(p, shapes, dtypes):
        out = _broadcast(shapes)
        needed = kernels.scratch_needed(*shapes)
        return {f"{side}_scratch": (out, dtypes[0]) for side in ("lhs", "rhs") if needed[side]}

    register(OpDef(
        name=name,
        doc=f"Elementwise {kind}(lhs, rhs) with numpy's broadcasting"
            + ("; 1.0 where it holds, else 0.0, with gradient 0." if kind in elementwise.COMPARISONS else
               "; 1.0 where it holds of their truth (nonzero, NaN too), else 0.0, with gradient 0."
               if kind in elementwise.LOGICAL else "."),
        params=[],
        input_names=("lhs", "rhs"),
        infer_shape=_binary_shape,
        forward=forward,
        backward=backward,
        # add, sub and the comparisons keep no operand for backward (their shapes come with it)
        backward_needs=lambda p, epilogue: (tuple(k for k, side in enumerate(("lhs", "rhs"))
                                                  if side in elementwise.BINARY_NEEDS[kind]), ()),
        backward_temps=temps,
        # broadcast_mul(x, x): one array has one shape, the output's, so nothing is summed
        # and one elementwise kernel stores each element's two gradients in order
        repeated_input_grads=True,
        gate_product=kind == "mul",
        aliases=ALIASES.get(name, ()),
        cheap=True,
    ))


def _to_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    target = tuple(p["shape"])
    if len(target) < len(data):
        raise ShapeMismatch(f"shape={target} has fewer axes than data {tuple(data)}")
    padded = (1,) * (len(target) - len(data)) + tuple(data)
    out = tuple(d if t == 0 else t for d, t in zip(padded, target))  # 0 keeps the data's size
    bad = [k for k, (d, o) in enumerate(zip(padded, out)) if d not in (1, o)]
    if bad:
        raise ShapeMismatch(f"data {tuple(data)} cannot be broadcast to {target}: axis {bad[0]} has size "
                            f"{padded[bad[0]]}, neither 1 nor {out[bad[0]]}")
    return in_shapes, [unify("output", out_shapes[0], out)]


def _axis_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    axes, sizes = p["axis"], p["size"]
    if len(axes) != len(sizes):
        raise ShapeMismatch(f"axis={tuple(axes)} and size={tuple(sizes)} must have one length")
    out = list(data)
    for a, n in zip(axes, sizes):
        if not -len(data) <= a < len(data):
            raise ShapeMismatch(f"axis {a} is out of range for data of shape {tuple(data)}")
        if data[a] != 1:
            raise ShapeMismatch(f"axis {a} of data {tuple(data)} has size {data[a]}; only axes of size 1 broadcast")
        if n < 1:
            raise ShapeMismatch(f"size={tuple(sizes)} has {n} for axis {a}; sizes must be positive")
        out[a] = n
    return in_shapes, [unify("output", out_shapes[0], tuple(out))]


def _like_shape(p, in_shapes, out_shapes):
    data, like = in_shapes
    if data is None or like is None:
        return in_shapes, out_shapes
    if len(data) != len(like):
        raise ShapeMismatch(f"lhs {tuple(data)} and rhs {tuple(like)} must have one rank")
    bad = [k for k, (d, o) in enumerate(zip(data, like)) if d not in (1, o)]
    if bad:
        raise ShapeMismatch(f"lhs {tuple(data)} cannot be broadcast like rhs {tuple(like)}: axis {bad[0]}")
    return in_shapes, [unify("output", out_shapes[0], tuple(like))]


def _to_forward(a: ForwardArgs):
    return kernels.plan_broadcast_to(a.inputs[0], a.outputs[0])


def _to_backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    return kernels.plan_broadcast_to_backward(a.out_grads[0], a.in_grads[0], a.accumulate[0])


register(OpDef(
    name="broadcast_to",
    doc="data repeated along its size-1 axes to shape (0 keeps the data's size).",
    params=[Param("shape", "shape", (), doc="the output shape; 0 keeps the data's size")],
    input_names=("data",),
    infer_shape=_to_shape,
    forward=_to_forward,
    backward=_to_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    cheap=True,
))

register(OpDef(
    name="broadcast_axis",
    doc="data repeated along the given axes of size 1 to the given sizes.",
    params=[Param("axis", "ints", (), doc="the axes to repeat (each of size 1)"),
            Param("size", "ints", (), doc="the size each of them becomes")],
    input_names=("data",),
    infer_shape=_axis_shape,
    forward=_to_forward,
    backward=_to_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    aliases=("broadcast_axes",),
    cheap=True,
))

register(OpDef(
    name="broadcast_like",
    doc="lhs repeated along its size-1 axes to rhs's shape; rhs takes no gradient.",
    params=[],
    input_names=("lhs", "rhs"),
    infer_shape=_like_shape,
    forward=_to_forward,
    backward=_to_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    no_grad_inputs=lambda p: {"rhs"},
    cheap=True,
))

for _name, _kind in BINARY.items():
    _register_binary(_name, _kind)
