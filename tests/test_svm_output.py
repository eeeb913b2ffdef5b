"""SVMOutput beyond its generic operator cases: an SVM output layer trains a classifier with
Module.fit (MXNet's svm_mnist example, on clusters), the gradient ignores the head gradient
and follows the loss scale, integer labels, the label's shape from the data's, and a label
that is not a class, or a NaN score, shows as NaN where MXNet answers a number."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from networks import blobs
from oracles import svm_output_grad
from tolerances import assert_close

import tritonsym as ts
from tritonsym.io import NDArrayIter

S = ts.sym


def _svm(hidden=8, classes=3, **options):
    net = S.Activation(S.FullyConnected(S.Variable("data"), num_hidden=hidden, name="fc1"), act_type="relu")
    return S.SVMOutput(S.FullyConnected(net, num_hidden=classes, name="fc2"), name="svm", **options)


@pytest.mark.parametrize("linear", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["l2", "l1"])
def test_an_svm_output_layer_trains_a_classifier(linear):
    ts.random.seed(0)
    x, y = blobs(96, 3, 6, seed=2)
    mod = ts.mod.Module(_svm(use_linear=linear), label_names=["svm_label"])
    history = mod.fit(NDArrayIter(x, y, batch_size=16, shuffle=True, label_name="svm_label"), num_epoch=4,
                      initializer=ts.init.Xavier(), optimizer_params={"learning_rate": 0.05, "momentum": 0.5})
    assert history[-1]["train"]["accuracy"] >= 0.9, history[-1]


def test_the_head_gradient_is_ignored_and_the_label_shape_follows_the_data(rng):
    net = S.SVMOutput(S.Variable("data"), margin=0.5, name="s")
    assert net.list_arguments() == ["data", "s_label"]
    assert net.infer_shape(data=(2, 3, 4))[0][1] == (2, 3)
    x, label = rng.normal(size=(2, 3, 4)), rng.integers(0, 4, (2, 3))
    exe = net.simple_bind(ts.cpu(), data=(2, 3, 4), type_dict={"data": "float64", "s_label": "int32"})
    exe.forward(is_train=True, data=x, s_label=label)
    exe.backward(out_grads=torch.full((2, 3, 4), 5.0, dtype=torch.float64))
    assert_close(exe.grad_dict["data"], svm_output_grad(x, label, 0.5), torch.float64, "gradient")


@pytest.mark.parametrize("bad", [4.0, -1.0, 1.5, float("nan")])
def test_a_label_that_is_not_a_class_makes_its_row_nan(bad, rng):
    net = S.SVMOutput(S.Variable("data"), S.Variable("label"))
    exe = net.simple_bind(ts.cpu(), data=(3, 4), type_dict={"data": "float64"})
    exe.forward(is_train=True, data=rng.normal(size=(3, 4)), label=np.array([0.0, bad, 3.0]))
    exe.backward()
    grad = exe.grad_dict["data"]
    assert grad[1].isnan().all() and not grad[[0, 2]].isnan().any()


def test_a_nan_score_gives_a_nan_gradient(rng):
    x = rng.normal(size=(2, 3))
    x[0, 1] = np.nan
    exe = S.SVMOutput(S.Variable("data"), S.Variable("label")).simple_bind(ts.cpu(), data=(2, 3))
    exe.forward(is_train=True, data=x, label=np.array([1.0, 2.0]))
    exe.backward()
    assert exe.grad_dict["data"].isnan().tolist() == [[False, True, False], [False, False, False]]
