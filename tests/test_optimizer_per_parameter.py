"""MXNet's per-parameter optimizer API: ``create_state(index, weight)`` and ``update(index,
weight, grad, state)``. A Python optimizer written that way trains a Module (one call per
parameter per step); the built-ins answer it with their kernels on one tensor, and keep
the flat one-launch update inside a Module."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from networks import blobs, mlp

import tritonsym as ts
from tritonsym import ParamError
from tritonsym.optimizer import FlatUpdater, ParameterUpdater


class PlainSGD(ts.optimizer.Optimizer):
    """SGD with momentum in torch code, the MXNet way."""

    def __init__(self, momentum: float = 0.0, multi_precision: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.multi_precision = multi_precision  # what MXNet subclasses do

    def create_state(self, index, weight):
        return torch.zeros_like(weight) if self.momentum else None

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr, wd = self._get_lr(index), self._get_wd(index)
        step = grad * self.rescale_grad + wd * weight
        if state is None:
            weight.sub_(lr * step)
        else:
            state.mul_(self.momentum).sub_(lr * step)
            weight.add_(state)


def _module(dtype=torch.float64, batch=8):
    mod = ts.mod.Module(mlp((6,), classes=3, out="out"), label_names=("out_label",))
    mod.bind([("data", (batch, 5), dtype)], [("out_label", (batch,), dtype)])
    rng = np.random.default_rng(3)
    shapes = (("fc1_weight", (6, 5)), ("fc1_bias", (6,)), ("fc2_weight", (3, 6)), ("fc2_bias", (3,)))
    mod.init_params(arg_params={n: torch.tensor(rng.normal(0, 0.4, s)) for n, s in shapes})
    return mod


def _batches(n=4, batch=8, dtype=torch.float64):
    x, y = blobs(n * batch, features=5)
    return [ts.io.DataBatch([torch.tensor(x[k:k + batch], dtype=dtype)], [torch.tensor(y[k:k + batch], dtype=dtype)])
            for k in range(0, n * batch, batch)]


def _train(mod, optimizer, batches):
    mod.init_optimizer(optimizer=optimizer)
    for batch in batches:
        mod.train_step(batch)
    return mod.get_params()[0]


def test_a_user_optimizer_trains_like_the_builtin():
    params = dict(learning_rate=0.3, momentum=0.9, wd=0.01, rescale_grad=1 / 8,
                  lr_scheduler=ts.lr_scheduler.FactorScheduler(step=2, factor=0.5))
    user, builtin = _module(), _module()
    start = user.get_params()[0]
    got = _train(user, PlainSGD(**params), _batches())
    params["lr_scheduler"] = ts.lr_scheduler.FactorScheduler(step=2, factor=0.5)
    want = _train(builtin, ts.optimizer.SGD(**params), _batches())
    assert isinstance(user._updater, ParameterUpdater) and isinstance(builtin._updater, FlatUpdater)
    for name in want:
        assert not torch.equal(got[name], start[name]), name
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
    assert user.optimizer.num_update == 4 and user.optimizer._index_update_count == {0: 4, 1: 4, 2: 4, 3: 4}


def test_builtins_answer_the_per_parameter_api_with_their_kernels():
    rng = np.random.default_rng(0)
    weight, grads = rng.normal(size=(4, 3)), [rng.normal(size=(4, 3)) for _ in range(3)]
    for kind, params in (("sgd", dict(learning_rate=0.1, momentum=0.9, wd=0.1)),
                         ("adam", dict(learning_rate=0.1, wd=0.1, clip_gradient=0.5)),
                         ("adamw", dict(learning_rate=0.1, wd=0.1, clip_gradient=0.5))):
        per_parameter = ts.optimizer.create(kind, param_idx2name={7: "w_weight"}, **params)
        w = torch.tensor(weight)
        state = per_parameter.create_state(7, w)
        for g in grads:
            per_parameter.update(7, w, torch.tensor(g), state)
        # the same steps through the flat update of a one-parameter network
        exe = ts.sym.MakeLoss(ts.sym.Variable("w_weight") * 1.0).simple_bind(ts.cpu(), w_weight=(4, 3),
                                                                            type_dict={"w_weight": torch.float64})
        exe.arg_dict["w_weight"][:] = torch.tensor(weight)
        updater = FlatUpdater(ts.optimizer.create(kind, **params), exe)
        for g in grads:
            exe.grad_dict["w_weight"][:] = torch.tensor(g)
            updater.step()
        np.testing.assert_allclose(w.numpy(), exe.arg_dict["w_weight"].numpy(), rtol=1e-12, err_msg=kind)
        assert per_parameter.num_update == 3


def test_multi_precision_keeps_a_float32_master_copy():
    """Steps smaller than half a float16 rounding step of the weight accumulate in the master copy."""
    weight = torch.full((8,), 1.0, dtype=torch.float16)
    opt = PlainSGD(learning_rate=1e-4, multi_precision=True)
    state = opt.create_state_multi_precision(0, weight)
    master, inner = state
    assert master.dtype == torch.float32 and inner is None
    for _ in range(20):
        opt.update_multi_precision(0, weight, torch.ones(8, dtype=torch.float16), state)
    assert float(master[0]) == pytest.approx(1.0 - 20e-4, rel=1e-6)
    assert float(weight[0]) == pytest.approx(float(torch.tensor(1.0 - 20e-4).half()))
    lost = torch.full((8,), 1.0, dtype=torch.float16)  # without it every step rounds away
    for _ in range(20):
        PlainSGD(learning_rate=1e-4).update(0, lost, torch.ones(8, dtype=torch.float16), None)
    assert float(lost[0]) == 1.0


def test_states_are_checkpointed_and_resume_exactly(tmp_path):
    batches = _batches(6)
    straight = _module()
    want = _train(straight, PlainSGD(learning_rate=0.2, momentum=0.9, rescale_grad=1 / 8), batches)
    first = _module()
    _train(first, PlainSGD(learning_rate=0.2, momentum=0.9, rescale_grad=1 / 8), batches[:3])
    prefix = str(tmp_path / "user")
    first.save_checkpoint(prefix, 3, save_optimizer_states=True)
    resumed = ts.mod.Module.load(prefix, 3, load_optimizer_states=True, label_names=("out_label",))
    resumed.bind([("data", (8, 5), torch.float64)], [("out_label", (8,), torch.float64)])
    resumed.init_optimizer(optimizer=PlainSGD(learning_rate=0.2, momentum=0.9, rescale_grad=1 / 8))
    assert resumed.optimizer.num_update == 3
    for batch in batches[3:]:
        resumed.train_step(batch)
    for name, value in resumed.get_params()[0].items():
        assert torch.equal(value, want[name]), name
    other = _module()
    other.init_optimizer(optimizer=PlainSGD(learning_rate=0.2))  # no momentum: no state to load into
    with pytest.raises(ParamError, match=r"optimizer states: missing none, unexpected \['state:fc1_bias'"):
        other.load_optimizer_states(f"{prefix}-0003.states.safetensors")


def test_a_registered_user_optimizer_is_created_by_name():
    @ts.optimizer.register
    class HalvingSGD(PlainSGD):
        def _get_lr(self, index):
            return super()._get_lr(index) / 2

    try:
        mod = _module()
        mod.init_optimizer(optimizer="halvingsgd", optimizer_params={"learning_rate": 0.2})
        assert isinstance(mod.optimizer, HalvingSGD) and isinstance(mod._updater, ParameterUpdater)
        assert mod.optimizer.rescale_grad == 1 / 8 and mod.optimizer.idx2name[0] == "fc1_weight"
        assert mod.optimizer._get_wd(1) == 0.0  # fc1_bias: no weight decay by name
    finally:
        del ts.optimizer.OPTIMIZERS["halvingsgd"]


def test_which_optimizers_update_per_parameter():
    class OwnUpdate(ts.optimizer.SGD):
        def update(self, index, weight, grad, state):
            super().update(index, weight, grad, state)

    class OwnPlan(PlainSGD):
        def plan(self, weight, grad, states, chunks, hyper, scaler=None):
            return []

    per_parameter = ts.optimizer.per_parameter
    assert not per_parameter(ts.optimizer.SGD()) and not per_parameter(ts.optimizer.Adam())
    assert per_parameter(PlainSGD()) and per_parameter(OwnUpdate()) and not per_parameter(OwnPlan())


def test_misuse_is_named():
    mod = _module()
    with pytest.raises(ParamError, match=r"PlainSGD: loss_scale needs the flat update .* update\(index, weight, grad"):
        mod.init_optimizer(optimizer=PlainSGD(loss_scale=128.0))

    class OddState(PlainSGD):
        def create_state(self, index, weight):
            return {"m": weight}

    with pytest.raises(ParamError, match="create_state returned a dict; a state must be None, a torch tensor"):
        _module().init_optimizer(optimizer=OddState())
    with pytest.raises(NotImplementedError, match=r"Optimizer: define update\(index, weight, grad, state\)"):
        ts.optimizer.Optimizer().update(0, torch.zeros(1), torch.zeros(1), None)
    with pytest.raises(ParamError, match="multi_precision='yes' must be True or False"):
        PlainSGD(multi_precision="yes")
    with pytest.raises(ParamError, match="is not a subclass of tritonsym.optimizer.Optimizer"):
        ts.optimizer.register(dict)
