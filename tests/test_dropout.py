"""Dropout: masks drawn on the device from tritonsym.random's state (a new one each training
step, the same one for a step's backward), no activation memory, MXNet's modes and axes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, rounded, to_numpy

import tritonsym as ts

S = ts.sym
SHAPE = (64, 50)


def _bound(dtype=torch.float64, **options):
    net = S.Dropout(S.Variable("data"), name="drop", **options)
    return net.simple_bind(ts.cpu(), type_dict={"data": dtype}, data=SHAPE)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_a_kept_element_is_scaled_a_dropped_one_zero_and_backward_uses_the_same_mask(dtype, rng):
    exe = _bound(dtype, p=0.3)
    x = rounded(rng.uniform(0.5, 2.0, SHAPE), dtype)
    out = to_numpy(exe.forward(is_train=True, data=x)[0]).astype(np.float64)
    xs = to_numpy(x).astype(np.float64)
    kept = out != 0
    assert 0.6 < kept.mean() < 0.8  # 1 - p of 3200 draws
    scaled = to_numpy(rounded(xs / 0.7, dtype)).astype(np.float64)
    np.testing.assert_allclose(out[kept], scaled[kept], rtol=1e-2 if dtype.itemsize == 2 else 1e-6)
    head = rounded(np.ones(SHAPE), dtype)
    exe.backward([head])
    grad = to_numpy(exe.grad_dict["data"]).astype(np.float64)
    assert np.array_equal(grad != 0, kept)  # the forward's mask, drawn again
    np.testing.assert_allclose(grad[kept], 1 / 0.7, rtol=1e-2 if dtype.itemsize == 2 else 1e-6)


def test_masks_follow_the_seed_the_step_and_the_node():
    x = np.ones(SHAPE)
    masks = []
    for _ in range(2):
        ts.random.seed(7)
        exe = _bound()
        masks.append([exe.forward(is_train=True, data=x)[0].numpy() != 0 for _ in range(2)])
    assert np.array_equal(masks[0][0], masks[1][0]) and np.array_equal(masks[0][1], masks[1][1])  # same seed
    assert not np.array_equal(masks[0][0], masks[0][1])  # each training step draws anew, on the device
    ts.random.seed(8)
    assert not np.array_equal(_bound().forward(is_train=True, data=x)[0].numpy() != 0, masks[0][0])
    ts.random.seed(7)
    data = S.Variable("data")
    two = S.Group([S.Dropout(data, name="a"), S.Dropout(data, name="b")])
    a, b = (o.numpy() != 0 for o in two.simple_bind(ts.cpu(), data=SHAPE, type_dict={"data": "float64"})
            .forward(is_train=True, data=x))
    assert not np.array_equal(a, b)  # two layers, two streams


# The mask of seed 7 at step 3 for the node "drop", over 8 x 32, as Triton's interpreter drew it
# (recorded once, packed bits). Compiled on a GPU (the suite runs there with
# TRITONSYM_TEST_DEVICE=cuda) the same Philox must draw the same bits: same seed, same masks.
RECORDED_MASK = "a953544e5eb6e8715bb190da2b93b39e78a90565343359fd934c7b450b4402f8"


def test_the_mask_is_the_recorded_one_interpreted_and_compiled():
    import zlib

    from tritonsym.ops import dropout as kernels
    from tritonsym.ops._common import run

    x = torch.ones(8, 32)  # on the suite's device
    out = torch.empty_like(x)
    run(kernels.plan_dropout(x, out, torch.tensor([7, 3], dtype=torch.int64), p=0.5, salt=zlib.crc32(b"drop")))
    assert np.packbits((out.cpu().numpy() != 0).ravel()).tobytes().hex() == RECORDED_MASK


def test_inference_modes_and_p0():
    x = np.arange(np.prod(SHAPE), dtype=np.float64).reshape(SHAPE)
    exe = _bound(p=0.5)
    assert np.array_equal(exe.forward(is_train=False, data=x)[0].numpy(), x)  # identity in inference
    always = _bound(p=0.5, mode="always")
    assert (always.forward(is_train=False, data=x + 1)[0].numpy() == 0).any()
    zero = _bound(p=0.0)
    assert np.array_equal(zero.forward(is_train=True, data=x)[0].numpy(), x)
    assert zero.debug_str().count("drop (Dropout) forward: 0 launch(es)") == 1  # a view: no launch


def test_axes_share_one_draw():
    exe = _bound(p=0.5, axes=(0,))
    mask = exe.forward(is_train=True, data=np.ones(SHAPE))[0].numpy() != 0
    assert (mask == mask[0]).all() and 0 < mask[0].sum() < SHAPE[1]  # each column kept or dropped whole


def test_axes_over_six_dimensions_draw_the_mask_a_whole_plan_draws():
    """axes=(1, 3) of a 6-d array leaves 5 axes that cannot merge: the plan is split into
    launches (``elementwise_launches``), each numbering its draws from its part's place in
    the mask, so the masks are those of the mask's own shape drawn in one launch."""
    from tritonsym.ops import dropout as kernels
    from tritonsym.ops._common import run

    shape, axes, state = (2, 3, 2, 3, 2, 5), (1, 3), torch.tensor([11, 4], dtype=torch.int64)
    x = torch.ones(shape, dtype=torch.float64)
    out = torch.empty_like(x)
    plan = kernels.plan_dropout(x, out, state, p=0.5, salt=9, axes=axes)
    assert len(plan) == 2
    run(plan)
    whole = torch.ones(kernels.mask_shape(shape, axes), dtype=torch.float64)
    mask = torch.empty_like(whole)
    run(kernels.plan_dropout(whole, mask, state, p=0.5, salt=9))
    assert torch.equal(out, mask.expand(shape)) and 0 < (mask != 0).sum() < mask.numel()


def test_no_activation_memory_and_a_nan_stays_nan():
    """Nothing is kept for backward: a training bind of fc -> dropout -> fc plans no more
    than the same network without the dropout (and its input is not read by backward)."""
    def plan(dropout: bool):
        h = S.FullyConnected(S.Variable("data"), num_hidden=32, name="fc1")
        h = S.Dropout(h, p=0.5, name="drop") if dropout else h
        net = S.SoftmaxOutput(S.FullyConnected(h, num_hidden=4, name="fc2"), name="softmax")
        return net.simple_bind(ts.cpu(), data=(16, 8)).memory

    with_dropout, without = plan(True), plan(False)
    assert with_dropout.planned_bytes == without.planned_bytes
    assert not any(v.kind == "saved" and v.name.startswith("drop") for v in with_dropout.values)
    exe = _bound(p=0.5)
    x = np.ones(SHAPE)
    x[3, 4] = np.nan
    out = exe.forward(is_train=True, data=x)[0].numpy()
    assert np.isnan(out[3, 4]) and np.isnan(out).sum() == 1  # dropped or kept, NaN times a number is NaN


def test_mode_always_draws_a_new_mask_at_every_inference_forward():
    """Monte Carlo dropout: predictions with mode='always' are samples, each call its own, as
    in MXNet (the state's step moved only in training, so every inference forward repeated
    one mask: a sample taken many times looked certain). Training forwards draw anew too, and
    backward uses its own forward's mask."""
    net = S.Dropout(S.Variable("x"), p=0.5, mode="always", name="drop")
    exe = net.simple_bind(ts.cpu(), x=(4, 64), type_dict={"x": "float64"})
    ts.random.seed(5)
    masks = [exe.forward(x=np.ones((4, 64)))[0].numpy() != 0 for _ in range(3)]
    assert not (masks[0] == masks[1]).all() and not (masks[1] == masks[2]).all()
    ts.random.seed(5)
    assert (exe.forward(x=np.ones((4, 64)))[0].numpy() != 0).tolist() == masks[0].tolist()  # the seed repeats them
    out = exe.forward(is_train=True, x=np.ones((4, 64)))[0].numpy()
    exe.backward([torch.ones(4, 64, dtype=torch.float64)])
    assert np.array_equal(exe.grad_dict["x"].numpy(), out)  # x = 1: the gradient is the mask / (1 - p)


def test_errors_are_named():
    with pytest.raises(ts.ParamError, match=r"Dropout: p=1.0 must be in \[0, 1\)"):
        S.Dropout(S.Variable("data"), p=1.0)
    with pytest.raises(ts.ShapeError, match=r"axes=\(2,\) has 2, out of range for data of shape \(64, 50\)"):
        S.Dropout(S.Variable("data"), axes=(2,)).infer_shape(data=SHAPE)
