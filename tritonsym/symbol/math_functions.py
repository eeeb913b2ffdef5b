"""MXNet's Python-level math functions of ``mx.sym``: ``maximum``, ``minimum``, ``pow`` /
``power``, which pick the operator from their arguments (two symbols of one shape, or a
symbol and a number), as ``mx.sym.maximum`` does."""

from __future__ import annotations

import numbers

from .symbol import Symbol, create, scalar_arithmetic


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _pick(fn: str, left, right, both: str, scalar: str, name=None):
    if isinstance(left, Symbol) and isinstance(right, Symbol):
        return create(both, left, right, name=name)
    if isinstance(left, Symbol) and _number(right):
        return scalar_arithmetic(scalar, left, right, name=name)
    if _number(left) and isinstance(right, Symbol):
        return scalar_arithmetic(scalar, right, left, name=name)
    raise TypeError(f"{fn}: takes symbols or a symbol and a number, got {type(left).__name__} and "
                    f"{type(right).__name__}")


def maximum(left, right, name=None):
    """The elementwise maximum of two symbols of one shape, or of a symbol and a number."""
    return _pick("maximum", left, right, "_maximum", "_maximum_scalar", name)


def minimum(left, right, name=None):
    """The elementwise minimum of two symbols of one shape, or of a symbol and a number."""
    return _pick("minimum", left, right, "_minimum", "_minimum_scalar", name)


def power(base, exp, name=None):
    """``base ** exp`` elementwise: two symbols of one shape, or a symbol and a number."""
    if isinstance(base, Symbol) and isinstance(exp, Symbol):
        return create("_power", base, exp, name=name)
    if isinstance(base, Symbol) and _number(exp):
        return scalar_arithmetic("_power_scalar", base, exp, name=name)
    if _number(base) and isinstance(exp, Symbol):
        return scalar_arithmetic("_rpower_scalar", exp, base, name=name)
    raise TypeError(f"power: takes symbols or a symbol and a number, got {type(base).__name__} and "
                    f"{type(exp).__name__}")


pow = power  # noqa: A001 (MXNet's name)
