"""reshape_like (MXNet's): ``lhs`` under ``rhs``'s shape, a view of ``lhs`` (no kernel, no
memory). ``lhs_begin``/``lhs_end`` and ``rhs_begin``/``rhs_end`` (Python's slice bounds,
None: the ends) reshape only ``lhs``'s axes ``lhs_begin:lhs_end`` into ``rhs``'s
``rhs_begin:rhs_end``; the other axes of ``lhs`` stay. ``rhs``'s values are never read and
it takes no gradient (its gradient is 0, as MXNet's)."""

from __future__ import annotations

from .registry import Param, ShapeMismatch, register, unify
from .view import check_same_size, view_op


def _bounds(begin, end, ndim: int, name: str, shape) -> tuple[int, int]:
    for value in (begin, end):
        if value is not None and not -ndim <= value <= ndim:
            raise ShapeMismatch(f"{name}_begin={begin}, {name}_end={end} are out of range for {name} of shape "
                                f"{tuple(shape)}")
    first, stop, _ = slice(begin, end).indices(ndim)
    if stop < first:
        raise ShapeMismatch(f"{name}_begin={begin} comes after {name}_end={end} for {name} of shape {tuple(shape)}")
    return first, stop


def target_shape(p, lhs, rhs) -> tuple[int, ...]:
    """lhs's shape with its axes lhs_begin:lhs_end replaced by rhs's rhs_begin:rhs_end."""
    lb, le = _bounds(p["lhs_begin"], p["lhs_end"], len(lhs), "lhs", lhs)
    rb, re = _bounds(p["rhs_begin"], p["rhs_end"], len(rhs), "rhs", rhs)
    out = (*lhs[:lb], *rhs[rb:re], *lhs[le:])
    check_same_size("reshape_like", lhs, out)
    return out


def _infer_shape(p, in_shapes, out_shapes):
    lhs, rhs = in_shapes
    if lhs is None or rhs is None:
        return in_shapes, out_shapes
    return in_shapes, [unify("output", out_shapes[0], target_shape(p, lhs, rhs))]


register(view_op(
    name="reshape_like",
    doc="lhs under rhs's shape (or its axes lhs_begin:lhs_end under rhs's rhs_begin:rhs_end); a view.",
    params=[Param(name, "optional_int", None, doc=doc) for name, doc in (
        ("lhs_begin", "the first axis of lhs reshaped (None: 0)"),
        ("lhs_end", "one past the last axis of lhs reshaped (None: all)"),
        ("rhs_begin", "the first axis of rhs whose size is taken (None: 0)"),
        ("rhs_end", "one past the last axis of rhs whose size is taken (None: all)"))],
    input_names=("lhs", "rhs"),
    infer_shape=_infer_shape,
    no_grad_inputs=lambda p: {"rhs"},
))
