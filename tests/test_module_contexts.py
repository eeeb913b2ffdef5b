"""Several contexts in one Module (``context=[cpu(0), cpu(1)]``): the batch split between
them as MXNet splits it, their gradients summed into the first context's flat regions, one
update, the weights copied back. Each test compares with the same module on one context,
in float64, where only the order of a sum differs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from networks import blobs, mlp

import tritonsym as ts
from tritonsym.base import BindError
from tritonsym.module.data_parallel import split_batch

CONTEXTS = {1: [ts.cpu()], 2: [ts.cpu(0), ts.cpu(1)], 3: [ts.cpu(0), ts.cpu(1), ts.cpu(2)]}


def _start(net, batch):
    rng = np.random.default_rng(7)
    shapes = dict(zip(net.list_arguments(), net.infer_shape(data=(batch, 5))[0]))
    return {n: torch.tensor(rng.normal(0, 0.5, s)) for n, s in shapes.items() if n not in ("data", "out_label")}


def _fit(contexts, batch, optimizer, params, work_load_list=None):
    net = mlp((6,), classes=3, act="tanh", out="out")
    x, y = blobs(11, features=5)
    train = ts.io.NDArrayIter(x, y, batch_size=batch, label_name="out_label", dtype=torch.float64,
                              last_batch_handle="pad")
    mod = ts.mod.Module(net, label_names=("out_label",), context=CONTEXTS[contexts], work_load_list=work_load_list)
    mod.bind(train.provide_data, train.provide_label)
    mod.init_params(arg_params=_start(net, batch))
    history = mod.fit(train, num_epoch=3, optimizer=optimizer, optimizer_params=params)
    return mod, history


SGD = ("sgd", {"learning_rate": 0.2, "momentum": 0.9, "wd": 0.01})
ADAM = ("adam", {"learning_rate": 0.05, "clip_gradient": 0.5})
# the global norm of the gradients summed over the contexts, cut on the first context's update
ADAMW_NORM = ("adamw", {"learning_rate": 0.05, "clip_global_norm": 0.05})


@pytest.mark.parametrize(("optimizer", "params", "contexts", "batch", "loads"),
                         [pytest.param(*SGD, 2, 5, None, marks=pytest.mark.slow),  # 7 s: CI runs them
                          pytest.param(*ADAMW_NORM, 2, 5, None, marks=pytest.mark.slow),
                          pytest.param(*ADAM, 3, 4, None, marks=pytest.mark.slow),
                          pytest.param(*SGD, 2, 6, [1, 2], marks=pytest.mark.slow)])
def test_fit_on_several_contexts_equals_one(optimizer, params, contexts, batch, loads):
    one, one_history = _fit(1, batch, optimizer, params)
    many, many_history = _fit(contexts, batch, optimizer, params, loads)
    want, got = one.get_params()[0], many.get_params()[0]
    for name in want:
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
    if "clip_global_norm" in params:  # the last step's norm was cut, and is the one context's
        assert many._updater.grad_norm() > params["clip_global_norm"]
        assert many._updater.grad_norm() == pytest.approx(one._updater.grad_norm(), rel=1e-12)
    # the training metric counts every real sample once, the padding of the last batch in no context
    # (flat lists: older pytest's approx takes no nested dicts)
    assert [v for h in many_history for v in h["train"].values()] == pytest.approx(
        [v for h in one_history for v in h["train"].values()])
    x, y = blobs(11, features=5)
    batches = ts.io.NDArrayIter(x, y, batch_size=batch, label_name="out_label", dtype=torch.float64)
    np.testing.assert_allclose(many.predict(batches).numpy(), one.predict(batches).numpy(), rtol=1e-12, atol=1e-14)
    assert many.score(batches, "acc") == one.score(batches, "acc")
    # every context holds the updated weights, not only the first
    for replica in many._replicas.replicas:
        for name, value in got.items():
            assert torch.equal(replica.executor.arg_dict[name], value), (replica.context, name)


def test_outputs_and_input_gradients_merge_over_contexts():
    """Two data inputs that take a gradient, the second between parameters, so the contexts'
    flat layouts differ (their parts of the batch differ in size): the per-parameter path."""
    S = ts.sym
    net = S.SoftmaxOutput(S.FullyConnected(S.Variable("a"), num_hidden=3, name="fc0")
                          + S.FullyConnected(S.Variable("b"), num_hidden=3, name="fc1"), name="out")
    assert net.list_arguments() == ["a", "fc0_weight", "fc0_bias", "b", "fc1_weight", "fc1_bias", "out_label"]
    rng = np.random.default_rng(1)
    a, b, y = rng.normal(size=(7, 5)), rng.normal(size=(7, 4)), rng.integers(0, 3, 7).astype(np.float64)
    params = {n: torch.tensor(rng.normal(size=s)) for n, s in (("fc0_weight", (3, 5)), ("fc0_bias", (3,)),
                                                              ("fc1_weight", (3, 4)), ("fc1_bias", (3,)))}
    results = {}
    for contexts in (1, 3):
        mod = ts.mod.Module(net, data_names=("a", "b"), label_names=("out_label",), context=CONTEXTS[contexts])
        mod.bind([("a", (7, 5), torch.float64), ("b", (7, 4), torch.float64)], [("out_label", (7,), torch.float64)],
                 inputs_need_grad=True)
        mod.init_params(arg_params=params)
        mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.5, "momentum": 0.5})
        for _ in range(2):
            mod.forward_backward(ts.io.DataBatch([torch.tensor(a), torch.tensor(b)], [torch.tensor(y)]))
            mod.update()
        parts = mod.get_outputs(merge_multi_context=False)
        assert [tuple(p.shape) for p in parts[0]] == ([(7, 3)] if contexts == 1 else [(2, 3), (2, 3), (3, 3)])
        assert mod.output_shapes == [("out_output", (7, 3))]
        results[contexts] = [mod.get_outputs()[0].clone(), *(g.clone() for g in mod.get_input_grads()),
                             *mod.get_params()[0].values()]
        # the optimizer updates the parameters only, never a data input that has a gradient
        assert set(mod._updater.param_names) == set(params)
    for got, want in zip(results[3], results[1]):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-15)


def test_grad_req_add_sums_each_context_once():
    net = mlp((4,), classes=3, out="out")
    x, y = blobs(6, features=5)
    batch = ts.io.DataBatch([torch.tensor(x, dtype=torch.float64)], [torch.tensor(y, dtype=torch.float64)])
    params = {}
    for contexts in (1, 2):
        mod = ts.mod.Module(net, label_names=("out_label",), context=CONTEXTS[contexts])
        mod.bind([("data", (6, 5), torch.float64)], [("out_label", (6,), torch.float64)], grad_req="add")
        mod.init_params(arg_params=_start(net, 6))
        mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1})
        for passes in (3, 1):  # three backward passes accumulated into one update, then one more of each
            for _ in range(passes):
                mod.forward_backward(batch)
            mod.update()
        params[contexts] = mod.get_params()[0]
    for name, want in params[1].items():
        np.testing.assert_allclose(params[2][name].numpy(), want.numpy(), rtol=1e-12, atol=1e-15, err_msg=name)


def test_loss_scale_reaches_every_context():
    net = mlp((4,), classes=3, out="out")
    x, y = blobs(8, features=5)
    batch = ts.io.DataBatch([torch.tensor(x, dtype=torch.float64)], [torch.tensor(y, dtype=torch.float64)])
    params = {}
    for contexts in (1, 2):
        mod = ts.mod.Module(net, label_names=("out_label",), context=CONTEXTS[contexts])
        mod.bind([("data", (8, 5), torch.float64)], [("out_label", (8,), torch.float64)])
        mod.init_params(arg_params=_start(net, 8))
        mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "loss_scale": 1024.0})
        for _ in range(2):
            mod.train_step(batch)
        params[contexts] = mod.get_params()[0]
    for name, want in params[1].items():
        np.testing.assert_allclose(params[2][name].numpy(), want.numpy(), rtol=1e-12, atol=1e-15, err_msg=name)


def test_split_batch_rounds_as_mxnet():
    assert split_batch("t", 5, [1, 1]) == [slice(0, 2), slice(2, 5)]
    assert split_batch("t", 4, [1, 1, 1]) == [slice(0, 1), slice(1, 2), slice(2, 4)]
    assert split_batch("t", 7, [1, 2, 1]) == [slice(0, 2), slice(2, 6), slice(6, 7)]
    with pytest.raises(BindError, match=r"a batch of 2 cannot be split over 3 contexts"):
        split_batch("Module.bind", 2, [1, 1, 1])


def test_bad_work_load_and_contexts_are_named():
    net = mlp((4,), classes=3, out="out")
    with pytest.raises(BindError, match=r"work_load_list=\[1, 0\] must hold one positive number per context"):
        ts.mod.Module(net, label_names=("out_label",), context=CONTEXTS[2], work_load_list=[1, 0])
    with pytest.raises(BindError, match=r"work_load_list=\[1\] must hold one positive number per context \(2"):
        ts.mod.Module(net, label_names=("out_label",), context=CONTEXTS[2], work_load_list=[1])
    with pytest.raises(BindError, match=r"non-empty list of them, got \[\]"):
        ts.mod.Module(net, label_names=("out_label",), context=[])
    mod = ts.mod.Module(net, label_names=("out_label",), context=CONTEXTS[3])
    with pytest.raises(BindError, match=r"Module.bind: a batch of 2 cannot be split over 3 contexts"):
        mod.bind([("data", (2, 5))], [("out_label", (2,))])
