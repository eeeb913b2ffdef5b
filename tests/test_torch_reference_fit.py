"""Module.fit against the same training in PyTorch (a test-only reference): same initial
parameters, same batches in the same order, float64; the parameters after 3 steps agree,
for three fixed cases and for random networks, batches and optimizers (hypothesis)."""

import numpy as np
import pytest
import torch
from property_settings import given, property_settings, settings, st

import tritonsym as ts

BATCH, FEATURES, HIDDEN, CLASSES = 8, 13, 17, 5


def _net():
    w2 = ts.sym.Variable("fc2_weight", lr_mult=0.5)
    net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc1", num_hidden=HIDDEN)
    net = ts.sym.Activation(net, name="relu1", act_type="relu")
    net = ts.sym.FullyConnected(net, weight=w2, name="fc2", num_hidden=CLASSES)
    return ts.sym.SoftmaxOutput(net, name="softmax")


def _torch_reference(params, batches, optimizer, opt_params, schedule):
    p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    lr = opt_params["learning_rate"]
    wd = opt_params.get("wd", 0.0)
    groups = [dict(params=[p[n]], lr=lr * (0.5 if n == "fc2_weight" else 1.0),
                   weight_decay=wd if n.endswith("_weight") else 0.0) for n in p]
    if optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=opt_params.get("momentum", 0.0))
    else:
        opt = (torch.optim.AdamW if optimizer == "adamw" else torch.optim.Adam)(groups, lr=lr, betas=(0.9, 0.999),
                                                                                 eps=1e-8)
    for step, (x, y) in enumerate(batches, start=1):
        if schedule is not None:
            for group, n in zip(opt.param_groups, p):
                group["lr"] = schedule(step) * (0.5 if n == "fc2_weight" else 1.0)
        hidden = torch.relu(x @ p["fc1_weight"].T + p["fc1_bias"])
        logits = hidden @ p["fc2_weight"].T + p["fc2_bias"]
        _step(opt, p, logits, y, opt_params.get("clip_gradient"), opt_params.get("clip_global_norm"))
    return {k: v.detach() for k, v in p.items()}


def _step(opt, params, logits, labels, clip, max_norm=None):
    """One optimizer step on the batch-mean cross-entropy (``rescale_grad = 1/batch``; padded
    samples count, as in the bound step), the gradients scaled to at most ``max_norm``
    together (torch's clip_grad_norm_), then each clipped as MXNet does."""
    loss = torch.nn.functional.cross_entropy(logits, labels)
    opt.zero_grad()
    loss.backward()
    if max_norm is not None:
        torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)
    if clip is not None:
        for t in params.values():
            t.grad.clamp_(-clip, clip)
    opt.step()


CASES = {
    "sgd-momentum-wd-clip": ("sgd", dict(learning_rate=0.2, momentum=0.9, wd=0.01, clip_gradient=0.05), None),
    "sgd-factor-schedule": ("sgd", dict(learning_rate=0.3, wd=0.001), lambda: ts.lr_scheduler.FactorScheduler(
        step=1, factor=0.5)),
    "adam-cosine": ("adam", dict(learning_rate=0.01, wd=0.001), lambda: ts.lr_scheduler.CosineScheduler(
        max_update=4, final_lr=0.001)),
    # decay by lr * wd (torch.optim.AdamW), with the lr schedule and fc2's lr_mult in it
    "adamw-cosine-clip": ("adamw", dict(learning_rate=0.01, wd=0.3, clip_gradient=0.05),
                          lambda: ts.lr_scheduler.CosineScheduler(max_update=4, final_lr=0.001)),
    # the gradients' global norm cut to 0.3 (or 0.2; the test checks it was more), then each clipped to 0.05
    "adamw-global-norm": ("adamw", dict(learning_rate=0.01, wd=0.02, clip_global_norm=0.3, clip_gradient=0.05),
                          None),
    "sgd-global-norm": ("sgd", dict(learning_rate=0.3, momentum=0.9, wd=0.01, clip_global_norm=0.2), None),
}


# The quick run: one case of each optimizer; the others under -m slow (CI runs them too).
QUICK = ("sgd-momentum-wd-clip", "adamw-global-norm")


@pytest.mark.parametrize("case", [pytest.param(c, marks=() if c in QUICK else pytest.mark.slow) for c in CASES])
def test_three_steps_match_pytorch(case):
    optimizer, opt_params, make_schedule = CASES[case]
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3 * BATCH, FEATURES))
    y = rng.integers(0, CLASSES, 3 * BATCH)
    ts.random.seed(3)
    mod = ts.mod.Module(_net())
    train = ts.io.NDArrayIter(x, y, batch_size=BATCH, shuffle=True, dtype="float64", seed=9)
    mod.bind(train.provide_data, train.provide_label)
    mod.init_params(ts.init.Xavier(rnd_type="gaussian"))
    initial, _ = mod.get_params()
    assert all(t.dtype == torch.float64 for t in initial.values())
    schedule = make_schedule() if make_schedule else None
    params = dict(opt_params, **({"lr_scheduler": schedule} if schedule else {}))
    mod.fit(train, num_epoch=1, optimizer=optimizer, optimizer_params=params)
    assert mod.optimizer.num_update == 3
    if "clip_global_norm" in params:  # the last step's norm was cut
        assert mod._updater.grad_norm() > params["clip_global_norm"]
    order = ts.io.NDArrayIter(x, y, batch_size=BATCH, shuffle=True, dtype="float64", seed=9)
    batches = [(b.data[0], b.label[0]) for b in order]
    assert len(batches) == 3 and not torch.equal(batches[0][1], torch.from_numpy(y[:BATCH]))  # shuffled
    reference = _torch_reference(initial, batches, optimizer, opt_params, schedule)
    final, _ = mod.get_params()
    for name, expected in reference.items():
        assert not torch.equal(expected, initial[name]), f"{name} did not move"
        torch.testing.assert_close(final[name], expected, rtol=1e-12, atol=1e-14, msg=f"{case}: {name}")


# Activation(act_type=...) and its PyTorch twin.
TORCH_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
                     "softrelu": torch.nn.functional.softplus, "softsign": torch.nn.functional.softsign}


class _FromInput(torch.autograd.Function):
    """tanh or sigmoid with the derivative computed from the input (``1/cosh(x)**2``,
    ``e**-|x| / (1 + e**-|x|)**2``) instead of from the output as PyTorch and tritonsym do
    (``1 - y**2``, ``y (1 - y)``). Both are right to float64's last digit in y; where the
    activation saturates, the derivative keeps few of those digits either way."""

    @staticmethod
    def forward(ctx, x, kind):
        ctx.save_for_backward(x)
        ctx.kind = kind
        return TORCH_ACTIVATIONS[kind](x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if ctx.kind == "tanh":
            return grad / torch.cosh(x) ** 2, None
        e = torch.exp(-x.abs())
        return grad * e / (1 + e) ** 2, None


def _activation(kind: str, from_input: bool):
    if from_input and kind in ("tanh", "sigmoid"):
        return lambda x: _FromInput.apply(x, kind)
    return TORCH_ACTIVATIONS[kind]


@st.composite
def trainings(draw):
    """A random MLP (1 to 3 layers), batch (maybe padded), optimizer and hyperparameters."""
    hidden = draw(st.lists(st.integers(1, 9), max_size=2))
    acts = [draw(st.sampled_from(sorted(TORCH_ACTIVATIONS))) for _ in hidden]
    optimizer = draw(st.sampled_from(["sgd", "adam", "adamw"]))
    params = dict(learning_rate=draw(st.sampled_from([0.01, 0.3])), wd=draw(st.sampled_from([0.0, 0.01])))
    if draw(st.booleans()):
        params["clip_gradient"] = draw(st.sampled_from([0.01, 1.0]))
    if draw(st.booleans()):
        params["clip_global_norm"] = draw(st.sampled_from([0.05, 10.0]))
    if optimizer == "sgd":
        params["momentum"] = draw(st.sampled_from([0.0, 0.9]))
    else:
        params.update(beta1=draw(st.sampled_from([0.5, 0.9])), beta2=draw(st.sampled_from([0.9, 0.999])),
                      epsilon=draw(st.sampled_from([1e-8, 1e-3])))
    return dict(hidden=hidden, acts=acts, samples=draw(st.integers(1, 12)), batch=draw(st.integers(1, 5)),
                features=draw(st.integers(1, 6)), classes=draw(st.integers(2, 6)), optimizer=optimizer,
                params=params, lr_mult=draw(st.sampled_from([1.0, 0.25])), shuffle=draw(st.booleans()))


def _random_net(case):
    net, names = ts.sym.Variable("data"), []
    for k, (size, act) in enumerate(zip(case["hidden"] + [case["classes"]], case["acts"] + [None])):
        weight = ts.sym.Variable(f"fc{k}_weight", lr_mult=case["lr_mult"]) if k == 0 else None
        net = ts.sym.FullyConnected(net, weight=weight, name=f"fc{k}", num_hidden=size)
        names.append(f"fc{k}")
        if act is not None:
            net = ts.sym.Activation(net, name=f"act{k}", act_type=act)
    return ts.sym.SoftmaxOutput(net, name="softmax"), names


def _torch_steps(case, names, params, batches, from_input=False):
    p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    o = case["params"]
    groups = [dict(params=[p[n]], lr=o["learning_rate"] * (case["lr_mult"] if n == "fc0_weight" else 1.0),
                   weight_decay=o["wd"] if n.endswith("_weight") else 0.0) for n in p]
    if case["optimizer"] == "sgd":
        opt = torch.optim.SGD(groups, lr=o["learning_rate"], momentum=o["momentum"])
    else:
        opt = (torch.optim.AdamW if case["optimizer"] == "adamw" else torch.optim.Adam)(
            groups, lr=o["learning_rate"], betas=(o["beta1"], o["beta2"]), eps=o["epsilon"])
    for x, y in batches:
        h = x
        for k, name in enumerate(names):
            h = h @ p[f"{name}_weight"].T + p[f"{name}_bias"]
            if k < len(case["acts"]):
                h = _activation(case["acts"][k], from_input)(h)
        _step(opt, p, h, y, o.get("clip_gradient"), o.get("clip_global_norm"))
    return {k: v.detach() for k, v in p.items()}


@pytest.mark.slow  # 8 s of generated trainings (the quick run stays under 5 minutes)
@settings(**property_settings(8))
@given(trainings(), st.integers(0, 2**31 - 1))
def test_random_networks_and_optimizers_train_like_pytorch(case, seed):
    """Random depth, widths, activations, batch sizes (a padded last batch too), SGD, Adam or
    AdamW with random hyperparameters: one epoch of Module.fit in float64 ends with PyTorch's
    parameters."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(case["samples"], case["features"]))
    y = rng.integers(0, case["classes"], case["samples"])
    net, names = _random_net(case)
    ts.random.seed(seed)
    make_iter = lambda: ts.io.NDArrayIter(x, y, batch_size=case["batch"], shuffle=case["shuffle"],  # noqa: E731
                                          dtype="float64", seed=seed)
    train = make_iter()
    mod = ts.mod.Module(net)
    mod.bind(train.provide_data, train.provide_label)
    mod.init_params(ts.init.Xavier(rnd_type="gaussian"))
    initial, _ = mod.get_params()
    mod.fit(train, num_epoch=1, optimizer=case["optimizer"], optimizer_params=dict(case["params"]))
    batches = [(b.data[0], b.label[0]) for b in make_iter()]
    reference = _torch_steps(case, names, initial, batches)
    # How far two float64 computations of the same training, both right to the last digit of
    # every activation, can end apart: a saturated tanh or sigmoid leaves its derivative few
    # digits, and Adam's step g / (sqrt(v) + eps) magnifies them where |g| is near eps.
    # tritonsym's activations are within a few ulp, as PyTorch's are: allow 8 such spreads.
    spread = {k: (v - w).abs().max() for (k, v), w in zip(reference.items(), _torch_steps(
        case, names, initial, batches, from_input=True).values())}
    final, _ = mod.get_params()
    for name, expected in reference.items():
        allowed = 1e-13 + 1e-11 * expected.abs() + 8 * spread[name]
        worst = ((final[name] - expected).abs() - allowed).max().item()
        assert worst <= 0, f"{case}: {name} is {worst:.3g} beyond its tolerance"
