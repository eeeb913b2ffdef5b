"""BatchNorm (MXNet's): normalise each channel of ``axis`` by the batch's statistics when
training, by the moving statistics in inference, then scale by ``gamma`` and shift by ``beta``.

The moving mean and variance are auxiliary states (``aux_inputs``): a training forward moves
them toward the batch's statistics (``momentum``, the biased variance, as MXNet), so they are
written by the forward, never by an optimizer. MXNet 1.9.1 on the CPU moves them in backward
instead, and on the GPU (cuDNN) in forward, as here: a training forward without a backward
moves them too (docs/mxnet.md). A training forward keeps the batch mean and reciprocal
standard deviation for backward (``saved_for_backward``: two values per channel).
``output_mean_var`` adds them as outputs (MXNet's ``mean`` and ``var``, the latter holding
the reciprocal standard deviation, as MXNet's does); gradients reaching those outputs are
not propagated, as in MXNet.
"""

from __future__ import annotations

import torch

from ..ops import batch_norm as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

VECTORS = ("gamma", "beta", "moving_mean", "moving_var")


def _infer_shape(p, in_shapes, out_shapes):
    data = unify("data", in_shapes[0], out_shapes[0])
    channels = None
    if data is not None:
        if not -len(data) <= p["axis"] < len(data):
            raise ShapeMismatch(f"axis={p['axis']} is out of range for data of shape {tuple(data)}")
        channels = (data[p["axis"]],) if data[p["axis"]] else None
    for k, name in enumerate(VECTORS, start=1):
        channels = unify(name, channels, in_shapes[k])
    for k in range(1, len(out_shapes)):
        channels = unify("mean" if k == 1 else "var", channels, out_shapes[k])
    if data is not None and channels is not None:
        data = list(data)
        data[p["axis"]] = unify(f"data's axis {p['axis']}", data[p["axis"]] or None, channels[0])
        data = tuple(data)
    return [data] + [channels] * 4, [data] + [channels] * (len(out_shapes) - 1)


def _batch_stats(p: dict, is_train: bool) -> bool:
    return is_train and not p["use_global_stats"]


def _forward(a: ForwardArgs):
    p = a.params
    x, gamma, beta, moving_mean, moving_var = a.inputs
    stats = a.outputs[1:] if p["output_mean_var"] else (None, None)
    return kernels.plan_batch_norm_forward(
        x, gamma, beta, moving_mean, moving_var, a.outputs[0], axis=p["axis"], eps=p["eps"], momentum=p["momentum"],
        fix_gamma=p["fix_gamma"], batch_stats=_batch_stats(p, a.is_train), update_moving=True,
        mean_out=stats[0], invstd_out=stats[1], kept_mean=a.saved.get("mean"), kept_invstd=a.saved.get("invstd"))


def _backward(a: BackwardArgs):
    p = a.params
    x, gamma, _, moving_mean, moving_var = a.inputs
    batch = not p["use_global_stats"]
    mean, spread = (a.saved["mean"], a.saved["invstd"]) if batch else (moving_mean, moving_var)
    return kernels.plan_batch_norm_backward(x, a.out_grads[0], gamma, mean, spread, *a.in_grads[:3], axis=p["axis"],
                                            eps=p["eps"], fix_gamma=p["fix_gamma"], batch_stats=batch,
                                            accumulate=a.accumulate[:3])


def _kept(p, shapes, dtypes):
    if p["use_global_stats"]:
        return {}
    compute = torch.float64 if dtypes[0] == torch.float64 else torch.float32  # what the kernels compute in
    return {"mean": ((shapes[0][p["axis"]],), compute), "invstd": ((shapes[0][p["axis"]],), compute)}


register(OpDef(
    name="BatchNorm",
    doc="(x - mean) / sqrt(var + eps) * gamma + beta per channel of `axis`: the batch's statistics when "
        "training (moving_mean / moving_var move toward them), the moving ones in inference.",
    params=[
        Param("eps", float, 1e-3, doc="added to the variance", check=lambda v: None if v > 0 else "must be positive"),
        Param("momentum", float, 0.9, doc="moving = momentum * moving + (1 - momentum) * batch",
              check=lambda v: None if 0 <= v <= 1 else "must be in [0, 1]"),
        Param("fix_gamma", bool, True, doc="use a gamma of 1 (gamma's gradient is then 0)"),
        Param("use_global_stats", bool, False, doc="normalise by the moving statistics when training too"),
        Param("output_mean_var", bool, False, doc="also output the mean and the reciprocal standard deviation"),
        Param("axis", int, 1, doc="the channel axis"),
        Param("cudnn_off", bool, False, doc="accepted for MXNet's scripts; there is no cuDNN here"),
    ],
    input_names=("data", "gamma", "beta", "moving_mean", "moving_var"),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1) if not p["use_global_stats"] else (0, 1, 3, 4), ()),
    num_outputs=lambda p: 3 if p["output_mean_var"] else 1,
    output_names=lambda p: ["output", "mean", "var"] if p["output_mean_var"] else ["output"],
    no_grad_inputs=lambda p: {"moving_mean", "moving_var"},
    aux_inputs=lambda p: {"moving_mean", "moving_var"},
    forward_in_training=lambda p: not p["use_global_stats"],
    saved_for_backward=_kept,
))
