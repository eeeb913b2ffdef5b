"""Elementwise kernels (ops/elementwise.py) against the float64 oracle."""

import numpy as np
import pytest
import torch
from oracles import BINARY, UNARY, binary_grads, scalar, scalar_grad, unary_domain, unary_grad
from tolerances import DTYPE_IDS, DTYPES, DTYPES_QUICK_FIRST, assert_close, poisoned, rounded, to_numpy
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


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)
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


@pytest.mark.parametrize("spread", [pytest.param("wide", marks=pytest.mark.slow), "moderate"])
def test_mod_is_exact_at_every_quotient_and_floored(spread):
    """x mod y against fmod-based floored remainders (exact), over operands spread across
    float64's and float32's exponents (wide: quotients up to 2**2000, where each of the
    thousand reduction steps must stay exact; 4 s in the interpreter), the signs of
    Python's %, -1e-30 mod 1 = 1.0 (the exact 1 - 1e-30 rounds to it, as in Python),
    infinite divisors, NaN, and 0 as divisor (NaN)."""
    rng = np.random.default_rng(3)
    ranges = {"wide": ((-1070, 1020), (-149, 127)), "moderate": ((-60, 60), (-40, 40))}[spread]
    for dtype, (low, high) in zip((torch.float64, torch.float32), ranges):
        a = rng.normal(size=400) * np.exp2(rng.integers(low, high, 400))
        b = rng.normal(size=400) * np.exp2(rng.integers(low, high, 400))
        special_a = [5.5, -5.5, 5.5, -5.5, -1e-30, 3.0, -3.0, 0.0, np.nan, 7.0, np.inf, 2.0]
        special_b = [2.0, 2.0, -2.0, -2.0, 1.0, np.inf, np.inf, -1.5, 2.0, np.nan, 3.0, 0.0]
        x = torch.tensor(np.concatenate([special_a, a])).to(dtype)
        y = torch.tensor(np.concatenate([special_b, b])).to(dtype)
        expected = BINARY["mod"](to_numpy(x), to_numpy(y))
        got = to_numpy(ops.binary_forward("mod", x, y))
        np.testing.assert_array_equal(got, to_numpy(torch.tensor(expected).to(dtype)), err_msg=str(dtype))
        assert got[4] == 1.0 and got[6] == np.inf and np.isnan(got[11])


def test_mod_gradients_and_scalar_forms():
    """d(a mod b)/da = 1 and d/db = -floor(a / b), NaN where b = 0; x mod s, s mod x; a
    scalar divisor of 0 is refused, naming the operator and the value."""
    a = torch.tensor([5.5, -5.5, 1e10, 3.0], dtype=torch.float64)
    b = torch.tensor([2.0, 2.0, 3.0, 0.0], dtype=torch.float64)
    ga, gb = torch.empty_like(a), torch.empty_like(a)
    ops.binary_backward("mod", torch.ones_like(a), a, b, ga, gb)
    np.testing.assert_array_equal(ga.numpy(), [1.0, 1.0, 1.0, np.nan])
    np.testing.assert_array_equal(gb.numpy(), [-2.0, 3.0, -3333333333.0, np.nan])
    x = torch.tensor([5.5, -5.5, 0.25], dtype=torch.float64)
    np.testing.assert_array_equal(ops.scalar_forward("mod", x, -2.0).numpy(), [-0.5, -1.5, -1.75])
    np.testing.assert_array_equal(ops.scalar_forward("rmod", x, 7.0).numpy(), [1.5, -4.0, 0.0])
    np.testing.assert_array_equal(ops.scalar_backward("rmod", torch.ones_like(x), 7.0, x=x).numpy(),
                                  [-1.0, 2.0, -28.0])
    with pytest.raises(KernelArgumentError, match=r"scalar_forward\(mod\): x mod 0 is undefined; got scalar=0.0"):
        ops.scalar_forward("mod", x, 0.0)


def test_gamma_gammaln_and_erfinv_at_their_edges():
    """C's tgamma and lgamma at the poles (+-inf at +-0, NaN and inf at the negative whole
    numbers), the infinities, overflow past 171.6 and NaN; digamma (their gradient) NaN at
    the poles; erfinv +-inf at +-1, NaN past; and float64 accuracy against 30-digit values,
    erfinv close to 1 included (within the answer's own sensitivity there)."""
    x = torch.tensor([0.0, -0.0, -1.0, -2.0, np.inf, -np.inf, np.nan, 172.0, -2.5, 1e-300, 0.5], dtype=torch.float64)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(ops.unary_forward("gamma", x).numpy()[:8],
                                      [np.inf, -np.inf, np.nan, np.nan, np.inf, np.nan, np.nan, np.inf])
        np.testing.assert_array_equal(ops.unary_forward("gammaln", x).numpy()[:7],
                                      [np.inf, np.inf, np.inf, np.inf, np.inf, np.inf, np.nan])
        grad = ops.unary_backward("gammaln", torch.ones_like(x), x=x).numpy()
    assert np.isnan(grad[[0, 1, 2, 3, 5, 6]]).all() and grad[4] == np.inf
    rng = np.random.default_rng(5)
    wide = torch.tensor(np.concatenate([rng.uniform(-30.0, 170.0, 200), [-2.5, 1e-300, 0.5, 1.0, 2.0]]))
    wide = wide[(wide > 0) | (wide != wide.floor())]
    assert_close(ops.unary_forward("gamma", wide), UNARY["gamma"](wide.numpy()), torch.float64, scale=200.0)
    assert_close(ops.unary_forward("gammaln", wide), UNARY["gammaln"](wide.numpy()), torch.float64)
    assert_close(ops.unary_backward("gammaln", torch.ones_like(wide), x=wide), unary_grad(
        "gammaln", np.ones(wide.shape), wide.numpy()), torch.float64)
    y = torch.tensor([1.0, -1.0, 1.5, np.nan, 0.0, -0.5], dtype=torch.float64)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(ops.unary_forward("erfinv", y).numpy()[:5],
                                      [np.inf, -np.inf, np.nan, np.nan, 0.0])
    near_one = torch.tensor(1.0 - np.logspace(-1, -15, 29))
    got, want = ops.unary_forward("erfinv", near_one).numpy(), UNARY["erfinv"](near_one.numpy())
    sensitivity = 2.3e-16 * np.sqrt(np.pi) / 2 * np.exp(want ** 2)  # the answer's move over two ulps of y
    assert (np.abs(got - want) <= np.maximum(sensitivity, 4e-16 * want)).all(), np.abs(got - want) / sensitivity
