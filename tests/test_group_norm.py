"""GroupNorm and InstanceNorm beyond their generic operator cases: against torch's
(an implementation independent of ours; MXNet's one gamma per group is torch's per-channel
gamma repeated over each group's channels), rows longer than one step of the kernels,
output_mean_var, gradients added under grad_req='add', the same bits every run, what a
training bind keeps, refusals that name the operator and the values, and JSON."""

from __future__ import annotations

import json

import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, assert_close
from tritonsym.ops import group_norm as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _bind(op, shape, dtype=torch.float64, grad_req="write", **params):
    net = getattr(S, op)(S.Variable("data"), name="n", **params)
    return net.simple_bind(ts.cpu(), data=shape, grad_req=grad_req, type_dict={"data": dtype})


def _torch(op, x, gamma, beta, groups, eps):
    if op == "InstanceNorm" and x[0, 0].numel() > 1:  # torch refuses one position a channel; group_norm takes it
        return torch.nn.functional.instance_norm(x, weight=gamma, bias=beta, eps=eps)
    per_channel = x.shape[1] // groups
    return torch.nn.functional.group_norm(x, groups, gamma.repeat_interleave(per_channel),
                                          beta.repeat_interleave(per_channel), eps)


@pytest.mark.parametrize("op, shape, params", [
    ("GroupNorm", (2, 6, 4, 5), dict(num_groups=3)),
    ("GroupNorm", (1, 3, 40, 50), dict(num_groups=1, eps=1e-3)),  # a row of 6000: two steps of a row
    ("GroupNorm", (3, 8, 9), dict(num_groups=8)),
    ("InstanceNorm", (2, 3, 70, 65), dict()),  # rows of 4550
    ("InstanceNorm", (4, 5, 1, 1), dict(eps=0.5)),  # rows of one element: beta
], ids=lambda v: str(v))
def test_equals_torch(op, shape, params, rng):
    groups = params.get("num_groups", shape[1])
    eps = params.get("eps", 1e-5 if op == "GroupNorm" else 1e-3)
    exe = _bind(op, shape, **params)
    x, g, b = (torch.from_numpy(rng.normal(size=exe.arg_dict[n].shape)) for n in ("data", "n_gamma", "n_beta"))
    x = x * 3 + 5  # rows far from zero: the variance of deviations, not of sums of squares
    xr, gr, br = (t.clone().requires_grad_() for t in (x, g, b))
    want = _torch(op, xr, gr, br, groups, eps)
    head = torch.from_numpy(rng.normal(size=want.shape))
    want.backward(head)
    exe.forward(is_train=True, data=x, n_gamma=g, n_beta=b)
    exe.backward(out_grads=head)
    assert_close(exe.outputs[0], want.detach().numpy(), torch.float64, "forward")
    for name, t in (("data", xr), ("n_gamma", gr), ("n_beta", br)):
        assert_close(exe.grad_dict[name], t.grad.numpy(), torch.float64, f"gradient of {name}")


def test_output_mean_var_gives_each_groups_mean_and_std(rng):
    exe = _bind("GroupNorm", (3, 4, 5, 2), num_groups=2, eps=0.25, output_mean_var=True)
    assert [tuple(o.shape) for o in exe.outputs] == [(3, 4, 5, 2), (3, 2), (3, 2)]
    x = torch.from_numpy(rng.normal(size=(3, 4, 5, 2)))
    exe.forward(data=x, n_gamma=torch.ones(2, dtype=torch.float64), n_beta=torch.zeros(2, dtype=torch.float64))
    rows = x.reshape(3, 2, -1)
    assert_close(exe.outputs[1], rows.mean(-1).numpy(), torch.float64, "mean")
    assert_close(exe.outputs[2], (rows.var(-1, unbiased=False) + 0.25).sqrt().numpy(), torch.float64, "std")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_grad_req_add_adds_every_gradient(dtype, rng):
    exe = _bind("GroupNorm", (2, 6, 3, 4), dtype=dtype, grad_req="add", num_groups=3)
    for name, array in exe.arg_dict.items():
        array[...] = torch.from_numpy(rng.normal(size=array.shape))
    head = torch.from_numpy(rng.normal(size=exe.outputs[0].shape)).to(dtype)
    exe.forward(is_train=True)
    exe.backward(out_grads=head)
    once = {n: g.clone() for n, g in exe.grad_dict.items()}
    exe.forward(is_train=True)
    exe.backward(out_grads=head)
    for name, grad in exe.grad_dict.items():
        assert_close(grad, (2 * once[name].double()).numpy(), dtype, f"twice the gradient of {name}")


def test_gamma_and_beta_gradients_have_the_same_bits_every_run(rng):
    x, dy = (torch.from_numpy(rng.normal(size=(64, 8, 6, 6))).float() for _ in range(2))
    g, b = torch.ones(4), torch.zeros(4)
    mean, rstd, row_dgamma, row_dbeta = (torch.empty(64 * 4) for _ in range(4))
    run(kernels.plan_group_norm_forward(x, g, b, torch.empty_like(x), groups=4, eps=1e-5, kept_mean=mean,
                                        kept_rstd=rstd))
    grads = []
    for _ in range(2):
        dg, db = torch.empty(4), torch.empty(4)
        run(kernels.plan_group_norm_backward(x, dy, g, mean, rstd, None, dg, db, groups=4, row_dgamma=row_dgamma,
                                             row_dbeta=row_dbeta))
        grads.append(torch.cat([dg, db]))
    assert torch.equal(grads[0], grads[1])


def test_a_training_bind_keeps_two_values_per_sample_and_group():
    exe = _bind("GroupNorm", (8, 32, 16, 16), dtype=torch.float32, num_groups=4)
    kept = sorted((v.name, v.shape, v.dtype) for v in exe.memory.values if v.kind == "saved")
    assert [shape for _, shape, _ in kept] == [(32,), (32,)] and all(d == "float32" for *_, d in kept), kept
    inference = S.GroupNorm(S.Variable("data"), num_groups=4, name="n").simple_bind(ts.cpu(), data=(8, 32, 16, 16),
                                                                                    grad_req="null")
    assert not [v for v in inference.memory.values if v.kind == "saved"]


@pytest.mark.parametrize("op, params, shape, words", [
    ("GroupNorm", dict(num_groups=3), (2, 4, 5), ["4 channels", "num_groups=3"]),
    ("GroupNorm", dict(num_groups=2), (2, 4), ["(2, 4)", "at least 3"]),
    ("InstanceNorm", dict(), (2, 4), ["(2, 4)", "at least 3"]),
])
def test_bad_shapes_are_refused_naming_the_values(op, params, shape, words):
    net = getattr(S, op)(S.Variable("data"), name="n", **params)
    with pytest.raises(ShapeError) as error:
        net.infer_shape(data=shape)
    assert op in str(error.value) and all(w in str(error.value) for w in words), str(error.value)


def test_parameters_and_kernel_arguments_are_checked():
    with pytest.raises(ParamError, match="num_groups=0"):
        S.GroupNorm(S.Variable("data"), num_groups=0)
    with pytest.raises(ParamError, match="eps=0"):
        S.InstanceNorm(S.Variable("data"), eps=0)
    with pytest.raises(ShapeError, match="gamma"):
        S.GroupNorm(S.Variable("data"), num_groups=2, name="n").infer_shape(data=(2, 4, 3), n_gamma=(4,))
    with pytest.raises(KernelArgumentError, match="groups=3"):
        kernels.plan_group_norm_forward(torch.zeros(2, 4, 3), torch.ones(3), torch.zeros(3), torch.zeros(2, 4, 3),
                                        groups=3, eps=1e-5)


def test_json_round_trip():
    net = S.GroupNorm(S.Variable("data"), num_groups=4, eps=1e-6, name="gn")
    node = next(n for n in json.loads(net.tojson())["nodes"] if n["op"] == "GroupNorm")
    assert node["params"] == {"num_groups": "4", "eps": "1e-06"}
    again = S.load_json(S.InstanceNorm(net, name="inorm").tojson())
    assert again.list_arguments() == ["data", "gn_gamma", "gn_beta", "inorm_gamma", "inorm_beta"]
    assert again.infer_shape(data=(2, 8, 3))[0][1:] == [(4,), (4,), (8,), (8,)]
