"""A small ``mx.nd`` for ported scripts: its constructors, returning torch tensors.

tritonsym has no array type of its own: parameters, batches and outputs are torch tensors,
so ``nd.array``, ``nd.zeros`` ... return torch tensors on the context's device (the default
context when none is given), float32 unless a dtype is given, as MXNet's. ``asnumpy(x)``
stands for ``x.asnumpy()``; ``save`` and ``load`` read and write MXNet's NDArray-list
files (``mx.nd.save``), so arrays move between the two.

>>> import tritonsym as ts
>>> ts.nd.arange(3, dtype="float64").tolist(), ts.nd.full((2,), 7).dtype
([0.0, 1.0, 2.0], torch.float32)
"""

from __future__ import annotations

import numpy as np
import torch

from . import mxnet_format
from .base import ParamError, to_dtype
from .context import Context, default_context


def _device(ctx: Context | None) -> torch.device:
    if ctx is not None and not isinstance(ctx, Context):
        raise ParamError(f"nd: ctx must be tritonsym.cpu() or tritonsym.gpu(i), got {ctx!r}")
    return (ctx or default_context()).torch_device


def array(source_array, ctx: Context | None = None, dtype=None) -> torch.Tensor:
    """A new tensor holding ``source_array`` (a list, numpy array or tensor): of ``dtype``,
    else of the source's dtype when it is a tensor (MXNet: an NDArray), else float32 (a
    numpy array of int64 too, as in MXNet)."""
    if dtype is None:
        dtype = source_array.dtype if isinstance(source_array, torch.Tensor) else torch.float32
    if isinstance(source_array, torch.Tensor):
        return source_array.detach().to(_device(ctx), to_dtype(dtype), copy=True)
    return torch.tensor(np.asarray(source_array), dtype=to_dtype(dtype), device=_device(ctx))


def empty(shape, ctx: Context | None = None, dtype="float32") -> torch.Tensor:
    return torch.empty(shape, dtype=to_dtype(dtype), device=_device(ctx))


def zeros(shape, ctx: Context | None = None, dtype="float32") -> torch.Tensor:
    return torch.zeros(shape, dtype=to_dtype(dtype), device=_device(ctx))


def ones(shape, ctx: Context | None = None, dtype="float32") -> torch.Tensor:
    return torch.ones(shape, dtype=to_dtype(dtype), device=_device(ctx))


def full(shape, val, ctx: Context | None = None, dtype="float32") -> torch.Tensor:
    return torch.full(shape if isinstance(shape, (tuple, list)) else (shape,), val, dtype=to_dtype(dtype),
                      device=_device(ctx))


def zeros_like(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(x)


def ones_like(x: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(x)


def arange(start, stop=None, step=1.0, repeat: int = 1, ctx: Context | None = None, dtype="float32") -> torch.Tensor:
    """``start, start + step, ...`` below ``stop`` (from 0 to ``start`` when ``stop`` is None),
    each value ``repeat`` times, as MXNet's."""
    if stop is None:
        start, stop = 0, start
    if not isinstance(repeat, int) or repeat < 1:
        raise ParamError(f"nd.arange: repeat={repeat!r} must be a positive integer")
    values = np.arange(start, stop, step, dtype=np.float64)
    return torch.tensor(np.repeat(values, repeat), dtype=to_dtype(dtype), device=_device(ctx))


def concat(*arrays: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """The arrays joined along ``dim`` (MXNet's default: 1)."""
    return torch.cat(arrays, dim=dim)


def asnumpy(x) -> np.ndarray:
    """A host numpy copy (``x.asnumpy()`` in MXNet); bfloat16 becomes float32, which numpy has."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        return (x.float() if x.dtype == torch.bfloat16 else x).cpu().numpy()
    return np.asarray(x)


def waitall() -> None:
    """Wait for all work queued on the devices (MXNet's engine barrier; a CUDA synchronize)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def save(fname: str, data) -> None:
    """Write a tensor, a list of them or a dict by name in MXNet's NDArray-list format."""
    if isinstance(data, torch.Tensor):
        data = [data]
    if not isinstance(data, (list, tuple, dict)):
        raise ParamError(f"nd.save: data must be a tensor, a list of tensors or a dict of them, got "
                         f"{type(data).__name__}")
    mxnet_format.write_params(fname, dict(data) if isinstance(data, dict) else list(data))


def load(fname: str) -> "list[torch.Tensor] | dict[str, torch.Tensor]":
    """What ``save`` (or MXNet's ``mx.nd.save``) wrote: a dict by name, or a list."""
    arrays, names = mxnet_format.read_arrays(fname)
    return dict(zip(names, arrays)) if names else arrays
