"""contrib.index_array beyond its operator case: every axis by default, against numpy's
indices over shapes of 1 to 4 axes and launches of several programs; positions built in
the graph selecting position embeddings (its use); and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tritonsym.ops import index_array as kernels
from tritonsym.ops._common import ELEMENTWISE_BLOCK, KernelArgumentError

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


@pytest.mark.parametrize("shape", [(7,), (3, ELEMENTWISE_BLOCK + 3), (2, 1, 5), (2, 3, 1, 4)], ids=str)
def test_every_axis_by_default_equals_numpy_indices(shape):
    exe = S.contrib.index_array(S.Variable("x")).simple_bind(ts.cpu(), grad_req="null", x=shape)
    exe.forward()
    assert exe.outputs[0].dtype == torch.int64
    np.testing.assert_array_equal(exe.outputs[0].numpy(), np.stack(np.indices(shape), -1))


def test_positions_built_in_the_graph_select_position_embeddings(rng):
    """Embedding of each token's position (index_array along the sequence axis): every
    sequence gets the table's rows in order, and the table's gradient sums the batch."""
    tokens = S.Variable("tokens")
    embedded = S.Embedding(S.contrib.index_array(tokens, axes=(1,)), input_dim=5, output_dim=3, name="pos")
    exe = S.Reshape(embedded, shape=(0, 0, -1)).simple_bind(ts.cpu(), tokens=(2, 5), type_dict={
        "tokens": "float64", "pos_weight": "float64"})
    table = torch.from_numpy(rng.normal(size=(5, 3)))
    exe.forward(is_train=True, tokens=torch.zeros(2, 5, dtype=torch.float64), pos_weight=table)
    np.testing.assert_array_equal(exe.outputs[0].numpy(), np.stack([table.numpy()] * 2))
    exe.backward(out_grads=torch.ones(2, 5, 3, dtype=torch.float64))
    np.testing.assert_array_equal(exe.grad_dict["pos_weight"].numpy(), np.full((5, 3), 2.0))


def test_refusals_name_the_operator_and_the_values():
    with pytest.raises(ShapeError, match=r"index_array.*axes=\(2,\) names an axis outside data of 2"):
        S.contrib.index_array(S.Variable("x"), axes=(2,)).infer_shape(x=(2, 3))
    with pytest.raises(ShapeError, match=r"axes=\(\) of data with 2 dimension\(s\) leaves no coordinate"):
        S.contrib.index_array(S.Variable("x"), axes=()).infer_shape(x=(2, 3))
    with pytest.raises(KernelArgumentError, match=r"index_array: out must be contiguous of shape \(2, 3, 1\)"):
        kernels.plan_index_array((2, 3), (1,), torch.empty(2, 3, 2, dtype=torch.int64))
