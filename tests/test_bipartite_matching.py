"""contrib.bipartite_matching beyond its generic operator cases: against the oracle's walk
down the sorted pairs on large score matrices (many passes of the kernel's search); MXNet's
documented example; ties, the threshold, ascending order, topk; NaN confined to its image;
half-precision markers that could not number the rows refused; refusals that name the
operator and the values."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import to_numpy
from tritonsym.ops import KernelArgumentError

import tritonsym as ts
from tritonsym.base import ParamError, ShapeError

S = ts.sym


def _match(data, dtype=torch.float64, **params):
    data = torch.as_tensor(np.asarray(data, np.float64)).to(dtype)
    exe = S.contrib.bipartite_matching(S.Variable("data"), **params).simple_bind(
        ts.cpu(), data=tuple(data.shape), type_dict={"data": dtype}, grad_req="null")
    exe.forward(data=data)
    return [to_numpy(t) for t in exe.outputs]


@pytest.mark.parametrize("dtype", [torch.float32, pytest.param(torch.float64, marks=pytest.mark.slow)],
                         ids=["float32", "float64"])
@pytest.mark.parametrize("params", [dict(threshold=0.1), dict(threshold=0.9, is_ascend=True, topk=25)],
                         ids=["descending", "ascending-top25"])
def test_large_score_matrices_against_the_oracle(dtype, params, rng):
    data = rng.uniform(size=(2, 3, 150, 40))  # like IoUs of anchors with ground-truth boxes
    rows, cols = _match(data, dtype, **params)
    want_rows, want_cols = o.bipartite_matching(to_numpy(torch.from_numpy(data).to(dtype)), **params)
    np.testing.assert_array_equal(rows, want_rows)
    np.testing.assert_array_equal(cols, want_cols)
    matched = (rows >= 0).sum(-1)
    assert (matched == (25 if "topk" in params else 40)).all()


def test_mxnet_documented_example():
    rows, cols = _match([[0.5, 0.6], [0.1, 0.2], [0.3, 0.4]], threshold=1e-12)
    np.testing.assert_array_equal(rows, [1, -1, 0])
    np.testing.assert_array_equal(cols, [2, 0])


def test_ties_go_by_flat_position_and_the_threshold_is_strict():
    # every score 0.5: row 0 takes column 0, row 1 column 1; a score at the threshold matches nothing
    rows, cols = _match(np.full((3, 2), 0.5), threshold=0.25)
    np.testing.assert_array_equal(rows, [0, 1, -1])
    np.testing.assert_array_equal(cols, [0, 1])
    rows, cols = _match(np.full((3, 2), 0.5), threshold=0.5)
    assert (rows == -1).all() and (cols == -1).all()
    # the walk ends at the first free pair below the threshold, though a later one passes
    rows, _ = _match([[0.9, 0.2], [0.8, 0.7]], threshold=0.75)
    np.testing.assert_array_equal(rows, [0, -1])


def test_ascending_takes_the_least_score_first():
    rows, cols = _match([[0.3, 0.1], [0.2, 0.9]], threshold=0.5, is_ascend=True)
    np.testing.assert_array_equal(rows, [1, 0])
    np.testing.assert_array_equal(cols, [1, 0])


def test_topk_makes_that_many_matches():
    data = np.random.default_rng(0).uniform(size=(6, 5))
    rows, cols = _match(data, threshold=0.0, topk=2)
    assert (rows >= 0).sum() == 2 and (cols >= 0).sum() == 2  # MXNet 1.9.1 makes 3
    np.testing.assert_array_equal(rows, o.bipartite_matching(data, 0.0, topk=2)[0])


def test_a_nan_makes_its_image_nan(rng):
    data = rng.uniform(size=(3, 5, 4))
    data[1, 2, 3] = np.nan
    rows, cols = _match(data, torch.float32, threshold=0.2)
    assert np.isnan(rows[1]).all() and np.isnan(cols[1]).all()
    assert not np.isnan(rows[[0, 2]]).any() and not np.isnan(cols[[0, 2]]).any()
    np.testing.assert_array_equal(rows, o.bipartite_matching(data.astype(np.float32), 0.2)[0])


@pytest.mark.parametrize("dtype, rows", [(torch.float16, 2050), (torch.bfloat16, 258)], ids=["float16", "bfloat16"])
def test_half_markers_that_cannot_number_the_rows_are_refused(dtype, rows):
    net = S.contrib.bipartite_matching(S.Variable("data"), threshold=0.5)
    message = r"bipartite_matching: .*markers hold row and column numbers exactly only to \d+; data of shape "
    with pytest.raises(KernelArgumentError, match=message + r"\(1, %d, 3\) needs %d: use float32" % (rows, rows - 1)):
        net.simple_bind(ts.cpu(), data=(1, rows, 3), type_dict={"data": dtype}, grad_req="null")
    net.simple_bind(ts.cpu(), data=(1, rows - 2, 3), type_dict={"data": dtype}, grad_req="null")  # the largest


def test_refusals_name_the_operator_and_the_values():
    with pytest.raises(ParamError, match=r"_contrib_bipartite_matching: the required parameter 'threshold' is "
                                         r"missing"):
        S.contrib.bipartite_matching(S.Variable("data"))
    with pytest.raises(ParamError, match=r"_contrib_bipartite_matching: topk=0 must be -1 \(no limit\) or at least 1"):
        S.contrib.bipartite_matching(S.Variable("data"), threshold=0.5, topk=0)
    with pytest.raises(ParamError, match=r"_contrib_bipartite_matching: threshold=nan must be a finite number"):
        S.contrib.bipartite_matching(S.Variable("data"), threshold=float("nan"))
    with pytest.raises(ShapeError, match=r"_contrib_bipartite_matching.*data of shape \(5,\) must be \(\.\.\., rows, "
                                         r"columns\)"):
        S.contrib.bipartite_matching(S.Variable("data"), threshold=0.5).infer_shape(data=(5,))
