"""GroupNorm (MXNet's): each sample's channels split into ``num_groups`` groups, each group
normalised by its own mean and variance over its channels and spatial positions, then
scaled by ``gamma`` and shifted by ``beta``, one value per group as MXNet 1.x has them
(torch's GroupNorm has one per channel). Data (batch, channels, spatial...), channels a
multiple of ``num_groups``.

A training forward keeps each (sample, group)'s mean and reciprocal standard deviation
for backward (``saved_for_backward``). ``output_mean_var`` adds the mean and the standard
deviation as outputs (batch, num_groups), MXNet's; gradients reaching them are not
propagated, as in MXNet. Kernels: ``ops/group_norm.py`` (InstanceNorm's too).
"""

from __future__ import annotations

from ..ops import group_norm as kernels
from .layer_norm import compute_dtype
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify


def check_data(op: str, data, groups: int) -> None:
    if len(data) < 3:
        raise ShapeMismatch(f"{op}: data of shape {tuple(data)} must be (batch, channels, spatial...): at least 3 "
                            f"axes")
    if data[1] % groups:
        raise ShapeMismatch(f"{op}: data has {data[1]} channels, not a multiple of num_groups={groups}")


def _infer_shape(p, in_shapes, out_shapes):
    groups = p["num_groups"]
    data = unify("data", in_shapes[0], out_shapes[0])
    if data is not None:
        check_data("GroupNorm", data, groups)
    per_group = [unify(name, shape, (groups,)) for name, shape in zip(("gamma", "beta"), in_shapes[1:])]
    stats = [unify(name, shape, (data[0], groups) if data is not None else None)
             for name, shape in zip(("mean", "std"), out_shapes[1:])]
    return [data, *per_group], [data, *stats]


def row_temps(p, shapes, dtypes, groups: int):
    """``backward_temps``: one value per (sample, group) for gamma's and beta's gradients."""
    rows = kernels.rows_of(shapes[0], groups)[0]
    return {name: ((rows,), compute_dtype(dtypes[0])) for name in ("row_dgamma", "row_dbeta")}


def kept_statistics(p, shapes, dtypes, groups: int):
    """``saved_for_backward``: each (sample, group)'s mean and reciprocal standard deviation."""
    rows = kernels.rows_of(shapes[0], groups)[0]
    return {name: ((rows,), compute_dtype(dtypes[0])) for name in ("mean", "rstd")}


def _forward(a: ForwardArgs):
    p = a.params
    x, gamma, beta = a.inputs
    stats = a.outputs[1:] if p["output_mean_var"] else (None, None)
    return kernels.plan_group_norm_forward(x, gamma, beta, a.outputs[0], groups=p["num_groups"], eps=p["eps"],
                                           mean_out=stats[0], std_out=stats[1], kept_mean=a.saved.get("mean"),
                                           kept_rstd=a.saved.get("rstd"))


def _backward(a: BackwardArgs):
    x, gamma, _ = a.inputs
    return kernels.plan_group_norm_backward(x, a.out_grads[0], gamma, a.saved["mean"], a.saved["rstd"], *a.in_grads,
                                            groups=a.params["num_groups"], row_dgamma=a.temps.get("row_dgamma"),
                                            row_dbeta=a.temps.get("row_dbeta"), accumulate=a.accumulate)


register(OpDef(
    name="GroupNorm",
    doc="(x - mean) / sqrt(var + eps) * gamma + beta, per sample and group of channels (gamma, beta: one per group).",
    params=[
        Param("num_groups", int, 1, doc="groups the channels are split into", check=positive),
        Param("eps", float, 1e-5, doc="added to the variance", check=lambda v: None if v > 0 else "must be positive"),
        Param("output_mean_var", bool, False, doc="also output each (sample, group)'s mean and standard deviation"),
    ],
    input_names=("data", "gamma", "beta"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    num_outputs=lambda p: 3 if p["output_mean_var"] else 1,
    output_names=lambda p: ["output", "mean", "std"] if p["output_mean_var"] else ["output"],
    saved_for_backward=lambda p, shapes, dtypes: kept_statistics(p, shapes, dtypes, p["num_groups"]),
    backward_temps=lambda p, shapes, dtypes: row_temps(p, shapes, dtypes, p["num_groups"]),
))
