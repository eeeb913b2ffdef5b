"""Swish, x * sigmoid(beta x), an operator tritonsym lacks: our own Triton kernel, registered
once, gradient-checked in float64 and trained on the bundled digits. Usage: custom_swish.py [epochs]"""
import sys

import numpy as np
import triton
import triton.language as tl

import tritonsym as ts  # before any @triton.jit: it decides whether kernels are compiled or interpreted


@triton.jit
def _swish_kernel(X, DY, OUT, n, beta: tl.float64, BACKWARD: tl.constexpr, ACCUMULATE: tl.constexpr,
                  BLOCK: tl.constexpr):
    """Forward: out = x s, with s = sigmoid(beta x). Backward: out (+)= dy (s + beta x s (1 - s))."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # this program's elements; i < n are real
    CT = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32  # float32 math for half types
    x, b = tl.load(X + i, mask=i < n, other=0.0).to(CT), beta.to(CT)
    s = 1.0 / (1.0 + tl.exp(-b * x))
    if BACKWARD:
        y = tl.load(DY + i, mask=i < n, other=0.0).to(CT) * (s + b * x * s * (1.0 - s))
        if ACCUMULATE:  # grad_req='add', or an input used twice: add to what is there
            y += tl.load(OUT + i, mask=i < n, other=0.0).to(CT)
    else:
        y = x * s
    tl.store(OUT + i, y.to(OUT.dtype.element_ty), mask=i < n)

def _launch(x, dy, out, beta, backward, accumulate=False):  # built once at bind, then called with no arguments
    return ts.operator.Launch(_swish_kernel, (triton.cdiv(x.numel(), 1024),), [x, dy, out, x.numel(), beta],
                              dict(BACKWARD=backward, ACCUMULATE=accumulate, BLOCK=1024))

ts.operator.register(ts.operator.OpDef(
    name="Swish", doc="Swish (Ramachandran et al. 2017): x * sigmoid(beta * x), elementwise.",
    params=[ts.operator.Param("beta", float, default=1.0, doc="the slope inside the sigmoid")],
    input_names=("data",), infer_shape=ts.operator.same_shape_everywhere(["data"]),
    forward=lambda a: [_launch(a.inputs[0], a.inputs[0], a.outputs[0], a.params["beta"], False)],
    backward=lambda a: [] if a.in_grads[0] is None else [
        _launch(a.inputs[0], a.out_grads[0], a.in_grads[0], a.params["beta"], True, a.accumulate[0])],
    backward_needs=lambda params, epilogue: ((0,), ()),  # backward reads the input x, not the output
    inplace=ts.operator.elementwise_inplace,  # each x[i] is read before out[i] is written
    backward_inplace=ts.operator.grad_over_out_grad(1), cheap=True))  # cheap: mirror=True may recompute it

net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc1", num_hidden=64)
net = ts.sym.Swish(net, beta=1.5)  # like a built-in: automatic name (swish0), inference, JSON, planner, Module
net = ts.sym.SoftmaxOutput(ts.sym.FullyConnected(net, name="fc2", num_hidden=10), name="softmax")
print([n for n in net.get_internals().list_outputs() if "swish" in n], net.infer_shape(data=(128, 64))[1])
swish = ts.sym.Swish(ts.sym.Variable("x"), beta=1.5)
errors = ts.test_utils.check_numeric_gradient(swish * swish, {"x": np.random.default_rng(0).normal(size=(5, 7))})
print(f"float64 gradient check (full Jacobian, x used twice): largest relative error {errors['x']:.1e}")

images, labels = ts.io.load_digits()
train_idx, val_idx = ts.io.split(len(images), 0.2)
ts.random.seed(0)
train = ts.io.NDArrayIter(images[train_idx] / 16, labels[train_idx], batch_size=128, shuffle=True)
val = ts.io.NDArrayIter(images[val_idx] / 16, labels[val_idx], batch_size=128)
mod = ts.mod.Module(net)
mod.fit(train, eval_data=val, num_epoch=int(sys.argv[1]) if len(sys.argv) > 1 else 8, initializer=ts.init.Xavier(),
        optimizer="adam", optimizer_params={"learning_rate": 0.01})
print(f"validation accuracy with Swish: {mod.score(val, 'acc')[0][1]:.4f}")
