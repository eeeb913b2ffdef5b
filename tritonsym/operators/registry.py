"""The operator registry: one ``OpDef`` per operator holds every rule about it.

Symbol construction, JSON, shape and type inference, the gradient graph, the planner and
the executor know operators only through this table. An entry declares, side by side:

- name, automatic-name hint, parameters (typed, with defaults and validation);
- its inputs, including the implicit ones a symbol creates as ``<name>_<input>``
  variables (``weight``, ``bias``, ``label``), which inputs take no gradient, and the
  initializer an input variable without one of its own is given (``input_initializers``);
- shape and type rules (metadata only, both directions where MXNet has them);
- forward and backward as pre-built kernel launches writing into given buffers;
- which forward values backward reads (``backward_needs``), which outputs are views of
  an input (no memory; no kernel, but for one whose forward writes the auxiliary state it
  outputs: CacheWrite), and whether a head gradient is read at all;
- in-place options for the memory planner: which output may be written over which input
  (``inplace``), which input gradient over which output gradient or saved value
  (``backward_inplace``), and whether recomputing the forward is cheap enough for the
  ``mirror`` option (``cheap``);
- fusion: an activation may become the epilogue of the operator before it; in backward
  that activation's gradient (and the bias gradient of the operator it is fused into) may
  be finished in the epilogue of the operator after it, which computes that gradient
  anyway (``grad_epilogue_inputs``, ``bias_input``): both products of a FullyConnected's
  backward then stay plain, and the activation's output need not outlive the step after it;
  and an activation read only by a product of its shape joins it as a GatedActivation
  (``gate``, ``gate_product``), which keeps the activation's input instead of its output;
- scratch buffers a forward or backward needs while it runs (``forward_temps``,
  ``backward_temps``): planned like every other value, live only during that step;
- a forward that differs when training (``forward_in_training``: built twice, with
  ``ForwardArgs.is_train`` False and True), and small values a training forward keeps for
  its backward (``saved_for_backward``: alive from the forward step to the backward step).

An output of a multi-output operator that nothing reads gets a zero gradient (a scratch
value of the backward step, zero-filled by the step), as in MXNet.

An in-place pair is a promise about the kernel: every element of the target is computed
from the same element of the source (so it is stored only after that element was read),
the two are indexed identically, and no other element of the source is read after any
element of the target is written. Elementwise and row-local kernels keep it; a matrix
product does not.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..base import ParamError

REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: ``kind`` is int, float, bool, str, "shape" (dimensions, never
    negative), "ints" (a tuple of integers that may be negative: axes, Reshape's codes),
    "optional_int" (an integer or None: slice_axis's end), "optional_ints" (a tuple of integers
    or Nones: slice's begin, end and step), "floats" (a tuple of numbers: MultiBoxPrior's
    sizes) or "optional_float" (a finite number or None: attention's scale)."""

    name: str
    kind: Any
    default: Any = REQUIRED
    choices: tuple | None = None
    doc: str = ""
    check: Callable[[Any], str | None] | None = None  # returns a complaint, or None

    @property
    def none_is_a_value(self) -> bool:
        """An optional parameter whose default is a value: None given is not "left out" but
        None (topk's axis=None sorts the flattened data where the default -1 sorts rows)."""
        return self.kind in ("optional_int", "optional_float") and self.default not in (None, REQUIRED)

    def is_given(self, given: dict) -> bool:
        """The script (or file) set this parameter in ``given``."""
        return self.name in given and (given[self.name] is not None or self.none_is_a_value)

    def parse(self, op: str, value: Any) -> Any:
        """The typed value from a Python value or from the string JSON stores."""
        if (self.default is None or self.none_is_a_value) and (value is None or str(value).strip() == "None"):
            return None  # how MXNet writes an optional parameter left unset (Convolution's cudnn_tune)
        try:
            parsed = _PARSERS[self.kind](value)
        except (TypeError, ValueError):
            raise ParamError(f"{op}: {self.name}={value!r} is not a valid {_KIND_NAMES[self.kind]}") from None
        if self.choices is not None and parsed not in self.choices:
            raise ParamError(f"{op}: {self.name}={parsed!r} is not one of {', '.join(map(repr, self.choices))}")
        complaint = self.check(parsed) if self.check else None
        if complaint:
            raise ParamError(f"{op}: {self.name}={parsed!r} {complaint}")
        return parsed

    def format(self, value: Any) -> str:
        """How MXNet writes a parameter into a symbol's attributes and JSON."""
        if self.kind in ("shape", "ints", "optional_ints", "floats"):
            return str(tuple(value))
        return str(value)


def _parse_bool(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(value)


def _parse_int(value) -> int:
    # numpy's integer and float scalars are numbers too (num_hidden=np.int64(10))
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError(value)


def _parse_float(value) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise ValueError(value)


def _parse_str(value) -> str:
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def parse_shape(value) -> tuple[int, ...]:
    """A shape from a tuple/list of ints or its string ``"(3, 4)"``, or one size (``3``,
    ``"3"``: one axis, as MXNet's shapes take it); never evaluates code."""
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+", text):
            return (int(text),)
        if not re.fullmatch(r"[\(\[]\s*(\d+\s*(,\s*\d+\s*)*,?\s*)?[\)\]]", text):
            raise ValueError(value)
        value = [int(v) for v in re.findall(r"\d+", text)]
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise ValueError(value)
    dims = tuple(_parse_int(v) for v in value)
    if any(d < 0 for d in dims):
        raise ValueError(value)
    return dims


def _parse_tuple(value, number: str, scalar: type, parse_item) -> tuple:
    """A tuple from a tuple/list, one ``scalar``, or its string: one number matching
    ``number`` (a regex), or them in brackets, comma-separated; never evaluates code."""
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(number, text):
            return (parse_item(text),)
        if not re.fullmatch(rf"[\(\[]({number}(,{number})*,?\s*)?[\)\]]", text):
            raise ValueError(value)
        return tuple(parse_item(v) for v in text.strip("()[] ").split(",") if v.strip())
    if isinstance(value, scalar) and not isinstance(value, (bool, np.bool_)):
        return (parse_item(value),)
    if not isinstance(value, (tuple, list)):
        raise ValueError(value)
    return tuple(parse_item(v) for v in value)


def parse_ints(value) -> tuple[int, ...]:
    """A tuple of integers, negative ones included, from a tuple/list, one integer, or its
    string ``"(0, -1)"`` / ``"-1"``."""
    return _parse_tuple(value, r"\s*[+-]?\d+\s*", (numbers.Integral, np.integer), _parse_int)


def parse_floats(value) -> tuple[float, ...]:
    """A tuple of numbers from a tuple/list, one number, or its string ``"(0.2, 0.272)"`` /
    ``"[1, 2, 0.5]"`` / ``"0.3"`` (how MXNet writes a float tuple)."""
    return _parse_tuple(value, r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*", numbers.Real, _parse_float)


def _parse_optional_int(value) -> int | None:
    """An integer, or None (MXNet writes it "None")."""
    if value is None or (isinstance(value, str) and value.strip() == "None"):
        return None
    return _parse_int(value)


def parse_optional_ints(value) -> tuple[int | None, ...]:
    """A tuple of integers or Nones from a tuple/list or its string ``"(1, None, -2)"``
    (how MXNet writes slice's begin); never evaluates code."""
    if isinstance(value, str):
        text = value.strip()
        item = r"\s*([+-]?\d+|None)\s*"
        if not re.fullmatch(rf"[\(\[]({item}(,{item})*,?\s*)?[\)\]]", text):
            raise ValueError(value)
        value = re.findall(r"[+-]?\d+|None", text)
    if not isinstance(value, (tuple, list)):
        raise ValueError(value)
    return tuple(_parse_optional_int(v) for v in value)


def _parse_optional_float(value) -> float | None:
    """A finite number, or None (MXNet writes it "None")."""
    if value is None or (isinstance(value, str) and value.strip() == "None"):
        return None
    parsed = _parse_float(value)
    if not math.isfinite(parsed):
        raise ValueError(value)
    return parsed


_PARSERS = {int: _parse_int, float: _parse_float, bool: _parse_bool, str: _parse_str, "shape": parse_shape,
            "ints": parse_ints, "floats": parse_floats, "optional_int": _parse_optional_int,
            "optional_ints": parse_optional_ints, "optional_float": _parse_optional_float}
_KIND_NAMES = {int: "integer", float: "number", bool: "boolean (True/False)", str: "string", "shape": "shape",
               "ints": "tuple of integers", "floats": "tuple of numbers", "optional_int": "integer or None",
               "optional_ints": "tuple of integers or Nones",
               "optional_float": "finite number or None"}


def positive(value) -> str | None:
    return None if value > 0 else "must be positive"


# ------------------------------------------------------------------ rule arguments


class ShapeMismatch(Exception):
    """Raised by a shape or type rule; the driver prefixes the node and operator."""


def merge_shapes(a, b) -> tuple[int, ...] | None:
    """Two partial descriptions of one shape made one, or None where they disagree. A 0 is
    a dimension not known yet, as in MXNet's shapes: (0, 10) and (12, 0) make (12, 10)."""
    if len(a) != len(b):
        return None
    merged = []
    for x, y in zip(a, b):
        if x and y and x != y:
            return None
        merged.append(x or y)
    return tuple(merged)


def is_complete(shape) -> bool:
    """A shape with every dimension known (no 0)."""
    return shape is not None and all(d > 0 for d in shape)


def unify(what: str, known, proposed):
    """Merge what is known about a shape (or dtype) with what a rule proposes."""
    if known is None:
        return proposed
    if proposed is None or known == proposed:
        return known
    if isinstance(known, (tuple, list)) and isinstance(proposed, (tuple, list)):
        merged = merge_shapes(known, proposed)
        if merged is not None:
            return merged
    raise ShapeMismatch(f"{what} is {_show(known)} but {_show(proposed)} is expected")


def _show(value) -> str:
    return str(tuple(value)) if isinstance(value, (tuple, list)) else str(value).removeprefix("torch.")


@dataclass
class ForwardArgs:
    """What a forward rule gets at bind: parsed params and the tensors it reads and writes."""

    params: dict
    inputs: list[torch.Tensor]
    outputs: list[torch.Tensor]
    epilogue: tuple[str, float] | None = None  # an activation fused after this operator
    temps: dict[str, torch.Tensor] = field(default_factory=dict)  # what forward_temps asked for
    # The launches are for a training forward (only asked for when ``forward_in_training``).
    is_train: bool = False
    # Where to keep what ``saved_for_backward`` declared, by name: given to the training
    # forward of a bind whose backward reads them; empty otherwise (an inference forward, a
    # bind without this operator's backward, mirror's recomputed forward), and then not written.
    saved: dict[str, torch.Tensor] = field(default_factory=dict)
    node: str = ""  # the node's name: a key of its own (Dropout's random stream)
    # The executor's loss scale (see ``BackwardArgs``), for a loss whose training forward
    # makes its gradient (SoftmaxOutput keeps it in ``saved``).
    loss_scale: torch.Tensor | None = None


@dataclass
class GradEpilogue:
    """Input ``input``'s gradient, finished in this backward's epilogue for the operator
    that produced that input: times ``act'`` of the input (the output of that operator's
    fused activation ``act``, ``slope``), and that operator's bias gradient, the column sum
    of the finished gradient over its rows, written (or with ``accumulate_bias``, added)
    into ``bias_grad`` (None: not wanted). The executor gives the rule tensors; the
    program holds ``Value``s."""

    input: int
    act: str
    slope: float
    bias_grad: Any = None
    accumulate_bias: bool = False


@dataclass
class BackwardArgs:
    """What a backward rule gets at bind.

    ``inputs``/``outputs`` hold only what ``backward_needs`` declared (others are None);
    ``out_grads[i]`` is the gradient of output i (None where the operator reads no head
    gradient); ``in_grads[i]`` is where input i's gradient goes (None: not wanted), and
    ``accumulate[i]`` says whether to add into it rather than overwrite it.
    ``loss_scale``: the executor's one-element float32 loss scale (1 unless an optimizer
    scales the loss, ``LossScaler``); a loss operator multiplies the gradient it makes by
    it, reading it on the device, and declares so with ``applies_loss_scale``.
    """

    params: dict
    inputs: list[torch.Tensor | None]
    outputs: list[torch.Tensor | None]
    out_grads: list[torch.Tensor | None]
    in_grads: list[torch.Tensor | None]
    accumulate: list[bool]
    temps: dict[str, torch.Tensor] = field(default_factory=dict)
    epilogue: tuple[str, float] | None = None
    loss_scale: torch.Tensor | None = None
    saved: dict[str, torch.Tensor] = field(default_factory=dict)  # what the training forward kept
    node: str = ""  # the node's name, as in ForwardArgs
    # Every input's shape, also of inputs whose values backward does not read (Concat's widths).
    input_shapes: list[tuple] = field(default_factory=list)
    # Set when the operator declares ``grad_epilogue_inputs`` and the executor chose to use it;
    # ``temps`` then also holds what ``grad_epilogue_temps`` asked for.
    grad_epilogue: GradEpilogue | None = None


@dataclass
class OpDef:
    name: str
    doc: str
    params: Sequence[Param]
    input_names: Sequence[str]  # every input any parameter setting may have
    infer_shape: Callable[[dict, list, list], tuple[list, list]]
    forward: Callable[[ForwardArgs], list]
    backward: Callable[[BackwardArgs], list]
    backward_needs: Callable[[dict, tuple | None], tuple[Sequence[int], Sequence[int]]]
    infer_type: Callable[[dict, list, list], tuple[list, list]] | None = None
    # The dtype of an output that nothing in the graph decides (arrays made from parameters
    # alone: ``zeros``, ``arange``): inference gives it only after every rule has run, so
    # ``x + zeros(shape)`` follows x's dtype and ``zeros(shape)`` alone is float32, as MXNet's.
    default_output_type: Callable[[dict], torch.dtype | None] = lambda params: None
    hint: str | None = None
    # The inputs this parameter setting has, when some are optional (FC's bias).
    active_inputs: Callable[[dict], list[str]] | None = None
    # How many outputs: a number, or a function of the parameters (BatchNorm has 3 with
    # output_mean_var, else 1); ``outputs_count(params)`` reads either.
    num_outputs: int | Callable[[dict], int] = 1
    output_names: Callable[[dict], list[str]] = lambda params: ["output"]
    no_grad_inputs: Callable[[dict], set[str]] = lambda params: set()
    # Inputs that hold class indices, {input index: number of classes}, from the parameters
    # and the inputs' shapes. Only these may have an integer dtype (every other input is
    # computed on in floating point), and a floating one must hold every class exactly.
    class_inputs: Callable[[dict, list], dict[int, int]] = lambda params, shapes: {}
    aux_inputs: Callable[[dict], set[str]] = lambda params: set()
    # Output index -> input index whose storage it shares as a view (reshape, identity; CacheWrite's
    # output is the auxiliary state its forward writes into).
    output_aliases: Callable[[dict], dict[int, int]] = lambda params: {}
    # Output index -> (input index, element offset) for an output that is a contiguous
    # window of an input's storage (a slice along an axis that only axes of size 1
    # precede), from the parameters and the input shapes. The program makes it a view
    # there when the offset keeps the kernels' alignment (``Value.window``); the forward
    # must then launch nothing for it (it finds its output already in place), and copy
    # where the program did not.
    output_windows: Callable[[dict, list], dict[int, tuple[int, int]]] = lambda params, in_shapes: {}
    # An operator whose output is its one input with the axes permuted (transpose): the
    # order, from the parameters and the input's number of dimensions; None where it is
    # not (or is the identity, an ordinary view). Where every reader of the output reads
    # it through strides, or the operator that made the input can write it through them,
    # the program makes the output a permuted view (``Value.permute``) and drops the step:
    # no launch and no memory, forward or backward.
    permutation: Callable[[dict, int], tuple[int, ...] | None] = lambda params, ndim: None
    # Inputs this operator reads through any strides, writing (or adding into) their
    # gradients through the same strides; outputs it writes through any strides, reading
    # their gradients so. A permutation next to them costs nothing (``permutation``).
    strided_inputs: Callable[[dict], Sequence[int]] = lambda params: ()
    strided_outputs: Callable[[dict], Sequence[int]] = lambda params: ()
    # One array read at several inputs (x * x, self-attention) has one gradient array: the
    # first of those inputs writes (or adds into) it, the later ones add. True: the backward
    # keeps that order whatever order its launches and stores run in (an elementwise kernel
    # storing each element's gradients from one thread, in input order). False (and where
    # the array comes as two different views, one permuted): the later inputs' gradients
    # go to scratch of the step, added in after its launches.
    repeated_input_grads: bool = False
    # Loss operators and BlockGrad make their own gradient and read no head gradient.
    needs_head_grad: Callable[[dict], bool] = lambda params: True
    # A loss operator multiplies the gradient it makes by ``BackwardArgs.loss_scale``;
    # an optimizer with a loss scaler accepts only graphs whose losses all do.
    applies_loss_scale: bool = False
    # An activation that can run inside the preceding operator's epilogue: (act, slope).
    epilogue: Callable[[dict], tuple[str, float] | None] = lambda params: None
    accepts_epilogue: bool = False
    # Gated products: an operator computing act(x) elementwise names ``act`` as
    # GatedActivation's ``act_type`` (``gate``), and an elementwise product says so
    # (``gate_product``); a product of such an activation, read nowhere else, and an array of
    # its shape runs as one GatedActivation (``executor/gates.py``).
    gate: Callable[[dict], str | None] = lambda params: None
    gate_product: bool = False
    # The input of an epilogue-accepting operator whose gradient is the column sum of its
    # output's gradient over the rows (FullyConnected's bias), or None.
    bias_input: Callable[[dict], int | None] = lambda params: None
    # Inputs whose gradient this backward can finish for the operator that produced them
    # (``BackwardArgs.grad_epilogue``), from the parameters and the inputs' shapes; for a
    # bias sum, that input's last axis must be the one the sum keeps. Its scratch buffers:
    # ``grad_epilogue_temps`` (when the bias gradient is wanted), like ``backward_temps``.
    grad_epilogue_inputs: Callable[[dict, list], Sequence[int]] = lambda params, shapes: ()
    grad_epilogue_temps: Callable[[dict, list, list], dict[str, tuple[tuple, torch.dtype]]] = \
        lambda params, shapes, dtypes: {}
    # Scratch buffers by name, {name: (shape, dtype)}, from the parameters and the inputs'
    # shapes and dtypes; the rule receives them as ``temps``, live only during its step.
    forward_temps: Callable[[dict, list, list], dict[str, tuple[tuple, torch.dtype]]] = \
        lambda params, shapes, dtypes: {}
    backward_temps: Callable[[dict, list, list], dict[str, tuple[tuple, torch.dtype]]] = \
        lambda params, shapes, dtypes: {}
    aliases: tuple[str, ...] = ()
    # {input name: initializer JSON} that input takes when it is a variable with no ``init`` of
    # its own, set as the operator is created (MXNet's FSetInputVarAttrOnCompose: UpSampling's
    # bilinear weight starts as a bilinear kernel whatever initializer the script passes).
    input_initializers: Callable[[dict], dict[str, str]] = lambda params: {}
    # (input index, output index): the output may take over the input's storage.
    inplace: Callable[[dict], Sequence[tuple[int, int]]] = lambda params: ()
    # (input-gradient index, (source, index)) with source "out_grad", "output" or "input"
    # (index: which one) or "saved" (index: the name in ``saved_for_backward``): that input
    # gradient may take over the source's storage, in order of preference. A gradient that
    # the training forward made whole (SoftmaxOutput's) then costs the backward nothing.
    backward_inplace: Callable[[dict, tuple | None], Sequence[tuple[int, tuple[str, int]]]] = \
        lambda params, epilogue: ()
    # Forward costs about one read and one write per element: ``mirror`` may recompute it in
    # backward instead of keeping its output.
    cheap: bool = False
    # The forward computes otherwise when training (``forward(is_train=True)``): its rule is
    # asked twice at bind, with ``ForwardArgs.is_train`` False and True, and the executor runs
    # the launches of the kind of forward called (BatchNorm's batch statistics, Dropout's mask).
    forward_in_training: Callable[[dict], bool] = lambda params: False
    # Small values the training forward computes for backward, {name: (shape, dtype)} from
    # the parameters and the inputs' shapes and dtypes (LayerNorm's per-row mean and
    # reciprocal standard deviation): planned like any value, alive from the forward step to
    # the backward step, and only in a bind that runs this operator's backward.
    saved_for_backward: Callable[[dict, list, list], dict[str, tuple[tuple, torch.dtype]]] = \
        lambda params, shapes, dtypes: {}
    # Takes any number of inputs, ``arg0`` ... ``arg{num_args - 1}`` (Concat): ``num_args`` is
    # a parameter, set from the number of symbols given when the script leaves it out, and
    # ``input_names`` holds one name for the documentation.
    variadic: bool = False
    # The parameter holding that count: ``num_args`` (Concat, add_n), ``num_outputs``
    # (amp_multicast, whose inputs and outputs pair up).
    variadic_count: str = "num_args"
    # Draws from ``tritonsym.random``'s device state (Dropout): each training forward of a
    # graph holding such an operator first advances the state's step, on the device.
    draws_random: Callable[[dict], bool] = lambda params: False
    # Draws in an inference forward too (Dropout with mode='always', Monte Carlo dropout):
    # each inference forward then advances the state first, so every call draws anew.
    draws_random_in_inference: Callable[[dict], bool] = lambda params: False
    # A rule between parameters (each ``Param.check`` sees its own value only): the
    # complaint, which names the parameters and their values, or None.
    check_params: Callable[[dict], str | None] = lambda params: None

    def __post_init__(self):
        self.hint = self.hint or self.name.lower()
        if self.infer_type is None:
            self.infer_type = same_dtype_everywhere

    def parse_params(self, given: dict) -> dict:
        """Typed parameters with defaults filled in; unknown or missing ones are errors."""
        known = {p.name: p for p in self.params}
        unknown = [k for k in given if k not in known]
        if unknown:
            raise ParamError(f"{self.name}: unknown argument(s) {', '.join(map(repr, unknown))}; "
                             f"its parameters are {', '.join(known) or 'none'} and its inputs "
                             f"{', '.join(self.all_input_names())}")
        parsed = {}
        for p in self.params:
            if p.is_given(given):
                parsed[p.name] = p.parse(self.name, given[p.name])
            elif p.default is REQUIRED:
                raise ParamError(f"{self.name}: the required parameter {p.name!r} is missing")
            else:
                parsed[p.name] = p.default
        complaint = self.check_params(parsed)
        if complaint:
            raise ParamError(f"{self.name}: {complaint}")
        return parsed

    def format_params(self, params: dict, only_set: Sequence[str] | None = None) -> dict[str, str]:
        """Parameters as MXNet-style strings (for attr(), attr_dict() and JSON)."""
        return {p.name: p.format(params[p.name]) for p in self.params
                if only_set is None or p.name in only_set}

    def outputs_count(self, params: dict) -> int:
        return self.num_outputs(params) if callable(self.num_outputs) else self.num_outputs

    def inputs(self, params: dict) -> list[str]:
        return list(self.active_inputs(params)) if self.active_inputs else list(self.input_names)

    def all_input_names(self) -> list[str]:
        return list(self.input_names)


REGISTRY: dict[str, OpDef] = {}
# Called with (name, op) on every registration and (name, None) on removal: how the Symbol
# API keeps one function per operator (``tritonsym.sym.<Name>``) in step with this table.
_LISTENERS: list[Callable[[str, "OpDef | None"], None]] = []

_RESERVED = {"name", "attr"}  # keywords every symbol function takes


def register(op: OpDef) -> OpDef:
    """Add an operator, built-in or the user's; it then works wherever a built-in does."""
    names = (op.name, *op.aliases)
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise ParamError(f"register: operator name {name!r} is not a Python identifier")
        if name in REGISTRY:
            raise ParamError(f"register: an operator named {name!r} is already registered "
                             f"({REGISTRY[name].name}); unregister it first or choose another name")
    params = [p.name for p in op.params]
    clashes = sorted((set(params) & set(op.input_names)) | ((set(params) | set(op.input_names)) & _RESERVED))
    if clashes or len(set(params)) != len(params) or len(set(op.input_names)) != len(op.input_names):
        raise ParamError(f"register {op.name}: parameter and input names must be unique and not 'name' or 'attr'; "
                         f"parameters {params}, inputs {list(op.input_names)}")
    for rule in ("infer_shape", "forward", "backward", "backward_needs"):
        if not callable(getattr(op, rule)):
            raise ParamError(f"register {op.name}: {rule} must be a function, got {getattr(op, rule)!r}")
    for name in names:
        REGISTRY[name] = op
        for listener in _LISTENERS:
            listener(name, op)
    return op


def unregister(name: str) -> OpDef:
    """Remove an operator (with its aliases); symbols already built with it keep working."""
    op = get_op(name)
    for alias in (op.name, *op.aliases):
        del REGISTRY[alias]
        for listener in _LISTENERS:
            listener(alias, None)
    return op


def on_register(listener: Callable[[str, "OpDef | None"], None]) -> None:
    """Call ``listener`` for every operator registered so far and every later change."""
    _LISTENERS.append(listener)
    for name, op in list(REGISTRY.items()):
        listener(name, op)


def get_op(name: str) -> OpDef:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ParamError(f"unknown operator {name!r}; known operators: {', '.join(sorted(REGISTRY))}") from None


# ----------------------------------------------------------------- common rules


def same_dtype_everywhere(params, in_types, out_types):
    """Every input and output has one dtype (MXNet's ElemwiseType)."""
    known = next((t for t in [*in_types, *out_types] if t is not None), None)
    if known is None:
        return in_types, out_types
    return ([unify(f"input {i} dtype", t, known) for i, t in enumerate(in_types)],
            [unify(f"output {i} dtype", t, known) for i, t in enumerate(out_types)])


def index_dtype(given, data_dtype):
    """The dtype of an input holding whole numbers (lengths, positions) beside data of
    ``data_dtype``: the one given, else the data's, but float32 for half precision, which
    holds whole numbers exactly only up to 256 (bfloat16) or 2048 (float16)."""
    if given is not None or data_dtype is None:
        return given
    return torch.float32 if data_dtype in (torch.float16, torch.bfloat16) else data_dtype


def same_shape_everywhere(names: Sequence[str]):
    """Shape rule of an elementwise operator: inputs and output have one shape."""

    def rule(params, in_shapes, out_shapes):
        known = None
        for shape in in_shapes:
            if shape is not None:
                merged = shape if known is None else merge_shapes(known, shape)
                if merged is None:
                    others = ", ".join(f"{n} {tuple(s)}" for n, s in zip(names, in_shapes) if s is not None)
                    raise ShapeMismatch(f"inputs must have one shape, got {others}")
                known = merged
        known = unify("output", out_shapes[0], known) if known is not None else out_shapes[0]
        if known is None:
            return in_shapes, out_shapes
        return [known] * len(in_shapes), [known]

    return rule


def elementwise_inplace(params) -> list[tuple[int, int]]:
    """Forward of a one-input elementwise operator: the output may overwrite the input."""
    return [(0, 0)]


def grad_over_out_grad(num_inputs: int):
    """Backward of an elementwise operator: any input gradient may overwrite the output gradient
    (each input gradient element is computed from the same output gradient element)."""
    return lambda params, epilogue: [(k, ("out_grad", 0)) for k in range(num_inputs)]


def window_offset(shape, axis: int, begin: int, width: int) -> int | None:
    """The element offset at which ``data[..., begin:begin + width, ...]`` (along ``axis``)
    starts in the storage of a contiguous array of ``shape``, where that slice is one run of
    its elements (the whole axis, or only axes of size 1 precede it); None where it is not
    (``OpDef.output_windows``)."""
    if width == shape[axis]:
        return 0
    if size(shape[:axis]) != 1:
        return None
    return begin * size(shape[axis + 1:])


def size(shape) -> int:
    return math.prod(shape)
