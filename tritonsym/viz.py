"""Looking at a network: a layer table (``print_summary``) and a Graphviz drawing (``plot_network``).

>>> import tritonsym as ts
>>> net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc1", num_hidden=128)
>>> net = ts.sym.SoftmaxOutput(ts.sym.FullyConnected(net, name="fc2", num_hidden=10), name="out")
>>> ts.viz.print_summary(net, shape={"data": (64, 784)})
Layer (type)                    Output Shape    Param #  Previous Layer
================================================================================
data (Variable)                 (64, 784)       0
fc1 (FullyConnected)            (64, 128)       100480   data
fc2 (FullyConnected)            (64, 10)        1290     fc1
out (SoftmaxOutput)             (64, 10)        0        fc2, out_label
================================================================================
Total params: 101770
"""

from __future__ import annotations

import math
import shutil
import subprocess

from .base import TritonSymError, dtype_name


def _layers(sym, shape: dict | None):
    """``(node, output shapes, parameters, previous layers)`` per node, inputs first.

    A node's parameters are the variables it reads that are not given in ``shape`` (the
    data) and that take a gradient (not labels); those variables are left out of the
    rows (``parameter_names`` lists them)."""
    shape = dict(shape or {})
    shapes, arg_shapes = {}, {}
    if shape:
        internals = sym.get_internals()  # same arguments as sym: one inference gives both
        in_shapes, out_shapes, _ = internals.infer_shape_partial(**shape)
        shapes = dict(zip(internals.list_outputs(), out_shapes))
        arg_shapes = dict(zip(internals.list_arguments(), in_shapes))
    parameters, labels = set(), set()
    rows = []
    for node in sym.nodes():
        if node.is_variable:
            rows.append((node, [arg_shapes.get(node.name)], [], []))
            continue
        frozen = node.op.no_grad_inputs(node.params)
        params, previous = [], []
        for input_name, (source, index) in zip(node.input_names(), node.inputs):
            if source.is_variable and input_name in frozen:
                labels.add(source.name)
            # Data is what ``shape`` names; without it, what feeds a "data" input under its own name.
            is_data = source.name in shape if shape else (
                input_name == "data" and source.name != f"{node.name}_{input_name}")
            if source.is_variable and not is_data and input_name not in frozen:
                params.append((source.name, arg_shapes.get(source.name)))
                parameters.add(source.name)
            else:
                previous.append(source.name if source.num_outputs == 1 else source.output_name(index))
        rows.append((node, [shapes.get(node.output_name(k)) for k in range(node.num_outputs)], params, previous))
    return rows, parameters, labels


def _count(shape) -> int | None:
    return None if shape is None else math.prod(shape)


def print_summary(sym, shape: dict | None = None, line_length: int = 80, print_fn=print) -> None:
    """Print one row per layer: name (type), output shape, parameter count and the layers
    it reads; then the total. ``shape`` gives the input shapes (``{"data": (64, 784)}``);
    without it shapes and counts show as ``?``."""
    widths = [int(line_length * f) for f in (0.4, 0.2, 0.12)]

    def row(cells):
        text = "".join(str(c).ljust(w) for c, w in zip(cells, widths)) + str(cells[-1])
        print_fn(text.rstrip())

    row(["Layer (type)", "Output Shape", "Param #", "Previous Layer"])
    print_fn("=" * line_length)
    total, unknown, counted = 0, False, set()
    rows, parameters, labels = _layers(sym, shape)
    for node, outs, params, previous in rows:
        if node.name in parameters or node.name in labels:
            continue
        # A parameter shared by several layers counts once, at its first user.
        counts = [_count(s) for name, s in params if name not in counted]
        counted.update(name for name, _ in params)
        if any(c is None for c in counts):
            unknown = True
        count = sum(c for c in counts if c is not None)
        total += count
        kind = "Variable" if node.is_variable else node.op.name
        out = ", ".join("?" if s is None else str(tuple(s)) for s in outs)
        row([f"{node.name} ({kind})", out, "?" if any(c is None for c in counts) else count, ", ".join(previous)])
    print_fn("=" * line_length)
    print_fn(f"Total params: {total}{' (and some of unknown shape)' if unknown else ''}")


class Graph:
    """A network drawing as Graphviz DOT text (``source``); ``render`` runs ``dot``."""

    def __init__(self, source: str, name: str, format: str = "svg"):
        self.source = source
        self.name = name
        self.format = format

    def __str__(self) -> str:
        return self.source

    def save(self, path: str) -> str:
        with open(path, "w") as f:
            f.write(self.source)
        return path

    def render(self, path: str | None = None, format: str | None = None) -> str:
        """Write ``<path>.<format>`` (svg, png, pdf; by default plot_network's ``save_format``)
        with Graphviz's ``dot``; returns the file name."""
        format = format or self.format
        dot = shutil.which("dot")
        if dot is None:
            raise TritonSymError("plot_network: rendering needs Graphviz's 'dot' program (apt install graphviz, "
                                 "brew install graphviz); the DOT text is in .source, or .save('net.dot') it")
        out = f"{path or self.name}.{format}"
        result = subprocess.run([dot, f"-T{format}", "-o", out], input=self.source, text=True, capture_output=True)
        if result.returncode != 0:
            raise TritonSymError(f"plot_network: dot failed: {result.stderr.strip()}")
        return out

    def _repr_svg_(self):  # notebooks draw it inline when dot is present
        if shutil.which("dot") is None:
            return None
        return subprocess.run(["dot", "-Tsvg"], input=self.source, text=True, capture_output=True).stdout


_COLORS = {"FullyConnected": "#fb8072", "Activation": "#ffffb3", "LeakyReLU": "#ffffb3", "SoftmaxOutput": "#b3de69",
           "softmax": "#b3de69", "log_softmax": "#b3de69", "softmin": "#b3de69", "Flatten": "#fdb462"}


def _quote(*lines: str) -> str:
    """A DOT string; several lines are joined with DOT's own line break."""
    return '"' + "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines) + '"'


def plot_network(sym, title: str = "plot", save_format: str = "svg", shape: dict | None = None,
                 dtype: dict | None = None, node_attrs: dict | None = None, hide_weights: bool = True,
                 memory=None) -> Graph:
    """The network as a Graphviz graph (MXNet's arguments, in its order): one box per
    operator (with its main parameters), edges labelled with the shapes flowing along them
    when ``shape`` is given, and their dtypes when ``dtype`` (input name -> dtype) is.

    ``node_attrs``: Graphviz attributes for every node, over the defaults
    (``{"shape": "oval", "fixedsize": "false"}``). ``save_format``: what ``render()``
    writes by default. ``memory``: a bound ``Executor`` (or its ``memory`` report); each
    operator's box then also shows where the planner put its output: bytes, offset, and
    what it shares storage with or was written over in place."""
    report = getattr(memory, "memory", memory)
    planned = {v.name: v for v in report.values} if report is not None else {}
    defaults = {"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "10"}
    defaults.update({str(k): str(v) for k, v in (node_attrs or {}).items()})
    lines = [f"digraph {_quote(title)} {{", f"  node [{', '.join(f'{k}={_quote(v)}' for k, v in defaults.items())}];",
             "  edge [fontname=Helvetica, fontsize=9];"]
    rows, parameters, _ = _layers(sym, shape)
    types = _output_types(sym, dtype) if dtype is not None else {}
    shown = set()
    for node, outs, params, _ in rows:
        if node.is_variable:
            if hide_weights and node.name in parameters:
                continue
            lines.append(f"  {_quote(node.name)} [label={_quote(node.name)}, shape=oval, fillcolor=\"#8dd3c7\"];")
            shown.add(node.name)
            continue
        label = [f"{node.name}", node.op.name]
        label += [f"{k}={v}" for k, v in node.op.format_params(node.params, node.set_params).items()]
        for k in range(node.num_outputs):
            value = planned.get(node.output_name(k))
            if value is not None:
                where = f"{value.nbytes} B @ {value.offset}"
                if value.inplace_over:
                    where += f", in place over {value.inplace_over}"
                elif value.shares_with:
                    where += f", shares with {', '.join(value.shares_with)}"
                label.append(where)
        color = _COLORS.get(node.op.name, "#bebada")
        lines.append(f"  {_quote(node.name)} [label={_quote(*label)}, fillcolor=\"{color}\"];")
        shown.add(node.name)
    output_shapes = {id(node): outs for node, outs, _, _ in rows}
    for node, outs, params, _ in rows:
        if node.is_variable:
            continue
        for source, index in node.inputs:
            if source.name not in shown:
                continue
            edge_shape = output_shapes[id(source)][index]
            text = [str(tuple(edge_shape))] if edge_shape is not None else []
            if types.get((id(source), index)) is not None:
                text.append(dtype_name(types[(id(source), index)]))
            attrs = f" [label={_quote(' '.join(text))}]" if text else ""
            lines.append(f"  {_quote(source.name)} -> {_quote(node.name)}{attrs};")
    lines.append("}")
    return Graph("\n".join(lines) + "\n", title, save_format)


def _output_types(sym, dtype: dict) -> dict:
    """Every output's dtype, by ``(id(node), index)``, inferred from the given input dtypes."""
    internals = sym.get_internals()
    _, out_types, _ = internals.infer_type_partial(**dtype)
    return {(id(node), index): t for (node, index), t in zip(internals.heads, out_types)}
