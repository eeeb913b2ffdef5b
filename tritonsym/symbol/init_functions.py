"""MXNet's ``mx.sym.zeros``, ``ones``, ``full``, ``arange``, ``linspace`` and ``eye``: Python
functions over the operators ``_zeros`` ... ``_eye`` (``operators/arange.py``), named as
MXNet names their nodes (``_zeros0``, ``_arange0``). ``dtype`` left out follows the graph
(float32 where nothing decides), where MXNet's functions write float32."""

from __future__ import annotations

from ..base import dtype_name, to_dtype
from .symbol import Symbol, create_called


def _make(op: str, name=None, attr=None, dtype=None, **params) -> Symbol:
    if dtype is not None:  # "float32", np.float32, torch.int64 ...
        params["dtype"] = dtype_name(to_dtype(dtype))
    return create_called(op, op, name=name, attr=attr, **params)


def zeros(shape, dtype=None, name=None, attr=None, **kwargs) -> Symbol:
    """An array of ``shape`` filled with 0."""
    return _make("_zeros", name, attr, dtype, shape=shape, **kwargs)


def ones(shape, dtype=None, name=None, attr=None, **kwargs) -> Symbol:
    """An array of ``shape`` filled with 1."""
    return _make("_ones", name, attr, dtype, shape=shape, **kwargs)


def full(shape, val, dtype=None, name=None, attr=None, **kwargs) -> Symbol:
    """An array of ``shape`` filled with ``val``."""
    return _make("_full", name, attr, dtype, shape=shape, value=val, **kwargs)


def arange(start, stop=None, step=1.0, repeat=1, infer_range=False, name=None, attr=None, dtype=None,
           **kwargs) -> Symbol:
    """``start, start + step, ...`` up to ``stop`` (not included; ``arange(n)``: 0 to n), each
    value ``repeat`` times in a row."""
    return _make("_arange", name, attr, dtype, start=start, stop=stop, step=step, repeat=repeat,
                 infer_range=infer_range, **kwargs)


def linspace(start, stop, num, endpoint=True, name=None, attr=None, dtype=None, **kwargs) -> Symbol:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included with ``endpoint``)."""
    return _make("_linspace", name, attr, dtype, start=start, stop=stop, num=num, endpoint=endpoint, **kwargs)


def eye(N, M=0, k=0, dtype=None, name=None, attr=None, **kwargs) -> Symbol:  # noqa: N803 (MXNet's names)
    """A matrix of ``N`` rows and ``M`` columns (0: N), 1 on diagonal ``k``, 0 elsewhere."""
    return _make("_eye", name, attr, dtype, N=N, M=M, k=k, **kwargs)
