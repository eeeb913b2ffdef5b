"""FullyConnected: ``out = data @ weight.T + bias`` (MXNet semantics), with an optional fused
activation epilogue chosen by the executor's fusion pass.

Its backward is two plain products and a column sum. A fused activation's gradient is not
applied here: the executor has the step after this one finish it (the grad epilogue
below, when that step is a FullyConnected reading this output), or runs the activation's
own backward first."""

from __future__ import annotations

from ..ops import fully_connected as kernels
from .registry import (
    BackwardArgs,
    ForwardArgs,
    OpDef,
    Param,
    ShapeMismatch,
    merge_shapes,
    positive,
    register,
    size,
    unify,
)

# The products' float32 precision: FullyConnected's, and the operators built on its tiles.
PRECISION = Param("precision", str, "ieee", choices=kernels.PRECISIONS,
                  doc="float32 products: 'ieee' (exact float32) or 'tf32' (tensor cores, 10-bit mantissa); other "
                      "dtypes ignore it")


def inputs_with_bias(p):
    """``active_inputs`` of an operator whose bias ``no_bias`` leaves out (the convolutions' too)."""
    return ["data", "weight"] if p["no_bias"] else ["data", "weight", "bias"]


def _infer_shape(p, in_shapes, out_shapes):
    data, weight = in_shapes[0], in_shapes[1]
    n = p["num_hidden"]
    if data is not None:
        if p["flatten"]:
            if len(data) < 1:
                raise ShapeMismatch("data must have at least one dimension (the batch)")
            features, out = size(data[1:]), (data[0], n)
        else:
            if len(data) < 1:
                raise ShapeMismatch("data must have at least one dimension (the features)")
            features, out = data[-1], (*data[:-1], n)
        expected = (n, features)
        if weight is not None and merge_shapes(weight, expected) is None:
            raise ShapeMismatch(f"data has shape {tuple(data)} ({features} input features) but weight has shape "
                                f"{tuple(weight)}; num_hidden={n} expects ({n}, {features})")
        weight = expected if weight is None else merge_shapes(weight, expected)
        out_shapes = [unify("output", out_shapes[0], out)]
        # Batch sizes the data leaves unknown (0) come back from the output, as in MXNet: an
        # RNN's begin state zeros((0, hidden)) learns its batch size from the step it feeds.
        lead = 1 if p["flatten"] else len(data) - 1
        if 0 in data[:lead]:
            data = merge_shapes(data, tuple(out_shapes[0][:lead]) + tuple(data[lead:]))
    elif weight is not None and weight[0] != n:
        raise ShapeMismatch(f"weight has shape {tuple(weight)} but num_hidden={n} expects ({n}, ...)")
    new_in = [data, weight]
    if not p["no_bias"]:
        new_in.append(unify("bias", in_shapes[2], (n,)))
    return new_in, out_shapes


def _matrix_view(t, flatten):
    """data as the (rows, features) matrix the kernel multiplies, as a view."""
    return t.view(t.shape[0], -1) if flatten else t


def _forward(a: ForwardArgs):
    p = a.params
    data, weight = a.inputs[0], a.inputs[1]
    bias = None if p["no_bias"] else a.inputs[2]
    act, slope = a.epilogue or ("none", 0.0)
    return kernels.plan_fully_connected_forward(_matrix_view(data, p["flatten"]), weight, bias, a.outputs[0],
                                                act=act, slope=slope, precision=p["precision"])


def _backward(a: BackwardArgs):
    p = a.params
    data, weight = a.inputs[0], a.inputs[1]
    grad_data = a.in_grads[0]
    grad_bias = None if p["no_bias"] else a.in_grads[2]
    finish = a.grad_epilogue
    return kernels.plan_fully_connected_backward(
        a.out_grads[0], _matrix_view(data, p["flatten"]), weight,
        grad_x=None if grad_data is None else _matrix_view(grad_data, p["flatten"]),
        grad_weight=a.in_grads[1], grad_bias=grad_bias,
        accumulate_x=a.accumulate[0], accumulate_weight=a.accumulate[1],
        accumulate_bias=False if p["no_bias"] else a.accumulate[2], precision=p["precision"],
        input_act=finish.act if finish else "none", input_slope=finish.slope if finish else 0.0,
        input_grad_bias=finish.bias_grad if finish else None,
        input_partials=a.temps.get("bias partials"), accumulate_input_bias=finish.accumulate_bias if finish else False)


def _backward_needs(p, epilogue):
    # dx needs the weight, dw needs the data (and a grad epilogue reads the data too); a
    # fused activation's gradient is not computed here.
    return (0, 1), ()


def _grad_epilogue_inputs(p, shapes):
    # The data's gradient, when the data's last axis is the matrix's (for the bias sums).
    data = shapes[0]
    return (0,) if not p["flatten"] or size(data[1:]) == data[-1] else ()


def _grad_epilogue_temps(p, shapes, dtypes):
    data = shapes[0]
    return {"bias partials": kernels.bias_partials(size(data) // max(data[-1], 1), data[-1], dtypes[0])}


register(OpDef(
    name="FullyConnected",
    doc="Applies a linear transformation: out = data @ weight.T + bias.\n\n"
        "With flatten=True (the default) data of shape (batch, d1, d2, ...) is treated as "
        "(batch, d1*d2*...); with flatten=False the transformation applies to the last axis. "
        "weight has shape (num_hidden, input features), bias (num_hidden,).",
    params=[
        Param("num_hidden", int, doc="number of output features", check=positive),
        Param("no_bias", bool, False, doc="leave out the bias term"),
        Param("flatten", bool, True, doc="flatten all but the first axis of data"),
        PRECISION,
    ],
    input_names=("data", "weight", "bias"),
    active_inputs=inputs_with_bias,
    infer_shape=_infer_shape,
    forward=_forward,
    backward=_backward,
    backward_needs=_backward_needs,
    accepts_epilogue=True,
    bias_input=lambda p: None if p["no_bias"] else 2,
    grad_epilogue_inputs=_grad_epilogue_inputs,
    grad_epilogue_temps=_grad_epilogue_temps,
))
