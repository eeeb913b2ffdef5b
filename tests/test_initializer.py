"""Initializers: rules by name, a Variable's init wins, distributions, determinism, JSON."""

import math

import numpy as np
import pytest
import torch

import tritonsym as ts
from tritonsym import ParamError


def _fill(init, name, shape, attrs=None, dtype=torch.float64):
    t = torch.full(shape, float("nan"), dtype=dtype)
    init(name, t, attrs)
    return t


def test_rules_by_name():
    init = ts.init.Normal(1.0)
    assert (_fill(init, "fc1_bias", (5,)) == 0).all()
    assert (_fill(init, "bn_beta", (5,)) == 0).all()
    assert (_fill(init, "bn_gamma", (5,)) == 1).all()
    assert _fill(init, "fc1_weight", (50, 40)).std() > 0.9
    with pytest.raises(ParamError, match="no rule for argument 'emb'.*init=ts.init.Normal"):
        _fill(init, "emb", (3,))


def test_variable_init_attribute_wins():
    w = ts.sym.Variable("w", init=ts.init.Constant(0.25))
    b = ts.sym.Variable("fc_bias", init=ts.init.One())
    net = ts.sym.FullyConnected(ts.sym.Variable("data"), weight=w, bias=b, name="fc", num_hidden=3)
    attrs = net.attr_dict()
    assert (_fill(ts.init.Xavier(), "w", (3, 4), attrs["w"]) == 0.25).all()  # no rule for "w" needed
    assert (_fill(ts.init.Xavier(), "fc_bias", (3,), attrs["fc_bias"]) == 1).all()


@pytest.mark.parametrize("rnd_type, factor_type, fan", [("uniform", "avg", 150), ("gaussian", "in", 100),
                                                        ("uniform", "out", 200)])
def test_xavier_scale(rnd_type, factor_type, fan):
    ts.random.seed(1)
    w = _fill(ts.init.Xavier(rnd_type, factor_type, magnitude=2.0), "fc_weight", (200, 100)).cpu().numpy()
    scale = math.sqrt(2.0 / fan)
    if rnd_type == "uniform":
        assert np.abs(w).max() <= scale and np.abs(w).max() > 0.99 * scale
        assert w.std() == pytest.approx(scale / math.sqrt(3), rel=0.02)
    else:
        assert w.std() == pytest.approx(scale, rel=0.02) and abs(w.mean()) < 0.05 * scale
    with pytest.raises(ParamError, match="Xavier needs at least 2 dimensions"):
        _fill(ts.init.Xavier(), "v_weight", (5,))


@pytest.mark.parametrize("factor_type, fan", [("in", 6 * 15), ("out", 8 * 15), ("avg", 7 * 15)])
def test_xavier_counts_the_receptive_field_of_a_kernel(factor_type, fan):
    """A weight (out, in, kh, kw) has fan-in in·kh·kw and fan-out out·kh·kw (MXNet's rule)."""
    ts.random.seed(3)
    w = _fill(ts.init.Xavier("uniform", factor_type, magnitude=0.5), "conv_weight", (8, 6, 3, 5)).cpu().numpy()
    scale = math.sqrt(0.5 / fan)
    assert np.abs(w).max() <= scale and np.abs(w).max() > 0.99 * scale


def test_uniform_normal_constant_ranges():
    ts.random.seed(2)
    u = _fill(ts.init.Uniform(0.3), "a_weight", (100, 100)).cpu().numpy()
    assert u.min() >= -0.3 and u.max() <= 0.3 and u.std() == pytest.approx(0.3 / math.sqrt(3), rel=0.02)
    n = _fill(ts.init.Normal(0.2), "a_weight", (100, 100)).cpu().numpy()
    assert n.std() == pytest.approx(0.2, rel=0.02) and abs(n.mean()) < 0.01
    assert (_fill(ts.init.Zero(), "a_weight", (2, 2)) == 0).all()


def test_deterministic_under_a_seed_and_equal_across_dtypes():
    ts.random.seed(7)
    a = _fill(ts.init.Xavier(), "fc_weight", (6, 9))
    ts.random.seed(7)
    b = _fill(ts.init.Xavier(), "fc_weight", (6, 9), dtype=torch.float32)
    assert torch.equal(a.float(), b)  # drawn in float64 on the host, then converted
    c = _fill(ts.init.Xavier(), "fc_weight", (6, 9))
    assert not torch.equal(a, c)


def test_dumps_and_create_round_trip():
    for init in (ts.init.Xavier("gaussian", "in", 2.0), ts.init.Normal(0.5), ts.init.Constant(3.0), ts.init.One(),
                 ts.init.Uniform(0.3), ts.init.Zero()):
        again = ts.init.create(init.dumps())
        assert type(again) is type(init) and again.dumps() == init.dumps()
    assert isinstance(ts.init.create("xavier"), ts.init.Xavier)
    with pytest.raises(ParamError, match="unknown initializer 'orthogonal'"):
        ts.init.create("orthogonal")
    for text in ('["normal", 3', '[1, {}]', '["normal", [0.1]]'):
        with pytest.raises(ParamError, match="cannot read"):
            ts.init.create(text)
    with pytest.raises(ParamError, match="Xavier: magnitude=0 must be positive"):
        ts.init.Xavier(magnitude=0)
    with pytest.raises(ParamError, match="initializer 'normal'.*unexpected keyword"):
        ts.init.create('["normal", {"mu": 1}]')
