"""Gated activations: ``data * act(gate)`` elementwise, the gated linear units of modern
transformers' feed-forward blocks (SwiGLU with silu, GeGLU with gelu or gelu_tanh, GLU with
sigmoid, ReGLU with relu). One kernel each way: the forward never stores ``act(gate)``, and
the backward computes it again from the two inputs, so a training step keeps the two
inputs where the unfused graph (an activation, then a product) keeps ``act(gate)`` too.
The activations are ``activation.py``'s helpers, the same math and NaN rules.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    KernelArgumentError,
    Launch,
    check_same,
    check_tensor,
    element_block,
    element_offsets,
    elementwise_launches,
    load_wide,
    prepare_out,
    store,
    store_result,
)
from .activation import act_forward, act_grad_from_input

TESTS = ("tests/test_operators.py", "tests/test_gradcheck.py", "tests/test_gated_activation.py")
GATES = ("silu", "gelu", "gelu_tanh", "sigmoid", "relu", "tanh")


@triton.jit
def _gated_forward_kernel(X, G, OUT, n, sizes, x_strides, g_strides, out_strides,
                          ACT: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr):
    """Each program computes out = x * act(g) for BLOCK elements."""
    index, mask = element_block(n, BLOCK)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    g = load_wide(G, element_offsets(index, FLAT, sizes, g_strides), mask, 0.0)
    store(OUT, element_offsets(index, FLAT, sizes, out_strides), x * act_forward(g, ACT, 0.0), mask)


@triton.jit
def _gated_backward_kernel(DY, X, G, DX, DG, n, sizes, dy_strides, x_strides, g_strides, dx_strides, dg_strides,
                           ACT: tl.constexpr, HAS_DX: tl.constexpr, HAS_DG: tl.constexpr,
                           ACCUMULATE_DX: tl.constexpr, ACCUMULATE_DG: tl.constexpr,
                           FLAT: tl.constexpr, BLOCK: tl.constexpr):
    """dx (+)= dy * act(g) and dg (+)= dy * x * act'(g) for BLOCK elements. Each element's
    two gradients are stored by one thread, dx first: where data and gate are one array
    (``x * silu(x)``) and ``dg`` is the same array, added after ``dx``, both count."""
    index, mask = element_block(n, BLOCK)
    dy = load_wide(DY, element_offsets(index, FLAT, sizes, dy_strides), mask, 0.0)
    g = load_wide(G, element_offsets(index, FLAT, sizes, g_strides), mask, 0.0)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    if HAS_DX:
        store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), dy * act_forward(g, ACT, 0.0), mask,
                     ACCUMULATE_DX)
    if HAS_DG:
        store_result(DG, element_offsets(index, FLAT, sizes, dg_strides), dy * x * act_grad_from_input(g, ACT, 0.0),
                     mask, ACCUMULATE_DG)


def _check(fn: str, act: str, **tensors: torch.Tensor | None) -> dict[str, torch.Tensor]:
    if act not in GATES:
        raise KernelArgumentError(f"{fn}: act_type={act!r} is not one of {', '.join(GATES)}")
    given = {name: t for name, t in tensors.items() if t is not None}
    for name, t in given.items():
        check_tensor(fn, name, t)
    check_same(fn, "shape", **given)
    check_same(fn, "dtype", **given)
    check_same(fn, "device", **given)
    return given


def plan_gated_forward(x: torch.Tensor, gate: torch.Tensor, out: torch.Tensor, act: str) -> list[Launch]:
    fn = "gated_activation"
    _check(fn, act, data=x, gate=gate)
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    return elementwise_launches(fn, x.shape, dict(x=x, g=gate, out=out), lambda t, args, flat, grid: Launch(
        _gated_forward_kernel, grid, [*t.values(), *args], dict(ACT=act, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def plan_gated_backward(grad_out: torch.Tensor, x: torch.Tensor, gate: torch.Tensor, grad_x: torch.Tensor | None,
                        grad_gate: torch.Tensor | None, act: str, accumulate_x: bool = False,
                        accumulate_gate: bool = False) -> list[Launch]:
    """The gradients of ``x * act(gate)`` for those given (None: not wanted)."""
    fn = "gated_activation_backward"
    _check(fn, act, grad_out=grad_out, data=x, gate=gate, grad_data=grad_x, grad_gate=grad_gate)
    if grad_x is None and grad_gate is None:
        return []
    tensors = dict(dy=grad_out, x=x, g=gate, dx=grad_x if grad_x is not None else grad_out,
                   dg=grad_gate if grad_gate is not None else grad_out)
    return elementwise_launches(fn, x.shape, tensors, lambda t, args, flat, grid: Launch(
        _gated_backward_kernel, grid, [*t.values(), *args],
        dict(ACT=act, HAS_DX=grad_x is not None, HAS_DG=grad_gate is not None, ACCUMULATE_DX=accumulate_x,
             ACCUMULATE_DG=accumulate_gate, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (8192, 4096) if large else (5, 3, 7)
    x = torch.empty(shape, dtype=dtype)
    return [(f"gated {act}", plan_gated_forward(x, x, torch.empty_like(x), act)[0]) for act in ("silu", "gelu")] + [
        ("gated silu backward", plan_gated_backward(x, x, x, torch.empty_like(x), torch.empty_like(x), "silu")[0]),
        ("gated silu backward accumulating",
         plan_gated_backward(x, x, x, torch.empty_like(x), None, "silu", accumulate_x=True)[0])]
