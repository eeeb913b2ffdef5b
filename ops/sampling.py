"""Random samplers: uniform, normal, exponential and integer draws (MXNet's ``_random_*``,
``_random_*_like`` and ``_sample_*``), drawn in the kernel from Philox.

Key and counter come from ``_philox.py``: the seed of ``tritonsym.random`` mixed with the
node's salt, and each element's place in the output plus the step times 2**32, the step
read from device memory (a captured CUDA graph draws anew at each replay once the executor
moved it). The same seed gives the same numbers in Triton's interpreter and compiled.

The distribution's two parameters ``a`` and ``b`` are numbers (``_random_*``) or, per
element, read from two tensors broadcast to the output (``_sample_*``: the output is the
parameters' shape followed by the shape drawn for each of them, a stride-0 view here).

* uniform: ``a + (b - a) * u`` with ``u`` in [0, 1) from ``tl.rand`` (24 random bits);
* normal: ``a + b * z`` with ``z`` from ``tl.randn`` (Box-Muller on two such draws);
* exponential of rate ``a``: ``-log1p(-u) / a``;
* integers in [a, b): ``a + r % (b - a)`` with ``r`` 63 random bits (two Philox words), so
  the bias of the modulo is below (b - a) / 2**63;
* gamma of shape ``a`` and scale ``b``, Poisson of mean ``a``, the negative binomial of ``a``
  successes of probability ``b`` (a Poisson draw whose mean is a gamma draw of shape a and
  scale (1 - b) / b, MXNet's construction) and the generalized one of mean ``a`` and
  dispersion ``b`` (Poisson for b = 0, else of a gamma of shape 1 / b and scale b a): by
  rejection, in float64 (``_gamma_poisson.py``); the counts as floats, as MXNet's.

The draws are float32 (24-bit) numbers in every float dtype, shifted and scaled in float64
for a float64 output; a float16 or bfloat16 uniform draw near ``high`` may round to it, as
any rounding to fewer bits does. A NaN parameter, or one outside the distribution's domain
(high below low, a negative standard deviation, a rate not above 0, a gamma shape or scale
not above 0, a negative or infinite Poisson mean, a success probability outside (0, 1]),
gives NaN draws.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._common import (
    ELEMENTWISE_BLOCK,
    FLOAT_DTYPES,
    INDEX_DTYPES,
    KernelArgumentError,
    Launch,
    check_tensor,
    check_writable,
    element_block,
    element_offsets,
    elementwise_launches,
    load_wide,
    log1p,
    store,
)
from ._gamma_poisson import poisson, standard_gamma
from ._philox import STATE_SLOTS, check_state, philox_counter, philox_key

TESTS = ("tests/test_operators.py", "tests/test_sampling.py")
DISTRIBUTIONS = ("uniform", "normal", "exponential", "randint", "gamma", "poisson", "negative_binomial",
                 "generalized_negative_binomial")


@triton.jit
def _sample_kernel(OUT, A, B, STATE, n, sizes, out_strides, a_strides, b_strides, place_strides, place_start, salt,
                   a_value: tl.float64, b_value: tl.float64, DIST: tl.constexpr, FROM_TENSORS: tl.constexpr,
                   FLAT: tl.constexpr, BLOCK: tl.constexpr):
    index, mask = element_block(n, BLOCK)
    key = philox_key(STATE, salt)
    counter = philox_counter(STATE, place_start + element_offsets(index, FLAT, sizes, place_strides))
    if FROM_TENSORS:
        a = load_wide(A, element_offsets(index, FLAT, sizes, a_strides), mask, 0.0).to(tl.float64)
        b = load_wide(B, element_offsets(index, FLAT, sizes, b_strides), mask, 0.0).to(tl.float64)
    else:  # numbers, as blocks (the rejection samplers keep a state per element)
        a = tl.zeros((BLOCK,), tl.float64) + a_value
        b = tl.zeros((BLOCK,), tl.float64) + b_value
    # A parameter out of the distribution's domain (only arrays can hold one: numbers are
    # checked at bind) draws NaN, as a NaN parameter does.
    if DIST == 0:
        v = a + (b - a) * tl.rand(key, counter).to(tl.float64)
        v = tl.where(b < a, float("nan"), v)
    elif DIST == 1:
        v = a + b * tl.randn(key, counter).to(tl.float64)
        v = tl.where(b < 0.0, float("nan"), v)
    elif DIST == 2:
        v = -log1p(-tl.rand(key, counter)).to(tl.float64) / a
        v = tl.where(a <= 0.0, float("nan"), v)
    elif DIST == 4:
        valid = mask & (a > 0.0) & (b > 0.0) & (a < float("inf"))
        v = tl.where(valid, standard_gamma(key, counter, a, valid, 0) * b, float("nan"))
    elif DIST == 5:
        valid = mask & (a >= 0.0) & (a < float("inf"))
        v = tl.where(valid, poisson(key, counter, a, valid, 2), float("nan"))
    elif DIST == 6:  # a successes of probability b: Poisson of a Gamma(a, (1 - b) / b) mean
        valid = mask & (a > 0.0) & (a < float("inf")) & (b > 0.0) & (b <= 1.0)
        mean = standard_gamma(key, counter, a, valid, 0) * ((1.0 - b) / tl.where(valid, b, 1.0))
        v = tl.where(valid, poisson(key, counter, mean, valid & (mean < float("inf")), 2), float("nan"))
    elif DIST == 7:  # mean a, dispersion b: Poisson of a Gamma(1 / b, b a) mean, or of a for b = 0
        valid = mask & (a >= 0.0) & (a < float("inf")) & (b >= 0.0) & (b < float("inf"))
        spread = valid & (b > 0.0)
        mean = standard_gamma(key, counter, 1.0 / tl.where(spread, b, 1.0), spread, 0) * (b * a)
        mean = tl.where(b == 0.0, a, mean)
        v = tl.where(valid, poisson(key, counter, mean, valid & (mean < float("inf")), 2), float("nan"))
    else:
        r0, r1, _, _ = tl.randint4x(key, counter)
        bits = ((r0 & 0x7FFFFFFF).to(tl.int64) << 32) | r1.to(tl.int64)
        span = b.to(tl.int64) - a.to(tl.int64)
        v = a.to(tl.int64) + bits % span
    store(OUT, element_offsets(index, FLAT, sizes, out_strides), v, mask)


def plan_sample(out: torch.Tensor, state: torch.Tensor, distribution: str, a, b=0.0, *, salt: int) -> list[Launch]:
    """Fill ``out`` with draws of ``distribution`` (one of ``DISTRIBUTIONS``) of parameters
    ``a`` and ``b``: two numbers, or two tensors whose shape is a prefix of ``out``'s (one
    distribution per element of theirs, drawn ``out.shape[a.dim():]`` times)."""
    fn = f"sample_{distribution}"
    if distribution not in DISTRIBUTIONS:
        raise KernelArgumentError(f"{fn}: distribution={distribution!r} is none of {DISTRIBUTIONS}")
    check_tensor(fn, "out", out, FLOAT_DTYPES + INDEX_DTYPES)
    check_writable(fn, "out", out)
    if (distribution == "randint") == out.dtype.is_floating_point:
        raise KernelArgumentError(f"{fn}: out has dtype {out.dtype}; randint draws int32/int64, the rest floats")
    check_state(fn, state, out.device)
    tensors = {"out": out}
    from_tensors = isinstance(a, torch.Tensor)
    if from_tensors:
        if not isinstance(b, torch.Tensor):
            raise KernelArgumentError(f"{fn}: a is a tensor, so b must be one too, got {type(b).__name__}")
        for name, t in (("a", a), ("b", b)):
            check_tensor(fn, name, t)
            if tuple(t.shape) != tuple(out.shape[:t.dim()]) or t.device != out.device:
                raise KernelArgumentError(f"{fn}: {name} of shape {tuple(t.shape)} on {t.device} must be the first "
                                          f"dimensions of out's {tuple(out.shape)} on {out.device}")
            tensors[name] = t.reshape(*t.shape, *[1] * (out.dim() - t.dim())).expand(out.shape)
        a_value = b_value = 0.0
    else:
        tensors["a"] = tensors["b"] = out  # not read
        a_value, b_value = float(a), float(b)
        if distribution == "randint" and not (a_value < b_value and a_value == int(a_value) == a
                                              and b_value == int(b_value) == b):
            raise KernelArgumentError(f"{fn}: low={a} and high={b} must be integers with low < high")
    # Each draw is numbered by its place in out (as if contiguous): the numbers do not depend
    # on where the planner put out, nor on how elementwise_launches splits the work.
    tensors["place"] = torch.empty(out.shape, dtype=torch.int8, device="meta")
    code = DISTRIBUTIONS.index(distribution)
    return elementwise_launches(fn, out.shape, tensors, lambda t, args, flat, grid: Launch(
        _sample_kernel, grid, [t["out"], t["a"], t["b"], state, *args, t["place"].storage_offset(),
                               int(salt) & 0x7FFFFFFF, a_value, b_value],
        dict(DIST=code, FROM_TENSORS=from_tensors, FLAT=flat, BLOCK=ELEMENTWISE_BLOCK)))


def representative_launches(dtype: torch.dtype, large: bool = False) -> list[tuple[str, Launch]]:
    shape = (4096, 4096) if large else (5, 3, 7)
    out, state = torch.empty(shape, dtype=dtype), torch.zeros(len(STATE_SLOTS), dtype=torch.int64)
    params = torch.empty(shape[:1], dtype=dtype)
    launches = [(f"{d} draws", plan_sample(out, state, d, 0.5, 2.0, salt=1)[0])
                for d in ("uniform", "normal", "exponential")]
    launches += [(f"{d} draws".replace("_", " "), plan_sample(out, state, d, 0.5, 0.5, salt=1)[0])
                 for d in ("gamma", "poisson", "negative_binomial", "generalized_negative_binomial")]
    launches.append(("normal draws per parameter", plan_sample(out, state, "normal", params, params, salt=1)[0]))
    if dtype == torch.float32:
        for index_dtype in INDEX_DTYPES:
            launches.append((f"randint into {index_dtype}".replace("torch.", ""),
                             plan_sample(torch.empty(shape, dtype=index_dtype), state, "randint", 0, 7, salt=1)[0]))
    return launches
