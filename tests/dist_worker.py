"""One worker of the data-parallel tests (test_kvstore_dist.py), run as its own process.

Trains the same small float64 MLP for a few steps with Module.fit on its share of the data
(kvstore dist_sync over Gloo with a file:// rendezvous, or local with --world 1), then
writes its parameters and time per step.
"""

import argparse
import json
import time

import numpy as np

import tritonsym as ts

p = argparse.ArgumentParser()
p.add_argument("--rank", type=int, default=0)
p.add_argument("--world", type=int, default=1)
p.add_argument("--init", default=None)
p.add_argument("--out", required=True)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--steps", type=int, default=3)
p.add_argument("--hidden", type=int, default=16)
p.add_argument("--bucket-bytes", type=int, default=ts.kv.DEFAULT_BUCKET_BYTES)
p.add_argument("--timeout", type=float, default=60)
args = p.parse_args()

SHARDS = 2  # the data is made for two workers; one process sees both shards interleaved
rng = np.random.default_rng(42)
n = SHARDS * args.batch * args.steps
x, y = rng.normal(size=(n, 7)), rng.integers(0, 5, n)
if args.world == 1:  # global batch t = shard 0's batch t, then shard 1's batch t
    per = args.batch * args.steps
    order = [r * per + t * args.batch + j for t in range(args.steps) for r in range(SHARDS) for j in range(args.batch)]
    x, y = x[order], y[order]
    kv, batch, part = "local", SHARDS * args.batch, dict(num_parts=1, part_index=0)
else:
    kv = ts.kv.create("dist_sync", init_method=args.init, rank=args.rank, num_workers=args.world,
                      timeout=args.timeout, bucket_bytes=args.bucket_bytes)
    batch, part = args.batch, dict(num_parts=args.world, part_index=args.rank)
train = ts.io.NDArrayIter(x, y, batch_size=batch, dtype="float64", **part)

net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc1", num_hidden=args.hidden)
net = ts.sym.Activation(net, name="relu1", act_type="relu")
net = ts.sym.SoftmaxOutput(ts.sym.FullyConnected(net, name="fc2", num_hidden=5), name="softmax")
ts.random.seed(100 + args.rank)  # different on purpose: rank 0's parameters must reach every worker
mod = ts.mod.Module(net)
times = []
start = [time.perf_counter()]


def tick(param):
    times.append(time.perf_counter() - start[0])
    start[0] = time.perf_counter()


mod.fit(train, num_epoch=1, kvstore=kv, initializer=ts.init.Xavier(), batch_end_callback=tick,
        optimizer_params={"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-3})
ts.model.save_params(args.out + ".safetensors", mod.get_params()[0], {})
with open(args.out + ".json", "w") as f:
    json.dump({"steps": len(times), "step_seconds": times[1:] or times, "num_update": mod.optimizer.num_update}, f)
