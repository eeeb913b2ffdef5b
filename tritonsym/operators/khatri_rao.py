"""khatri_rao (MXNet's): the column-wise Khatri-Rao product of ``num_args`` matrices A_1
(M_1, N), ..., A_n (M_n, N), a matrix (M_1 ... M_n, N) whose column c is the Kronecker
product of the matrices' columns c, as CP tensor decompositions use it. Forward: one
launch per factor after the first, the partial products in scratch of the step; backward
(which MXNet does not give): the partial products before and after each factor, then one
launch per factor gradient, each a sum in a fixed order (``ops/khatri_rao.py``)."""

from __future__ import annotations

import math

from ..ops import khatri_rao as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify


def _names(p) -> list[str]:
    return [f"arg{k}" for k in range(p["num_args"])]


def _infer_shape(p, in_shapes, out_shapes):
    known = [s for s in in_shapes if s is not None]
    for k, s in enumerate(in_shapes):
        if s is not None and len(s) != 2:
            raise ShapeMismatch(f"input {k} of shape {tuple(s)} must be a matrix (rows, columns)")
    columns = {s[1] for s in known}
    if len(columns) > 1:
        raise ShapeMismatch(f"the matrices must have one number of columns, got shapes {[tuple(s) for s in known]}")
    if len(known) < len(in_shapes):
        return in_shapes, out_shapes
    return in_shapes, [unify("output", out_shapes[0], (math.prod(s[0] for s in known), known[0][1]))]


def _scratch(shapes, dtypes, keep) -> dict:
    if any(s is None for s in shapes):
        return {}
    found = kernels.scratch_shapes([s[0] for s in shapes], shapes[0][1])
    return {name: (shape, dtypes[0]) for name, shape in found.items() if keep(name)}


def _forward(a: ForwardArgs):
    return kernels.plan_khatri_rao(list(a.inputs), a.outputs[0], a.temps)


def _backward(a: BackwardArgs):
    return kernels.plan_khatri_rao_backward(a.out_grads[0], list(a.inputs), list(a.in_grads), list(a.accumulate),
                                            a.temps)


register(OpDef(
    name="khatri_rao",
    doc="The column-wise Khatri-Rao product of matrices of one number of columns.",
    params=[Param("num_args", int, check=positive, doc="how many matrices (set from the matrices given)")],
    input_names=("args",),
    active_inputs=_names,
    variadic=True,
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: (tuple(range(p["num_args"])), ()),
    forward_temps=lambda p, shapes, dtypes: _scratch(shapes, dtypes, lambda name: name.startswith("prefix")),
    backward_temps=lambda p, shapes, dtypes: _scratch(shapes, dtypes, lambda name: True),
))
