"""Symbol: a symbolic graph of operators, composed and bound like MXNet 1.x.

A graph is a set of ``Node`` objects (an operator, or a free variable when ``op`` is
None) whose inputs are ``(node, output index)`` entries (``graph.py``); a ``Symbol`` is a
list of such entries, its outputs (``heads``; ``nodes()`` walks the graph under them).
Symbols are built by ``Variable``, the operator functions
(``FullyConnected`` ...), arithmetic and ``Group``, and combined by composition::

    >>> import tritonsym as ts
    >>> net = ts.sym.Variable("data")
    >>> net = ts.sym.FullyConnected(data=net, name="fc1", num_hidden=128)
    >>> net.list_arguments()
    ['data', 'fc1_weight', 'fc1_bias']
"""

from __future__ import annotations

import numbers
from typing import Iterator, Sequence

from ..base import ParamError, dtype_name, to_dtype
from ..operators.registry import get_op
from . import attr_scope, infer, json_format, naming
from .graph import Entry, Node, aux_variables, copy_graph, topo_order


class Symbol:
    """A symbolic expression with one or more outputs. See the module docstring."""

    __slots__ = ("_outputs",)

    def __init__(self, outputs: Sequence[Entry]):
        self._outputs: list[Entry] = list(outputs)

    # ------------------------------------------------------------------ structure

    @property
    def heads(self) -> list[Entry]:
        """The outputs, as ``(node, output index)`` entries of the graph (``graph.Node``)."""
        return list(self._outputs)

    def nodes(self) -> list[Node]:
        """Every node under the outputs, inputs before their users, in depth-first input
        order: the order of ``list_arguments()`` and of execution."""
        return topo_order(self._outputs)

    @property
    def name(self) -> str | None:
        """The name of the node every output comes from (a multi-output operator's too, or a
        group of one node's outputs); None for a group of several nodes, as MXNet's."""
        node = self._outputs[0][0]
        return node.name if all(n is node for n, *_ in self._outputs) else None

    def list_arguments(self) -> list[str]:
        """Free variables (inputs and parameters), depth-first in input order, each once."""
        nodes = self.nodes()
        aux = aux_variables(nodes)
        return [n.name for n in nodes if n.is_variable and id(n) not in aux]

    def list_auxiliary_states(self) -> list[str]:
        """Variables that operators use as auxiliary state (updated, not differentiated)."""
        nodes = self.nodes()
        aux = aux_variables(nodes)
        return [n.name for n in nodes if n.is_variable and id(n) in aux]

    def list_inputs(self) -> list[str]:
        """Arguments and auxiliary states together, in graph order."""
        return [n.name for n in self.nodes() if n.is_variable]

    def list_outputs(self) -> list[str]:
        return [node.output_name(i) for node, i in self._outputs]

    def get_internals(self) -> "Symbol":
        """A group of every node's outputs (variables included), in graph order."""
        return Symbol([(n, i) for n in self.nodes() for i in range(n.num_outputs)])

    def get_children(self) -> "Symbol | None":
        """The inputs of this symbol's head node as a group, or None for a variable."""
        head = self._outputs[0][0]
        return Symbol(head.inputs) if head.inputs else None

    def __len__(self) -> int:
        return len(self._outputs)

    def __iter__(self) -> Iterator["Symbol"]:
        return (Symbol([entry]) for entry in self._outputs)

    def __getitem__(self, index: int | str) -> "Symbol":
        if isinstance(index, str):
            names = self.list_outputs()
            matches = [i for i, n in enumerate(names) if n == index]
            if not matches:
                raise KeyError(f"{index!r} is not an output of this symbol; its outputs are {', '.join(names)}")
            if len(matches) > 1:
                raise KeyError(f"{index!r} names {len(matches)} outputs of this symbol; use an integer index")
            index = matches[0]
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"a symbol is indexed by output position or name, not {type(index).__name__}")
        if not -len(self._outputs) <= index < len(self._outputs):
            raise IndexError(f"index={index} is out of range for a symbol with {len(self._outputs)} outputs")
        return Symbol([self._outputs[index]])

    # ----------------------------------------------------------------- attributes

    def attr(self, key: str) -> str | None:
        """A parameter or attribute of this symbol's node, as a string (None if unset)."""
        self._require_single("attr")
        return attr_scope.with_aliases(self._outputs[0][0].all_attrs()).get(key)

    def list_attr(self) -> dict[str, str]:
        """Parameters and attributes of this symbol's node (``__lr_mult__`` also as ``lr_mult``, as MXNet)."""
        self._require_single("list_attr")
        return attr_scope.with_aliases(self._outputs[0][0].all_attrs())

    def attr_dict(self) -> dict[str, dict[str, str]]:
        """Parameters and attributes of every node in the graph, by node name."""
        return {n.name: attr_scope.with_aliases(a) for n in self.nodes() if (a := n.all_attrs())}

    def _set_attr(self, **attrs) -> None:
        """Set user attributes (string values) on this symbol's node."""
        self._require_single("_set_attr")
        self._outputs[0][0].attrs.update(attr_scope.normalized(attrs))

    def _require_single(self, what: str) -> None:
        if len(self._outputs) != 1:
            raise ParamError(f"{what} needs a single-output symbol; this one has outputs {self.list_outputs()}")

    # ---------------------------------------------------------------- composition

    def __call__(self, *args: "Symbol", name: str | None = None, **kwargs: "Symbol") -> "Symbol":
        """Compose: a copy of this symbol with free variables replaced by other symbols,
        positionally in ``list_arguments()`` order or by name; ``name`` renames the head node.

        >>> net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc1", num_hidden=128)
        >>> net2 = ts.sym.FullyConnected(ts.sym.Variable("data2"), name="net2", num_hidden=128)
        >>> net(data=net2, name="compose").list_arguments()
        ['data2', 'net2_weight', 'net2_bias', 'fc1_weight', 'fc1_bias']
        """
        composed = self.__copy__()
        composed._compose(*args, name=name, **kwargs)
        return composed

    def _compose(self, *args: "Symbol", name: str | None = None, **kwargs: "Symbol") -> None:
        """Compose in place (MXNet's ``_compose``)."""
        for key, value in [*((f"argument {i}", a) for i, a in enumerate(args)), *kwargs.items()]:
            if not isinstance(value, Symbol):
                raise TypeError(f"compose: {key} must be a Symbol, got {type(value).__name__}")
            if len(value._outputs) != 1:
                raise ParamError(f"compose: {key} has {len(value._outputs)} outputs; a single output is required")
        if name:
            self._outputs[0][0].name = name
        variables = [n for n in self.nodes() if n.is_variable]
        if len(args) > len(variables):
            raise ParamError(f"compose: {len(args)} positional arguments for {len(variables)} free variables "
                             f"({', '.join(v.name for v in variables)})")
        replace: dict[int, Entry] = {id(v): a._outputs[0] for v, a in zip(variables, args)}
        by_name = {v.name: v for v in variables[len(args):]}
        unknown = [k for k in kwargs if k not in by_name]
        if unknown:
            raise ParamError(f"compose: unknown keyword argument(s) {', '.join(map(repr, unknown))}; the free "
                             f"variables of this symbol are {', '.join(v.name for v in variables)}")
        replace.update({id(by_name[k]): s._outputs[0] for k, s in kwargs.items()})
        for node in self.nodes():
            node.inputs = [replace.get(id(child), (child, i)) for child, i in node.inputs]
        self._outputs = [replace.get(id(node), (node, i)) for node, i in self._outputs]

    def __copy__(self) -> "Symbol":
        return Symbol(copy_graph(self._outputs))

    def __deepcopy__(self, memo) -> "Symbol":
        return self.__copy__()

    # ----------------------------------------------------------------- arithmetic

    def _binary(self, other, op: str, scalar_op: str, reflected: bool = False) -> "Symbol":
        if isinstance(other, Symbol):
            lhs, rhs = (other, self) if reflected else (self, other)
            return _create(op, (lhs, rhs), None, None, {}, hint=_ARITHMETIC_HINTS.get(op))
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return scalar_arithmetic(scalar_op, self, other)
        return NotImplemented

    # Comparisons build MXNet's comparison operators (1.0 where they hold, else 0.0), so a
    # Symbol has no truth value; ``is`` tells symbols apart, and they stay hashable.
    __hash__ = object.__hash__

    def __eq__(self, other):
        return self._binary(other, "_equal", "_equal_scalar")

    def __ne__(self, other):
        return self._binary(other, "_not_equal", "_not_equal_scalar")

    def __gt__(self, other):
        return self._binary(other, "_greater", "_greater_scalar")

    def __ge__(self, other):
        return self._binary(other, "_greater_equal", "_greater_equal_scalar")

    def __lt__(self, other):
        return self._binary(other, "_lesser", "_lesser_scalar")

    def __le__(self, other):
        return self._binary(other, "_lesser_equal", "_lesser_equal_scalar")

    def __bool__(self):
        raise TypeError("a Symbol has no truth value: it stands for values not computed yet (`a == b` builds "
                        "an _equal node); compare symbols with `is`, or test `symbol is None`")

    def __add__(self, other):
        return self._binary(other, "elemwise_add", "_plus_scalar")

    def __radd__(self, other):
        return self._binary(other, "elemwise_add", "_plus_scalar", reflected=True)

    def __sub__(self, other):
        return self._binary(other, "elemwise_sub", "_minus_scalar")

    def __rsub__(self, other):
        return self._binary(other, "elemwise_sub", "_rminus_scalar", reflected=True)

    def __mul__(self, other):
        return self._binary(other, "elemwise_mul", "_mul_scalar")

    def __rmul__(self, other):
        return self._binary(other, "elemwise_mul", "_mul_scalar", reflected=True)

    def __truediv__(self, other):
        return self._binary(other, "elemwise_div", "_div_scalar")

    def __rtruediv__(self, other):
        return self._binary(other, "elemwise_div", "_rdiv_scalar", reflected=True)

    def __mod__(self, other):
        return self._binary(other, "_mod", "_mod_scalar")

    def __rmod__(self, other):
        return self._binary(other, "_mod", "_rmod_scalar", reflected=True)

    def __pow__(self, other):
        if isinstance(other, Symbol):
            return create("_power", self, other)
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return scalar_arithmetic("_power_scalar", self, other)
        return NotImplemented

    def __rpow__(self, other):
        if isinstance(other, numbers.Real) and not isinstance(other, bool):
            return scalar_arithmetic("_rpower_scalar", self, other)
        return NotImplemented

    def __neg__(self):
        return self * -1.0

    # ---------------------------------------------------------- inference and I/O

    def infer_shape(self, *args, **kwargs):
        """``(arg_shapes, out_shapes, aux_shapes)`` from some argument shapes, positionally in
        ``list_arguments()`` order or by name; ``(None, None, None)`` if incomplete."""
        return infer.infer_shape(self, args, kwargs, partial=False)

    def infer_shape_partial(self, *args, **kwargs):
        """Like ``infer_shape`` but returns what is known, with None for unknown shapes."""
        return infer.infer_shape(self, args, kwargs, partial=True)

    def infer_type(self, *args, **kwargs):
        """``(arg_types, out_types, aux_types)`` as torch dtypes from some argument dtypes
        (torch, numpy or names like "float64"); ``(None, None, None)`` if incomplete."""
        return infer.infer_type(self, args, kwargs)

    def infer_type_partial(self, *args, **kwargs):
        """Like ``infer_type`` but returns what is known, with None for unknown dtypes."""
        return infer.infer_type(self, args, kwargs, partial=True)

    def tojson(self) -> str:
        """The symbol as JSON (format documented in ``tritonsym.symbol.json_format``)."""
        return json_format.to_json(self)

    def save(self, fname: str) -> None:
        """Write ``tojson()`` to ``fname`` (through a temporary file, then renamed)."""
        json_format.save(self, fname)

    # --------------------------------------------------------------------- binding

    def simple_bind(self, ctx=None, grad_req="write", type_dict=None, mirror=False, memory_plan="auto",
                    check_finite=None, cuda_graph=False, shared_arg_names=None, shared_exec=None, **shapes):
        """Bind with arrays allocated in the static workspace; see ``tritonsym.executor``.
        ``mirror=True`` recomputes cheap activations in backward instead of keeping them;
        ``memory_plan``: "auto" | "greedy" | "breadth" | "mxnet" | "none"; ``check_finite=True``
        (or ``TRITONSYM_CHECK_FINITE=1``) names the first operator that writes NaN or inf;
        ``cuda_graph=True`` (GPU) replays forward, backward and the update as CUDA graphs;
        ``shared_exec`` (with ``shared_arg_names``) shares that executor's parameter arrays."""
        return _binder("simple_bind").simple_bind(self, ctx, grad_req=grad_req, type_dict=type_dict, shapes=shapes,
                                                  mirror=mirror, memory_plan=memory_plan, check_finite=check_finite,
                                                  cuda_graph=cuda_graph, shared_arg_names=shared_arg_names,
                                                  shared_exec=shared_exec)

    def bind(self, ctx, args, args_grad=None, grad_req="write", aux_states=None, mirror=False, memory_plan="auto",
             check_finite=None, cuda_graph=False):
        """Bind with the given argument arrays (used in place); see ``tritonsym.executor``."""
        return _binder("bind").bind(self, ctx, args, args_grad=args_grad, grad_req=grad_req, aux_states=aux_states,
                                    mirror=mirror, memory_plan=memory_plan, check_finite=check_finite,
                                    cuda_graph=cuda_graph)

    def eval(self, ctx=None, **kwargs) -> list:
        """MXNet's ``Symbol.eval``: bind for inference with the arguments given by name
        (numpy arrays or torch tensors, each keeping its shape and dtype), run forward once,
        and return the outputs, each a tensor of its own. A label that inference does not
        read may be left out; any other argument left out is an error that names it.

        >>> import numpy as np
        >>> a, b = Variable("a"), Variable("b")
        >>> (a * 2 + b).eval(a=np.ones((1, 2)), b=np.array([[0.0, 1.0]]))[0].tolist()
        [[2.0, 3.0]]
        """
        import numpy as np
        import torch

        arrays = {k: v if isinstance(v, torch.Tensor) else np.asarray(v) for k, v in kwargs.items()}
        exe = self.simple_bind(ctx, grad_req="null", type_dict={k: v.dtype for k, v in arrays.items()},
                               **{k: tuple(v.shape) for k, v in arrays.items()})
        # The outputs are views into the executor's workspace: copies let it go.
        return [out.clone() for out in exe.forward(is_train=False, **arrays)]

    # -------------------------------------------------------------------- printing

    def __repr__(self) -> str:
        if len(self._outputs) == 1:
            return f"<Symbol {self.name}>"
        return f"<Symbol group [{', '.join(n.name for n, _ in self._outputs)}]>"

    def debug_str(self) -> str:
        """The graph in text: outputs, variables, then each operator with inputs and parameters."""
        lines = ["Symbol Outputs:"]
        lines += [f"\toutput[{k}]={n.name}({i})" for k, (n, i) in enumerate(self._outputs)]
        for node in self.nodes():
            if node.is_variable:
                attrs = "".join(f" {k}={v}" for k, v in node.attrs.items())
                lines.append(f"Variable:{node.name}{attrs}")
                continue
            lines += ["--------------------", f"Op:{node.op.name}, Name={node.name}", "Inputs:"]
            lines += [f"\targ[{k}]={c.name}({i})" for k, (c, i) in enumerate(node.inputs)]
            shown = node.all_attrs()
            if shown:
                lines.append("Attrs:")
                lines += [f"\t{k}={v}" for k, v in shown.items()]
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the bind layer

# Binding belongs to the layer above this one (``tritonsym.executor``): it registers itself
# here when it is imported (``import tritonsym`` does), so that ``Symbol.simple_bind`` and
# ``bind`` reach it while the graph layer never imports the executor.
_BIND_LAYER = None


def register_bind_layer(layer) -> None:
    """Called once by ``tritonsym.executor.bind``: the module whose ``simple_bind`` and
    ``bind`` the Symbol methods of those names call."""
    global _BIND_LAYER
    _BIND_LAYER = layer


def _binder(what: str):
    if _BIND_LAYER is None:  # only a partial import of tritonsym gets here
        raise ImportError(f"Symbol.{what}: tritonsym.executor is not imported; import tritonsym first")
    return _BIND_LAYER


# ------------------------------------------------------------------ constructors


def Variable(name: str, attr: dict | None = None, shape=None, lr_mult: float | None = None,
             wd_mult: float | None = None, dtype=None, init=None, **kwargs) -> Symbol:
    """A free variable: a network input, a label or a parameter.

    ``shape``, ``dtype``, ``init``, ``lr_mult`` and ``wd_mult`` are stored as the
    attributes ``__shape__`` ... that inference, binding and training read; other
    keyword arguments and ``attr`` are stored as string attributes, over those of the
    enclosing ``AttrScope``.

    >>> ts.sym.Variable("w", shape=(3, 4), lr_mult=0.1).attr("__shape__")
    '(3, 4)'
    """
    if not isinstance(name, str) or not name:
        raise ParamError(f"Variable: name must be a non-empty string, got {name!r}")
    attrs = attr_scope.current().get(attr)
    if shape is not None:
        from ..operators.registry import parse_shape

        try:
            attrs["__shape__"] = str(parse_shape(shape))
        except ValueError:
            raise ParamError(f"Variable {name!r}: shape={shape!r} is not a tuple of non-negative integers") from None
    if dtype is not None:
        attrs["__dtype__"] = dtype_name(to_dtype(dtype))
    if init is not None:
        attrs["__init__"] = init if isinstance(init, str) else init.dumps() if hasattr(init, "dumps") else str(init)
    for key, value in (("lr_mult", lr_mult), ("wd_mult", wd_mult)):
        if value is not None:  # stored as written, as MXNet does (2 stays '2')
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ParamError(f"Variable {name!r}: {key}={value!r} must be a number")
            attrs[f"__{key}__"] = str(value)
    attrs.update(attr_scope.normalized(kwargs))
    return Symbol([(Node(None, name, attrs=attrs), 0)])


var = Variable


def Group(symbols: Sequence[Symbol]) -> Symbol:
    """One symbol whose outputs are the outputs of ``symbols``, in order."""
    symbols = list(symbols)
    if not symbols or not all(isinstance(s, Symbol) for s in symbols):
        raise TypeError("Group takes a non-empty list of Symbols")
    return Symbol([entry for s in symbols for entry in s._outputs])


def compose(symbol: Symbol, *args: Symbol, name: str | None = None, **kwargs: Symbol) -> Symbol:
    """``symbol(*args, name=name, **kwargs)``: the functional spelling (MXNet's ``mx.apply``)."""
    return symbol(*args, name=name, **kwargs)


def load(fname: str) -> Symbol:
    """A symbol from a file written by ``Symbol.save`` (or MXNet's ``save``); a file that is
    not one is refused naming it (``json_format.py``)."""
    return Symbol(json_format.read(fname))


def load_json(text: str) -> Symbol:
    """A symbol from ``tojson()`` text. Every error names the node and what is wrong."""
    return Symbol(json_format.parse(text))


def create(op_name: str, *args: Symbol, name: str | None = None, attr: dict | None = None, **kwargs) -> Symbol:
    """Apply a registered operator: symbols as inputs (positional or by input name) and
    hyper-parameters by keyword; ``__key__`` keywords (and ``ctx_group``, ``lr_mult`` ...)
    are attributes (``attr_scope.py``). Missing inputs become variables ``<name>_<input>``
    that carry the operator's attributes."""
    return _create(op_name, args, name, attr, kwargs)


def create_called(function: str, op_name: str, *args: Symbol, name: str | None = None, attr: dict | None = None,
                  **kwargs) -> Symbol:
    """``create``, naming the node after ``function``, the name the script called it by (an
    alias such as ``Softmax``, a fluent method): MXNet counts names per function called."""
    return _create(op_name, args, name, attr, kwargs, hint=function)


# What MXNet names the nodes ``a + b`` and the like build: its operators ``+ - * /`` call
# aliases (_Plus, ...) that count names of their own, where elemwise_add(a, b) is elemwise_add0.
_ARITHMETIC_HINTS = {"elemwise_add": "_plus", "elemwise_sub": "_minus", "elemwise_mul": "_mul",
                     "elemwise_div": "_div"}
# MXNet's Symbol arithmetic and mx.sym.maximum/minimum/pow call the CamelCase aliases of the
# scalar operators (_PlusScalar ...), which name their nodes _plusscalar0 ...; a script calling
# _plus_scalar itself gets _plus_scalar0, and the comparisons and 2 ** x (_equal_scalar,
# _rpower_scalar) are called by name.
_SCALAR_ALIAS_HINTS = {f"_{kind}_scalar": f"_{kind}scalar"
                       for kind in ("plus", "minus", "rminus", "mul", "div", "rdiv", "power", "maximum", "minimum",
                                    "mod", "rmod")}


def scalar_arithmetic(op_name: str, data: "Symbol", scalar, name: str | None = None) -> "Symbol":
    """``op_name(data, scalar=scalar)`` named as MXNet's arithmetic names it."""
    return create_called(_SCALAR_ALIAS_HINTS.get(op_name, op_name), op_name, data, name=name, scalar=float(scalar))


def _positional_params(op, args: tuple, param_kwargs: dict) -> tuple[tuple, dict]:
    """MXNet's generated functions take the inputs, then the hyper-parameters, by position:
    ``Reshape(x, (2, -1))`` and ``x.transpose((1, 0))`` pass ``shape`` and ``axes``. Symbols
    fill inputs; what follows the last symbol fills the parameters in their declared order."""
    symbols = 0
    while symbols < len(args) and isinstance(args[symbols], Symbol):
        symbols += 1
    rest = args[symbols:]
    stray = next((i for i, a in enumerate(rest, symbols) if isinstance(a, Symbol)), None)
    if op.variadic and rest:
        raise TypeError(f"{op.name}: positional argument {symbols} must be a Symbol (its inputs are all the "
                        f"positional arguments; hyper-parameters go by keyword), got {type(args[symbols]).__name__}")
    if stray is not None or (rest and symbols < len(op.input_names)):
        i = symbols  # the first value that is not a symbol, where an input is still expected
        raise TypeError(f"{op.name}: positional argument {i} must be a Symbol (its inputs {', '.join(op.input_names)} "
                        f"come first, then hyper-parameters), got {type(args[i]).__name__}")
    names = [p.name for p in op.params]
    if len(rest) > len(names):
        raise ParamError(f"{op.name}: {len(rest)} positional hyper-parameter(s) given but it has {len(names)}"
                         f"{' (' + ', '.join(names) + ')' if names else ''}")
    for name, value in zip(names, rest):
        if name in param_kwargs:
            raise ParamError(f"{op.name}: {name!r} is given by position and by keyword")
        param_kwargs = {**param_kwargs, name: value}
    return args[:symbols], param_kwargs


def _create(op_name: str, args: tuple, name: str | None, attr: dict | None, kwargs: dict,
            hint: str | None = None) -> Symbol:
    op = get_op(op_name)
    attributes = attr_scope.current().get(attr)
    attributes.update(attr_scope.normalized({k: kwargs.pop(k) for k in list(kwargs) if attr_scope.is_attribute_key(k)
                                             and k not in op.input_names}))
    # An input given as None is not given (as in MXNet's generated functions, whose inputs
    # default to None): ``FullyConnected(x, weight=None)`` creates ``<name>_weight``.
    kwargs = {k: v for k, v in kwargs.items() if not (v is None and k in op.input_names)}
    symbol_kwargs = {k: v for k, v in kwargs.items() if isinstance(v, Symbol)}
    param_kwargs = {k: v for k, v in kwargs.items() if k not in symbol_kwargs}
    misplaced = [k for k in param_kwargs if k in op.input_names]
    if misplaced:
        raise TypeError(f"{op.name}: input {misplaced[0]!r} must be a Symbol, got "
                        f"{type(param_kwargs[misplaced[0]]).__name__}")
    args, param_kwargs = _positional_params(op, args, param_kwargs)
    if op.variadic and op.variadic_count not in param_kwargs:
        param_kwargs[op.variadic_count] = len(args)  # as MXNet's generated functions set it
    params = op.parse_params(param_kwargs)
    input_names = op.inputs(params)
    if len(args) > len(input_names):
        raise ParamError(f"{op.name}: {len(args)} positional inputs given but it takes {len(input_names)} "
                         f"({', '.join(input_names)})")
    given = dict(zip(input_names, args))
    for key, value in symbol_kwargs.items():
        if key not in input_names:
            raise ParamError(f"{op.name}: {key!r} is not an input here; its inputs are {', '.join(input_names)}")
        if key in given:
            raise ParamError(f"{op.name}: input {key!r} is given twice")
        given[key] = value
    node_name = naming.current().get(name, hint or op.hint)
    inputs = []
    for input_name in input_names:
        value = given.get(input_name)
        if value is None:  # MXNet's created variables take the node's attributes (its __lr_mult__ ...)
            value = Variable(f"{node_name}_{input_name}", attr=attributes)
        if len(value._outputs) != 1:
            raise ParamError(f"{op.name} {node_name!r}: input {input_name!r} has {len(value._outputs)} outputs; "
                             "a single output is required")
        inputs.append(value._outputs[0])
    for input_name, spec in op.input_initializers(params).items():
        source = inputs[input_names.index(input_name)][0]
        if source.is_variable and "__init__" not in source.attrs:
            source.attrs["__init__"] = spec
    declared = {q.name: q for q in op.params}
    set_params = [k for k in param_kwargs if declared[k].is_given(param_kwargs)]
    node = Node(op, node_name, params, set_params, attributes, inputs)
    return Symbol([(node, i) for i in range(node.num_outputs)])
