"""One Python function per registered operator (``FullyConnected``, ``Activation`` ...),
made from its registry entry so that name, signature help and docs never drift."""

from __future__ import annotations

from ..operators.registry import REQUIRED, OpDef
from .symbol import Symbol, create


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
    def function(*args: Symbol, name: str | None = None, attr: dict | None = None, **kwargs) -> Symbol:
        return create(op.name, *args, name=name, attr=attr, **kwargs)

    function.__name__ = function.__qualname__ = public_name
    function.__doc__ = _doc(op)
    return function
