"""A convolutional autoencoder on the bundled 8x8 digits: an encoder of Convolution, GroupNorm
and max Pooling squeezes each image into 2 channels of 4x4 (32 numbers for 64 pixels), a
decoder of Deconvolution (4x4, stride 2: the upsampling layer of decoders and U-Nets),
InstanceNorm and Convolution draws it back, and LinearRegressionOutput compares the drawing
with the image. Trained with Module.fit; on the CPU's interpreter about 27 s an epoch.

    python examples/digits_autoencoder.py [--epochs N]
"""

import argparse
import logging

import numpy as np

import tritonsym as ts

S = ts.sym
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(message)s")

images, _ = ts.io.load_digits()  # (1797, 64) intensities 0..16
train_idx, val_idx = ts.io.split(len(images), validation_fraction=0.2)
pictures = (images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)  # (batch, channels, height, width)
ts.random.seed(0)
# The label is the image itself: the network learns to draw what it was shown.
train = ts.io.NDArrayIter(pictures[train_idx], pictures[train_idx], batch_size=64, shuffle=True,
                          label_name="image")
val = ts.io.NDArrayIter(pictures[val_idx], pictures[val_idx], batch_size=64, label_name="image")

net = S.Convolution(S.Variable("data"), kernel=(3, 3), num_filter=8, pad=(1, 1), name="enc1")  # 8 x 8 x 8
net = S.GroupNorm(net, num_groups=2, name="norm1")  # MXNet's: one gamma and one beta per group
net = S.Activation(net, act_type="relu")
net = S.Pooling(net, kernel=(2, 2), stride=(2, 2), pool_type="max")  # 8 x 4 x 4
code = S.Convolution(net, kernel=(3, 3), num_filter=2, pad=(1, 1), name="code")  # 2 x 4 x 4: the bottleneck
net = S.Deconvolution(code, kernel=(4, 4), stride=(2, 2), pad=(1, 1), num_filter=8, no_bias=False,
                      name="up")  # 8 x 8 x 8
net = S.InstanceNorm(net, name="norm2")
net = S.Activation(net, act_type="relu")
net = S.Convolution(net, kernel=(3, 3), num_filter=1, pad=(1, 1), name="draw")  # 1 x 8 x 8
net = S.LinearRegressionOutput(net, S.Variable("image"), name="reconstruction")

mod = ts.mod.Module(net, data_names=("data",), label_names=("image",))
mod.fit(train, eval_data=val, eval_metric="mse", num_epoch=args.epochs, initializer=ts.init.Xavier(),
        optimizer="adam", optimizer_params={"learning_rate": 0.01})
error = dict(mod.score(val, "mse"))["mse"]
baseline = float(((pictures[val_idx] - pictures[train_idx].mean(axis=0)) ** 2).mean())
print(f"validation mean squared error {error:.4f} (drawing the mean image: {baseline:.4f})")
