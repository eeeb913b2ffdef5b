"""LayerNorm and RMSNorm (one kernels file) beyond the generic operator cases: wide rows in
small blocks, the backward's partial rows (deterministic), output_mean_var, what a training
bind keeps, float64 gradient checks at sizes no block divides, RMSNorm against torch's
rms_norm, and training in Module.fit."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from networks import blobs
from tritonsym.ops import layer_norm as kernels
from tritonsym.ops._common import run

import tritonsym as ts

S = ts.sym


@pytest.mark.parametrize(("shape", "axis"), [((7, 300), -1), ((3, 130, 5), 1)])
def test_rows_wider_than_a_block_and_more_rows_than_partials(shape, axis, monkeypatch, rng):
    monkeypatch.setattr(kernels, "BLOCK", 64)  # a row takes several steps
    monkeypatch.setattr(kernels, "PARTIALS", 3)  # and the partial rows each sum several rows
    net = S.LayerNorm(S.Variable("data"), axis=axis, name="ln")
    columns = shape[axis]
    values = {"data": rng.normal(3.0, 2.0, shape), "ln_gamma": rng.uniform(0.5, 2.0, columns),
              "ln_beta": rng.normal(size=columns)}
    exe = net.simple_bind(ts.cpu(), type_dict={n: "float64" for n in values}, **{n: v.shape for n, v in values.items()})
    head = rng.normal(size=shape)
    exe.forward(is_train=True, **values)
    exe.backward([torch.tensor(head)])
    np.testing.assert_allclose(exe.outputs[0].numpy(), o.layer_norm(values["data"], values["ln_gamma"],
                                                                    values["ln_beta"], axis), rtol=1e-12, atol=1e-12)
    for name, want in zip(("data", "ln_gamma", "ln_beta"),
                          o.layer_norm_grads(head, values["data"], values["ln_gamma"], axis)):
        np.testing.assert_allclose(exe.grad_dict[name].numpy(), want, rtol=1e-11, atol=1e-11, err_msg=name)
    first = {n: g.clone() for n, g in exe.grad_dict.items()}
    exe.forward(is_train=True, **values)
    exe.backward([torch.tensor(head)])
    assert all(torch.equal(first[n], exe.grad_dict[n]) for n in first)  # the same bits every run


def test_output_mean_var_and_what_a_training_bind_keeps(rng):
    net = S.LayerNorm(S.Variable("data"), axis=1, output_mean_var=True, name="ln")
    assert net.list_outputs() == ["ln_output", "ln_mean", "ln_std"]
    assert net.infer_shape(data=(2, 3, 4))[1] == [(2, 3, 4), (2, 1, 4), (2, 1, 4)]
    x = rng.normal(size=(2, 3, 4))
    exe = net.simple_bind(ts.cpu(), type_dict={"data": "float64"}, data=(2, 3, 4))
    exe.forward(is_train=False, data=x, ln_gamma=np.ones(3), ln_beta=np.zeros(3))
    np.testing.assert_allclose(exe.outputs[1].numpy(), x.mean(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(exe.outputs[2].numpy(), np.sqrt(x.var(1, keepdims=True) + 1e-5), rtol=1e-12)
    kept = {v.name: v for v in exe.memory.values if v.kind == "saved"}
    assert sorted(kept) == ["ln_mean", "ln_rstd"] and all(v.nbytes == 8 * 8 for v in kept.values())  # 8 rows
    half = S.LayerNorm(S.Variable("data"), name="ln").simple_bind(ts.cpu(), type_dict={"data": "float16"},
                                                                  data=(64, 512))
    kept = [v for v in half.memory.values if v.kind == "saved"]
    assert sum(v.nbytes for v in kept) == 2 * 64 * 4  # two float32 values per row: nothing grows with the columns
    inference = S.LayerNorm(S.Variable("data"), name="ln").simple_bind(ts.cpu(), grad_req="null", data=(64, 512))
    assert not any(v.kind == "saved" for v in inference.memory.values)


def test_gradient_check_and_errors(rng):
    net = S.LayerNorm(S.Variable("data"), axis=0, eps=1e-3, name="ln")
    location = {"data": rng.normal(size=(5, 3)), "ln_gamma": rng.normal(size=5), "ln_beta": rng.normal(size=5)}
    ts.test_utils.check_numeric_gradient(net, location)
    with pytest.raises(ts.ShapeError, match=r"axis=2 is out of range for data of shape \(5, 3\)"):
        S.LayerNorm(S.Variable("data"), axis=2).infer_shape(data=(5, 3))


def test_gamma_and_beta_shapes_agree_with_the_normalized_axis():
    net = S.LayerNorm(S.Variable("data"), name="ln")
    # gamma tells beta's shape and the size of the data's normalized axis (MXNet: both unknown)
    assert net.infer_shape_partial(data=(2, 0), ln_gamma=(4,))[:2] == ([(2, 4), (4,), (4,)], [(2, 4)])
    assert net.infer_shape_partial(ln_beta=(3,))[0] == [None, (3,), (3,)]
    for name, given in (("gamma", (5,)), ("beta", (3,))):
        with pytest.raises(ts.ShapeError, match=rf"ln \(LayerNorm\): {name} is \(4,\) but \({given[0]},\) is expected"):
            net.infer_shape(data=(2, 4), **{f"ln_{name}": given})


@pytest.mark.slow  # 10 s; CI runs it with the slow tests
def test_module_trains_a_network_with_layer_norm():
    x, y = blobs(64, features=5)
    net = S.LayerNorm(S.FullyConnected(S.Variable("data"), num_hidden=8, name="fc1"), name="ln1")
    net = S.SoftmaxOutput(S.FullyConnected(S.Activation(net, act_type="relu"), num_hidden=3, name="fc2"),
                          name="softmax")
    ts.random.seed(3)  # the initial weights: the same run every time
    mod = ts.mod.Module(net)
    mod.fit(ts.io.NDArrayIter(x, y, batch_size=16, shuffle=True, seed=0), num_epoch=5,
            optimizer_params={"learning_rate": 0.3}, initializer=ts.init.Xavier())
    assert mod.score(ts.io.NDArrayIter(x, y, batch_size=16), "acc")[0][1] > 0.95  # 1.0 over seeds 0-5


@pytest.mark.parametrize(("columns", "align"), [(6, 2), (12, 4), (24, 8), (1000, 8), (17, 1), (48, 16)])
def test_row_lengths_that_are_multiples_of_fewer_than_16(columns, align, rng):
    """The kernels are told what the row length is a multiple of (ALIGN, so that rows of
    1000 are read 16 bytes at a time) and compute with it written so: forward, dx, dgamma
    and dbeta as the oracle says, at each alignment; ALIGN 1 where rows are not contiguous."""
    rows = 5
    x = torch.as_tensor(rng.normal(2.0, 3.0, (rows, columns)), dtype=torch.float32)
    gamma = torch.as_tensor(rng.uniform(0.5, 2.0, columns), dtype=torch.float32)
    beta = torch.as_tensor(rng.normal(size=columns), dtype=torch.float32)
    out, mean, rstd = torch.empty_like(x), torch.empty(rows), torch.empty(rows)
    forward = kernels.plan_layer_norm_forward(x, gamma, beta, out, axis=-1, eps=1e-5, kept_mean=mean, kept_rstd=rstd)
    assert [launch.kwargs["ALIGN"] for launch in forward] == [align]
    run(forward)
    np.testing.assert_allclose(out.numpy(), o.layer_norm(x.double().numpy(), gamma.double().numpy(),
                                                         beta.double().numpy()), rtol=1e-5, atol=1e-5)
    dy = torch.as_tensor(rng.normal(size=(rows, columns)), dtype=torch.float32)
    dx, dgamma, dbeta = torch.empty_like(x), torch.empty_like(gamma), torch.empty_like(beta)
    parts = kernels.partials(tuple(x.shape), -1)
    backward = kernels.plan_layer_norm_backward(x, dy, gamma, mean, rstd, dx, dgamma, dbeta, axis=-1,
                                                partial_dgamma=torch.empty(parts, columns),
                                                partial_dbeta=torch.empty(parts, columns))
    assert [launch.kwargs["ALIGN"] for launch in backward] == [align, align]
    run(backward)
    want = o.layer_norm_grads(dy.double().numpy(), x.double().numpy(), gamma.double().numpy())
    for got, expected in zip((dx, dgamma, dbeta), want):
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-4)
    across = torch.empty(3, columns, 4)  # rows along a middle axis: not contiguous
    (launch,) = kernels.plan_layer_norm_forward(across, gamma, beta, torch.empty_like(across), axis=1, eps=1e-5)
    assert launch.kwargs["ALIGN"] == 1


# ------------------------------------------------------------------------ RMSNorm


@pytest.mark.parametrize(("shape", "axis", "grad_req"), [((7, 300), -1, "write"), ((3, 130, 5), 1, "add"),
                                                         ((4, 1), -1, "write")])
def test_rms_norm_equals_torch_in_wide_rows_and_partials(shape, axis, grad_req, monkeypatch, rng):
    """As torch.nn.functional.rms_norm (the row's mean square, never its variance: rows far
    from zero keep their offset), through rows taken in several steps and partial rows."""
    monkeypatch.setattr(kernels, "BLOCK", 64)
    monkeypatch.setattr(kernels, "PARTIALS", 3)
    net = S.RMSNorm(S.Variable("data"), axis=axis, name="rms")
    assert net.list_arguments() == ["data", "rms_gamma"]
    values = {"data": rng.normal(3.0, 2.0, shape), "rms_gamma": rng.uniform(0.5, 2.0, shape[axis])}
    exe = net.simple_bind(ts.cpu(), type_dict={"data": "float64"}, grad_req=grad_req, data=shape)
    for g in exe.grad_dict.values():
        g.fill_(0.25)
    head = rng.normal(size=shape)
    exe.forward(is_train=True, **values)
    exe.backward([torch.tensor(head)])
    leaves = {n: torch.tensor(v, requires_grad=True) for n, v in values.items()}
    want = torch.nn.functional.rms_norm(leaves["data"].movedim(axis, -1), (shape[axis],), leaves["rms_gamma"],
                                        eps=1e-5).movedim(-1, axis)
    want.backward(torch.tensor(head))
    torch.testing.assert_close(exe.outputs[0], want.detach(), rtol=1e-12, atol=1e-12)
    for name, leaf in leaves.items():
        expected = leaf.grad + (0.25 if grad_req == "add" else 0.0)
        torch.testing.assert_close(exe.grad_dict[name], expected, rtol=1e-11, atol=1e-11, msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_rms_norm_keeps_one_value_per_row_and_reads_rows_16_bytes_at_a_time(dtype, rng):
    net = S.RMSNorm(S.Variable("data"), name="rms")
    train = net.simple_bind(ts.cpu(), type_dict={"data": dtype}, data=(64, 1000))
    kept = [v for v in train.memory.values if v.kind == "saved"]
    assert [v.name for v in kept] == ["rms_rstd"] and kept[0].nbytes == 64 * 4  # one float32 per row
    assert not any(v.kind == "saved" for v in net.simple_bind(ts.cpu(), grad_req="null", data=(64, 1000))
                   .memory.values)
    x = torch.as_tensor(rng.normal(size=(64, 1000))).to(dtype)
    out, rstd = torch.empty_like(x), torch.empty(64)
    (launch,) = kernels.plan_rms_norm_forward(x, torch.ones(1000, dtype=dtype), out, axis=-1, eps=1e-5,
                                              kept_rstd=rstd)
    assert launch.kwargs["ALIGN"] == 8 and not launch.kwargs["CENTER"]
    run([launch])
    np.testing.assert_allclose(rstd.numpy(), 1 / np.sqrt((x.double().numpy() ** 2).mean(1) + 1e-5), rtol=1e-5)


def test_rms_norm_errors_and_gradient_check(rng):
    ts.test_utils.check_numeric_gradient(S.RMSNorm(S.Variable("data"), axis=0, eps=1e-3, name="rms"),
                                         {"data": rng.normal(size=(5, 3)), "rms_gamma": rng.normal(size=5)})
    with pytest.raises(ts.ShapeError, match=r"rms \(RMSNorm\): gamma is \(4,\) but \(5,\) is expected"):
        S.RMSNorm(S.Variable("data"), name="rms").infer_shape(data=(2, 4), rms_gamma=(5,))
    with pytest.raises(ts.base.ParamError, match="eps"):
        S.RMSNorm(S.Variable("data"), eps=0.0)
    x = torch.zeros(3, 4)
    with pytest.raises(kernels.KernelArgumentError, match=r"rms_norm_forward: gamma has 5 elements"):
        kernels.plan_rms_norm_forward(x, torch.ones(5), torch.empty_like(x), axis=-1, eps=1e-5)
