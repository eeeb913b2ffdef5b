"""check_finite: the first operator (or argument) that produces NaN/inf is named, in forward
and backward, through bind, simple_bind, the environment switch and Module."""

import numpy as np
import pytest

import tritonsym as ts
from tritonsym import ExecutionError

S = ts.sym


def test_names_the_first_operator_in_forward():
    net = S.MakeLoss(S.exp(S.sqrt(S.Variable("x") - 1.0)))
    exe = net.simple_bind(ts.cpu(), x=(2, 3), check_finite=True)
    exe.forward(is_train=True, x=np.full((2, 3), 2.0))
    exe.backward()  # all finite: nothing raised
    with pytest.raises(ExecutionError, match=r"check_finite: sqrt\d+ \(sqrt\) forward wrote 2 NaN/inf value\(s\) "
                                             r"into sqrt\d+_output \(2, 3\)"):
        exe.forward(is_train=True, x=np.array([[2.0, 0.5, 3.0], [0.0, 2.0, 2.0]]))


def test_names_an_argument_and_a_backward_step(rng):
    x = S.Variable("x")
    exe = S.MakeLoss(S.sqrt(S.abs(x))).simple_bind(ts.cpu(), x=(3,), check_finite=True)
    with pytest.raises(ExecutionError, match=r"argument 'x' \(3,\) holds 1 NaN/inf value\(s\) before forward"):
        exe.forward(x=np.array([1.0, np.inf, 2.0]))
    exe.forward(is_train=True, x=np.array([1.0, 0.0, 2.0]))  # sqrt(0) is finite, its derivative is not
    with pytest.raises(ExecutionError, match=r"check_finite: sqrt\d+ \(sqrt\) backward wrote 1 NaN/inf"):
        exe.backward()


def test_environment_switch_and_module(monkeypatch):
    monkeypatch.setenv("TRITONSYM_CHECK_FINITE", "1")
    exe = S.log(S.Variable("x")).simple_bind(ts.cpu(), x=(2,))
    with pytest.raises(ExecutionError, match=r"log\d+ \(log\) forward wrote 1 NaN/inf"):
        exe.forward(x=np.array([-1.0, 1.0]))
    monkeypatch.delenv("TRITONSYM_CHECK_FINITE")
    quiet = S.log(S.Variable("x")).simple_bind(ts.cpu(), x=(2,))
    assert np.isnan(quiet.forward(x=np.array([-1.0, 1.0]))[0][0].item())  # off by default
    net = S.SoftmaxOutput(S.FullyConnected(S.Variable("data"), name="fc", num_hidden=3), name="softmax")
    mod = ts.mod.Module(net, check_finite=True)
    mod.bind([("data", (2, 4))], [("softmax_label", (2,))])
    mod.init_params()
    batch = ts.io.DataBatch([np.ones((2, 4))], [np.array([0.0, 7.0])])  # label 7 of 3 classes: a NaN row
    mod.forward(batch)
    with pytest.raises(ExecutionError, match=r"softmax \(SoftmaxOutput\) backward wrote 3 NaN/inf"):
        mod.backward()
    with pytest.raises(ts.BindError, match="check_finite must be True or False"):
        S.Variable("x").simple_bind(ts.cpu(), x=(1,), check_finite="yes")
