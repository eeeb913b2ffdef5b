"""The functions of the unary elementwise kernels (``elementwise.py``): each one's value
and gradient as jit helpers, and what each gradient reads.

MXNet 1.x's unary math operators: the powers and logarithms (``exp``, ``log``, ``log2``,
``log10``, ``log1p``, ``expm1``, ``sqrt``, ``rsqrt``, ``square``, ``reciprocal``), the
trigonometric and hyperbolic functions that need no library call (``sin``, ``cos``, ``tan``,
``sinh``, ``cosh``), ``erf``, unit changes (``degrees``, ``radians``), and the piecewise
constant ones (``sign``, ``floor``, ``ceil``, ``round`` half away from zero, ``rint`` half
down as MXNet's, ``trunc`` and ``fix`` toward zero, ``logical_not``: 1 where x is 0, else 0,
NaN included, as MXNet's), whose gradient is 0 as in MXNet. Helpers work
in float32 or float64 (half-precision inputs are widened on load) with Triton's own
functions only: libdevice does not run in the interpreter.
"""

from __future__ import annotations

import math

import triton
import triton.language as tl

from ._common import expm1, keep_nan, log1p

STEPS = ("sign", "floor", "ceil", "round", "rint", "trunc", "fix", "logical_not")
UNARY_OPS = ("negative", "exp", "log", "sqrt", "square", "abs", "reciprocal", "sin", "cos", "tan", "sinh", "cosh",
             "erf", "log1p", "expm1", "log2", "log10", "rsqrt", "degrees", "radians", *STEPS)

# What each gradient reads besides the output gradient: the "input", the "output", or nothing.
UNARY_NEEDS = {"negative": (), "exp": ("output",), "log": ("input",), "sqrt": ("output",), "square": ("input",),
               "abs": ("input",), "reciprocal": ("output",), "sin": ("input",), "cos": ("input",),
               "tan": ("output",), "sinh": ("input",), "cosh": ("input",), "erf": ("input",), "log1p": ("input",),
               "expm1": ("output",), "log2": ("input",), "log10": ("input",), "rsqrt": ("output",),
               "degrees": (), "radians": (), **dict.fromkeys(STEPS, ())}

INV_LN10: tl.constexpr = tl.constexpr(1.0 / math.log(10.0))
LN2: tl.constexpr = tl.constexpr(math.log(2.0))
LN10: tl.constexpr = tl.constexpr(math.log(10.0))
TWO_OVER_SQRT_PI: tl.constexpr = tl.constexpr(2.0 / math.sqrt(math.pi))
DEGREES_PER_RADIAN: tl.constexpr = tl.constexpr(180.0 / math.pi)
RADIANS_PER_DEGREE: tl.constexpr = tl.constexpr(math.pi / 180.0)


@triton.jit
def _sinh(x):
    # expm1 on both sides keeps the digits near 0, where (exp(x) - exp(-x)) / 2 cancels.
    return 0.5 * (expm1(x) - expm1(-x))


@triton.jit
def _cosh(x):
    return 0.5 * (tl.exp(x) + tl.exp(-x))


@triton.jit
def _round_half_away(x):
    """MXNet's ``round`` (C's roundf). ``a - floor(a)`` is exact, and 0 from 2**23 (float32)
    on, where every value is a whole number and adding 0.5 first would round it to another."""
    a = tl.abs(x)
    f = tl.floor(a)
    r = f + tl.where(a - f >= 0.5, 1.0, 0.0)
    return tl.where(x < 0, r * -1.0, r)  # not -r: Triton 3.6 negates as 0 - r, +0 for +0


@triton.jit
def _rint(x):
    """MXNet's ``rint``: the nearer of floor(x) and ceil(x), floor on a tie (so 1.5 -> 1 and
    -0.5 -> -1: not C's rintf, which takes the even one; recorded from MXNet 1.9.1)."""
    f = tl.floor(x)
    r = f + tl.where(x - f > 0.5, 1.0, 0.0)
    return tl.where(r == 0, x * 0.0, r)  # -0.3 gives ceil's -0


@triton.jit
def unary_value(x, OP: tl.constexpr):
    """OP(x). NaN in gives NaN out (``sign`` keeps it explicitly; the rest compute with it)."""
    if OP == "negative":
        r = x * -1.0  # -0 for +0 (Triton 3.6's -x is 0 - x)
    elif OP == "exp":
        r = tl.exp(x)
    elif OP == "log":
        r = tl.log(x)
    elif OP == "sqrt":
        r = tl.sqrt(x)
    elif OP == "square":
        r = x * x
    elif OP == "abs":
        r = tl.abs(x)
    elif OP == "reciprocal":
        r = 1.0 / x
    elif OP == "sin":
        r = tl.sin(x)
    elif OP == "cos":
        r = tl.cos(x)
    elif OP == "tan":
        r = tl.sin(x) / tl.cos(x)
    elif OP == "sinh":
        r = _sinh(x)
    elif OP == "cosh":
        r = _cosh(x)
    elif OP == "erf":
        r = tl.erf(x)
    elif OP == "log1p":
        r = log1p(x)
    elif OP == "expm1":
        r = expm1(x)
    elif OP == "log2":
        r = tl.log2(x)
    elif OP == "log10":
        r = tl.log(x) * INV_LN10
    elif OP == "rsqrt":
        r = 1.0 / tl.sqrt(x)
    elif OP == "degrees":
        r = x * DEGREES_PER_RADIAN
    elif OP == "radians":
        r = x * RADIANS_PER_DEGREE
    elif OP == "sign":
        r = keep_nan(x, tl.where(x > 0, 1.0, tl.where(x < 0, -1.0, 0.0)))
    elif OP == "floor":
        r = tl.floor(x)
    elif OP == "ceil":
        r = tl.ceil(x)
    elif OP == "round":
        r = _round_half_away(x)
    elif OP == "rint":
        r = _rint(x)
    elif OP == "logical_not":  # NaN is not 0: 0, as MXNet's !x
        r = tl.where(x == 0.0, 1.0, 0.0)
    else:  # trunc, fix: toward zero
        r = tl.where(x < 0, tl.ceil(x), tl.floor(x))
    return r


@triton.jit
def unary_grad(g, x, y, OP: tl.constexpr):
    """g * OP'(x), from the input ``x`` or the output ``y`` as ``UNARY_NEEDS`` says (the
    other is whatever the caller had at hand)."""
    if OP == "negative":
        d = -g
    elif OP == "exp":
        d = g * y
    elif OP == "log":
        d = g / x
    elif OP == "sqrt":
        d = g * 0.5 / y
    elif OP == "square":
        d = 2.0 * g * x
    elif OP == "abs":
        d = keep_nan(x, tl.where(x > 0, g, tl.where(x < 0, -g, 0.0)))
    elif OP == "reciprocal":
        d = -g * y * y
    elif OP == "sin":
        d = g * tl.cos(x)
    elif OP == "cos":
        d = -g * tl.sin(x)
    elif OP == "tan":
        d = g * (1.0 + y * y)
    elif OP == "sinh":
        d = g * _cosh(x)
    elif OP == "cosh":
        d = g * _sinh(x)
    elif OP == "erf":
        d = g * (TWO_OVER_SQRT_PI * tl.exp(-x * x))
    elif OP == "log1p":
        d = g / (1.0 + x)
    elif OP == "expm1":
        d = g * (y + 1.0)
    elif OP == "log2":
        d = g / (x * LN2)
    elif OP == "log10":
        d = g / (x * LN10)
    elif OP == "rsqrt":
        d = -0.5 * g * y * y * y
    elif OP == "degrees":
        d = g * DEGREES_PER_RADIAN
    elif OP == "radians":
        d = g * RADIANS_PER_DEGREE
    else:  # piecewise constant: 0, and NaN where the output gradient is NaN
        d = g * 0.0
    return d
