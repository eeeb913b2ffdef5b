"""The small networks and data the tests share, so that each test file does not build its
own: the MLP of MXNet's symbol tutorial in every size, and Gaussian clusters a network can learn."""

from __future__ import annotations

import numpy as np

import tritonsym as ts

S = ts.sym


def mlp(hidden=(16,), classes: int = 4, act: str = "relu", out: str = "softmax", **softmax_options):
    """``data`` -> per hidden size a FullyConnected ``fc<k>`` and an Activation ``<act><k>``
    -> FullyConnected ``fc<n+1>`` to ``classes`` -> SoftmaxOutput named ``out`` (its label
    is ``<out>_label``)."""
    net = S.Variable("data")
    for k, size in enumerate(hidden, start=1):
        net = S.Activation(S.FullyConnected(net, num_hidden=size, name=f"fc{k}"), act_type=act, name=f"{act}{k}")
    net = S.FullyConnected(net, num_hidden=classes, name=f"fc{len(hidden) + 1}")
    return S.SoftmaxOutput(net, name=out, **softmax_options)


def blobs(n: int, classes: int = 3, features: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples of ``classes`` well separated Gaussian clusters (float32 features,
    int64 labels): a network that learns gets them all right."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    return (np.eye(classes, features)[y] * 4.0 + rng.normal(size=(n, features))).astype(np.float32), y
