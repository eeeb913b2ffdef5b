"""Random samplers (``ts.sym.random``): the draws follow their distributions (Kolmogorov-
Smirnov distance against the exact CDF, at a fixed seed so that the test cannot flake), each
forward draws anew, the seed repeats them, each node has its own stream, per-element
parameters, dtypes, NaN for parameters out of the domain, zero gradients, and the errors."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym
N = 4000  # draws per check: a KS distance of 0.03 is beyond 1.9 standard errors of chance


@pytest.fixture(autouse=True)
def _seeded():
    ts.random.seed(1234)


def _draw(sym, dtype=None, **shapes_and_values):
    """One inference forward of ``sym``: its first output as float64 (int64 for integers)."""
    shapes = {k: np.shape(v) for k, v in shapes_and_values.items()}
    types = {k: dtype for k in shapes} if dtype is not None else None
    exe = sym.simple_bind(ts.cpu(), grad_req="null", type_dict=types, **shapes)
    out = exe.forward(**shapes_and_values)[0]
    return out.to(torch.int64 if not out.dtype.is_floating_point else torch.float64).cpu().numpy(), exe


def _ks_distance(samples: np.ndarray, cdf) -> float:
    x = np.sort(samples.ravel())
    n = len(x)
    f = np.array([cdf(v) for v in x])
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def _normal_cdf(loc, scale):
    return lambda v: 0.5 * (1 + math.erf((v - loc) / (scale * math.sqrt(2))))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_uniform_normal_and_exponential_follow_their_distributions(dtype):
    coarse = 0.02 if dtype.itemsize == 2 else 0.0  # half precision rounds each draw
    u, _ = _draw(S.random.uniform(-1.5, 2.5, shape=(N,), dtype=dtype))
    assert u.min() >= -1.5 and u.max() <= 2.5 and (u.max() < 2.5 or dtype.itemsize == 2)
    assert _ks_distance(u, lambda v: (v + 1.5) / 4) < 0.03 + coarse
    z, _ = _draw(S.random.normal(3.0, 0.5, shape=(N,), dtype=dtype))
    assert _ks_distance(z, _normal_cdf(3.0, 0.5)) < 0.03 + coarse
    e, _ = _draw(S.random.exponential(scale=2.0, shape=(N,), dtype=dtype))  # mean 2, rate 1/2
    assert e.min() >= 0 and _ks_distance(e, lambda v: 1 - math.exp(-v / 2.0)) < 0.03 + coarse


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_randint_draws_every_integer_of_the_range_equally(dtype):
    r, _ = _draw(S.random.randint(-3, 4, shape=(7000,), dtype=dtype))
    counts = np.bincount(r + 3, minlength=7)
    assert r.min() == -3 and r.max() == 3 and len(counts) == 7
    chi2 = ((counts - 1000) ** 2 / 1000).sum()
    assert chi2 < 22.5  # the 0.1% point of chi-squared with 6 degrees of freedom
    wide, _ = _draw(S.random.randint(-2 ** 40, 2 ** 40, shape=(1000,), dtype="int64"))
    assert wide.min() >= -2 ** 40 and wide.max() < 2 ** 40 and abs(wide.mean()) < 2 ** 40 * 0.1
    assert (wide < -2 ** 39).any() and (wide > 2 ** 39).any()


def test_each_forward_draws_anew_and_the_seed_repeats_the_sequence():
    net = S.random.normal(shape=(64,), name="z")
    exe = net.simple_bind(ts.cpu())
    first = [exe.forward(is_train=train)[0].numpy().copy() for train in (False, True, False)]
    assert not np.array_equal(first[0], first[1]) and not np.array_equal(first[1], first[2])
    ts.random.seed(1234)
    again = [exe.forward(is_train=train)[0].numpy().copy() for train in (False, True, False)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_two_nodes_draw_different_numbers_and_neighbours_are_uncorrelated():
    two = S.Group([S.random.uniform(shape=(N,), name="a"), S.random.uniform(shape=(N,), name="b")])
    a, b = (o.numpy().astype(np.float64) for o in two.simple_bind(ts.cpu()).forward())
    assert not np.array_equal(a, b)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.06 and abs(np.corrcoef(a[1:], a[:-1])[0, 1]) < 0.06


def test_sample_draws_shape_times_from_each_elements_distribution():
    mu, sigma = np.array([[-5.0, 0.0], [10.0, 2.0]]), np.array([[0.1, 1.0], [3.0, 0.5]])
    net = S.random.normal(S.Variable("mu"), S.Variable("sigma"), shape=(N,))
    assert net.infer_shape(mu=(2, 2), sigma=(2, 2))[1] == [(2, 2, N)]
    z, _ = _draw(net, dtype="float64", mu=mu, sigma=sigma)
    for i, j in np.ndindex(2, 2):
        assert _ks_distance(z[i, j], _normal_cdf(mu[i, j], sigma[i, j])) < 0.03
    low, high = np.array([0.0, -4.0, 7.0]), np.array([1.0, -2.0, 7.0])
    u, _ = _draw(S.random.uniform(S.Variable("low"), S.Variable("high"), shape=(10, 50)), low=low, high=high)
    assert u.shape == (3, 10, 50)
    assert (u[0] >= 0).all() and (u[0] < 1).all() and (u[1] >= -4).all() and (u[1] < -2).all() and (u[2] == 7).all()
    e, _ = _draw(S.random.exponential(S.Variable("scale"), shape=(N,)), dtype="float64",
                 scale=np.array([0.5, 4.0]))
    assert _ks_distance(e[1], lambda v: 1 - math.exp(-v / 4.0)) < 0.03 and abs(e[0].mean() - 0.5) < 0.05


def test_parameters_out_of_the_domain_or_nan_draw_nan():
    z, _ = _draw(S.random.normal(S.Variable("mu"), S.Variable("sigma"), shape=(5,)), mu=np.array([0.0, np.nan, 1.0]),
                 sigma=np.array([-1.0, 1.0, 0.0]))
    assert np.isnan(z[0]).all() and np.isnan(z[1]).all() and (z[2] == 1.0).all()  # sigma 0: the mean
    u, _ = _draw(S.random.uniform(S.Variable("low"), S.Variable("high"), shape=(5,)), low=np.array([2.0, 0.0]),
                 high=np.array([1.0, np.inf]))
    assert np.isnan(u[0]).all()
    e, _ = _draw(S.random.exponential(S.Variable("scale"), shape=(5,)), scale=np.array([-1.0, 2.0]))
    assert np.isnan(e[0]).all() and not np.isnan(e[1]).any()


def test_like_draws_take_the_datas_shape_and_dtype_and_never_read_it():
    data = S.Variable("data")
    net = S.random.uniform_like(data, low=5, high=6)
    assert net.list_arguments() == ["data"] and net.name.startswith("uniform_like")
    assert net.infer_type(data="float16")[1] == [torch.float16]
    u, _ = _draw(net, data=np.full((3, 7), np.nan))
    assert u.shape == (3, 7) and (u >= 5).all() and (u < 6).all()
    z, _ = _draw(S.random.normal_like(data, loc=-1, scale=0.01), data=np.zeros((500,)))
    assert abs(z.mean() + 1) < 0.01
    e, _ = _draw(S.random.exponential_like(data, lam=10), data=np.zeros((N,)))
    assert _ks_distance(e, lambda v: 1 - math.exp(-10 * v)) < 0.03


def test_dtype_follows_the_graph_unless_given_and_the_shape_can_come_from_it():
    x = S.Variable("x")
    noisy = x + S.random.normal(scale=0.1)  # shape () and no dtype: both from x
    assert noisy.infer_shape(x=(4, 5))[1] == [(4, 5)]
    assert noisy.infer_type(x="bfloat16")[1] == [torch.bfloat16]
    assert S.random.uniform(shape=(2,)).infer_type()[1] == [torch.float32]
    assert S.random.randint(0, 3, shape=(2,)).infer_type()[1] == [torch.int32]
    with pytest.raises(Exception, match="float16 but float64 is expected"):
        (x + S.random.uniform(shape=(2,), dtype="float16")).infer_type(x="float64")
    with pytest.raises(ShapeError, match=r"cannot infer every size of _random_uniform\d+ \(_random_uniform\)"):
        S.random.uniform().simple_bind(ts.cpu())  # nothing gives its shape


def test_no_gradient_reaches_the_parameters_and_a_reparameterised_draw_trains():
    """MXNet's samplers pass no gradient (0); mu + sigma * normal() carries it."""
    mu, sigma = S.Variable("mu"), S.Variable("sigma")
    sampled = S.random.normal(mu, sigma, shape=(3,))
    exe = sampled.simple_bind(ts.cpu(), mu=(2,), sigma=(2,), type_dict={"mu": "float64", "sigma": "float64"})
    exe.grad_dict["mu"].fill_(7.0)
    exe.grad_dict["sigma"].fill_(7.0)
    exe.forward(is_train=True, mu=np.zeros(2), sigma=np.ones(2))
    exe.backward([torch.ones(2, 3, dtype=torch.float64)])
    assert not exe.grad_dict["mu"].any() and not exe.grad_dict["sigma"].any()
    eps = S.random.normal(shape=(0, 3), name="eps")
    reparameterised = S.MakeLoss(S.sum(mu + sigma * eps))
    exe = reparameterised.simple_bind(ts.cpu(), mu=(2, 3), sigma=(2, 3), type_dict={"mu": "float64",
                                                                                    "sigma": "float64"})
    exe.forward(is_train=True, mu=np.zeros((2, 3)), sigma=np.ones((2, 3)))
    exe.backward()
    assert np.array_equal(exe.grad_dict["mu"].numpy(), np.ones((2, 3)))
    assert not np.array_equal(exe.grad_dict["sigma"].numpy(), np.ones((2, 3)))  # the draws themselves


def test_bad_parameters_are_refused_naming_the_operator_and_values():
    with pytest.raises(ParamError, match=r"_random_normal: scale=-1.0 must be positive"):
        S.random.normal(0, -1, shape=(2,))
    with pytest.raises(ParamError, match=r"_random_exponential: lam=0.0 must be positive"):
        S.random_exponential(lam=0, shape=(2,))
    with pytest.raises(ValueError, match=r"random.exponential: scale=0 must be positive"):
        S.random.exponential(0, shape=(2,))
    with pytest.raises(Exception, match=r"_random_uniform.*low=3 must not be above high=1"):
        S.random.uniform(3, 1, shape=(2,)).infer_shape()
    with pytest.raises(Exception, match=r"_random_randint.*low=2 and high=2 leave no integer"):
        S.random.randint(2, 2, shape=(2,)).infer_shape()
    with pytest.raises(TypeError, match=r"random.normal: .* all be numbers or all be symbols, got loc=Symbol, "
                                        r"scale=float"):
        S.random.normal(S.Variable("mu"), 1.0)
    with pytest.raises(TypeError, match="random.randint: low and high must be integers"):
        S.random.randint(S.Variable("low"), 3)


@pytest.mark.slow  # a training run (4 s); CI runs -m slow
def test_a_noisy_network_trains_with_module_fit():
    """Gaussian noise on the input (a denoising regulariser) inside Module.fit: every batch
    draws its own noise on the device, and the network still learns the digits."""
    from tritonsym.io import NDArrayIter

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 6)) * 3
    labels = rng.integers(0, 3, 300)
    data = centers[labels] + rng.normal(size=(300, 6)) * 0.3
    x = S.Variable("data") + S.random.normal(scale=0.3, name="noise")
    net = S.SoftmaxOutput(S.FullyConnected(x, num_hidden=3, name="fc"), name="softmax")
    mod = ts.mod.Module(net, context=ts.cpu())
    train = NDArrayIter(data.astype(np.float32), labels.astype(np.float32), batch_size=50, shuffle=True)
    mod.fit(train, num_epoch=4, optimizer="adam", optimizer_params={"learning_rate": 0.05})
    assert mod.score(train, "acc")[0][1] > 0.95


# Draws of seed 7 at step 3 for the node "z", as Triton's interpreter drew them (recorded once).
# Compiled on a GPU (the suite runs there with TRITONSYM_TEST_DEVICE=cuda) the same Philox must
# draw the same numbers: uniform and integer draws are exact integer arithmetic, the normal's
# Box-Muller agrees to float32 rounding.
RECORDED_UNIFORM = [0.26177504658699036, 0.10170391947031021, 0.40244513750076294, 0.408766508102417]
RECORDED_RANDINT = [19, 716, 836, 278]
RECORDED_NORMAL = [1.0272969007492065, -2.125997304916382, 0.06679636240005493, 1.227267861366272]


def test_the_draws_are_the_recorded_ones_interpreted_and_compiled():
    from tritonsym.ops import sampling as kernels
    from tritonsym.ops._common import run

    state, salt = torch.tensor([7, 3], dtype=torch.int64), zlib.crc32(b"z")
    drawn = {}
    for distribution, dtype, params in (("uniform", torch.float32, (0.0, 1.0)), ("randint", torch.int64, (0, 1000)),
                                        ("normal", torch.float32, (0.0, 1.0))):
        out = torch.empty(4, dtype=dtype)
        run(kernels.plan_sample(out, state, distribution, *params, salt=salt))
        drawn[distribution] = out.cpu().tolist()
    assert drawn["uniform"] == RECORDED_UNIFORM and drawn["randint"] == RECORDED_RANDINT
    np.testing.assert_allclose(drawn["normal"], RECORDED_NORMAL, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_the_vae_example_learns_a_code_and_draws_digits():
    """examples/digits_vae.py: 3 epochs (about 25 s) beat drawing the mean image by 15% and
    more, and it prints 8 rows of 4 digits drawn from the prior."""
    import pathlib
    import re
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[1] / "examples" / "digits_vae.py"
    done = subprocess.run([sys.executable, str(script), "--epochs", "3"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r"validation mean squared error ([0-9.]+) \(drawing the mean image: ([0-9.]+)\)", done.stdout)
    assert found, done.stdout[-2000:]
    error, baseline = float(found.group(1)), float(found.group(2))
    assert error < 0.85 * baseline
    drawn = done.stdout[found.end():].strip("\n").splitlines()
    assert len(drawn) == 8 and all(len(line) == 4 * 8 + 3 * 3 for line in drawn)
