"""LayerNorm (MXNet's): normalise each row along ``axis`` by its own mean and variance, then
scale by ``gamma`` and shift by ``beta`` (one value per position along ``axis``).

A training forward keeps each row's mean and reciprocal standard deviation for backward
(``saved_for_backward``: two values per row, so memory grows with the rows, never with
their product with the columns). ``output_mean_var`` adds the mean and the standard
deviation as outputs (MXNet's ``mean`` and ``std``, of the data's shape with ``axis`` cut
to 1); gradients reaching them are not propagated, as in MXNet.
"""

from __future__ import annotations

import torch

from ..ops import layer_norm as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def _stats_shape(p, data):
    shape = list(data)
    shape[p["axis"]] = 1
    return tuple(shape)


def infer_shape(p, in_shapes, out_shapes):
    """data, its per-column parameters (gamma, and beta where there is one) and outputs: the
    data's shape and the row statistics' (output_mean_var). RMSNorm's too."""
    data = unify("data", in_shapes[0], out_shapes[0])
    columns = None
    if data is not None:
        if not -len(data) <= p["axis"] < len(data):
            raise ShapeMismatch(f"axis={p['axis']} is out of range for data of shape {tuple(data)}")
        columns = (data[p["axis"]],) if data[p["axis"]] else None
    for k, name in zip(range(1, len(in_shapes)), ("gamma", "beta")):
        columns = unify(name, columns, in_shapes[k])
    if data is not None and columns is not None:
        data = list(data)
        data[p["axis"]] = unify(f"data's axis {p['axis']}", data[p["axis"]] or None, columns[0])
        data = tuple(data)
    stats = [unify("mean" if k == 1 else "std", _stats_shape(p, data) if data is not None else None, out_shapes[k])
             for k in range(1, len(out_shapes))]
    return [data] + [columns] * (len(in_shapes) - 1), [data] + stats


def row_count(p, shape) -> int:
    return kernels.along_axis(tuple(shape), p["axis"])[2]


def _forward(a: ForwardArgs):
    p = a.params
    x, gamma, beta = a.inputs
    stats = a.outputs[1:] if p["output_mean_var"] else (None, None)
    return kernels.plan_layer_norm_forward(x, gamma, beta, a.outputs[0], axis=p["axis"], eps=p["eps"],
                                           mean_out=stats[0], std_out=stats[1], kept_mean=a.saved.get("mean"),
                                           kept_rstd=a.saved.get("rstd"))


def _backward(a: BackwardArgs):
    x, gamma, _ = a.inputs
    return kernels.plan_layer_norm_backward(x, a.out_grads[0], gamma, a.saved["mean"], a.saved["rstd"],
                                            *a.in_grads, axis=a.params["axis"],
                                            partial_dgamma=a.temps.get("partial_dgamma"),
                                            partial_dbeta=a.temps.get("partial_dbeta"), accumulate=a.accumulate)


def compute_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32  # what the kernels compute in


def partial_rows(*names: str):
    """``backward_temps`` of the scratch the column gradients (gamma's, beta's) are summed
    through: ``partials`` rows of the normalised axis each (ops/layer_norm.py). RMSNorm's too."""
    def temps(p, shapes, dtypes):
        n = kernels.partials(shapes[0], p["axis"]) * shapes[0][p["axis"]]
        return {name: ((n,), compute_dtype(dtypes[0])) for name in names}
    return temps


register(OpDef(
    name="LayerNorm",
    doc="(x - mean) / sqrt(var + eps) * gamma + beta, each row along `axis` by its own statistics.",
    params=[
        Param("axis", int, -1, doc="the axis to normalise along"),
        Param("eps", float, 1e-5, doc="added to the variance", check=lambda v: None if v > 0 else "must be positive"),
        Param("output_mean_var", bool, False, doc="also output each row's mean and standard deviation"),
    ],
    input_names=("data", "gamma", "beta"),
    infer_shape=infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    num_outputs=lambda p: 3 if p["output_mean_var"] else 1,
    output_names=lambda p: ["output", "mean", "std"] if p["output_mean_var"] else ["output"],
    saved_for_backward=lambda p, shapes, dtypes: {name: ((row_count(p, shapes[0]),), compute_dtype(dtypes[0]))
                                                  for name in ("mean", "rstd")},
    backward_temps=partial_rows("partial_dgamma", "partial_dbeta"),
))
