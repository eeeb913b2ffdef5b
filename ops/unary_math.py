"""The functions of the unary elementwise kernels (``elementwise.py``): each one's value and
gradient as jit helpers, and what each gradient reads.

MXNet 1.x's unary math operators: the powers and logarithms (``exp``, ``log``, ``log2``,
``log10``, ``log1p``, ``expm1``, ``sqrt``, ``rsqrt``, ``square``, ``reciprocal``), the
trigonometric and hyperbolic functions (``sin``, ``cos``, ``tan``, ``sinh``, ``cosh``) and
their inverses (``arcsin``, ``arccos``, ``arctan``, ``arcsinh``, ``arccosh``, ``arctanh``),
the cube roots (``cbrt``, ``rcbrt``), ``erf``, ``erfinv``, ``gamma``, ``gammaln``
(``_special_functions.py``: float64 inside, whatever the dtype), unit changes (``degrees``,
``radians``), and the piecewise constant ones (``sign``, ``floor``, ``ceil``, ``round`` half
away from zero, ``rint`` half down as MXNet's, ``trunc`` and ``fix`` toward zero,
``logical_not``: 1 where x is 0, else 0, NaN included, as MXNet's), whose gradient is 0 as
in MXNet. Helpers work in float32 or float64 (half-precision inputs are widened on load)
with Triton's own functions only: libdevice does not run in the interpreter.
"""

from __future__ import annotations

import math

import triton
import triton.language as tl

from ._common import expm1, keep_nan, log1p
from ._special_functions import digamma, erfinv, erfinv_slope, gamma, lgamma

STEPS = ("sign", "floor", "ceil", "round", "rint", "trunc", "fix", "logical_not")
INVERSE_TRIG = ("arcsin", "arccos", "arctan", "arcsinh", "arccosh", "arctanh")
UNARY_OPS = ("negative", "exp", "log", "sqrt", "square", "abs", "reciprocal", "sin", "cos", "tan", "sinh", "cosh",
             "erf", "log1p", "expm1", "log2", "log10", "rsqrt", "degrees", "radians", *INVERSE_TRIG, "cbrt", "rcbrt",
             *STEPS, "gamma", "gammaln", "erfinv")

# What each gradient reads besides the output gradient: the "input", the "output", or nothing.
UNARY_NEEDS = {"negative": (), "exp": ("output",), "log": ("input",), "sqrt": ("output",), "square": ("input",),
               "abs": ("input",), "reciprocal": ("output",), "sin": ("input",), "cos": ("input",),
               "tan": ("output",), "sinh": ("input",), "cosh": ("input",), "erf": ("input",), "log1p": ("input",),
               "expm1": ("output",), "log2": ("input",), "log10": ("input",), "rsqrt": ("output",),
               "degrees": (), "radians": (), **dict.fromkeys(INVERSE_TRIG, ("input",)), "cbrt": ("output",),
               "rcbrt": ("output",), **dict.fromkeys(STEPS, ()), "gamma": ("input", "output"), "gammaln": ("input",),
               "erfinv": ("output",)}

INV_LN10: tl.constexpr = tl.constexpr(1.0 / math.log(10.0))
LN2: tl.constexpr = tl.constexpr(math.log(2.0))
LN10: tl.constexpr = tl.constexpr(math.log(10.0))
TWO_OVER_SQRT_PI: tl.constexpr = tl.constexpr(2.0 / math.sqrt(math.pi))
DEGREES_PER_RADIAN: tl.constexpr = tl.constexpr(180.0 / math.pi)
RADIANS_PER_DEGREE: tl.constexpr = tl.constexpr(math.pi / 180.0)
HALF_PI: tl.constexpr = tl.constexpr(math.pi / 2.0)
SIXTH_PI: tl.constexpr = tl.constexpr(math.pi / 6.0)
INV_SQRT3: tl.constexpr = tl.constexpr(1.0 / math.sqrt(3.0))
TAN_TWELFTH_PI: tl.constexpr = tl.constexpr(2.0 - math.sqrt(3.0))
# Past this magnitude asinh(x) and acosh(x) are log(2|x|) to well under an ulp (the next term
# is 1 / (4 x**2)), and x**2 would overflow float32 not far beyond.
LARGE: tl.constexpr = tl.constexpr(1e8)


@triton.jit
def _atan(x):
    """arctan without a library call: |x| > 1 folds to pi/2 - atan(1/|x|), past tan(pi/12)
    the argument moves by pi/6 (atan(t) = pi/6 + atan((t - 1/sqrt3) / (1 + t/sqrt3))), and
    on |t| <= tan(pi/12) = 0.268 the series t - t**3/3 + ... to t**31 (its next term under
    1e-18 of t): float64 to a few ulps."""
    a = tl.abs(x)
    big = a > 1.0
    t = tl.where(big, 1.0 / tl.where(big, a, 1.0), a)
    shifted = t > TAN_TWELFTH_PI
    t = tl.where(shifted, (t - INV_SQRT3) / (1.0 + t * INV_SQRT3), t)
    z = t * t
    p = tl.zeros_like(z)
    for k in tl.static_range(15, -1, -1):
        p = p * z + (1.0 - 2.0 * (k % 2)) / (2.0 * k + 1.0)
    r = t * p
    r = tl.where(shifted, r + SIXTH_PI, r)
    r = tl.where(big, HALF_PI - r, r)
    return tl.where(x < 0, -r, r)


@triton.jit
def _asinh(x):
    """sign(x) log1p(|x| + x**2 / (1 + sqrt(1 + x**2))): no cancellation near 0 or for x < 0."""
    a = tl.abs(x)
    small = tl.where(a > LARGE, 0.0, a)
    r = tl.where(a > LARGE, tl.log(a) + LN2, log1p(small + small * small / (1.0 + tl.sqrt(1.0 + small * small))))
    return tl.where(x < 0, -r, r)


@triton.jit
def _acosh(x):
    """log1p((x - 1) + sqrt((x - 1)(x + 1))): exact near 1; NaN below it (the square root's
    product overflows to inf for x far below, so that is said outright)."""
    small = tl.where(x > LARGE, 1.0, x)
    u = small - 1.0
    r = tl.where(x > LARGE, tl.log(x) + LN2, log1p(u + tl.sqrt(u * (small + 1.0))))
    return tl.where(x < 1.0, float("nan"), r)


@triton.jit
def _cbrt(x):
    """The real cube root: exp(log|x| / 3), then one Newton step (to about an ulp), the sign
    restored; 0, the infinities and NaN pass through."""
    a = tl.abs(x)
    y = tl.exp(tl.log(a) / 3.0)
    finite = (a > 0.0) & (a < float("inf"))
    y2 = tl.where(finite, y * y, 1.0)
    y = tl.where(finite, y - (y2 * y - a) / (3.0 * y2), y)
    return tl.where(x < 0, -y, y)


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
    elif OP == "arctan":
        r = _atan(x)
    elif OP == "arcsin":  # atan(x / sqrt(1 - x**2)): +-pi/2 at +-1, NaN past
        r = _atan(x / tl.sqrt((1.0 - x) * (1.0 + x)))
    elif OP == "arccos":  # 2 atan(sqrt((1 - x) / (1 + x))): no cancellation near 1
        r = 2.0 * _atan(tl.sqrt((1.0 - x) / (1.0 + x)))
    elif OP == "arcsinh":
        r = _asinh(x)
    elif OP == "arccosh":
        r = _acosh(x)
    elif OP == "arctanh":  # odd; log1p(2|x| / (1 - |x|)) / 2: inf at 1, NaN past (no 1 + t near 0)
        a = tl.abs(x)
        r = 0.5 * log1p(2.0 * a / (1.0 - a))
        r = tl.where(x < 0, -r, r)
    elif OP == "cbrt":
        r = _cbrt(x)
    elif OP == "rcbrt":
        r = 1.0 / _cbrt(x)
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
    elif OP == "gamma":
        r = gamma(x)
    elif OP == "gammaln":
        r = lgamma(x)
    elif OP == "erfinv":
        r = erfinv(x)
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
    elif OP == "arcsin":
        d = g / tl.sqrt((1.0 - x) * (1.0 + x))
    elif OP == "arccos":
        d = -g / tl.sqrt((1.0 - x) * (1.0 + x))
    elif OP == "arctan":
        d = g / (1.0 + x * x)
    elif OP == "arcsinh":
        d = g / tl.sqrt(1.0 + x * x)
    elif OP == "arccosh":
        d = g / tl.sqrt((x - 1.0) * (x + 1.0))
    elif OP == "arctanh":
        d = g / ((1.0 - x) * (1.0 + x))
    elif OP == "cbrt":  # 1 / (3 cbrt(x)**2): inf at 0
        d = g / (3.0 * y * y)
    elif OP == "rcbrt":  # -x**(-4/3) / 3 = -y**4 / 3
        d = g * (y * y) * (y * y) * (-1.0 / 3.0)
    elif OP == "gamma":  # Gamma(x) psi(x); at +-0, where Gamma is +-1/x, -inf (as 1/x's is)
        d = tl.where(x == 0.0, g * float("-inf"), g * y * digamma(x))
    elif OP == "gammaln":
        d = g * digamma(x)
    elif OP == "erfinv":
        d = g * erfinv_slope(y)
    else:  # piecewise constant: 0, and NaN where the output gradient is NaN
        d = g * 0.0
    return d
