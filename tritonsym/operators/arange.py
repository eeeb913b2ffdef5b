"""Arrays made from parameters (MXNet's ``_zeros``, ``_ones``, ``_full``, ``_arange``,
``_linspace``, ``_eye``; the functions ``ts.sym.zeros``, ``ones``, ``full``, ``arange``,
``linspace``, ``eye`` call them) and ``_contrib_arange_like`` (``ts.sym.contrib.arange_like``:
a ramp of the data's shape, or of the length of one of its axes; the data is not read and
takes no gradient). None of them has a gradient.

``dtype`` left out follows the graph (``x + zeros(shape)`` takes x's dtype; alone, float32, as
MXNet's): ``OpDef.default_output_type``. MXNet's functions write ``dtype="float32"`` into the
symbol, which pins it; given here, it pins it too. int32 and int64 make positions for
Embedding, take or one_hot. ``ctx`` is read and unused: the bind's context decides."""

from __future__ import annotations

import math

import torch

from ..ops import arange as kernels
from .registry import OpDef, Param, ShapeMismatch, positive, register, unify

DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "int32": torch.int32, "int64": torch.int64}
_DTYPE = Param("dtype", str, None, choices=tuple(DTYPES),
               doc="the output's dtype; left out, the graph's where it decides, else float32")
_CTX = Param("ctx", str, "", doc="read and unused (the bind's context decides)")


def pinned_dtype(p):
    return DTYPES[p["dtype"]] if p["dtype"] is not None else None


def pinned_or_graph_dtype(p, in_types, out_types):
    """The output's dtype: ``dtype`` where given (the graph must agree), else the graph's
    (``default_output_type`` fills in where nothing decides); the inputs keep theirs."""
    chosen = pinned_dtype(p)
    if chosen is not None and out_types[0] is not None and out_types[0] != chosen:
        raise ShapeMismatch(f"dtype={p['dtype']} but the graph needs {str(out_types[0]).removeprefix('torch.')} "
                            "here: give that dtype, or leave dtype out to follow the graph")
    return [t for t in in_types], [out_types[0] or chosen]


def _like_type(p, in_types, out_types):
    data = unify("data dtype", in_types[0], out_types[0])
    return [data], [data]


def _register(name: str, doc: str, params: list, out_shape, forward, input_names=()) -> None:
    """With an input (arange_like), the output takes its dtype, as MXNet's; without, ``dtype``."""
    def infer_shape(p, in_shapes, out_shapes):
        if input_names and in_shapes[0] is None:
            return in_shapes, out_shapes
        return in_shapes, [unify("output", out_shapes[0], out_shape(p, *in_shapes))]

    register(OpDef(
        name=name,
        doc=doc,
        params=params + [_CTX] + ([] if input_names else [_DTYPE]),
        input_names=input_names,
        infer_shape=infer_shape,
        infer_type=_like_type if input_names else pinned_or_graph_dtype,
        default_output_type=(lambda p: None) if input_names else (lambda p: pinned_dtype(p) or torch.float32),
        forward=forward,
        backward=lambda a: [],
        backward_needs=lambda p, epilogue: ((), ()),
        no_grad_inputs=lambda p: set(input_names),
        cheap=True,
    ))


def _shape_param(p) -> tuple[int, ...]:
    """A 0 is a size not known yet, which inference fills in from the consumers (an RNN's
    begin state ``zeros((0, hidden))`` takes the batch size), as in MXNet."""
    if not p["shape"]:
        raise ShapeMismatch("shape=() must have at least one axis")
    return tuple(p["shape"])


for _name, _value in (("_zeros", 0.0), ("_ones", 1.0)):
    _register(_name, f"An array of shape filled with {_value:g}.", [Param("shape", "shape", (), doc="its shape")],
              _shape_param, lambda a, v=_value: kernels.plan_ramp(a.outputs[0], v, 0.0))

_register("_full", "An array of shape filled with value.",
          [Param("shape", "shape", (), doc="its shape"), Param("value", float, doc="the value of every element")],
          _shape_param, lambda a: kernels.plan_ramp(a.outputs[0], a.params["value"], 0.0))


# ------------------------------------------------------------------ _arange


def _arange_bounds(p) -> tuple[float, float]:
    """(start, stop): ``arange(n)`` is ``arange(0, n)``, as Python's range."""
    return (0.0, p["start"]) if p["stop"] is None else (p["start"], p["stop"])


def _arange_shape(p) -> tuple[int, ...]:
    if p["infer_range"]:
        raise ShapeMismatch("infer_range=True (MXNet's deprecated stop taken from the graph) is not supported: "
                            "give stop")
    start, stop = _arange_bounds(p)
    if p["step"] == 0:
        raise ShapeMismatch(f"step=0 makes no range from {start:g} to {stop:g}")
    count = math.ceil((stop - start) / p["step"])
    if count < 1:
        raise ShapeMismatch(f"start={start:g}, stop={stop:g}, step={p['step']:g} is an empty range")
    return (count * p["repeat"],)


_register("_arange", "Evenly spaced values from start up to stop (not included), each repeated repeat times.",
          [Param("start", float, doc="the first value (the end when stop is None, the range then starting at 0)"),
           Param("stop", "optional_float", None, doc="the end, not included"),
           Param("step", float, 1.0, doc="the spacing"),
           Param("repeat", int, 1, check=positive, doc="how many times each value appears in a row"),
           Param("infer_range", bool, False, doc="MXNet's deprecated stop from the graph: refused")],
          _arange_shape,
          lambda a: kernels.plan_ramp(a.outputs[0], _arange_bounds(a.params)[0], a.params["step"], a.params["repeat"]))


# ------------------------------------------------------------------ _linspace


def _linspace_step(p) -> float:
    intervals = p["num"] - 1 if p["endpoint"] else p["num"]
    return (p["stop"] - p["start"]) / intervals if intervals > 0 else 0.0


_register("_linspace", "num evenly spaced values from start to stop (included with endpoint).",
          [Param("start", float, doc="the first value"), Param("stop", float, doc="the last value (with endpoint)"),
           Param("num", int, check=positive, doc="how many values"),
           Param("endpoint", bool, True, doc="whether stop is the last value")],
          lambda p: (p["num"],),
          lambda a: kernels.plan_ramp(a.outputs[0], a.params["start"], _linspace_step(a.params)))


# ------------------------------------------------------------------ _eye


def _eye_shape(p) -> tuple[int, int]:
    if p["N"] < 1 or p["M"] < 0:
        raise ShapeMismatch(f"N={p['N']} and M={p['M']}: N must be at least 1 (M: 0 means N)")
    return p["N"], p["M"] or p["N"]


_register("_eye", "A matrix of N rows and M columns (0: N), 1 on diagonal k and 0 elsewhere.",
          [Param("N", int, doc="the rows"), Param("M", int, 0, doc="the columns (0: N)"),
           Param("k", int, 0, doc="the diagonal of ones: above the main one when positive")],
          _eye_shape, lambda a: kernels.plan_eye(a.outputs[0], a.params["k"]))


# ------------------------------------------------------------------ _contrib_arange_like


def _like_shape(p, data) -> tuple[int, ...]:
    if p["axis"] is None:
        return tuple(data)
    if not -len(data) <= p["axis"] < len(data):
        raise ShapeMismatch(f"axis={p['axis']} is out of range for data of shape {tuple(data)}")
    return (data[p["axis"]],)


_register("_contrib_arange_like", "start + step * (i // repeat) in the data's shape (axis None) or along one axis.",
          [Param("start", float, 0.0, doc="the first value"), Param("step", float, 1.0, doc="the spacing"),
           Param("repeat", int, 1, check=positive, doc="how many times each value appears in a row"),
           Param("axis", "optional_int", None, doc="None: the data's shape; else the length of that axis")],
          _like_shape,
          lambda a: kernels.plan_ramp(a.outputs[0], a.params["start"], a.params["step"], a.params["repeat"]),
          input_names=("data",))
