"""A variational autoencoder on the bundled 8x8 digits, written with the Symbol API and
``ts.sym.random``: the encoder gives each image a mean and a log-variance of 2 latent
numbers, a draw ``z = mu + exp(logvar / 2) * eps`` (eps from ``ts.sym.random.normal``, new
at every step, on the device; the gradient flows through mu and logvar, the
reparameterisation trick), and the decoder draws the image back from z. The loss is the
pixels' cross entropy (LogisticRegressionOutput) plus the KL divergence of the code from a
standard normal (MakeLoss), weighted by ``--beta`` (0.01: with Adam, the full weight pulls
every code to the prior within the first epochs and the decoder learns the mean image; 0.01
learns a code, 3 epochs beat the mean image by a fifth). After training, digits never seen
are drawn from the prior and printed. On 2 CPU cores (the interpreter) about 8 s an epoch.

    python examples/digits_vae.py [--epochs N] [--latent K] [--beta B]
"""

import argparse
import logging

import numpy as np

import tritonsym as ts

S = ts.sym
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--latent", type=int, default=2)
parser.add_argument("--beta", type=float, default=0.01, help="the KL term's weight (a beta-VAE; 1: the ELBO)")
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(message)s")

images, _ = ts.io.load_digits()  # (1797, 64) intensities 0..16
pixels = images.astype(np.float32) / 16.0
train_idx, val_idx = ts.io.split(len(pixels), validation_fraction=0.2)
ts.random.seed(0)  # the weights, the batches and the draws of eps
train = ts.io.NDArrayIter(pixels[train_idx], pixels[train_idx], batch_size=64, shuffle=True, label_name="image")
val = ts.io.NDArrayIter(pixels[val_idx], pixels[val_idx], batch_size=64, label_name="image")


def decoder(z):
    """z -> 64 pixel logits; the same weights (by name) in training and when drawing."""
    h = S.Activation(S.FullyConnected(z, num_hidden=64, name="dec1"), act_type="relu")
    return S.FullyConnected(h, num_hidden=64, name="dec2")


h = S.Activation(S.FullyConnected(S.Variable("data"), num_hidden=64, name="enc1"), act_type="relu")
mu = S.FullyConnected(h, num_hidden=args.latent, name="mu")
# The log-variance starts near -4 (a spread of 0.14): drawn with a spread of 1 from the first
# step, the code would drown in its noise, and the decoder learn to ignore it (posterior collapse).
logvar = S.FullyConnected(h, num_hidden=args.latent, name="logvar") - 4.0
eps = S.random.normal(shape=(0, args.latent), name="eps")  # (batch, latent): the batch comes from mu
z = mu + S.exp(0.5 * logvar) * eps
reconstruction = S.LogisticRegressionOutput(decoder(z), S.Variable("image"), name="reconstruction")
kl = S.MakeLoss(0.5 * S.sum(S.square(mu) + S.exp(logvar) - 1.0 - logvar), grad_scale=args.beta, name="kl")
net = S.Group([reconstruction, kl])

mod = ts.mod.Module(net, data_names=("data",), label_names=("image",))
# The drawing against the image; the KL output is a loss with no label.
mse = ts.metric.MSE(output_names=["reconstruction_output"], label_names=["image"])
mod.fit(train, eval_data=val, eval_metric=mse, num_epoch=args.epochs, initializer=ts.init.Xavier(),
        optimizer="adam", optimizer_params={"learning_rate": 0.01})
error = dict(mod.score(val, mse))["mse"]
baseline = float(((pixels[val_idx] - pixels[train_idx].mean(axis=0)) ** 2).mean())
print(f"validation mean squared error {error:.4f} (drawing the mean image: {baseline:.4f})")

# Digits never seen: z from the prior, N(0, 1), through the trained decoder.
arg_params, _ = mod.get_params()
draw = S.sigmoid(decoder(S.random.normal(shape=(4, args.latent), name="prior")))
drawer = draw.simple_bind(ts.cpu(), grad_req="null")
drawn = drawer.forward(**{k: v for k, v in arg_params.items() if k.startswith("dec")})[0].numpy()
shades = " .:-=+*#%@"
for row in range(8):
    print("   ".join("".join(shades[min(int(v * 10), 9)] for v in image.reshape(8, 8)[row]) for image in drawn))
