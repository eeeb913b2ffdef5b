"""Flat optimizer updates (ops/optimizer.py) against the numpy oracles, over regions with
gaps, per-segment multipliers, every dtype and irregular sizes."""

import numpy as np
import oracles
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, DTYPES_QUICK_FIRST, assert_close, rounded, to_numpy
from tritonsym.ops import KernelArgumentError
from tritonsym.ops import optimizer as O

# (start, size, lr_mult, wd_mult): irregular sizes, gaps between them, one above a GPU block.
SEGMENTS = [(0, 1, 1.0, 1.0), (3, 7, 0.5, 0.0), (16, 33, 2.0, 1.0), (64, 1030, 1.0, 3.0)]
REGION = 1100
DEVICE = torch.get_default_device()  # the GPU where the suite runs there (conftest.py)


@pytest.mark.parametrize("names", [O.SGD_HYPER, O.ADAM_HYPER, O.SCALER_COUNTERS])
def test_the_kernels_slot_names_are_the_hosts_slots(names):
    """The kernels read ``hyper`` and the counters at named constexpr slots; the host fills
    them by the names in the tuples: each name must sit where its constant says."""
    for slot, name in enumerate(names):
        assert getattr(O, name.upper()).value == slot, name


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
@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_adam_matches_oracle_over_steps(rng, dtype, clip, decoupled):
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
                      sqrt_bias_correction2=(1 - 0.95 ** step) ** 0.5, step=step, one_minus_beta1=0.2,
                      one_minus_beta2=0.05)
        hyper = torch.tensor([values[k] for k in O.ADAM_HYPER], dtype=ct)
        O.run(O.plan_adam_update(w, g, mean, var, chunks, hyper, clip is not None, decoupled=decoupled))
        _gaps_untouched(w0, w)
        for seg in SEGMENTS:
            start, size, lr_mult, wd_mult = seg
            s = slice(start, start + size)
            # The oracle continues from the kernel's rounded weight, so only one step's error counts.
            _, m, v = ref[seg]
            update = oracles.adamw_update if decoupled else oracles.adam_update
            ref_w, m, v = update(to_numpy(w0[s]), to_numpy(g[s]), m, v, step, 0.01 * lr_mult, 0.8, 0.95, 1e-6,
                                 0.1 * wd_mult, 0.5, clip)
            ref[seg] = (ref_w, m, v)
            assert_close(w[s], ref_w, dtype, f"weight [{start}:{start + size}] step {step}")
            assert_close(mean[s], m, torch.float64 if ct == torch.float64 else torch.float32, "mean")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16"])
@pytest.mark.parametrize("kind", ["sgd momentum", "adam"])
def test_states_in_the_parameters_half_dtype(rng, dtype, kind):
    """torch.optim's choice for half-precision parameters: momentum and Adam's moments kept
    in the parameter's dtype, rounded to nearest even, and the update made from the state
    as kept. Each step is checked from the kernel's own state after the step before."""
    w, _ = _region(rng, dtype)
    states = [torch.zeros(REGION, dtype=dtype) for _ in range(2 if kind == "adam" else 1)]
    chunks = _chunks(dtype)
    for step in (1, 2, 3):
        g = rounded(rng.normal(size=REGION), dtype)
        w0, before = w.clone(), [to_numpy(t) for t in states]
        if kind == "adam":
            values = dict(learning_rate=0.01, wd=0.0, rescale_grad=1.0, clip_gradient=0.0, beta1=0.8, beta2=0.95,
                          epsilon=1e-6, step=step, one_minus_beta1=0.2, one_minus_beta2=0.05)
            hyper = torch.tensor([values[k] for k in O.ADAM_HYPER])
            O.run(O.plan_adam_update(w, g, states[0], states[1], chunks, hyper, False))
        else:
            values = dict(learning_rate=0.1, wd=0.0, rescale_grad=1.0, clip_gradient=0.0, momentum=0.9)
            hyper = torch.tensor([values[k] for k in O.SGD_HYPER])
            O.run(O.plan_sgd_update(w, g, states[0], chunks, hyper, False))
        for start, size, lr_mult, _ in SEGMENTS:
            sl = slice(start, start + size)
            gs, ws = to_numpy(g[sl]), to_numpy(w0[sl])
            if kind == "adam":
                m = to_numpy(rounded(0.8 * before[0][sl] + 0.2 * gs, dtype))  # kept in the dtype, then used
                v = to_numpy(rounded(0.95 * before[1][sl] + 0.05 * gs * gs, dtype))
                step_size = 0.01 * lr_mult / (1 - 0.8 ** step)
                expected = ws - step_size * m / (np.sqrt(v) / np.sqrt(1 - 0.95 ** step) + 1e-6)
                kept = [m, v]
            else:
                mom = to_numpy(rounded(0.9 * before[0][sl] - 0.1 * lr_mult * gs, dtype))
                expected, kept = ws + mom, [mom]
            for t, want in zip(states, kept):
                assert t.dtype == dtype
                assert_close(t[sl], want, dtype, f"{kind} state step {step}")
            assert_close(w[sl], expected, dtype, f"{kind} weight step {step}")


@pytest.mark.parametrize("with_scaler", [False, True], ids=["no scaler", "loss scaler"])
@pytest.mark.parametrize("step", [1, 2, 1000, 100000])
def test_adam_steps_keep_float32_precision_at_the_default_betas(rng, with_scaler, step):
    """float32 Adam with beta2 = 0.999, from zero moments and a zero weight (so the weight
    is the step itself, with no cancellation): within 1e-6 of the float64 oracle's step.
    ``1 - beta`` taken from float32 betas would put the first steps 6e-6 off (1 - 0.999f is
    1.3e-5 off), and so would a device-side ``1 - beta**t`` computed by subtraction."""
    g = rounded(rng.normal(size=REGION), torch.float32)
    w, mean, var = torch.zeros(REGION), torch.zeros(REGION), torch.zeros(REGION)
    values = dict(learning_rate=1.0, wd=0.0, rescale_grad=1.0, clip_gradient=0.0, beta1=0.9, beta2=0.999,
                  epsilon=1e-8, bias_correction1=1 - 0.9 ** step, sqrt_bias_correction2=(1 - 0.999 ** step) ** 0.5,
                  step=step, one_minus_beta1=1 - 0.9, one_minus_beta2=1 - 0.999)
    hyper = torch.tensor([values[k] for k in O.ADAM_HYPER])
    scaler = O.LossScaleState.create(1.0, DEVICE) if with_scaler else None
    chunks = O.chunk_table([O.Segment(0, REGION)], REGION, torch.float32, DEVICE)
    O.run(O.plan_adam_update(w, g, mean, var, chunks, hyper, False, scaler=scaler))
    expected, _, _ = oracles.adam_update(np.zeros(REGION), to_numpy(g), np.zeros(REGION), np.zeros(REGION), step,
                                         1.0, 0.9, 0.999, 1e-8)
    np.testing.assert_allclose(to_numpy(w), expected, rtol=1e-6, atol=0)


def test_chunks_are_aligned_bodies_and_short_edges():
    """Every element of every segment is in exactly one chunk; a chunk of CHUNK_ALIGN
    elements or more (the kernels read it 16 bytes at a time) starts and ends on multiples
    of CHUNK_ALIGN and fits in a block; the rest (a parameter's edges) are shorter."""
    align = O.CHUNK_ALIGN
    segments = [O.Segment(start, size) for start, size in
                [(0, 1), (3, 7), (16, 33), (64, 1030), (1097, 15), (1113, 31), (1150, 16), (1170, 2 * align + 3)]]
    chunks = O.chunk_table(segments, 1300, torch.float32, DEVICE)
    bounds = list(zip(chunks.start.tolist(), chunks.end.tolist()))
    covered = sorted(i for start, end in bounds for i in range(start, end))
    assert covered == sorted(i for seg in segments for i in range(seg.start, seg.start + seg.size))
    bodies = [(start, end) for start, end in bounds if end - start >= align]
    assert all(start % align == 0 and end % align == 0 and end - start <= chunks.block for start, end in bodies)
    assert len(bodies) >= 4 and len(bounds) - len(bodies) >= 8  # both kinds are exercised


@pytest.mark.parametrize("start, end", [(3, 40), (0, 40), (16, 37)])
def test_a_body_chunk_off_the_alignment_gives_wrong_numbers(start, end):
    """The kernels compute a body chunk's bounds as multiples of CHUNK_ALIGN (so the compiler
    knows them) rather than assume it: a table breaking the rule updates the wrong
    elements, so the tests above, which pass, would see a kernel that dropped the rule."""
    w, g = torch.zeros(64), torch.ones(64)
    chunks = O.ChunkTable(torch.tensor([start]), torch.tensor([end]), torch.ones(1), torch.zeros(1), 64)
    hyper = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])  # learning rate 1: w -= g
    O.run(O.plan_sgd_update(w, g, None, chunks, hyper, False))
    assert not torch.equal(w, torch.where((torch.arange(64) >= start) & (torch.arange(64) < end), -1.0, 0.0))


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
    chunks = O.chunk_table([O.Segment(0, 8)], 8, torch.float32, DEVICE)
    hyper = torch.zeros(len(O.SGD_HYPER))
    with pytest.raises(KernelArgumentError, match="segment 0 .* outside the region of 4"):
        O.chunk_table([O.Segment(0, 8)], 4, torch.float32, DEVICE)
    with pytest.raises(KernelArgumentError, match="grad .* must match weight"):
        O.plan_sgd_update(w, torch.zeros(7), None, chunks, hyper, False)
    with pytest.raises(KernelArgumentError, match="momentum must be torch.float32 with 8 elements"):
        O.plan_sgd_update(w, torch.zeros(8), torch.zeros(8, dtype=torch.float64), chunks, hyper, False)
    with pytest.raises(KernelArgumentError, match="hyper must be 5"):
        O.plan_sgd_update(w, torch.zeros(8), None, chunks, torch.zeros(3), False)
    with pytest.raises(KernelArgumentError, match="flat contiguous"):
        O.plan_sgd_update(torch.zeros(4, 2), torch.zeros(4, 2), None, chunks, hyper, False)


HALF_DTYPES = [torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=["float16", "bfloat16"])
@pytest.mark.parametrize("kind", ["sgd", "sgd momentum", "adam"])
def test_master_copy_keeps_updates_below_the_rounding_step(rng, dtype, kind):
    """Weights near 1 and a rate that moves them by about 1e-4 a step, less than half a unit
    in the last place there (2^-11 in float16, 2^-8 in bfloat16): without a master copy the
    weights never move; with one they follow the float64 oracle of the same updates, and
    the weight is always the master copy rounded to its dtype."""
    w = rounded(1.0 + 0.01 * rng.random(REGION), dtype)
    ct = torch.float32
    states = {"mean": torch.zeros(REGION), "var": torch.zeros(REGION)} if kind == "adam" else \
        {"momentum": torch.zeros(REGION)} if kind == "sgd momentum" else {}
    master = torch.zeros(REGION)  # zero-filled: the first update adopts the weights
    plain, plain_states = w.clone(), {k: v.clone() for k, v in states.items()}
    w0 = w.clone()
    chunks = _chunks(dtype)
    ref = {s: (to_numpy(w[s[0]:s[0] + s[1]]), np.zeros(s[1]), np.zeros(s[1])) for s in SEGMENTS}
    # Adam's steps are about lr; SGD's lr * |g| (g in [1, 3)), up to 4.1x that with 5 steps of momentum
    lr = {"adam": 1e-4, "sgd": 3e-5, "sgd momentum": 1e-5}[kind]
    for step in (1, 2, 3, 4, 5):
        g = rounded(1.0 + 2.0 * rng.random(REGION), dtype)
        if kind == "adam":
            values = dict(learning_rate=lr, wd=0.0, rescale_grad=1.0, clip_gradient=0.0, beta1=0.8, beta2=0.95,
                          epsilon=1e-8, bias_correction1=1 - 0.8 ** step,
                          sqrt_bias_correction2=(1 - 0.95 ** step) ** 0.5, step=step, one_minus_beta1=0.2,
                          one_minus_beta2=0.05)
            hyper = torch.tensor([values[k] for k in O.ADAM_HYPER], dtype=ct)
            O.run(O.plan_adam_update(w, g, states["mean"], states["var"], chunks, hyper, False, master=master))
            O.run(O.plan_adam_update(plain, g, plain_states["mean"], plain_states["var"], chunks, hyper, False))
        else:
            momentum = 0.9 if kind == "sgd momentum" else 0.0
            values = dict(learning_rate=lr, wd=0.0, rescale_grad=1.0, clip_gradient=0.0, momentum=momentum)
            hyper = torch.tensor([values[k] for k in O.SGD_HYPER], dtype=ct)
            O.run(O.plan_sgd_update(w, g, states.get("momentum"), chunks, hyper, False, master=master))
            O.run(O.plan_sgd_update(plain, g, plain_states.get("momentum"), chunks, hyper, False))
        for seg in SEGMENTS:
            start, size, lr_mult, _ = seg
            s = slice(start, start + size)
            w_ref, m, v = ref[seg]
            if kind == "adam":
                w_ref, m, v = oracles.adam_update(w_ref, to_numpy(g[s]), m, v, step, lr * lr_mult, 0.8, 0.95, 1e-8)
            else:
                w_ref, m = oracles.sgd_update(w_ref, to_numpy(g[s]), m, lr * lr_mult, momentum=momentum)
            ref[seg] = (w_ref, m, v)
            # float32 arithmetic on values near 1: 5 steps of float32 rounding, far below the updates
            np.testing.assert_allclose(to_numpy(master[s]), w_ref, rtol=0, atol=1e-6,
                                       err_msg=f"master [{start}:{start + size}] step {step}")
            assert torch.equal(w[s], master[s].to(dtype)), "the weight is its master copy rounded"
    _gaps_untouched(w0, w)
    assert all(torch.all(master[a:a + n] < w0[a:a + n].float()) for a, n, _, _ in SEGMENTS), "the updates add up"
    assert torch.equal(plain, w0), "without a master copy every update is rounded away"


@pytest.mark.parametrize("dtype", HALF_DTYPES, ids=["float16", "bfloat16"])
def test_a_weight_written_since_the_last_update_replaces_its_master_copy(dtype):
    """set_params, a loaded checkpoint or ``arg_dict[...] = ...`` write the weight, not the
    master copy: the next update must start from what was written, element by element."""
    w = torch.ones(40, dtype=dtype)
    g = torch.ones(40, dtype=dtype)
    master = torch.zeros(40)
    for _ in range(3):
        O.sgd_update(w, g, learning_rate=1e-4, master=master)
    np.testing.assert_allclose(master.numpy(), 1 - 3e-4, rtol=1e-6)
    w[7] = 3.0  # written behind the optimizer's back
    w[9] = w[8]  # rewritten with the value it already holds: keeps its master copy
    O.sgd_update(w, g, learning_rate=1e-4, master=master)
    assert master[7].item() == pytest.approx(3.0 - 1e-4, abs=1e-6)
    np.testing.assert_allclose(master[[0, 8, 9, 39]].numpy(), 1 - 4e-4, rtol=1e-6)
    assert torch.equal(w, master.to(dtype))


def test_master_copy_errors():
    chunks = O.chunk_table([O.Segment(0, 8)], 8, torch.bfloat16, DEVICE)
    hyper = torch.zeros(len(O.SGD_HYPER))
    w = torch.zeros(8, dtype=torch.bfloat16)
    with pytest.raises(KernelArgumentError, match="sgd_update: master must be torch.float32 with 8 elements like "
                                                  "weight, got torch.bfloat16 with 8"):
        O.plan_sgd_update(w, w, None, chunks, hyper, False, master=torch.zeros(8, dtype=torch.bfloat16))
    with pytest.raises(KernelArgumentError, match="adam_update: a master copy is for float16/bfloat16 weights; "
                                                  "torch.float32 weights are updated in their own precision"):
        f = torch.zeros(8)
        O.plan_adam_update(f, f, f, f, chunks, torch.zeros(len(O.ADAM_HYPER)), False, master=torch.zeros(8))


# ----------------------------------------------------------------------- loss scaling


def _scaled_step(kind, w, g, states, hyper_values, chunks, scaler=None):
    ct = O.compute_dtype(w.dtype)
    if kind.startswith("adam"):
        hyper = torch.tensor([hyper_values[k] for k in O.ADAM_HYPER], dtype=ct)
        O.run(O.plan_adam_update(w, g, states["mean"], states["var"], chunks, hyper, False, scaler=scaler,
                                 decoupled=kind == "adamw"))
    else:
        hyper = torch.tensor([hyper_values[k] for k in O.SGD_HYPER], dtype=ct)
        O.run(O.plan_sgd_update(w, g, states.get("momentum"), chunks, hyper, False, scaler=scaler))


def _hyper_values(step, momentum=0.0):
    return dict(learning_rate=0.01, wd=0.1, rescale_grad=0.5, clip_gradient=0.0, momentum=momentum, beta1=0.8,
                beta2=0.95, epsilon=1e-6, bias_correction1=1 - 0.8 ** step,
                sqrt_bias_correction2=(1 - 0.95 ** step) ** 0.5, step=step, one_minus_beta1=0.2, one_minus_beta2=0.05)


def _states(kind, ct):
    if kind.startswith("adam"):
        return {"mean": torch.zeros(REGION, dtype=ct), "var": torch.zeros(REGION, dtype=ct)}
    return {"momentum": torch.zeros(REGION, dtype=ct)} if kind == "sgd momentum" else {}


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)
@pytest.mark.parametrize("kind", ["sgd", "sgd momentum", "adam", "adamw"])
def test_loss_scaled_update_unscales_and_skips_overflowed_steps(rng, dtype, kind):
    """Gradients scaled by a power of two (exactly, as the loss operators do) give the
    oracle's update of the unscaled gradients; a step with one inf or NaN gradient writes
    nothing (weights, momentum, moments; AdamW's decay neither) and is not counted in Adam's
    bias correction; a
    NaN in a gap between parameters is not a gradient and is not counted."""
    ct = O.compute_dtype(dtype)
    w, _ = _region(rng, dtype)
    states = _states(kind, ct)
    chunks = _chunks(dtype)
    scaler = O.LossScaleState.create(1024.0, w.device)
    ref = {seg: (to_numpy(w[seg[0]:seg[0] + seg[1]]), np.zeros(seg[1]), np.zeros(seg[1])) for seg in SEGMENTS}
    momentum = 0.9 if kind == "sgd momentum" else 0.0
    applied = 0
    for step, poison in enumerate([None, float("inf"), None, float("nan"), None], start=1):
        g = rounded(rng.normal(size=REGION), dtype)
        scaled = (g.to(ct) * scaler.scale.item()).to(dtype)
        scaled[12] = float("nan")  # a gap
        if poison is not None:
            scaled[100] = poison
        before = w.clone(), {k: v.clone() for k, v in states.items()}
        O.run(O.plan_count_nonfinite_grads(scaled, chunks, scaler))
        assert scaler.counters[0].item() == (poison is not None)
        _scaled_step(kind, w, scaled, states, _hyper_values(step, momentum), chunks, scaler)
        if poison is not None:
            assert torch.equal(w, before[0]) and all(torch.equal(v, before[1][k]) for k, v in states.items())
        else:
            applied += 1
            for seg in SEGMENTS:
                start, size, lr_mult, wd_mult = seg
                sl = slice(start, start + size)
                w_prev, m, v = ref[seg]
                w_prev = to_numpy(before[0][sl])  # one step's error at a time, as above
                if kind.startswith("adam"):
                    update = oracles.adamw_update if kind == "adamw" else oracles.adam_update
                    w_ref, m, v = update(w_prev, to_numpy(g[sl]), m, v, applied, 0.01 * lr_mult, 0.8, 0.95, 1e-6,
                                         0.1 * wd_mult, 0.5)
                else:
                    w_ref, m = oracles.sgd_update(w_prev, to_numpy(g[sl]), None if kind == "sgd" else m,
                                                  0.01 * lr_mult, 0.1 * wd_mult, 0.5, None, momentum)
                ref[seg] = (w_ref, m, v)
                assert_close(w[sl], w_ref, dtype, f"weight [{start}:{start + size}] step {step}")
        O.run(O.plan_loss_scale_update(scaler, 2.0, 0.5, 1000, 2.0 ** -24, 2.0 ** 24))
    assert scaler.counters.tolist() == [0, 1, 2]  # nothing counted, 1 good step since the last backoff, 2 skipped
    assert scaler.scale.item() == 256.0


def _scale_oracle(overflows, init, growth, backoff, interval, lo, hi):
    """NVIDIA's dynamic loss scale schedule, step by step: (scale, good steps, skipped)."""
    scale, good, skipped, out = init, 0, 0, []
    for bad in overflows:
        if bad:
            scale, good, skipped = max(scale * backoff, lo), 0, skipped + 1
        else:
            good += 1
            if good >= interval:
                scale, good = min(scale * growth, hi), 0
        out.append((scale, good, skipped))
    return out


def test_loss_scale_schedule_matches_its_oracle(rng):
    """Back off after every overflow, grow after ``growth_interval`` good steps in a row,
    within [min_scale, max_scale]: 200 random steps against the schedule written out."""
    settings = (8.0, 2.0, 0.5, 3, 0.25, 64.0)
    overflows = list(rng.random(200) < 0.3) + [True] * 8 + [False] * 30
    scaler = O.LossScaleState.create(settings[0], DEVICE)
    launch = O.plan_loss_scale_update(scaler, *settings[1:])
    for bad, (scale, good, skipped) in zip(overflows, _scale_oracle(overflows, *settings)):
        scaler.counters[0] = 7 if bad else 0
        O.run(launch)
        assert (scaler.scale.item(), *scaler.counters.tolist()) == (scale, 0, good, skipped)
    assert scaler.scale.item() == 64.0  # 30 good steps grew it to the ceiling; 8 overflows had hit the floor


def test_loss_scale_errors():
    chunks = O.chunk_table([O.Segment(0, 8)], 8, torch.float32, DEVICE)
    f = torch.zeros(8)
    with pytest.raises(KernelArgumentError, match=f"count_nonfinite_grads: the loss scale must be 1 float32 and its "
                                                  f"counters 3 int32 on {f.device}, got 2 on {f.device} and 3 on "
                                                  f"{f.device}"):
        O.plan_count_nonfinite_grads(f, chunks, O.LossScaleState(torch.ones(2), torch.zeros(3, dtype=torch.int32)))
    with pytest.raises(KernelArgumentError, match="sgd_update: loss-scale counters has dtype float32"):
        O.plan_sgd_update(f, f, None, chunks, torch.zeros(len(O.SGD_HYPER)), False,
                          scaler=O.LossScaleState(torch.ones(1), torch.zeros(3)))
