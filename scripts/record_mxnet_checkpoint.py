"""Record MXNet 1.9.1 checkpoints for tests/test_mxnet_checkpoints.py: an MLP, and a network
with BatchNorm (auxiliary states: its moving statistics), each trained for two epochs on
fixed random data, saved with Module.save_checkpoint, and their predictions on fixed inputs.
Run by hand in the MXNet venv (see docs/mxnet.md):

    /tmp/mxv/bin/python scripts/record_mxnet_checkpoint.py
"""

import pathlib

import mxnet as mx
import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data" / "mxnet_checkpoint"


def mlp():
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), name="fc1", num_hidden=16)
    net = mx.sym.Activation(net, name="relu1", act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, name="fc2", num_hidden=3), name="softmax")


def with_batch_norm():
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), name="fc1", num_hidden=16)
    net = mx.sym.BatchNorm(net, name="bn1", fix_gamma=False, momentum=0.8)
    net = mx.sym.Activation(net, name="relu1", act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, name="fc2", num_hidden=3), name="softmax")


def record(name, net, x, y, probe, expected):
    mx.random.seed(7)
    mod = mx.mod.Module(net, context=mx.cpu())
    train = mx.io.NDArrayIter(x, y, batch_size=16)
    mod.fit(train, num_epoch=2, optimizer="sgd", optimizer_params={"learning_rate": 0.1},
            initializer=mx.init.Xavier())
    mod.save_checkpoint(str(OUT / name), 2)
    predict = mx.mod.Module(net, context=mx.cpu())
    predict.bind(data_shapes=[("data", probe.shape)], for_training=False)
    arg, aux = mod.get_params()
    predict.set_params(arg, aux)
    predict.forward(mx.io.DataBatch([mx.nd.array(probe)]), is_train=False)
    expected[f"{name}_probabilities"] = predict.get_outputs()[0].asnumpy()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(64, 10)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32) + (x[:, 2] > 1).astype(np.float32)
    probe = rng.normal(size=(5, 10)).astype(np.float32)
    expected = {"probe": probe}
    record("mlp", mlp(), x, y, probe, expected)
    record("batchnorm", with_batch_norm(), x * 3.0 + 5.0, y, probe * 3.0 + 5.0, expected)
    expected["probabilities"] = expected.pop("mlp_probabilities")
    np.savez(OUT / "expected.npz", **expected)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
