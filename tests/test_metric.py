"""Metrics against values worked out by hand, accumulation over batches, names, errors."""

import math

import numpy as np
import pytest
import torch
from property_settings import given, property_settings, settings, st

import tritonsym as ts
from tritonsym import ParamError

P = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3], [0.4, 0.35, 0.25]])
Y = np.array([0, 2, 0, 1])


def _value(metric, labels=Y, preds=P):
    m = ts.metric.create(metric) if isinstance(metric, str) else metric
    m.update([labels], [preds])
    return m.get()[1]


def test_classification_by_hand():
    assert _value("acc") == 0.5
    assert _value(ts.metric.TopKAccuracy(top_k=2)) == 0.75  # sample 2: label 0 is 3rd of 3
    assert _value("ce") == pytest.approx(-(math.log(0.7) + math.log(0.6) + math.log(0.2) + math.log(0.35)) / 4)
    assert ts.metric.TopKAccuracy(top_k=2).name == "top_k_accuracy_2"


def test_accuracy_accepts_torch_half_and_class_index_predictions():
    assert _value("acc", torch.tensor(Y), torch.tensor(P, dtype=torch.bfloat16)) == 0.5
    assert _value("acc", Y, np.array([0, 2, 1, 1])) == 0.75


def test_regression_by_hand():
    label, pred = np.array([[1.0, 2.0], [3.0, 5.0]]), np.array([[1.5, 2.0], [2.0, 5.0]])
    assert _value("mse", label, pred) == pytest.approx((0.25 / 2 + 1 / 2) / 2)
    assert _value("mae", label, pred) == pytest.approx((0.5 / 2 + 1 / 2) / 2)
    assert _value("rmse", label, pred) == pytest.approx(math.sqrt((0.25 / 2 + 1 / 2) / 2))
    assert _value("mse", np.array([1.0, 2.0]), np.array([[1.0], [4.0]])) == pytest.approx(2.0)


def test_f1_binary_and_macro():
    pred = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.4, 0.6]])
    label = np.array([1, 1, 0, 0, 1])  # tp 2, fp 1, fn 1
    assert _value("f1", label, pred) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    macro = ts.metric.F1(average="macro")
    # arg-max [0, 2, 1, 0] vs [0, 2, 0, 1]. class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 0 -> 0; class 2: 1
    assert _value(macro, Y, P) == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    with pytest.raises(ParamError, match=r"average='binary' needs 2 classes and labels 0/1, got 3 classes and "
                                         r"labels in \[0, 2\]"):
        _value("f1", Y, P)
    two = P[:, :2]
    for labels, seen in (([0, 1, 1, 0], "3 classes and labels in \\[0, 1\\]"),
                         ([0, 2, 1, 0], "2 classes and labels in \\[0, 2\\]"),
                         ([0, -1, 1, 0], "2 classes and labels in \\[-1, 1\\]")):
        with pytest.raises(ParamError, match=f"needs 2 classes and labels 0/1, got {seen}"):
            _value("f1", np.array(labels), P if "3 classes" in seen else two)


def test_macro_f1_leaves_out_classes_never_labelled_or_predicted():
    """Perfect predictions over 5 of 10 classes score 1, not 0.5: an absent class says
    nothing about the classifier (scikit-learn's f1_score agrees)."""
    label = np.array([0, 1, 2, 3, 4, 4])
    assert _value(ts.metric.F1(average="macro"), label, np.eye(10)[label]) == 1.0
    assert _value("f1", np.array([0, 0]), np.array([[0.9, 0.1], [0.8, 0.2]])) == 0.0  # binary: no positives
    with pytest.raises(ParamError, match=r"f1: labels must be in \[0, 3\), got \[0, 3\]"):
        _value(ts.metric.F1(average="macro"), np.array([0, 3, 0, 1]), P)


def _macro_f1(label, guess, classes):
    """From the definition: per class present in labels or guesses, 2tp / (2tp + fp + fn)."""
    scores = []
    for c in range(classes):
        tp = np.sum((guess == c) & (label == c))
        fp, fn = np.sum((guess == c) & (label != c)), np.sum((guess != c) & (label == c))
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return np.mean(scores)


@settings(**property_settings(60))
@given(st.integers(1, 40), st.integers(2, 12), st.lists(st.integers(1, 39), max_size=4), st.integers(0, 2**31 - 1),
       st.integers(1, 13))
def test_metrics_over_any_split_into_batches_equal_their_definitions(n, classes, cuts, seed, top_k):
    """Every metric updated batch by batch (random splits, some of them empty) gives the
    value of its definition over all samples at once."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, classes, n)
    pred = rng.dirichlet(np.ones(classes), n)
    target = rng.normal(size=(n, 3))
    estimate = target + rng.normal(size=(n, 3))
    guess = pred.argmax(axis=1)
    rank = (pred > pred[np.arange(n), label][:, None]).sum(axis=1)  # classes scored above the label's
    error = estimate - target
    expected = {"acc": np.mean(guess == label), "top_k_acc": np.mean(rank < top_k),
                "ce": np.mean(-np.log(pred[np.arange(n), label] + 1e-12)), "mse": np.mean(error ** 2),
                "mae": np.mean(np.abs(error)), "rmse": np.sqrt(np.mean(error ** 2)),
                "f1": _macro_f1(label, guess, classes)}
    metrics = {"acc": ts.metric.create("acc"), "top_k_acc": ts.metric.TopKAccuracy(top_k=top_k),
               "ce": ts.metric.create("ce"), "mse": ts.metric.create("mse"), "mae": ts.metric.create("mae"),
               "rmse": ts.metric.create("rmse"), "f1": ts.metric.F1(average="macro")}
    bounds = [0, *sorted(c for c in cuts if c < n), n]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        for name, metric in metrics.items():
            if name in ("mse", "mae", "rmse"):
                metric.update([target[lo:hi]], [estimate[lo:hi]])
            else:
                metric.update([label[lo:hi]], [pred[lo:hi]])
    for name, metric in metrics.items():
        assert metric.get()[1] == pytest.approx(expected[name], rel=1e-12), name


def test_update_dict_reads_the_heads_a_metric_names():
    """MXNet's update_dict: a metric given output_names / label_names reads those, in that
    order; without them every label and output in turn; an unknown name is an error."""
    preds = {"cls_output": P, "reg_output": np.array([[1.0], [2.0], [3.0], [5.0]])}
    labels = {"cls_label": Y, "reg_label": np.array([1.0, 2.0, 3.0, 3.0])}
    mse = ts.metric.MSE(output_names=["reg_output"], label_names=["reg_label"])
    mse.update_dict(labels, preds)
    assert mse.get() == ("mse", 1.0)
    accuracy = ts.metric.Accuracy(output_names=["cls_output"], label_names=["cls_label"])
    both = ts.metric.CompositeEvalMetric([accuracy, mse])
    both.reset()
    both.update_dict(labels, preds)
    assert both.get() == (["accuracy", "mse"], [0.5, 1.0])
    unnamed = ts.metric.Accuracy()
    unnamed.update_dict({"cls_label": Y}, {"cls_output": P})
    assert unnamed.get() == ("accuracy", 0.5)
    with pytest.raises(ParamError, match=r"mse: output names \['out'\] are not among the network's outputs "
                                         r"\['cls_output', 'reg_output'\]"):
        ts.metric.MSE(output_names=["out"]).update_dict(labels, preds)
    with pytest.raises(ParamError, match=r"accuracy: label names \['y'\] are not among the network's labels"):
        ts.metric.Accuracy(label_names=["y"]).update_dict(labels, preds)


def test_an_empty_batch_adds_nothing_but_empty_labels_for_predictions_are_an_error():
    acc = ts.metric.Accuracy()
    acc.update([np.zeros(0)], [np.zeros((0, 3))])
    assert acc.num_inst == 0
    with pytest.raises(ParamError, match="accuracy: 0 labels for 4 predictions"):
        acc.update([np.zeros(0)], [P])
    with pytest.raises(ParamError, match="accuracy: 4 labels for 0 predictions"):
        acc.update([Y], [np.zeros((0, 3))])


@pytest.mark.parametrize("top_k", [0, 1.5, True])
def test_top_k_must_be_a_positive_integer(top_k):
    with pytest.raises(ParamError, match=f"top_k={top_k!r} must be an integer >= 1"):
        ts.metric.TopKAccuracy(top_k=top_k)


@pytest.mark.parametrize("top_k", [1, 2, 5])
def test_top_k_over_a_wide_vocabulary(top_k, rng):
    """1000 classes: numpy's partial sort is exact only at the position it is asked for, so
    this is where a wrong position would show (small rows it sorts whole)."""
    pred, label = rng.dirichlet(np.ones(1000), 64), rng.integers(0, 1000, 64)
    rank = (pred > pred[np.arange(64), label][:, None]).sum(axis=1)
    label[:8] = np.argsort(-pred[:8], axis=1)[np.arange(8), top_k - 1]  # some labels exactly k-th
    rank[:8] = top_k - 1
    assert _value(ts.metric.TopKAccuracy(top_k=top_k), label, pred) == np.mean(rank < top_k)


def test_edges_of_what_metrics_accept():
    """top_k=1 is accuracy; a label one past the last class is named, not an IndexError; a
    regression over single numbers (no batch dimension) is one sample."""
    assert _value(ts.metric.TopKAccuracy(top_k=1)) == _value("acc")
    with pytest.raises(ParamError, match=r"cross-entropy: labels must be in \[0, 3\), got \[0, 3\]"):
        _value("ce", np.array([0, 3, 0, 1]), P)
    mse = ts.metric.MSE()
    mse.update([np.float64(1.0)], [np.float64(3.0)])
    assert mse.get() == ("mse", 4.0) and mse.num_inst == 1


def test_accumulates_over_batches_and_resets():
    acc = ts.metric.Accuracy()
    acc.update([Y[:2]], [P[:2]])
    acc.update([Y[2:]], [P[2:]])
    assert acc.get() == ("accuracy", 0.5) and acc.num_inst == 4
    rmse = ts.metric.RMSE()
    rmse.update([np.zeros(2)], [np.array([3.0, 3.0])])
    rmse.update([np.zeros(2)], [np.array([0.0, 0.0])])
    assert rmse.get()[1] == pytest.approx(math.sqrt(4.5))  # the root of the overall mean
    acc.reset()
    assert math.isnan(acc.get()[1])


def test_composite_custom_and_create():
    comp = ts.metric.create(["acc", "ce", lambda label, pred: 1.5])
    assert isinstance(comp, ts.metric.CompositeEvalMetric)
    comp.update([Y], [P])
    names, values = comp.get()
    assert names[:2] == ["accuracy", "cross-entropy"] and values[0] == 0.5 and values[2] == 1.5
    assert dict(comp.get_name_value())["accuracy"] == 0.5
    assert comp.name == "composite" and names[2] == "custom(<lambda>)"
    comp.add("mse")
    comp.reset()
    assert all(m.num_inst == 0 for m in comp.metrics) and len(comp.metrics) == 4

    def half(label, pred):
        return 0.5

    assert ts.metric.create(half).name == "custom(half)" and ts.metric.create(half, name="h").name == "h"
    with pytest.raises(ParamError, match="unknown metric 'auc'; known names: acc"):
        ts.metric.create("auc")
    with pytest.raises(ParamError, match="2 labels for 1 predictions"):
        ts.metric.Accuracy().update([Y, Y], [P])
    with pytest.raises(ParamError, match=r"labels must be in \[0, 3\), got \[0, 7\]"):
        _value("ce", np.array([0, 7, 0, 1]), P)


# ------------------------------------------- Perplexity, NLL, Loss, PearsonCorrelation, MCC


def _probabilities(rng, rows, classes):
    p = rng.random((rows, classes)) + 0.05
    return p / p.sum(1, keepdims=True)


def test_perplexity_nll_and_loss_against_the_formulas():
    rng = np.random.default_rng(5)
    batches = [(rng.integers(0, 4, n), _probabilities(rng, n, 4)) for n in (6, 3)]
    perplexity, ignoring, nll, loss = (ts.metric.Perplexity(None), ts.metric.Perplexity(ignore_label=2),
                                       ts.metric.create("nll_loss"), ts.metric.create("loss"))
    for label, pred in batches:
        for m in (perplexity, ignoring, nll, loss):
            m.update([label], [pred])
    label = np.concatenate([b[0] for b in batches])
    picked = np.concatenate([b[1] for b in batches])[np.arange(label.size), label]
    assert perplexity.get() == ("perplexity", pytest.approx(np.exp(-np.log(picked).mean()), rel=1e-12))
    kept = label != 2
    assert ignoring.get()[1] == pytest.approx(np.exp(-np.log(picked[kept]).mean()), rel=1e-12)
    assert nll.get() == ("nll-loss", pytest.approx(-np.log(picked).mean(), rel=1e-10))  # its eps=1e-12
    assert loss.get() == ("loss", pytest.approx(np.concatenate([b[1] for b in batches]).mean(), rel=1e-12))
    # probabilities along another axis: (batch, classes, time) picked along axis 1
    seq = ts.metric.Perplexity(None, axis=1)
    pred = np.moveaxis(_probabilities(rng, 10, 3).reshape(2, 5, 3), 2, 1)
    lab = rng.integers(0, 3, (2, 5))
    seq.update([lab], [pred])
    want = np.take_along_axis(pred, lab[:, None, :], axis=1)
    assert seq.get()[1] == pytest.approx(np.exp(-np.log(want).mean()), rel=1e-12)
    with pytest.raises(ParamError, match=r"perplexity: labels must be in \[0, 4\), got \[0, 7\]"):
        ts.metric.Perplexity(None).update([np.array([0, 7])], [_probabilities(rng, 2, 4)])
    with pytest.raises(TypeError):
        ts.metric.Perplexity()  # ignore_label must be said, as in MXNet


def test_pearson_over_all_values_and_per_batch():
    rng = np.random.default_rng(6)
    batches = [(rng.normal(size=(n, 1)), rng.normal(size=(n, 1))) for n in (7, 4, 9)]
    micro, macro = ts.metric.create("pearsonr"), ts.metric.create("pearsonr", average="macro")
    for label, pred in batches:
        micro.update([label], [pred + 0.5 * label])
        macro.update([label], [pred + 0.5 * label])
    labels = np.concatenate([b[0] for b in batches]).ravel()
    preds = np.concatenate([b[1] + 0.5 * b[0] for b in batches]).ravel()
    assert micro.get()[1] == pytest.approx(np.corrcoef(preds, labels)[0, 1], rel=1e-12)
    assert macro.get()[1] == pytest.approx(np.mean([np.corrcoef((p + 0.5 * lab).ravel(), lab.ravel())[0, 1]
                                                    for lab, p in batches]), rel=1e-12)
    # running sums are centred per batch and merged: an offset of 1e8 costs only the rounding of
    # the shifted values themselves (1e8 * 2^-52 each); raw sums of squares would lose every digit
    shifted = ts.metric.create("pearsonr")
    for label, pred in batches:
        shifted.update([label + 1e8], [pred + 0.5 * label + 1e8])
    assert shifted.get()[1] == pytest.approx(micro.get()[1], rel=1e-6)


def test_mcc_over_all_samples_and_per_batch():
    rng = np.random.default_rng(7)
    batches = [(rng.integers(0, 2, n), _probabilities(rng, n, 2)) for n in (8, 5)]
    micro, macro = ts.metric.create("mcc"), ts.metric.create("mcc", average="macro")
    for label, pred in batches:
        micro.update([label], [pred])
        macro.update([label], [pred])

    def matthews(label, pred):
        guess = pred.argmax(1)
        tp, tn = ((guess == 1) & (label == 1)).sum(), ((guess == 0) & (label == 0)).sum()
        fp, fn = ((guess == 1) & (label == 0)).sum(), ((guess == 0) & (label == 1)).sum()
        factors = [f for f in (tp + fp, tp + fn, tn + fp, tn + fn) if f]
        return (tp * tn - fp * fn) / np.sqrt(np.prod(factors, dtype=float))

    label, pred = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    assert micro.get() == ("mcc", pytest.approx(matthews(label, pred), rel=1e-12))
    assert macro.get()[1] == pytest.approx(np.mean([matthews(*b) for b in batches]), rel=1e-12)
    with pytest.raises(ParamError, match=r"mcc: labels must be 0 or 1, got values in \[0, 2\]"):
        micro.update([np.array([0, 2])], [_probabilities(rng, 2, 2)])
    with pytest.raises(ParamError, match="average='mean' must be 'micro'"):
        ts.metric.MCC(average="mean")
