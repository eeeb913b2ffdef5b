"""Optimizer classes, learning-rate schedules, and FlatUpdater on a bound executor."""

import math
import warnings

import numpy as np
import oracles
import pytest
import torch
from property_settings import given, property_settings, settings, st

import tritonsym as ts
from tritonsym import ParamError
from tritonsym.optimizer import CosineScheduler, FactorScheduler, MultiFactorScheduler


def test_create_by_name_and_instance():
    sgd = ts.optimizer.create("SGD", learning_rate=0.5, momentum=0.9)
    assert isinstance(sgd, ts.optimizer.SGD) and sgd.lr == 0.5 and sgd.momentum == 0.9
    adam = ts.optimizer.Adam()
    assert ts.optimizer.create(adam) is adam
    with pytest.raises(ParamError, match="unknown optimizer 'rmsprop'; known: adam, adamw, sgd"):
        ts.optimizer.create("rmsprop")
    with pytest.raises(ParamError, match="cannot be applied to an optimizer instance"):
        ts.optimizer.create(adam, learning_rate=0.1)


@pytest.mark.parametrize("kwargs, message", [
    (dict(momentum=1.5), r"SGD: momentum=1.5 must be a number in \[0.0, 1.0\)"),
    (dict(learning_rate=-1), r"SGD: learning_rate=-1 must be a number in \[0.0, inf\)"),
    (dict(rescale_grad=0), r"rescale_grad=0 must be a number in \(0.0"),
    (dict(clip_gradient=float("nan")), "clip_gradient=nan"),
    (dict(wd="0.1"), "wd='0.1'"),
])
def test_bad_hyperparameters_are_named(kwargs, message):
    with pytest.raises(ParamError, match=message):
        ts.optimizer.SGD(**kwargs)
    with pytest.raises(ParamError, match=r"Adam: beta2=1.0 must be a number in \[0.0, 1.0\)"):
        ts.optimizer.Adam(beta2=1.0)


def test_repr_setters_and_bounds():
    """repr lists the configuration (a loss scale only when there is one: the data-parallel
    fingerprint compares it); set_learning_rate takes any rate >= 0; beta1 = 1 is refused;
    a name the optimizer was never told about gets weight decay by its suffix."""
    assert repr(ts.optimizer.SGD(momentum=0.5)) == ("SGD(learning_rate=0.01, wd=0.0, rescale_grad=1.0, "
                                                     "clip_gradient=None, momentum=0.5)")
    assert "loss_scale=LossScaler(init_scale=1024.0" in repr(ts.optimizer.SGD(loss_scale=1024.0))
    sgd = ts.optimizer.SGD()
    sgd.set_learning_rate(0.5)
    assert sgd.learning_rate == 0.5 and sgd.hyper(1)["learning_rate"] == 0.5
    with pytest.raises(ParamError, match=r"SGD: learning_rate=-0.1 must be a number in \[0.0, inf\)"):
        sgd.set_learning_rate(-0.1)
    with pytest.raises(ParamError, match=r"Adam: beta1=1.0 must be a number in \[0.0, 1.0\)"):
        ts.optimizer.Adam(beta1=1.0)
    assert sgd.multipliers("head_bias") == (1.0, 0.0) and sgd.multipliers("head_weight") == (1.0, 1.0)


def test_multipliers_from_names_symbol_and_setters():
    w = ts.sym.Variable("fc1_weight", lr_mult=0.1)
    b = ts.sym.Variable("fc1_bias", wd_mult=2.0)
    net = ts.sym.FullyConnected(ts.sym.Variable("data"), weight=w, bias=b, name="fc1", num_hidden=3)
    names = {0: "fc1_weight", 1: "fc1_bias", 2: "bn_gamma", 3: "emb"}
    opt = ts.optimizer.SGD(param_idx2name=names, sym=net)
    # weight decay on *_weight and *_gamma only, unless a wd_mult says otherwise
    assert opt.multipliers("fc1_weight") == (0.1, 1.0)
    assert opt.multipliers("fc1_bias") == (1.0, 2.0)
    assert opt.multipliers("bn_gamma") == (1.0, 1.0)
    assert opt.multipliers("emb") == (1.0, 0.0)
    opt.set_lr_mult({"emb": 3.0})
    opt.set_wd_mult({"emb": 0.5})
    assert opt.multipliers("emb") == (3.0, 0.5)
    assert opt.multipliers("fc1_weight") == (0.1, 1.0)  # the symbol's attribute stays


def test_schedulers_by_hand():
    f = FactorScheduler(step=3, factor=0.5, base_lr=1.0, stop_factor_lr=0.2)
    assert [f(n) for n in range(1, 11)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2]
    m = MultiFactorScheduler(step=[2, 5], factor=0.1, base_lr=1.0)
    assert [round(m(n), 12) for n in range(1, 8)] == [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01]
    c = CosineScheduler(max_update=10, base_lr=2.0, final_lr=0.0, warmup_steps=2, warmup_begin_lr=0.0)
    assert c(1) == 1.0  # linear warm-up: half way at 1 of 2
    assert c(2) == 2.0 and c(10) == pytest.approx(0.0, abs=1e-15) and c(11) == 0.0
    assert c(6) == pytest.approx(1.0)  # half way through the cosine
    with pytest.raises(ParamError, match="strictly increasing"):
        MultiFactorScheduler(step=[5, 2])
    with pytest.raises(ParamError, match="base_lr is not set"):
        FactorScheduler(step=1)(1)
    opt = ts.optimizer.SGD(learning_rate=0.3, lr_scheduler=FactorScheduler(step=1, factor=0.5))
    assert opt.learning_rate == 0.3 and opt.hyper(2)["learning_rate"] == 0.15
    with pytest.raises(ParamError, match="comes from lr_scheduler"):
        opt.set_learning_rate(0.1)


class _MXNetSchedule:
    """MXNet 1.9.1's schedulers (python/mxnet/lr_scheduler.py) as it wrote them: stateful,
    called with num_update = 1, 2, 3, ... in turn, a rate multiplied in place at each decay."""

    def __init__(self, kind, base_lr, warmup_steps, warmup_begin_lr, warmup_mode, **kw):
        self.kind, self.base_lr, self.kw = kind, base_lr, kw
        self.warmup_steps, self.warmup_begin_lr, self.warmup_mode = warmup_steps, warmup_begin_lr, warmup_mode
        self.warmup_final_lr, self.base_lr_orig, self.count, self.cur_step_ind = base_lr, base_lr, 0, 0

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            if self.warmup_mode == "linear":
                return self.warmup_begin_lr + (self.warmup_final_lr - self.warmup_begin_lr) * num_update / \
                    self.warmup_steps
            return self.warmup_begin_lr
        if self.kind == "factor":
            while num_update > self.count + self.kw["step"]:
                self.count += self.kw["step"]
                self.base_lr *= self.kw["factor"]
                self.base_lr = max(self.base_lr, self.kw["stop_factor_lr"])
        elif self.kind == "multifactor":
            while self.cur_step_ind <= len(self.kw["step"]) - 1 and num_update > self.kw["step"][self.cur_step_ind]:
                self.cur_step_ind += 1
                self.base_lr *= self.kw["factor"]
        elif num_update <= self.kw["max_update"]:
            max_steps = self.kw["max_update"] - self.warmup_steps
            self.base_lr = self.kw["final_lr"] + (self.base_lr_orig - self.kw["final_lr"]) * \
                (1 + math.cos(math.pi * (num_update - self.warmup_steps) / max_steps)) / 2
        return self.base_lr


_SCHEDULES = {"factor": FactorScheduler, "multifactor": MultiFactorScheduler, "cosine": CosineScheduler}


@st.composite
def _schedule(draw):
    kind = draw(st.sampled_from(sorted(_SCHEDULES)))
    warmup = dict(warmup_steps=draw(st.integers(0, 6)), warmup_begin_lr=draw(st.floats(0, 0.5)),
                  warmup_mode=draw(st.sampled_from(["linear", "constant"])))
    base_lr = draw(st.floats(0.01, 2))
    if kind == "factor":  # a base rate under the floor is where tritonsym departs from MXNet (tested apart)
        kw = dict(step=draw(st.integers(1, 5)), factor=draw(st.floats(0.05, 1)),
                  stop_factor_lr=draw(st.floats(0, base_lr)))
    elif kind == "multifactor":
        kw = dict(step=sorted(draw(st.sets(st.integers(1, 25), min_size=1, max_size=4))),
                  factor=draw(st.floats(0.05, 1)))
    else:
        kw = dict(max_update=warmup["warmup_steps"] + draw(st.integers(1, 20)), final_lr=draw(st.floats(0, 0.4)))
    return kind, base_lr, warmup, kw


@given(_schedule())
@settings(**property_settings(150))
def test_schedules_follow_mxnets_stateful_arithmetic(case):
    """Every update count from 1 to past the last decay, warm-up of either mode included;
    the pure functions meet MXNet's repeated multiplications to rounding."""
    kind, base_lr, warmup, kw = case
    ours, theirs = _SCHEDULES[kind](base_lr=base_lr, **warmup, **kw), _MXNetSchedule(kind, base_lr, **warmup, **kw)
    for num_update in range(1, 40):
        assert ours(num_update) == pytest.approx(theirs(num_update), rel=1e-12, abs=1e-15), num_update


@pytest.mark.parametrize("make, message", [
    (lambda: FactorScheduler(step=2, warmup_steps=-1), "warmup_steps=-1 must be a non-negative integer"),
    (lambda: FactorScheduler(step=2, warmup_steps=2.0), "warmup_steps=2.0 must be a non-negative integer"),
    (lambda: FactorScheduler(step=2, warmup_mode="cosine"), "warmup_mode='cosine' must be 'linear' or 'constant'"),
    (lambda: FactorScheduler(step=0), "step=0 must be an integer >= 1"),
    (lambda: FactorScheduler(step=2.0), "step=2.0 must be an integer >= 1"),
    (lambda: FactorScheduler(step=2, factor=0.0), r"factor=0.0 must be in \(0, 1\]"),
    (lambda: FactorScheduler(step=2, factor=1.5), r"factor=1.5 must be in \(0, 1\]"),
    (lambda: MultiFactorScheduler(step=[0, 3]), r"step=\[0, 3\] must be strictly increasing integers >= 1"),
    (lambda: MultiFactorScheduler(step=[2.0]), r"step=\[2.0\] must be strictly"),
    (lambda: MultiFactorScheduler(step=[2, 2]), r"step=\[2, 2\] must be strictly"),
    (lambda: MultiFactorScheduler(step=[]), r"step=\[\] must be strictly"),
    (lambda: MultiFactorScheduler(step=[2], factor=0.0), r"factor=0.0 must be in \(0, 1\]"),
    (lambda: MultiFactorScheduler(step=[2], factor=1.01), r"factor=1.01 must be in \(0, 1\]"),
    (lambda: CosineScheduler(max_update=3, warmup_steps=3), "max_update=3 must be an integer above warmup_steps=3"),
    (lambda: CosineScheduler(max_update=10.0), "max_update=10.0 must be an integer above warmup_steps=0"),
])
def test_bad_schedules_are_named(make, message):
    with pytest.raises(ParamError, match=message):
        make()


def test_a_base_rate_under_the_factor_floor_is_never_raised():
    """MXNet's FactorScheduler gives 1e-4, then 1e-3 from its first decay on; the floor
    here only stops the decay."""
    schedule = FactorScheduler(step=2, factor=0.5, stop_factor_lr=1e-3, base_lr=1e-4)
    assert [schedule(n) for n in range(1, 8)] == [1e-4] * 7
    assert FactorScheduler(step=2, factor=0.5, stop_factor_lr=0.3, base_lr=1.0)(5) == 0.3


def test_schedules_at_the_edges_of_what_they_accept():
    """The smallest step, factor 1 (no decay), the first update count as a step, and a
    cosine one update longer than its warm-up are all valid, and give the rates they say."""
    assert [FactorScheduler(step=1, factor=1.0, base_lr=0.5)(n) for n in (1, 7)] == [0.5, 0.5]
    assert [MultiFactorScheduler(step=[1], factor=1.0, base_lr=0.5)(n) for n in (1, 2)] == [0.5, 0.5]
    assert [MultiFactorScheduler(step=[1], factor=0.5, base_lr=0.5)(n) for n in (1, 2)] == [0.5, 0.25]
    cosine = CosineScheduler(max_update=4, warmup_steps=3, base_lr=1.0, final_lr=0.25, warmup_mode="constant",
                             warmup_begin_lr=0.1)
    assert [cosine(n) for n in range(1, 6)] == [0.1, 0.1, 1.0, 0.25, 0.25]


def _bound(dtype=torch.float64, grad_req="write"):
    net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc1", num_hidden=5)
    net = ts.sym.FullyConnected(net, name="fc2", num_hidden=3)
    net = ts.sym.LinearRegressionOutput(net, name="out")
    exe = net.simple_bind(ts.cpu(), grad_req=grad_req, type_dict={"data": dtype}, data=(4, 7))
    return net, exe


def test_flat_updater_updates_every_parameter_like_the_oracle(rng):
    _, exe = _bound(grad_req={"fc1_weight": "write", "fc1_bias": "write", "fc2_weight": "write",
                              "fc2_bias": "null"})
    names = ["fc1_weight", "fc1_bias", "fc2_weight"]
    opt = ts.optimizer.SGD(learning_rate=0.1, momentum=0.9, wd=0.01, clip_gradient=0.5,
                           param_idx2name=dict(enumerate(names)))
    opt.set_lr_mult({"fc2_weight": 0.5})
    updater = ts.optimizer.FlatUpdater(opt, exe)
    assert updater.param_names == names
    arrays = exe.arg_dict
    for name, t in arrays.items():
        t.copy_(torch.from_numpy(rng.normal(size=tuple(t.shape))))
    moms = {n: np.zeros(tuple(arrays[n].shape)) for n in names}
    for step in range(3):
        for n in names:
            exe.grad_dict[n].copy_(torch.from_numpy(rng.normal(size=tuple(arrays[n].shape))))
        before = {n: t.cpu().numpy().copy() for n, t in arrays.items()}
        updater.step()
        for n in names:
            lr_mult, wd_mult = opt.multipliers(n)
            ref, moms[n] = oracles.sgd_update(before[n], exe.grad_dict[n].cpu().numpy(), moms[n], 0.1 * lr_mult,
                                              0.01 * wd_mult, 1.0, 0.5, 0.9)
            np.testing.assert_allclose(arrays[n].cpu().numpy(), ref, rtol=1e-13, atol=1e-15, err_msg=n)
        np.testing.assert_array_equal(arrays["fc2_bias"].cpu().numpy(), before["fc2_bias"])  # grad_req null
    assert opt.num_update == 3
    states = updater.state_dict()
    assert sorted(states) == ["momentum:fc1_bias", "momentum:fc1_weight", "momentum:fc2_weight", "num_update"]
    np.testing.assert_allclose(states["momentum:fc2_weight"].cpu().numpy(), moms["fc2_weight"], rtol=1e-13, atol=1e-15)
    fresh = ts.optimizer.FlatUpdater(ts.optimizer.SGD(momentum=0.9, param_idx2name=dict(enumerate(names))), exe)
    fresh.load_state_dict(states)
    assert fresh.optimizer.num_update == 3
    assert torch.equal(fresh.state_dict()["momentum:fc1_weight"], states["momentum:fc1_weight"])
    with pytest.raises(ParamError, match="missing .*momentum:fc1_bias"):
        fresh.load_state_dict({k: v for k, v in states.items() if k != "momentum:fc1_bias"})


def test_hyper_is_rewritten_only_when_it_changes():
    _, exe = _bound(torch.float32)
    for t in exe.grad_dict.values():
        if t is not None:
            t.zero_()
    adam = ts.optimizer.FlatUpdater(ts.optimizer.Adam(), exe)
    step = ts.ops.optimizer.ADAM_HYPER.index("step")
    adam.step()
    first = adam.groups[0].written
    adam.step()
    # Adam's update number is advanced on the device and its bias corrections computed
    # there: no host-to-device copy after the first step
    assert adam.groups[0].written is first and adam.groups[0].hyper[step].item() == 2
    # a count set from outside (a checkpoint's num_update) is written over the device's
    adam.load_state_dict(adam.state_dict() | {"num_update": torch.tensor(10)})
    adam.step()
    assert adam.groups[0].hyper[step].item() == 11 == adam.optimizer.num_update
    adam.step()
    assert adam.groups[0].hyper[step].item() == 12
    sgd = ts.optimizer.FlatUpdater(ts.optimizer.SGD(learning_rate=0.1), exe)
    sgd.step()
    first = sgd.groups[0].written
    sgd.step()
    assert sgd.groups[0].written is first  # a constant rate: no host-to-device copy
    assert math.isclose(first[0], 0.1)


def test_updater_needs_parameters_in_the_workspace():
    net, _ = _bound()
    args = {n: torch.zeros(s, dtype=torch.float64) for n, s in zip(net.list_arguments(),
                                                                    net.infer_shape(data=(4, 7))[0])}
    grads = {n: torch.zeros_like(t) for n, t in args.items()}
    exe = net.bind(ts.cpu(), args, args_grad=grads)
    with pytest.raises(ts.BindError, match="'data' or its gradient is an array given to bind"):
        ts.optimizer.FlatUpdater(ts.optimizer.SGD(), exe)


def test_multi_precision_states_warning_and_checkpoints():
    with pytest.raises(ParamError, match="SGD: multi_precision=1 must be True or False"):
        ts.optimizer.SGD(multi_precision=1)
    assert "multi_precision=True" in repr(ts.optimizer.Adam(multi_precision=True))
    names = ["fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"]
    _, half = _bound(torch.bfloat16, grad_req=dict.fromkeys(names, "write"))
    with pytest.warns(UserWarning, match="SGD: torch.bfloat16 parameters are updated in torch.bfloat16, .* pass "
                                         "multi_precision=True for a float32 master copy") as caught:
        ts.optimizer.FlatUpdater(ts.optimizer.SGD(), half)
    assert caught[0].filename == __file__  # the user's line, not tritonsym's
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said either way: no warning
        plain = ts.optimizer.FlatUpdater(ts.optimizer.SGD(multi_precision=False), half)
        master = ts.optimizer.FlatUpdater(ts.optimizer.Adam(multi_precision=True), half)
        _, single = _bound(torch.float32)
        assert ts.optimizer.FlatUpdater(ts.optimizer.SGD(multi_precision=True), single).groups[0].states == {}
    assert sorted(plain.state_dict()) == ["num_update"]
    assert sorted(master.state_dict()) == sorted([f"{s}:{n}" for s in ("master", "mean", "var") for n in names]
                                                 + ["num_update"])
    for t in half.grad_dict.values():
        if t is not None:
            t.fill_(0.5)
    master.step()
    states = master.state_dict()
    assert torch.equal(states["master:fc1_weight"].to(torch.bfloat16).cpu(), half.arg_dict["fc1_weight"].cpu())
    # States saved without a master copy load into an optimizer with one: it adopts the weights.
    master.load_state_dict({k: v for k, v in states.items() if not k.startswith("master:")})
    assert not master.groups[0].states["master"].any()
    master.load_state_dict(states)
    assert torch.equal(master.state_dict()["master:fc2_bias"], states["master:fc2_bias"])
    with pytest.raises(ParamError, match="unexpected .*master:fc1_bias.*pass multi_precision=True"):
        ts.optimizer.FlatUpdater(ts.optimizer.Adam(multi_precision=False), half).load_state_dict(states)


@pytest.mark.parametrize("options, expected", [({}, torch.bfloat16), ({"state_dtype": "float32"}, torch.float32),
                                               ({"multi_precision": True}, torch.float32)])
def test_state_dtypes_follow_torch_unless_float32_is_asked_for(options, expected):
    """bfloat16 parameters keep their momentum and moments in bfloat16 (torch.optim's
    choice, half the state memory), float32 with state_dtype='float32' or with MXNet's
    multi_precision (which adds the float32 master copy); a checkpoint of the other kind
    is refused with the option to pass."""
    _, exe = _bound(torch.bfloat16)
    for cls in (ts.optimizer.SGD, ts.optimizer.Adam):
        kwargs = {"momentum": 0.9} if cls is ts.optimizer.SGD else {}
        opt = cls(multi_precision=options.get("multi_precision", False), **kwargs,
                  **{k: v for k, v in options.items() if k != "multi_precision"})
        updater = ts.optimizer.FlatUpdater(opt, exe)
        states = {n: t for n, t in updater.groups[0].states.items() if n != "master"}
        assert states and all(t.dtype == expected for t in states.values())
        assert ("master" in updater.groups[0].states) == bool(options.get("multi_precision"))
        assert opt.create_state(0, torch.zeros(3, dtype=torch.bfloat16))[0 if cls is ts.optimizer.Adam else
                                                                          slice(None)].dtype == expected
        saved = updater.state_dict()
        if expected == torch.bfloat16:
            wide = {k: v.float() if k != "num_update" else v for k, v in saved.items()}
            with pytest.raises(ParamError, match="pass state_dtype='float32'"):
                updater.load_state_dict(wide)
    with pytest.raises(ParamError, match="state_dtype='float16' must be None"):
        ts.optimizer.SGD(state_dtype="float16")


def test_float16_states_are_float32_unless_param_is_asked_for():
    adam = ts.optimizer.Adam(multi_precision=False)
    assert adam.state_dtype_for(torch.float16) == torch.float32  # Adam's v of small gradients would flush
    assert adam.state_dtype_for(torch.bfloat16) == torch.bfloat16
    assert adam.state_dtype_for(torch.float64) == torch.float64
    torch_like = ts.optimizer.Adam(multi_precision=False, state_dtype="param")
    assert torch_like.state_dtype_for(torch.float16) == torch.float16
    wide = ts.optimizer.Adam(state_dtype="float32")
    assert [wide.state_dtype_for(d) for d in (torch.float16, torch.bfloat16, torch.float32)] == [torch.float32] * 3
