"""BucketingModule: a network per bucket over one set of parameters, checked against the
same shared-weight network trained by torch autograd in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tritonsym as ts
from tritonsym import BindError, ParamError
from tritonsym.io.ndarray_iter import DataBatch, DataDesc, DataIter

S = ts.sym
HIDDEN, FEATURES, CLASSES = 6, 5, 3


def unrolled(depth: int):
    """``depth`` applications of one recurrent layer (weights shared across steps and buckets)."""
    h = S.Activation(S.FullyConnected(S.Variable("data"), num_hidden=HIDDEN, name="in"), act_type="tanh")
    w, b = S.Variable("rec_weight"), S.Variable("rec_bias")
    for t in range(depth):
        h = S.Activation(S.FullyConnected(h, weight=w, bias=b, num_hidden=HIDDEN, name=f"rec{t}"), act_type="tanh")
    return S.SoftmaxOutput(S.FullyConnected(h, num_hidden=CLASSES, name="out"), name="softmax"), ("data",), \
        ("softmax_label",)


class Batches(DataIter):
    """Fixed batches of several buckets (each its depth and its batch size)."""

    def __init__(self, batches: list[DataBatch], default: DataBatch):
        self.batches, self.position, self.default = batches, 0, default
        self.batch_size = default.data[0].shape[0]

    provide_data = property(lambda self: self.default.provide_data)  # the default bucket's, as MXNet's iterators
    provide_label = property(lambda self: self.default.provide_label)

    def reset(self):
        self.position = 0

    def next(self):
        if self.position == len(self.batches):
            return None
        self.position += 1
        return self.batches[self.position - 1]


def _batch(rng, depth, n):
    x, y = rng.normal(size=(n, FEATURES)), rng.integers(0, CLASSES, n).astype(np.float64)
    return DataBatch([torch.tensor(x)], [torch.tensor(y)], bucket_key=depth,
                     provide_data=[DataDesc("data", (n, FEATURES), torch.float64)],
                     provide_label=[DataDesc("softmax_label", (n,), torch.float64)])


def _start(rng):
    return {"in_weight": rng.normal(0, 0.5, (HIDDEN, FEATURES)), "in_bias": rng.normal(0, 0.1, HIDDEN),
            "rec_weight": rng.normal(0, 0.5, (HIDDEN, HIDDEN)), "rec_bias": rng.normal(0, 0.1, HIDDEN),
            "out_weight": rng.normal(0, 0.5, (CLASSES, HIDDEN)), "out_bias": rng.normal(0, 0.1, CLASSES)}


def _torch_reference(start, batches, epochs, lr, momentum, rescale):
    """The same network in torch autograd: SoftmaxOutput's gradient is that of the summed
    cross-entropy, scaled by rescale_grad; MXNet's SGD momentum (constant rate)."""
    params = {n: torch.tensor(v, requires_grad=True) for n, v in start.items()}
    velocity = {n: torch.zeros_like(p) for n, p in params.items()}
    for _ in range(epochs):
        for batch in batches:
            h = torch.tanh(batch.data[0] @ params["in_weight"].T + params["in_bias"])
            for _ in range(batch.bucket_key):
                h = torch.tanh(h @ params["rec_weight"].T + params["rec_bias"])
            logits = h @ params["out_weight"].T + params["out_bias"]
            loss = torch.nn.functional.cross_entropy(logits, batch.label[0].long(), reduction="sum") * rescale
            grads = torch.autograd.grad(loss, list(params.values()))
            with torch.no_grad():
                for (name, p), g in zip(params.items(), grads):
                    velocity[name] = momentum * velocity[name] - lr * g
                    p += velocity[name]
    return {n: p.detach() for n, p in params.items()}


@pytest.mark.slow  # a training run (3.5 s); CI runs -m slow
def test_buckets_train_one_set_of_parameters_like_torch():
    rng = np.random.default_rng(11)
    default = _batch(rng, 3, 5)
    batches = [_batch(rng, 1, 4), default, _batch(rng, 2, 6), _batch(rng, 1, 4), _batch(rng, 3, 5)]
    start = _start(rng)
    mod = ts.mod.BucketingModule(unrolled, default_bucket_key=3)
    mod.fit(Batches(batches, default), num_epoch=2, optimizer="sgd", arg_params=start,
            optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    want = _torch_reference(start, batches, 2, 0.1, 0.9, rescale=1 / 5)  # rescale_grad: the default bucket's batch
    got = mod.get_params()[0]
    for name in want:
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    assert set(mod.buckets) == {1, 2, 3}
    weights = {mod.buckets[k].executor.arg_dict["rec_weight"].data_ptr() for k in (1, 2, 3)}
    grads = {mod.buckets[k].executor.grad_dict["rec_weight"].data_ptr() for k in (1, 2, 3)}
    assert len(weights) == 1 and len(grads) == 1  # one array each, shared by every bucket
    # each bucket planned its own internal values: a deeper one needs more
    assert mod.buckets[3].executor.memory.planned_bytes > mod.buckets[1].executor.memory.planned_bytes


def test_scores_predicts_and_checkpoints_across_buckets(tmp_path):
    rng = np.random.default_rng(12)
    default = _batch(rng, 2, 6)
    batches = [default, _batch(rng, 1, 3)]
    mod = ts.mod.BucketingModule(unrolled, default_bucket_key=2)
    mod.fit(Batches(batches, default), num_epoch=1, arg_params=_start(rng),
            optimizer_params={"learning_rate": 0.05})
    score = mod.score(Batches(batches, default), "acc")
    outputs = mod.predict(Batches(batches, default))
    assert outputs.shape == (9, CLASSES) and mod.bucket_key == 1
    mod.save_checkpoint(str(tmp_path / "b"), 1, save_optimizer_states=True)
    again = ts.mod.BucketingModule.load(str(tmp_path / "b"), 1, sym_gen=unrolled, default_bucket_key=2,
                                        load_optimizer_states=True)
    again.bind(default.provide_data, default.provide_label)
    assert again.score(Batches(batches, default), "acc") == score
    torch.testing.assert_close(again.predict(Batches(batches, default)), outputs, rtol=0, atol=0)
    again.init_optimizer(optimizer_params={"learning_rate": 0.05})
    assert again.optimizer.num_update == mod.optimizer.num_update


def test_bucketing_errors_are_named():
    with pytest.raises(ParamError, match="default_bucket_key is required"):
        ts.mod.BucketingModule(unrolled)
    with pytest.raises(ParamError, match=r"sym_gen\(1\) must return \(symbol, data_names, label_names\)"):
        ts.mod.BucketingModule(lambda key: S.Variable("x"), default_bucket_key=1)
    small_default = ts.mod.BucketingModule(unrolled, default_bucket_key=0)  # no recurrent layer: lacks its weights
    rng = np.random.default_rng(0)
    small_default.bind(*(lambda b: (b.provide_data, b.provide_label))(_batch(rng, 0, 4)))
    small_default.init_params()
    with pytest.raises(BindError, match=r"parameters \['rec_weight', 'rec_bias'\] are not in shared_module .* the "
                                        "default bucket must be the largest network"):
        small_default.forward(_batch(rng, 2, 4))
    unbound = ts.mod.BucketingModule(unrolled, default_bucket_key=1)
    with pytest.raises(BindError, match=r"BucketingModule.forward: call bind\(\) first"):
        unbound.forward(_batch(rng, 1, 4))
