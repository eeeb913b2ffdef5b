"""A small convolutional network on the bundled 8x8 digits: Convolution, relu, max Pooling and
FullyConnected, trained with Module.fit: the layers MXNet's LeNet examples are written with,
on images of 8 by 8 pixels (on the CPU's interpreter, about 10 s an epoch).

    python examples/train_digits_cnn.py [--epochs N]
"""

import argparse
import logging

import numpy as np

import tritonsym as ts

S = ts.sym
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=4)
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(message)s")

images, labels = ts.io.load_digits()  # (1797, 64) intensities 0..16
train_idx, val_idx = ts.io.split(len(images), validation_fraction=0.2)
pictures = (images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)  # (batch, channels, height, width)
ts.random.seed(0)
train = ts.io.NDArrayIter(pictures[train_idx], labels[train_idx], batch_size=128, shuffle=True)
val = ts.io.NDArrayIter(pictures[val_idx], labels[val_idx], batch_size=128)

net = S.Convolution(S.Variable("data"), kernel=(3, 3), num_filter=8, pad=(1, 1), name="conv1")  # 8 x 8 x 8
net = S.Activation(net, act_type="relu", name="relu1")
net = S.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool1")  # 8 x 4 x 4
net = S.FullyConnected(net, num_hidden=10, name="fc")
net = S.SoftmaxOutput(net, name="softmax")

mod = ts.mod.Module(net, data_names=("data",), label_names=("softmax_label",))
mod.fit(train, eval_data=val, num_epoch=args.epochs, initializer=ts.init.Xavier(), optimizer="sgd",
        optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
accuracy = dict(mod.score(val, "acc"))["accuracy"]
print(f"validation accuracy {accuracy:.4f}")
print(mod.executor.memory)
