"""Reductions (MXNet's): ``sum``, ``mean``, ``max``, ``min``, ``prod``, ``nansum`` and
``nanprod`` (NaN counted as 0 and 1) over ``axis`` (all axes when it is None or empty; the
other axes with ``exclude=True``), ``keepdims`` keeping the reduced axes as 1, and ``norm``
(``ord`` 1 or 2). prod's gradient at a zero is the product of the other elements (MXNet's is
NaN). Reducing every axis without ``keepdims`` gives shape (1,), as in MXNet. Kernels:
``ops/reduce.py`` (no copy of the input whatever the axes)."""

from __future__ import annotations

from ..ops import reduce as kernels
from .registry import BackwardArgs, ForwardArgs, OpDef, Param, ShapeMismatch, register, unify


def reduced_axes(p, ndim: int) -> tuple[int, ...]:
    """The axes reduced, non-negative and sorted, checked against the data's rank."""
    axis = p["axis"]
    if axis is None or len(axis) == 0:
        return tuple(range(ndim))
    bad = [a for a in axis if not -ndim <= a < ndim]
    if bad:
        raise ShapeMismatch(f"axis={tuple(axis)} has {bad[0]}, out of range for data of {ndim} dimension(s)")
    chosen = {a % ndim for a in axis}
    if len(chosen) != len(axis):
        raise ShapeMismatch(f"axis={tuple(axis)} names an axis twice")
    if p.get("exclude"):
        chosen = set(range(ndim)) - chosen
    return tuple(sorted(chosen))


def _infer_shape(p, in_shapes, out_shapes):
    data = in_shapes[0]
    if data is None:
        return in_shapes, out_shapes
    axes = reduced_axes(p, len(data))
    out = kernels.reduced_shape(data, axes, p["keepdims"]) or (1,)
    return in_shapes, [unify("output", out_shapes[0], out)]


def _make(name: str, kind_of, doc: str, params, needs, aliases=()):
    def forward(a: ForwardArgs):
        x = a.inputs[0]
        return kernels.plan_reduce(x, a.outputs[0], kind_of(a.params), reduced_axes(a.params, x.dim()))

    def backward(a: BackwardArgs):
        dx = a.in_grads[0]
        if dx is None:
            return []
        return kernels.plan_reduce_backward(kind_of(a.params), reduced_axes(a.params, dx.dim()), a.out_grads[0], dx,
                                            a.inputs[0], a.outputs[0], accumulate=a.accumulate[0],
                                            cofactor=a.temps.get("cofactor"))

    def backward_temps(p, shapes, dtypes):
        if kind_of(p) not in kernels.COFACTOR:
            return {}
        return {"cofactor": (kernels.reduced_shape(shapes[0], reduced_axes(p, len(shapes[0])), True), dtypes[0])}

    register(OpDef(name=name, doc=doc, params=params, input_names=("data",), infer_shape=_infer_shape,
                   forward=forward, backward=backward, backward_needs=lambda p, epilogue: needs(kind_of(p)),
                   backward_temps=backward_temps, aliases=aliases))


def _axis_params(exclude: bool = True):
    params = [Param("axis", "ints", None, doc="the axes reduced; None or () reduces all"),
              Param("keepdims", bool, False, doc="keep the reduced axes as size 1")]
    if exclude:
        params.append(Param("exclude", bool, False, doc="reduce the axes not in axis"))
    return params


def _needs(kind: str):
    reads_input = kind in ("max", "min", "norm1", "norm2", "prod", "nanprod", "nansum")
    reads_output = kind in ("max", "min", "norm2", "prod", "nanprod")
    return ((0,) if reads_input else (), (0,) if reads_output else ())


_make("sum", lambda p: "sum", "The sum over axis.", _axis_params(), _needs, aliases=("sum_axis",))
_make("mean", lambda p: "mean", "The mean over axis.", _axis_params(), _needs)
_make("max", lambda p: "max", "The maximum over axis (NaN if any element is NaN); every tied element gets the "
      "gradient, as in MXNet.", _axis_params(), _needs, aliases=("max_axis",))
_make("min", lambda p: "min", "The minimum over axis (NaN if any element is NaN); every tied element gets the "
      "gradient, as in MXNet.", _axis_params(), _needs, aliases=("min_axis",))
_make("prod", lambda p: "prod", "The product over axis; the gradient at a zero is the product of the others.",
      _axis_params(), _needs)
_make("nansum", lambda p: "nansum", "The sum over axis, NaN counted as 0 (and given gradient 0).", _axis_params(),
      _needs)
_make("nanprod", lambda p: "nanprod", "The product over axis, NaN counted as 1 (and given gradient 0).",
      _axis_params(), _needs)
_make("norm", lambda p: f"norm{p['ord']}", "The L1 or L2 norm over axis (all axes by default).",
      [Param("ord", int, 2, choices=(1, 2), doc="1: the sum of absolute values; 2: the Euclidean norm"),
       *_axis_params(exclude=False),
       Param("out_dtype", str, "None", choices=("None",), doc="MXNet's output dtype; the data's dtype here")],
      _needs)
