"""The graph under a symbol: ``Node`` (an operator application, or a free variable when
``op`` is None) whose inputs are ``(node, output index)`` entries, and the walks over it
that every layer shares (inference, JSON, bind). ``Symbol`` (``symbol.py``) is a list of
such entries, its outputs; this module knows nothing of it."""

from __future__ import annotations

from typing import Sequence

from ..operators.registry import OpDef


class Node:
    """One operator application or free variable. ``params`` are the parsed parameters
    (defaults filled); ``set_params`` the names the user gave; ``attrs`` user attributes."""

    __slots__ = ("op", "name", "params", "set_params", "attrs", "inputs")

    def __init__(self, op: OpDef | None, name: str, params: dict | None = None, set_params: Sequence[str] = (),
                 attrs: dict[str, str] | None = None, inputs: Sequence[tuple["Node", int]] = ()):
        self.op = op
        self.name = name
        self.params = params or {}
        self.set_params = tuple(set_params)
        self.attrs = dict(attrs or {})
        self.inputs = list(inputs)

    @property
    def is_variable(self) -> bool:
        return self.op is None

    @property
    def num_outputs(self) -> int:
        return 1 if self.op is None else self.op.outputs_count(self.params)

    def output_name(self, index: int) -> str:
        if self.op is None:
            return self.name
        return f"{self.name}_{self.op.output_names(self.params)[index]}"

    def input_names(self) -> list[str]:
        return [] if self.op is None else self.op.inputs(self.params)

    def all_attrs(self) -> dict[str, str]:
        """Given parameters (as strings) and user attributes, as MXNet's attr_dict shows them."""
        shown = self.op.format_params(self.params, self.set_params) if self.op else {}
        return {**shown, **self.attrs}

    def __repr__(self) -> str:
        return f"<Node {self.name} ({self.op.name if self.op else 'Variable'})>"


Entry = tuple[Node, int]


def topo_order(heads: Sequence[Entry]) -> list[Node]:
    """Nodes reachable from ``heads`` in depth-first post-order (inputs before users, in
    input order): the order of ``list_arguments`` and of execution."""
    order: list[Node] = []
    seen: set[int] = set()
    for head, _ in heads:
        if id(head) in seen:
            continue
        stack = [(head, 0)]
        seen.add(id(head))
        while stack:
            node, i = stack.pop()
            if i < len(node.inputs):
                stack.append((node, i + 1))
                child = node.inputs[i][0]
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append((child, 0))
            else:
                order.append(node)
    return order


def aux_variables(nodes: Sequence[Node]) -> set[int]:
    """ids of variables that some operator uses as an auxiliary state."""
    aux = set()
    for node in nodes:
        if node.op is not None:
            names = node.op.aux_inputs(node.params)
            for name, (child, _) in zip(node.input_names(), node.inputs):
                if name in names:
                    aux.add(id(child))
    return aux


def copy_graph(heads: Sequence[Entry]) -> list[Entry]:
    """A deep copy of the graph under ``heads``; returns the copied heads."""
    mapping: dict[int, Node] = {}
    for node in topo_order(heads):
        mapping[id(node)] = Node(node.op, node.name, dict(node.params), node.set_params, node.attrs,
                                 [(mapping[id(c)], i) for c, i in node.inputs])
    return [(mapping[id(n)], i) for n, i in heads]
