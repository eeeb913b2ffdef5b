"""Reductions: every axis set (neighbours or not, kept or excluded) against numpy in every
dtype, loops over the reduced elements, MXNet's ties, NaN, the norm at zero, prod's gradient
at zeros against torch's, nansum and nanprod, and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close, rounded, to_numpy
from tritonsym.ops import reduce as kernels

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym
ORACLES = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min,
           "norm1": lambda x, axis: np.abs(x).sum(axis), "norm2": lambda x, axis: np.sqrt((x * x).sum(axis)),
           "prod": np.prod, "nansum": np.nansum, "nanprod": np.nanprod}


@pytest.mark.parametrize("axes", [(0,), (1,), (2,), (0, 2), (1, 2), (0, 1, 2)], ids=str)
@pytest.mark.parametrize("kind", kernels.KINDS)
@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)
def test_forward_against_numpy_with_small_tiles(dtype, kind, axes, rng, monkeypatch):
    monkeypatch.setattr(kernels, "TILE", 16)  # several programs and several loop steps each
    x = rounded(rng.normal(size=(5, 6, 7)), dtype)
    got = kernels.reduce(x, kind, axes)
    assert_close(got, ORACLES[kind](to_numpy(x).astype(np.float64), axis=axes), dtype, f"{kind} over {axes}",
                 scale=4.0)


def test_every_tied_maximum_gets_the_gradient_as_in_mxnet():
    exe = S.max(S.Variable("x"), axis=1).simple_bind(ts.cpu(), x=(2, 3), type_dict={"x": "float64"})
    exe.forward(is_train=True, x=np.array([[1.0, 3.0, 3.0], [0.0, 0.0, 0.0]]))
    exe.backward([torch.tensor([1.0, 2.0], dtype=torch.float64)])
    np.testing.assert_array_equal(exe.grad_dict["x"].numpy(), [[0, 1, 1], [2, 2, 2]])


def test_nan_makes_max_and_min_nan_and_takes_their_gradient():
    x = torch.tensor([[1.0, float("nan"), 3.0], [1.0, 2.0, 3.0]])
    for kind in ("max", "min"):
        out = kernels.reduce(x, kind, (1,))
        assert out[0].isnan() and not out[1].isnan()
        grad = torch.zeros_like(x)
        kernels.plan_reduce_backward(kind, (1,), torch.ones(2), grad, x, out)[0]()
        assert grad[0].tolist() == [0.0, 1.0, 0.0]


def test_the_norm_of_zeros_has_a_zero_gradient():
    """MXNet 1.9.1 gives NaN (0/0) here; 0 is the subgradient torch gives too."""
    exe = S.norm(S.Variable("x"), axis=1).simple_bind(ts.cpu(), x=(2, 3), type_dict={"x": "float64"})
    exe.forward(is_train=True, x=np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]))
    exe.backward([torch.ones(2, dtype=torch.float64)])
    np.testing.assert_allclose(exe.grad_dict["x"].numpy(), [[0.6, 0.8, 0.0], [0.0, 0.0, 0.0]])


def test_shapes_as_in_mxnet():
    x = S.Variable("x")
    shape = (2, 3, 4)
    assert S.sum(x).infer_shape(x=shape)[1] == [(1,)]
    assert S.sum(x, axis=()).infer_shape(x=shape)[1] == [(1,)]
    assert S.mean(x, axis=1, exclude=True).infer_shape(x=shape)[1] == [(3,)]
    assert S.max(x, axis=-1, keepdims=True).infer_shape(x=shape)[1] == [(2, 3, 1)]
    assert S.norm(x, keepdims=True).infer_shape(x=shape)[1] == [(1, 1, 1)]
    assert x.sum(axis=(0, 2)).infer_shape(x=shape)[1] == [(3,)]  # fluent
    with pytest.raises(ShapeError, match=r"axis=\(3,\) has 3, out of range for data of 3 dimension"):
        S.sum(x, axis=3).infer_shape(x=shape)
    with pytest.raises(ShapeError, match="names an axis twice"):
        S.min(x, axis=(1, -2)).infer_shape(x=shape)
    with pytest.raises(ts.base.ParamError, match="ord=3 is not one of 1, 2"):
        S.norm(x, ord=3)


def test_empty_reductions():
    assert kernels.reduce(torch.zeros(2, 0), "sum", (1,)).tolist() == [0.0, 0.0]
    assert kernels.reduce(torch.zeros(2, 0), "mean", (1,)).isnan().all()
    with pytest.raises(kernels.KernelArgumentError, match="the max of no elements"):
        kernels.reduce(torch.zeros(2, 0), "max", (1,))


def test_mean_gradient_accumulates(rng):
    exe = S.mean(S.Variable("x"), axis=(0, 2)).simple_bind(ts.cpu(), x=(2, 3, 4), type_dict={"x": "float64"},
                                                           grad_req="add")
    exe.grad_dict["x"][...] = 1.0
    exe.forward(is_train=True, x=rng.normal(size=(2, 3, 4)))
    exe.backward([torch.tensor([8.0, 16.0, 24.0], dtype=torch.float64)])
    np.testing.assert_allclose(exe.grad_dict["x"].numpy(), 1 + np.array([1.0, 2.0, 3.0])[None, :, None]
                               * np.ones((2, 3, 4)))


@pytest.mark.parametrize("op", ["prod", "nanprod"])
def test_the_product_gradient_at_zeros_is_the_product_of_the_others(op, monkeypatch):
    """Rows of no zero, one, two; NaN (prod: all NaN; nanprod: counted as 1, gradient 0),
    across several programs and loop steps, against torch's prod (nanprod: of NaN made 1).
    A NaN element's own gradient is NaN (torch's is the product of the others, 0 beside a zero)."""
    monkeypatch.setattr(kernels, "TILE", 4)
    x = torch.tensor([[1.5, -2.0, 3.0, 0.5, 2.0], [1.5, 0.0, 3.0, -0.5, 2.0], [0.0, 4.0, 0.0, 1.0, 2.0],
                      [2.0, float("nan"), 0.0, 1.0, 3.0], [-0.0, 1.0, 1.0, 1.0, float("nan")]], dtype=torch.float64)
    exe = getattr(S, op)(S.Variable("x"), axis=1).simple_bind(ts.cpu(), x=(5, 5), type_dict={"x": torch.float64})
    head = torch.tensor([1.0, 2.0, -1.0, 0.5, 3.0], dtype=torch.float64)
    exe.forward(is_train=True, x=x)
    exe.backward(out_grads=head)
    xr = (x if op == "prod" else torch.nan_to_num(x, nan=1.0)).clone().requires_grad_()
    want = xr.prod(1)
    want.backward(head)
    want_grad = torch.where(torch.isnan(x), float("nan") if op == "prod" else 0.0, xr.grad)
    torch.testing.assert_close(exe.outputs[0], want.detach(), equal_nan=True)
    torch.testing.assert_close(exe.grad_dict["x"], want_grad, equal_nan=True)


def test_nansum_counts_nan_as_zero_and_gives_it_no_gradient():
    exe = S.nansum(S.Variable("x"), axis=0).simple_bind(ts.cpu(), x=(3, 2), type_dict={"x": torch.float64})
    exe.forward(is_train=True, x=torch.tensor([[1.0, float("nan")], [float("nan"), float("nan")], [2.0, 5.0]]))
    exe.backward(out_grads=torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert exe.outputs[0].tolist() == [3.0, 5.0]
    assert exe.grad_dict["x"].tolist() == [[1.0, 0.0], [0.0, 0.0], [1.0, 2.0]]


def test_prod_backward_plans_one_cofactor_per_output():
    exe = S.prod(S.Variable("x"), axis=(0, 2)).simple_bind(ts.cpu(), x=(4, 3, 5), type_dict={"x": torch.float32})
    temps = [(v.shape, v.dtype) for step in exe._program.backward_steps for v in step.temps.values()]
    assert temps == [((1, 3, 1), torch.float32)], temps
