"""GridGenerator (MXNet's): the sampling grid of a spatial transformer network, (N, 2, H, W)
source positions in [-1, 1] coordinates (x in channel 0, y in channel 1) for
``BilinearSampler`` to read:

- ``transform_type='affine'``: ``data`` (N, 6) holds a 2 x 3 affine map per image, taken
  at the target pixels of a ``target_shape`` (H, W) grid;
- ``transform_type='warp'``: ``data`` (N, 2, H, W) is an optical flow, each pixel's
  displacement in pixels (x, then y); ``target_shape`` is not read.

Both need H and W of at least 2: the coordinates divide by H - 1 and W - 1 (MXNet's
grid is NaN there). One launch forward; backward one launch, the affine one summing each
image's pixels in a fixed order (``ops/grid_generator.py``)."""

from __future__ import annotations

from ..ops import grid_generator as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

TRANSFORMS = ("affine", "warp")


def check_target_shape(what: str, target_shape) -> None:
    """Refuse a grid size the [-1, 1] coordinates cannot divide by (the same rule as the kernels')."""
    if len(target_shape) != 2 or min(target_shape) < 2:
        raise ShapeMismatch(f"{what} {tuple(target_shape)} must be (H, W) of at least 2 each: the grid's [-1, 1] "
                            f"coordinates divide by H - 1 and W - 1")


def affine_output_shape(batch: int, target_shape) -> tuple[int, int, int, int]:
    return batch, 2, target_shape[0], target_shape[1]


def _infer_shape(p, in_shapes, out_shapes):
    data, out = in_shapes[0], out_shapes[0]
    if p["transform_type"] == "affine":
        check_target_shape("target_shape (needed by transform_type='affine')", p["target_shape"])
        if data is not None and (len(data) != 2 or data[1] not in (0, 6)):
            raise ShapeMismatch(f"data of shape {tuple(data)} must be (batch, 6): a 2 x 3 affine map per image")
        batch = data[0] if data is not None else (out[0] if out is not None else 0)
        return [unify("data", data, (batch, 6))], [unify("output", out, affine_output_shape(batch,
                                                                                           p["target_shape"]))]
    known = data if data is not None else out
    if known is None:
        return in_shapes, out_shapes
    if len(known) != 4 or known[1] not in (0, 2):
        raise ShapeMismatch(f"data of shape {tuple(known)} must be an optical flow (batch, 2, height, width)")
    if all(known[2:]):
        check_target_shape("the flow's size", known[2:])
    return [unify("data", data, tuple(known))], [unify("output", out, tuple(known))]


def _forward(a: ForwardArgs):
    plan = kernels.plan_affine_grid if a.params["transform_type"] == "affine" else kernels.plan_warp_grid
    return plan(a.inputs[0], a.outputs[0])


def _backward(a: BackwardArgs):
    if a.in_grads[0] is None:
        return []
    plan = (kernels.plan_affine_grid_backward if a.params["transform_type"] == "affine"
            else kernels.plan_warp_grid_backward)
    return plan(a.out_grads[0], a.in_grads[0], accumulate=a.accumulate[0])


register(OpDef(
    name="GridGenerator",
    doc="The sampling grid (N, 2, H, W) of an affine map per image or of an optical flow, in [-1, 1] coordinates.",
    params=[
        Param("transform_type", str, choices=TRANSFORMS, doc="affine: data (N, 6); warp: data an optical flow "
                                                             "(N, 2, H, W)"),
        Param("target_shape", "shape", (0, 0), doc="the grid's (H, W) for transform_type='affine'"),
    ],
    input_names=("data",),
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=lambda p, epilogue: ((), ()),
    cheap=True,
))
