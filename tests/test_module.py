"""Module: fit, score, predict, parameters, optimizer states, checkpoints and callbacks."""

import io
import logging
import os
import re
import time

import numpy as np
import pytest
import torch
from networks import blobs, mlp

import tritonsym as ts
from tritonsym import BindError, FormatError, ParamError
from tritonsym import sym as S
from tritonsym.io import NDArrayIter

FEATURES, CLASSES = 6, 3


def _blobs(n, seed=0):
    return blobs(n, CLASSES, FEATURES, seed)


def _net(hidden=8):
    return mlp((hidden,), CLASSES)


def _trained(epochs=3, **fit):
    ts.random.seed(0)
    x, y = _blobs(64)
    mod = ts.mod.Module(_net())
    history = mod.fit(NDArrayIter(x, y, batch_size=16, shuffle=True), num_epoch=epochs, initializer=ts.init.Xavier(),
                      optimizer_params={"learning_rate": 0.5, "momentum": 0.5}, **fit)
    return mod, history


def test_fit_learns_and_logs(caplog):
    x, y = _blobs(40, seed=1)
    with caplog.at_level(logging.INFO, logger="tritonsym"):
        mod, history = _trained(4, eval_data=NDArrayIter(x, y, batch_size=16))
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert history[-1]["validation"]["accuracy"] >= 0.95 and history[-1]["train"]["accuracy"] >= 0.9
    assert history[-1]["samples_per_sec"] > 0
    assert "Epoch[3] Train-accuracy=" in caplog.text and "Epoch[3] Validation-accuracy=" in caplog.text
    assert f"Epoch[3] Time cost={history[3]['time']:.3f} s ({history[3]['samples_per_sec']:.0f} samples/s)" \
        in caplog.text
    assert mod.optimizer.num_update == 16 and mod.optimizer.rescale_grad == 1 / 16


def test_each_epoch_record_counts_that_epoch_alone_without_padding():
    """An epoch's record: the training metric over that epoch only (reset at its start), the
    samples it trained on without the padding, and a time within the call's."""
    x, y = _blobs(40)
    counts = []
    mod = ts.mod.Module(_net())
    tic = time.perf_counter()
    history = mod.fit(NDArrayIter(x, y, batch_size=16), num_epoch=2, optimizer_params={"learning_rate": 0.1},
                      batch_end_callback=lambda p: counts.append((p.epoch, p.nbatch, p.eval_metric.num_inst)))
    wall = time.perf_counter() - tic
    # 40 samples in batches of 16: the third holds 8 and 8 of padding
    assert counts == [(0, 0, 16), (0, 1, 32), (0, 2, 40), (1, 0, 16), (1, 1, 32), (1, 2, 40)]
    for record in history:
        assert 0 < record["time"] <= wall
        assert record["samples_per_sec"] * record["time"] == pytest.approx(40)


def test_score_and_predict_leave_out_padding():
    mod, _ = _trained()
    x, y = _blobs(10, seed=2)
    it = NDArrayIter(x, y, batch_size=4)  # 3 batches, the last padded with 2 samples from the start
    probs = mod.predict(it)
    assert probs.shape == (10, CLASSES) and probs.device.type == "cpu"
    expected_acc = float((probs.argmax(1).cpu().numpy() == y).mean())
    metric = ts.metric.Accuracy()
    assert mod.score(it, metric) == [("accuracy", expected_acc)]
    assert metric.num_inst == 10  # MXNet's score would have counted 12
    np.testing.assert_allclose(probs.sum(1).cpu().numpy(), 1.0, rtol=1e-5)
    # another batch size: a reshaped executor sharing the parameters gives the same answers
    again = mod.predict(NDArrayIter(x, y, batch_size=3))
    torch.testing.assert_close(again, probs, rtol=1e-6, atol=1e-7)
    unlabelled = mod.predict(NDArrayIter(x, batch_size=5))  # no labels, another batch size
    torch.testing.assert_close(unlabelled, probs, rtol=1e-6, atol=1e-7)
    from_array = mod.predict(x)  # an array is cut into batches of the bound size
    torch.testing.assert_close(from_array, probs, rtol=1e-6, atol=1e-7)
    per_batch = mod.predict(it, merge_batches=False)
    assert [len(b[0]) for b in per_batch] == [4, 4, 2]
    assert [len(b[0]) for b in mod.predict(x, merge_batches=False)] == [10]  # the bound batch size, 16, padded
    # num_batch: the first batches only, in score and in predict
    first = ts.metric.Accuracy()
    assert mod.score(it, first, num_batch=1) == [("accuracy", float((probs[:4].argmax(1).numpy() == y[:4]).mean()))]
    assert first.num_inst == 4
    torch.testing.assert_close(mod.predict(it, num_batch=2), probs[:8], rtol=0, atol=0)
    with pytest.raises(ParamError, match="Module: expected a data iterator .* or an array, got list"):
        mod.predict([x])

    class OwnIterator:  # not a DataIter: anything with reset() and batches will do
        def reset(self):
            it.reset()

        def __iter__(self):
            return iter(it)

    torch.testing.assert_close(mod.predict(OwnIterator()), probs, rtol=0, atol=0)


def test_score_calls_its_callbacks_and_starts_the_metric_afresh():
    x, y = _blobs(10, seed=2)
    it = NDArrayIter(x, y, batch_size=4)  # 3 batches, the last padded with 2
    unbound = ts.mod.Module(_net())
    for name in ("score", "predict", "iter_predict"):
        with pytest.raises(BindError, match=rf"Module.{name}: call bind\(\) first"):
            list(getattr(unbound, name)(it))
    unbound.bind(it.provide_data, it.provide_label)
    with pytest.raises(BindError, match=r"Module.score: call init_params\(\) first"):
        unbound.score(it)
    seen = []

    def record(kind):
        return lambda p: seen.append((kind, p.epoch, p.nbatch, p.eval_metric.num_inst))

    mod, _ = _trained(1)
    metric = ts.metric.Accuracy()
    for _ in range(2):  # the same metric twice: counted afresh each time, not summed
        mod.score(it, metric, batch_end_callback=record("batch"), score_end_callback=record("end"), epoch=7)
    assert seen == [("batch", 7, 0, 4), ("batch", 7, 1, 8), ("batch", 7, 2, 10), ("end", 7, 3, 10)] * 2
    seen.clear()  # fit hands them to score for the validation data, with the epoch
    mod.fit(NDArrayIter(x, y, batch_size=5), eval_data=it, begin_epoch=1, num_epoch=2,
            eval_batch_end_callback=record("batch"), eval_end_callback=record("end"))
    assert seen == [("batch", 1, 0, 4), ("batch", 1, 1, 8), ("batch", 1, 2, 10), ("end", 1, 3, 10)]


def test_metrics_of_a_multi_output_network_read_their_own_head():
    """A classification head and a regression head: a metric given ``output_names`` /
    ``label_names`` reads only those (MXNet's ``update_dict``), in fit and in score; a name
    the network does not have is an error, not a silently empty metric."""
    data = ts.sym.Variable("data")
    cls = ts.sym.SoftmaxOutput(ts.sym.FullyConnected(data, num_hidden=CLASSES, name="fc"), name="cls")
    reg = ts.sym.LinearRegressionOutput(ts.sym.FullyConnected(data, num_hidden=2, name="reg_fc"), name="reg")
    x, y = _blobs(20)
    z = np.random.default_rng(1).normal(size=(20, 2)).astype(np.float32)
    it = NDArrayIter({"data": x}, {"cls_label": y, "reg_label": z}, batch_size=8)
    mod = ts.mod.Module(ts.sym.Group([cls, reg]), label_names=["cls_label", "reg_label"])
    accuracy = ts.metric.Accuracy(output_names=["cls_output"], label_names=["cls_label"])
    mse = ts.metric.MSE(output_names=["reg_output"], label_names=["reg_label"])
    history = mod.fit(it, num_epoch=2, eval_metric=[accuracy, mse], optimizer_params={"learning_rate": 0.1})
    assert set(history[-1]["train"]) == {"accuracy", "mse"}
    cls_out, reg_out = mod.predict(it)
    scores = dict(mod.score(it, [accuracy, mse]))
    assert scores["accuracy"] == pytest.approx(float((cls_out.argmax(1).numpy() == y).mean()))
    assert scores["mse"] == pytest.approx(float(((reg_out.numpy() - z) ** 2).mean()), rel=1e-6)
    with pytest.raises(ParamError, match=r"mse: output names \['out'\] are not among the network's outputs "
                                         r"\['cls_output', 'reg_output'\]"):
        mod.score(it, ts.metric.MSE(output_names=["out"]))


def test_labels_are_matched_by_the_names_the_iterator_gave_them():
    """An iterator that lists b's labels before a's (a dict in that order) feeds each head
    its own labels, in training and in metrics: matched by name, not by position."""
    data = ts.sym.Variable("data")
    heads = [ts.sym.LinearRegressionOutput(ts.sym.FullyConnected(data, num_hidden=2, name=f"f{h}"), name=h)
             for h in "ab"]
    x = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    it = NDArrayIter({"data": x}, {"b_label": np.full((8, 2), -5.0), "a_label": np.ones((8, 2))}, batch_size=8)
    mod = ts.mod.Module(ts.sym.Group(heads), label_names=["a_label", "b_label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(ts.init.Zero())
    mse = [ts.metric.MSE(name=f"mse_{h}", output_names=[f"{h}_output"], label_names=[f"{h}_label"]) for h in "ab"]
    assert dict(mod.score(it, mse)) == {"mse_a": 1.0, "mse_b": 25.0}  # zero outputs against 1 and -5
    # score read it to its end; fit puts an NDArrayIter at the start of its epoch (set_epoch)
    mod.fit(it, num_epoch=1, optimizer_params={"learning_rate": 0.1})
    params, _ = mod.get_params()
    assert (params["fa_bias"] > 0).all() and (params["fb_bias"] < 0).all()  # each toward its own label


def test_an_iterator_read_to_its_end_is_no_epoch():
    """An iterator without set_epoch, read to its end before fit (by score, predict or a
    loop of the user's), gives fit no batch: an error, not an epoch passed off as trained."""
    class Plain(ts.io.DataIter):  # forwards everything but set_epoch
        def __init__(self, inner):
            self.inner, self.batch_size = inner, inner.batch_size

        def next(self):
            return self.inner.next()

        def reset(self):
            self.inner.reset()

        provide_data = property(lambda self: self.inner.provide_data)
        provide_label = property(lambda self: self.inner.provide_label)

    x, y = _blobs(16)
    it = Plain(NDArrayIter(x, y, batch_size=8))
    mod = ts.mod.Module(_net())
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params()
    list(it)
    with pytest.raises(ParamError, match="train_data gave no batch in epoch 0; it was read to its end before fit"):
        mod.fit(it, num_epoch=1)
    it.reset()
    mod.fit(it, num_epoch=1)


def test_get_set_params_fixed_params_and_init_errors():
    x, y = _blobs(32)
    ts.random.seed(1)
    mod = ts.mod.Module(_net(), fixed_param_names=["fc1_weight"])
    it = NDArrayIter(x, y, batch_size=16)
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(ts.init.Xavier())
    before, _ = mod.get_params()
    mod.fit(it, num_epoch=1, optimizer_params={"learning_rate": 0.1})
    after, _ = mod.get_params()
    assert torch.equal(before["fc1_weight"], after["fc1_weight"])  # fixed
    assert not torch.equal(before["fc2_weight"], after["fc2_weight"])
    mod.set_params(before)
    assert torch.equal(mod.get_params()[0]["fc2_weight"], before["fc2_weight"])
    with pytest.raises(ParamError, match=r"arg_params lacks \['fc2_bias'\]; pass allow_missing=True"):
        mod.set_params({k: v for k, v in before.items() if k != "fc2_bias"})
    with pytest.raises(ParamError, match=r"arg_params has \['fc9_weight'\], which the symbol does not have"):
        mod.set_params(dict(before, fc9_weight=torch.zeros(1)))
    with pytest.raises(ParamError, match=r"aux_params has \['moving_mean'\], which the symbol does not have"):
        mod.set_params(before, {"moving_mean": torch.zeros(8)})
    early = ts.mod.Module(_net())  # set before bind (as MXNet allows): checked at bind
    early.set_params(before, {"moving_mean": torch.zeros(8)})
    with pytest.raises(ParamError, match=r"aux_params has \['moving_mean'\], which the symbol does not have"):
        early.bind(it.provide_data, it.provide_label)
    with pytest.raises(ParamError, match=r"parameter 'fc1_bias' has shape \(3,\), the network expects \(8,\)"):
        mod.set_params({k: v + 1 for k, v in before.items()} | {"fc1_bias": torch.zeros(3)})
    assert all(torch.equal(mod.get_params()[0][k], v) for k, v in before.items())  # nothing half set


def test_parameter_values_a_half_dtype_cannot_hold_are_named():
    """1e6 into float16 parameters, given or drawn by an initializer, is an error (as in
    Executor.copy_params_from), not a silent inf, and sets nothing."""
    mod = ts.mod.Module(_net())
    mod.bind([ts.io.DataDesc("data", (4, FEATURES), torch.float16)], [ts.io.DataDesc("softmax_label", (4,))])
    mod.init_params(ts.init.Xavier())
    before, _ = mod.get_params()
    with pytest.raises(ParamError, match=r"Module.init_params: parameter 'fc2_weight' has 24 value\(s\) beyond the "
                                         r"range of float16 \(largest magnitude 1e\+06"):
        mod.set_params({k: v.float() + 1 for k, v in before.items()} | {"fc2_weight": torch.full((3, 8), 1e6)})
    assert all(torch.equal(mod.get_params()[0][k], v) for k, v in before.items())
    with pytest.raises(ParamError, match="parameter 'fc1_weight' has 48 value"):
        mod.init_params(ts.init.Constant(1e6), force_init=True)


def test_default_initializer_is_mxnets_uniform_001():
    mod = ts.mod.Module(_net())
    mod.bind([("data", (4, FEATURES))], [("softmax_label", (4,))])
    mod.init_params()
    args, _ = mod.get_params()
    for name in ("fc1_weight", "fc2_weight"):
        magnitude = args[name].abs()
        assert magnitude.max() <= 0.01 and magnitude.max() > 0.005, name  # drawn over all of [-0.01, 0.01]
    assert not args["fc1_bias"].any() and not args["fc2_bias"].any()


def test_errors_say_what_to_do():
    hint = r"label_names \['softmax_label'\] are not arguments.*pass label_names=\('out_label',\)"
    with pytest.raises(BindError, match=hint):
        ts.mod.Module(ts.sym.SoftmaxOutput(ts.sym.Variable("data"), name="out"))
    context = re.escape(str(ts.cpu()))  # gpu(0) where the suite runs on a GPU (conftest.py)
    with pytest.raises(BindError, match=rf"context must be .* a non-empty list of them, got \[{context}, 'gpu'\]"):
        ts.mod.Module(_net(), context=[ts.cpu(), "gpu"])
    mod = ts.mod.Module(_net())
    batch = ts.io.DataBatch([torch.zeros(4, FEATURES)], [torch.zeros(4)])
    with pytest.raises(BindError, match="Module.forward: call bind"):
        mod.forward(batch)
    with pytest.raises(BindError, match=r"Module.init_params: call bind\(\) first"):
        mod.init_params()
    with pytest.raises(BindError, match=r"Module.init_optimizer: call bind\(\) first"):
        mod.init_optimizer()
    mod.bind([("data", (4, FEATURES))], [("softmax_label", (4,))])
    with pytest.raises(BindError, match="call init_params"):
        mod.forward(batch)
    with pytest.raises(BindError, match=r"Module.init_optimizer: call init_params\(\) first"):
        mod.init_optimizer()
    mod.init_params()
    with pytest.raises(BindError, match="call init_optimizer"):
        mod.update()
    with pytest.raises(ts.kv.KVStoreError, match="not part of a distributed job.*torchrun"):
        mod.init_optimizer(kvstore="dist_sync")
    with pytest.raises(ts.kv.KVStoreError, match="'dist_async' is not supported"):
        mod.init_optimizer(kvstore="dist_async")
    with pytest.raises(ParamError, match="num_epoch=None must be an integer"):
        mod.fit(NDArrayIter(np.zeros((4, FEATURES)), np.zeros(4), batch_size=4))
    with pytest.raises(ParamError, match="num_epoch=2 must be an integer above begin_epoch=2"):  # no epoch to run
        mod.fit(NDArrayIter(np.zeros((4, FEATURES)), np.zeros(4), batch_size=4), begin_epoch=2, num_epoch=2)
    with pytest.raises(BindError, match=r"data_shapes name \['x'\], but the module's data_names are \['data'\]"):
        mod.bind([("x", (4, FEATURES))], force_rebind=True)
    infer = ts.mod.Module(_net())
    infer.bind([("data", (4, FEATURES))], for_training=False)
    infer.init_params()
    with pytest.raises(BindError, match="bound with for_training=False"):
        infer.init_optimizer()
    infer.forward(ts.io.DataBatch([torch.zeros(4, FEATURES)]))  # inference needs no labels
    assert infer.get_outputs()[0].shape == (4, CLASSES)


@pytest.mark.parametrize("dtype, multi_precision, loss_scale", [
    ("float32", None, None), pytest.param("bfloat16", True, None, marks=pytest.mark.slow),
    # from 2^14 the first steps overflow and are skipped; the scale grows back every 2 good steps
    ("float16", True, ts.optimizer.LossScaler(init_scale=2.0 ** 14, growth_interval=2))])
def test_resume_from_checkpoint_with_optimizer_states_equals_continuous_training(tmp_path, dtype, multi_precision,
                                                                                 loss_scale):
    x, y = _blobs(48)
    params = {"learning_rate": 0.2, "momentum": 0.9, "wd": 1e-3, "multi_precision": multi_precision,
              "loss_scale": loss_scale}

    def fit(mod, begin, end, **kw):
        opt = dict(params, lr_scheduler=ts.lr_scheduler.FactorScheduler(step=2, factor=0.7))
        mod.fit(NDArrayIter(x, y, batch_size=16, dtype=dtype), begin_epoch=begin, num_epoch=end,
                optimizer_params=opt, initializer=ts.init.Xavier(), **kw)

    ts.random.seed(5)
    continuous = ts.mod.Module(_net())
    fit(continuous, 0, 2)
    ts.random.seed(5)
    first = ts.mod.Module(_net())
    fit(first, 0, 1)
    prefix = str(tmp_path / "mlp")
    first.save_checkpoint(prefix, 1, save_optimizer_states=True)
    assert sorted(os.listdir(tmp_path)) == ["mlp-0001.safetensors", "mlp-0001.states.safetensors",
                                            "mlp-symbol.json"]
    resumed = ts.mod.Module.load(prefix, 1, load_optimizer_states=True)
    fit(resumed, 1, 2)
    assert resumed.optimizer.num_update == 6
    for name, value in continuous.get_params()[0].items():
        assert torch.equal(resumed.get_params()[0][name], value), name  # bit for bit
    expected = continuous._updater.state_dict()  # momentum, and float32 master copies of bfloat16 weights
    assert any(k.startswith("master:") for k in expected) == bool(multi_precision)
    assert ("loss_scale_counters" in expected and expected["loss_scale_counters"][2] > 0) == bool(loss_scale)
    for key, value in resumed._updater.state_dict().items():
        assert torch.equal(value, expected[key]), key
    # without the optimizer states the momentum restarts from zero: not the same run
    plain = ts.mod.Module.load(prefix, 1)
    fit(plain, 1, 2)
    assert not torch.equal(plain.get_params()[0]["fc1_weight"], continuous.get_params()[0]["fc1_weight"])


@pytest.mark.slow  # 4.5 s; resuming exactly is checked in the quick run without Dropout
def test_a_resumed_run_draws_the_dropout_masks_the_uninterrupted_run_draws(tmp_path):
    """The devices' random states (seed, step) are saved with the optimizer's: a run resumed
    in a fresh process (here: the generator reseeded, its step back at 0) draws the masks
    the uninterrupted run draws, and ends bit for bit where it ends."""
    x, y = _blobs(48)
    net = S.SoftmaxOutput(S.FullyConnected(S.Dropout(S.Activation(S.FullyConnected(
        S.Variable("data"), num_hidden=8, name="fc1"), act_type="relu"), p=0.5), num_hidden=CLASSES, name="fc2"),
        name="softmax")

    def fit(mod, begin, end):
        mod.fit(NDArrayIter(x, y, batch_size=16), begin_epoch=begin, num_epoch=end, initializer=ts.init.Xavier(),
                optimizer_params={"learning_rate": 0.2, "momentum": 0.9})

    ts.random.seed(5)
    continuous = ts.mod.Module(net)
    fit(continuous, 0, 2)
    ts.random.seed(5)
    first = ts.mod.Module(net)
    fit(first, 0, 1)
    prefix = str(tmp_path / "dropout")
    first.save_checkpoint(prefix, 1, save_optimizer_states=True)
    states, _ = ts.model.load_tensors(ts.model.states_path(prefix, 1), ts.model.STATES_FORMAT)
    assert states["random_state:cpu"].tolist() == [5, 3]  # the seed and 3 steps drawn
    for with_random_states in (True, False):
        ts.random.seed(5)  # as a new process starts
        resumed = ts.mod.Module.load(prefix, 1, load_optimizer_states=True)
        fit(resumed, 1, 2)
        same = all(torch.equal(resumed.get_params()[0][n], v) for n, v in continuous.get_params()[0].items())
        assert same == with_random_states
        # The states as saved before they held the random state: steps 1-3's masks again, another run.
        metadata = ts.model.read_metadata(ts.model.states_path(prefix, 1))
        ts.model.save_tensors(ts.model.states_path(prefix, 1),
                              {k: v for k, v in states.items() if not k.startswith("random_state:")}, metadata)


def test_loading_checks_names_shapes_and_dtypes(tmp_path):
    mod, _ = _trained(1)
    prefix = str(tmp_path / "m")
    mod.save_checkpoint(prefix, 3)
    args, aux = ts.model.load_params(prefix + "-0003.safetensors")
    assert sorted(args) == ["fc1_bias", "fc1_weight", "fc2_bias", "fc2_weight"] and aux == {}
    bad = dict(args, fc1_weight=torch.zeros(8, 5), fc2_bias=args["fc2_bias"].double())
    ts.model.save_params(prefix + "-0004.safetensors", bad, {})
    loaded = ts.mod.Module.load(prefix, 4)
    with pytest.raises(ParamError, match=r"fc1_weight: stored shape \(8, 5\), the network has \(8, 6\); "
                                         r"fc2_bias: stored dtype float64, the network has float32"):
        loaded.bind([("data", (16, FEATURES))], [("softmax_label", (16,))])
    ts.model.save_params(prefix + "-0005.safetensors", {k: v for k, v in args.items() if k != "fc2_bias"}, {})
    with pytest.raises(ParamError, match=r"lacks the parameters \['fc2_bias'\]"):
        ts.mod.Module.load(prefix, 5)
    ts.model.save_params(prefix + "-0006.safetensors", dict(args, extra_weight=torch.zeros(2)), {})
    with pytest.raises(FormatError, match="holds extra_weight, which the symbol does not have"):
        ts.mod.Module.load(prefix, 6)
    raw = open(prefix + "-0003.safetensors", "rb").read()
    with open(prefix + "-0007.safetensors", "wb") as f:
        f.write(raw[:len(raw) // 2])
    with pytest.raises(FormatError, match="0007.safetensors: not a readable safetensors file"):
        ts.mod.Module.load(prefix, 7)
    ts.model.save_tensors(prefix + "-0008.safetensors", args, {"format": "something-else"})
    with pytest.raises(FormatError, match="format 'something-else', expected 'tritonsym-params'"):
        ts.model.load_checkpoint(prefix, 8)


def test_callbacks(tmp_path, caplog):
    bar_output = io.StringIO()
    prefix = str(tmp_path / "cb")
    with caplog.at_level(logging.INFO, logger="tritonsym"):
        _trained(2, batch_end_callback=[ts.callback.Speedometer(16, frequent=2),
                                        ts.callback.ProgressBar(total=4, file=bar_output)],
                 epoch_end_callback=ts.callback.do_checkpoint(prefix))
    assert "Epoch[1] Batch [0-2]\tSpeed: " in caplog.text and "samples/sec\taccuracy=" in caplog.text
    assert "epoch 1:" in bar_output.getvalue() and "/4 [" in bar_output.getvalue()
    assert sorted(os.listdir(tmp_path)) == ["cb-0001.safetensors", "cb-0002.safetensors", "cb-symbol.json"]
    sym, args, _ = ts.model.load_checkpoint(prefix, 2)
    assert sym.list_arguments() == _net().list_arguments()


@pytest.mark.parametrize("dtype", [pytest.param("float16", marks=pytest.mark.slow), "bfloat16",
                                   pytest.param("float64", marks=pytest.mark.slow)])
def test_fit_in_other_dtypes(dtype):
    x, y = _blobs(32)
    ts.random.seed(2)
    mod = ts.mod.Module(_net())
    it = NDArrayIter(x, y, batch_size=16, dtype=dtype)
    mod.fit(it, num_epoch=3, optimizer="adam", optimizer_params={"learning_rate": 0.1, "multi_precision": True},
            initializer=ts.init.Xavier())
    params, _ = mod.get_params()
    assert params["fc1_weight"].dtype == ts.base.to_dtype(dtype)
    assert all(torch.isfinite(p.float()).all() for p in params.values())
    assert mod.score(it, "acc")[0][1] > 0.8


def test_backward_before_forward_is_named():
    mod = ts.mod.Module(_net())
    mod.bind([("data", (4, FEATURES))], [("softmax_label", (4,))])
    mod.init_params()
    with pytest.raises(BindError, match="Module.backward: call forward"):
        mod.backward()
    with pytest.raises(BindError, match="Module.get_outputs: call forward"):
        mod.get_outputs()


def test_train_step_is_forward_backward_then_update():
    x, y = _blobs(48)
    mods = []
    for fused in (False, True):
        ts.random.seed(2)
        mod = ts.mod.Module(_net())
        data = NDArrayIter(x, y, batch_size=16)
        mod.bind(data.provide_data, data.provide_label)
        mod.init_params(ts.init.Xavier())
        mod.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.05})
        for batch in data:
            if fused:
                mod.train_step(batch)
            else:
                mod.forward_backward(batch)
                mod.update()
        mods.append(mod)
    assert mods[0].optimizer.num_update == mods[1].optimizer.num_update == 3
    for name, value in mods[0].get_params()[0].items():
        assert torch.equal(mods[1].get_params()[0][name], value), name
    # A step that fails leaves the optimizer where it was: no update ran.
    bad = ts.io.DataBatch(data=[np.full((16, FEATURES), "x")], label=[torch.zeros(16)])
    with pytest.raises(BindError, match=r"argument 'data' is an array of <U1 \(text\); a real number type"):
        mods[1].train_step(bad)
    assert mods[1].optimizer.num_update == 3


def test_an_optimizer_instance_is_used_as_configured(caplog):
    """It needs no optimizer_params (the default learning rate is for a name only); one whose
    rescale_grad is not the batch mean is warned about."""
    mod = ts.mod.Module(_net())
    mod.bind([("data", (16, FEATURES))], [("softmax_label", (16,))])
    mod.init_params()
    with caplog.at_level(logging.WARNING, logger="tritonsym"):
        mod.init_optimizer(optimizer=ts.optimizer.SGD(learning_rate=0.1, rescale_grad=1 / 16))
        assert not caplog.records
        mod.init_optimizer(optimizer=ts.optimizer.SGD(learning_rate=0.1), force_init=True)
    assert "optimizer.rescale_grad=1, but the batch size is 16 (1/16 = 0.0625)" in caplog.text
    assert mod.optimizer.learning_rate == 0.1
    with pytest.raises(ParamError, match=r"optimizer_params \['momentum'\] cannot be applied to an optimizer instance"):
        mod.init_optimizer(optimizer=ts.optimizer.SGD(), optimizer_params={"momentum": 0.9}, force_init=True)


def test_the_default_step_follows_the_batch_mean_gradient():
    """SoftmaxOutput's gradient is summed over the batch; init_optimizer's default
    rescale_grad (1 / batch size) makes plain SGD step along the mean."""
    x, y = _blobs(16)
    mod = ts.mod.Module(_net())
    data = NDArrayIter(x, y, batch_size=16, dtype="float64")
    mod.bind(data.provide_data, data.provide_label)
    mod.init_params(ts.init.Xavier())
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.5})
    assert mod.optimizer.rescale_grad == 1 / 16
    before = mod.get_params()[0]
    mod.forward_backward(next(iter(data)))
    summed = {n: g.cpu() for n, g in mod.executor.grad_dict.items() if n in before}  # get_params: host copies
    mod.update()
    for name, value in mod.get_params()[0].items():
        torch.testing.assert_close(value, before[name] - 0.5 * summed[name] / 16, rtol=1e-13, atol=1e-15)


def _half_precision_fit(dtype, multi_precision, epochs=5):
    x, y = _blobs(64)
    ts.random.seed(0)
    mod = ts.mod.Module(_net())
    it = NDArrayIter(x, y, batch_size=16, dtype=dtype)
    mod.fit(it, num_epoch=epochs, optimizer="adam", initializer=ts.init.Xavier(),
            optimizer_params={"learning_rate": 3e-4, "multi_precision": multi_precision})
    return mod, mod.score(it, "ce")[0][1]


@pytest.mark.slow  # three trainings of 60 steps: 17 s
def test_multi_precision_follows_float32_where_bfloat16_updates_stall():
    """Adam's steps of about 3e-4 are below half of bfloat16's rounding step for most
    weights: without a master copy they are rounded away and the loss barely moves; with
    one the run follows the float32 run (its gradients are still bfloat16)."""
    _, float32 = _half_precision_fit("float32", None)
    _, stalled = _half_precision_fit("bfloat16", False)
    mod, master = _half_precision_fit("bfloat16", True)
    assert stalled - float32 > 0.05 and abs(master - float32) < 0.01, (float32, stalled, master)
    states = mod._updater.state_dict()
    assert torch.equal(states["master:fc1_weight"].to(torch.bfloat16), mod.get_params()[0]["fc1_weight"])
    assert not torch.equal(states["master:fc1_weight"], mod.get_params()[0]["fc1_weight"].float())


def test_the_half_precision_warning_points_at_the_users_line():
    mod = ts.mod.Module(_net())
    mod.bind([ts.io.DataDesc("data", (4, FEATURES), torch.bfloat16)], [("softmax_label", (4,))])
    mod.init_params()
    with pytest.warns(UserWarning, match="updated in torch.bfloat16") as caught:
        mod.init_optimizer()
    assert caught[0].filename == __file__


def test_fit_stops_when_a_parameter_turns_nan_before_checkpointing_it(tmp_path):
    x, y = _blobs(32)
    ts.random.seed(0)
    mod = ts.mod.Module(_net())

    def blow_up(param):  # what a diverging run does, at a known place: epoch 1, batch 1
        if param.epoch == 1 and param.nbatch == 1:
            mod.executor.arg_dict["fc2_weight"][0, :2] = float("inf")

    prefix = str(tmp_path / "run")
    with pytest.raises(ts.ExecutionError, match=r"Module.fit: after epoch 1 the parameters hold NaN/inf values "
                                                r"\(fc1_weight: \d+ of 48, .*fc2_weight: \d+ of 24.*\), so fit "
                                                "stops before this epoch's callbacks"):
        mod.fit(NDArrayIter(x, y, batch_size=8), num_epoch=3, initializer=ts.init.Xavier(),
                optimizer_params={"learning_rate": 0.1}, batch_end_callback=blow_up,
                epoch_end_callback=ts.callback.do_checkpoint(prefix))
    assert sorted(os.listdir(tmp_path)) == ["run-0001.safetensors", "run-symbol.json"]  # epoch 0 only
    _, args, _ = ts.model.load_checkpoint(prefix, 1)
    assert all(torch.isfinite(t).all() for t in args.values())
