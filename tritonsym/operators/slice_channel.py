"""SliceChannel (MXNet's; alias ``split``): data cut into ``num_outputs`` equal parts along
``axis``; ``_split_v2`` (what MXNet's ``split_v2`` calls; ``tritonsym.sym.split_v2``): cut into
``sections`` equal parts, or at the given ``indices``. Each part's axis is dropped with
``squeeze_axis`` when it has size 1. Where only axes of size 1 precede ``axis`` each part is
one run of the data's elements, and the program makes it a view (``Value.window``: no launch,
no memory); elsewhere each part is one strided copy. Backward copies each part's gradient into
its slice of the input gradient (a part nothing reads has a zero gradient, as in MXNet)."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import (
    BackwardArgs,
    ForwardArgs,
    OpDef,
    Param,
    ShapeMismatch,
    positive,
    register,
    unify,
    window_offset,
)
from .view import already_there

# An axis of size 0 is one of unknown size (partial inference): a part of unknown width has width 0.


def _equal(size: int, count: int, label: str) -> list[tuple[int, int]]:
    if size % count:
        raise ShapeMismatch(f"has size {size}, which {label}={count} does not divide")
    return [(k * (size // count), size // count) for k in range(count)]


def _equal_parts(p, size: int) -> list[tuple[int, int]]:
    """SliceChannel's parts of an axis of ``size``: (start, width) each."""
    return _equal(size, p["num_outputs"], "num_outputs")


def _v2_parts(p, size: int) -> list[tuple[int, int]]:
    """_split_v2's parts: ``sections`` equal ones, else from each of ``indices`` to the next."""
    if p["sections"] > 0:
        return _equal(size, p["sections"], "sections")
    starts = list(p["indices"])
    ends = starts[1:] + [size]
    parts = []
    for k, (begin, end) in enumerate(zip(starts, ends)):
        if size == 0 and k == len(starts) - 1:  # runs to the end of an axis of unknown size
            end = begin
        elif not 0 <= begin < end <= (size or end):
            raise ShapeMismatch(f"has size {size}, which indices={tuple(starts)} cut into an empty or reversed "
                                f"part {k}: [{begin}, {end})")
        parts.append((begin, end - begin))
    return parts


def _v2_count(p) -> int:
    if p["sections"] < 0 or (p["sections"] == 0 and not p["indices"]):
        raise ShapeMismatch(f"_split_v2 needs sections > 0 or indices, got sections={p['sections']} and "
                            f"indices={tuple(p['indices'])}")
    return p["sections"] if p["sections"] > 0 else len(p["indices"])


def _part_shapes(p, data, parts) -> list[tuple[int, ...]]:
    axis = p["axis"] % len(data)
    try:
        bounds = parts(p, data[axis])
    except ShapeMismatch as e:
        raise ShapeMismatch(f"axis {p['axis']} of data {tuple(data)} {e}") from None
    if p["squeeze_axis"]:
        if any(width not in (0, 1) for _, width in bounds):
            raise ShapeMismatch(f"squeeze_axis needs parts of size 1 along axis {p['axis']}, but data {tuple(data)} "
                                f"splits into parts of {[width for _, width in bounds]}")
        return [tuple(d for k, d in enumerate(data) if k != axis)] * len(bounds)
    return [tuple(width if k == axis else d for k, d in enumerate(data)) for _, width in bounds]


def _splitting_op(name: str, doc: str, params: list, parts, count, aliases=()) -> OpDef:
    """An OpDef cutting its data into ``count(params)`` parts along ``axis``, the (start,
    width) of each from ``parts(params, axis size)``."""
    def infer_shape(p, in_shapes, out_shapes):
        data = in_shapes[0]
        if data is None:
            return in_shapes, out_shapes
        if not -len(data) <= p["axis"] < len(data):
            raise ShapeMismatch(f"axis={p['axis']} is out of range for data of shape {tuple(data)}")
        shapes = _part_shapes(p, data, parts)
        return in_shapes, [unify(f"output {k}", known, s) for k, (known, s) in enumerate(zip(out_shapes, shapes))]

    def slices(p, t):
        """The input-shaped slices of ``t`` (data or its gradient), one per output."""
        axis = p["axis"] % t.dim()
        return [t.narrow(axis, begin, width) for begin, width in parts(p, t.shape[axis])]

    def output_windows(p, in_shapes):
        data = in_shapes[0]
        axis = p["axis"] % len(data)
        offsets = [window_offset(data, axis, begin, width) for begin, width in parts(p, data[axis])]
        return {} if offsets[0] is None else {k: (0, offset) for k, offset in enumerate(offsets)}

    def forward(a: ForwardArgs):
        return [launch for part, out in zip(slices(a.params, a.inputs[0]), a.outputs)
                if not already_there(part, out.view(part.shape))
                for launch in kernels.plan_copy(part, out.view(part.shape))]

    def backward(a: BackwardArgs):
        dx = a.in_grads[0]
        if dx is None:
            return []
        launches = []
        for part, dy in zip(slices(a.params, dx), a.out_grads):
            launches += kernels.plan_copy(dy.view(part.shape), part, accumulate=a.accumulate[0])
        return launches

    return OpDef(
        name=name,
        doc=doc,
        params=params,
        input_names=("data",),
        num_outputs=count,
        output_names=lambda p: [f"output{k}" for k in range(count(p))],
        infer_shape=infer_shape,
        output_windows=output_windows,
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: ((), ()),
        aliases=aliases,
        cheap=True,
    )


register(_splitting_op(
    name="SliceChannel",
    doc="Splits data into num_outputs equal parts along axis.",
    params=[Param("num_outputs", int, check=positive, doc="how many parts"),
            Param("axis", int, 1, doc="the axis to split"),
            Param("squeeze_axis", bool, False, doc="drop the split axis from each part (of size 1)")],
    parts=_equal_parts,
    count=lambda p: p["num_outputs"],
    aliases=("split",),
))

register(_splitting_op(
    name="_split_v2",
    doc="Splits data along axis into sections equal parts, or at indices (the first 0): split_v2's operator.",
    params=[Param("indices", "ints", (), doc="where each part starts, the first 0 (used when sections is 0)"),
            Param("axis", int, 0, doc="the axis to split"),
            Param("squeeze_axis", bool, False, doc="drop the split axis from each part (of size 1)"),
            Param("sections", int, 0, doc="how many equal parts (0: cut at indices)")],
    parts=_v2_parts,
    count=_v2_count,
))
