"""Whole-step CUDA graphs (``cuda_graph=True``): the same numbers as running each launch.

The GPU tests compare a captured executor and Module with uncaptured ones from the same
start, bit for bit: the graphs replay the very launches the eager step makes."""

import numpy as np
import pytest
import torch
from networks import mlp

import tritonsym as ts
from tritonsym import BindError
from tritonsym.io import NDArrayIter

S = ts.sym


def _mlp():
    return mlp((33,), 7, act="tanh", out="out")


@pytest.mark.cpu_only
def test_a_graph_needs_a_gpu_and_no_finite_check():
    with pytest.raises(BindError, match=r"cuda_graph=True needs a GPU context .* on cpu"):
        _mlp().simple_bind(ts.cpu(), cuda_graph=True, data=(4, 5))
    with pytest.raises(BindError, match="cuda_graph=True and check_finite=True cannot be combined"):
        _mlp().simple_bind(ts.cpu(), cuda_graph=True, check_finite=True, data=(4, 5))
    with pytest.raises(BindError, match="cuda_graph must be True or False"):
        _mlp().simple_bind(ts.cpu(), cuda_graph="yes", data=(4, 5))
    assert _mlp().simple_bind(ts.cpu(), data=(4, 5)).graphs is None


def _bound(cuda_graph, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    exe = _mlp().simple_bind(ts.gpu(0), cuda_graph=cuda_graph, data=(29, 17))
    exe.copy_params_from({n: rng.normal(scale=0.3, size=a.shape) for n, a in exe.arg_dict.items()
                          if n not in ("data", "out_label")})
    return exe


@pytest.mark.gpu
def test_executor_replays_forward_and_backward_bit_for_bit(rng):
    plain, graphed = _bound(False), _bound(True)
    for step in range(5):  # eager, recorded, then replayed: new data every step
        data, label = rng.normal(size=(29, 17)), rng.integers(0, 7, 29)
        for exe in (plain, graphed):
            exe.forward(is_train=True, data=data, out_label=label)
            exe.backward()
        torch.cuda.synchronize()
        assert torch.equal(plain.outputs[0], graphed.outputs[0]), step
        for name, grad in plain.grad_dict.items():
            if grad is not None:
                assert torch.equal(grad, graphed.grad_dict[name]), (step, name)
    # SoftmaxOutput computes its gradient in a training forward: that phase has its own graph.
    assert graphed.graphs.recorded() == ["backward", "forward:train"]


@pytest.mark.gpu
def test_one_graph_per_training_step_bit_for_bit(rng):
    plain, graphed = _bound(False), _bound(True)
    updaters = [ts.optimizer.FlatUpdater(ts.optimizer.Adam(learning_rate=0.01), exe) for exe in (plain, graphed)]
    for step in range(5):
        data, label = rng.normal(size=(29, 17)), rng.integers(0, 7, 29)
        for exe, updater in zip((plain, graphed), updaters):
            updater.prepare()  # Adam's bias correction changes the scalars every step
            exe.forward_backward(then=updater.launch_all, data=data, out_label=label)
        torch.cuda.synchronize()
        assert torch.equal(plain.outputs[0], graphed.outputs[0]), step
        for name, value in plain.arg_dict.items():
            assert torch.equal(value, graphed.arg_dict[name]), (step, name)
    (phase,) = graphed.graphs.recorded()
    assert phase.startswith("forward_backward+FlatUpdater.launch_all@")


def _fit_without_and_with_graphs(data, optimizer_params, **fit_options):
    """The same fit of _mlp() on the GPU, eager and with CUDA graphs: the two Modules.
    ``data`` and ``optimizer_params`` make fresh iterators and options (schedules and loss
    scalers keep state) for each run."""
    modules = []
    for cuda_graph in (False, True):
        ts.random.seed(0)
        mod = ts.mod.Module(_mlp(), label_names=("out_label",), context=ts.gpu(0), cuda_graph=cuda_graph)
        mod.fit(data(), initializer=ts.init.Xavier(), optimizer_params=optimizer_params(), **fit_options)
        modules.append(mod)
    return modules


@pytest.mark.gpu
def test_module_fit_with_graphs_equals_fit_without():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(100, 17)).astype(np.float32), rng.integers(0, 7, 100)
    eager, graphed = _fit_without_and_with_graphs(
        lambda: NDArrayIter(x, y, batch_size=16, shuffle=True, label_name="out_label"), num_epoch=4,
        optimizer_params=lambda: {"learning_rate": 0.3, "momentum": 0.9,
                                  "lr_scheduler": ts.lr_scheduler.CosineScheduler(max_update=28)})  # changes every step
    (phase,) = graphed._exec.graphs.recorded()  # fit's train_step: forward, backward and update in one graph
    assert phase.startswith("forward_backward+FlatUpdater.launch_all@"), phase
    for name, value in eager.get_params()[0].items():
        assert torch.equal(value, graphed.get_params()[0][name]), name


@pytest.mark.gpu
def test_a_loss_scaled_float16_step_is_one_graph_bit_for_bit():
    """The overflow count, the skip and the scale's update run inside the step's graph: a
    float16 run that starts at an overflowing scale skips the same steps and ends with the
    same scale and parameters as the eager run."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(96, 17)).astype(np.float32), rng.integers(0, 7, 96)
    eager, graphed = _fit_without_and_with_graphs(
        lambda: NDArrayIter(x, y, batch_size=16, label_name="out_label", dtype="float16"), num_epoch=3,
        optimizer="adam", optimizer_params=lambda: {
            "learning_rate": 0.01, "multi_precision": True,
            "loss_scale": ts.optimizer.LossScaler(init_scale=2.0 ** 24, growth_interval=4)})
    status = eager.loss_scale_status()
    assert status == graphed.loss_scale_status() and status["skipped_steps"] > 0, status
    for name, value in eager.get_params()[0].items():
        assert torch.equal(value, graphed.get_params()[0][name]), name
