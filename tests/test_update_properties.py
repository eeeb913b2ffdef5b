"""Property tests (hypothesis) of the optimizer updates (ops/optimizer.py) against the numpy
oracles: random parameter regions (1 to 5 parameters, sizes around block edges, gaps,
per-parameter multipliers), every dtype, SGD / SGD with momentum / Adam with random
hyperparameters, float32 master copies of half-precision weights, and a dynamic loss scale
with poisoned steps, over several steps. Each step is checked from the kernel's own state
after the step before, so only one step's rounding counts."""

import numpy as np
import oracles
import torch
from property_settings import given, property_settings, settings, st
from tolerances import DTYPES, assert_close, rounded, to_numpy
from tritonsym.ops import optimizer as O

SETTINGS = property_settings(30)
# 1, block edges of the GPU's 1024-element chunks, and one above the interpreter's 65536.
SIZES = [1, 2, 15, 16, 17, 1023, 1025, (1 << 16) + 1]
KINDS = ["sgd", "sgd momentum", "adam", "adamw"]
CASES = {"cases": 0, "steps": 0, "skipped steps": 0}


@st.composite
def regions(draw):
    """(segments, region size): parameters in a flat region with gaps between them."""
    segments, position = [], 0
    for _ in range(draw(st.integers(1, 5))):
        position += draw(st.integers(0, 5))
        size = draw(st.sampled_from(SIZES))
        segments.append(O.Segment(position, size, draw(st.sampled_from([0.0, 0.5, 1.0, 3.0])),
                                  draw(st.sampled_from([0.0, 1.0, 2.0]))))
        position += size
    return segments, position + draw(st.integers(0, 3))


@st.composite
def hyperparameters(draw, kind):
    values = dict(learning_rate=draw(st.sampled_from([1e-3, 0.1, 1.0])), wd=draw(st.sampled_from([0.0, 1e-4, 0.1])),
                  rescale_grad=draw(st.sampled_from([1.0, 1 / 128, 2.0])),
                  clip=draw(st.sampled_from([None, 0.5, 100.0])))
    if kind.startswith("adam"):
        values.update(beta1=draw(st.sampled_from([0.0, 0.5, 0.9])), beta2=draw(st.sampled_from([0.9, 0.999])),
                      epsilon=draw(st.sampled_from([1e-8, 1e-3])))
    else:
        values.update(momentum=draw(st.sampled_from([0.5, 0.99])) if kind == "sgd momentum" else 0.0)
    return values


def _hyper(kind, values, step, ct):
    """The hyper tensor the host writes for update number ``step``, counting skipped steps
    as the updater does (with a loss scale Adam's kernel subtracts the skipped ones)."""
    full = dict(values, clip_gradient=values["clip"] or 0.0, step=step)
    if kind.startswith("adam"):
        full.update(bias_correction1=1 - values["beta1"] ** step,
                    sqrt_bias_correction2=(1 - values["beta2"] ** step) ** 0.5,
                    one_minus_beta1=1 - values["beta1"], one_minus_beta2=1 - values["beta2"])
    names = O.ADAM_HYPER if kind.startswith("adam") else O.SGD_HYPER
    return torch.tensor([float(full[n]) for n in names], dtype=ct)


def _oracle(kind, values, seg, w, g, states, step):
    """One step of the float64 oracle on one parameter; returns (weight, states)."""
    lr, wd = values["learning_rate"] * seg.lr_mult, values["wd"] * seg.wd_mult
    if kind.startswith("adam"):
        update = oracles.adamw_update if kind == "adamw" else oracles.adam_update
        w, m, v = update(w, g, states["mean"], states["var"], step, lr, values["beta1"], values["beta2"],
                         values["epsilon"], wd, values["rescale_grad"], values["clip"])
        return w, {"mean": m, "var": v}
    w, mom = oracles.sgd_update(w, g, states.get("momentum"), lr, wd, values["rescale_grad"], values["clip"],
                                values["momentum"])
    return w, ({} if mom is None else {"momentum": mom})


def _update(kind, w, g, states, chunks, hyper, clip, master, scaler):
    if scaler is not None:
        O.run(O.plan_count_nonfinite_grads(g, chunks, scaler))
    if kind.startswith("adam"):
        O.run(O.plan_adam_update(w, g, states["mean"], states["var"], chunks, hyper, clip, master, scaler,
                                 decoupled=kind == "adamw"))
    else:
        O.run(O.plan_sgd_update(w, g, states.get("momentum"), chunks, hyper, clip, master, scaler))
    if scaler is not None:
        O.run(O.plan_loss_scale_update(scaler, 2.0, 0.5, 2, 1.0, 2.0 ** 10))


@settings(**SETTINGS)
@given(regions(), st.sampled_from(DTYPES), st.sampled_from(KINDS), st.data(), st.booleans(), st.booleans(),
       st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_updates_on_random_regions_follow_the_oracle(region, dtype, kind, data, with_master, with_scaler, steps,
                                                      seed):
    segments, size = region
    values = data.draw(hyperparameters(kind))
    rng = np.random.default_rng(seed)
    ct = O.compute_dtype(dtype)
    with_master = with_master and dtype in O.HALF_DTYPES
    CASES["cases"] += 1
    inside = np.zeros(size, bool)
    for seg in segments:
        inside[seg.start:seg.start + seg.size] = True
    w = rounded(rng.normal(size=size), dtype)
    w[torch.as_tensor(~inside)] = 7.0  # gaps: never parameters, never written
    master = torch.zeros(size) if with_master else None  # zero-filled: the first update adopts the weights
    states = {name: torch.zeros(size, dtype=ct) for name in
              {"adam": ("mean", "var"), "adamw": ("mean", "var"), "sgd momentum": ("momentum",), "sgd": ()}[kind]}
    scaler = O.LossScaleState.create(2.0 ** rng.integers(0, 10), w.device) if with_scaler else None
    chunks = O.chunk_table(segments, size, dtype, w.device)
    poisoned_step = rng.integers(0, steps) if with_scaler and rng.random() < 0.5 else None
    applied = 0
    for step in range(steps):
        CASES["steps"] += 1
        g = rounded(rng.normal(size=size), dtype)
        if scaler is not None:  # a power of two: the loss operators' scaling is exact
            g = (g.to(ct) * scaler.scale.item()).to(dtype)
        g[torch.as_tensor(~inside)] = float("nan")  # a gap is not a gradient: never read, never counted
        if step == poisoned_step:
            seg = segments[rng.integers(len(segments))]
            g[seg.start + rng.integers(seg.size)] = float(rng.choice([np.inf, -np.inf, np.nan]))
        unscaled = to_numpy(g) / (1.0 if scaler is None else scaler.scale.item())
        before_w = w.clone()
        before_master = None if master is None else master.clone()
        before = {name: to_numpy(t).copy() for name, t in states.items()}  # a float64 state's array is a view
        _update(kind, w, g, states, chunks, _hyper(kind, values, step + 1, ct), values["clip"] is not None, master,
                scaler)
        assert torch.equal(w[torch.as_tensor(~inside)], before_w[torch.as_tensor(~inside)]), "wrote into a gap"
        if step == poisoned_step:
            CASES["skipped steps"] += 1
            assert torch.equal(w, before_w), "a step with a non-finite gradient must write nothing"
            assert master is None or torch.equal(master, before_master)
            assert all(np.array_equal(to_numpy(t), before[n]) for n, t in states.items())
            assert scaler.counters[2].item() == 1
            continue
        applied += 1
        # The weight the update starts from: the master copy where the weight still holds its rounding.
        start = to_numpy(before_w)
        if master is not None:
            start = np.where(to_numpy(before_master.to(dtype)) == start, to_numpy(before_master), start)
        for seg in segments:
            s = slice(seg.start, seg.start + seg.size)
            expected, expected_states = _oracle(kind, values, seg, start[s], unscaled[s],
                                                {n: v[s] for n, v in before.items()}, applied)
            where = f"{kind} {values} step {step + 1}, parameter [{seg.start}:{seg.start + seg.size}]"
            if master is not None:
                assert_close(master[s], expected, torch.float32, f"master copy, {where}")
                assert torch.equal(w[s], master[s].to(dtype)), "the weight is its master copy rounded"
            else:
                assert_close(w[s], expected, dtype, f"weight, {where}")
            for name, t in expected_states.items():
                assert_close(states[name][s], t, ct, f"{name}, {where}")
