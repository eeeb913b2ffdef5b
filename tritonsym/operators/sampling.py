"""Random samplers, MXNet's (``ts.sym.random.uniform``, ``normal``, ``exponential``,
``gamma``, ``poisson``, ``negative_binomial``, ``generalized_negative_binomial``, ``randint``,
``randn`` and the ``*_like`` forms call them):

* ``_random_uniform``, ``_random_normal``, ``_random_exponential``, ``_random_gamma``,
  ``_random_poisson``, ``_random_negative_binomial``,
  ``_random_generalized_negative_binomial``, ``_random_randint`` (aliases
  ``random_uniform``/``uniform``, ``random_normal``/``normal``, ``random_gamma`` ...): numbers
  as parameters, an array of ``shape`` drawn;
* ``_random_<name>_like`` (but randint): an array of the data's shape and dtype (the data is
  not read);
* ``_sample_<name>`` (but randint): the parameters are arrays, one distribution per
  element, each drawn ``shape`` times (output: their shape + shape).

The counts (Poisson, the negative binomials) are whole numbers in a float dtype, as MXNet's.

Every draw comes from ``tritonsym.random``'s device state (``ops/sampling.py``): the same
seed, the same numbers; each forward, training or inference, draws new ones (the executor
moves the state's step first, inside a captured CUDA graph too). None has a gradient: the
parameters' gradients are 0, as MXNet's are (for a reparameterised draw write
``mu + sigma * ts.sym.random.normal(shape=...)``). A ``_sample_*`` parameter out of its
domain (a negative sigma) gives NaN draws, where numbers given as parameters are refused.

``dtype`` left out follows the graph (float32 where nothing decides), as ``zeros`` does; given,
it pins the output. randint draws int32 (int64 where given or where its reader takes int64).
A ``shape`` of ``()``, or one holding 0, is filled in from the consumers
(``x + ts.sym.random.normal()``), as MXNet infers it.
"""

from __future__ import annotations

import torch

from .. import random
from ..ops import sampling as kernels
from .arange import pinned_dtype, pinned_or_graph_dtype
from .registry import ForwardArgs, OpDef, Param, ShapeMismatch, register, unify

FLOAT_DTYPES = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
                "bfloat16": torch.bfloat16}
INDEX_DTYPES = {"int32": torch.int32, "int64": torch.int64}
_CTX = Param("ctx", str, "", doc="read and unused (the bind's context decides)")


def _positive(v) -> str | None:
    return None if v > 0 else "must be positive"


def _not_negative(v) -> str | None:
    return None if 0 <= v < float("inf") else "must be a finite number, 0 or more"


def _probability(v) -> str | None:
    return None if 0 < v <= 1 else "must be in (0, 1]: a success probability"


# distribution -> (its two parameters as MXNet names them, with defaults, and checks)
_NUMBERS = {
    "uniform": [Param("low", float, 0.0, doc="the lowest value"),
                Param("high", float, 1.0, doc="the end of the half-open interval [low, high)")],
    "normal": [Param("loc", float, 0.0, doc="the mean"),
               Param("scale", float, 1.0, check=_positive, doc="the standard deviation")],
    "exponential": [Param("lam", float, 1.0, check=_positive, doc="the rate (1 / the mean)")],
    "gamma": [Param("alpha", float, 1.0, check=_positive, doc="the shape"),
              Param("beta", float, 1.0, check=_positive, doc="the scale (the mean is alpha beta)")],
    "poisson": [Param("lam", float, 1.0, check=_not_negative, doc="the mean")],
    "negative_binomial": [Param("k", int, 1, check=_positive, doc="the successes awaited"),
                          Param("p", float, 1.0, check=_probability, doc="each trial's success probability")],
    "generalized_negative_binomial": [
        Param("mu", float, 1.0, check=_not_negative, doc="the mean"),
        Param("alpha", float, 1.0, check=_not_negative, doc="the dispersion (variance mu + alpha mu**2)")],
}
_ARRAYS = {"uniform": ("low", "high"), "normal": ("mu", "sigma"), "exponential": ("lam",), "gamma": ("alpha", "beta"),
           "poisson": ("lam",), "negative_binomial": ("k", "p"), "generalized_negative_binomial": ("mu", "alpha")}
_DOCS = {"uniform": "uniform on [low, high)", "normal": "normal of mean loc and standard deviation scale",
         "exponential": "exponential of rate lam", "randint": "integers uniform on [low, high)",
         "gamma": "gamma of shape alpha and scale beta", "poisson": "Poisson of mean lam",
         "negative_binomial": "negative binomial: the failures before the k-th success of probability p",
         "generalized_negative_binomial": "negative binomial of mean mu and dispersion alpha (Poisson for alpha 0)"}
# The bare names MXNet gives its samplers too (gamma is the gamma function there and here).
_BARE_ALIASES = ("uniform", "normal")


def _known(shape) -> tuple | None:
    """``()`` is a shape left to inference (MXNet's default); a 0 in it is one size so left."""
    return tuple(shape) if shape else None


def _check_bounds(name: str, p: dict) -> None:
    if name in ("uniform", "randint") and not p["low"] <= p["high"]:
        raise ShapeMismatch(f"low={p['low']:g} must not be above high={p['high']:g}")
    if name == "randint" and p["low"] == p["high"]:
        raise ShapeMismatch(f"low={p['low']} and high={p['high']} leave no integer in [low, high)")


def _first_two(name: str, p: dict) -> tuple[float, float]:
    names = [q.name for q in _NUMBERS.get(name, [])] or ["low", "high"]
    return p[names[0]], p[names[1]] if len(names) > 1 else 0.0


def _draw(a: ForwardArgs, name: str, params: tuple) -> list:
    return kernels.plan_sample(a.outputs[0], random.device_state(a.outputs[0].device), name, *params,
                               salt=random.salt(a.node))


def _register(name: str, doc: str, params: list, infer_shape, infer_type, forward, input_names=(), aliases=(),
              default_type=lambda p: None) -> None:
    register(OpDef(
        name=name,
        doc=doc,
        params=params,
        input_names=input_names,
        infer_shape=infer_shape,
        infer_type=infer_type,
        default_output_type=default_type,
        forward=forward,
        backward=lambda a: [],
        backward_needs=lambda p, epilogue: ((), ()),
        no_grad_inputs=lambda p: set(input_names),
        draws_random=lambda p: True,
        draws_random_in_inference=lambda p: True,
        aliases=aliases,
    ))


def _float32(p) -> torch.dtype:
    """A draw's dtype where neither ``dtype`` nor the graph decides it."""
    return pinned_dtype(p) or torch.float32


def _dtype_param(choices: dict, default_doc: str) -> Param:
    return Param("dtype", str, None, choices=tuple(choices), doc=f"the output's dtype; left out, {default_doc}")


# ------------------------------------------------------------------ _random_<name>: numbers, a shape

def _shape_rule(name: str):
    def infer_shape(p, in_shapes, out_shapes):
        _check_bounds(name, p)
        return in_shapes, [unify("output", out_shapes[0], _known(p["shape"]))]
    return infer_shape


for _name, _params in _NUMBERS.items():
    _register(f"_random_{_name}", f"An array of shape drawn from the {_DOCS[_name]}.",
              _params + [Param("shape", "shape", (), doc="its shape; () or 0s: from the graph"), _CTX,
                         _dtype_param(FLOAT_DTYPES, "the graph's where it decides, else float32")],
              _shape_rule(_name), pinned_or_graph_dtype,
              lambda a, n=_name: _draw(a, n, _first_two(n, a.params)),
              aliases=(f"random_{_name}",) + ((_name,) if _name in _BARE_ALIASES else ()), default_type=_float32)

def _randint_type(p, in_types, out_types):
    """Integers, whatever the graph: int32 unless ``dtype`` or an int64 reader says int64."""
    chosen = pinned_dtype(p) or (out_types[0] if out_types[0] in INDEX_DTYPES.values() else torch.int32)
    return list(in_types), [unify("randint's output dtype (integers)", out_types[0], chosen)]


_register("_random_randint", f"An array of shape drawn from the {_DOCS['randint']}.",
          [Param("low", int, doc="the lowest integer"), Param("high", int, doc="the end of [low, high)"),
           Param("shape", "shape", (), doc="its shape; () or 0s: from the graph"), _CTX,
           _dtype_param(INDEX_DTYPES, "the graph's where it decides, else int32")],
          _shape_rule("randint"), _randint_type,
          lambda a: _draw(a, "randint", (a.params["low"], a.params["high"])), aliases=("random_randint",))


# ------------------------------------------------------------------ _random_<name>_like: the data's shape


def _like_shape(p, in_shapes, out_shapes):
    data = unify("data", in_shapes[0], out_shapes[0])
    return [data], [data]


def _like_type(p, in_types, out_types):
    data = unify("data dtype", in_types[0], out_types[0])
    return [data], [data]


for _name, _params in _NUMBERS.items():
    _register(f"_random_{_name}_like", f"An array of the data's shape and dtype drawn from the {_DOCS[_name]}.",
              _params, _like_shape, _like_type,
              lambda a, n=_name: _draw(a, n, _first_two(n, a.params)), input_names=("data",))


# ------------------------------------------------------------------ _sample_<name>: arrays as parameters


def _sample_shape(p, in_shapes, out_shapes):
    params = in_shapes[0]
    for other in in_shapes[1:]:
        params = unify("the distribution parameters' shape", params, other)
    out = out_shapes[0]
    drawn = tuple(p["shape"])
    if params is None and out is not None and len(out) >= len(drawn):
        params = tuple(out[:len(out) - len(drawn)])
    if params is None:
        return in_shapes, out_shapes
    return [params] * len(in_shapes), [unify("output", out, tuple(params) + drawn)]


for _name, _inputs in _ARRAYS.items():
    _register(f"_sample_{_name}",
              f"For each element of {' and '.join(_inputs)}, shape draws from the {_DOCS[_name]} they give.",
              [Param("shape", "shape", (), doc="the draws per distribution: the output is the parameters' shape + "
                     "this"), _dtype_param(FLOAT_DTYPES, "the graph's where it decides, else float32")],
              _sample_shape, pinned_or_graph_dtype,
              lambda a, n=_name: _draw(a, n, tuple(a.inputs) if len(a.inputs) == 2 else (a.inputs[0], a.inputs[0])),
              input_names=_inputs, aliases=(f"sample_{_name}",), default_type=_float32)
