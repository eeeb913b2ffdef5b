"""Module.fit against the same training in PyTorch (a test-only reference): same initial
parameters, same batches in the same order, float64; the parameters after 3 steps agree."""

import numpy as np
import pytest
import torch

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
        opt = torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    for step, (x, y) in enumerate(batches, start=1):
        if schedule is not None:
            for group, n in zip(opt.param_groups, p):
                group["lr"] = schedule(step) * (0.5 if n == "fc2_weight" else 1.0)
        hidden = torch.relu(x @ p["fc1_weight"].T + p["fc1_bias"])
        logits = hidden @ p["fc2_weight"].T + p["fc2_bias"]
        loss = torch.nn.functional.cross_entropy(logits, y)  # the batch mean: rescale_grad = 1/batch
        opt.zero_grad()
        loss.backward()
        if "clip_gradient" in opt_params:
            for t in p.values():
                t.grad.clamp_(-opt_params["clip_gradient"], opt_params["clip_gradient"])
        opt.step()
    return {k: v.detach() for k, v in p.items()}


CASES = {
    "sgd-momentum-wd-clip": ("sgd", dict(learning_rate=0.2, momentum=0.9, wd=0.01, clip_gradient=0.05), None),
    "sgd-factor-schedule": ("sgd", dict(learning_rate=0.3, wd=0.001), lambda: ts.lr_scheduler.FactorScheduler(
        step=1, factor=0.5)),
    "adam-cosine": ("adam", dict(learning_rate=0.01, wd=0.001), lambda: ts.lr_scheduler.CosineScheduler(
        max_update=4, final_lr=0.001)),
}


@pytest.mark.parametrize("case", CASES)
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
    order = ts.io.NDArrayIter(x, y, batch_size=BATCH, shuffle=True, dtype="float64", seed=9)
    batches = [(b.data[0], b.label[0]) for b in order]
    assert len(batches) == 3 and not torch.equal(batches[0][1], torch.from_numpy(y[:BATCH]))  # shuffled
    reference = _torch_reference(initial, batches, optimizer, opt_params, schedule)
    final, _ = mod.get_params()
    for name, expected in reference.items():
        assert not torch.equal(expected, initial[name]), f"{name} did not move"
        torch.testing.assert_close(final[name], expected, rtol=1e-12, atol=1e-14, msg=f"{case}: {name}")
