"""one_hot beyond its generic operator case: whole indices outside the depth (rows of
off_value, MXNet's rule), indices that are not whole (rows of NaN), integer indices, every
output dtype, and one_hot as a label smoothing written by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES
from tritonsym.ops import one_hot as kernels
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts

S = ts.sym
nan = float("nan")


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("index_dtype", [torch.float64, torch.float32, torch.int32, torch.int64])
def test_rows_for_whole_indices_inside_and_outside_the_depth(dtype, index_dtype):
    indices = torch.tensor([[0, 3], [-1, 4]], dtype=index_dtype)
    out = torch.empty(2, 2, 4, dtype=dtype)
    run(kernels.plan_one_hot(indices, out, 4, on_value=0.75, off_value=-2.0))
    want = np.full((2, 2, 4), -2.0)
    want[0, 0, 0] = want[0, 1, 3] = 0.75
    np.testing.assert_array_equal(out.double().numpy(), want)


def test_an_index_that_is_not_whole_gives_a_row_of_nan():
    out = torch.empty(4, 3)
    run(kernels.plan_one_hot(torch.tensor([1.5, nan, float("inf"), 2.0]), out, 3))
    assert np.isnan(out[:2].numpy()).all()
    assert out[2].tolist() == [0, 0, 0] and out[3].tolist() == [0, 0, 1]  # inf is whole: outside the depth


def test_label_smoothing_written_by_hand(rng):
    """one_hot(label) * (1 - a) + a / classes against SoftmaxOutput's smooth_alpha target."""
    classes, alpha = 5, 0.1
    label = S.Variable("label")
    target = S.one_hot(label, depth=classes, on_value=1 - alpha + alpha / classes, off_value=alpha / classes)
    y = rng.integers(0, classes, 7).astype(np.float32)
    exe = target.simple_bind(ts.cpu(), label=(7,))
    out = exe.forward(label=torch.from_numpy(y))[0].numpy()
    np.testing.assert_allclose(out, np.eye(classes)[y.astype(int)] * (1 - alpha) + alpha / classes, rtol=1e-6)
    assert exe.outputs[0].dtype == torch.float32 and S.one_hot(label, depth=3, dtype="float16").infer_type(
        label=torch.float32)[1] == [torch.float16]


def test_bad_arguments_are_named():
    with pytest.raises(KernelArgumentError, match="one_hot: depth=0 must be positive"):
        kernels.plan_one_hot(torch.empty(3), None, 0)
    with pytest.raises(ts.base.ParamError, match="one_hot: depth=0 must be positive"):
        S.one_hot(S.Variable("i"), depth=0)
    with pytest.raises(ts.base.ParamError, match="dtype='int32' is not one of"):
        S.one_hot(S.Variable("i"), depth=3, dtype="int32")
