"""A new operator from nothing to training: Swish, x * sigmoid(beta * x), which tritonsym
does not have, written as our own Triton kernel, registered once, gradient-checked in
float64 and trained in an MLP on the bundled digits.

    python examples/custom_swish.py [--epochs N]
"""

import argparse

import numpy as np
import triton
import triton.language as tl

import tritonsym as ts  # before any @triton.jit: it decides whether kernels are compiled or interpreted

tso = ts.operator  # OpDef, Param, Launch, register and the common rules

# ------------------------------------------------------------------ the operator
BLOCK = 1024


@triton.jit
def _swish_kernel(X, DY, OUT, n, beta: tl.float64, BACKWARD: tl.constexpr, ACCUMULATE: tl.constexpr,
                  BLOCK: tl.constexpr):
    """Forward: out = x s, with s = sigmoid(beta x). Backward: out (+)= dy (s + beta x s (1 - s))."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = i < n
    CT = tl.float64 if X.dtype.element_ty == tl.float64 else tl.float32  # float32 math for float16 too
    x = tl.load(X + i, mask=mask, other=0.0).to(CT)
    s = 1.0 / (1.0 + tl.exp(-beta.to(CT) * x))
    if BACKWARD:
        y = tl.load(DY + i, mask=mask, other=0.0).to(CT) * (s + beta.to(CT) * x * s * (1.0 - s))
        if ACCUMULATE:  # grad_req='add', or a value used twice: add to what is there
            y += tl.load(OUT + i, mask=mask, other=0.0).to(CT)
    else:
        y = x * s
    tl.store(OUT + i, y.to(OUT.dtype.element_ty), mask=mask)


def _launch(x, dy, out, beta, backward, accumulate=False):
    """Built once at bind; the executor then calls it with no arguments."""
    return tso.Launch(_swish_kernel, (triton.cdiv(x.numel(), BLOCK),), [x, dy, out, x.numel(), beta],
                  dict(BACKWARD=backward, ACCUMULATE=accumulate, BLOCK=BLOCK))


tso.register(tso.OpDef(
    name="Swish",
    doc="Swish (Ramachandran et al. 2017): x * sigmoid(beta * x), elementwise.",
    params=[tso.Param("beta", float, default=1.0, doc="the slope inside the sigmoid")],
    input_names=("data",),
    infer_shape=tso.same_shape_everywhere(["data"]),
    forward=lambda a: [_launch(a.inputs[0], a.inputs[0], a.outputs[0], a.params["beta"], False)],
    backward=lambda a: [] if a.in_grads[0] is None else [
        _launch(a.inputs[0], a.out_grads[0], a.in_grads[0], a.params["beta"], True, a.accumulate[0])],
    backward_needs=lambda params, epilogue: ((0,), ()),  # backward reads the input x, not the output
    inplace=tso.elementwise_inplace,  # out[i] is written after x[i] is read: one buffer may serve both
    backward_inplace=tso.grad_over_out_grad(1),
    cheap=True,  # one read and one write per element: mirror=True may recompute it
))

# ------------------------------------------------------- it works like a built-in
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=8)
args = parser.parse_args()

net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc1", num_hidden=64)
net = ts.sym.Swish(net, beta=1.5)  # automatic name: swish0
net = ts.sym.SoftmaxOutput(ts.sym.FullyConnected(net, name="fc2", num_hidden=10), name="softmax")
print([n for n in net.get_internals().list_outputs() if "swish" in n], net.infer_shape(data=(128, 64))[1])
assert ts.sym.load_json(net.tojson()).tojson() == net.tojson()  # JSON round trip

rng = np.random.default_rng(0)
swish = ts.sym.Swish(ts.sym.Variable("x"), beta=1.5)
errors = ts.test_utils.check_numeric_gradient(swish * swish, {"x": rng.normal(size=(5, 7))}, full_jacobian=True)
print(f"float64 gradient check (full Jacobian, x used twice): largest relative error {errors['x']:.1e}")

images, labels = ts.io.load_digits()
train_idx, val_idx = ts.io.split(len(images), 0.2)
x = images.astype(np.float32) / 16
ts.random.seed(0)
train = ts.io.NDArrayIter(x[train_idx], labels[train_idx], batch_size=128, shuffle=True)
val = ts.io.NDArrayIter(x[val_idx], labels[val_idx], batch_size=128)
mod = ts.mod.Module(net)
mod.fit(train, eval_data=val, num_epoch=args.epochs, initializer=ts.init.Xavier(),
        optimizer="adam", optimizer_params={"learning_rate": 0.01})
print(f"validation accuracy with Swish: {mod.score(val, 'acc')[0][1]:.4f}")
