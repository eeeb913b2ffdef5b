"""One Python function per registered operator (``FullyConnected``, ``Activation`` ...),
made from its registry entry so that name, signature help and docs never drift."""

from __future__ import annotations

from ..operators.registry import REQUIRED, OpDef
from .symbol import Symbol, create_called


def _doc(op: OpDef) -> str:
    lines = [op.doc, "", "Inputs (Symbols; a missing one becomes a Variable named <name>_<input>):"]
    lines += [f"    {name}" for name in op.input_names]
    if op.params:
        lines += ["", "Parameters:"]
        for p in op.params:
            kind = p.kind.__name__ if isinstance(p.kind, type) else p.kind
            choices = f" one of {', '.join(map(str, p.choices))}" if p.choices else ""
            default = "required" if p.default is REQUIRED else f"default {p.default!r}"
            lines.append(f"    {p.name} ({kind}{choices}; {default}): {p.doc}")
    lines += ["", "name: the node's name (default: an automatic one); attr: string attributes."]
    return "\n".join(lines)


def make_function(op: OpDef, public_name: str):
    # MXNet names a node after the function called: an alias counts names of its own
    # (Softmax(x) is softmax0, with the label softmax0_label; SoftmaxOutput(x) is softmaxoutput0).
    hint = op.hint if public_name == op.name else public_name.lower()

    def function(*args: Symbol, name: str | None = None, attr: dict | None = None, **kwargs) -> Symbol:
        return create_called(hint, op.name, *args, name=name, attr=attr, **kwargs)

    function.__name__ = function.__qualname__ = public_name
    function.__doc__ = _doc(op)
    return function
