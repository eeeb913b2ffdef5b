"""clip_global_norm: the norm of every gradient of a step across dtypes and parameters (not
the gaps between them), the clipping coefficient, their agreement with
``torch.nn.utils.clip_grad_norm_`` (NaN and inf included), the loss scale taken out, and the
updater's errors where the norm cannot be honoured. Module.fit against torch with it:
``tests/test_torch_reference_fit.py``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tritonsym.ops import grad_norm as kernels
from tritonsym.ops import optimizer as O
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ParamError

SEGMENTS = [(0, 5), (21, 40), (64, 1000)]  # (start, size): gaps between the parameters
REGION = 1070


def _region(rng, dtype, scale=1.0):
    """A flat gradient region of ``dtype`` with NaN in its gaps (no gradient: must not count)."""
    grad = torch.full((REGION,), float("nan"), dtype=dtype)
    for start, size in SEGMENTS:
        grad[start:start + size] = torch.tensor(rng.normal(scale=scale, size=size), dtype=dtype)
    chunks = O.chunk_table([O.Segment(s, n) for s, n in SEGMENTS], REGION, dtype, "cpu")
    return grad, chunks


def _inside(grad):
    return torch.cat([grad[s:s + n] for s, n in SEGMENTS]).double()


def _norm_state(regions, max_norm, rescale=1.0, scaler=None):
    hyper = torch.tensor([0.1, 0.0, rescale], dtype=torch.float64)
    partials = torch.full((kernels.partial_count([c for _, c in regions]),), float("nan"), dtype=torch.float64)
    state = kernels.new_state("cpu")
    run(kernels.plan_global_norm(regions, partials, state, hyper, 2, max_norm, scaler))
    return state.tolist()


@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_the_norm_of_every_region_and_torchs_coefficient(max_norm, rng):
    """A bfloat16 and a float64 region together, gaps ignored; clipped or not."""
    regions = [_region(rng, torch.bfloat16), _region(rng, torch.float64)]
    coefficient, norm = _norm_state(regions, max_norm, rescale=0.25)
    want = 0.25 * float(torch.cat([_inside(g) for g, _ in regions]).norm())
    assert norm == pytest.approx(want, rel=1e-6)
    assert coefficient == pytest.approx(min(1.0, max_norm / (want + 1e-6)), rel=1e-6)


def test_many_partial_sums_are_added_in_steps(rng, monkeypatch):
    """Two partial sums per step of the final program: its loop runs several times."""
    monkeypatch.setattr(kernels, "SUM_BLOCK", 2)
    grad, chunks = _region(rng, torch.float64)
    assert chunks.programs > 4
    _, norm = _norm_state([(grad, chunks)], 1.0)
    np.testing.assert_allclose(norm, float(_inside(grad).norm()), rtol=1e-13)


@pytest.mark.parametrize("poison", [None, float("nan"), float("inf")])
def test_the_update_equals_torchs_clip_grad_norm_then_step(poison, rng):
    """SGD on the clipped gradients equals torch's clip_grad_norm_ followed by SGD, in float64:
    a NaN anywhere makes every parameter NaN; an inf makes the coefficient 0 (torch's too)."""
    grad, chunks = _region(rng, torch.float64, scale=3.0)
    if poison is not None:
        grad[30] = poison
    weight = torch.tensor(rng.normal(size=REGION))
    state = kernels.new_state("cpu")
    hyper = torch.tensor([0.1, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64)  # SGD_HYPER: lr 0.1
    partials = torch.zeros(chunks.programs, dtype=torch.float64)
    params = [weight[s:s + n].clone().requires_grad_() for s, n in SEGMENTS]
    for p, (s, n) in zip(params, SEGMENTS):
        p.grad = grad[s:s + n].clone()
    torch.nn.utils.clip_grad_norm_(params, 2.0)
    torch.optim.SGD(params, lr=0.1).step()
    run(kernels.plan_global_norm([(grad, chunks)], partials, state, hyper, 2, 2.0)
        + O.plan_sgd_update(weight, grad, None, chunks, hyper, False, clip_state=state))
    for p, (s, n) in zip(params, SEGMENTS):
        np.testing.assert_allclose(weight[s:s + n].numpy(), p.detach().numpy(), rtol=1e-13, atol=1e-15)
    if poison is not None and poison != poison:
        assert weight[0].isnan() and state[0].isnan()


def test_the_loss_scale_is_taken_out_of_the_norm(rng):
    grad, chunks = _region(rng, torch.float32)
    scaler = O.LossScaleState.create(1024.0, "cpu")
    plain = _norm_state([(grad, chunks)], 1.0)
    scaled = _norm_state([((grad.double() * 1024).float(), chunks)], 1.0, scaler=scaler)
    np.testing.assert_allclose(scaled, plain, rtol=1e-6)


def test_errors_name_the_argument():
    grad, chunks = _region(np.random.default_rng(0), torch.float32)
    hyper, state = torch.zeros(3, dtype=torch.float64), kernels.new_state("cpu")
    partials = torch.zeros(chunks.programs, dtype=torch.float64)
    with pytest.raises(KernelArgumentError, match=r"global_norm: partials must be a flat float64 tensor of at least "
                                                  f"{chunks.programs} elements"):
        kernels.plan_global_norm([(grad, chunks)], partials[:1], state, hyper, 2, 1.0)
    with pytest.raises(KernelArgumentError, match="global_norm: max_norm=0.0 must be positive"):
        kernels.plan_global_norm([(grad, chunks)], partials, state, hyper, 2, 0.0)
    with pytest.raises(KernelArgumentError, match="global_norm: rescale_slot 5 is outside hyper of 3 elements"):
        kernels.plan_global_norm([(grad, chunks)], partials, state, hyper, 5, 1.0)
    with pytest.raises(KernelArgumentError, match="sgd_update: clip_state"):
        O.plan_sgd_update(grad, grad, None, chunks, torch.zeros(5), False, clip_state=torch.zeros(2))
    with pytest.raises(ParamError, match="clip_global_norm=-1"):
        ts.optimizer.SGD(clip_global_norm=-1)


def _bound():
    net = ts.sym.LinearRegressionOutput(ts.sym.FullyConnected(ts.sym.Variable("data"), num_hidden=3, name="fc"),
                                        name="out")
    return net.simple_bind(ts.cpu(), type_dict={"data": "float64"}, data=(4, 5), out_label=(4, 3))


def test_the_updater_reports_the_norm_and_refuses_what_cannot_clip(rng):
    exe = _bound()
    names = ["fc_weight", "fc_bias"]
    for name in names:
        exe.grad_dict[name][...] = torch.tensor(rng.normal(size=tuple(exe.grad_dict[name].shape)))
    updater = ts.optimizer.FlatUpdater(ts.optimizer.AdamW(clip_global_norm=1.0), exe, names)
    updater.step()
    want = float(torch.cat([exe.grad_dict[n].reshape(-1) for n in names]).norm())
    assert updater.grad_norm() == pytest.approx(want, rel=1e-13)
    assert ts.optimizer.FlatUpdater(ts.optimizer.Adam(), exe, names).grad_norm() is None

    class PerParameter(ts.optimizer.Optimizer):
        def update(self, index, weight, grad, state):
            weight -= grad

    with pytest.raises(ParamError, match="PerParameter: clip_global_norm needs the flat update"):
        ts.optimizer.updater_for(PerParameter(clip_global_norm=1.0), exe, names)
    with pytest.raises(ParamError, match="SGD: clip_global_norm needs every gradient of the step at once"):
        ts.optimizer.SGD(clip_global_norm=1.0).update(0, torch.zeros(3), torch.zeros(3), None)
