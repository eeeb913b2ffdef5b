"""depth_to_space and space_to_depth (MXNet's, ONNX's DCR order): blocks of channels moved to
blocks of pixels and back, on data (N, C, H, W). Each is a reshape, a permutation of six axes
and a reshape, so each is one strided copy each way (``ops/memory.py``): forward reads the
input through the permuted strides, backward writes the input gradient through them.

depth_to_space: (N, C, H, W) -> (N, C / b², H b, W b), element (n, c, h i, w j) from channel
(i b + j) C / b² + c of pixel (h, w); space_to_depth is its inverse."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, positive, register, unify


def _to_space_shape(data, b: int, op: str) -> tuple[int, ...]:
    n, c, h, w = data
    if c % (b * b):
        raise ShapeMismatch(f"{op}: the {c} channels of data {tuple(data)} are not a multiple of block_size² = {b * b}")
    return n, c // (b * b), h * b, w * b


def _to_depth_shape(data, b: int, op: str) -> tuple[int, ...]:
    n, c, h, w = data
    if h % b or w % b:
        raise ShapeMismatch(f"{op}: the height {h} and width {w} of data {tuple(data)} must be multiples of "
                            f"block_size={b}")
    return n, c * b * b, h // b, w // b


def _depth_view(t, b: int):
    """The (N, C, H, W) depth-side array as (N, b, b, C / b², H, W)."""
    n, c, h, w = t.shape
    return t.view(n, b, b, c // (b * b), h, w)


def _space_view(t, b: int):
    """The (N, C, H b, W b) space-side array as (N, C, H, b, W, b)."""
    n, c, h, w = t.shape
    return t.view(n, c, h // b, b, w // b, b)


# The depth view's axes (n, i, j, c, h, w) in the order of the space view's (n, c, h, i, w, j).
_DEPTH_TO_SPACE = (0, 3, 4, 1, 5, 2)


def _register(name: str, doc: str, to_space: bool):
    def infer_shape(p, in_shapes, out_shapes):
        data, out = in_shapes[0], out_shapes[0]
        b = p["block_size"]
        if data is not None:
            if len(data) != 4:
                raise ShapeMismatch(f"{name}: data must have 4 axes (N, C, H, W), got {tuple(data)}")
            out = unify("output", out, (_to_space_shape if to_space else _to_depth_shape)(data, b, name))
        elif out is not None and len(out) == 4:
            data = unify("data", data, (_to_depth_shape if to_space else _to_space_shape)(out, b, name))
        return [data], [out]

    def pair(depth, space, b):
        """The same elements seen twice: depth side permuted, space side as a plain view."""
        return _depth_view(depth, b).permute(_DEPTH_TO_SPACE), _space_view(space, b)

    def forward(a: ForwardArgs):
        b = a.params["block_size"]
        if to_space:
            src, dst = pair(a.inputs[0], a.outputs[0], b)
        else:
            dst, src = pair(a.outputs[0], a.inputs[0], b)
        return kernels.plan_copy(src, dst)

    def backward(a: BackwardArgs):
        dx, b = a.in_grads[0], a.params["block_size"]
        if dx is None:
            return []
        if to_space:
            dst, src = pair(dx, a.out_grads[0], b)
        else:
            src, dst = pair(a.out_grads[0], dx, b)
        return kernels.plan_copy(src, dst, accumulate=a.accumulate[0])

    register(OpDef(
        name=name,
        doc=doc,
        params=[Param("block_size", int, check=positive, doc="the side of the blocks moved")],
        input_names=("data",),
        infer_shape=infer_shape,
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: ((), ()),
        cheap=True,
    ))


_register("depth_to_space", "Moves blocks of channels into blocks of pixels: (N, C, H, W) to (N, C/b², H b, W b).",
          to_space=True)
_register("space_to_depth", "Moves blocks of pixels into channels: (N, C, H, W) to (N, C b², H/b, W/b).",
          to_space=False)
