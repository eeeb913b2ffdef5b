"""Train the MLP of MXNet's symbol tutorial on the bundled 8x8 digits with Module, both ways MXNet users know:
the intermediate API (forward / backward / update by hand) and the high-level ``fit``,
then save a checkpoint, load it back and predict.

    python examples/train_digits.py [--epochs N]
"""

import argparse
import logging
import os
import tempfile

import numpy as np

import tritonsym as ts

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=5)
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(message)s")

# Data: 1797 digits bundled with tritonsym, pixels 0..16 scaled to [0, 1], a fixed split.
images, labels = ts.io.load_digits()
train_idx, val_idx = ts.io.split(len(images), validation_fraction=0.2)
x = images.astype(np.float32) / 16.0
ts.random.seed(0)
train = ts.io.NDArrayIter(x[train_idx], labels[train_idx], batch_size=128, shuffle=True)
val = ts.io.NDArrayIter(x[val_idx], labels[val_idx], batch_size=128)

# The network: FullyConnected + relu, FullyConnected to 10 classes, softmax with its loss.
net = ts.sym.Variable("data")
net = ts.sym.FullyConnected(data=net, name="fc1", num_hidden=128)
net = ts.sym.Activation(data=net, name="relu1", act_type="relu")
net = ts.sym.FullyConnected(data=net, name="fc2", num_hidden=10)
net = ts.sym.SoftmaxOutput(data=net, name="softmax")

# 1. The intermediate API: one epoch by hand.
mod = ts.mod.Module(net, data_names=("data",), label_names=("softmax_label",))
mod.bind(data_shapes=train.provide_data, label_shapes=train.provide_label)
mod.init_params(initializer=ts.init.Xavier())
mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
metric = ts.metric.create("acc")
for batch in train:
    mod.forward(batch, is_train=True)
    mod.update_metric(metric, batch.label, batch.pad)
    mod.backward()
    mod.update()  # one Triton launch updates every parameter
train.reset()
print("after one epoch by hand:", metric.get(), "validation:", mod.score(val, "acc"))

# 2. The high-level API: more epochs, with validation, speed and checkpoints.
prefix = os.path.join(tempfile.mkdtemp(), "digits")
mod.fit(train, eval_data=val, num_epoch=1 + args.epochs, begin_epoch=1,
        batch_end_callback=ts.callback.Speedometer(train.batch_size, frequent=5),
        epoch_end_callback=ts.callback.do_checkpoint(prefix))

# 3. Load the last checkpoint into a new module and predict.
restored = ts.mod.Module.load(prefix, 1 + args.epochs)
restored.bind(data_shapes=val.provide_data, for_training=False)
probabilities = restored.predict(val)
accuracy = float((probabilities.argmax(1).numpy() == labels[val_idx]).mean())
print(f"restored from {prefix}-{1 + args.epochs:04d}.safetensors: validation accuracy {accuracy:.4f}")
print(restored.executor.memory)
