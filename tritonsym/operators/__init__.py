"""Operator definitions: importing this package registers every built-in operator."""

from . import (  # noqa: F401  (imported for their registrations)
    activation,
    batch_norm,
    block_grad,
    dropout,
    elementwise,
    flatten,
    fully_connected,
    layer_norm,
    leaky_relu,
    make_loss,
    regression_output,
    softmax,
    softmax_output,
)
from .registry import REGISTRY, OpDef, Param, get_op, on_register, register, unregister

__all__ = ["REGISTRY", "OpDef", "Param", "get_op", "on_register", "register", "unregister"]
