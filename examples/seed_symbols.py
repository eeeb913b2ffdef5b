"""The examples of the original document (symbol_and_autodiff.txt), in tritonsym.

Each prints the argument list the document shows, then the two-layer perceptron is bound,
run forward and backward once on random data, and its gradient shapes are printed.
Run: python examples/seed_symbols.py
"""

import numpy as np

import tritonsym as ts

mx = ts  # the document's mx.symbol.* is ts.symbol.* here

# Basic composition: a two-layer perceptron.
net = mx.symbol.Variable("data")
net = mx.symbol.FullyConnected(data=net, name="fc1", num_hidden=128)
net = mx.symbol.Activation(data=net, name="relu1", act_type="relu")
net = mx.symbol.FullyConnected(data=net, name="fc2", num_hidden=64)
net = mx.symbol.Softmax(data=net, name="out")
print(type(net).__name__)
print(net.list_arguments())
mlp = net

# Automatically generated names can be given explicitly.
data = mx.symbol.Variable("data")
w = mx.symbol.Variable("myweight")
net = mx.symbol.FullyConnected(data=data, weight=w, name="fc1", num_hidden=128)
print(net.list_arguments())

# An element-wise add between two symbols, fed to a fully connected layer.
lhs = mx.symbol.Variable("data1")
rhs = mx.symbol.Variable("data2")
net = mx.symbol.FullyConnected(data=lhs + rhs, name="fc1", num_hidden=128)
print(net.list_arguments())

# Composition: one symbol applied to another (the document's mx.apply).
net = mx.symbol.Variable("data")
net = mx.symbol.FullyConnected(data=net, name="fc1", num_hidden=128)
net2 = mx.symbol.Variable("data2")
net2 = mx.symbol.FullyConnected(data=net2, name="net2", num_hidden=128)
composed_net = mx.symbol.compose(net, data=net2, name="compose")
print(composed_net.list_arguments())

# "All of the memory and computation resources are allocated statically during bind."
exe = mlp.simple_bind(ts.cpu(), grad_req="write", data=(32, 784))
rng = np.random.default_rng(0)
exe.copy_params_from({
    "fc1_weight": rng.normal(0, 0.05, (128, 784)), "fc1_bias": np.zeros(128),
    "fc2_weight": rng.normal(0, 0.1, (64, 128)), "fc2_bias": np.zeros(64),
})
exe.forward(is_train=True, data=rng.normal(size=(32, 784)), out_label=rng.integers(0, 64, 32))
exe.backward()
print({name: tuple(exe.grad_dict[name].shape) for name in ("fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias")})
