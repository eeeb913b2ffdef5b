"""NaN in gives NaN out, as IEEE arithmetic, numpy and torch do: in every operator's
forward and backward, every dtype, fused or not, in the optimizer's update, and in the
metrics, where a NaN prediction is never right.

A comparison (``tl.where(x > 0, x, 0)``, a clamp, a row maximum that skips NaN, a guard
for rows of all -inf) turns NaN into a plausible number; these tests plant NaN in one
element of one input at a time and require NaN exactly where the float64 oracle has it,
and nowhere else."""

import numpy as np
import pytest
import torch
from operator_cases import CASES, REPEATS, SPLIT_ROWS, write_inputs
from tolerances import DTYPE_IDS, DTYPES, DTYPES_FLOAT32_FIRST, DTYPES_QUICK_FIRST, rounded, to_numpy
from tritonsym.ops import softmax as softmax_kernels

import tritonsym as ts
from tritonsym import ops

NAN = float("nan")
S = ts.sym
# Operators whose derivative is chosen by comparing the input: the oracles' np.where /
# (x > 0) give a number at NaN, the rule gives NaN.
PIECEWISE = {"Activation", "LeakyReLU", "abs", "relu"}


def _planted(case, rng, name: str, position: float):
    """The case's inputs with NaN in one element of ``name`` (at a fraction of its size)."""
    values = case.inputs(rng)
    flat = values[name].reshape(-1)
    flat[int(position * (flat.size - 1))] = NAN
    return values


def _run(case, dtype, values, head):
    data_args = [n for n in case.shapes if n not in case.no_grad]
    exe = case.build().simple_bind(ts.cpu(), grad_req={n: "write" for n in data_args},
                                   type_dict={n: dtype for n in data_args}, **case.shapes)
    used = write_inputs(exe, values, rounded)  # what the kernels see, rounded
    exe.forward(is_train=True)
    exe.backward(out_grads=None if case.loss else [rounded(head, dtype)])
    return exe, used


def _expected_grads(case, used, head):
    with np.errstate(all="ignore"):
        grads = case.backward(used, head)
    if case.op in PIECEWISE:  # the compared input is "data" (prelu's gamma is a plain factor)
        grads = {n: np.where(np.isnan(used[n]), NAN, g) if n == "data" else g for n, g in grads.items()}
    return grads


def _same_nans(actual: torch.Tensor, expected: np.ndarray, what: str) -> None:
    got = np.isnan(to_numpy(actual))
    want = np.isnan(np.broadcast_to(expected, got.shape))
    assert want.any() or not got.any(), f"{what}: NaN where the oracle has none"
    assert np.array_equal(got, want), (f"{what}: NaN at {np.argwhere(got != want)[:5].tolist()} differs from the "
                                       f"oracle ({int(got.sum())} NaN, expected {int(want.sum())})")


PLANTED = [(c, n) for c in CASES for n in c.shapes if n not in c.no_grad]
# The quick run plants NaN in the first input of each operator's first case; the other inputs
# and cases (operator_cases.REPEATS) wait for -m slow, which CI runs.
QUICK_PLANTED = {(c.id, next(n for n in c.shapes if n not in c.no_grad)) for c, _ in PLANTED if c.id not in REPEATS}


@pytest.mark.parametrize("dtype", DTYPES_FLOAT32_FIRST)
@pytest.mark.parametrize("case, name", [pytest.param(c, n, marks=() if (c.id, n) in QUICK_PLANTED else pytest.mark.slow)
                                        for c, n in PLANTED], ids=[f"{c.id}-{n}" for c, n in PLANTED])
def test_a_nan_input_gives_nan_exactly_where_the_math_does(case, name, dtype, rng):
    values = _planted(case, rng, name, position=rng.uniform())
    with np.errstate(all="ignore"):
        head = rng.normal(size=np.shape(case.forward(values)))
    exe, used = _run(case, dtype, values, head)
    with np.errstate(all="ignore"):
        _same_nans(exe.outputs[0], case.forward(used), f"{case.id} forward")
    head = to_numpy(rounded(head, dtype))
    for arg, want in _expected_grads(case, used, head).items():
        _same_nans(exe.grad_dict[arg], want, f"{case.id} gradient of {arg}")


HEADED = [c for c in CASES if c.loss is None]


@pytest.mark.slow  # every case again, NaN in the head gradient: CI runs it with -m slow
@pytest.mark.parametrize("case", HEADED, ids=[c.id for c in HEADED])
def test_a_nan_head_gradient_reaches_the_input_gradients(case, rng):
    values = case.inputs(rng)
    head = rng.normal(size=np.shape(case.forward(values)))
    head.reshape(-1)[head.size // 2] = NAN
    exe, used = _run(case, torch.float32, values, head)
    for arg, want in _expected_grads(case, used, to_numpy(rounded(head, torch.float32))).items():
        _same_nans(exe.grad_dict[arg], want, f"{case.id} gradient of {arg}")


SOFTMAX_CASES = [c for c in CASES if c.op in ("softmax", "log_softmax", "SoftmaxOutput", "SoftmaxActivation")]


@pytest.mark.parametrize("case", SOFTMAX_CASES, ids=[c.id for c in SOFTMAX_CASES])
def test_a_nan_in_a_row_split_across_programs_makes_the_row_nan(case, rng, monkeypatch):
    for name, value in SPLIT_ROWS:
        monkeypatch.setattr(softmax_kernels, name, value)
    values = _planted(case, rng, "data", position=0.5)
    with np.errstate(all="ignore"):
        head = rng.normal(size=np.shape(case.forward(values)))
    exe, used = _run(case, torch.float32, values, head)
    with np.errstate(all="ignore"):
        _same_nans(exe.outputs[0], case.forward(used), f"{case.id} forward")


# ----------------------------------------------------------- the cases the issue saw


def test_relu_keeps_nan():
    x = torch.tensor([NAN, -1.0, 2.0])
    y = ops.activation_forward(x, "relu")
    assert y[0].isnan() and y[1:].tolist() == [0.0, 2.0]
    grad = ops.activation_backward(torch.ones(3), y, "relu")
    assert grad[0].isnan() and grad[1:].tolist() == [0.0, 1.0]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("cols", [3, softmax_kernels.MAX_BLOCK + 5])  # one pass, and the looped kernels
def test_a_softmax_row_holding_nan_is_nan(dtype, cols):
    x = torch.zeros(4, cols, dtype=dtype)
    x[:, 1], x[:, 2] = 0.0, 1.0
    x[1, 0] = NAN
    x[2, :] = float("-inf")  # and a row of all -inf is still 0 (log-softmax -inf), not NaN
    x[3, :] = NAN
    for log in (False, True):
        y = ops.softmax_forward(x, log=log)
        assert y[1].isnan().all() and y[3].isnan().all(), (log, y[1, :3])
        assert not y[0].isnan().any()
        assert (y[2] == (float("-inf") if log else 0.0)).all()
    p = ops.softmax_forward(x)
    grad = ops.softmax_output_backward(p, torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=dtype))
    assert grad[1].isnan().all() and grad[3].isnan().all() and not grad[0].isnan().any()
    assert grad[2, :3].tolist() == [0.0, -1.0, 0.0]


@pytest.mark.parametrize("dtype", DTYPES_QUICK_FIRST)
@pytest.mark.parametrize("act", ops.ACTIVATIONS)
def test_the_fused_fully_connected_epilogue_keeps_nan(act, dtype, rng):
    """A NaN in one input row gives a NaN prediction row, and a NaN weight a NaN column,
    through the activation fused into FullyConnected's epilogue and its gradient."""
    slope = 0.25 if act in ("leaky", "elu") else 0.0
    x = rounded(rng.normal(size=(6, 9)), dtype)
    w = rounded(rng.normal(size=(5, 9)) * 0.3, dtype)
    b = rounded(rng.normal(size=5), dtype)
    x[2, 4] = NAN
    w[3, 1] = NAN
    y = ops.fully_connected_forward(x, w, b, act=act, slope=slope)
    want = np.zeros((6, 5), bool)
    want[2, :], want[:, 3] = True, True
    assert np.array_equal(y.isnan().cpu().numpy(), want), act
    if ops.activation.grad_from_output(act, slope):
        # act'(y) is NaN on row 2 and column 3, so every sum over rows or columns is NaN.
        grads = ops.fully_connected_backward(torch.ones_like(y), x, w, out=y, act=act, slope=slope)
        assert all(g.isnan().all() for g in grads), act
        x[2, 4], w[3, 1] = 0.0, 0.0
        dy = torch.ones_like(y)
        dy[1, 0] = NAN  # a NaN head gradient: NaN in row 1 of dx, row 0 of dw and db[0], nowhere else
        dx, dw, db = ops.fully_connected_backward(dy, x, w, out=ops.fully_connected_forward(x, w, b, act=act,
                                                                                            slope=slope),
                                                  act=act, slope=slope)
        assert dx[1].isnan().all() and not dx[[0, 2, 3, 4, 5]].isnan().any()
        assert dw[0].isnan().all() and not dw[1:].isnan().any() and db[0].isnan() and not db[1:].isnan().any()


def test_a_checkpoint_with_a_nan_weight_predicts_nan(tmp_path):
    net = S.SoftmaxOutput(S.FullyConnected(S.Activation(S.FullyConnected(S.Variable("data"), num_hidden=8,
                                                                         name="fc1"), act_type="relu"),
                                           num_hidden=3, name="fc2"), name="softmax")
    rng = np.random.default_rng(0)
    params = {"fc1_weight": rng.normal(size=(8, 4)), "fc1_bias": np.zeros(8), "fc2_weight": rng.normal(size=(3, 8)),
              "fc2_bias": np.zeros(3)}
    params["fc1_weight"][5, 2] = NAN
    ts.model.save_checkpoint(str(tmp_path / "m"), 1, net, {k: torch.tensor(v, dtype=torch.float32)
                                                          for k, v in params.items()}, {})
    mod = ts.mod.Module.load(str(tmp_path / "m"), 1)
    data = ts.io.NDArrayIter(rng.normal(size=(10, 4)), np.zeros(10), batch_size=5)
    mod.bind(data.provide_data, data.provide_label, for_training=False, grad_req="null")
    # The relu after fc1 used to turn the NaN of hidden unit 5 into 0: a finite prediction.
    assert mod.predict(data).isnan().all()
    assert mod.score(data, "acc") == [("accuracy", 0.0)]


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_a_clipped_nan_gradient_updates_to_nan(kind):
    """Clipping by min/max returns the other operand for a NaN on a GPU: -clip or clip."""
    w = torch.ones(3)
    g = torch.tensor([NAN, 5.0, -5.0])
    if kind == "sgd":
        ops.sgd_update(w, g, learning_rate=0.1, clip_gradient=1.0)
    else:
        m, v = torch.zeros(3), torch.zeros(3)
        ops.adam_update(w, g, m, v, step=1, learning_rate=0.1, clip_gradient=1.0, wd=0.1, decoupled=kind == "adamw")
    assert w[0].isnan() and not w[1:].isnan().any()


# ------------------------------------------------------------------------- metrics


def test_a_nan_prediction_is_never_right():
    labels = [np.array([0.0, 1.0, 2.0])]
    preds = np.array([[NAN, NAN, NAN], [0.1, NAN, 0.2], [0.1, 0.2, 0.7]])
    for name, want in (("acc", 1 / 3), ("top_k_accuracy", 1 / 3)):
        metric = ts.metric.create(name, **({"top_k": 3} if name.startswith("top") else {}))
        metric.update(labels, [preds])
        assert metric.get()[1] == pytest.approx(want), name
    f1 = ts.metric.F1(average="macro")
    f1.update(labels, [preds])
    assert f1.get()[1] == pytest.approx(np.mean([0.0, 0.0, 1.0]))  # classes 0, 1: a miss each; class 2 right
    indices = ts.metric.Accuracy()
    indices.update([np.array([0.0, 1.0])], [np.array([NAN, 1.0])])  # predictions given as class indices
    assert indices.get()[1] == 0.5
    for name in ("ce", "mse", "mae", "rmse"):
        metric = ts.metric.create(name)
        metric.update([np.array([0.0, 1.0])], [np.array([[NAN, 0.5], [0.5, 0.5]])] if name == "ce" else
                      [np.array([NAN, 1.0])])
        assert np.isnan(metric.get()[1]), name


def test_a_metric_refuses_a_label_that_is_not_a_class():
    metric = ts.metric.Accuracy()
    with pytest.raises(ts.ParamError, match=r"accuracy: label 1 is 1\.7, not a class index"):
        metric.update([np.array([0.0, 1.7])], [np.zeros((2, 3))])
    with pytest.raises(ts.ParamError, match="label 0 is nan"):
        metric.update([np.array([NAN, 1.0])], [np.zeros((2, 3))])


def test_fit_names_the_outputs_when_the_data_holds_nan():
    """Finite parameters and a NaN prediction (here a monitored output that no gradient
    leaves): fit stops after the epoch naming the output, rather than training on."""
    fc = S.FullyConnected(S.Variable("data"), num_hidden=2, name="fc")
    net = S.Group([S.LinearRegressionOutput(fc, name="reg"), S.BlockGrad(S.Variable("extra") * 2.0, name="seen")])
    extra = np.ones((8, 2))
    extra[7, 1] = NAN
    data = ts.io.NDArrayIter({"data": np.ones((8, 3)), "extra": extra}, {"reg_label": np.zeros((8, 2))},
                             batch_size=4)
    mod = ts.mod.Module(net, data_names=("data", "extra"), label_names=("reg_label",))
    with pytest.raises(ts.ExecutionError, match=r"outputs hold NaN/inf values \(seen_output: 1 of 8\) although every "
                                                r"parameter is finite"):
        mod.fit(data, num_epoch=1, eval_metric=ts.metric.MSE(output_names=["reg_output"]))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_mae_regression_gradient_is_nan_at_nan_and_minus_one_at_a_tie(dtype):
    """MXNet's sign of out - label answers -1 at 0 (a subgradient; kept) and at NaN (not kept)."""
    net = S.MAERegressionOutput(S.Variable("data"), name="reg")
    exe = net.simple_bind(ts.cpu(), data=(1, 4), type_dict={"data": dtype, "reg_label": dtype})
    exe.forward(is_train=True, data=torch.tensor([[1.0, 2.0, NAN, 0.5]]),
                reg_label=torch.tensor([[0.0, 2.0, 1.0, NAN]]))
    exe.backward()
    got = exe.grad_dict["data"].double()[0]
    assert got[:2].tolist() == [0.25, -0.25] and torch.isnan(got[2:]).all(), got
