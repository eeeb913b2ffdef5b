"""Elementwise arithmetic and comparisons: tensor-tensor (same shape), tensor-scalar and
unary, with backward.

Every kernel indexes through up to 4 strided dimensions (``element_offsets``), so
transposed, sliced and expanded (stride-0) inputs work; when every operand is one
contiguous run, as every tensor of a bound graph is, the index math is compiled out.
Backward kernels write or accumulate (``grad_req='add'``, or a value read twice in one
graph) each input gradient, and read only the saved values the ``*_NEEDS`` tables name.
"""

from __future__ import annotations

import math

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
    run,
    store,
    store_result,
    widen,
)
from .unary_math import UNARY_NEEDS, UNARY_OPS, unary_grad, unary_value

# Comparisons give 1.0 where they hold and 0.0 elsewhere (IEEE: NaN compares unequal to
# everything), as MXNet's _equal, _greater, ... do; their gradient is 0 (times the output
# gradient, so a NaN there stays NaN).
COMPARISONS = ("equal", "not_equal", "greater", "greater_equal", "lesser", "lesser_equal")
# The logical operators (MXNet's) read any nonzero value as true, NaN too (C's truth): 1.0 or
# 0.0, with gradient 0, as the comparisons. hypot is sqrt(a**2 + b**2) without overflow or
# underflow (C's: inf if either is infinite, even beside NaN). mod is a - floor(a / b) b, the
# sign of b's (Python's %, numpy's mod, MXNet's _mod), exact (``_floor_mod``); x mod 0 is NaN
# (MXNet gives 0). Its gradients: 1 for a, -floor(a / b) for b (MXNet's).
LOGICAL = ("logical_and", "logical_or", "logical_xor")
BINARY_OPS = ("add", "sub", "mul", "div", "maximum", "minimum", "power", *COMPARISONS, "hypot", *LOGICAL, "mod")
# smooth_l1 (MXNet's, the scalar its sigma): 0.5 (sigma x)**2 where |x| <= 1 / sigma**2, else
# |x| - 0.5 / sigma**2; its gradient sigma**2 x, else the sign of x. hard_sigmoid (MXNet's,
# the scalar its alpha and ``second`` its beta): clip(alpha x + beta, 0, 1); its gradient alpha
# strictly inside (0, 1), else 0 (NaN at NaN). mod is x mod scalar (a scalar of 0 is refused),
# rmod scalar mod x.
SCALAR_OPS = ("plus", "minus", "rminus", "mul", "div", "rdiv", "power", "rpower", "maximum", "minimum",
              *COMPARISONS, "smooth_l1", "hard_sigmoid", "hypot", *LOGICAL, "mod", "rmod")

# What each backward reads besides the output gradient: "lhs"/"rhs"/"input"/"output".
BINARY_NEEDS = {"add": (), "sub": (), "mul": ("lhs", "rhs"), "div": ("lhs", "rhs"), "maximum": ("lhs", "rhs"),
                "minimum": ("lhs", "rhs"), "power": ("lhs", "rhs"), **dict.fromkeys(COMPARISONS, ()),
                "hypot": ("lhs", "rhs"), **dict.fromkeys(LOGICAL, ()), "mod": ("lhs", "rhs")}
SCALAR_NEEDS = {"plus": (), "minus": (), "rminus": (), "mul": (), "div": (), "rdiv": ("input",),
                "power": ("input",), "rpower": ("output",), "maximum": ("input",), "minimum": ("input",),
                **dict.fromkeys(COMPARISONS, ()), "smooth_l1": ("input",), "hard_sigmoid": ("input",),
                "hypot": ("input",), **dict.fromkeys(LOGICAL, ()), "mod": (), "rmod": ("input",)}


# --------------------------------------------------------------------- math helpers


@triton.jit
def _power(x, e, SMALL_INT: tl.constexpr, IS_INT: tl.constexpr, ODD: tl.constexpr):
    """x ** e. Small integer exponents multiply out (exact as numpy); others go through
    exp/log with the sign of an odd integer power restored and NaN for finite x < 0 otherwise."""
    if SMALL_INT != 0:
        r = x
        for _ in tl.static_range((SMALL_INT if SMALL_INT > 0 else -SMALL_INT) - 1):
            r = r * x
        if SMALL_INT < 0:
            r = 1.0 / r
    else:
        r = tl.exp(e * tl.log(tl.abs(x)))
        if IS_INT:
            if ODD:
                r = tl.where(x < 0, -r, r)
        else:  # NaN for a negative base, but (-inf) ** e is inf or 0, as C's pow and numpy say
            r = tl.where((x < 0) & (x > float("-inf")), float("nan"), r)
        r = tl.where(e == 0, 1.0, r)
    return r


@triton.jit
def _tensor_power(x, e):
    """x ** e elementwise (C's pow): exp/log for |x|, the sign of an odd integer power of a
    negative x restored, NaN for a negative x and a fractional e, 0 ** 0 = 1."""
    r = tl.exp(e * tl.log(tl.abs(x)))
    whole = e == tl.floor(e)
    # Whole exponents below 64 in size multiply out (square and multiply), exact as numpy's.
    k = tl.where(whole & (tl.abs(e) < 64), tl.abs(e), 0.0).to(tl.int32)
    product = tl.full(x.shape, 1.0, x.dtype)
    square = tl.abs(x)
    for _ in tl.static_range(6):
        product = tl.where((k & 1) != 0, product * square, product)
        square = square * square
        k = k >> 1
    product = tl.where(e < 0, 1.0 / product, product)
    r = tl.where(whole & (tl.abs(e) < 64), product, r)
    odd = whole & (tl.abs(e - 2.0 * tl.floor(e / 2.0)) == 1.0)
    r = tl.where((x < 0) & odd, -r, r)
    r = tl.where((x < 0) & (x > float("-inf")) & ~whole, float("nan"), r)
    return tl.where(e == 0, 1.0, r)


@triton.jit
def _larger(a, b, OP: tl.constexpr):
    """MXNet's maximum/minimum choice: a where a >= b (maximum) or a <= b (minimum), else b.
    A NaN on either side makes the result NaN, as numpy's and torch's do."""
    if OP == "maximum":
        r = tl.where(a >= b, a, b)
    else:
        r = tl.where(a <= b, a, b)
    return tl.where(a != a, a, tl.where(b != b, b, r))


@triton.jit
def _compare(a, b, OP: tl.constexpr):
    """1.0 where ``a OP b`` holds, else 0.0; OP is one of ``COMPARISONS``."""
    if OP == "equal":
        holds = a == b
    elif OP == "not_equal":
        holds = a != b
    elif OP == "greater":
        holds = a > b
    elif OP == "greater_equal":
        holds = a >= b
    elif OP == "lesser":
        holds = a < b
    else:
        holds = a <= b
    return tl.where(holds, 1.0, 0.0)


@triton.jit
def _logical(a, b, OP: tl.constexpr):
    """1.0 where ``a OP b`` holds of their truth (nonzero, NaN included), else 0.0."""
    if OP == "logical_and":
        holds = (a != 0.0) & (b != 0.0)
    elif OP == "logical_or":
        holds = (a != 0.0) | (b != 0.0)
    else:
        holds = (a != 0.0) != (b != 0.0)
    return tl.where(holds, 1.0, 0.0)


@triton.jit
def _hypot(a, b):
    """sqrt(a**2 + b**2) scaled by the larger magnitude (no overflow or underflow); inf where
    either is infinite, NaN beside NaN otherwise, 0 for two zeros."""
    x, y = tl.abs(a), tl.abs(b)
    big = tl.where(x >= y, x, y)
    small = tl.where(x >= y, y, x)
    ratio = small / tl.where(big == 0.0, 1.0, big)
    r = big * tl.sqrt(1.0 + ratio * ratio)
    r = tl.where((x != x) | (y != y), x + y, r)  # NaN, unless the other is infinite (below)
    return tl.where((x == float("inf")) | (y == float("inf")), float("inf"), r)


@triton.jit
def _power_of_two(k):
    """2.0 ** k, exactly, for a whole k in [-1022, 1023] (float64 bits built from k)."""
    return ((k.to(tl.int64) + 1023) << 52).to(tl.float64, bitcast=True)


@triton.jit
def _exponent(v):
    """floor(log2(v)) for v > 0 in float64: from the bits (exact) for a normal v, from log2
    for a subnormal one (the caller corrects a step off by one)."""
    field = (v.to(tl.int64, bitcast=True) >> 52) & 2047
    return tl.where(field == 0, tl.floor(tl.log2(v)), (field - 1023).to(tl.float64))


@triton.jit
def _mod_reduce(x, y, LIMIT: tl.constexpr):
    """x less a multiple of |y|, sign kept, with |x| brought below LIMIT |y|, exactly
    (float64). Each step takes from |x| the t = |y| 2**k with t <= |x| < 2 t: Sterbenz's lemma
    makes |x| - t exact, and the quotient loses its leading bit. As many steps as the
    quotient has bits set past LIMIT; a block with none takes none."""
    ax = tl.abs(x)
    ay = tl.abs(y)
    finite = (ay > 0.0) & (ax < float("inf")) & (ay < float("inf"))  # False at NaN too
    big = finite & (ax >= ay * LIMIT)
    while tl.max(big.to(tl.int32), 0) > 0:
        k = tl.where(big, _exponent(ax) - _exponent(ay), 0.0)
        third = tl.floor(k / 3.0)  # 2**k in three factors: k reaches 2097 (2**1023 / 2**-1074)
        t = ay * _power_of_two(third) * _power_of_two(third) * _power_of_two(k - 2.0 * third)
        t = tl.where(t > ax, t * 0.5, t)
        t = tl.where(t * 2.0 <= ax, t * 2.0, t)
        ax = tl.where(big, ax - t, ax)
        big = finite & (ax >= ay * LIMIT)
    return tl.where(x < 0.0, -ax, tl.where(x > 0.0, ax, x))


@triton.jit
def _floor_mod(a, b):
    """(a mod b, floor(a / b)), the remainder of b's sign, in float64, as Python's % and
    numpy's mod (and torch's remainder). Exact without an fma (Triton 3.6's interpreter
    rounds its fma twice): float64 operands are reduced below |b| step by step
    (``_mod_reduce``); narrower ones (24 bits at most) below 2**29 |b| (almost always
    already), where q = floor(a / b) times b is exact in float64 and so is a - q b. The
    rounded quotient can be one too many: then r is moved back by b, which rounds once where
    the result is not representable (a tiny negative a mod 1 is 1 - tiny: 1.0, as in
    Python). The quotient, for the gradient, is (a - r) / b rounded (exact below 2**51),
    the rounded a / b beyond. An infinite b leaves a finite a (or b, when their signs
    differ); b = 0 gives NaN."""
    y = b.to(tl.float64)
    x0 = a.to(tl.float64)
    if a.dtype == tl.float64:
        x = _mod_reduce(x0, y, 1.0)
    else:
        x = _mod_reduce(x0, y, 536870912.0)  # 2**29
    q = tl.floor(x / y)
    r = x - q * y
    below = (r != 0.0) & ((r < 0.0) != (y < 0.0))
    r = tl.where(below, r + y, r)
    whole = tl.floor(x0 / y)
    q = tl.where(tl.abs(whole) < 2251799813685248.0, tl.floor((x0 - r) / y + 0.5), whole)  # 2**51
    infinite = (tl.abs(y) == float("inf")) & (tl.abs(x0) < float("inf"))
    r = tl.where(infinite, tl.where((x0 == 0.0) | ((x0 < 0.0) == (y < 0.0)), x0, y), r)
    q = tl.where(infinite, whole, q)
    r = tl.where(y == 0.0, float("nan"), r)
    return r, tl.where(y == 0.0, float("nan"), q)


def _exponent_kind(e: float) -> dict:
    """Compile-time facts about an exponent for ``_power``."""
    is_int = float(e).is_integer()
    small = int(e) if is_int and 0 < abs(e) <= 4 else 0
    odd = is_int and int(e) % 2 == 1
    return dict(SMALL_INT=small, IS_INT=is_int, ODD=odd)


# -------------------------------------------------------------------------- kernels


@triton.jit
def _binary_forward_kernel(
    A, B, OUT, n, sizes, a_strides, b_strides, out_strides,
    OP: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program computes out = a OP b for BLOCK elements."""
    index, mask = element_block(n, BLOCK)
    a = load_wide(A, element_offsets(index, FLAT, sizes, a_strides), mask, 0.0)
    b = load_wide(B, element_offsets(index, FLAT, sizes, b_strides), mask, 1.0)
    if OP == "add":
        r = a + b
    elif OP == "sub":
        r = a - b
    elif OP == "mul":
        r = a * b
    elif OP == "div":
        r = a / b
    elif OP == "maximum" or OP == "minimum":
        r = _larger(a, b, OP)
    elif OP == "power":
        r = _tensor_power(a, b)
    elif OP == "hypot":
        r = _hypot(a, b)
    elif OP == "logical_and" or OP == "logical_or" or OP == "logical_xor":
        r = _logical(a, b, OP)
    elif OP == "mod":
        r, _ = _floor_mod(a, b)
    else:
        r = _compare(a, b, OP)
    store(OUT, element_offsets(index, FLAT, sizes, out_strides), r, mask)


@triton.jit
def _binary_backward_kernel(
    DOUT, A, B, DA, DB, n, sizes, g_strides, a_strides, b_strides, da_strides, db_strides,
    OP: tl.constexpr, HAS_DA: tl.constexpr, HAS_DB: tl.constexpr,
    ACCUMULATE_DA: tl.constexpr, ACCUMULATE_DB: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program computes da (+)= dout * d(a OP b)/da and the same for b, for BLOCK elements."""
    index, mask = element_block(n, BLOCK)
    g = load_wide(DOUT, element_offsets(index, FLAT, sizes, g_strides), mask, 0.0)
    if OP == "mul" or OP == "div" or OP == "maximum" or OP == "minimum" or OP == "power" or OP == "hypot" \
            or OP == "mod":
        a = load_wide(A, element_offsets(index, FLAT, sizes, a_strides), mask, 0.0)
        b = load_wide(B, element_offsets(index, FLAT, sizes, b_strides), mask, 1.0)
    if OP == "hypot":  # a / h and b / h: NaN at 0 (no direction there), as MXNet's and torch's
        h = _hypot(a, b)
    if OP == "mod":  # the gradients where the result is defined: NaN at b = 0
        _, q = _floor_mod(a, b)
    if OP == "maximum":  # MXNet's: a's where a >= b, b's where a < b (neither where NaN)
        a_chosen = a >= b
        b_chosen = a < b
    elif OP == "minimum":
        a_chosen = a <= b
        b_chosen = a > b
    if HAS_DA:
        if OP == "add" or OP == "sub":
            da = g
        elif OP == "mul":
            da = g * b
        elif OP == "div":
            da = g / b
        elif OP == "maximum" or OP == "minimum":
            da = tl.where(a_chosen, g, 0.0)
        elif OP == "power":  # x ** 0 is constant: gradient 0, also where 0 * 0 ** -1 would be NaN
            da = tl.where(b == 0.0, g * 0.0, g * b * _tensor_power(a, b - 1.0))
        elif OP == "hypot":
            da = g * a / h
        elif OP == "mod":
            da = tl.where(b == 0.0, float("nan"), g)
        else:
            da = g * 0.0
        store_result(DA, element_offsets(index, FLAT, sizes, da_strides), da, mask, ACCUMULATE_DA)
    if HAS_DB:
        if OP == "add":
            db = g
        elif OP == "sub":
            db = -g
        elif OP == "mul":
            db = g * a
        elif OP == "div":
            db = -g * a / (b * b)
        elif OP == "maximum" or OP == "minimum":
            db = tl.where(b_chosen, g, 0.0)
        elif OP == "power":  # 0 ** b is 0 or 1 for b >= 0 whatever b: gradient 0 there (as torch)
            db = tl.where((a == 0.0) & (b >= 0.0), g * 0.0, g * _tensor_power(a, b) * tl.log(a))
        elif OP == "hypot":
            db = g * b / h
        elif OP == "mod":
            db = -g * q
        else:
            db = g * 0.0
        store_result(DB, element_offsets(index, FLAT, sizes, db_strides), db, mask, ACCUMULATE_DB)


@triton.jit
def _scalar_forward_kernel(
    X, OUT, scalar: tl.float64, second: tl.float64, n, sizes, x_strides, out_strides,
    OP: tl.constexpr, SMALL_INT: tl.constexpr, IS_INT: tl.constexpr, ODD: tl.constexpr,
    FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program computes out = x OP scalar for BLOCK elements."""
    index, mask = element_block(n, BLOCK)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
    s = widen(scalar, OUT)
    if OP == "plus":
        r = x + s
    elif OP == "minus":
        r = x - s
    elif OP == "rminus":
        r = s - x
    elif OP == "mul":
        r = x * s
    elif OP == "div":
        r = x / s
    elif OP == "rdiv":
        r = s / x
    elif OP == "power":
        r = _power(x, s, SMALL_INT, IS_INT, ODD)
    elif OP == "rpower":
        r = tl.exp(x * widen(second, OUT))  # second: log(scalar)
    elif OP == "maximum" or OP == "minimum":
        r = _larger(x, s, OP)
    elif OP == "smooth_l1":
        square = s * s  # the quadratic part's reach is 1 / square; at it the two parts meet
        r = tl.where(x * square > 1.0, x - 0.5 / square,
                     tl.where(x * square < -1.0, -x - 0.5 / square, 0.5 * square * x * x))
    elif OP == "hard_sigmoid":  # comparisons, not min/max: NaN stays NaN
        v = s * x + widen(second, OUT)
        r = tl.where(v < 0.0, 0.0, tl.where(v > 1.0, 1.0, v))
    elif OP == "hypot":  # the scalar as a block: the helpers combine masks of both sides
        r = _hypot(x, tl.zeros_like(x) + s)
    elif OP == "logical_and" or OP == "logical_or" or OP == "logical_xor":
        r = _logical(x, tl.zeros_like(x) + s, OP)
    elif OP == "mod":
        r, _ = _floor_mod(x, tl.zeros_like(x) + s)
    elif OP == "rmod":
        r, _ = _floor_mod(tl.zeros_like(x) + s, x)
    else:
        r = _compare(x, s, OP)
    store(OUT, element_offsets(index, FLAT, sizes, out_strides), r, mask)


@triton.jit
def _scalar_backward_kernel(
    DOUT, X, OUT, DX, scalar: tl.float64, second: tl.float64,
    n, sizes, g_strides, x_strides, out_strides, dx_strides,
    OP: tl.constexpr, SMALL_INT: tl.constexpr, IS_INT: tl.constexpr, ODD: tl.constexpr,
    ACCUMULATE: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program computes dx (+)= dout * d(x OP scalar)/dx for BLOCK elements.
    For ``power`` the constexprs describe the exponent scalar - 1."""
    index, mask = element_block(n, BLOCK)
    g = load_wide(DOUT, element_offsets(index, FLAT, sizes, g_strides), mask, 0.0)
    s = widen(scalar, DOUT)
    if OP == "plus" or OP == "minus":
        d = g
    elif OP == "rminus":
        d = -g
    elif OP == "mul":
        d = g * s
    elif OP == "div":
        d = g / s
    elif OP == "rdiv":
        x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
        d = -g * s / (x * x)
    elif OP == "power":
        x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
        # x ** 0 is constant: its gradient is 0 everywhere, also where 0 * x ** -1 is 0 * inf.
        d = tl.where(s == 0.0, g * 0.0, g * s * _power(x, s - 1.0, SMALL_INT, IS_INT, ODD))
    elif OP == "rpower":
        y = load_wide(OUT, element_offsets(index, FLAT, sizes, out_strides), mask, 0.0)
        # second: log(scalar), finite (the launcher checks that the base is positive)
        d = g * y * widen(second, DOUT)
    elif OP == "maximum":  # MXNet's: x's gradient where x >= scalar
        x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
        d = tl.where(x >= s, g, 0.0)
    elif OP == "minimum":
        x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
        d = tl.where(x <= s, g, 0.0)
    elif OP == "smooth_l1":
        x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
        square = s * s
        d = tl.where(x * square > 1.0, g, tl.where(x * square < -1.0, -g, g * square * x))
    elif OP == "hard_sigmoid":
        x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
        v = s * x + widen(second, DOUT)
        d = tl.where(v != v, v, tl.where((v > 0.0) & (v < 1.0), g * s, g * 0.0))
    elif OP == "hypot":
        x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
        d = g * x / _hypot(x, tl.zeros_like(x) + s)
    elif OP == "mod":  # the scalar is not 0 (refused)
        d = g
    elif OP == "rmod":
        x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
        _, q = _floor_mod(tl.zeros_like(x) + s, x)
        d = -g * q
    else:
        d = g * 0.0
    store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), d, mask, ACCUMULATE)


@triton.jit
def _unary_forward_kernel(
    X, OUT, n, sizes, x_strides, out_strides,
    OP: tl.constexpr, FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program computes out = OP(x) for BLOCK elements."""
    index, mask = element_block(n, BLOCK)
    x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
    store(OUT, element_offsets(index, FLAT, sizes, out_strides), unary_value(x, OP), mask)


@triton.jit
def _unary_backward_kernel(
    DOUT, X, OUT, DX, n, sizes, g_strides, x_strides, out_strides, dx_strides,
    OP: tl.constexpr, READS_X: tl.constexpr, READS_OUT: tl.constexpr, ACCUMULATE: tl.constexpr,
    FLAT: tl.constexpr, BLOCK: tl.constexpr,
):
    """Each program computes dx (+)= dout * OP'(x) for BLOCK elements; reads x or the output
    as ``UNARY_NEEDS`` says."""
    index, mask = element_block(n, BLOCK)
    g = load_wide(DOUT, element_offsets(index, FLAT, sizes, g_strides), mask, 0.0)
    x = g
    y = g
    if READS_X:
        x = load_wide(X, element_offsets(index, FLAT, sizes, x_strides), mask, 1.0)
    if READS_OUT:
        y = load_wide(OUT, element_offsets(index, FLAT, sizes, out_strides), mask, 1.0)
    store_result(DX, element_offsets(index, FLAT, sizes, dx_strides), unary_grad(g, x, y, OP), mask, ACCUMULATE)


# ------------------------------------------------------------------------ launchers


def _check_op(fn: str, op: str, known: tuple) -> None:
    if op not in known:
        raise KernelArgumentError(f"{fn}: op={op!r} is not one of {', '.join(known)}")


def _check_operands(fn: str, shape, **tensors: torch.Tensor | None) -> None:
    for name, t in tensors.items():
        if t is not None:
            check_tensor(fn, name, t)
            if tuple(t.shape) != tuple(shape):
                raise KernelArgumentError(
                    f"{fn}: {name} has shape {tuple(t.shape)} but the operands have {tuple(shape)}")
    check_same(fn, "device", **tensors)


def _stand_in(t: torch.Tensor | None, default: torch.Tensor) -> torch.Tensor:
    """A pointer for an operand the kernel will not touch in this configuration."""
    return default if t is None else t


def _one_input_gradient(fn: str, needs: tuple, grad_out: torch.Tensor, x: torch.Tensor | None,
                        out: torch.Tensor | None, grad_x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The checked tensors of a scalar or unary backward, in kernel order: the input or the
    output (as ``needs`` says) must be given; one not needed stands in as ``grad_out``."""
    if ("input" in needs and x is None) or ("output" in needs and out is None):
        raise KernelArgumentError(f"{fn}: the gradient reads the {needs[0]}; pass it")
    _check_operands(fn, grad_out.shape, grad_out=grad_out, x=x, out=out)
    grad_x = prepare_out(fn, "grad_x", grad_x, grad_out.shape, grad_out.dtype, grad_out.device)
    return dict(grad_out=grad_out, x=_stand_in(x, grad_out), out=_stand_in(out, grad_out), grad_x=grad_x)


def plan_binary_forward(op: str, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> list[Launch]:
    fn = f"binary_forward({op})"
    _check_op(fn, op, BINARY_OPS)
    _check_operands(fn, a.shape, a=a, b=b)
    check_same(fn, "dtype", a=a, b=b)
    out = prepare_out(fn, "out", out, a.shape, a.dtype, a.device)
    return elementwise_launches(fn, a.shape, dict(a=a, b=b, out=out), lambda t, args, flat, grid: Launch(
        _binary_forward_kernel, grid, [*t.values(), *args], dict(OP=op, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def binary_forward(op: str, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``out = a OP b`` for ``op`` in ``BINARY_OPS``; ``a`` and ``b`` have one shape and dtype."""
    out = prepare_out(f"binary_forward({op})", "out", out, a.shape, a.dtype, a.device)
    run(plan_binary_forward(op, a, b, out))
    return out


def plan_binary_backward(op: str, grad_out: torch.Tensor, a: torch.Tensor | None, b: torch.Tensor | None,
                         grad_a: torch.Tensor | None, grad_b: torch.Tensor | None,
                         accumulate_a: bool = False, accumulate_b: bool = False) -> list[Launch]:
    fn = f"binary_backward({op})"
    _check_op(fn, op, BINARY_OPS)
    if "lhs" in BINARY_NEEDS[op] and (a is None or b is None):
        raise KernelArgumentError(f"{fn}: the gradient of {op} reads both operands; pass a and b")
    _check_operands(fn, grad_out.shape, grad_out=grad_out, a=a, b=b, grad_a=grad_a, grad_b=grad_b)
    if grad_a is None and grad_b is None:
        return []
    for name, grad in (("grad_a", grad_a), ("grad_b", grad_b)):
        if grad is not None:
            prepare_out(fn, name, grad, grad_out.shape, grad_out.dtype, grad_out.device)
    tensors = dict(grad_out=grad_out, a=_stand_in(a, grad_out), b=_stand_in(b, grad_out),
                   grad_a=_stand_in(grad_a, grad_out), grad_b=_stand_in(grad_b, grad_out))
    return elementwise_launches(fn, grad_out.shape, tensors, lambda t, args, flat, grid: Launch(
        _binary_backward_kernel, grid, [*t.values(), *args],
        dict(OP=op, HAS_DA=grad_a is not None, HAS_DB=grad_b is not None, ACCUMULATE_DA=accumulate_a,
             ACCUMULATE_DB=accumulate_b, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def binary_backward(op: str, grad_out: torch.Tensor, a: torch.Tensor | None = None, b: torch.Tensor | None = None,
                    grad_a: torch.Tensor | None = None, grad_b: torch.Tensor | None = None,
                    accumulate_a: bool = False, accumulate_b: bool = False) -> None:
    """Gradients of ``a OP b`` into the given ``grad_a`` / ``grad_b`` (either may be None)."""
    run(plan_binary_backward(op, grad_out, a, b, grad_a, grad_b, accumulate_a, accumulate_b))


def _scalar_constants(fn: str, op: str, scalar: float, second: float) -> tuple[float, dict]:
    """(the kernels' second constant, the exponent's compile-time description)."""
    scalar = float(scalar)
    if op == "mod" and scalar == 0.0:
        raise KernelArgumentError(f"{fn}: x mod 0 is undefined; got scalar={scalar}")
    if op == "rpower":
        if not scalar > 0:
            raise KernelArgumentError(f"{fn}: the base of rpower must be positive, got scalar={scalar}")
        return math.log(scalar), dict(SMALL_INT=0, IS_INT=False, ODD=False)
    if op == "power":
        return 0.0, _exponent_kind(scalar)
    return float(second), dict(SMALL_INT=0, IS_INT=False, ODD=False)


def plan_scalar_forward(op: str, x: torch.Tensor, scalar: float, out: torch.Tensor,
                        second: float = 0.0) -> list[Launch]:
    fn = f"scalar_forward({op})"
    _check_op(fn, op, SCALAR_OPS)
    _check_operands(fn, x.shape, x=x)
    second, kind = _scalar_constants(fn, op, scalar, second)
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    return elementwise_launches(fn, x.shape, dict(x=x, out=out), lambda t, args, flat, grid: Launch(
        _scalar_forward_kernel, grid, [*t.values(), float(scalar), second, *args],
        dict(OP=op, **kind, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def scalar_forward(op: str, x: torch.Tensor, scalar: float, out: torch.Tensor | None = None,
                   second: float = 0.0) -> torch.Tensor:
    """``out = x OP scalar`` for ``op`` in ``SCALAR_OPS`` (``rminus``: scalar - x, ``rdiv``:
    scalar / x, ``power``: x ** scalar, ``rpower``: scalar ** x with scalar > 0,
    ``hard_sigmoid``: clip(scalar x + second, 0, 1))."""
    out = prepare_out(f"scalar_forward({op})", "out", out, x.shape, x.dtype, x.device)
    run(plan_scalar_forward(op, x, scalar, out, second))
    return out


def plan_scalar_backward(op: str, grad_out: torch.Tensor, x: torch.Tensor | None, out: torch.Tensor | None,
                         grad_x: torch.Tensor, scalar: float, accumulate: bool = False,
                         second: float = 0.0) -> list[Launch]:
    fn = f"scalar_backward({op})"
    _check_op(fn, op, SCALAR_OPS)
    tensors = _one_input_gradient(fn, SCALAR_NEEDS[op], grad_out, x, out, grad_x)
    second, _ = _scalar_constants(fn, op, scalar, second)
    kind = _exponent_kind(float(scalar) - 1.0) if op == "power" else dict(SMALL_INT=0, IS_INT=False, ODD=False)
    return elementwise_launches(fn, grad_out.shape, tensors, lambda t, args, flat, grid: Launch(
        _scalar_backward_kernel, grid, [*t.values(), float(scalar), second, *args],
        dict(OP=op, **kind, ACCUMULATE=accumulate, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def scalar_backward(op: str, grad_out: torch.Tensor, scalar: float, x: torch.Tensor | None = None,
                    out: torch.Tensor | None = None, grad_x: torch.Tensor | None = None,
                    accumulate: bool = False, second: float = 0.0) -> torch.Tensor:
    """``grad_x (+)= grad_out * d(x OP scalar)/dx``; pass ``x`` or ``out`` as ``SCALAR_NEEDS`` says."""
    grad_x = prepare_out(f"scalar_backward({op})", "grad_x", grad_x, grad_out.shape, grad_out.dtype, grad_out.device)
    run(plan_scalar_backward(op, grad_out, x, out, grad_x, scalar, accumulate, second))
    return grad_x


def plan_unary_forward(op: str, x: torch.Tensor, out: torch.Tensor) -> list[Launch]:
    fn = f"unary_forward({op})"
    _check_op(fn, op, UNARY_OPS)
    _check_operands(fn, x.shape, x=x)
    out = prepare_out(fn, "out", out, x.shape, x.dtype, x.device)
    return elementwise_launches(fn, x.shape, dict(x=x, out=out), lambda t, args, flat, grid: Launch(
        _unary_forward_kernel, grid, [*t.values(), *args], dict(OP=op, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def unary_forward(op: str, x: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """``out = OP(x)`` for ``op`` in ``UNARY_OPS``."""
    out = prepare_out(f"unary_forward({op})", "out", out, x.shape, x.dtype, x.device)
    run(plan_unary_forward(op, x, out))
    return out


def plan_unary_backward(op: str, grad_out: torch.Tensor, x: torch.Tensor | None, out: torch.Tensor | None,
                        grad_x: torch.Tensor, accumulate: bool = False) -> list[Launch]:
    fn = f"unary_backward({op})"
    _check_op(fn, op, UNARY_OPS)
    tensors = _one_input_gradient(fn, UNARY_NEEDS[op], grad_out, x, out, grad_x)
    return elementwise_launches(fn, grad_out.shape, tensors, lambda t, args, flat, grid: Launch(
        _unary_backward_kernel, grid, [*t.values(), *args],
        dict(OP=op, READS_X="input" in UNARY_NEEDS[op], READS_OUT="output" in UNARY_NEEDS[op], ACCUMULATE=accumulate,
             FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def unary_backward(op: str, grad_out: torch.Tensor, x: torch.Tensor | None = None, out: torch.Tensor | None = None,
                   grad_x: torch.Tensor | None = None, accumulate: bool = False) -> torch.Tensor:
    """``grad_x (+)= grad_out * OP'(x)``; pass ``x`` or ``out`` as ``UNARY_NEEDS`` says."""
    grad_x = prepare_out(f"unary_backward({op})", "grad_x", grad_x, grad_out.shape, grad_out.dtype, grad_out.device)
    run(plan_unary_backward(op, grad_out, x, out, grad_x, accumulate))
    return grad_x


# ------------------------------------------------------------------- catalogue

TESTS = ("tests/test_kernels_elementwise.py",)  # what exercises these kernels (the mutation check runs them)


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    """One launch of each kernel and operator variant in ``dtype`` (every operator in float32
    and bfloat16, one elsewhere), with a transposed operand, on irregular shapes or
    (``large``) 2**24 elements: what ``ops.catalog`` compiles, reports on and checks."""
    v = torch.empty((1 << 12, 1 << 12) if large else (33, 17), dtype=dtype)
    every = dtype in (torch.float32, torch.bfloat16)
    out = []
    for kind in BINARY_OPS if every else ("div", "greater"):
        out += [(f"binary {kind}", launch) for launch in plan_binary_forward(kind, v, v.T.contiguous().T, v)]
        out += [(f"binary grad {kind}", launch) for launch in plan_binary_backward(kind, v, v, v, v, v, True, False)]
    for kind in SCALAR_OPS if every else ("power", "lesser_equal"):
        scalar = 2.0 if kind == "power" else 2.5
        out += [(f"scalar {kind}", launch) for launch in plan_scalar_forward(kind, v, scalar, v)]
        out += [(f"scalar grad {kind}", launch) for launch in plan_scalar_backward(kind, v, v, v, v, 2.5)]
    for kind in UNARY_OPS if every else ("sqrt",):
        out += [(f"unary {kind}", launch) for launch in plan_unary_forward(kind, v, v)]
        out += [(f"unary grad {kind}", launch) for launch in plan_unary_backward(kind, v, v, v, v, True)]
    return out
