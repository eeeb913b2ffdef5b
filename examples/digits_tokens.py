"""The bundled 8x8 digits read as 64 tokens: each pixel's intensity (0..16) is looked up in an
Embedding, a learned position embedding is added (broadcast over the batch), LayerNorm and
Dropout follow, then a small MLP classifies the flattened tokens. It trains with Module.fit
and shows what the operators of the Symbol API compose into beyond an MLP.

    python examples/digits_tokens.py [--epochs N]
"""

import argparse
import logging

import numpy as np

import tritonsym as ts

S = ts.sym
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--width", type=int, default=16, help="values per token embedding")
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(message)s")

images, labels = ts.io.load_digits()  # (1797, 64) intensities 0..16
train_idx, val_idx = ts.io.split(len(images), validation_fraction=0.2)
tokens = images.astype(np.float32)  # indices, as MXNet's iterators give them: floats
ts.random.seed(0)
train = ts.io.NDArrayIter(tokens[train_idx], labels[train_idx], batch_size=64, shuffle=True)
val = ts.io.NDArrayIter(tokens[val_idx], labels[val_idx], batch_size=64)

pixels = S.Embedding(S.Variable("data"), input_dim=17, output_dim=args.width, name="pixel")  # (batch, 64, width)
where = S.Variable("position_weight", shape=(1, 64, args.width))  # one learned vector per pixel position
net = S.broadcast_add(pixels, where, name="tokens")
net = S.LayerNorm(net, axis=-1, name="norm")
net = S.Dropout(net, p=0.1, name="drop")
net = S.FullyConnected(S.Flatten(net), num_hidden=64, name="fc1")
net = S.Activation(net, act_type="relu", name="relu1")
net = S.FullyConnected(net, num_hidden=10, name="fc2")
net = S.SoftmaxOutput(net, name="softmax")

mod = ts.mod.Module(net, data_names=("data",), label_names=("softmax_label",))
mod.fit(train, eval_data=val, num_epoch=args.epochs, initializer=ts.init.Xavier(magnitude=2.0),
        optimizer="adam", optimizer_params={"learning_rate": 3e-3})
accuracy = dict(mod.score(val, "acc"))["accuracy"]
print(f"validation accuracy {accuracy:.4f}")
print(mod.executor.memory)
