"""The public checks of tritonsym.test_utils: reports, forward/backward checks, and the
numeric gradient check catching a planted wrong backward in both of its modes."""

import numpy as np
import oracles
import pytest
import torch

import tritonsym as ts
from tritonsym import ops
from tritonsym.operator import OpDef, register, same_shape_everywhere, unregister
from tritonsym.operators import REGISTRY
from tritonsym.test_utils import (
    assert_almost_equal,
    check_numeric_gradient,
    check_symbolic_backward,
    check_symbolic_forward,
)

S = ts.sym


def test_assert_almost_equal_reports_count_and_worst_elements():
    a = np.zeros((3, 4))
    b = a.copy()
    b[1, 2], b[2, 3] = 1e-3, 5.0
    with pytest.raises(AssertionError) as info:
        assert_almost_equal(a, b, rtol=1e-6, atol=1e-6, names=("got", "want"))
    text = str(info.value)
    assert "differ in 2 of 12 elements" in text and "largest difference 5" in text
    assert text.index("at (2, 3): got=0.0, want=5.0") < text.index("at (1, 2)")  # worst first
    nan = a.copy()
    nan[0, 0] = np.nan
    with pytest.raises(AssertionError, match="differ in 1 of 12"):
        assert_almost_equal(nan, a)  # an unwritten (NaN) element always fails
    assert_almost_equal(nan, nan, equal_nan=True)
    with pytest.raises(AssertionError, match=r"a has shape \(3, 4\) but b has shape \(4, 3\)"):
        assert_almost_equal(a, a.T)
    assert_almost_equal(torch.tensor([1.0001], dtype=torch.float16), np.array([1.0]))  # float16 tolerance


def _fc():
    return S.FullyConnected(S.Variable("data"), name="fc", num_hidden=3)


def test_check_symbolic_forward_and_backward(rng):
    x, w, b = rng.normal(size=(5, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
    check_symbolic_forward(_fc(), [x, w, b], [oracles.fully_connected(x, w, b)])
    dy = rng.normal(size=(5, 3))
    dx, dw, db = oracles.fully_connected_grads(dy, x, w, b)
    grads = check_symbolic_backward(_fc(), {"data": x, "fc_weight": w, "fc_bias": b}, [dy],
                                    {"data": dx, "fc_weight": dw, "fc_bias": db})
    assert set(grads) == {"data", "fc_weight", "fc_bias"}
    with pytest.raises(AssertionError, match="forward fc_output and expected differ"):
        check_symbolic_forward(_fc(), [x, w, b], {"fc_output": oracles.fully_connected(x, w, b) + 1e-3})
    with pytest.raises(AssertionError, match="gradient of 'fc_weight' and expected differ in 12 of 12"):
        check_symbolic_backward(_fc(), [x, w, b], [dy], {"fc_weight": 2 * dw})


def _planted(monkeypatch, element_only: bool):
    """Activation's backward made wrong: 10% too large everywhere, or in one element only."""
    op = REGISTRY["Activation"]
    correct = op.backward

    def wrong(a):
        target = a.in_grads[0].view(-1)[:1] if element_only else a.in_grads[0]
        return correct(a) + ops.elementwise.plan_scalar_forward("mul", target, 1.1, target)

    monkeypatch.setattr(op, "backward", wrong)


def test_full_jacobian_mode_names_the_argument_and_the_element(monkeypatch, rng):
    # softrelu: a sigmoid here would bind as one GatedActivation, past the planted Activation
    net = S.Activation(S.Variable("x"), act_type="softrelu") * S.Variable("y")
    location = {"x": rng.normal(size=(2, 3)), "y": rng.normal(size=(2, 3))}
    errors = check_numeric_gradient(net, location)  # 6 elements each: the full Jacobian by default
    assert set(errors) == {"x", "y"} and max(errors.values()) < 1e-6
    _planted(monkeypatch, element_only=True)
    report = r"(?s)gradient of 'x' from backward and finite differences differ in 1 of 6 elements.*at \(0, 0\)"
    with pytest.raises(AssertionError, match=report):
        check_numeric_gradient(net, location)


def test_random_direction_mode_catches_a_wrong_backward(monkeypatch, rng):
    net = S.Activation(S.Variable("x"), act_type="tanh")
    location = {"x": rng.normal(size=(20, 30))}  # 600 elements: random directions
    check_numeric_gradient(net, location)
    _planted(monkeypatch, element_only=False)
    with pytest.raises(AssertionError, match="gradient of 'x' is wrong: along a random direction"):
        check_numeric_gradient(net, location)


@pytest.mark.slow  # 4 s; CI runs -m slow
def test_loss_outputs_need_their_loss_and_labels_are_skipped(rng):
    net = S.SoftmaxOutput(S.FullyConnected(S.Variable("data"), name="fc", num_hidden=4), name="out")
    location = {"data": rng.normal(size=(3, 5)), "fc_weight": rng.normal(size=(4, 5)), "fc_bias": np.zeros(4),
                "out_label": np.array([0.0, 3.0, 1.0])}
    with pytest.raises(ValueError, match=r"output 'out_output' is a loss output.*losses=\{'out_output'"):
        check_numeric_gradient(net, location)
    errors = check_numeric_gradient(net, location, losses={
        "out_output": lambda v, p: oracles.cross_entropy(p, v["out_label"])})
    assert sorted(errors) == ["data", "fc_bias", "fc_weight"]  # the label takes no gradient
    with pytest.raises(ValueError, match=r"grad_nodes \['nope'\] are not arguments"):
        check_numeric_gradient(net, location, grad_nodes=["nope"])


def test_assert_almost_equal_at_its_bounds():
    x = np.array([0.5, -2.0, 3.0])
    assert_almost_equal(x, x.copy(), rtol=0, atol=0)  # zero tolerances: exact equality passes
    with pytest.raises(AssertionError, match="differ in 1 of 3"):
        assert_almost_equal(x + [0, 0, 1e-15], x, rtol=0, atol=0)
    inf = np.array([np.inf, -np.inf, 1.0])
    assert_almost_equal(inf, inf.copy())  # equal infinities are equal
    for wrong in ([np.inf, np.inf, 1.0], [1e300, -np.inf, 1.0], [np.inf, -np.inf, np.inf]):
        with pytest.raises(AssertionError, match="differ in 1 of 3"):
            assert_almost_equal(np.array(wrong), inf)
    one_nan = np.array([np.nan, 1.0])
    assert_almost_equal(one_nan, one_nan.copy(), equal_nan=True)
    for a, b in ((one_nan, np.array([1.0, 1.0])), (np.array([1.0, 1.0]), one_nan)):
        with pytest.raises(AssertionError, match="differ in 1 of 2"):  # NaN on one side only
            assert_almost_equal(a, b, equal_nan=True)
    # The lower-precision side sets the default tolerance, whatever the other side's dtype.
    assert_almost_equal(torch.tensor([1], dtype=torch.int64), torch.tensor([1.001], dtype=torch.float16))
    with pytest.raises(AssertionError, match=r"\(float32\)"):
        assert_almost_equal(torch.tensor([1], dtype=torch.int64), torch.tensor([1.001], dtype=torch.float32))


def test_assert_almost_equal_shows_the_five_worst_and_the_largest_difference():
    a = np.zeros(9)
    b = np.arange(1.0, 10.0)  # every element differs, the last most
    with pytest.raises(AssertionError) as info:
        assert_almost_equal(a, b, names=("got", "want"))
    text = str(info.value)
    assert "differ in 9 of 9 elements" in text and "largest difference 9;" in text
    shown = [line for line in text.splitlines() if line.startswith("  at ")]
    assert [line.split(":")[0].strip() for line in shown] == ["at (8,)", "at (7,)", "at (6,)", "at (5,)", "at (4,)"]


def test_numeric_gradient_reports_the_largest_relative_error(monkeypatch, rng):
    """A backward 10% too large everywhere, let through by rtol=0.2: the error reported is
    |1.1 g - g| / max(|1.1 g|, |g|) = 1/11, in both modes. (The factor 100 makes the
    gradients large, so that a tolerance not proportional to them would fail.)"""
    net = S.Activation(S.Variable("x"), act_type="sigmoid") * 100
    small, large = {"x": rng.normal(size=(2, 3))}, {"x": rng.normal(size=(10, 10))}
    _planted(monkeypatch, element_only=False)
    for location in (small, large):
        errors = check_numeric_gradient(net, location, rtol=0.2)
        assert errors["x"] == pytest.approx(1 / 11, rel=1e-5)


def test_numeric_gradient_mode_switches_at_max_jacobian_elements(monkeypatch, rng):
    net = S.Activation(S.Variable("x"), act_type="softrelu")
    location = {"x": rng.normal(size=(2, 3))}
    _planted(monkeypatch, element_only=True)
    with pytest.raises(AssertionError, match="differ in 1 of 6 elements"):  # 6 <= 6: element by element
        check_numeric_gradient(net, location, max_jacobian_elements=6)
    with pytest.raises(AssertionError, match="along a random direction"):
        check_numeric_gradient(net, location, max_jacobian_elements=5)


def test_numeric_gradient_allows_for_rounding_in_a_large_objective(rng):
    """f = sum(head * x * y) near 1e8: its central differences carry rounding errors of
    about ulp(1e8) / 2 eps ~ 1e-2, larger than the gradient along y[1] (~1e-3). The check
    widens atol by that noise instead of failing a correct backward."""
    net = S.Variable("x") * S.Variable("y")
    location = {"x": np.array([1e8, 1e-3]), "y": np.array([1.0, 1.0])}
    errors = check_numeric_gradient(net, location)
    assert set(errors) == {"x", "y"}


@pytest.mark.slow  # 4.5 s
def test_loss_functions_can_be_given_as_a_list_in_output_order(rng):
    fc = S.FullyConnected(S.Variable("data"), name="fc", num_hidden=4)
    net = S.Group([S.SoftmaxOutput(fc, name="out"), S.Activation(fc, act_type="tanh", name="feature")])
    location = {"data": rng.normal(size=(3, 5)), "fc_weight": rng.normal(size=(4, 5)), "fc_bias": rng.normal(size=4),
                "out_label": np.array([0.0, 3.0, 1.0])}
    errors = check_numeric_gradient(net, location, losses=[lambda v, p: oracles.cross_entropy(p, v["out_label"]),
                                                           None])
    assert sorted(errors) == ["data", "fc_bias", "fc_weight"]


def _aux_scale_forward(a):
    return ops.elementwise.plan_binary_forward("mul", a.inputs[0], a.inputs[1], a.outputs[0])


def _aux_scale_backward(a):
    return ops.elementwise.plan_binary_backward("mul", a.out_grads[0], a.inputs[0], a.inputs[1], a.in_grads[0], None,
                                                a.accumulate[0], False)


@pytest.fixture
def aux_scale():
    register(OpDef(name="AuxScale", doc="data * scale, the scale an auxiliary state (updated, not trained)",
                   params=[], input_names=("data", "scale"), infer_shape=same_shape_everywhere(["data", "scale"]),
                   forward=_aux_scale_forward, backward=_aux_scale_backward,
                   backward_needs=lambda params, epilogue: ((0, 1), ()), aux_inputs=lambda params: {"scale"},
                   no_grad_inputs=lambda params: {"scale"}))
    yield
    unregister("AuxScale")


def test_auxiliary_states_reach_the_checks(aux_scale, rng):
    net = S.AuxScale(S.Variable("data"), name="a")
    assert net.list_arguments() == ["data"] and net.list_auxiliary_states() == ["a_scale"]
    x, scale = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    check_symbolic_forward(net, [x], [x * scale], aux_states={"a_scale": scale})
    dy = rng.normal(size=(3, 4))
    check_symbolic_backward(net, [x], [dy], {"data": dy * scale}, aux_states={"a_scale": scale})
    assert set(check_numeric_gradient(net, [x], aux_states={"a_scale": scale})) == {"data"}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(2, 3), (20, 30)])  # the full Jacobian, random directions
def test_numeric_gradient_in_other_dtypes_passes_right_and_catches_wrong(dtype, shape, monkeypatch, rng):
    """MXNet's ``dtype=``: bound in that dtype, with its default step and tolerances; a
    backward 50% off is still caught (10% is within bfloat16's rounding of f)."""
    net = S.Activation(S.Variable("x"), act_type="tanh") * 2.0
    location = {"x": rng.normal(size=shape)}
    errors = check_numeric_gradient(net, location, dtype=dtype)
    assert set(errors) == {"x"}
    op = REGISTRY["Activation"]
    correct = op.backward
    monkeypatch.setattr(op, "backward", lambda a: correct(a) + ops.elementwise.plan_scalar_forward(
        "mul", a.in_grads[0], 1.5, a.in_grads[0]))
    with pytest.raises(AssertionError, match="gradient of 'x'"):
        check_numeric_gradient(net, location, dtype=dtype)


def test_mxnet_test_helpers():
    np.random.seed(3)
    shape = ts.test_utils.rand_shape_nd(4, dim=5)
    assert len(shape) == 4 and all(1 <= d <= 5 for d in shape)
    assert all(0 <= d <= 2 for d in ts.test_utils.rand_shape_nd(50, dim=2, allow_zero_size=True))
    assert len(ts.test_utils.rand_shape_2d()) == 2 and len(ts.test_utils.rand_shape_3d()) == 3
    x = ts.test_utils.rand_ndarray((3, 4), dtype="float64")
    assert x.dtype == torch.float64 and x.shape == (3, 4) and 0 <= float(x.min()) and float(x.max()) < 1
    assert ts.test_utils.same(x, x.clone()) and not ts.test_utils.same(x, x + 1)
    assert ts.test_utils.almost_equal(x, x + 1e-13) and not ts.test_utils.almost_equal(x, x + 1e-3)
    with pytest.raises(ValueError, match="dense tensors only"):
        ts.test_utils.rand_ndarray((2,), stype="csr")
    # the default context, chosen and restored
    automatic = ts.test_utils.default_context()
    try:
        ts.test_utils.set_default_context(ts.cpu(3))
        assert ts.test_utils.default_context() == ts.cpu(3)
        assert ts.mod.Module(S.Variable("data") * 2.0, label_names=()).context == ts.cpu(3)
    finally:
        ts.test_utils.set_default_context(None)
    assert ts.test_utils.default_context() == automatic
    with pytest.raises(ts.BindError, match="set_default_context: expected"):
        ts.test_utils.set_default_context("gpu")


def test_environment_sets_and_restores(monkeypatch):
    import os

    monkeypatch.setenv("TS_KEPT", "before")
    monkeypatch.delenv("TS_NEW", raising=False)
    with ts.test_utils.environment({"TS_KEPT": None, "TS_NEW": "1"}):
        assert "TS_KEPT" not in os.environ and os.environ["TS_NEW"] == "1"
    assert os.environ["TS_KEPT"] == "before" and "TS_NEW" not in os.environ
    with pytest.raises(RuntimeError):
        with ts.test_utils.environment("TS_KEPT", "inside"):
            assert os.environ["TS_KEPT"] == "inside"
            raise RuntimeError("restored all the same")
    assert os.environ["TS_KEPT"] == "before"
    with pytest.raises(ValueError, match="TS_X=1 must be a string or None"):
        with ts.test_utils.environment("TS_X", 1):
            pass
