"""Flat optimizer updates (ops/optimizer.py) against the numpy oracles, over regions with
gaps, per-segment multipliers, every dtype and irregular sizes."""

import numpy as np
import oracles
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close, rounded, to_numpy
from tritonsym.ops import KernelArgumentError
from tritonsym.ops import optimizer as O

# (start, size, lr_mult, wd_mult): irregular sizes, gaps between them, one above a GPU block.
SEGMENTS = [(0, 1, 1.0, 1.0), (3, 7, 0.5, 0.0), (16, 33, 2.0, 1.0), (64, 1030, 1.0, 3.0)]
REGION = 1100


def _region(rng, dtype):
    w = rounded(rng.normal(size=REGION), dtype)
    g = rounded(rng.normal(size=REGION), dtype)
    return w, g


def _gaps_untouched(before: torch.Tensor, after: torch.Tensor):
    inside = np.zeros(REGION, bool)
    for start, size, _, _ in SEGMENTS:
        inside[start:start + size] = True
    assert torch.equal(before[torch.as_tensor(~inside)], after[torch.as_tensor(~inside)]), "wrote into a gap"


def _chunks(dtype):
    return O.chunk_table([O.Segment(*s) for s in SEGMENTS], REGION, dtype, torch.get_default_device())


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("clip", [None, 0.7])
def test_sgd_matches_oracle(rng, dtype, momentum, clip):
    w, g = _region(rng, dtype)
    ct = O.compute_dtype(dtype)
    mom = torch.as_tensor(rng.normal(size=REGION)).to(ct) if momentum else None
    w0, mom0 = w.clone(), None if mom is None else mom.clone()
    values = dict(learning_rate=0.05, wd=0.01, rescale_grad=0.25, clip_gradient=clip or 0.0, momentum=momentum)
    hyper = torch.tensor([values[k] for k in O.SGD_HYPER], dtype=ct)
    O.run(O.plan_sgd_update(w, g, mom, _chunks(dtype), hyper, clip is not None))
    _gaps_untouched(w0, w)
    for start, size, lr_mult, wd_mult in SEGMENTS:
        s = slice(start, start + size)
        ref_w, ref_mom = oracles.sgd_update(to_numpy(w0[s]), to_numpy(g[s]), None if mom0 is None else
                                            to_numpy(mom0[s]), 0.05 * lr_mult, 0.01 * wd_mult, 0.25, clip, momentum)
        assert_close(w[s], ref_w, dtype, f"weight [{start}:{start + size}]")
        if mom is not None:
            assert_close(mom[s], ref_mom, torch.float64 if ct == torch.float64 else torch.float32, "momentum")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("clip", [None, 0.3])
def test_adam_matches_oracle_over_steps(rng, dtype, clip):
    w, _ = _region(rng, dtype)
    ct = O.compute_dtype(dtype)
    mean, var = torch.zeros(REGION, dtype=ct), torch.zeros(REGION, dtype=ct)
    ref = {s: (to_numpy(w[s[0]:s[0] + s[1]]), np.zeros(s[1]), np.zeros(s[1])) for s in SEGMENTS}
    chunks = _chunks(dtype)
    for step in (1, 2, 3):
        g = rounded(rng.normal(size=REGION), dtype)
        w0 = w.clone()
        values = dict(learning_rate=0.01, wd=0.1, rescale_grad=0.5, clip_gradient=clip or 0.0, beta1=0.8,
                      beta2=0.95, epsilon=1e-6, bias_correction1=1 - 0.8 ** step,
                      sqrt_bias_correction2=(1 - 0.95 ** step) ** 0.5)
        hyper = torch.tensor([values[k] for k in O.ADAM_HYPER], dtype=ct)
        O.run(O.plan_adam_update(w, g, mean, var, chunks, hyper, clip is not None))
        _gaps_untouched(w0, w)
        for seg in SEGMENTS:
            start, size, lr_mult, wd_mult = seg
            s = slice(start, start + size)
            # The oracle continues from the kernel's rounded weight, so only one step's error counts.
            _, m, v = ref[seg]
            ref_w, m, v = oracles.adam_update(to_numpy(w0[s]), to_numpy(g[s]), m, v, step, 0.01 * lr_mult, 0.8,
                                              0.95, 1e-6, 0.1 * wd_mult, 0.5, clip)
            ref[seg] = (ref_w, m, v)
            assert_close(w[s], ref_w, dtype, f"weight [{start}:{start + size}] step {step}")
            assert_close(mean[s], m, torch.float64 if ct == torch.float64 else torch.float32, "mean")


def test_standalone_updates_and_float64_exactness(rng):
    w = torch.as_tensor(rng.normal(size=(5, 3)))
    g = torch.as_tensor(rng.normal(size=(5, 3)))
    mom = torch.zeros(15, dtype=torch.float64)
    expected, _ = oracles.sgd_update(w.cpu().numpy().copy(), g.cpu().numpy(), np.zeros((5, 3)), 0.1, 0.0, 1.0,
                                     None, 0.9)
    O.sgd_update(w, g, mom.view(5, 3), learning_rate=0.1, momentum_factor=0.9)
    np.testing.assert_array_equal(w.cpu().numpy(), expected)  # float64: the same operations, the same bits
    mean, var = torch.zeros(15, dtype=torch.float64), torch.zeros(15, dtype=torch.float64)
    w2 = torch.as_tensor(rng.normal(size=15))
    ref, _, _ = oracles.adam_update(w2.cpu().numpy().copy(), g.cpu().numpy().reshape(-1), np.zeros(15),
                                    np.zeros(15), 1, 0.01)
    O.adam_update(w2, g.reshape(-1), mean, var, step=1, learning_rate=0.01)
    assert_close(w2, ref, torch.float64)


def test_errors():
    w = torch.zeros(8)
    chunks = O.chunk_table([O.Segment(0, 8)], 8, torch.float32, "cpu")
    hyper = torch.zeros(len(O.SGD_HYPER))
    with pytest.raises(KernelArgumentError, match="segment 0 .* outside the region of 4"):
        O.chunk_table([O.Segment(0, 8)], 4, torch.float32, "cpu")
    with pytest.raises(KernelArgumentError, match="grad .* must match weight"):
        O.plan_sgd_update(w, torch.zeros(7), None, chunks, hyper, False)
    with pytest.raises(KernelArgumentError, match="momentum must be torch.float32 with 8 elements"):
        O.plan_sgd_update(w, torch.zeros(8), torch.zeros(8, dtype=torch.float64), chunks, hyper, False)
    with pytest.raises(KernelArgumentError, match="hyper must be 5"):
        O.plan_sgd_update(w, torch.zeros(8), None, chunks, torch.zeros(3), False)
    with pytest.raises(KernelArgumentError, match="flat contiguous"):
        O.plan_sgd_update(torch.zeros(4, 2), torch.zeros(4, 2), None, chunks, hyper, False)
