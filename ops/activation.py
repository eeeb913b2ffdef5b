"""Activation functions: forward and backward kernels, and the jit helpers that the
FullyConnected epilogue fuses.

Each activation is a pair of pure helpers, ``act_forward`` and a gradient helper. Where
the derivative can be written in terms of the output (relu, sigmoid, tanh, softrelu,
softsign, selu, leaky with slope >= 0, elu with slope > 0), backward needs only the
output, so the input can be freed after forward; gelu, gelu_tanh (GPT-2's tanh
approximation), silu (x * sigmoid(x), SwiGLU's gate) and leaky/elu with other slopes need
the input.
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
    expm1,
    keep_nan,
    load_wide,
    log1p,
    prepare_out,
    run,
    store,
    store_result,
    widen,
)

ACTIVATIONS = ("relu", "sigmoid", "tanh", "softrelu", "softsign", "leaky", "elu", "selu", "gelu", "gelu_tanh",
               "silu")

# SELU's constants (Klambauer et al. 2017), as constexprs so that the kernels can read them.
SELU_LAMBDA: tl.constexpr = tl.constexpr(1.0507009873554804934193349852946)
SELU_ALPHA: tl.constexpr = tl.constexpr(1.6732632423543772848170429916717)
# GELU's (the exact, erf form): 1/sqrt(2) and the standard normal density's 1/sqrt(2*pi).
SQRT_HALF: tl.constexpr = tl.constexpr(0.7071067811865476)
INV_SQRT_2PI: tl.constexpr = tl.constexpr(0.3989422804014327)
# GELU's tanh approximation (GPT-2's; torch's approximate="tanh"): sqrt(2/pi) and the cubic's.
SQRT_2_OVER_PI: tl.constexpr = tl.constexpr(0.7978845608028654)
GELU_CUBIC: tl.constexpr = tl.constexpr(0.044715)


def grad_from_output(act: str, slope: float = 0.0) -> bool:
    """True when act'(x) can be computed from y = act(x) alone."""
    if act in ("gelu", "gelu_tanh", "silu"):
        return False
    if act == "leaky":
        return slope >= 0.0  # y > 0 exactly when x > 0
    if act == "elu":
        return slope > 0.0  # then y + slope = slope * exp(x) for x <= 0
    return act in ACTIVATIONS


# --------------------------------------------------------------------- math helpers


@triton.jit
def sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def tanh(x):
    """tanh; there is no tl.tanh, and 2*sigmoid(2x)-1 would lose every digit near 0.
    -e / (2 + e) with e = expm1(-2|x|) keeps them, to 4.5 ulp. In float64 (what gradient
    checks and the PyTorch comparisons run in) |x| >= 0.4 takes 1 - 2u / (1 + u) with
    u = exp(-2|x|) instead: 3 ulp at most, half an ulp where tanh saturates and the
    gradient 1 - y*y keeps only the digits y has. float32 keeps the one expression: in a
    fused FullyConnected epilogue the second branch costs up to 68 registers a thread more
    (perf/kernel_report.py)."""
    a = tl.abs(x)
    e = expm1(-2.0 * a)
    t = -e / (2.0 + e)
    if x.dtype == tl.float64:
        u = tl.exp(-2.0 * a)
        t = tl.where(a < 0.4, t, 1.0 - 2.0 * u / (1.0 + u))
    return tl.where(x < 0, -t, t)


@triton.jit
def act_forward(x, ACT: tl.constexpr, slope):
    """y = act(x) for x in float32 or float64. ``ACT == "none"`` is the identity. NaN in
    gives NaN out: every branch on ``x > 0`` lets a NaN through (``x < 0`` is false for it)."""
    if ACT == "relu":
        y = tl.where(x < 0, 0.0, x)
    elif ACT == "sigmoid":
        y = sigmoid(x)
    elif ACT == "tanh":
        y = tanh(x)
    elif ACT == "softrelu":
        y = tl.maximum(x, 0.0) + log1p(tl.exp(-tl.abs(x)))
    elif ACT == "softsign":
        y = x / (1.0 + tl.abs(x))
    elif ACT == "leaky":
        y = tl.where(x < 0, slope * x, x)
    elif ACT == "elu":
        y = tl.where(x < 0, slope * expm1(x), x)
    elif ACT == "selu":
        y = SELU_LAMBDA * tl.where(x < 0, SELU_ALPHA * expm1(x), x)
    elif ACT == "gelu":
        y = 0.5 * x * (1.0 + tl.erf(x * SQRT_HALF))
    elif ACT == "gelu_tanh":
        y = 0.5 * x * (1.0 + tanh((x + x * x * x * GELU_CUBIC) * SQRT_2_OVER_PI))  # constexprs on the right
    elif ACT == "silu":
        y = x * sigmoid(x)
    else:
        y = x
    return y


@triton.jit
def act_grad_from_output(y, ACT: tl.constexpr, slope):
    """act'(x) written in terms of y = act(x); valid where ``grad_from_output`` says so."""
    if ACT == "relu":
        d = tl.where(y > 0, 1.0, 0.0)
    elif ACT == "sigmoid":
        d = y * (1.0 - y)
    elif ACT == "tanh":
        d = 1.0 - y * y
    elif ACT == "softrelu":
        d = -expm1(-y)
    elif ACT == "softsign":
        d = (1.0 - tl.abs(y)) * (1.0 - tl.abs(y))
    elif ACT == "leaky":
        d = tl.where(y > 0, 1.0, slope)
    elif ACT == "elu":
        d = tl.where(y > 0, 1.0, y + slope)
    elif ACT == "selu":
        d = tl.where(y > 0, SELU_LAMBDA, y + SELU_LAMBDA * SELU_ALPHA)
    else:
        d = tl.full(y.shape, 1.0, y.dtype)
    if ACT != "none":
        d = keep_nan(y, d)
    return d.to(y.dtype)


@triton.jit
def act_grad_from_input(x, ACT: tl.constexpr, slope):
    """act'(x) from the input."""
    if ACT == "relu":
        d = tl.where(x > 0, 1.0, 0.0)
    elif ACT == "sigmoid":
        s = sigmoid(x)
        d = s * (1.0 - s)
    elif ACT == "tanh":
        t = tanh(x)
        d = 1.0 - t * t
    elif ACT == "softrelu":
        d = sigmoid(x)
    elif ACT == "softsign":
        d = 1.0 / ((1.0 + tl.abs(x)) * (1.0 + tl.abs(x)))
    elif ACT == "leaky":
        d = tl.where(x > 0, 1.0, slope)
    elif ACT == "elu":
        d = tl.where(x > 0, 1.0, slope * tl.exp(x))
    elif ACT == "selu":
        d = tl.where(x > 0, SELU_LAMBDA, SELU_LAMBDA * SELU_ALPHA * tl.exp(x))
    elif ACT == "gelu":
        d = 0.5 * (1.0 + tl.erf(x * SQRT_HALF)) + x * tl.exp(-0.5 * x * x) * INV_SQRT_2PI
    elif ACT == "gelu_tanh":
        t = tanh((x + x * x * x * GELU_CUBIC) * SQRT_2_OVER_PI)
        d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + x * x * (3.0 * GELU_CUBIC))
    elif ACT == "silu":
        s = sigmoid(x)
        d = s * (1.0 + x * (1.0 - s))
    else:
        d = tl.full(x.shape, 1.0, x.dtype)
    if ACT != "none":
        d = keep_nan(x, d)
    return d.to(x.dtype)


# -------------------------------------------------------------------------- kernels


@triton.jit
def _activation_forward_kernel(
    X, Y, slope: tl.float64, n, sizes, x_strides, y_strides,
    ACT: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program computes y = act(x) for BLOCK consecutive (row-major) elements."""
    index, mask = element_block(n, BLOCK)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 0.0)
    store(Y, element_offsets(index, FLAT, sizes, y_strides), act_forward(x, ACT, widen(slope, X)), mask)


@triton.jit
def _activation_backward_kernel(
    DY, V, DX, slope: tl.float64, n, sizes, dy_strides, v_strides, dx_strides,
    ACT: tl.constexpr, FROM_OUTPUT: tl.constexpr, ACCUMULATE: tl.constexpr,
    FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program computes dx (+)= dy * act'(v) for BLOCK elements; v is y or x."""
    index, mask = element_block(n, BLOCK)
    dy = load_wide(DY, element_offsets(index, FLAT, sizes, dy_strides), mask, 0.0)
    v = load_wide(V, element_offsets(index, FLAT, sizes, v_strides), mask, 0.0)
    if FROM_OUTPUT:
        d = act_grad_from_output(v, ACT, widen(slope, DX))
    else:
        d = act_grad_from_input(v, ACT, widen(slope, DX))
    store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), dy * d, mask, ACCUMULATE)


# ------------------------------------------------------------------------ launchers


def _check_act(fn: str, act: str, slope: float) -> None:
    if act not in ACTIVATIONS:
        raise KernelArgumentError(f"{fn}: act_type={act!r} is not one of {', '.join(ACTIVATIONS)}")


def plan_activation_forward(x: torch.Tensor, out: torch.Tensor, act: str, slope: float = 0.0) -> list[Launch]:
    fn = "activation_forward"
    _check_act(fn, act, slope)
    check_tensor(fn, "x", x)
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    return elementwise_launches(fn, x.shape, dict(x=x, out=out), lambda t, args, flat, grid: Launch(
        _activation_forward_kernel, grid, [t["x"], t["out"], float(slope), *args],
        dict(ACT=act, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def activation_forward(x: torch.Tensor, act: str, slope: float = 0.0, out: torch.Tensor | None = None) -> torch.Tensor:
    """``out = act(x)`` elementwise; any shape and strides, float64/32/16 and bfloat16.

    ``act`` is one of ``ACTIVATIONS``; ``slope`` is leaky's negative slope or elu's alpha.
    """
    out = prepare_out("activation_forward", "out", out, x.shape, x.dtype, x.device)
    run(plan_activation_forward(x, out, act, slope))
    return out


def plan_activation_backward(grad_out: torch.Tensor, saved: torch.Tensor, grad_in: torch.Tensor, act: str,
                             slope: float = 0.0, from_output: bool = True, accumulate: bool = False) -> list[Launch]:
    fn = "activation_backward"
    _check_act(fn, act, slope)
    if from_output and not grad_from_output(act, slope):
        raise KernelArgumentError(f"{fn}: the gradient of act_type={act!r} with slope={slope} needs the input, "
                                  "not the output; pass the input with from_output=False")
    check_tensor(fn, "grad_out", grad_out)
    check_tensor(fn, "saved", saved)
    check_same(fn, "shape", grad_out=grad_out, saved=saved)
    check_same(fn, "device", grad_out=grad_out, saved=saved)
    grad_in = prepare_out(fn, "grad_in", grad_in, saved.shape, saved.dtype, saved.device)
    tensors = dict(grad_out=grad_out, saved=saved, grad_in=grad_in)
    return elementwise_launches(fn, saved.shape, tensors, lambda t, args, flat, grid: Launch(
        _activation_backward_kernel, grid, [*t.values(), float(slope), *args],
        dict(ACT=act, FROM_OUTPUT=from_output, ACCUMULATE=accumulate, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def activation_backward(grad_out: torch.Tensor, saved: torch.Tensor, act: str, slope: float = 0.0,
                        from_output: bool = True, grad_in: torch.Tensor | None = None,
                        accumulate: bool = False) -> torch.Tensor:
    """``grad_in (+)= grad_out * act'(x)``, with ``saved`` the output y (``from_output``) or the input x."""
    grad_in = prepare_out("activation_backward", "grad_in", grad_in, saved.shape, saved.dtype, saved.device)
    run(plan_activation_backward(grad_out, saved, grad_in, act, slope, from_output, accumulate))
    return grad_in


# ------------------------------------------------------------------- catalogue

TESTS = ("tests/test_kernels_activation.py",)  # what exercises these kernels (the mutation check runs them)


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """One launch of each kernel and compile-time variant in ``dtype`` (every activation in
    float32 and bfloat16, which stores through its own rounding path; tanh, which has a
    float64 branch of its own, and one more elsewhere), on
    irregular shapes or (``large``) on 2**24 elements: what ``ops.catalog`` compiles for a
    GPU, reports on and checks for completeness."""
    shape = (1 << 12, 1 << 12) if large else (33, 17)
    kinds = ACTIVATIONS if dtype in (torch.float32, torch.bfloat16) else ("softrelu", "tanh")
    out = []
    for kind in kinds:
        v = torch.empty(shape, dtype=dtype)
        out += [(f"activation {kind}", launch) for launch in plan_activation_forward(v, torch.empty_like(v), kind, 0.1)]
        out += [(f"activation grad {kind}", launch) for launch in plan_activation_backward(
            v, v, torch.empty_like(v), kind, 0.1, from_output=grad_from_output(kind, 0.1))]
    return out
