"""topk, sort and argsort (MXNet's): the elements of each row along ``axis`` (None: the
flattened data) in order, as values, as their indices (floats of ``dtype``) or as a mask.

``topk`` keeps the ``k`` largest (``is_ascend``: smallest) of each row, all of them when
``k`` < 1; ``ret_typ`` picks what it returns: ``value``, ``indices`` (the default), ``both``
(the two, values first) or ``mask`` (the data's shape: 1 at the elements kept, 0
elsewhere). ``sort`` is every value in order, ``argsort`` every index. Ties keep their order
(MXNet's CPU sort does too; its order of ties is not specified). NaN is larger than every
number, so it comes last ascending and first descending; MXNet's order around a NaN is
undefined (``ops/sort.py``).

Only the values carry a gradient: each kept element's is its output position's, the rest
get 0. A training forward keeps the kept elements' int32 indices for that
(``saved_for_backward``); indices and masks take none (MXNet's zero gradient).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..ops import sort as kernels
from .cast import DTYPES, check_dtype_name
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

RETURN_TYPES = ("value", "indices", "mask", "both")


def _outputs(p) -> tuple[str, ...]:
    """What each output holds: values, indices or a mask."""
    return {"value": ("values",), "indices": ("indices",), "mask": ("mask",),
            "both": ("values", "indices")}[p["ret_typ"]]


def _kept_count(p, data) -> int:
    """How many elements of each row are kept: ``k``, or the whole row when it is below 1."""
    length = kernels.layout(data, p["axis"])[1]
    if p["k"] > length:
        raise ShapeMismatch(f"k={p['k']} is more than the {length} elements of axis {p['axis']} of data "
                            f"{tuple(data)}")
    return length if p["k"] < 1 else p["k"]


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    axis = p["axis"]
    if axis is not None and not -len(data) <= axis < len(data):
        raise ShapeMismatch(f"axis={axis} is out of range for data of shape {tuple(data)}")
    k = _kept_count(p, data)
    kept = (k,) if axis is None else tuple(k if a == axis % len(data) else n for a, n in enumerate(data))
    return in_shapes, [unify(f"output {i}", known, tuple(data) if role == "mask" else kept)
                       for i, (role, known) in enumerate(zip(_outputs(p), out_shapes))]


def _infer_type(p, in_types, out_types):
    data = in_types[0]
    for role, known in zip(_outputs(p), out_types):
        if role != "indices":
            data = unify("data dtype", data, known)
    return [data], [unify(f"output {i} dtype", known, DTYPES[p["dtype"]] if role == "indices" else data)
                    for i, (role, known) in enumerate(zip(_outputs(p), out_types))]


def _forward(a: ForwardArgs, name: str):
    p, x = a.params, a.inputs[0]
    given = dict(zip(_outputs(p), a.outputs))
    return kernels.plan_rank(x, p["axis"], _kept_count(p, tuple(x.shape)), descending=not p["is_ascend"],
                             values=given.get("values"), indices=given.get("indices"), kept=a.saved.get("kept"),
                             mask=given.get("mask"), fn=name)


def _backward(a: BackwardArgs):
    dx = a.in_grads[0]
    if dx is None:
        return []
    return kernels.plan_scatter_backward(a.out_grads[0], a.saved["kept"], dx, a.params["axis"],
                                         accumulate=a.accumulate[0])


def _saved(p, shapes, dtypes):
    outer, length, inner = kernels.layout(shapes[0], p["axis"])
    return {"kept": ((outer * _kept_count(p, shapes[0]) * inner,), torch.int32)}


def _register(name: str, doc: str, params: list, fixed: dict, output_name) -> None:
    """One of the three, as topk with ``fixed`` parameters; only an operator returning values
    has a gradient."""
    def full(p):
        return {"k": 1, "ret_typ": "indices", "dtype": "float32", **p, **fixed}

    def has_values(p):
        return "values" in _outputs(full(p))

    register(OpDef(
        name=name,
        doc=doc,
        params=params,
        input_names=("data",),
        infer_shape=lambda p, i, o: _infer_shape(full(p), i, o),
        infer_type=lambda p, i, o: _infer_type(full(p), i, o),
        forward=lambda a: _forward(replace(a, params=full(a.params)), name),
        backward=lambda a: _backward(replace(a, params=full(a.params))),
        backward_needs=lambda p, epilogue: ((), ()),
        num_outputs=lambda p: len(_outputs(full(p))),
        output_names=output_name,
        no_grad_inputs=lambda p: set() if has_values(p) else {"data"},
        saved_for_backward=lambda p, s, d: _saved(full(p), s, d) if has_values(p) else {},
    ))


_AXIS = Param("axis", "optional_int", -1, doc="the axis sorted along (None: the flattened data)")
_DTYPE = Param("dtype", str, "float32", check=check_dtype_name, doc="the indices' dtype: float64, float32, float16 "
               "or bfloat16 (an axis longer than it counts exactly is refused)")

_register("topk", "The k largest (is_ascend: smallest) elements along axis, as values, indices, both or a mask.",
          [_AXIS,
           Param("k", int, 1, doc="how many elements of each row to keep (below 1: all of them)"),
           Param("ret_typ", str, "indices", choices=RETURN_TYPES,
                 doc="value, indices, both (values and indices) or mask (1 where kept)"),
           Param("is_ascend", bool, False, doc="keep the smallest, in ascending order"),
           _DTYPE],
          {}, lambda p: ["output0", "output1"] if p["ret_typ"] == "both" else
          ["output0" if p["ret_typ"] == "value" else "output"])
_register("sort", "The elements along axis in ascending (is_ascend=False: descending) order; ties keep their order.",
          [_AXIS, Param("is_ascend", bool, True, doc="ascending order (False: descending)")],
          {"k": 0, "ret_typ": "value"}, lambda p: ["output0"])
_register("argsort", "The indices that sort the elements along axis (ties in order), as floats of dtype; "
          "no gradient.",
          [_AXIS, Param("is_ascend", bool, True, doc="ascending order (False: descending)"), _DTYPE],
          {"k": 0, "ret_typ": "indices"}, lambda p: ["output"])
