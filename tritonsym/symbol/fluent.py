"""MXNet's fluent Symbol methods: ``x.exp()``, ``x.reshape((2, -1))``, ``x.sum(axis=1)`` ...

Each method is the operator of the same name (or the one listed) applied to the symbol
as its first input, with the other arguments passed on: ``x.softmax(axis=0)`` is
``softmax(x, axis=0)``. A method exists while its operator is registered, so an operator
added later (a custom one included, under one of these names) gets its method with no
other change, and ``hasattr(x, "sum")`` says whether this build has ``sum``.
"""

from __future__ import annotations

from .split_v2 import split_v2
from .symbol import Symbol, create_called

# MXNet 1.9.1's fluent methods (mxnet/symbol/symbol.py), by method name -> operator name.
FLUENT = {name: name for name in (
    "abs", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "argmax", "argmax_channel", "argmin",
    "argsort", "broadcast_axes", "broadcast_like", "broadcast_to", "cbrt", "ceil", "clip", "cos", "cosh", "degrees",
    "depth_to_space", "diag", "exp", "expand_dims", "expm1", "fix", "flip", "floor", "log", "log10", "log1p", "log2",
    "log_softmax", "max", "mean", "min", "nanprod", "nansum", "norm", "one_hot", "ones_like", "pad", "pick", "prod",
    "radians", "rcbrt", "reciprocal", "relu", "repeat", "reshape_like", "rint", "round", "rsqrt", "shape_array",
    "sigmoid", "sign", "sin", "sinh", "size_array", "slice", "slice_axis", "slice_like", "softmax", "softmin", "sort",
    "space_to_depth", "split", "split_v2", "sqrt", "square", "squeeze", "sum", "swapaxes", "take", "tan", "tanh",
    "tile", "topk", "transpose", "trunc", "zeros_like")}
FLUENT.update(reshape="Reshape", flatten="Flatten", astype="Cast", broadcast_axes="broadcast_axis",
              split_v2="_split_v2")


def _method(method: str, op_name: str):
    # MXNet's method calls the function of its own name (astype calls cast), which names the node.
    hint = "cast" if method == "astype" else method

    def fluent(self: Symbol, *args, **kwargs) -> Symbol:
        if method == "split_v2":  # MXNet's Python function, which reads indices_or_sections
            return split_v2(self, *args, **kwargs)
        return create_called(hint, op_name, self, *args, **kwargs)

    fluent.__name__ = fluent.__qualname__ = method
    fluent.__doc__ = f"``{op_name}(self, *args, **kwargs)`` (MXNet's fluent method)."
    return fluent


def sync_method(op_name: str, op) -> None:
    """Add the fluent methods of an operator being registered; remove them when it goes."""
    for method, target in FLUENT.items():
        if target != op_name:
            continue
        if op is not None:
            setattr(Symbol, method, _method(method, op_name))
        elif getattr(getattr(Symbol, method, None), "__name__", None) == method:
            delattr(Symbol, method)
