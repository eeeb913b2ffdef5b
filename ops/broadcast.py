"""Broadcasting, numpy's rules (MXNet's broadcast_* operators): an operand is read through a
view with stride 0 along the axes it is broadcast over, so forward costs one elementwise
pass and nothing is copied. Its gradient is the output-shaped gradient summed over those
axes: written straight into the operand's gradient where nothing is broadcast, else into an
output-shaped scratch buffer that one reduction then sums (``reduce.py``, accumulating where
the gradient adds). No kernels of its own: the elementwise and reduction kernels, composed.
"""

from __future__ import annotations

import torch

from ._common import KernelArgumentError, Launch
from .elementwise import plan_binary_backward, plan_binary_forward
from .memory import plan_copy
from .reduce import plan_reduce


def broadcast_shape(fn: str, *shapes) -> tuple[int, ...]:
    """numpy's broadcast of ``shapes`` (aligned at the right; each axis equal or 1)."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis, sizes in enumerate(zip(*padded)):
        wide = {n for n in sizes if n != 1}
        if len(wide) > 1:
            raise KernelArgumentError(f"{fn}: shapes {', '.join(str(tuple(s)) for s in shapes)} cannot be "
                                      f"broadcast together (axis {axis} of the aligned shapes: {sizes})")
        out.append(wide.pop() if wide else 1)
    return tuple(out)


def broadcast_axes(shape, out_shape) -> tuple[int, ...]:
    """The axes of ``out_shape`` along which an operand of ``shape`` is repeated."""
    pad = len(out_shape) - len(shape)
    return tuple(a for a in range(len(out_shape)) if a < pad or (shape[a - pad] == 1 and out_shape[a] != 1))


def expanded(t: torch.Tensor, out_shape) -> torch.Tensor:
    """``t`` as a view of ``out_shape`` (stride 0 along the broadcast axes)."""
    return t.reshape((1,) * (len(out_shape) - t.dim()) + tuple(t.shape)).expand(out_shape)


def plan_broadcast_binary_forward(op: str, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> list[Launch]:
    """``out = a OP b`` with numpy's broadcasting (``op`` one of elementwise.BINARY_OPS)."""
    shape = broadcast_shape(f"broadcast {op}", a.shape, b.shape)
    return plan_binary_forward(op, expanded(a, shape), expanded(b, shape), out)


def scratch_needed(a_shape, b_shape) -> dict[str, bool]:
    """Which operands' gradients go through an output-shaped scratch buffer (broadcast ones)."""
    shape = broadcast_shape("broadcast", a_shape, b_shape)
    return {"lhs": bool(broadcast_axes(a_shape, shape)), "rhs": bool(broadcast_axes(b_shape, shape))}


def plan_broadcast_binary_backward(op: str, grad_out: torch.Tensor, a: torch.Tensor | None, b: torch.Tensor | None,
                                   grad_a: torch.Tensor | None, grad_b: torch.Tensor | None, *,
                                   a_shape=None, b_shape=None, accumulate_a: bool = False,
                                   accumulate_b: bool = False, scratch_a: torch.Tensor | None = None,
                                   scratch_b: torch.Tensor | None = None) -> list[Launch]:
    """The gradients of ``a OP b`` broadcast; a broadcast operand's gradient needs its
    ``scratch`` of the output's shape (``scratch_needed`` says which). ``a`` and ``b`` are
    read only where the gradient needs their values (mul, div, ...); their shapes may be
    given instead (add, sub, the comparisons keep no operand for backward)."""
    shape = tuple(grad_out.shape)
    a_shape = tuple(a.shape) if a is not None else tuple(a_shape)
    b_shape = tuple(b.shape) if b is not None else tuple(b_shape)
    targets, sums = [], []
    for name, x_shape, grad, accumulate, scratch in (("lhs", a_shape, grad_a, accumulate_a, scratch_a),
                                                      ("rhs", b_shape, grad_b, accumulate_b, scratch_b)):
        axes = broadcast_axes(x_shape, shape)
        if grad is None or not axes:
            targets.append((grad.reshape(shape) if grad is not None else None, accumulate))
            continue
        if scratch is None or tuple(scratch.shape) != shape:
            raise KernelArgumentError(f"broadcast {op} backward: {name} is broadcast over axes {axes}: its gradient "
                                      f"needs a scratch buffer of the output's shape {shape}")
        targets.append((scratch, False))
        sums += plan_reduce(scratch, grad, "sum", axes, accumulate=accumulate)
    (ga, acc_a), (gb, acc_b) = targets
    a_view = expanded(a, shape) if a is not None else None
    b_view = expanded(b, shape) if b is not None else None
    return plan_binary_backward(op, grad_out, a_view, b_view, ga, gb, acc_a, acc_b) + sums


def plan_broadcast_to(x: torch.Tensor, out: torch.Tensor) -> list[Launch]:
    """``out = x`` repeated along its broadcast axes."""
    broadcast_shape("broadcast_to", x.shape, out.shape)
    return plan_copy(expanded(x, out.shape), out)


def plan_broadcast_to_backward(grad_out: torch.Tensor, grad_x: torch.Tensor, accumulate: bool = False):
    """``grad_x (+)=`` ``grad_out`` summed over the axes ``grad_x`` was repeated along."""
    axes = broadcast_axes(grad_x.shape, grad_out.shape)
    if not axes:
        return plan_copy(grad_out.reshape(grad_x.shape), grad_x, accumulate=accumulate)
    return plan_reduce(grad_out, grad_x, "sum", axes, accumulate=accumulate)
