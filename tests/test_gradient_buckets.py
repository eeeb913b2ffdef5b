"""Gradient buckets in one process: a store standing for two identical workers sums what
each bucket held when its all-reduce started, so the summed gradients are twice backward's
exactly when every gradient lies in one bucket and no bucket starts before it is final."""

import pytest
import torch

import tritonsym as ts
from tritonsym.kvstore import KVStoreError
from tritonsym.kvstore.buckets import GradientSync

S = ts.sym
SHAPES = {"data": (5, 7), "softmax_label": (5,)}
# one parameter per bucket; fc2 exactly (4 x (24 + 4) bytes, a bucket full at its bound); two
# or three parameters; all in one
BUCKET_BYTES = [1, 4 * 28, 4 * 40, 4 * 100, 1 << 30]


class TwoIdenticalWorkers(ts.kv.KVStore):
    """All-reduce over two workers that computed the same gradients: what the bucket held at
    the start, doubled, lands in it at ``wait`` (a real all-reduce sends what is there then)."""

    def __init__(self, fingerprints=None):
        super().__init__("local")
        self.started: list[torch.Tensor] = []
        self.fingerprints = fingerprints

    def all_reduce_async(self, tensor):
        self.started.append(tensor)
        return tensor, tensor.clone()

    def wait(self, work):
        view, sent = work
        view.copy_(2 * sent)

    def all_gather_int(self, value):
        return [value, value] if self.fingerprints is None else self.fingerprints


def _executor():
    net = S.Variable("data")
    for k, hidden in enumerate((9, 6, 4)):
        net = S.FullyConnected(net, name=f"fc{k}", num_hidden=hidden)
        net = S.Activation(net, name=f"act{k}", act_type="tanh") if k < 2 else net
    net = S.SoftmaxOutput(net, name="softmax")
    trained = {n: "null" if n in SHAPES else "write" for n in net.list_arguments()}  # as Module binds
    exe = net.simple_bind(ts.cpu(), grad_req=trained, **SHAPES)
    rng = torch.Generator(torch.get_default_device()).manual_seed(0)
    for name, array in exe.arg_dict.items():
        array.copy_(torch.randint(0, 4, array.shape, generator=rng) if name == "softmax_label"
                    else torch.randn(array.shape, generator=rng))
    return exe


@pytest.mark.parametrize("bucket_bytes", BUCKET_BYTES)
def test_each_gradient_is_summed_once_after_it_is_final(bucket_bytes):
    exe = _executor()
    exe.forward(is_train=True)
    exe.backward()
    plain = {n: g.clone() for n, g in exe.grad_dict.items() if g is not None}
    kv = TwoIdenticalWorkers()
    sync = GradientSync(kv, exe, bucket_bytes=bucket_bytes)
    sync.check_layout("mlp")
    exe.forward(is_train=True)
    sync.backward(exe)
    with pytest.raises(KVStoreError, match=r"the last backward's all-reduce was never finished \(call finish\(\)\)"):
        sync.backward(exe)
    sync.finish()
    for name, grad in plain.items():
        assert torch.equal(exe.grad_dict[name], 2 * grad), name
    assert len(kv.started) == len(sync.buckets)


@pytest.mark.parametrize("bucket_bytes", BUCKET_BYTES)
def test_buckets_take_the_parameters_from_the_last_and_are_just_large_enough(bucket_bytes):
    exe = _executor()
    region, = exe.param_regions()
    sync = GradientSync(TwoIdenticalWorkers(), exe, bucket_bytes=bucket_bytes)
    laid = {name: (start, size) for name, start, size in region.members}
    # every parameter once, last laid first: the order backward finishes them
    assert [n for b in sync.buckets for n in b.names] == [n for n, _, _ in reversed(region.members)]
    for k, bucket in enumerate(sync.buckets):
        first, last = laid[bucket.names[-1]], laid[bucket.names[0]]
        assert (bucket.start, bucket.end) == (first[0], last[0] + last[1])  # alignment gaps included
        assert bucket.view.data_ptr() == region.grads[bucket.start:].data_ptr()
        assert bucket.view.numel() == bucket.end - bucket.start
        nbytes = 4 * sum(laid[n][1] for n in bucket.names)
        if k < len(sync.buckets) - 1:  # full, and would not be without its last member
            assert nbytes >= bucket_bytes > nbytes - 4 * laid[bucket.names[-1]][1]
    if bucket_bytes == 1:
        assert all(len(b.names) == 1 for b in sync.buckets)
    if bucket_bytes == 4 * 28:  # each layer's bias and weight: 28, 60 and 72 elements
        assert [b.names for b in sync.buckets] == [("fc2_bias", "fc2_weight"), ("fc1_bias", "fc1_weight"),
                                                   ("fc0_bias", "fc0_weight")]
    if bucket_bytes == 1 << 30:
        assert len(sync.buckets) == 1
    assert sync.layout().startswith(f"float32[{sync.buckets[0].start}:{sync.buckets[0].end}] fc2_bias")


def test_bad_sizes_and_mismatched_workers_are_refused():
    exe = _executor()
    for size in (0, -5, 2.5, "1"):
        with pytest.raises(KVStoreError, match=rf"GradientSync: bucket_bytes={size!r} must be a positive integer"):
            GradientSync(TwoIdenticalWorkers(), exe, bucket_bytes=size)
    sync = GradientSync(TwoIdenticalWorkers(fingerprints=[1, 2]), exe, bucket_bytes=64)
    with pytest.raises(KVStoreError, match=r"workers \[1\] bound a different network or gradient buckets than worker "
                                           r"0 \(fingerprints \['00000001', '00000002'\]\).*rank 0\) has: float32\["):
        sync.check_layout("mlp")


class ReadyInOrder:
    """An executor standing for another bucket of a BucketingModule: its backward finishes
    the parameters' gradients in the order given ({name: step}; -1: no step writes it)."""

    def __init__(self, ready: dict, steps: int):
        self.ready, self.steps, self.seen = ready, steps, []

    def grad_ready_steps(self):
        return self.ready

    def backward(self, out_grads=None, after_step=None):
        for i in range(self.steps):
            after_step(i)
            self.seen.append(i)


def test_every_worker_starts_every_bucket_in_one_order_whatever_it_ran():
    """Two executors finish the gradients in opposite orders, one never writing a parameter's
    gradient: both start all six buckets in the buckets' order (a worker on one bucket and a
    worker on the other pair their collectives up), none before its gradients are final."""
    exe = _executor()
    names = [n for n in exe.grad_dict if exe.grad_dict[n] is not None]
    kv = TwoIdenticalWorkers()
    sync = GradientSync(kv, exe, bucket_bytes=1)  # one parameter a bucket
    order = [b.view.data_ptr() for b in sync.buckets]
    assert len(order) == len(names) == 6
    backwards = {"last layers first": {b.names[0]: k for k, b in enumerate(sync.buckets)},
                 "first layers first": {b.names[0]: 5 - k for k, b in enumerate(sync.buckets)},
                 "one never written": {b.names[0]: (-1 if k == 3 else k) for k, b in enumerate(sync.buckets)}}
    for what, ready in backwards.items():
        executor = ReadyInOrder(ready, steps=6)
        starts = []
        kv.all_reduce_async = lambda view, starts=starts, executor=executor: starts.append(
            (view.data_ptr(), len(executor.seen))) or (view, view.clone())
        sync.backward(executor)
        sync.finish()
        assert [ptr for ptr, _ in starts] == order, what
        for bucket, (_, step) in zip(sync.buckets, starts):
            assert step >= max(ready[bucket.names[0]], 0), f"{what}: {bucket.names} started before it was final"
