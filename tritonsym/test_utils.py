"""Checks for operators and networks, for your own pytest too (MXNet's ``mx.test_utils``).

- ``assert_almost_equal(a, b)``: elementwise ``|a - b| <= atol + rtol * |b|`` (an infinite
  ``b`` only by the same infinity); on failure it says how many elements differ and shows
  the worst ones with both values.
- ``check_symbolic_forward`` / ``check_symbolic_backward``: bind, run, compare each output
  or gradient with what you expect, naming the one that differs.
- ``check_numeric_gradient(sym, location)``: bind in float64, compute every gradient with
  backward, and compare with central differences ``(f(x + eps v) - f(x - eps v)) / 2 eps``
  along random unit directions ``v``, one argument at a time, or element by element (the
  full Jacobian-vector product) for small arguments. ``f`` is ``sum(head * output)`` with a
  random ``head`` for ordinary outputs, and the loss you name for loss outputs (whose
  backward writes the gradient of a loss, not of the output). A wrong gradient is reported
  under the argument's name.
- ``memcheck()``: ``with ts.test_utils.memcheck(): ...`` checks every kernel launch in the
  block (yours through ``tritonsym.operator.Launch`` too) for loads and stores outside its
  own tensors, in Triton's interpreter, and raises ``MemoryAccessError`` naming the kernel
  and the tensor it missed (``tritonsym.ops.memcheck``; ``TRITONSYM_MEMCHECK=1`` does it
  for a whole process).

>>> import numpy as np, tritonsym as ts
>>> net = ts.sym.Activation(ts.sym.Variable("x"), act_type="tanh") * ts.sym.Variable("y")
>>> rng = np.random.default_rng(0)
>>> errors = ts.test_utils.check_numeric_gradient(net, {"x": rng.normal(size=(3, 4)), "y": rng.normal(size=(3, 4))})
>>> sorted(errors), max(errors.values()) < 1e-6
(['x', 'y'], True)
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from .base import dtype_name, to_dtype
from .context import default_context, set_default_context  # noqa: F401  (MXNet's test_utils has them)
from .metric import to_numpy  # host copies of tensors or arrays, bfloat16 included
from .ops.memcheck import MemoryAccessError  # noqa: F401  (raised inside memcheck())
from .ops.memcheck import enabled as memcheck  # noqa: F401  (a public check, re-exported)

# (atol, rtol) by the dtype compared; float64 for gradient checks and oracles.
DEFAULT_TOLERANCES = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (1e-5, 1e-4),
    torch.float16: (2e-3, 5e-3),
    torch.bfloat16: (1.5e-2, 2e-2),
}


def _dtype_of(a) -> torch.dtype:
    if isinstance(a, torch.Tensor):
        return a.dtype
    kind = np.asarray(a).dtype
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16}.get(kind, torch.float64)


def assert_almost_equal(a, b, rtol: float | None = None, atol: float | None = None, names=("a", "b"),
                        equal_nan: bool = False) -> None:
    """``|a - b| <= atol + rtol * |b|`` everywhere (tolerances default by the lower of the two
    dtypes); where ``b`` is infinite, only the same infinity passes. NaN in ``a`` where ``b``
    is not NaN always fails, so an unwritten element shows; NaN against NaN passes only with
    ``equal_nan=True``."""
    dtype = max((_dtype_of(a), _dtype_of(b)), key=lambda d: DEFAULT_TOLERANCES.get(d, (0, 0))[1])
    default_atol, default_rtol = DEFAULT_TOLERANCES.get(dtype, DEFAULT_TOLERANCES[torch.float64])
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    actual, expected = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"{names[0]} has shape {actual.shape} but {names[1]} has shape {expected.shape}")
    with np.errstate(invalid="ignore"):  # inf - inf: infinities are compared below
        err = np.abs(actual - expected)
        within = err <= atol + rtol * np.abs(expected)
    # An infinity matches only itself: rtol * inf would make any value "close" to it.
    bad = np.where(np.isinf(expected), actual != expected, ~within)
    if equal_nan:
        bad &= ~(np.isnan(actual) & np.isnan(expected))
    if not bad.any():
        return
    index = np.argwhere(bad)
    order = np.argsort(-np.nan_to_num(err[bad], nan=np.inf))
    lines = [f"  at {tuple(int(i) for i in ix)}: {names[0]}={float(actual[tuple(ix)])!r}, "
             f"{names[1]}={float(expected[tuple(ix)])!r}" for ix in index[order][:5]]
    finite = err[bad][np.isfinite(err[bad])]
    worst = f"; largest difference {finite.max():.3g}" if finite.size else ""
    raise AssertionError(f"{names[0]} and {names[1]} differ in {int(bad.sum())} of {bad.size} elements beyond "
                         f"atol={atol:g}, rtol={rtol:g} ({dtype_name(dtype)}){worst}; worst:\n" + "\n".join(lines))


def _by_name(what: str, names: Sequence[str], values) -> dict:
    if isinstance(values, Mapping):
        unknown = [k for k in values if k not in names]
        if unknown:
            raise ValueError(f"{what}: {unknown} are not among {list(names)}")
        return dict(values)
    values = list(values)
    if len(values) != len(names):
        raise ValueError(f"{what}: {len(values)} values for {len(names)} names {list(names)}")
    return dict(zip(names, values))


def _bind(sym, location: dict, aux_states, grad_req, ctx, dtype):
    shapes = {n: tuple(np.shape(v)) for n, v in location.items()}
    # An auxiliary state's shape from its value too: a cache's length is not inferred from data.
    shapes.update({n: tuple(np.shape(v)) for n, v in dict(aux_states or {}).items()})
    types = {n: dtype for n in location}
    exe = sym.simple_bind(ctx, grad_req=grad_req, type_dict=types, **shapes)  # None: the default context
    if aux_states:
        exe.copy_params_from({}, aux_params=dict(aux_states))
    return exe


def check_symbolic_forward(sym, location, expected, rtol: float | None = None, atol: float | None = None,
                           aux_states=None, ctx=None, equal_nan: bool = False, dtype=torch.float64) -> list:
    """Forward (inference) on ``location`` (a dict, or a list in ``list_arguments()`` order)
    must give ``expected`` (a list in output order, or a dict by output name). Returns the outputs."""
    location = _by_name("location", sym.list_arguments(), location)
    exe = _bind(sym, location, aux_states, "null", ctx, dtype)
    outputs = exe.forward(is_train=False, **location)
    expected = _by_name("expected", sym.list_outputs(), expected)
    for name, out in zip(sym.list_outputs(), outputs):
        if name in expected:
            assert_almost_equal(out, expected[name], rtol, atol, (f"forward {name}", "expected"), equal_nan)
    return [o.clone() for o in outputs]


def check_symbolic_backward(sym, location, out_grads, expected, rtol: float | None = None,
                            atol: float | None = None, aux_states=None, grad_req="write", ctx=None,
                            equal_nan: bool = False, dtype=torch.float64) -> dict:
    """Forward (training) on ``location``, backward with ``out_grads`` (a list per output, a
    dict by output name, or None when every output is a loss); each gradient named in
    ``expected`` (a dict, or a list in argument order) must match. Returns the gradients."""
    names = sym.list_arguments()
    location = _by_name("location", names, location)
    expected = _by_name("expected", names, expected)
    reqs = {n: (grad_req if n in expected else "null") for n in names} if isinstance(grad_req, str) else grad_req
    exe = _bind(sym, location, aux_states, reqs, ctx, dtype)
    exe.forward(is_train=True, **location)
    exe.backward(out_grads)
    grads = {n: g.clone() for n, g in exe.grad_dict.items() if g is not None}
    for name, value in expected.items():
        assert_almost_equal(grads[name], value, rtol, atol, (f"gradient of {name!r}", "expected"), equal_nan)
    return grads


def _no_grad_arguments(sym) -> set[str]:
    """Arguments feeding only inputs their operators take no gradient for (labels)."""
    feeds: dict[str, list[bool]] = {}
    for node in sym.nodes():
        if node.is_variable:
            continue
        frozen = node.op.no_grad_inputs(node.params)
        for input_name, (source, _) in zip(node.input_names(), node.inputs):
            if source.is_variable:
                feeds.setdefault(source.name, []).append(input_name in frozen)
    return {name for name, flags in feeds.items() if all(flags)}


# (numeric_eps, rtol, atol) of check_numeric_gradient by the dtype the network runs in: float64
# checks gradients exactly; the others check that a kernel of that dtype is not wrong, with
# steps large enough that the dtype's rounding of f stays below the difference measured.
NUMERIC_GRADIENT_DEFAULTS = {
    torch.float64: (1e-6, 1e-6, 1e-9),
    torch.float32: (1e-3, 1e-2, 1e-4),
    torch.float16: (1e-2, 1e-1, 1e-2),
    torch.bfloat16: (1e-1, 2e-1, 5e-2),
}


def check_numeric_gradient(sym, location, aux_states=None, numeric_eps: float | None = None, rtol: float | None = None,
                           atol: float | None = None, grad_nodes: Sequence[str] | None = None,
                           losses: Mapping[str, Callable] | Sequence | None = None, directions: int = 3,
                           full_jacobian: bool | None = None, max_jacobian_elements: int = 64,
                           rng: np.random.Generator | None = None, ctx=None, dtype=torch.float64,
                           use_forward_train: bool = True) -> dict[str, float]:
    """Compare backward's gradients with central differences; returns the largest relative
    error per checked argument, and raises ``AssertionError`` naming the argument whose
    gradient is wrong.

    - ``dtype``: the dtype the network is bound in (float64 by default: an exact check;
      float32, float16 or bfloat16 as MXNet's ``dtype=``, with ``numeric_eps``, ``rtol``
      and ``atol`` defaulting to ``NUMERIC_GRADIENT_DEFAULTS`` for it). The differences are
      taken in float64 from that dtype's outputs.
    - ``use_forward_train``: the forward passes of the differences run in training mode (as
      backward's does), as MXNet's default.
    - ``location``: argument values (dict, or list in ``list_arguments()`` order).
    - ``grad_nodes``: the arguments to check (default: all but labels).
    - ``losses``: for each loss output (SoftmaxOutput, the regression outputs, MakeLoss), the
      scalar its backward differentiates, as ``f(values: dict, output: ndarray) -> float``
      (a dict by output name, or a list in output order with None for ordinary outputs).
    - ``full_jacobian``: perturb every element (default: for arguments of at most
      ``max_jacobian_elements`` elements) instead of ``directions`` random directions.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    dtype = to_dtype(dtype)
    if dtype not in NUMERIC_GRADIENT_DEFAULTS:
        raise ValueError(f"check_numeric_gradient: dtype={dtype_name(dtype)} is not one of "
                         f"{', '.join(dtype_name(d) for d in NUMERIC_GRADIENT_DEFAULTS)}")
    default_eps, default_rtol, default_atol = NUMERIC_GRADIENT_DEFAULTS[dtype]
    numeric_eps = default_eps if numeric_eps is None else numeric_eps
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    arg_names = sym.list_arguments()
    def representable(x: np.ndarray) -> np.ndarray:
        """``x`` rounded to the bound dtype (the values the network really sees), in float64."""
        return to_numpy(torch.from_numpy(np.asarray(x, dtype=np.float64)).to(dtype)).astype(np.float64)

    values = {n: representable(to_numpy(v)) for n, v in _by_name("location", arg_names, location).items()}
    missing = [n for n in arg_names if n not in values]
    if missing:
        raise ValueError(f"check_numeric_gradient: location lacks {missing}")
    if grad_nodes is None:
        frozen = _no_grad_arguments(sym)
        grad_nodes = [n for n in arg_names if n not in frozen]
    unknown = [n for n in grad_nodes if n not in arg_names]
    if unknown:
        raise ValueError(f"check_numeric_gradient: grad_nodes {unknown} are not arguments {arg_names}")
    exe = _bind(sym, values, aux_states, {n: "write" for n in grad_nodes}, ctx, dtype)
    outputs = sym.list_outputs()
    loss_of = {} if losses is None else (dict(losses) if isinstance(losses, Mapping) else
                                         {n: f for n, f in zip(outputs, losses) if f is not None})
    heads = []
    for name, needs_head in zip(outputs, exe.needs_out_grads):
        if needs_head:
            heads.append(rng.normal(size=tuple(exe.output_dict[name].shape)))
        elif name in loss_of:
            heads.append(None)
        else:
            raise ValueError(f"check_numeric_gradient: output {name!r} is a loss output: its backward writes the "
                             f"gradient of a loss, not of the output; pass losses={{{name!r}: f(values, output)}} "
                             "with that loss (e.g. the cross-entropy for SoftmaxOutput)")

    def objective(vals: dict) -> tuple[float, list[np.ndarray]]:
        """f, and its terms (each output times its head, or each loss)."""
        outs = exe.forward(is_train=use_forward_train, **vals)
        total, terms = 0.0, []
        for name, out, head in zip(outputs, outs, heads):
            out = to_numpy(out).astype(np.float64)
            term = np.asarray(float(loss_of[name](vals, out))) if head is None else head * out
            total += float(np.sum(term))
            terms.append(term)
        return total, terms

    unit_roundoff = torch.finfo(dtype).eps / 2

    def rounding(plus: list, minus: list) -> float:
        """How much of a difference f(x+) - f(x-) the dtype's rounding of the outputs can
        make (three standard deviations): terms that did not change rounded alike and
        cancel; the others each carry an independent error of up to a unit roundoff, so
        their sum grows as the root of the sum of squares, not as the sum."""
        squares = sum(float(np.sum(np.where(p != m, p * p + m * m, 0.0))) for p, m in zip(plus, minus))
        return 3 * unit_roundoff * np.sqrt(squares) / (2 * numeric_eps)

    # Rounding in f itself, amplified by 1/(2 eps): in float64 differences below this are noise;
    # in the other dtypes each difference's own rounding is estimated (``rounding``).
    atol = max(atol, 8 * np.finfo(np.float64).eps * max(1.0, abs(objective(values)[0])) / numeric_eps)
    exe.forward(is_train=True, **values)
    exe.backward(out_grads=[torch.from_numpy(h).to(o.dtype) if h is not None else torch.zeros_like(o)
                            for h, o in zip(heads, exe.outputs)])
    analytic = {n: to_numpy(exe.grad_dict[n]).astype(np.float64) for n in grad_nodes}

    def numeric(name: str, v: np.ndarray) -> tuple[float, np.ndarray, float]:
        """The central difference along ``v``, the direction it really measured, and the
        rounding it may hold. The points are rounded to the bound dtype, so in float16 the
        step differs from ``eps * v`` by a few percent: taken into account, not counted as error."""
        plus, minus = dict(values), dict(values)
        plus[name] = representable(values[name] + numeric_eps * v)
        minus[name] = representable(values[name] - numeric_eps * v)
        measured = (plus[name] - minus[name]) / (2 * numeric_eps)
        (f_plus, terms_plus), (f_minus, terms_minus) = objective(plus), objective(minus)
        noise = 0.0 if dtype == torch.float64 else rounding(terms_plus, terms_minus)
        return (f_plus - f_minus) / (2 * numeric_eps), measured, noise

    worst = {}
    for name in grad_nodes:
        x = values[name]
        jacobian = full_jacobian if full_jacobian is not None else x.size <= max_jacobian_elements
        if jacobian:
            numeric_grad, tolerance = np.zeros(x.size), atol
            for i in range(x.size):
                unit = np.zeros(x.size)
                unit[i] = 1.0
                difference, measured, noise = numeric(name, unit.reshape(x.shape))
                step = measured.reshape(-1)[i]
                if step == 0:
                    raise ValueError(f"check_numeric_gradient: numeric_eps={numeric_eps} is below the resolution of "
                                     f"{dtype_name(dtype)} at {name}{np.unravel_index(i, x.shape)} = "
                                     f"{x.reshape(-1)[i]!r}; pass a larger numeric_eps")
                numeric_grad[i] = difference / step
                tolerance = max(tolerance, noise / abs(step))
            assert_almost_equal(analytic[name], numeric_grad.reshape(x.shape), rtol, tolerance,
                                (f"gradient of {name!r} from backward", "finite differences"))
            scale = np.maximum(np.abs(numeric_grad), np.abs(analytic[name].reshape(-1)))
            worst[name] = float(np.max(np.abs(analytic[name].reshape(-1) - numeric_grad) /
                                       np.maximum(scale, tolerance), initial=0.0))
            continue
        worst[name] = 0.0
        for _ in range(directions):
            if dtype == torch.float64:
                v = rng.normal(size=x.shape)
                v /= np.linalg.norm(v) or 1.0
            else:  # every element a whole step, so each moves by many of the dtype's rounding steps
                v = rng.choice([-1.0, 1.0], size=x.shape)
            num, measured, noise = numeric(name, v)
            sym_value = float((analytic[name] * measured).sum())
            tolerance = max(atol, noise)
            if not abs(num - sym_value) <= tolerance + rtol * max(abs(num), abs(sym_value)):
                raise AssertionError(f"gradient of {name!r} is wrong: along a random direction the finite difference "
                                     f"is {num!r} but backward's gradient gives {sym_value!r} (relative error "
                                     f"{abs(num - sym_value) / max(abs(num), abs(sym_value)):.3g})")
            worst[name] = float(max(worst[name], abs(num - sym_value) / max(abs(num), abs(sym_value), tolerance)))
    return worst


# ------------------------------------------------- the helpers MXNet's test scripts lean on


def rand_shape_nd(num_dim: int, dim: int = 10, allow_zero_size: bool = False) -> tuple[int, ...]:
    """A random shape of ``num_dim`` dimensions, each in [1, dim] ([0, dim] with
    ``allow_zero_size``), drawn from numpy's global generator as MXNet's."""
    low = 0 if allow_zero_size else 1
    return tuple(int(d) for d in np.random.randint(low, dim + 1, size=num_dim))


def rand_shape_2d(dim0: int = 10, dim1: int = 10, allow_zero_size: bool = False) -> tuple[int, int]:
    low = 0 if allow_zero_size else 1
    return int(np.random.randint(low, dim0 + 1)), int(np.random.randint(low, dim1 + 1))


def rand_shape_3d(dim0: int = 10, dim1: int = 10, dim2: int = 10, allow_zero_size: bool = False):
    low = 0 if allow_zero_size else 1
    return tuple(int(np.random.randint(low, d + 1)) for d in (dim0, dim1, dim2))


def rand_ndarray(shape, stype: str = "default", density=None, dtype=None, ctx=None) -> torch.Tensor:
    """A tensor of uniform [0, 1) values (dense only: tritonsym has no sparse storage), on
    ``ctx`` (the default context)."""
    if stype != "default":
        raise ValueError(f"rand_ndarray: stype={stype!r}: tritonsym has dense tensors only ('default')")
    device = (ctx or default_context()).torch_device
    return torch.from_numpy(np.random.uniform(size=shape)).to(device, to_dtype(dtype or "float32"))


def same(a, b) -> bool:
    """Whether two arrays are equal element by element (NaN equal to nothing)."""
    return bool(np.array_equal(to_numpy(a), to_numpy(b)))


def almost_equal(a, b, rtol: float | None = None, atol: float | None = None, equal_nan: bool = False) -> bool:
    """``assert_almost_equal``'s test, as a bool."""
    try:
        assert_almost_equal(a, b, rtol, atol, equal_nan=equal_nan)
    except AssertionError:
        return False
    return True


@contextlib.contextmanager
def environment(*args):
    """Set environment variables for a block, then restore them (MXNet's): ``environment(
    "NAME", "value")`` or ``environment({"A": "1", "B": None})``; None unsets. A variable
    read when tritonsym is imported (TRITONSYM_INTERPRET ...) is not re-read."""
    if len(args) == 2 and isinstance(args[0], str):
        changes = {args[0]: args[1]}
    elif len(args) == 1 and isinstance(args[0], Mapping):
        changes = dict(args[0])
    else:
        raise ValueError(f"environment: expected (name, value) or a dict of them, got {args!r}")
    for name, value in changes.items():
        if value is not None and not isinstance(value, str):
            raise ValueError(f"environment: {name}={value!r} must be a string or None")
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
