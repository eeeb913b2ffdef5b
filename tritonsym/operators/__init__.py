"""Operator definitions: importing this package registers every built-in operator."""

from . import (  # noqa: F401  (imported for their registrations)
    activation,
    attention,
    batch_dot,
    batch_norm,
    block_grad,
    broadcast,
    cache_write,
    concat,
    dot,
    dropout,
    elementwise,
    embedding,
    expand_dims,
    flatten,
    flip,
    fully_connected,
    layer_norm,
    leaky_relu,
    make_loss,
    reduce,
    regression_output,
    reshape,
    rms_norm,
    rotary_embedding,
    select,
    sequence_mask,
    slice_axis,
    slice_channel,
    softmax,
    softmax_output,
    squeeze,
    transpose,
)
from .registry import REGISTRY, OpDef, Param, get_op, on_register, register, unregister

__all__ = ["REGISTRY", "OpDef", "Param", "get_op", "on_register", "register", "unregister"]
