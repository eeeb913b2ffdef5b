"""contrib.MultiBoxPrior beyond its generic operator cases: the same bits as MXNet's float32
loop in its order of operations; every dtype against the float64 oracle on SSD's shapes;
the data never read (NaN data, finite boxes) and its gradient 0; parameters as MXNet's
JSON writes them; refusals that name the operator and the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import DTYPES_QUICK_FIRST, assert_close

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _priors(shape, dtype=torch.float32, grad_req="null", **params):
    exe = S.contrib.MultiBoxPrior(S.Variable("data"), **params).simple_bind(
        ts.cpu(), data=shape, type_dict={"data": dtype}, grad_req=grad_req)
    exe.forward(is_train=grad_req != "null", data=torch.full(shape, float("nan"), dtype=dtype))
    return exe


def _mxnet_loop(height, width, sizes, ratios, steps, offsets):
    """MXNet 1.9.1's MultiBoxPriorForward, float32 and its order of operations, vectorized."""
    f = np.float32
    step_y, step_x = (f(steps[0]), f(steps[1])) if steps[0] > 0 else (f(1) / f(height), f(1) / f(width))
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    y = (rows.astype(f) + f(offsets[0])) * step_y
    x = (cols.astype(f) + f(offsets[1])) * step_x
    shapes = [(f(s), np.sqrt(f(ratios[0]))) for s in sizes] + [(f(sizes[0]), np.sqrt(f(q))) for q in ratios[1:]]
    boxes = []
    for s, r in shapes:
        w = s * f(height) / f(width) * r / f(2)
        h = s / r / f(2)
        boxes.append(np.stack([x - w, y - h, x + w, y + h], axis=-1))
    return np.stack(boxes, axis=2).reshape(1, -1, 4)


@pytest.mark.parametrize("height, width, params", [
    (19, 19, dict(sizes=(0.2, 0.272), ratios=(1, 2, 0.5, 3, 1 / 3))),
    (5, 3, dict(sizes=(0.37,), ratios=(1.7, 0.3), steps=(0.11, 0.3), offsets=(0.2, 0.9))),
    (1, 7, dict(sizes=(0.9, 0.95, 0.3), ratios=(1,)))], ids=["ssd-19x19", "steps-offsets", "one-row"])
def test_the_same_bits_as_mxnet_float32_loop(height, width, params):
    out = _priors((2, 3, height, width), **params).outputs[0].numpy()
    full = dict(steps=(-1.0, -1.0), offsets=(0.5, 0.5)) | params
    np.testing.assert_array_equal(out, _mxnet_loop(height, width, full["sizes"], full["ratios"], full["steps"],
                                                   full["offsets"]))


@pytest.mark.parametrize("clip", [False, True], ids=["unclipped", "clipped"])
@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)  # float64 and float16 under -m slow
def test_every_dtype_against_the_oracle(dtype, clip):
    params = dict(sizes=(0.2, 0.272), ratios=(1, 2, 0.5), clip=clip)
    exe = _priors((1, 8, 10, 19), dtype, **params)
    assert exe.outputs[0].dtype == dtype and exe.outputs[0].shape == (1, 10 * 19 * 4, 4)
    assert_close(exe.outputs[0], o.multibox_prior(10, 19, **params), dtype, "MultiBoxPrior")
    if clip:
        values = exe.outputs[0].to(torch.float64)
        assert values.min() == 0 and values.max() == 1


def test_the_data_is_never_read_and_takes_a_gradient_of_zero():
    exe = _priors((2, 1, 3, 4), torch.float32, grad_req="write", sizes=(0.5,))
    assert torch.isfinite(exe.outputs[0]).all()  # NaN data
    exe.backward(out_grads=torch.ones(1, 12, 4))
    assert not torch.any(exe.grad_dict["data"] != 0)


def test_parameters_as_mxnet_json_writes_them():
    given = S.contrib.MultiBoxPrior(S.Variable("data"), sizes="(0.2, 0.272)", ratios="[1, 2, 0.5]", clip="True",
                                    steps="(0.1, 0.1)")
    single = S.contrib.MultiBoxPrior(S.Variable("data"), sizes="0.3")
    assert given.infer_shape(data=(1, 3, 4, 5))[1] == [(1, 4 * 5 * 4, 4)]
    assert single.infer_shape(data=(1, 3, 4, 5))[1] == [(1, 20, 4)]
    reloaded = S.load_json(given.tojson())
    assert reloaded.tojson() == given.tojson()
    exe = reloaded.simple_bind(ts.cpu(), data=(1, 3, 4, 5), grad_req="null")
    exe.forward()
    assert_close(exe.outputs[0], o.multibox_prior(4, 5, (0.2, 0.272), (1, 2, 0.5), True, (0.1, 0.1)), torch.float32)


def test_data_of_more_axes_reads_height_and_width_from_the_third_and_fourth():
    # as MXNet's (its shape check asks for 4 axes or more)
    assert S.contrib.MultiBoxPrior(S.Variable("data")).infer_shape(data=(1, 2, 3, 4, 5))[1] == [(1, 12, 4)]


def test_refusals_name_the_operator_and_the_values():
    prior = lambda **p: S.contrib.MultiBoxPrior(S.Variable("data"), **p)  # noqa: E731
    for params, message in ((dict(sizes=()), r"sizes=\(\) must be one or more positive numbers"),
                            (dict(ratios=(1, -2)), r"ratios=\(1.0, -2.0\) must be one or more positive numbers"),
                            (dict(sizes=(float("nan"),)), r"sizes=\(nan,\) must be one or more positive numbers"),
                            (dict(steps=(0, 0.1)), r"steps=\(0.0, 0.1\) must be \(step_y, step_x\), both positive "
                                                   r"or neither"),
                            (dict(steps=(0.1,)), r"steps=\(0.1,\) must be \(step_y, step_x\)"),
                            (dict(offsets=(1.5, 0.5)), r"offsets=\(1.5, 0.5\) must be \(offset_y, offset_x\), each "
                                                       r"in \[0, 1\]"),
                            (dict(sizes="(0.2; 0.3)"), r"sizes='\(0.2; 0.3\)' is not a valid tuple of numbers")):
        with pytest.raises(ParamError, match=r"_contrib_MultiBoxPrior: " + message):
            prior(**params)
    with pytest.raises(ShapeError, match=r"_contrib_MultiBoxPrior.*data of shape \(2, 3, 4\) must be \(batch, "
                                         r"channels, height, width\)"):
        prior().infer_shape(data=(2, 3, 4))
