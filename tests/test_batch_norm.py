"""BatchNorm beyond the generic operator cases: the moving statistics (an auxiliary state a
training forward moves), inference and use_global_stats, output_mean_var, what a training
bind keeps for backward, and BatchNorm in Module.fit and its checkpoints."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from networks import blobs
from plan_checks import assert_no_live_overlap
from tolerances import DTYPE_IDS, DTYPES, assert_close, rounded, to_numpy

import tritonsym as ts
from tritonsym import ShapeError

S = ts.sym
SHAPE, CHANNELS = (6, 3, 5), 3


def _bound(dtype=torch.float64, **options):
    net = S.BatchNorm(S.Variable("data"), name="bn", **options)
    return net.simple_bind(ts.cpu(), type_dict={"data": dtype}, data=SHAPE)


def _set(exe, rng, dtype):
    values = {"data": rng.normal(1.0, 2.0, SHAPE), "bn_gamma": rng.uniform(0.5, 2.0, CHANNELS),
              "bn_beta": rng.normal(size=CHANNELS)}
    moving = {"bn_moving_mean": rng.normal(size=CHANNELS), "bn_moving_var": rng.uniform(0.5, 2.0, CHANNELS)}
    for table, given in ((exe.arg_dict, values), (exe.aux_dict, moving)):
        for name, value in given.items():
            table[name][...] = rounded(value, dtype)
    return ({n: to_numpy(exe.arg_dict[n]).copy() for n in values},
            {n: to_numpy(exe.aux_dict[n]).copy() for n in moving})  # copies: forward moves the moving ones


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_training_moves_the_moving_statistics_and_inference_uses_them(dtype, rng):
    exe = _bound(dtype, fix_gamma=False, momentum=0.8)
    used, moving = _set(exe, rng, dtype)
    x, gamma, beta = used["data"], used["bn_gamma"], used["bn_beta"]
    exe.forward(is_train=False)  # inference: the moving statistics, which it leaves alone
    want = o.batch_norm(x, gamma, beta, 1, 1e-3, False, moving["bn_moving_mean"], moving["bn_moving_var"])
    assert_close(exe.outputs[0], want, dtype, "inference forward")
    assert_close(exe.aux_dict["bn_moving_mean"], moving["bn_moving_mean"], dtype, "moving mean after inference")
    exe.forward(is_train=True)
    assert_close(exe.outputs[0], o.batch_norm(x, gamma, beta, 1, 1e-3, False), dtype, "training forward")
    axes = (0, 2)
    assert_close(exe.aux_dict["bn_moving_mean"], 0.8 * moving["bn_moving_mean"] + 0.2 * x.mean(axes), dtype,
                 "moving mean")
    assert_close(exe.aux_dict["bn_moving_var"], 0.8 * moving["bn_moving_var"] + 0.2 * x.var(axes), dtype,
                 "moving variance (the biased one, as MXNet)")


def test_use_global_stats_forward_backward_and_gradient_check(rng):
    exe = _bound(torch.float64, fix_gamma=False, use_global_stats=True)
    used, moving = _set(exe, rng, torch.float64)
    exe.forward(is_train=True)
    stats = dict(mean=moving["bn_moving_mean"], var=moving["bn_moving_var"])
    np.testing.assert_allclose(exe.outputs[0].numpy(), o.batch_norm(used["data"], used["bn_gamma"], used["bn_beta"],
                                                                    1, 1e-3, False, **stats), rtol=1e-12)
    assert np.array_equal(exe.aux_dict["bn_moving_mean"].numpy(), moving["bn_moving_mean"])  # not moved
    head = rng.normal(size=SHAPE)
    exe.backward([torch.tensor(head)])
    for name, want in zip(("data", "bn_gamma", "bn_beta"),
                          o.batch_norm_grads(head, used["data"], used["bn_gamma"], 1, 1e-3, False, **stats)):
        np.testing.assert_allclose(exe.grad_dict[name].numpy(), want, rtol=1e-12, atol=1e-12, err_msg=name)
    net = S.BatchNorm(S.Variable("data"), name="bn", fix_gamma=False, use_global_stats=True)
    ts.test_utils.check_numeric_gradient(net, used, aux_states=moving)


def test_output_mean_var_and_unused_outputs(rng):
    """The mean and reciprocal std come out (MXNet's 'var' holds the latter); used or not,
    gradients reaching them are not propagated, and the data's gradient is the plain one."""
    net = S.BatchNorm(S.Variable("data"), name="bn", fix_gamma=False, output_mean_var=True)
    assert net.list_outputs() == ["bn_output", "bn_mean", "bn_var"]
    assert net.infer_shape(data=SHAPE)[1] == [SHAPE, (CHANNELS,), (CHANNELS,)]
    x = rng.normal(size=SHAPE)
    for symbol, heads in ((net, 3), (S.MakeLoss(net[0] * S.Variable("w"), name="loss"), 0)):
        shapes = {"data": SHAPE} | ({"w": SHAPE} if heads == 0 else {})
        exe = symbol.simple_bind(ts.cpu(), type_dict={n: "float64" for n in shapes}, **shapes)
        exe.arg_dict["bn_gamma"][:] = torch.tensor([1.5, 0.5, 2.0], dtype=torch.float64)
        exe.arg_dict["bn_beta"][:] = 0.0
        w = rng.normal(size=SHAPE)
        exe.forward(is_train=True, data=x, **({"w": w} if heads == 0 else {}))
        if heads:
            np.testing.assert_allclose(exe.outputs[1].numpy(), x.mean((0, 2)), rtol=1e-12)
            np.testing.assert_allclose(exe.outputs[2].numpy(), 1 / np.sqrt(x.var((0, 2)) + 1e-3), rtol=1e-12)
            exe.backward([torch.tensor(w), torch.ones(CHANNELS, dtype=torch.float64),
                          torch.ones(CHANNELS, dtype=torch.float64)])
        else:
            exe.backward()
            assert_no_live_overlap(exe)
        want = o.batch_norm_grads(w, x, np.array([1.5, 0.5, 2.0]), 1, 1e-3, False)[0]
        np.testing.assert_allclose(exe.grad_dict["data"].numpy(), want, rtol=1e-11, atol=1e-12)


def test_a_training_bind_keeps_two_values_per_channel_an_inference_bind_none():
    training = _bound(torch.float16)
    kept = {v.name: v for v in training.memory.values if v.kind == "saved"}
    assert sorted(kept) == ["bn_invstd", "bn_mean"]
    assert all(v.nbytes == CHANNELS * 4 and v.dtype == "float32" for v in kept.values())  # float32 for half data
    assert "bn_mean" in training.debug_str()
    inference = S.BatchNorm(S.Variable("data"), name="bn").simple_bind(ts.cpu(), grad_req="null", data=SHAPE)
    assert not any(v.kind == "saved" for v in inference.memory.values)
    inference.forward(is_train=True, data=np.ones(SHAPE, np.float32), bn_gamma=np.ones(CHANNELS, np.float32),
                      bn_beta=np.zeros(CHANNELS, np.float32))  # moves the statistics, keeps nothing
    assert torch.allclose(inference.aux_dict["bn_moving_mean"], torch.full((CHANNELS,), 0.1))


def test_gamma_tells_the_channels_before_the_data_does():
    net = S.BatchNorm(S.Variable("data"), name="bn")
    args, outs, aux = net.infer_shape_partial(data=(2, 0, 5), bn_gamma=(3,))
    assert args == [(2, 3, 5), (3,), (3,)] and outs == [(2, 3, 5)] and aux == [(3,), (3,)]
    # each alone tells what it can, nothing more
    assert net.infer_shape_partial(data=(2, 0, 5)) == ([(2, 0, 5), None, None], [(2, 0, 5)], [None, None])
    assert net.infer_shape_partial(bn_gamma=(3,)) == ([None, (3,), (3,)], [None], [(3,), (3,)])


def test_errors_name_the_operator_and_the_shapes():
    with pytest.raises(ShapeError, match=r"axis=3 is out of range for data of shape \(6, 3, 5\)"):
        S.BatchNorm(S.Variable("data"), axis=3, name="bn").infer_shape(data=SHAPE)
    with pytest.raises(ShapeError, match=r"bn.*gamma is \(4,\) but \(3,\) is expected|gamma"):
        S.BatchNorm(S.Variable("data"), name="bn").infer_shape(data=SHAPE, bn_gamma=(4,))
    with pytest.raises(ts.ParamError, match="BatchNorm: momentum=1.5 must be in"):
        S.BatchNorm(S.Variable("data"), momentum=1.5)


@pytest.mark.slow  # 8 s of training (the quick run stays under 5 minutes)
def test_module_trains_with_batch_norm_and_checkpoints_the_moving_statistics(tmp_path):
    x, y = blobs(64, features=5)
    x = x * 3.0 + 10.0  # far from zero: what BatchNorm is for
    net = S.BatchNorm(S.FullyConnected(S.Variable("data"), num_hidden=8, name="fc1"), name="bn1", fix_gamma=False)
    net = S.SoftmaxOutput(S.FullyConnected(S.Activation(net, act_type="relu"), num_hidden=3, name="fc2"),
                          name="softmax")
    ts.random.seed(3)  # the initial weights: the same run every time
    mod = ts.mod.Module(net)
    assert mod._aux_names == ["bn1_moving_mean", "bn1_moving_var"]
    train = ts.io.NDArrayIter(x, y, batch_size=16, shuffle=True, seed=0)
    mod.fit(train, num_epoch=5, optimizer_params={"learning_rate": 0.3}, initializer=ts.init.Xavier())
    accuracy = mod.score(ts.io.NDArrayIter(x, y, batch_size=16), "acc")[0][1]
    assert accuracy > 0.95  # 0.98-1.0 over initial-weight seeds 0-5
    _, aux = mod.get_params()
    assert not torch.equal(aux["bn1_moving_var"].cpu(), torch.ones(8).cpu())  # moved away from their start
    mod.save_checkpoint(str(tmp_path / "bn"), 5)
    again = ts.mod.Module.load(str(tmp_path / "bn"), 5)
    again.bind([("data", (16, 5))], [("softmax_label", (16,))], for_training=False)
    assert torch.equal(again.get_params()[1]["bn1_moving_mean"], aux["bn1_moving_mean"])
    assert again.score(ts.io.NDArrayIter(x, y, batch_size=16), "acc")[0][1] == accuracy
