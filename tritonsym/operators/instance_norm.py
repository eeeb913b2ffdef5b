"""InstanceNorm (MXNet's): each (sample, channel) normalised by its own mean and variance over
the spatial positions, then scaled by ``gamma`` and shifted by ``beta`` per channel: GroupNorm
with one channel per group, on the same kernels (``ops/group_norm.py``). Data (batch,
channels, spatial...); MXNet's default ``eps`` is 1e-3. A training forward keeps each
(sample, channel)'s mean and reciprocal standard deviation for backward."""

from __future__ import annotations

from ..ops import group_norm as kernels
from .group_norm import check_data, kept_statistics, row_temps
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, register, unify


def _infer_shape(p, in_shapes, out_shapes):
    data = unify("data", in_shapes[0], out_shapes[0])
    channels = None
    if data is not None:
        check_data("InstanceNorm", data, 1)
        channels = (data[1],)
    for name, shape in zip(("gamma", "beta"), in_shapes[1:]):
        channels = unify(name, channels, shape)
    return [data, channels, channels], [data]


def _forward(a: ForwardArgs):
    x, gamma, beta = a.inputs
    return kernels.plan_group_norm_forward(x, gamma, beta, a.outputs[0], groups=x.shape[1], eps=a.params["eps"],
                                           kept_mean=a.saved.get("mean"), kept_rstd=a.saved.get("rstd"))


def _backward(a: BackwardArgs):
    x, gamma, _ = a.inputs
    return kernels.plan_group_norm_backward(x, a.out_grads[0], gamma, a.saved["mean"], a.saved["rstd"], *a.in_grads,
                                            groups=x.shape[1], row_dgamma=a.temps.get("row_dgamma"),
                                            row_dbeta=a.temps.get("row_dbeta"), accumulate=a.accumulate)


register(OpDef(
    name="InstanceNorm",
    doc="(x - mean) / sqrt(var + eps) * gamma + beta, per sample and channel over the spatial positions.",
    params=[
        Param("eps", float, 1e-3, doc="added to the variance", check=lambda v: None if v > 0 else "must be positive"),
    ],
    input_names=("data", "gamma", "beta"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    saved_for_backward=lambda p, shapes, dtypes: kept_statistics(p, shapes, dtypes, shapes[0][1]),
    backward_temps=lambda p, shapes, dtypes: row_temps(p, shapes, dtypes, shapes[0][1]),
))
