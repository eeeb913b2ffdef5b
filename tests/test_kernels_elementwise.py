"""Elementwise kernels (ops/elementwise.py) against the float64 oracle."""

import numpy as np
import pytest
import torch
from oracles import BINARY, UNARY, binary_grads, scalar, scalar_grad, unary_domain, unary_grad
from tolerances import DTYPE_IDS, DTYPES, assert_close, poisoned, rounded, to_numpy
from tritonsym.ops import KernelArgumentError

from tritonsym import ops

SHAPE = (33, 17)


def _away_from_zero(rng, shape, dtype):
    """Values in +-[0.5, 2]: quotients, logs and powers stay well conditioned."""
    return rounded(rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", ops.BINARY_OPS)
def test_binary(rng, kind, dtype):
    a, b = _away_from_zero(rng, SHAPE, dtype), _away_from_zero(rng, SHAPE, dtype)
    out = ops.binary_forward(kind, a, b, out=poisoned(SHAPE, dtype))
    assert_close(out, BINARY[kind](to_numpy(a), to_numpy(b)), dtype, "forward")
    dy = rounded(rng.normal(size=SHAPE), dtype)
    ga, gb = poisoned(SHAPE, dtype), poisoned(SHAPE, dtype)
    ops.binary_backward(kind, dy, a, b, ga, gb)
    ea, eb = binary_grads(kind, to_numpy(dy), to_numpy(a), to_numpy(b))
    assert_close(ga, ea, dtype, "grad lhs")
    assert_close(gb, eb, dtype, "grad rhs", scale=4.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", ops.SCALAR_OPS)
def test_scalar(rng, kind, dtype):
    x = _away_from_zero(rng, SHAPE, dtype)
    if kind == "power":
        x = x.abs()
    s = 1.7
    out = ops.scalar_forward(kind, x, s, out=poisoned(SHAPE, dtype))
    assert_close(out, scalar(kind, to_numpy(x), s), dtype, "forward")
    dy = rounded(rng.normal(size=SHAPE), dtype)
    g = ops.scalar_backward(kind, dy, s, x=x, out=out, grad_x=poisoned(SHAPE, dtype))
    assert_close(g, scalar_grad(kind, to_numpy(dy), to_numpy(x), s), dtype, "backward", scale=2.0)


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 5.0, 6.0, 0.5, 2.5, -1.5])
def test_power_of_special_bases_follows_c_pow(exponent):
    """0, -0, the infinities, NaN and +-1 as bases, where exp(e * log|x|) alone is wrong
    (0 ** 0 and nan ** 0 are 1, (-inf) ** 5 is -inf, (-inf) ** 2.5 is inf). The oracle is
    C's pow, which numpy calls for an array exponent (a scalar 0.5 takes its sqrt path,
    which gives -0 ** 0.5 = -0 and (-inf) ** 0.5 = nan)."""
    x = rounded(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0]), torch.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.power(to_numpy(x), np.full(7, exponent))
    np.testing.assert_array_equal(to_numpy(ops.scalar_forward("power", x, exponent)), expected)


@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 5.0, 6.0, 0.5, 2.5, -1.5])
def test_power_exponents(rng, exponent):
    """Integer exponents work for negative bases (multiplied out or sign restored); others
    give NaN there, as numpy does."""
    x = rounded(rng.uniform(0.5, 2.0, 40) * rng.choice([-1.0, 1.0], 40), torch.float64)
    dy = rounded(rng.normal(size=40), torch.float64)
    with np.errstate(invalid="ignore"):  # a negative base to a fractional power is NaN on purpose
        expected = np.power(to_numpy(x), exponent)
        expected_grad = to_numpy(dy) * exponent * np.power(to_numpy(x), exponent - 1)
    assert_close(ops.scalar_forward("power", x, exponent), expected, torch.float64)
    assert_close(ops.scalar_backward("power", dy, exponent, x=x), expected_grad, torch.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kind", ops.UNARY_OPS)
def test_unary(rng, kind, dtype):
    x = rounded(unary_domain(kind, rng, SHAPE), dtype)
    out = ops.unary_forward(kind, x, out=poisoned(SHAPE, dtype))
    assert_close(out, UNARY[kind](to_numpy(x)), dtype, "forward")
    dy = rounded(rng.normal(size=SHAPE), dtype)
    g = ops.unary_backward(kind, dy, x=x, out=out, grad_x=poisoned(SHAPE, dtype))
    assert_close(g, unary_grad(kind, to_numpy(dy), to_numpy(x)), dtype, "backward", scale=2.0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_rounding_at_halves_large_values_and_non_finite(dtype):
    """round takes halves away from zero (C's roundf, which MXNet calls) and rint takes them
    down (MXNet's own rule, not rintf's ties-to-even); above 2**23 every float32 is whole
    and stays as it is (adding 0.5 first would round 2**23 + 1 up); -0.3 rounds to -0; inf
    stays, NaN stays NaN; and negative gives -0 for 0 (Triton 3.6 computes -x as 0 - x)."""
    big = 2.0 ** 23 + 1.0
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.3, 0.0, big, -big, 1e30, np.inf, -np.inf,
                      np.nan], dtype=dtype)
    with np.errstate(invalid="ignore"):
        for kind in ("round", "rint", "floor", "ceil", "trunc", "fix", "sign", "negative"):
            got = ops.unary_forward(kind, x).numpy()
            want = UNARY[kind](x.numpy().astype(np.float64))
            np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=kind)
            numbers = ~np.isnan(want)  # a NaN's sign bit means nothing
            assert np.array_equal(np.signbit(got[numbers]), np.signbit(want[numbers])), kind  # -0 where it is
            if kind != "negative":
                grad = ops.unary_backward(kind, torch.ones_like(x)).numpy()
                assert (grad == 0).all(), kind  # the gradient of a step function is 0, NaN input or not


def test_the_new_functions_stay_accurate_where_naive_formulas_cancel():
    """Near 0, log1p, expm1 and sinh keep their digits (log(1 + x), exp(x) - 1 and
    (exp(x) - exp(-x)) / 2 would lose them all in float32); far out, cosh and sinh overflow
    to inf and tan keeps its sign."""
    x = torch.tensor([1e-7, -3e-6, 2e-5], dtype=torch.float32)
    for kind, exact in (("log1p", np.log1p), ("expm1", np.expm1), ("sinh", np.sinh), ("erf", UNARY["erf"])):
        got = ops.unary_forward(kind, x).numpy().astype(np.float64)
        np.testing.assert_allclose(got, exact(x.numpy().astype(np.float64)), rtol=3e-7, err_msg=kind)
    far = torch.tensor([100.0, -100.0])
    assert ops.unary_forward("cosh", far).tolist() == [np.inf, np.inf]
    assert ops.unary_forward("sinh", far).tolist() == [np.inf, -np.inf]
    assert torch.isnan(ops.unary_forward("sin", torch.tensor([np.nan, np.inf]))).all()


def test_strided_expanded_and_offset(rng):
    """Transposed, sliced-with-offset and stride-0 (expanded) operands, 3-d."""
    big = rounded(rng.normal(size=(5, 7, 9)), torch.float64)
    a = big.transpose(0, 2)[1:, :, 2:]                       # (8, 7, 3), offset and permuted
    b = rounded(rng.normal(size=(1, 7, 1)), torch.float64).expand(8, 7, 3)
    out = ops.binary_forward("mul", a, b)
    assert_close(out, to_numpy(a) * to_numpy(b), torch.float64)
    ga = poisoned((3, 7, 8), torch.float64).permute(2, 1, 0)   # a non-contiguous output
    ops.binary_backward("mul", torch.ones_like(out), a, b, ga, None)
    assert_close(ga, to_numpy(b), torch.float64)


def test_size_one_and_empty():
    one = torch.tensor([[2.0]])
    assert ops.unary_forward("square", one).item() == 4.0
    empty = torch.zeros(0, 3)
    assert ops.unary_forward("exp", empty).shape == (0, 3)


def test_errors():
    with pytest.raises(KernelArgumentError, match=r"b has shape \(3,\) but the operands have \(2,\)"):
        ops.binary_forward("add", torch.zeros(2), torch.zeros(3))
    with pytest.raises(KernelArgumentError, match="op='pow' is not one of"):
        ops.binary_forward("pow", torch.zeros(2), torch.zeros(2))
    with pytest.raises(KernelArgumentError, match="base of rpower must be positive"):
        ops.scalar_forward("rpower", torch.zeros(2), -2.0)
    with pytest.raises(KernelArgumentError, match="reads the input"):
        ops.unary_backward("log", torch.zeros(2))
    with pytest.raises(KernelArgumentError, match="arguments must have the same dtype"):
        ops.binary_forward("add", torch.zeros(2), torch.zeros(2, dtype=torch.float64))
