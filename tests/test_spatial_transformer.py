"""GridGenerator, BilinearSampler and SpatialTransformer beyond their generic operator
cases: against torch's ``affine_grid`` and ``grid_sample`` (an implementation independent
of ours) in every dtype, the identity map giving the image back, the same bits every run
from the data gradient's sums where many outputs read one pixel (and more channels than a
program takes), grad_req='add', NaN and far positions, and refusals that name the operator
and the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close
from tritonsym.ops import bilinear_sampler as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _sampler():
    return S.BilinearSampler(S.Variable("data"), S.Variable("grid"))


def _transformer(target_shape):
    return S.SpatialTransformer(S.Variable("data"), S.Variable("loc"), target_shape=target_shape,
                                transform_type="affine", sampler_type="bilinear")


def _run(net, values: dict, head, dtype, grad_req="write"):
    exe = net.simple_bind(ts.cpu(), grad_req=grad_req, type_dict={k: dtype for k in values},
                          **{k: tuple(v.shape) for k, v in values.items()})
    exe.forward(is_train=True, **values)
    exe.backward(out_grads=head)
    return exe


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)  # float64 and float16 under -m slow
def test_spatial_transformer_equals_torch_affine_grid_and_grid_sample(dtype, rng):
    data = torch.from_numpy(rng.normal(size=(2, 3, 6, 5))).to(dtype)
    loc = torch.from_numpy(np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]) + rng.normal(scale=0.4, size=(2, 6))).to(dtype)
    data_ref, loc_ref = data.double().requires_grad_(), loc.double().requires_grad_()
    grid = torch.nn.functional.affine_grid(loc_ref.view(2, 2, 3), (2, 3, 4, 7), align_corners=True)
    out = torch.nn.functional.grid_sample(data_ref, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    head = torch.from_numpy(rng.normal(size=out.shape)).to(dtype)
    out.backward(head.double())
    exe = _run(_transformer((4, 7)), {"data": data, "loc": loc}, head, dtype)
    assert_close(exe.outputs[0], out.detach().numpy(), dtype, "SpatialTransformer")
    assert_close(exe.grad_dict["data"], data_ref.grad.numpy(), dtype, "SpatialTransformer's data gradient")
    assert_close(exe.grad_dict["loc"], loc_ref.grad.numpy(), dtype, "SpatialTransformer's loc gradient")


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)
def test_generator_and_sampler_equal_torch(dtype, rng):
    theta = torch.from_numpy(rng.normal(size=(2, 6))).to(dtype)
    data = torch.from_numpy(rng.normal(size=(2, 4, 5, 3))).to(dtype)
    # the grid between the two operators is an array of the dtype: the reference rounds it,
    # and its gradient, there too (a rounded position may fall on the other side of a pixel)
    theta_ref, data_ref = theta.double().requires_grad_(), data.double().requires_grad_()
    grid = torch.nn.functional.affine_grid(theta_ref.view(2, 2, 3), (2, 4, 3, 6), align_corners=True)
    grid_seen = grid.detach().to(dtype).double().requires_grad_()
    out = torch.nn.functional.grid_sample(data_ref, grid_seen, mode="bilinear", padding_mode="zeros",
                                          align_corners=True)
    head = torch.from_numpy(rng.normal(size=out.shape)).to(dtype)
    out.backward(head.double())
    grid.backward(grid_seen.grad.to(dtype).double())
    net = S.BilinearSampler(S.Variable("data"),
                            S.GridGenerator(S.Variable("theta"), transform_type="affine", target_shape=(3, 6)))
    exe = _run(net, {"data": data, "theta": theta}, head, dtype)
    assert_close(exe.outputs[0], out.detach().numpy(), dtype, "BilinearSampler(GridGenerator)")
    assert_close(exe.grad_dict["data"], data_ref.grad.numpy(), dtype, "the data's gradient")
    assert_close(exe.grad_dict["theta"], theta_ref.grad.numpy(), dtype, "theta's gradient")


def test_the_identity_map_gives_the_image_back(rng):
    data = rng.normal(size=(2, 3, 5, 4)).astype(np.float32)
    identity = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), (2, 1))
    exe = _transformer((5, 4)).simple_bind(ts.cpu(), data=data.shape, loc=identity.shape, grad_req="null")
    exe.forward(is_train=False, data=torch.from_numpy(data), loc=torch.from_numpy(identity))
    np.testing.assert_allclose(exe.outputs[0].numpy(), data, rtol=0, atol=1e-6)


QUICK_FLOAT32 = [torch.float32, pytest.param(torch.bfloat16, marks=pytest.mark.slow)]  # the interpreter walks slowly


@pytest.mark.parametrize("dtype", QUICK_FLOAT32)
def test_many_outputs_reading_one_pixel_sum_the_same_bits_every_run(dtype, rng, monkeypatch):
    # 20 channels in programs of 16 (of at least a warp's 32 on a GPU): two programs of
    # channels; every output reads around one position, so each of its four pixels sums 24
    # shares (float32 scratch for bfloat16)
    monkeypatch.setattr(kernels, "WARP", 4)
    data = torch.from_numpy(rng.normal(size=(1, 20, 3, 4))).to(dtype)
    grid = torch.from_numpy(np.broadcast_to(np.array([0.21, -0.37])[None, :, None, None], (1, 2, 4, 6)).copy()
                            ).to(dtype)
    head = torch.from_numpy(rng.normal(size=(1, 20, 4, 6))).to(dtype)
    exe = _run(_sampler(), {"data": data, "grid": grid}, head, dtype)
    first = exe.grad_dict["data"].clone()
    want_data, want_grid = o.bilinear_sample_grads(head.double().numpy(), data.double().numpy(),
                                                   grid.double().numpy())
    assert_close(first, want_data, dtype, "the data's gradient")
    assert_close(exe.grad_dict["grid"], want_grid, dtype, "the grid's gradient")
    exe.backward(out_grads=head)
    assert torch.equal(exe.grad_dict["data"], first)


@pytest.mark.parametrize("dtype", QUICK_FLOAT32)
def test_a_large_output_sums_its_parts_in_order(dtype, rng, monkeypatch):
    # parts of 16 positions (of kernels.SEGMENT's 256 on a GPU): 48 positions make three, each
    # summing into its own copy of the gradient, added in order; all zooming into one corner
    monkeypatch.setattr(kernels, "SEGMENT", 16)
    assert kernels.data_grad_parts(48) == 3
    data = torch.from_numpy(rng.normal(size=(2, 3, 4, 5))).to(dtype)
    grid = torch.from_numpy(rng.uniform(-1.1, -0.2, size=(2, 2, 6, 8))).to(dtype)
    head = torch.from_numpy(rng.normal(size=(2, 3, 6, 8))).to(dtype)
    exe = _run(_sampler(), {"data": data, "grid": grid}, head, dtype, grad_req="add")
    assert exe.grad_dict["data"].shape == data.shape
    want_data, _ = o.bilinear_sample_grads(head.double().numpy(), data.double().numpy(), grid.double().numpy())
    assert_close(exe.grad_dict["data"], want_data, dtype, "the data's gradient")
    first = exe.grad_dict["data"].clone()
    exe.backward(out_grads=head)
    if dtype == torch.float32:  # the same sum again, added to itself: exactly twice (the same bits)
        assert torch.equal(exe.grad_dict["data"], 2 * first)
    assert_close(exe.grad_dict["data"], 2 * want_data, dtype, "the data's gradient, added")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])  # bfloat16: the scratch path adds too
def test_grad_req_add_accumulates(dtype, rng):
    values = {"data": torch.from_numpy(rng.normal(size=(2, 3, 5, 4))).to(dtype),
              "loc": torch.from_numpy(np.array([1.0, 0.1, 0.0, -0.1, 0.9, 0.1]) + rng.normal(scale=0.2, size=(2, 6))
                                      ).to(dtype)}
    head = torch.from_numpy(rng.normal(size=(2, 3, 3, 6))).to(dtype)
    once = _run(_transformer((3, 6)), values, head, dtype)
    exe = _run(_transformer((3, 6)), values, head, dtype, grad_req="add")
    exe.forward(is_train=True, **values)
    exe.backward(out_grads=head)
    for name in ("data", "loc"):
        assert_close(exe.grad_dict[name], 2 * once.grad_dict[name].double().numpy(), dtype, f"{name}'s gradient, added")


def test_nan_positions_and_pixels_give_nan_and_far_positions_zero(rng):
    data = rng.normal(size=(1, 2, 4, 5))
    data[0, 1, 2, 3] = np.nan
    grid = rng.uniform(-0.9, 0.9, size=(1, 2, 3, 4))
    grid[0, 0, 0, 0] = np.nan  # the output's position (0, 0): NaN in every channel
    grid[:, :, 2, 3] = 1e30  # far outside: 0, no wrapped index
    grid[0, :, 1, 1] = (3 * 2 / 4 - 1, 2 * 2 / 3 - 1)  # exactly on the NaN pixel (2, 3) of channel 1
    exe = S.BilinearSampler(S.Variable("data"), S.Variable("grid")).simple_bind(
        ts.cpu(), data=data.shape, grid=grid.shape, type_dict={"data": "float64", "grid": "float64"})
    exe.forward(is_train=False, data=torch.from_numpy(data), grid=torch.from_numpy(grid))
    out = exe.outputs[0].numpy()
    want = o.bilinear_sample(data, grid)
    assert np.isnan(out[0, :, 0, 0]).all()
    assert np.isnan(out[0, 1, 1, 1]) and not np.isnan(out[0, 0, 1, 1])
    assert (out[0, :, 2, 3] == 0).all()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(want) | np.isnan(grid[:, :1]).repeat(2, axis=1))
    finite = ~np.isnan(out)
    np.testing.assert_allclose(out[finite], want[finite], rtol=1e-12, atol=1e-12)


def test_refusals_name_the_operator_and_the_values():
    with pytest.raises(ShapeError, match=r"GridGenerator.*\(1, 4\).*at least 2"):
        S.GridGenerator(S.Variable("data"), transform_type="affine", target_shape=(1, 4)).infer_shape(data=(2, 6))
    with pytest.raises(ShapeError, match=r"SpatialTransformer.*target_shape \(0, 0\)"):
        _transformer((0, 0)).infer_shape(data=(2, 3, 4, 4), loc=(2, 6))
    with pytest.raises(ShapeError, match=r"GridGenerator.*size \(1, 5\).*at least 2"):
        S.GridGenerator(S.Variable("data"), transform_type="warp").infer_shape(data=(2, 2, 1, 5))
    with pytest.raises(ShapeError, match=r"BilinearSampler.*grid of shape \(2, 3, 3, 6\)"):
        _sampler().infer_shape(data=(2, 3, 4, 5), grid=(2, 3, 3, 6))
    with pytest.raises(ShapeError, match=r"BilinearSampler.*batch size: 2 and 3"):
        _sampler().infer_shape(data=(2, 3, 4, 5), grid=(3, 2, 3, 6))
    with pytest.raises(ShapeError, match=r"SpatialTransformer.*loc of shape \(2, 5\)"):
        _transformer((3, 3)).infer_shape(data=(2, 3, 4, 4), loc=(2, 5))
    with pytest.raises(ParamError, match=r"SpatialTransformer: transform_type='warp' is not one of 'affine'"):
        S.SpatialTransformer(S.Variable("data"), S.Variable("loc"), target_shape=(3, 3), transform_type="warp",
                             sampler_type="bilinear")
    with pytest.raises(KernelArgumentError, match=r"bilinear_sample_data_backward: torch.bfloat16 data \(1, 3, 4, 4\) "
                                                  r"sampled at 4 positions sums in contiguous torch.float32 scratch "
                                                  r"of shape \(1, 1, 3, 4, 4\), got none"):
        grid, dout = torch.zeros(1, 2, 2, 2, dtype=torch.bfloat16), torch.zeros(1, 3, 2, 2, dtype=torch.bfloat16)
        run(kernels.plan_bilinear_sample_data_backward(grid, dout, torch.zeros(1, 3, 4, 4, dtype=torch.bfloat16)))


def test_infers_shapes_both_ways():
    args, outs, _ = _sampler().infer_shape_partial(grid=(2, 2, 3, 6))
    assert args == [(2, 0, 0, 0), (2, 2, 3, 6)] and outs == [(2, 0, 3, 6)]
    args, outs, _ = _transformer((7, 9)).infer_shape(data=(4, 3, 5, 6))
    assert args == [(4, 3, 5, 6), (4, 6)] and outs == [(4, 3, 7, 9)]
    args, outs, _ = S.GridGenerator(S.Variable("data"), transform_type="warp").infer_shape(data=(2, 2, 3, 4))
    assert outs == [(2, 2, 3, 4)]
