"""Elementwise arithmetic: the operators behind ``+ - * /`` and ``**`` on symbols, and unary math.

- symbol OP symbol (same shape): elemwise_add/sub/mul/div, auto-named elemwise_add0, ... when
  called by name and _plus0, _minus0, _mul0, _div0 when built by ``+ - * /``, as in MXNet;
- symbol OP scalar: _plus_scalar, _minus_scalar, _rminus_scalar (scalar - x), _mul_scalar,
  _div_scalar, _rdiv_scalar (scalar / x), _power_scalar (x ** scalar), _rpower_scalar
  (scalar ** x), auto-named _plusscalar, _minusscalar, ... (_rpower_scalar0: MXNet's name);
- comparisons (``== != > >= < <=`` between symbols or with a number): _equal, _not_equal,
  _greater, _greater_equal, _lesser, _lesser_equal and their _scalar forms, 1.0 where the
  comparison holds and 0.0 elsewhere, gradient 0;
- unary (``ops/unary_math.py``): negative, exp, log, log2, log10, log1p, expm1, sqrt, rsqrt,
  square, abs, reciprocal, sin, cos, tan, sinh, cosh, erf, erfinv, gamma, gammaln, degrees,
  radians, and the
  piecewise constant sign, floor, ceil, round (halves away from zero), rint (halves down,
  as MXNet's), trunc and fix (toward zero), whose gradient is 0 as in MXNet;
- ``%``: _mod (same shape), _mod_scalar (x % 2), _rmod_scalar (2 % x), floored as Python's
  (the result takes the divisor's sign), exact, NaN where the divisor is 0;
- MXNet's _maximum, _minimum, _power (same shape, ``ts.sym.maximum(a, b)``, ``a ** b``) and
  _maximum_scalar, _minimum_scalar (``ts.sym.maximum(a, 2.0)``): NaN on either side gives
  NaN; a tie gives lhs the gradient, as MXNet does.

Which forward values each backward reads comes from the kernels' own tables.
"""

from __future__ import annotations

from ..ops import elementwise as kernels
from .registry import (
    REQUIRED,
    BackwardArgs,
    ForwardArgs,
    OpDef,
    Param,
    elementwise_inplace,
    grad_over_out_grad,
    register,
    same_shape_everywhere,
)

BINARY = {"elemwise_add": "add", "elemwise_sub": "sub", "elemwise_mul": "mul", "elemwise_div": "div",
          "_maximum": "maximum", "_minimum": "minimum", "_power": "power", "_hypot": "hypot", "_mod": "mod",
          **{f"_{kind}": kind for kind in (*kernels.COMPARISONS, *kernels.LOGICAL)}}
SYMBOLS = dict(add="+", sub="-", mul="*", div="/", mod="%", equal="==", not_equal="!=", greater=">", greater_equal=">=",
               lesser="<", lesser_equal="<=")
# MXNet's other names of a + b ...: _plus and _mul are what its mx.rnn cells call by name.
ARITHMETIC_ALIASES = {"add": ("_plus", "_Plus", "_add"), "sub": ("_minus", "_Minus", "_sub"),
                      "mul": ("_mul", "_Mul"), "div": ("_div", "_Div"), "mod": ("_Mod",)}
# The CamelCase names MXNet 0.x gave these operators, which MXNet 1.x keeps as aliases: a
# symbol file saved by MXNet 0.x names its nodes' operators so (x + 1 is "_PlusScalar").
LEGACY_NAMES = {"_maximum": "_Maximum", "_minimum": "_Minimum", "_power": "_Power", "_hypot": "_Hypot",
                "_equal": "_Equal", "_not_equal": "_Not_Equal", "_greater": "_Greater",
                "_greater_equal": "_Greater_Equal", "_lesser": "_Lesser", "_lesser_equal": "_Lesser_Equal",
                "_logical_and": "_Logical_And", "_logical_or": "_Logical_Or", "_logical_xor": "_Logical_Xor",
                "_plus_scalar": "_PlusScalar", "_minus_scalar": "_MinusScalar", "_rminus_scalar": "_RMinusScalar",
                "_mul_scalar": "_MulScalar", "_div_scalar": "_DivScalar", "_rdiv_scalar": "_RDivScalar",
                "_mod_scalar": "_ModScalar", "_rmod_scalar": "_RModScalar", "_power_scalar": "_PowerScalar",
                "_rpower_scalar": "_RPowerScalar", "_maximum_scalar": "_MaximumScalar",
                "_minimum_scalar": "_MinimumScalar", "_hypot_scalar": "_HypotScalar",
                "_equal_scalar": "_EqualScalar", "_not_equal_scalar": "_NotEqualScalar",
                "_greater_scalar": "_GreaterScalar", "_greater_equal_scalar": "_GreaterEqualScalar",
                "_lesser_scalar": "_LesserScalar", "_lesser_equal_scalar": "_LesserEqualScalar",
                "_logical_and_scalar": "_LogicalAndScalar", "_logical_or_scalar": "_LogicalOrScalar",
                "_logical_xor_scalar": "_LogicalXorScalar"}
SCALAR = {f"_{kind}_scalar": kind for kind in kernels.SCALAR_OPS if kind not in ("smooth_l1", "hard_sigmoid")}
UNARY = {kind: kind for kind in kernels.UNARY_OPS}
# Where "Elementwise f(x)" would leave the rule unsaid.
UNARY_DOCS = {"gamma": "Gamma(x) (C's tgamma: +-inf at +-0, NaN at the negative whole numbers); gradient "
                       "Gamma(x) digamma(x)",
              "gammaln": "log |Gamma(x)| (C's lgamma: inf at the poles); gradient digamma(x), NaN at the poles",
              "erfinv": "erf's inverse: the x with erf(x) = data (+-inf at +-1, NaN past)",
              "log1p": "log(1 + x), exact near 0", "expm1": "exp(x) - 1, exact near 0", "rsqrt": "1 / sqrt(x)",
              "degrees": "x * 180 / pi (radians to degrees)", "radians": "x * pi / 180 (degrees to radians)",
              "sign": "sign(x): -1, 0 or 1; gradient 0", "floor": "floor(x); gradient 0", "ceil": "ceil(x); gradient 0",
              "round": "x rounded to the nearest whole number, halves away from zero; gradient 0",
              "rint": "x rounded to the nearest whole number, halves down (MXNet's rint: 1.5 -> 1, -0.5 -> -1); "
                      "gradient 0",
              "trunc": "x rounded toward zero; gradient 0", "fix": "x rounded toward zero (as trunc); gradient 0"}


def _needs(table: dict, kind: str, inputs: dict[str, int]):
    """(input indices, output indices) backward reads, from a kernels *_NEEDS table."""
    wanted = table[kind]
    return tuple(i for name, i in inputs.items() if name in wanted), ((0,) if "output" in wanted else ())


def _register_binary(name: str, kind: str):
    def forward(a: ForwardArgs):
        return kernels.plan_binary_forward(kind, a.inputs[0], a.inputs[1], a.outputs[0])

    def backward(a: BackwardArgs):
        return kernels.plan_binary_backward(kind, a.out_grads[0], a.inputs[0], a.inputs[1], a.in_grads[0],
                                            a.in_grads[1], a.accumulate[0], a.accumulate[1])

    register(OpDef(
        name=name,  # named elemwise_add0 ...; a + b names its node _plus0 (Symbol's arithmetic)
        doc=(f"Elementwise {kind}(lhs, rhs)" if kind not in SYMBOLS else f"Elementwise lhs {SYMBOLS[kind]} rhs")
            + "; both have one shape"
            + (" (floored: the result has rhs's sign; NaN where rhs is 0)" if kind == "mod" else "")
            + ("; 1.0 where it holds, else 0.0, with gradient 0." if kind in kernels.COMPARISONS else
               "; 1.0 where it holds of their truth (nonzero, NaN too), else 0.0, with gradient 0."
               if kind in kernels.LOGICAL else "."),
        params=[],
        input_names=("lhs", "rhs"),
        infer_shape=same_shape_everywhere(["lhs", "rhs"]),
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: _needs(kernels.BINARY_NEEDS, kind, {"lhs": 0, "rhs": 1}),
        inplace=lambda p: [(0, 0), (1, 0)],
        backward_inplace=grad_over_out_grad(2),
        # x * x: one kernel stores each element's lhs gradient, then adds its rhs gradient, from one thread
        repeated_input_grads=True,
        gate_product=kind == "mul",
        aliases=ARITHMETIC_ALIASES.get(kind, ()) + tuple(n for n in (LEGACY_NAMES.get(name),) if n),
        cheap=True,
    ))


def _check_base(kind: str):
    if kind == "rpower":
        return lambda v: None if v > 0 else "must be positive: the base of scalar ** x"
    if kind == "mod":
        return lambda v: None if v != 0 else "must not be 0: x mod 0 is undefined"
    return None


def _register_scalar(name: str, kind: str, default=REQUIRED):
    def forward(a: ForwardArgs):
        return kernels.plan_scalar_forward(kind, a.inputs[0], a.params["scalar"], a.outputs[0])

    def backward(a: BackwardArgs):
        return kernels.plan_scalar_backward(kind, a.out_grads[0], a.inputs[0], a.outputs[0], a.in_grads[0],
                                            a.params["scalar"], a.accumulate[0])

    formula = dict(plus="x + scalar", minus="x - scalar", rminus="scalar - x", mul="x * scalar",
                   div="x / scalar", rdiv="scalar / x", power="x ** scalar", rpower="scalar ** x",
                   maximum="max(x, scalar) (NaN stays NaN; x's gradient where x >= scalar)",
                   minimum="min(x, scalar) (NaN stays NaN; x's gradient where x <= scalar)",
                   smooth_l1="smooth L1 with sigma = scalar: 0.5 (sigma x)**2 where |x| <= 1 / sigma**2, else "
                             "|x| - 0.5 / sigma**2 (the loss of Fast R-CNN's box regression)",
                   hypot="sqrt(x**2 + scalar**2) (without overflow)",
                   mod="x mod scalar, floored (the result has the scalar's sign, as Python's %)",
                   rmod="scalar mod x, floored (the result has x's sign; NaN where x is 0)",
                   **{c: f"x {SYMBOLS[c]} scalar (1.0 or 0.0; gradient 0)" for c in kernels.COMPARISONS},
                   **{c: f"{c}(x, scalar) of their truth (nonzero, NaN too: 1.0 or 0.0; gradient 0)"
                      for c in kernels.LOGICAL})[kind]
    register(OpDef(
        # named _plus_scalar0 ... when called by name; Symbol arithmetic names its own
        # (symbol.scalar_arithmetic: x + 1 is _plusscalar0)
        name=name,
        doc=f"Elementwise {formula}.",
        params=[Param("scalar", float, default, check=_check_base(kind),
                      doc="sigma" if kind == "smooth_l1" else "the scalar operand")],
        input_names=("data",),
        infer_shape=same_shape_everywhere(["data"]),
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: _needs(kernels.SCALAR_NEEDS, kind, {"input": 0}),
        inplace=elementwise_inplace,
        backward_inplace=grad_over_out_grad(1),
        aliases=tuple(n for n in (LEGACY_NAMES.get(name),) if n),
        cheap=True,
    ))


def _register_unary(name: str, kind: str):
    def forward(a: ForwardArgs):
        return kernels.plan_unary_forward(kind, a.inputs[0], a.outputs[0])

    def backward(a: BackwardArgs):
        return kernels.plan_unary_backward(kind, a.out_grads[0], a.inputs[0], a.outputs[0], a.in_grads[0],
                                           a.accumulate[0])

    register(OpDef(
        name=name,
        doc=f"Elementwise {UNARY_DOCS.get(kind, f'{kind}(x)')}.",
        params=[],
        input_names=("data",),
        infer_shape=same_shape_everywhere(["data"]),
        forward=forward,
        backward=backward,
        backward_needs=lambda p, epilogue: _needs(kernels.UNARY_NEEDS, kind, {"input": 0}),
        inplace=elementwise_inplace,
        backward_inplace=grad_over_out_grad(1),
        cheap=True,
    ))


for _name, _kind in BINARY.items():
    _register_binary(_name, _kind)
for _name, _kind in SCALAR.items():
    _register_scalar(_name, _kind)
_register_scalar("smooth_l1", "smooth_l1", default=1.0)
for _name, _kind in UNARY.items():
    _register_unary(_name, _kind)


def _hard_sigmoid_forward(a: ForwardArgs):
    p = a.params
    return kernels.plan_scalar_forward("hard_sigmoid", a.inputs[0], p["alpha"], a.outputs[0], second=p["beta"])


def _hard_sigmoid_backward(a: BackwardArgs):
    p = a.params
    return kernels.plan_scalar_backward("hard_sigmoid", a.out_grads[0], a.inputs[0], None, a.in_grads[0], p["alpha"],
                                        a.accumulate[0], second=p["beta"])


# MXNet's hard_sigmoid: a scalar elementwise kind with two constants.
register(OpDef(
    name="hard_sigmoid",
    doc="Elementwise clip(alpha * x + beta, 0, 1); the gradient alpha strictly between 0 and 1, else 0.",
    params=[Param("alpha", float, 0.2, doc="the slope"), Param("beta", float, 0.5, doc="the offset")],
    input_names=("data",),
    infer_shape=same_shape_everywhere(["data"]),
    forward=_hard_sigmoid_forward,
    backward=_hard_sigmoid_backward,
    backward_needs=lambda p, epilogue: _needs(kernels.SCALAR_NEEDS, "hard_sigmoid", {"input": 0}),
    inplace=elementwise_inplace,
    backward_inplace=grad_over_out_grad(1),
    cheap=True,
))
