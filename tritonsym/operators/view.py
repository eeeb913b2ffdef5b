"""What every operator whose output is its input under another shape shares (Flatten,
Reshape, expand_dims, squeeze): the output is a view of the input's storage (no kernel, no
memory), and backward hands the output gradient back under the input's shape, which costs
nothing when the planner put the input gradient over the output gradient."""

from __future__ import annotations

from ..ops import memory as kernels
from .registry import BackwardArgs, OpDef, ShapeMismatch, size


def view_backward(a: BackwardArgs, scale: float = 1.0):
    """The output gradient handed back under the input's shape (times ``scale``: one pass,
    in place where the planner put the input gradient over the output gradient)."""
    if a.in_grads[0] is None:
        return []
    if a.in_grads[0].data_ptr() == a.out_grads[0].data_ptr() and not a.accumulate[0] and scale == 1.0:
        return []  # the planner put the input gradient over the output gradient: already there
    return kernels.plan_copy(a.out_grads[0].view(a.in_grads[0].shape), a.in_grads[0], accumulate=a.accumulate[0],
                             scale=scale)


def view_op(**fields) -> OpDef:
    """An OpDef for a view of input 0: ``name``, ``doc``, ``params`` and ``infer_shape``
    given (and ``input_names`` where it has more inputs than ``data``)."""
    return OpDef(**{**dict(
        input_names=("data",),
        forward=lambda a: [],
        backward=view_backward,
        backward_needs=lambda p, epilogue: ((), ()),
        output_aliases=lambda p: {0: 0},
        backward_inplace=lambda p, epilogue: [(0, ("out_grad", 0))],
    ), **fields})


def already_there(window, out) -> bool:
    """Whether ``out`` is ``window`` itself: the program made the output a view of the
    input's storage (``Value.window``), so the forward has nothing to copy."""
    return (out.data_ptr() == window.data_ptr() and tuple(out.shape) == tuple(window.shape)
            and out.is_contiguous() and window.is_contiguous())


def check_same_size(op: str, data, out) -> None:
    """A view keeps every element: refuse shapes of different sizes, naming both."""
    if size(data) != size(out):
        raise ShapeMismatch(f"{op} cannot turn data of shape {tuple(data)} ({size(data)} elements) into shape "
                            f"{tuple(out)} ({size(out)} elements)")


def fill_one_unknown(data, out):
    """Data whose shape has one unknown (0) dimension, from the complete shape of the view of
    it: the dimension that makes both sizes equal (MXNet's ReverseReshapeInferShape)."""
    if data is None or out is None or 0 in out or list(data).count(0) != 1:
        return data
    known = size([d for d in data if d])
    if known == 0 or size(out) % known:
        return data
    return tuple(size(out) // known if d == 0 else d for d in data)
