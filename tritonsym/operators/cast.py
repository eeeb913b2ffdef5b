"""Cast (MXNet's; alias ``cast``, and the fluent ``x.astype(dtype)``): the data in another
floating dtype, rounded to the nearest (ties to even; past the largest finite value,
infinity, as IEEE and MXNet have it); NaN stays NaN. The gradient comes back converted to
the data's dtype. How a mixed-precision network moves between dtypes: bfloat16 layers,
then logits cast to float32 for the loss.

tritonsym computes in floating dtypes only, so MXNet's integer and bool targets are
refused, naming them. Where the two dtypes are one (``astype('float32')`` of float32 data)
the planner may give the output the input's storage, and then nothing is launched.
"""

from __future__ import annotations

import torch

from ..ops import memory as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, register, same_shape_everywhere, unify

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MXNET_INTEGER_DTYPES = ("bool", "int8", "uint8", "int32", "int64")


def check_dtype_name(value: str) -> str | None:
    """None when ``value`` names a dtype tritonsym computes in, else what is wrong with it."""
    if value in DTYPES:
        return None
    if value in MXNET_INTEGER_DTYPES:
        return (f"is not supported: tritonsym computes in {', '.join(DTYPES)} (class indices and lengths go into "
                "their operators as they are, of any dtype)")
    return f"is not a dtype; use one of {', '.join(DTYPES)}"


def _infer_type(p, in_types, out_types):
    return [in_types[0]], [unify("output dtype", out_types[0], DTYPES[p["dtype"]])]


def same_storage(src: torch.Tensor, dst: torch.Tensor) -> bool:
    """The planner put ``dst`` over ``src`` (one dtype, in place): the values are there."""
    return src.data_ptr() == dst.data_ptr() and src.dtype == dst.dtype and src.stride() == dst.stride()


def _forward(a: ForwardArgs):
    x, out = a.inputs[0], a.outputs[0]
    return [] if same_storage(x, out) else kernels.plan_copy(x, out)


def _backward(a: BackwardArgs):
    dy, dx = a.out_grads[0], a.in_grads[0]
    if dx is None or (same_storage(dy, dx) and not a.accumulate[0]):
        return []
    return kernels.plan_copy(dy, dx, accumulate=a.accumulate[0])


register(OpDef(
    name="Cast",
    doc="The data converted to another floating dtype (rounded to nearest, ties to even); the gradient is "
        "converted back to the data's dtype.",
    params=[Param("dtype", str, check=check_dtype_name,
                  doc="the output's dtype: float64, float32, float16 or bfloat16")],
    input_names=("data",),
    aliases=("cast",),
    infer_type=_infer_type,
    infer_shape=same_shape_everywhere(["data"]),
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    # taken only where the two dtypes are one (the planner's rule); then nothing is copied
    inplace=lambda p: [(0, 0)],
    backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))],
    cheap=True,
))
