"""The gamma function, its logarithm, the digamma function and the inverse error function as
jit helpers (``unary_math.py`` makes MXNet's ``gamma``, ``gammaln`` and ``erfinv`` of them).

Each computes in float64 whatever the data's dtype (float32 and half-precision values are
exact in it), from Triton's own functions: libdevice does not run in the interpreter.

- log Gamma(x) for x >= 1/2 by Lanczos' series (g = 7, nine terms: float64 to some 1e-15),
  below by the reflection Gamma(x) Gamma(1 - x) = pi / sin(pi x), with sin(pi x) taken from
  x's distance to its nearest whole number (exact), so no digits go at large negative x.
- Gamma(x) as exp(log |Gamma(x)|) with the sign of sin(pi x): float64 to about |log Gamma(x)|
  ulps (1e-13 relative near 171, where it overflows). At the poles C's tgamma and lgamma
  hold: Gamma(+-0) = +-inf, Gamma of a negative whole number NaN, log Gamma there inf.
- digamma(x) = d log Gamma / dx, the gradient of both: raised past 10 by psi(x) = psi(x + 1)
  - 1 / x, then the asymptotic series to x**-14 (its next term under 1e-16 there); below 1/2
  the reflection psi(x) = psi(1 - x) - pi / tan(pi x). NaN at the poles (0 and the negative
  whole numbers), where it has no value.
- erfinv by Giles' approximation ("Approximating the erfinv function", GPU Computing Gems,
  2011: about 4e-7 relative over float32's inputs, a few percent at 1 - 1e-15), then three
  Halley steps on erf(x) - y (cubic; from the left, as concave erf is approached near 1,
  never overshooting): float64's limit, which near 1 is the problem's own (between
  neighbouring float64 inputs there the answer moves by 0.886 exp(x**2) ulps of y).
"""

from __future__ import annotations

import math

import triton
import triton.language as tl

PI: tl.constexpr = tl.constexpr(math.pi)
LOG_PI: tl.constexpr = tl.constexpr(math.log(math.pi))
HALF_LOG_TWO_PI: tl.constexpr = tl.constexpr(0.5 * math.log(2.0 * math.pi))
HALF_SQRT_PI: tl.constexpr = tl.constexpr(0.5 * math.sqrt(math.pi))
# Lanczos' coefficients for g = 7 (Numerical Recipes' and Wikipedia's table).
L0: tl.constexpr = tl.constexpr(0.99999999999980993)
L1: tl.constexpr = tl.constexpr(676.5203681218851)
L2: tl.constexpr = tl.constexpr(-1259.1392167224028)
L3: tl.constexpr = tl.constexpr(771.32342877765313)
L4: tl.constexpr = tl.constexpr(-176.61502916214059)
L5: tl.constexpr = tl.constexpr(12.507343278686905)
L6: tl.constexpr = tl.constexpr(-0.13857109526572012)
L7: tl.constexpr = tl.constexpr(9.9843695780195716e-6)
L8: tl.constexpr = tl.constexpr(1.5056327351493116e-7)


@triton.jit
def _lgamma_from_half(x):
    """log Gamma(x) for x >= 1/2 (Lanczos); inf at inf."""
    z = x - 1.0
    a = L0 + L1 / (z + 1.0) + L2 / (z + 2.0) + L3 / (z + 3.0) + L4 / (z + 4.0) + L5 / (z + 5.0) \
        + L6 / (z + 6.0) + L7 / (z + 7.0) + L8 / (z + 8.0)
    t = z + 7.5
    r = (z + 0.5) * tl.log(t) - t + tl.log(a) + HALF_LOG_TWO_PI
    return tl.where(x == float("inf"), x, r)


@triton.jit
def _sin_pi(x):
    """sin(pi x) from x's offset to its nearest whole number n (exact), sign (-1)**n."""
    n = tl.floor(x + 0.5)
    s = tl.sin((x - n) * PI)
    odd = (n - 2.0 * tl.floor(n * 0.5)) != 0.0
    return tl.where(odd, -s, s)


@triton.jit
def lgamma(x):
    """log |Gamma(x)| (C's lgamma): inf at 0, the negative whole numbers and +-inf."""
    x = x.to(tl.float64)
    reflected = x < 0.5
    r = _lgamma_from_half(tl.where(reflected, 1.0 - x, x))
    r = tl.where(reflected, -tl.log(tl.abs(_sin_pi(x))) - r + LOG_PI, r)
    pole = (x <= 0.0) & (x == tl.floor(x))
    return tl.where(pole | (x == float("-inf")), float("inf"), r)


@triton.jit
def gamma(x):
    """Gamma(x) (C's tgamma): +-inf at +-0, NaN at the negative whole numbers and -inf."""
    x = x.to(tl.float64)
    magnitude = tl.exp(lgamma(x))
    r = tl.where((x < 0.0) & (_sin_pi(x) < 0.0), -magnitude, magnitude)
    r = tl.where(x == 0.0, 1.0 / x, r)
    return tl.where((x < 0.0) & (x == tl.floor(x)), float("nan"), r)


@triton.jit
def digamma(x):
    """psi(x) = Gamma'(x) / Gamma(x); NaN at the poles, inf at inf."""
    x = x.to(tl.float64)
    reflected = x < 0.5
    y = tl.where(reflected, 1.0 - x, x)
    shift = tl.zeros_like(y)
    for _ in tl.static_range(10):
        low = y < 10.0
        shift = tl.where(low, shift - 1.0 / y, shift)
        y = tl.where(low, y + 1.0, y)
    w = 1.0 / (y * y)
    # -1/(12 y^2) + 1/(120 y^4) - 1/(252 y^6) + 1/(240 y^8) - 1/(132 y^10) + 691/(32760 y^12) - 1/(12 y^14)
    series = w * (-1.0 / 12.0 + w * (1.0 / 120.0 + w * (-1.0 / 252.0 + w * (1.0 / 240.0 + w * (
        -1.0 / 132.0 + w * (691.0 / 32760.0 - w / 12.0))))))
    r = tl.log(y) - 0.5 / y + series + shift
    n = tl.floor(x + 0.5)
    offset = (x - n) * PI  # tan(pi x) = tan(pi (x - n))
    r = tl.where(reflected, r - tl.cos(offset) / tl.sin(offset) * PI, r)
    r = tl.where(x == float("inf"), x, r)
    return tl.where(((x <= 0.0) & (x == tl.floor(x))) | (x == float("-inf")), float("nan"), r)


@triton.jit
def _giles_erfinv(x):
    """Giles' single-precision erfinv (relative error about 4e-7), evaluated in float64."""
    w = -tl.log((1.0 - x) * (1.0 + x))
    c = w - 2.5
    central = 2.81022636e-08
    central = 3.43273939e-07 + central * c
    central = -3.5233877e-06 + central * c
    central = -4.39150654e-06 + central * c
    central = 0.00021858087 + central * c
    central = -0.00125372503 + central * c
    central = -0.00417768164 + central * c
    central = 0.246640727 + central * c
    central = 1.50140941 + central * c
    t = tl.sqrt(tl.where(w < 5.0, 5.0, w)) - 3.0
    tail = -0.000200214257
    tail = 0.000100950558 + tail * t
    tail = 0.00134934322 + tail * t
    tail = -0.00367342844 + tail * t
    tail = 0.00573950773 + tail * t
    tail = -0.0076224613 + tail * t
    tail = 0.00943887047 + tail * t
    tail = 1.00167406 + tail * t
    tail = 2.83297682 + tail * t
    return tl.where(w < 5.0, central, tail) * x


@triton.jit
def erfinv(y):
    """The x with erf(x) = y: +-inf at +-1, NaN past them."""
    y = y.to(tl.float64)
    inside = tl.abs(y) < 1.0
    x = _giles_erfinv(tl.where(inside, y, 0.0))
    for _ in tl.static_range(3):
        u = (tl.erf(x) - tl.where(inside, y, 0.0)) * tl.exp(x * x) * HALF_SQRT_PI  # Newton's step
        # Halley's (erf'' / erf' = -2x), or Newton's where Halley's denominator nears 0
        x = x - tl.where(x * u > -0.5, u / (1.0 + x * u), u)
    x = tl.where(tl.abs(y) == 1.0, y * float("inf"), x)
    return tl.where(inside | (tl.abs(y) == 1.0), x, float("nan"))


@triton.jit
def erfinv_slope(x):
    """d erfinv(y) / dy at x = erfinv(y): sqrt(pi) / 2 exp(x**2)."""
    x = x.to(tl.float64)
    return tl.exp(x * x) * HALF_SQRT_PI
