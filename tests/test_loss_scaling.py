"""Loss scaling (``loss_scale=`` on an optimizer): every loss operator multiplies by the
scale, the update divides by it and skips overflowed steps, the scale follows its
schedule, checkpoints keep it (resuming bit for bit: test_module), and float16 gradients
keep entries that would flush to zero."""

import os

import numpy as np
import pytest
import torch
from networks import blobs
from tritonsym.ops import memory

import tritonsym as ts
from tritonsym import ExecutionError, ParamError
from tritonsym.io import NDArrayIter
from tritonsym.operator import OpDef, register, same_shape_everywhere, unregister

S = ts.sym
FEATURES, CLASSES = 6, 3


def _blobs(n, seed=0):
    return blobs(n, CLASSES, FEATURES, seed)


def _mlp(depth=1, hidden=8, normalization="null"):
    x = S.Variable("data")
    for i in range(depth):
        x = S.Activation(S.FullyConnected(x, name=f"fc{i}", num_hidden=hidden), act_type="relu")
    return S.SoftmaxOutput(S.FullyConnected(x, name="out", num_hidden=CLASSES), name="softmax",
                           normalization=normalization)


def _gradients(exe, scale, **inputs):
    ts.optimizer.FlatUpdater(ts.optimizer.SGD(loss_scale=scale, multi_precision=False), exe)  # sets exe.loss_scale
    exe.forward_backward(**inputs)
    return {n: g.double() / scale for n, g in exe.grad_dict.items() if g is not None}


@pytest.mark.parametrize("loss", ["SoftmaxOutput", "SoftmaxOutput out_grad", "LinearRegressionOutput",
                                  "LogisticRegressionOutput", "MakeLoss"])
def test_every_loss_operator_multiplies_its_gradient_by_the_scale(rng, loss):
    """A power-of-two scale is exact: the gradients at scale 64 are 64 times those at 1."""
    fc = S.FullyConnected(S.Variable("data"), name="fc", num_hidden=4)
    label = rng.integers(0, 4, 5).astype(np.float32) if loss.startswith("Softmax") else rng.normal(size=(5, 4))
    net = {"SoftmaxOutput": lambda: S.SoftmaxOutput(fc, name="loss"),
           "SoftmaxOutput out_grad": lambda: S.SoftmaxOutput(fc, name="loss", out_grad=True),
           "LinearRegressionOutput": lambda: S.LinearRegressionOutput(fc, name="loss"),
           "LogisticRegressionOutput": lambda: S.LogisticRegressionOutput(fc, name="loss"),
           "MakeLoss": lambda: S.MakeLoss(S.square(fc), name="loss")}[loss]()
    exe = net.simple_bind(ts.cpu(), data=(5, 3), grad_req={"data": "write", "fc_weight": "write", "fc_bias": "write"},
                          **({} if loss == "MakeLoss" else {"loss_label": label.shape}))
    inputs = dict(data=rng.normal(size=(5, 3)), fc_weight=rng.normal(size=(4, 3)), fc_bias=rng.normal(size=4))
    if loss != "MakeLoss":
        inputs["loss_label"] = label
    head = {"out_grads": [rng.normal(size=(5, 4))]} if loss.endswith("out_grad") else {}
    if head:
        with pytest.raises(ParamError, match="output 'loss_output' takes its gradient from out_grads"):
            ts.optimizer.FlatUpdater(ts.optimizer.SGD(loss_scale=64.0), _plain_head_executor())
    plain = _gradients(exe, 1.0, **inputs, **head)
    scaled = _gradients(exe, 64.0, **inputs, **head)
    for name, g in plain.items():
        assert torch.equal(scaled[name], g), name
        assert g.abs().sum() > 0, name


def _plain_head_executor():
    return S.FullyConnected(S.Variable("data"), name="loss", num_hidden=2).simple_bind(ts.cpu(), data=(3, 2))


def test_float16_gradients_that_flush_to_zero_survive_a_loss_scale(rng):
    """Three small-initialised layers and a batch-mean loss: the first layer's float32
    gradients are around 1.5e-7, among float16's smallest subnormals. Unscaled, 12-21% of
    them flush to zero and the rest lose most of their digits (42-53% error over four
    draws); scaled by 1024 none flush (0.1-2.4% error: the forward's own float16 rounding)."""
    sym = _mlp(depth=3, hidden=64, normalization="batch")
    x = rng.normal(size=(128, 64)).astype(np.float32)
    y = rng.integers(0, CLASSES, 128).astype(np.float32)
    exact = sym.simple_bind(ts.cpu(), data=(128, 64), softmax_label=(128,))
    params = {n: rng.uniform(-0.01, 0.01, size=t.shape).astype(np.float32) for n, t in exact.arg_dict.items()
              if n not in ("data", "softmax_label")}
    exact.copy_params_from(params)
    exact.forward_backward(data=x, softmax_label=y)
    reference = exact.grad_dict["fc0_weight"].double()
    half = sym.simple_bind(ts.cpu(), data=(128, 64), softmax_label=(128,), type_dict={"data": "float16"})
    half.copy_params_from(params)
    errors = {}
    for scale in (1.0, 1024.0):
        g = _gradients(half, scale, data=x, softmax_label=y)["fc0_weight"]
        flushed = ((g == 0) & (reference != 0)).double().mean().item()
        errors[scale] = (flushed, ((g - reference).norm() / reference.norm()).item())
    assert errors[1.0][0] > 0.05 and errors[1.0][1] > 0.2, errors
    assert errors[1024.0][0] == 0 and errors[1024.0][1] < 0.05, errors


def _fit(dtype, loss_scale, epochs=4, **kw):
    x, y = _blobs(64)
    ts.random.seed(0)
    mod = ts.mod.Module(_mlp())
    it = NDArrayIter(x, y, batch_size=16, dtype=dtype)
    params = {"learning_rate": 0.3, "momentum": 0.5, "loss_scale": loss_scale}
    if dtype == "float16":
        params["multi_precision"] = True
    history = mod.fit(it, num_epoch=epochs, initializer=ts.init.Xavier(), optimizer_params=params, **kw)
    return mod, history, mod.score(it, "ce")[0][1]


@pytest.mark.slow  # 8 s
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the overflow, on purpose
def test_fit_backs_off_from_an_overflowing_scale_and_follows_float32(caplog):
    """At 2^20 the float16 gradients overflow: those steps are skipped (the parameters stay
    finite), the scale halves until they fit, then grows every 3 good steps; the run ends
    near the float32 run, which lost no steps."""
    _, _, float32 = _fit("float32", None)
    scaler = ts.optimizer.LossScaler(init_scale=2.0 ** 20, growth_interval=3)
    with caplog.at_level("INFO", logger="tritonsym"):
        mod, history, half = _fit("float16", scaler)
    status = mod.loss_scale_status()
    skipped = sum(h["skipped_steps"] for h in history)
    assert skipped == status["skipped_steps"] and 1 <= skipped <= 8, history
    assert history[-1]["loss_scale"] == status["scale"] < 2.0 ** 20
    assert "Epoch[0] Loss-scale=" in caplog.text and "steps skipped: NaN/inf gradients" in caplog.text
    assert all(torch.isfinite(p).all() for p in mod.get_params()[0].values())
    assert abs(half - float32) < 0.05, (half, float32)
    assert mod.optimizer.num_update == 16  # the host counts every step; Adam's t would count applied ones


def test_states_with_a_loss_scale_need_an_optimizer_with_one(tmp_path):
    """(Resuming with a loss scale is bit exact: test_module's resume test.)"""
    x, y = _blobs(32)
    ts.random.seed(0)
    mod = ts.mod.Module(_mlp())
    params = {"learning_rate": 0.2, "multi_precision": True}
    mod.fit(NDArrayIter(x, y, batch_size=16, dtype="float16"), num_epoch=1, optimizer_params={
        **params, "loss_scale": "dynamic"})
    prefix = str(tmp_path / "mlp")
    mod.save_checkpoint(prefix, 1, save_optimizer_states=True)
    plain = ts.mod.Module.load(prefix, 1, load_optimizer_states=True)
    with pytest.raises(ParamError, match="unexpected .*'loss_scale'.*pass loss_scale= to the optimizer"):
        plain.fit(NDArrayIter(x, y, batch_size=16, dtype="float16"), begin_epoch=1, num_epoch=2,
                  optimizer_params=params)


@pytest.mark.parametrize("loss_scale, batch_size", [
    (ts.optimizer.LossScaler(init_scale=4.0, min_scale=1.0), 16), (8.0, 16),
    # one step per epoch, already at the floor: a single skipped step is enough to stop
    (ts.optimizer.LossScaler(init_scale=1.0, min_scale=1.0), 48), (8.0, 48)],
    ids=["dynamic", "static", "dynamic-one-step", "static-one-step"])
def test_fit_stops_when_gradients_are_nan_at_any_scale(tmp_path, loss_scale, batch_size):
    """NaN in the data is not an overflow: the steps are skipped, the scale reaches its floor
    (or stays put, static), and fit stops instead of training nothing silently."""
    x, y = _blobs(48)
    x[:, 2] = np.nan
    ts.random.seed(0)
    mod = ts.mod.Module(_mlp())
    prefix = str(tmp_path / "run")
    with pytest.raises(ExecutionError, match=r"in epoch 0 the gradients held NaN/inf (even at the smallest loss "
                                             r"scale \(min_scale=1\)|at every step of the epoch at the static loss "
                                             r"scale 8).*not an overflow"):
        mod.fit(NDArrayIter(x, y, batch_size=batch_size, dtype="float16"), num_epoch=2,
                initializer=ts.init.Xavier(), epoch_end_callback=ts.callback.do_checkpoint(prefix),
                optimizer_params={"learning_rate": 0.1, "multi_precision": True, "loss_scale": loss_scale})
    assert os.listdir(tmp_path) == []  # stopped before the epoch's checkpoint
    assert mod.loss_scale_status()["skipped_steps"] == 48 // batch_size


def test_reshaped_executors_share_the_loss_scale():
    """A Module batch of another size runs another executor: its losses read the same scale."""
    x, y = _blobs(40)
    ts.random.seed(0)
    mod = ts.mod.Module(_mlp())
    mod.fit(NDArrayIter(x, y, batch_size=16, last_batch_handle="discard"), num_epoch=1,
            optimizer_params={"learning_rate": 0.1, "loss_scale": 32.0})
    other = mod.executor.reshape(data=(8, FEATURES), softmax_label=(8,))
    assert other.loss_scale is mod.executor.loss_scale and other.loss_scale.item() == 32.0


def test_errors_name_the_problem():
    with pytest.raises(ParamError, match=r"SGD: loss_scale='often' must be None, 'dynamic', a number"):
        ts.optimizer.SGD(loss_scale="often")
    with pytest.raises(ParamError, match=r"Adam: loss_scale=-2.0 must be a finite number above 0"):
        ts.optimizer.Adam(loss_scale=-2.0)
    with pytest.raises(ParamError, match=r"LossScaler: backoff_factor=2.0 must be at most 1"):
        ts.optimizer.LossScaler(backoff_factor=2.0)
    with pytest.raises(ParamError, match=r"LossScaler: init_scale=1e\+30 must lie in \[min_scale, max_scale\]"):
        ts.optimizer.LossScaler(init_scale=1e30)
    with pytest.raises(ParamError, match=r"LossScaler: growth_interval=0 must be a whole number"):
        ts.optimizer.LossScaler(growth_interval=0)
    assert ts.optimizer.create("sgd", loss_scale="dynamic").loss_scaler == ts.optimizer.LossScaler()
    assert "loss_scale=LossScaler(init_scale=8.0, growth_factor=1.0" in repr(ts.optimizer.SGD(loss_scale=8))
    assert not ts.optimizer.LossScaler.static(8.0).dynamic


def test_loss_scaler_settings_at_their_bounds():
    LossScaler = ts.optimizer.LossScaler
    for name in ("init_scale", "growth_factor", "backoff_factor", "min_scale", "max_scale"):
        for value in (0.0, -1.0, float("inf"), float("nan"), True, "2"):
            with pytest.raises(ParamError, match=rf"LossScaler: {name}={value!r} must be a finite number above 0"):
                LossScaler(**{name: value})
    accepted = [dict(init_scale=2.0 ** -24), dict(init_scale=2.0 ** 24), dict(max_scale=2.0 ** 100),
                dict(growth_factor=1.0, backoff_factor=1.0), dict(growth_interval=1), dict(growth_interval=2 ** 31 - 1)]
    for settings in accepted:
        LossScaler(**settings)
    refused = [(dict(init_scale=2.0 ** 25), "init_scale=33554432.0 must lie in"),
               (dict(init_scale=2.0 ** -25), "init_scale=2.98023223876953..e-08 must lie in"),
               (dict(max_scale=2.0 ** 101), r"max_scale=2.535301200456459e\+30 must be at most 2\*\*100"),
               (dict(growth_factor=0.5), "growth_factor=0.5 must be at least 1"),
               (dict(growth_interval=2 ** 31), "growth_interval=2147483648 must be a whole number"),
               (dict(growth_interval=True), "growth_interval=True must be a whole number"),
               (dict(growth_interval=2.0), "growth_interval=2.0 must be a whole number")]
    for settings, message in refused:
        with pytest.raises(ParamError, match=f"LossScaler: {message}"):
            LossScaler(**settings)
    # A scale that only grows, or only backs off, still changes: dynamic; neither: static.
    assert LossScaler(backoff_factor=1.0).dynamic and LossScaler(growth_factor=1.0).dynamic
    assert not LossScaler(growth_factor=1.0, backoff_factor=1.0).dynamic
    with pytest.raises(ParamError, match=r"SGD: loss_scale=0 must be a finite number above 0"):
        ts.optimizer.SGD(loss_scale=0)


def test_a_custom_loss_that_ignores_the_scale_is_refused():
    """A loss written as a custom op that does not apply the scale would have its gradient
    divided by it in the update: the optimizer refuses the graph, naming the operator."""
    op = OpDef(name="HalfSquareLoss", doc="0.5 * data**2 as a loss; gradient data.", params=[],
               input_names=("data",), infer_shape=same_shape_everywhere(["data"]), forward=lambda a: [],
               backward=lambda a: memory.plan_copy(a.inputs[0], a.in_grads[0]),
               backward_needs=lambda p, e: ((0,), ()), output_aliases=lambda p: {0: 0},
               needs_head_grad=lambda p: False)
    register(op)
    try:
        net = S.HalfSquareLoss(S.FullyConnected(S.Variable("data"), name="fc", num_hidden=2), name="sq")
        exe = net.simple_bind(ts.cpu(), data=(3, 2))
        with pytest.raises(ParamError, match=r"SGD: loss_scale needs every gradient to start at a loss operator "
                                             r"that applies the scale, but sq \(HalfSquareLoss\) makes its own "
                                             r"gradient without applying the loss scale"):
            ts.optimizer.FlatUpdater(ts.optimizer.SGD(loss_scale="dynamic"), exe)
        ts.optimizer.FlatUpdater(ts.optimizer.SGD(), exe)  # without a scale it trains as before
    finally:
        unregister("HalfSquareLoss")


def test_a_saved_scale_that_is_not_a_positive_number_is_refused():
    exe = _mlp().simple_bind(ts.cpu(), data=(4, FEATURES), softmax_label=(4,))
    updater = ts.optimizer.FlatUpdater(ts.optimizer.SGD(loss_scale="dynamic"), exe)
    states = updater.state_dict()
    states["loss_scale"] = torch.tensor([float("nan")])
    with pytest.raises(ParamError, match="optimizer state 'loss_scale': nan is not a positive finite scale"):
        updater.load_state_dict(states)
    assert exe.loss_scale.item() == 2.0 ** 16  # nothing was loaded
