"""RMSNorm: scale each row along ``axis`` by the reciprocal of its root mean square, then by
``gamma`` (one value per position along ``axis``): ``x / sqrt(mean(x**2) + eps) * gamma``,
as ``torch.nn.functional.rms_norm`` (Llama's normalisation; MXNet 1.x has none). No mean
is subtracted and there is no shift.

LayerNorm's kernels (``ops/layer_norm.py``) without the mean's pass: a training forward
keeps one reciprocal root mean square per row for backward (``saved_for_backward``), so
memory grows with the rows, never with their product with the columns.
"""

from __future__ import annotations

from ..ops import layer_norm as kernels
from .layer_norm import compute_dtype, infer_shape, partial_rows, row_count
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, register


def _forward(a: ForwardArgs):
    x, gamma = a.inputs
    return kernels.plan_rms_norm_forward(x, gamma, a.outputs[0], axis=a.params["axis"], eps=a.params["eps"],
                                         kept_rstd=a.saved.get("rstd"))


def _backward(a: BackwardArgs):
    x, gamma = a.inputs
    return kernels.plan_rms_norm_backward(x, a.out_grads[0], gamma, a.saved["rstd"], *a.in_grads,
                                          axis=a.params["axis"], partial_dgamma=a.temps.get("partial_dgamma"),
                                          accumulate=a.accumulate)


register(OpDef(
    name="RMSNorm",
    doc="x / sqrt(mean(x**2) + eps) * gamma, each row along `axis` by its own root mean square.",
    params=[
        Param("axis", int, -1, doc="the axis to normalise along"),
        Param("eps", float, 1e-5, doc="added to the mean square",
              check=lambda v: None if v > 0 else "must be positive"),
    ],
    input_names=("data", "gamma"),
    infer_shape=infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((0, 1), ()),
    saved_for_backward=lambda p, shapes, dtypes: {"rstd": ((row_count(p, shapes[0]),), compute_dtype(dtypes[0]))},
    backward_temps=partial_rows("partial_dgamma"),  # gamma's gradient only: there is no beta
))
