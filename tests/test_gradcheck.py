"""Float64 finite-difference gradient checks on the real kernels: every operator case, and
composed graphs, including values used twice (gradients accumulated inside one graph)."""

import pytest
from gradcheck import check_gradients
from operator_cases import CASES, REPEATS, SPLIT_ROWS
from oracles import cross_entropy
from tritonsym.ops import softmax as softmax_kernels

import tritonsym as ts

S = ts.sym


# Operators through which no gradient flows (their data's is 0, which test_operators.py checks):
# no output of theirs takes a head gradient, so there is nothing to difference.
# The logical operators step where an operand crosses 0, which their cases hold: no difference there.
NO_GRADIENT = {"BlockGrad", "zeros_like", "ones_like", "shape_array", "size_array", "all_finite",
               "multi_all_finite", "_contrib_index_array", "ravel_multi_index", "unravel_index", "argmax",
               "argmin",
               "argmax_channel", "one_hot", "argsort",
               *(f"{prefix}{kind}{suffix}" for kind in ("logical_and", "logical_or", "logical_xor")
                 for prefix, suffix in (("_", ""), ("_", "_scalar"), ("broadcast_", "")))}
# topk returning indices or a mask (its values carry a gradient); arange_like alone; the
# categories multinomial draws; the straight-through estimators and the gradient multiplier,
# whose gradient is by design not the derivative (test_contrib_elementwise.py checks theirs).
NO_GRADIENT_CASES = {"topk_indices_flattened", "topk_mask_first_axis", "arange_like_repeat",
                     "multinomial_one_positive_weight_per_row", "_linalg_slogdet_sign", "round_ste", "sign_ste",
                     "gradient_reversal"}


# Checked under -m slow only (CI runs it): every operator's cases past its first
# (operator_cases.REPEATS; test_operators.py checks each against its oracle in the quick run),
# and all of the linalg, RNN, CTCLoss, ROIAlign, PSROIPooling and deformable convolution
# cases, whose float64 checks take seconds each (the quick run still checks their gradients
# against the oracles' in test_operators.py).
SLOW_CASES = REPEATS | {c.id for c in CASES
                        if c.op.startswith("_linalg_") or c.op in ("RNN", "CTCLoss", "_contrib_ROIAlign",
                                                                   "_contrib_PSROIPooling")
                        or "DeformableConvolution" in c.op}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow if c.id in SLOW_CASES else ())
                                  for c in CASES if c.op not in NO_GRADIENT and c.id not in NO_GRADIENT_CASES],
                         ids=lambda c: c.id)
def test_operator(case, rng):
    check_gradients(case.build(), case.inputs(rng), [case.loss], rng, no_grad=case.no_grad)


@pytest.mark.slow  # the split rows' kernels are checked in float32 and bfloat16 by the quick run
@pytest.mark.parametrize("case", [c for c in CASES if c.id in ("softmax_axis-1", "log_softmax_axis1", "softmax_output",
                                                              "softmax_output_valid_ignore",
                                                              "softmax_output_multi_output")], ids=lambda c: c.id)
def test_softmax_with_rows_split_across_programs(case, rng, monkeypatch):
    """The split-row kernels (partials, then combine and write) in a bound network."""
    for name, value in SPLIT_ROWS:
        monkeypatch.setattr(softmax_kernels, name, value)
    check_gradients(case.build(), case.inputs(rng), [case.loss], rng, no_grad=case.no_grad)


def test_block_grad_stops_the_gradient(rng):
    x = S.Variable("x")
    net = S.MakeLoss(S.BlockGrad(x * 2.0) + x)  # only the direct path carries a gradient
    exe = net.simple_bind(ts.cpu(), x=(3, 4), type_dict={"x": "float64"})
    exe.forward(is_train=True, x=rng.normal(size=(3, 4)))
    exe.backward()
    assert (exe.grad_dict["x"].cpu().numpy() == 1.0).all()


def _values(rng, **shapes):
    return {n: rng.normal(size=s) for n, s in shapes.items()}


def test_mlp_with_fused_activations(rng):
    net = S.FullyConnected(S.Variable("data"), num_hidden=9, name="fc1")
    net = S.Activation(net, act_type="tanh")
    net = S.FullyConnected(net, num_hidden=6, name="fc2")
    net = S.LeakyReLU(net, act_type="elu", slope=0.5)
    net = S.FullyConnected(net, num_hidden=4, name="fc3")
    net = S.SoftmaxOutput(net, name="out")
    values = _values(rng, data=(7, 5), fc1_weight=(9, 5), fc1_bias=(9,), fc2_weight=(6, 9), fc2_bias=(6,),
                     fc3_weight=(4, 6), fc3_bias=(4,))
    values["out_label"] = rng.integers(0, 4, 7).astype(float)
    check_gradients(net, values, [lambda v, p: cross_entropy(p, v["out_label"])], rng, no_grad=["out_label"])


@pytest.mark.parametrize("expression", [
    lambda a, b: a + a,
    lambda a, b: a * a,
    lambda a, b: a * b + a,
    lambda a, b: (a - b) / (b * b + 1.0),
    lambda a, b: 2.0 - a / 3.0 + (b ** 2) * 0.5 - (-a),
    lambda a, b: S.exp(S.square(a) * -0.1) * S.sqrt(S.abs(b) + 1.0) + S.log(S.reciprocal(S.abs(a) + 2.0)),
], ids=["a+a", "a*a", "a*b+a", "quotient", "scalars", "unary"])
def test_arithmetic_with_shared_inputs(rng, expression):
    a, b = S.Variable("a"), S.Variable("b")
    net = expression(a, b)
    values = {n: v for n, v in _values(rng, a=(4, 5), b=(4, 5)).items() if n in net.list_arguments()}
    check_gradients(net, values, [None], rng)


def test_shared_weight_and_residual(rng):
    """One weight variable used by two FullyConnected layers, and a residual connection:
    each gradient sums its contributions."""
    x, w = S.Variable("x"), S.Variable("w")
    h = S.FullyConnected(x, weight=w, num_hidden=6, no_bias=True, name="first")
    h = S.Activation(h, act_type="sigmoid") + x
    y = S.FullyConnected(h, weight=w, num_hidden=6, no_bias=True, name="second")
    check_gradients(S.MakeLoss(S.square(y)), _values(rng, x=(5, 6), w=(6, 6)),
                    [lambda v, out: out.sum()], rng)


def test_group_of_loss_and_ordinary_output(rng):
    data = S.Variable("data")
    fc = S.FullyConnected(data, num_hidden=3, name="fc")
    net = S.Group([S.LinearRegressionOutput(fc, name="reg"), S.softmax(fc, name="sm")])
    values = _values(rng, data=(4, 2), fc_weight=(3, 2), fc_bias=(3,), reg_label=(4, 3))
    check_gradients(net, values, [lambda v, out: 0.5 / 3 * ((out - v["reg_label"]) ** 2).sum(), None], rng,
                    no_grad=["reg_label"])


def test_composed_symbols(rng):
    net = S.FullyConnected(S.Variable("data"), num_hidden=4, name="fc1")
    net2 = S.Activation(S.FullyConnected(S.Variable("data2"), num_hidden=5, name="net2"), act_type="softrelu")
    composed = net(data=S.Flatten(net2), name="compose")
    values = _values(rng, data2=(3, 2), net2_weight=(5, 2), net2_bias=(5,), fc1_weight=(4, 5), fc1_bias=(4,))
    check_gradients(composed, values, [None], rng)


def test_the_check_catches_a_wrong_gradient(rng, monkeypatch):
    """A planted bug in a backward (sigmoid's derivative 10% too large) must fail the check."""
    from tritonsym import ops
    from tritonsym.operators import REGISTRY

    op = REGISTRY["Activation"]
    correct = op.backward

    def ten_percent_off(a):
        grad = a.in_grads[0]
        return correct(a) + ops.elementwise.plan_scalar_forward("mul", grad, 1.1, grad)

    monkeypatch.setattr(op, "backward", ten_percent_off)
    with pytest.raises(AssertionError, match="gradient of 'x' is wrong"):
        check_gradients(S.Activation(S.Variable("x"), act_type="sigmoid"), _values(rng, x=(3, 4)), [None], rng)
