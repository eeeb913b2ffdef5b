"""Symbols as JSON.

The format (version 1)::

    {
      "format": "tritonsym-symbol",
      "version": 1,
      "nodes": [                                   # inputs before their users
        {"op": "null", "name": "data", "attrs": {"__shape__": "(64, 784)"}, "inputs": []},
        {"op": "FullyConnected", "name": "fc1", "params": {"num_hidden": "128"},
         "attrs": {}, "inputs": [[0, 0], [1, 0], [2, 0]]},
        ...
      ],
      "arg_nodes": [0, 1, 2],                      # indices of the variable nodes
      "heads": [[3, 0]]                            # the symbol's outputs: [node, output]
    }

``op`` is a registered operator name or ``"null"`` for a variable; ``params`` holds the
parameters the user set, as strings; ``attrs`` user attributes as strings; an input is
``[node index, output index]``. Loading parses every value with the operator's typed
parameter parsers and never evaluates code. MXNet's own symbol JSON (nodes with one
``attrs`` dict for parameters and attributes, three-element inputs) loads as well when
its operators are ones tritonsym has.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..base import FormatError, TritonSymError
from ..files import atomic_write
from ..operators.registry import REGISTRY
from .graph import Entry, Node

if TYPE_CHECKING:
    from .symbol import Symbol

FORMAT = "tritonsym-symbol"
VERSION = 1


def to_json(symbol: Symbol) -> str:
    nodes = symbol.nodes()
    index = {id(n): k for k, n in enumerate(nodes)}
    out = []
    for node in nodes:
        entry = {"op": "null" if node.is_variable else node.op.name, "name": node.name}
        if not node.is_variable:
            entry["params"] = node.op.format_params(node.params, node.set_params)
        entry["attrs"] = dict(node.attrs)
        entry["inputs"] = [[index[id(c)], i] for c, i in node.inputs]
        out.append(entry)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "nodes": out,
        "arg_nodes": [k for k, n in enumerate(nodes) if n.is_variable],
        "heads": [[index[id(n)], i] for n, i in symbol.heads],
    }
    return json.dumps(doc, indent=2)


def save(symbol: Symbol, fname: str) -> None:
    atomic_write(fname, to_json(symbol).encode())  # readers see the old file or the whole new one


def read(fname: str) -> list[Entry]:
    """The outputs of the graph in a file written by ``Symbol.save`` (or MXNet's ``save``)."""
    with open(fname, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{fname}: not a symbol file: not UTF-8 text (byte {e.start} is {raw[e.start]:#04x}; "
                          "a parameters file, or text saved in another encoding?)") from None
    try:
        return parse(text)
    except FormatError as e:
        raise FormatError(f"{fname}: {e}") from None


def _fail(where: str, what: str):
    raise FormatError(f"load_json: {where}: {what}")


def _entry(where: str, value, nodes: list[Node], before: int) -> tuple[Node, int]:
    if (not isinstance(value, list) or len(value) not in (2, 3)
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        _fail(where, f"an input must be [node index, output index], got {value!r}")
    k, i = value[0], value[1]
    if not 0 <= k < before:
        _fail(where, f"refers to node {k}, which does not come before it (a graph is listed inputs first)")
    if not 0 <= i < nodes[k].num_outputs:
        _fail(where, f"refers to output {i} of node {k} ({nodes[k].name!r}), which has {nodes[k].num_outputs}")
    return nodes[k], i


def _string_dict(where: str, value) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        _fail(where, "attributes must be an object of strings")
    return dict(value)


def parse(text: str) -> list[Entry]:
    """The outputs of the graph in ``tojson()`` text. Every error names the node and what is
    wrong."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"load_json: not UTF-8 text (byte {e.start})") from None
    if not isinstance(text, str):
        raise FormatError(f"load_json: expected the JSON text as a str, got {type(text).__name__}")
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise FormatError(f"load_json: not valid JSON: {e}") from None
    except ValueError as e:  # Python's limit on the digits of an integer, for one
        raise FormatError(f"load_json: not a symbol file: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) or not isinstance(doc.get("heads"), list):
        raise FormatError("load_json: expected an object with 'nodes' and 'heads' lists")
    if "format" in doc:
        if doc["format"] != FORMAT:
            raise FormatError(f"load_json: format {doc['format']!r} is not {FORMAT!r}")
        version = doc.get("version")
        if not isinstance(version, int) or version < 1:
            raise FormatError(f"load_json: version {version!r} is not a valid version")
        if version > VERSION:
            raise FormatError(f"load_json: version {version} was written by a newer tritonsym (this one reads up "
                              f"to {VERSION})")
    nodes: list[Node] = []
    for k, raw in enumerate(doc["nodes"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("op"), str) or not isinstance(raw.get("name"), str):
            raise FormatError(f"load_json: node {k} must be an object with string 'op' and 'name'")
        where = f"node {k} ({raw['name']!r})"
        inputs = raw.get("inputs", [])
        if not isinstance(inputs, list):
            _fail(where, "'inputs' must be a list")
        attrs = _string_dict(where, raw.get("attrs", raw.get("attr")))
        params_text = _string_dict(where, raw.get("params", raw.get("param")))
        if raw["op"] == "null":
            if inputs:
                _fail(where, "a variable has no inputs")
            nodes.append(Node(None, raw["name"], attrs=attrs))
            continue
        op = REGISTRY.get(raw["op"])
        if op is None:
            _fail(where, f"unknown operator {raw['op']!r}")
        if "params" not in raw and "param" not in raw:
            # MXNet keeps parameters and attributes in one dict.
            param_names = {p.name for p in op.params}
            params_text = {k2: v for k2, v in attrs.items() if k2 in param_names}
            attrs = {k2: v for k2, v in attrs.items() if k2 not in param_names}
        try:
            params = op.parse_params(params_text)
        except TritonSymError as e:
            _fail(where, str(e))
        expected = op.inputs(params)
        if len(inputs) != len(expected):
            _fail(where, f"{op.name} takes {len(expected)} inputs ({', '.join(expected)}), got {len(inputs)}")
        entries = [_entry(f"{where} input {i}", v, nodes, k) for i, v in enumerate(inputs)]
        nodes.append(Node(op, raw["name"], params, tuple(params_text), attrs, entries))
    if not doc["heads"]:
        raise FormatError("load_json: 'heads' is empty; a symbol has at least one output")
    heads = [_entry(f"head {i}", v, nodes, len(nodes)) for i, v in enumerate(doc["heads"])]
    return heads
