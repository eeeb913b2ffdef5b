"""Gamma and Poisson draws, and the negative binomials made of them, as jit helpers of the
sampling kernel (``sampling.py``), in float64.

A rejection sampler needs a varying number of tries per element. Each try of element
``counter`` reads its own Philox block: counter words (counter's low and high halves, the
try, a stream), so a try never reuses another's numbers, nor another stream's (the gamma
part of a negative binomial draws from other streams than its Poisson part). A block of
elements loops until its last element is accepted; an element out of its domain (or NaN)
never takes part, so no loop can run forever.

* Gamma(alpha) of scale 1: Marsaglia and Tsang ("A simple method for generating gamma
  variables", 2000): d = alpha - 1/3, c = 1 / sqrt(9 d), a normal z and a uniform u per try,
  v = (1 + c z)**3 accepted where log u < z**2 / 2 + d - d v + d log v (about 1.05 tries on
  average at worst). alpha < 1 draws Gamma(alpha + 1) times u**(1 / alpha), u of 53 bits.
* Poisson(lam): below 10, inversion by sequential search over one 53-bit uniform (about
  lam + 1 steps; it stops once the mass left is below float64's resolution); from 10,
  Hoermann's PTRS ("The transformed rejection method for generating Poisson random
  variables", 1993), numpy's method, two 53-bit uniforms a try, log k! from ``lgamma``.
"""

from __future__ import annotations

import triton
import triton.language as tl

from ._special_functions import lgamma

TWO_TO_MINUS_53: tl.constexpr = tl.constexpr(2.0 ** -53)


@triton.jit
def _words(key, counter, attempt, STREAM: tl.constexpr):
    """Four random 32-bit words for try ``attempt`` of the element at ``counter`` (int64)."""
    c0 = counter.to(tl.uint32)
    c1 = (counter >> 32).to(tl.uint32)
    c2 = (tl.zeros_like(counter) + attempt).to(tl.uint32)
    c3 = (tl.zeros_like(counter) + STREAM).to(tl.uint32)
    return tl.philox(key, c0, c1, c2, c3)


@triton.jit
def _uniform53(high, low):
    """A float64 uniform on [0, 1) from two 32-bit words (53 of their bits)."""
    bits = (high.to(tl.uint64) << 21) | (low.to(tl.uint64) >> 11)
    return bits.to(tl.float64) * TWO_TO_MINUS_53


@triton.jit
def standard_gamma(key, counter, alpha, active, STREAM: tl.constexpr):
    """Gamma(alpha, scale 1) where ``active`` (alpha > 0 there), 0 elsewhere. Uses streams
    STREAM and STREAM + 1."""
    boost = alpha < 1.0
    a = tl.where(active, tl.where(boost, alpha + 1.0, alpha), 1.0)
    d = a - 1.0 / 3.0
    c = 1.0 / tl.sqrt(9.0 * d)
    result = tl.zeros_like(alpha)
    pending = active
    attempt = 0
    while tl.max(pending.to(tl.int32), 0) > 0:
        w0, w1, w2, _ = _words(key, counter, attempt, STREAM)
        z, _ = tl.pair_uniform_to_normal(tl.uint_to_uniform_float(w0), tl.uint_to_uniform_float(w1))
        z = z.to(tl.float64)
        u = tl.uint_to_uniform_float(w2).to(tl.float64)
        v = 1.0 + c * z
        v = v * v * v
        positive = v > 0.0
        log_v = tl.log(tl.where(positive, v, 1.0))
        accepted = pending & positive & (tl.log(u) < 0.5 * z * z + d - d * v + d * log_v)
        result = tl.where(accepted, d * v, result)
        pending = pending & ~accepted
        attempt += 1
    w0, w1, _, _ = _words(key, counter, 0, STREAM + 1)
    lift = tl.exp(tl.log(_uniform53(w0, w1)) / tl.where(boost, alpha, 1.0))
    return tl.where(boost & active, result * lift, result)


@triton.jit
def poisson(key, counter, lam, active, STREAM: tl.constexpr):
    """Poisson(lam) where ``active`` (lam >= 0 and finite there), 0 elsewhere. Uses streams
    STREAM and STREAM + 1."""
    result = tl.zeros_like(lam)
    small = active & (lam < 10.0)
    if tl.max(small.to(tl.int32), 0) > 0:
        w0, w1, _, _ = _words(key, counter, 0, STREAM)
        u = _uniform53(w0, w1)
        p = tl.exp(-tl.where(small, lam, 0.0))
        cumulative = p
        k = tl.zeros_like(lam)
        pending = small & (u >= cumulative)
        while tl.max(pending.to(tl.int32), 0) > 0:
            k = tl.where(pending, k + 1.0, k)
            p = tl.where(pending, p * lam / tl.where(pending, k, 1.0), p)
            cumulative = tl.where(pending, cumulative + p, cumulative)
            pending = pending & (u >= cumulative) & (p > 1e-17 * cumulative)
        result = tl.where(small, k, result)
    large = active & (lam >= 10.0)
    if tl.max(large.to(tl.int32), 0) > 0:
        m = tl.where(large, lam, 10.0)
        log_m = tl.log(m)
        b = 0.931 + 2.53 * tl.sqrt(m)
        a = -0.059 + 0.02483 * b
        log_inverse_alpha = tl.log(1.1239 + 1.1328 / (b - 3.4))
        vr = 0.9277 - 3.6224 / (b - 2.0)
        pending = large
        attempt = 0
        while tl.max(pending.to(tl.int32), 0) > 0:
            w0, w1, w2, w3 = _words(key, counter, attempt, STREAM + 1)
            shifted = _uniform53(w0, w1) - 0.5
            v = _uniform53(w2, w3)
            us = 0.5 - tl.abs(shifted)
            k = tl.floor((2.0 * a / us + b) * shifted + m + 0.43)
            quick = (us >= 0.07) & (v <= vr)
            whole = (k >= 0.0) & (k < 1e300)  # not NaN nor inf (us = 0 makes k so)
            refused = ~whole | ((us < 0.013) & (v > us))
            k_safe = tl.where(whole, k, 0.0)
            slow = ~refused & (tl.log(v) + log_inverse_alpha - tl.log(a / (us * us) + b)
                               <= -m + k_safe * log_m - lgamma(k_safe + 1.0))
            accepted = pending & (quick | slow)
            result = tl.where(accepted, k, result)
            pending = pending & ~accepted
            attempt += 1
    return result
