"""Shape and dtype inference over a symbol graph (metadata only, never touches data).

Each operator's rule maps what is known about its inputs and outputs to more of it; the
driver runs the rules forwards and backwards over the graph until nothing changes, so a
weight shape is inferred from the data and an input's shape from its consumer. As in
MXNet, a 0 in a shape is a dimension not known yet, which the rules may fill in, and a
shape given to ``infer_shape`` overrides a variable's ``__shape__`` hint. A
contradiction names the node, the operator and the values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from ..base import DTypeError, ParamError, ShapeError, TritonSymError, dtype_name, to_dtype, warn
from ..operators.registry import ShapeMismatch, is_complete, merge_shapes, parse_shape
from .graph import Node, aux_variables

if TYPE_CHECKING:
    from .symbol import Symbol

EntryKey = tuple[int, int]  # (id(node), output index)


def _variable_attr(node: Node, kind: str):
    if kind == "shape":
        text = node.attrs.get("__shape__")
        if text is None:
            return None
        try:
            return parse_shape(text)
        except ValueError:
            raise ParamError(f"variable {node.name!r}: attribute __shape__={text!r} is not a shape") from None
    text = node.attrs.get("__dtype__")
    return None if text is None else to_dtype(text)


def _show(kind: str, value) -> str:
    if value is None:
        return "unknown"
    return str(tuple(value)) if kind == "shape" else dtype_name(value)


def propagate(symbol: Symbol, given: dict[str, object], kind: str) -> tuple[dict[EntryKey, object], list[Node]]:
    """Every entry's shape (``kind="shape"``) or dtype (``"type"``) that can be inferred."""
    nodes = symbol.nodes()
    values: dict[EntryKey, object] = {}
    for node in nodes:
        if node.is_variable:
            # A value given here overrides the variable's __shape__ / __dtype__ hint, as in MXNet.
            value = given.get(node.name)
            values[(id(node), 0)] = value if value is not None else _variable_attr(node, kind)
    ops = [n for n in nodes if not n.is_variable]
    _settle(ops, values, kind)
    if kind == "type":
        # Outputs nothing decided take their operator's default, one at a time, each then
        # propagated (the first may decide the others).
        for node in ops:
            key = (id(node), 0)
            if values.get(key) is None and node.op.default_output_type(node.params) is not None:
                values[key] = node.op.default_output_type(node.params)
                _settle(ops, values, kind)
    return values, nodes


def _settle(ops: list[Node], values: dict, kind: str) -> None:
    """Run the rules forwards and backwards over ``ops`` until nothing changes."""
    for _ in range(2 * len(ops) + 2):
        changed = False
        for node in ops + ops[::-1]:
            changed |= _apply_rule(node, values, kind)
        if not changed:
            break


def _apply_rule(node: Node, values: dict, kind: str) -> bool:
    rule = node.op.infer_shape if kind == "shape" else node.op.infer_type
    in_keys = [(id(c), i) for c, i in node.inputs]
    out_keys = [(id(node), i) for i in range(node.num_outputs)]
    old_in, old_out = [values.get(k) for k in in_keys], [values.get(k) for k in out_keys]
    error = ShapeError if kind == "shape" else DTypeError
    try:
        new_in, new_out = rule(node.params, list(old_in), list(old_out))
    except ShapeMismatch as e:
        known = ", ".join(f"{name} {_show(kind, v)}" for name, v in zip(node.input_names(), old_in))
        raise error(f"{node.name} ({node.op.name}): {e} (its inputs: {known})") from None
    changed = False
    labels = [f"input {name!r}" for name in node.input_names()] + [f"output {i}" for i in range(len(out_keys))]
    for key, old, new, label in zip(in_keys + out_keys, old_in + old_out, list(new_in) + list(new_out), labels):
        if new is None or new == old:
            continue
        if old is not None:
            # Shapes may be partial (0: a dimension not known yet); a rule may fill them in.
            merged = merge_shapes(old, new) if kind == "shape" else None
            if merged is None:
                raise error(f"{node.name} ({node.op.name}): {label} has {kind} {_show(kind, old)} but "
                            f"{_show(kind, new)} is expected")
            if merged == tuple(old):
                continue
            new = merged
        values[key] = tuple(new) if kind == "shape" else new
        changed = True
    return changed


def _given(symbol: Symbol, args: Sequence, kwargs: dict, what: str, convert: Callable) -> dict[str, object]:
    """Known argument values from positional (list_arguments order) or keyword form."""
    names = symbol.list_arguments()
    inputs = symbol.list_inputs()
    if args and kwargs:
        raise ParamError(f"{what}: give the known values either positionally or by name, not both")
    if len(args) > len(names):
        raise ParamError(f"{what}: {len(args)} positional values for {len(names)} arguments ({', '.join(names)})")
    unknown = [k for k in kwargs if k not in inputs]
    if unknown:
        raise ParamError(f"{what}: {', '.join(map(repr, unknown))} is not an argument of this symbol; its arguments "
                         f"are {', '.join(names)}")
    given = dict(zip(names, args)) | kwargs
    out = {}
    for name, value in given.items():
        if value is None:
            continue
        try:
            out[name] = convert(value)
        except TritonSymError:
            raise
        except (ValueError, TypeError):
            raise ParamError(f"{what}: {name}={value!r} is not a valid {what.split('_')[1]}") from None
    return out


def _results(symbol: Symbol, values: dict, nodes: list[Node]):
    aux = aux_variables(nodes)
    variables = [n for n in nodes if n.is_variable]
    arg = [values.get((id(n), 0)) for n in variables if id(n) not in aux]
    aux_values = [values.get((id(n), 0)) for n in variables if id(n) in aux]
    out = [values.get((id(n), i)) for n, i in symbol.heads]
    return arg, out, aux_values


def infer_shape(symbol: Symbol, args: Sequence, kwargs: dict, partial: bool):
    given = _given(symbol, args, kwargs, "infer_shape", parse_shape)
    values, nodes = propagate(symbol, given, "shape")
    arg, out, aux = _results(symbol, values, nodes)
    if not partial and not all(is_complete(v) for v in arg + out + aux):
        unknown = [n for n, v in zip(symbol.list_arguments(), arg) if not is_complete(v)]
        warn("infer_shape: cannot decide the shapes of " + (", ".join(unknown) or "some outputs")
             + "; give them, or use infer_shape_partial")
        return None, None, None
    return arg, out, aux


def infer_type(symbol: Symbol, args: Sequence, kwargs: dict, partial: bool = False):
    given = _given(symbol, args, kwargs, "infer_type", to_dtype)
    values, nodes = propagate(symbol, given, "type")
    arg, out, aux = _results(symbol, values, nodes)
    if not partial and any(v is None for v in arg + out + aux):
        return None, None, None
    return arg, out, aux
