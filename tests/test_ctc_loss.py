"""CTCLoss (MXNet's ctc_loss) beyond the operator cases: MXNet's documented example in both
blank conventions, many channels and long labels (the kernels' channel blocks and wide
position vectors), what an impossible alignment and an unusable label or length give, and
what shape inference refuses. (Every dtype and float64 finite differences: operator_cases.py;
against MXNet 1.9.1: the recorded CTCLoss cases.)"""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch

import tritonsym as ts
from tritonsym.base import ShapeError

S = ts.sym


def _run(data, label, head=None, **params):
    names = ["data", "label", *(n for n, flag in (("data_lengths", "use_data_lengths"),
                                                  ("label_lengths", "use_label_lengths")) if params.get(flag))]
    arrays = {"data": data, "label": label, **{n: params.pop(n) for n in names[2:]}}
    net = S.ctc_loss(*(S.Variable(n) for n in names), **params)
    exe = net.simple_bind(ts.cpu(), grad_req={n: "write" if n == "data" else "null" for n in names},
                          type_dict={"data": torch.float64}, **{n: a.shape for n, a in arrays.items()})
    for name, array in arrays.items():
        exe.arg_dict[name][...] = torch.from_numpy(np.asarray(array, dtype=np.float64))
    loss = exe.forward(is_train=True)[0].numpy().copy()
    exe.backward([torch.from_numpy(np.ones(len(loss)) if head is None else head)])
    return loss, exe.grad_dict["data"].numpy()


def test_mxnets_example_gives_one_loss_in_both_blank_conventions(rng):
    """'ba', 'cbb' and 'abac' over [a, b, c]: channel 0 blank and labels padded with 0, or
    channel 3 blank and labels padded with -1 (the same activations, the blank's moved)."""
    data = rng.normal(size=(8, 3, 4))
    first = np.array([[2, 1, 0, 0], [3, 2, 2, 0], [1, 2, 1, 3]])
    last = np.array([[1, 0, -1, -1], [2, 1, 1, -1], [0, 1, 0, 2]])
    moved = np.concatenate([data[..., 1:], data[..., :1]], axis=-1)  # blank from channel 0 to channel 3
    loss_first, grad_first = _run(data, first)
    loss_last, grad_last = _run(moved, last, blank_label="last")
    np.testing.assert_allclose(loss_first, o.ctc_loss(data, first)[0], rtol=1e-12)
    np.testing.assert_allclose(loss_last, loss_first, rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([grad_last[..., 3:], grad_last[..., :3]], -1), grad_first,
                               rtol=1e-10, atol=1e-12)


def test_many_channels_and_long_labels_against_the_oracle(rng):
    """150 channels (three blocks of 64 and a tail), labels of up to 20 (41 positions: a
    vector of 64), 48 steps, lengths per sample, a head gradient per sample."""
    steps, batch, channels, labels = 48, 3, 150, 20
    data = rng.normal(size=(steps, batch, channels)) * 2.0
    label = rng.integers(1, channels, (batch, labels)).astype(np.float64)
    label[1, 5] = label[1, 4]  # a repeat
    lengths = {"data_lengths": np.array([48.0, 40.0, 31.0]), "label_lengths": np.array([20.0, 13.0, 0.0])}
    head = np.array([1.0, -0.5, 2.0])
    loss, grad = _run(data, label, head, use_data_lengths=True, use_label_lengths=True, **dict(lengths))
    np.testing.assert_allclose(loss, o.ctc_loss(data, label, **lengths)[0], rtol=1e-11)
    np.testing.assert_allclose(grad, o.ctc_loss_grad(head, data, label, **lengths), rtol=1e-9, atol=1e-12)
    assert not grad[40:, 1].any() and not grad[31:, 2].any()  # nothing past a sample's steps


def test_what_cannot_be_aligned_or_read_is_inf_or_nan_in_its_sample_only(rng):
    data = rng.normal(size=(3, 6, 5))
    label = np.array([[1, 1, 1],   # three repeats need five steps: probability 0, loss inf
                      [1, 0, 0],   # fine
                      [2, 5, 0],   # 5 is not a channel
                      [2, 2.5, 0],  # not a whole number
                      [3, 1, 2],   # fine
                      [0, 1, 0]])  # the blank cannot be a label: ends at once (padding) and is the empty label
    loss, grad = _run(data, label)
    fine = [1, 4, 5]
    expected = o.ctc_loss(data[:, fine], label[fine])[0]
    assert loss[0] == np.inf and np.isnan(grad[:, 0]).all()
    assert np.isnan(loss[2:4]).all() and np.isnan(grad[:, 2:4]).all()
    np.testing.assert_allclose(loss[fine], expected, rtol=1e-12)
    assert np.isfinite(grad[:, fine]).all()
    lengths = dict(use_data_lengths=True, data_lengths=np.array([0.0, 4.0, 2.0, -1.0, 1.5, 3.0]))
    lengths["data_lengths"][1] = np.nan
    loss, grad = _run(data, label[:, :1] * 0, **lengths)  # empty labels; lengths NaN, out of range, not whole
    assert loss[0] == 0.0 and not grad[:, 0].any()  # no steps, the empty label: probability 1
    unusable, usable = [1, 3, 4], [2, 5]
    assert np.isnan(loss[unusable]).all() and np.isnan(grad[:, unusable]).all()
    assert np.isfinite(loss[usable]).all() and np.isfinite(grad[:, usable]).all()


def test_more_labels_than_steps_is_refused_at_shape_inference():
    with pytest.raises(ShapeError, match=r"CTCLoss.*label \(2, 5\) has 5 labels a sample but data \(4, 2, 3\) only "
                                         r"4 steps"):
        S.ctc_loss(S.Variable("data"), S.Variable("label")).infer_shape(data=(4, 2, 3), label=(2, 5))


@pytest.mark.slow  # 60 s in the interpreter
def test_a_model_trained_on_the_ctc_loss_learns_to_transcribe():
    """Module.fit on MakeLoss(ctc_loss(...)), MXNet's way of training on it: each step's
    input is a noisy one-hot of the token it should emit (the label's tokens spread over 8
    steps), a FullyConnected over every step; the loss falls from about 9 to below 1 and
    a greedy decode (best channel a step, repeats merged, blanks dropped) reads the labels."""
    ts.random.seed(0)
    rng = np.random.default_rng(0)
    samples, steps, channels = 64, 8, 5
    label = rng.integers(1, channels, (samples, 3)).astype(np.float32)
    # each step shows a label or the blank: l0 l0 blank l1 l1 blank l2 l2
    tokens = np.concatenate([label, np.zeros((samples, 3), np.float32)], axis=1)[:, [0, 0, 3, 1, 1, 4, 2, 2]]
    data = np.eye(channels, dtype=np.float32)[tokens.astype(int)] + rng.normal(scale=0.1, size=(samples, steps,
                                                                                              channels))
    x = S.transpose(S.Variable("data"), axes=(1, 0, 2))  # (steps, batch, channels)
    scores = S.FullyConnected(x, num_hidden=channels, flatten=False, name="fc")
    net = S.MakeLoss(S.ctc_loss(scores, S.Variable("label")), name="ctc_loss")
    train = ts.io.NDArrayIter(data.astype(np.float32), label, batch_size=16, label_name="label")
    mod = ts.mod.Module(net, label_names=["label"])
    losses = []
    mod.fit(train, num_epoch=10, optimizer="adam", optimizer_params={"learning_rate": 0.1},
            initializer=ts.init.Xavier(), eval_metric=ts.metric.Loss(),
            batch_end_callback=lambda params: losses.append(float(mod.get_outputs()[0].mean())))
    assert losses[0] > 5 and np.mean(losses[-4:]) < 1.0, losses
    probe = S.FullyConnected(x, num_hidden=channels, flatten=False, name="fc")
    exe = probe.simple_bind(ts.cpu(), grad_req="null", data=(samples, steps, channels))
    exe.copy_params_from({**{k: v.numpy() for k, v in mod.get_params()[0].items()}, "data": data})
    best = exe.forward()[0].numpy().argmax(-1).T  # (samples, steps)
    decoded = [[int(c) for i, c in enumerate(row) if c != 0 and (i == 0 or c != row[i - 1])] for row in best]
    assert np.mean([d == list(map(int, lab)) for d, lab in zip(decoded, label)]) > 0.95
