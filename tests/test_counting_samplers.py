"""Gamma, Poisson and negative binomial draws (``ts.sym.random.gamma``, ``poisson``,
``negative_binomial``, ``generalized_negative_binomial``): they follow their distributions
(Kolmogorov-Smirnov against the regularised incomplete gamma function, chi-squared against
the exact probabilities, at a fixed seed so that the tests cannot flake), on both sides of
every switch of method (gamma's shape 1, Poisson's mean 10), per element, NaN out of the
domain, refused numbers, and the draws recorded from the interpreter."""

from __future__ import annotations

import math
import zlib

import mpmath
import numpy as np
import pytest
import torch
from test_sampling import N, _draw, _ks_distance

import tritonsym as ts
from tritonsym.base import ParamError

S = ts.sym


@pytest.fixture(autouse=True)
def _seeded():
    ts.random.seed(4321)


def _gamma_cdf(alpha, scale):
    return lambda v: float(mpmath.gammainc(alpha, 0, max(v, 0.0) / scale, regularized=True))


def _chi_squared(counts: np.ndarray, probabilities: np.ndarray) -> tuple[float, int]:
    """Chi-squared of observed ``counts`` of 0, 1, ... against ``probabilities`` of them, the
    tail and any cell expecting fewer than 5 draws merged into their neighbours; with its
    degrees of freedom."""
    total = counts.sum()
    expected = probabilities * total
    cells, observed, current_e, current_o = [], [], 0.0, 0.0
    for e, c in zip(expected, counts):
        current_e, current_o = current_e + e, current_o + c
        if current_e >= 5:
            cells.append(current_e)
            observed.append(current_o)
            current_e = current_o = 0.0
    cells[-1] += current_e + (total - sum(cells) - current_e)  # the rest of the tail
    observed[-1] += current_o + (total - sum(observed) - current_o)
    cells, observed = np.array(cells), np.array(observed)
    return float(((observed - cells) ** 2 / cells).sum()), len(cells) - 1


def _chi_squared_limit(freedom: int) -> float:
    """The 0.1% point of chi-squared (Wilson-Hilferty): beyond it, not chance."""
    z = 3.09
    return freedom * (1 - 2 / (9 * freedom) + z * math.sqrt(2 / (9 * freedom))) ** 3


def _assert_counts_follow(draws: np.ndarray, log_pmf) -> None:
    assert (draws == np.round(draws)).all() and draws.min() >= 0
    top = int(draws.max()) + 1
    counts = np.bincount(draws.astype(np.int64), minlength=top)
    probabilities = np.exp([log_pmf(k) for k in range(top)])
    chi2, freedom = _chi_squared(counts, probabilities)
    assert chi2 < _chi_squared_limit(freedom), (chi2, freedom)


def _poisson_log_pmf(lam):
    return lambda k: -lam + k * math.log(lam) - math.lgamma(k + 1)


def _negative_binomial_log_pmf(k, p):
    return lambda x: math.lgamma(k + x) - math.lgamma(k) - math.lgamma(x + 1) + k * math.log(p) + x * math.log1p(-p)


@pytest.mark.parametrize("dtype", [pytest.param("float64", marks=pytest.mark.slow), "float32",
                                   pytest.param("bfloat16", marks=pytest.mark.slow)])
@pytest.mark.parametrize("alpha", [0.3, 1.0, 4.5])
def test_gamma_follows_its_distribution_below_and_above_shape_one(alpha, dtype):
    coarse = 0.02 if dtype == "bfloat16" else 0.0  # each draw rounded to 8 bits
    g, _ = _draw(S.random.gamma(alpha, 2.0, shape=(N,), dtype=dtype))
    assert g.min() >= 0
    assert _ks_distance(g, _gamma_cdf(alpha, 2.0)) < 0.03 + coarse


@pytest.mark.parametrize("lam", [0.7, 4.0, 9.5, 10.0, 25.0, 3000.0])
def test_poisson_counts_follow_their_distribution_by_inversion_and_by_ptrs(lam):
    c, _ = _draw(S.random.poisson(lam, shape=(N,)), dtype="float64")
    _assert_counts_follow(c, _poisson_log_pmf(lam))


def test_negative_binomials_follow_their_distributions():
    c, _ = _draw(S.random.negative_binomial(3, 0.4, shape=(N,)))
    _assert_counts_follow(c, _negative_binomial_log_pmf(3, 0.4))
    mu, alpha = 6.0, 0.5  # r = 1 / alpha successes of probability 1 / (1 + alpha mu)
    c, _ = _draw(S.random.generalized_negative_binomial(mu, alpha, shape=(N,)))
    _assert_counts_follow(c, _negative_binomial_log_pmf(1 / alpha, 1 / (1 + alpha * mu)))
    c, _ = _draw(S.random.generalized_negative_binomial(3.0, 0.0, shape=(N,)))  # dispersion 0: Poisson
    _assert_counts_follow(c, _poisson_log_pmf(3.0))
    assert (_draw(S.random.negative_binomial(2, 1.0, shape=(50,)))[0] == 0).all()  # every trial succeeds


def test_per_element_parameters_and_nan_out_of_the_domain():
    alpha, beta = np.array([0.5, 8.0, -1.0, np.nan]), np.array([3.0, 0.25, 1.0, 1.0])
    g, _ = _draw(S.random.gamma(S.Variable("alpha"), S.Variable("beta"), shape=(N,)), dtype="float64", alpha=alpha,
                 beta=beta)
    assert g.shape == (4, N) and np.isnan(g[2:]).all() and not np.isnan(g[:2]).any()
    assert _ks_distance(g[0], _gamma_cdf(0.5, 3.0)) < 0.03 and _ks_distance(g[1], _gamma_cdf(8.0, 0.25)) < 0.03
    lam = np.array([[2.0, 40.0], [0.0, -1.0], [np.inf, np.nan]])
    c, _ = _draw(S.random.poisson(S.Variable("lam"), shape=(N,)), dtype="float64", lam=lam)
    _assert_counts_follow(c[0, 0], _poisson_log_pmf(2.0))
    _assert_counts_follow(c[0, 1], _poisson_log_pmf(40.0))
    assert (c[1, 0] == 0).all() and np.isnan(c[1, 1]).all() and np.isnan(c[2]).all()
    k, p = np.array([2.0, 0.0, 2.0, 2.0]), np.array([0.5, 0.5, 0.0, 1.5])
    c, _ = _draw(S.random.negative_binomial(S.Variable("k"), S.Variable("p"), shape=(50,)), k=k, p=p)
    assert not np.isnan(c[0]).any() and np.isnan(c[1:]).all()
    c, _ = _draw(S.random.generalized_negative_binomial(S.Variable("mu"), S.Variable("alpha"), shape=(50,)),
                 mu=np.array([1.0, -1.0, 1.0]), alpha=np.array([1.0, 1.0, -0.5]))
    assert not np.isnan(c[0]).any() and np.isnan(c[1:]).all()


def test_like_forms_names_and_dtypes():
    data = S.Variable("data")
    for make, name in ((lambda: S.random.gamma_like(data, alpha=2.0), "gamma_like"),
                       (lambda: S.random.poisson_like(data, lam=3.0), "poisson_like"),
                       (lambda: S.random.negative_binomial_like(data, k=2, p=0.5), "negative_binomial_like"),
                       (lambda: S.random.generalized_negative_binomial_like(data, mu=2.0), "generalized_negative_"
                                                                                            "binomial_like")):
        net = make()
        assert net.name.startswith(name) and net.list_arguments() == ["data"]
        assert net.infer_type(data="float16")[1] == [torch.float16]
    c, _ = _draw(S.random.poisson_like(data, lam=3.0), data=np.full((N,), np.nan))
    _assert_counts_follow(c, _poisson_log_pmf(3.0))
    assert S.random.gamma(2.0, shape=(3,)).name.startswith("_random_gamma")
    assert S.random.poisson(S.Variable("lam")).list_arguments() == ["lam"]
    assert S.random.gamma(2.0, shape=(3,)).infer_type()[1] == [torch.float32]


def test_bad_parameters_are_refused_naming_the_operator_and_values():
    with pytest.raises(ParamError, match=r"_random_gamma: alpha=0.0 must be positive"):
        S.random.gamma(0.0, 1.0, shape=(2,))
    with pytest.raises(ParamError, match=r"_random_gamma: beta=-2.0 must be positive"):
        S.random.gamma(1.0, -2.0, shape=(2,))
    with pytest.raises(ParamError, match=r"_random_poisson: lam=-1.0 must be a finite number, 0 or more"):
        S.random.poisson(-1.0, shape=(2,))
    with pytest.raises(ParamError, match=r"_random_negative_binomial: p=0.0 must be in \(0, 1\]"):
        S.random.negative_binomial(2, 0.0, shape=(2,))
    with pytest.raises(ParamError, match=r"_random_negative_binomial: k=0 must be positive"):
        S.random.negative_binomial(0, 0.5, shape=(2,))
    with pytest.raises(ParamError, match=r"_random_generalized_negative_binomial: alpha=-1.0 must be a finite"):
        S.random.generalized_negative_binomial(1.0, -1.0, shape=(2,))


# Draws of seed 7 at step 3 for the node "z", as Triton's interpreter drew them (recorded once).
# Compiled on a GPU the counts must be the same and the gamma draws agree to float32 rounding
# (their normal is Box-Muller in float32, and a GPU's exp and log may differ by an ulp).
RECORDED_GAMMA = [0.03468955961451964, 0.03589767587783427, 0.2709077855018471, 4.069825027772277]
RECORDED_POISSON_SMALL = [3.0, 1.0, 1.0, 3.0]
RECORDED_POISSON_LARGE = [45.0, 51.0, 42.0, 53.0]


def test_the_draws_are_the_recorded_ones_interpreted_and_compiled():
    from tritonsym.ops import sampling as kernels
    from tritonsym.ops._common import run

    state, salt = torch.tensor([7, 3], dtype=torch.int64), zlib.crc32(b"z")
    drawn = {}
    for key, distribution, params in (("gamma", "gamma", (0.6, 2.0)), ("small", "poisson", (2.5,)),
                                      ("large", "poisson", (50.0,))):
        out = torch.empty(4, dtype=torch.float64)
        run(kernels.plan_sample(out, state, distribution, *params, salt=salt))
        drawn[key] = out.cpu().tolist()
    np.testing.assert_allclose(drawn["gamma"], RECORDED_GAMMA, rtol=1e-5)
    assert drawn["small"] == RECORDED_POISSON_SMALL and drawn["large"] == RECORDED_POISSON_LARGE
