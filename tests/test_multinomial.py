"""multinomial (``ts.sym.random.multinomial``, the operator ``_sample_multinomial``): draws
follow the weights (chi-squared at a fixed seed, so the test cannot flake), in every float
dtype, over rows wider than a block of categories; weights that do not sum to 1, zero
weights, invalid rows; the log-probability and its gradient (REINFORCE), which trains a
bandit; MXNet's outputs, names and defaults."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerances import DTYPES_FLOAT32_FIRST
from tritonsym.ops import multinomial as kernels

import tritonsym as ts

S = ts.sym


@pytest.fixture(autouse=True)
def _seeded():
    ts.random.seed(99)


def _draws(p, draws, dtype=torch.float64, get_prob=True, **params):
    net = S.random.multinomial(S.Variable("p"), shape=(draws,), get_prob=get_prob, **params)
    exe = net.simple_bind(ts.cpu(), p=np.shape(p), type_dict={"p": dtype},
                          grad_req="write" if get_prob else "null")
    outs = exe.forward(is_train=get_prob, p=p)
    return exe, [o.clone() for o in outs]


def _chi2(counts, expected) -> float:
    keep = expected > 0
    assert not counts[~keep].any()  # a category of weight 0 is never drawn
    return float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())


@pytest.mark.parametrize("dtype", DTYPES_FLOAT32_FIRST)  # 3-4 s each: the other dtypes under -m slow
def test_draws_follow_the_weights(dtype):
    p = np.array([[0.1, 0.0, 0.2, 0.3, 0.4], [0.5, 0.25, 0.125, 0.0625, 0.0625]])
    _, (index, log_p) = _draws(p, 2000, dtype)
    weights = torch.tensor(p).to(dtype).to(torch.float64).numpy()  # as the kernel sees them
    for row in range(2):
        counts = np.bincount(index[row].numpy(), minlength=5)
        assert _chi2(counts, 2000 * weights[row] / weights[row].sum()) < 18.5  # 0.1% of chi-squared, 4 d.o.f.
    np.testing.assert_allclose(log_p.to(torch.float64).numpy(),
                               np.log(np.take_along_axis(weights, index.long().numpy(), 1)), rtol=1e-2)


@pytest.mark.slow  # 4 s; the quick run keeps the draws-follow-the-weights checks
def test_wide_rows_unnormalised_weights_and_every_category():
    """600 categories (several blocks of the loop), weights summing to about 150: each drawn
    as often as weight / total says (the categories grouped into 10 bins for the test)."""
    rng = np.random.default_rng(0)
    p = rng.uniform(0.0, 1.0, (1, 600))
    p[0, 300:] = 0.0  # the second half is never drawn
    _, (index,) = _draws(p, 3000, torch.float32, get_prob=False)
    drawn = index[0].numpy()
    assert drawn.min() >= 0 and drawn.max() < 300
    weights = torch.tensor(p, dtype=torch.float32).double().numpy()[0]
    binned = np.bincount(drawn // 30, minlength=20)[:10]
    expected = 3000 * np.add.reduceat(weights[:300], np.arange(0, 300, 30)) / weights.sum()
    assert _chi2(binned, expected) < 27.9  # 0.1% of chi-squared, 9 d.o.f.


def test_invalid_rows_draw_minus_one_with_nan_log_probability_and_gradient():
    p = np.array([[0.5, 0.5, 0.0], [0.2, np.nan, 0.8], [0.7, -0.1, 0.4], [0.0, 0.0, 0.0], [np.inf, 1.0, 0.0]])
    exe, (index, log_p) = _draws(p, 8)
    assert (index[0] >= 0).all() and (index[1:] == -1).all()
    assert not log_p[0].isnan().any() and log_p[1:].isnan().all()
    exe.backward([torch.zeros(5, 8, dtype=torch.int32), torch.ones(5, 8, dtype=torch.float64)])
    grad = exe.grad_dict["p"]
    assert not grad[0].isnan().any() and grad[1:].isnan().all()
    embedded = S.Embedding(S.random.multinomial(S.Variable("p"), get_prob=False), input_dim=3, output_dim=2,
                           name="emb")
    rows = embedded.simple_bind(ts.cpu(), p=(5, 3), type_dict={"p": "float64"}).forward(p=p,
                                                                                      emb_weight=np.ones((3, 2)))[0]
    assert not rows[0].isnan().any() and rows[1:].isnan().all()  # -1 is no row: Embedding says NaN


def test_the_gradient_sums_each_categorys_head_gradients_over_its_weight(rng):
    p = np.array([[0.3, 0.3, 0.4], [0.9, 0.05, 0.05]])
    exe, (index, _) = _draws(p, 50)
    head = rng.normal(size=(2, 50))
    exe.backward([torch.zeros(2, 50, dtype=torch.int32), torch.from_numpy(head)])
    want = np.zeros((2, 3))
    for row in range(2):
        np.add.at(want[row], index[row].numpy(), head[row])
    np.testing.assert_allclose(exe.grad_dict["p"].numpy(), want / p, rtol=1e-12)


def test_each_forward_draws_anew_and_the_seed_repeats_them():
    p = np.full((2, 6), 1 / 6)
    net = S.random.multinomial(S.Variable("p"), shape=(30,), get_prob=False)
    exe = net.simple_bind(ts.cpu(), p=(2, 6), type_dict={"p": "float64"})
    first = [exe.forward(p=p)[0].clone() for _ in range(2)]
    assert not torch.equal(first[0], first[1])
    ts.random.seed(99)
    assert torch.equal(exe.forward(p=p)[0], first[0])


@pytest.mark.slow  # 5 s of training
def test_reinforce_trains_a_bandit():
    """Softmax over learned logits, 64 draws a step, the reward as the log-probability's head
    gradient (minus: gradient descent on -reward * log p): the best of 4 arms wins."""
    reward = np.array([0.1, 0.2, 1.0, 0.3])
    logits = S.Variable("logits")
    net = S.random.multinomial(S.softmax(logits), shape=(64,))
    exe = net.simple_bind(ts.cpu(), logits=(1, 4), type_dict={"logits": "float64"})
    exe.arg_dict["logits"][:] = 0.0
    for _ in range(40):
        index, _ = exe.forward(is_train=True)
        advantage = reward[index.long().numpy()] - reward[index.long().numpy()].mean()
        exe.backward([torch.zeros(1, 64, dtype=torch.int32), torch.from_numpy(-advantage / 64)])
        exe.arg_dict["logits"] -= 2.0 * exe.grad_dict["logits"]
    probabilities = torch.softmax(exe.arg_dict["logits"], -1)[0]
    assert probabilities.argmax() == 2 and probabilities[2] > 0.8


def test_outputs_names_shapes_and_dtypes_are_mxnets():
    data = S.Variable("p")
    both = S.random.multinomial(data)  # MXNet's function asks for the log-probability by default
    first, second = both.list_outputs()
    assert first.startswith("_sample_multinomial") and first.endswith("_output0") and second.endswith("_output1")
    assert both.infer_shape(p=(4,))[1] == [(1,), (1,)] and both.infer_shape(p=(2, 3, 4))[1] == [(2, 3), (2, 3)]
    assert both.infer_type(p="float16")[1] == [torch.int32, torch.float16]
    one = S.sample_multinomial(data, shape=3, dtype="float32")  # the operator's default: one output
    assert len(one.list_outputs()) == 1 and one.infer_shape(p=(2, 4))[1] == [(2, 3)]
    assert one.infer_type(p="float64")[1] == [torch.float32]


def test_kernel_errors_name_the_function_and_values():
    with pytest.raises(kernels.KernelArgumentError, match="multinomial: index of shape \\(5,\\) holds no whole "
                                                          "number of draws for each of the 2 rows of p"):
        kernels.plan_multinomial(torch.ones(2, 3), torch.empty(5, dtype=torch.int32), torch.zeros(2, dtype=torch.int64),
                                 salt=0)


def test_the_drawn_categories_feed_an_embedding_while_the_log_probability_trains():
    """The integer output carries no gradient: no head-gradient buffer, no zero-filled
    scratch of an integer dtype (the planner made one before, and bind failed on it), while
    the weights' gradient comes through the log-probability."""
    drawn = S.random.multinomial(S.Variable("p"), shape=(4,))
    net = S.Group([S.Embedding(drawn[0], input_dim=3, output_dim=2, name="emb"), drawn[1]])
    exe = net.simple_bind(ts.cpu(), p=(2, 3), type_dict={"p": "float64"})
    assert not any(v.kind in ("head_grad", "temp") and v.dtype.startswith("int") for v in exe.memory.values)
    p = np.array([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]])
    outs = exe.forward(is_train=True, p=p, emb_weight=np.arange(6.0).reshape(3, 2))
    assert outs[0].shape == (2, 4, 2) and torch.equal(outs[0][1], torch.tensor([[2.0, 3.0]] * 4, dtype=torch.float64))
    exe.backward([torch.ones(2, 4, 2, dtype=torch.float64), torch.ones(2, 4, dtype=torch.float64)])
    assert exe.grad_dict["p"][1].tolist() == [0.0, 4.0, 0.0]  # four draws of 1, over its weight 1
    assert exe.grad_dict["emb_weight"].sum().item() == 16.0  # 8 rows of two ones
