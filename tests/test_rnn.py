"""ts.rnn (MXNet's mx.rnn): cells unrolled into graphs that bind, infer their begin states'
batch size, train under BucketingModule on BucketSentenceIter's batches, and keep MXNet's
names. (Values and gradients against MXNet: the recorded rnn/ cases.)"""

from __future__ import annotations

import pytest
import torch

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


def test_begin_states_learn_their_batch_size_and_an_unsized_one_is_refused():
    cell = ts.rnn.LSTMCell(5, prefix="l_")
    outputs, states = cell.unroll(4, S.Variable("x"), layout="TNC", merge_outputs=True)
    assert cell.state_shape == [(0, 5), (0, 5)]
    assert S.Group([outputs, *states]).infer_shape(x=(4, 3, 2))[1] == [(4, 3, 5), (3, 5), (3, 5)]
    with pytest.raises(ShapeError, match=r"bind: cannot infer every size of _zeros\d+ \(_zeros\) output 0: "
                                         r"\(0, 3\)"):
        S.zeros((0, 3)).simple_bind(ts.cpu())


def test_states_fed_as_variables_and_a_list_of_steps():
    cell = ts.rnn.GRUCell(3, prefix="g_")
    begin = cell.begin_state(func=S.Variable)
    assert [b.name for b in begin] == ["g_begin_state_0"]
    steps = [S.Variable(f"x{t}") for t in range(2)]
    outputs, states = cell.unroll(2, steps, begin_state=begin, merge_outputs=False)
    assert len(outputs) == 2 and outputs[1].name == "g_t1_out" and states[0].name == "g_t1_out"
    assert "g_begin_state_0" in outputs[1].list_arguments()
    with pytest.raises(ValueError, match="unroll: length=3 but 2 steps were given"):
        cell.unroll(3, steps)


def test_unpack_and_pack_weights_round_trip_on_torch_arrays():
    cell = ts.rnn.LSTMCell(2, prefix="p_")
    args = {"p_i2h_weight": torch.arange(24.0).reshape(8, 3), "p_i2h_bias": torch.arange(8.0),
            "p_h2h_weight": torch.arange(16.0).reshape(8, 2), "p_h2h_bias": torch.arange(8.0)}
    unpacked = cell.unpack_weights(args)
    assert unpacked["p_i2h_f_bias"].tolist() == [2.0, 3.0]  # gates in MXNet's order: i, f, c, o
    again = cell.pack_weights(unpacked)
    assert all(torch.equal(again[k], v) for k, v in args.items())


def test_lstm_bias_starts_the_forget_gate_open():
    bias = torch.empty(12)
    # as Module initializes it: the variable's init attribute (LSTMCell sets it) wins over the name's rule
    attrs = ts.rnn.LSTMCell(3, prefix="l_").params.get("i2h_bias").attr_dict()["l_i2h_bias"]
    ts.init.Xavier()("l_i2h_bias", bias, attrs)
    assert attrs["__init__"] == '["lstmbias", {"forget_bias": 1.0}]'
    assert bias.tolist() == [0.0] * 3 + [1.0] * 3 + [0.0] * 6


def test_encode_sentences_refuses_an_unknown_token_without_unknown_token():
    codes, vocab = ts.rnn.encode_sentences([["a", "b"], ["b", "c"]], invalid_label=0, start_label=1)
    assert codes == [[1, 2], [2, 3]] and vocab == {"\n": 0, "a": 1, "b": 2, "c": 3}
    with pytest.raises(ts.ParamError, match="encode_sentences: unknown token 'd'"):
        ts.rnn.encode_sentences([["d"]], vocab=dict(vocab))


def test_bucket_sentence_iter_pads_shifts_and_repeats_under_a_seed():
    sentences = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [1, 2], [3, 4, 5], [1, 2, 3, 4, 5, 6]]
    ts.random.seed(3)
    it = ts.rnn.BucketSentenceIter(sentences, 2, buckets=[2, 4], invalid_label=0, layout="TN")
    assert it.buckets == [2, 4] and it.discarded == 1 and it.default_bucket_key == 4
    assert it.provide_data[0].shape == (4, 2)
    batches = list(it)
    assert sorted(b.bucket_key for b in batches) == [2, 4]
    for b in batches:
        data, label = b.data[0].T, b.label[0].T  # back to (batch, length)
        assert torch.equal(label[:, :-1], data[:, 1:]) and (label[:, -1] == 0).all()
    ts.random.seed(3)
    again = ts.rnn.BucketSentenceIter(sentences, 2, buckets=[2, 4], invalid_label=0, layout="TN")
    assert [torch.equal(a.data[0], b.data[0]) for a, b in zip(again, batches)] == [True, True]
    with pytest.raises(ts.ParamError, match="no sentence length is shared by batch_size=5"):
        ts.rnn.BucketSentenceIter(sentences, 5)


def _language_model(vocab: int, hidden: int):
    stack = ts.rnn.SequentialRNNCell()
    stack.add(ts.rnn.LSTMCell(hidden, prefix="lstm_l0_"))

    def sym_gen(length):
        data, label = S.Variable("data"), S.Variable("softmax_label")
        embed = S.Embedding(data, input_dim=vocab, output_dim=hidden, name="embed")
        stack.reset()
        outputs, _ = stack.unroll(length, embed, merge_outputs=True)
        pred = S.FullyConnected(S.Reshape(outputs, shape=(-1, hidden)), num_hidden=vocab, name="pred")
        return S.SoftmaxOutput(pred, S.Reshape(label, shape=(-1,)), name="softmax"), ["data"], ["softmax_label"]
    return sym_gen


@pytest.mark.slow
def test_an_lstm_language_model_learns_its_sentences_under_bucketing():
    # Every token in one sentence only, so its successor (0 after the last) is fixed: a model
    # that reads its input learns every label; lengths 3 and 5 fill two buckets.
    ts.random.seed(0)
    starts = [(1, 3), (4, 3), (7, 3), (10, 3), (13, 5), (18, 5), (23, 5), (28, 5)]
    sentences = [list(range(s, s + n)) for s, n in starts] * 2
    it = ts.rnn.BucketSentenceIter(sentences, 4, buckets=[3, 5], invalid_label=0)
    mod = ts.mod.BucketingModule(_language_model(33, 16), default_bucket_key=it.default_bucket_key)
    metric = ts.metric.Accuracy()
    mod.fit(it, num_epoch=8, optimizer="adam", optimizer_params={"learning_rate": 0.1},
            initializer=ts.init.Xavier(), eval_metric=metric)
    it.reset()
    metric.reset()
    mod.score(it, metric)
    assert metric.get()[1] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("fused", [False, True])
def test_the_bucketing_example_trains_on_a_text_file(fused):
    """examples/lstm_bucketing.py on the README: the perplexity falls every epoch (547, 488, 423
    on 2026-12-06; fused: 548, 475, 406 in 13 s where the cells took 33 s; a model that learned
    nothing stays at about the 548 words)."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, str(root / "examples" / "lstm_bucketing.py"), "--text",
                             str(root / "README.md"), "--epochs", "3", "--sentences", "96",
                             *(["--fused"] if fused else [])],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    perplexities = [float(line.split("=")[1]) for line in result.stderr.splitlines() if "Train-perplexity" in line]
    assert len(perplexities) == 3 and perplexities[0] > perplexities[1] > perplexities[2], result.stderr
    assert perplexities[2] < 0.85 * perplexities[0], result.stderr
