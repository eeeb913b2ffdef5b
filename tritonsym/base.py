"""Errors and dtype names shared by every layer of tritonsym."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import torch


class TritonSymError(Exception):
    """Base class of tritonsym's errors."""


class ShapeError(TritonSymError, ValueError):
    """Shapes that cannot work together; the message names the node, operator and input."""


class DTypeError(TritonSymError, TypeError):
    """A dtype that is unknown or does not fit the operator."""


class ParamError(TritonSymError, ValueError):
    """A bad operator hyper-parameter or symbol argument."""


class BindError(TritonSymError, ValueError):
    """The symbol cannot be bound with the given arrays, shapes or requests."""


class ExecutionError(TritonSymError, RuntimeError):
    """A kernel failed while running a bound graph; the message names the node."""


class FormatError(TritonSymError, ValueError):
    """A symbol file or JSON string that tritonsym cannot read."""


# dtypes the kernels compute in, and those a label may also have.
FLOAT_DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
INDEX_DTYPES = (torch.int32, torch.int64)

_DTYPE_NAMES = {
    "float64": torch.float64, "double": torch.float64, "f8": torch.float64,
    "float32": torch.float32, "float": torch.float32, "f4": torch.float32,
    "float16": torch.float16, "half": torch.float16, "f2": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "int32": torch.int32, "int64": torch.int64,
}


def to_dtype(value) -> torch.dtype:
    """A torch dtype from a torch dtype, a numpy dtype or type, or a name like ``"float64"``."""
    if isinstance(value, torch.dtype):
        dtype = value
    elif isinstance(value, str):
        key = value.strip().lower().removeprefix("torch.").removeprefix("numpy.")
        if key not in _DTYPE_NAMES:
            raise DTypeError(f"unknown dtype {value!r}; use one of {', '.join(dtype_name(d) for d in FLOAT_DTYPES)}")
        dtype = _DTYPE_NAMES[key]
    else:
        try:
            name = np.dtype(value).name
        except TypeError:
            raise DTypeError(f"cannot read a dtype from {value!r}") from None
        if name not in _DTYPE_NAMES:
            raise DTypeError(f"dtype {name} is not supported; use one of "
                             f"{', '.join(dtype_name(d) for d in FLOAT_DTYPES + INDEX_DTYPES)}")
        dtype = _DTYPE_NAMES[name]
    if dtype not in FLOAT_DTYPES + INDEX_DTYPES:
        raise DTypeError(f"dtype {dtype_name(dtype)} is not supported; use one of "
                         f"{', '.join(dtype_name(d) for d in FLOAT_DTYPES + INDEX_DTYPES)}")
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def converted_on_host(what: str, src: torch.Tensor, dtype: torch.dtype, error=ValueError) -> torch.Tensor:
    """Host tensor ``src`` in ``dtype``; a finite value that would become inf (1e6 into
    float16) raises ``error`` naming ``what`` rather than turning into a silent inf."""
    converted = src.to(dtype)
    if dtype.is_floating_point and dtype.itemsize < 8 and (inf := torch.isinf(converted)).any():
        wide = src.to(torch.float64)
        overflowed = inf & ~torch.isinf(wide)
        if overflowed.any():
            largest = wide[overflowed].abs().max().item()
            raise error(f"{what} has {int(overflowed.sum())} value(s) beyond the range of {dtype_name(dtype)} "
                        f"(largest magnitude {largest:g}; {dtype_name(dtype)} holds up to "
                        f"{torch.finfo(dtype).max:g}); they would become inf")
    return converted


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside tritonsym (the user's
    line), however deep in the package the warning is raised. A fixed ``stacklevel``
    would point into tritonsym from some call paths, and counts frames differently from
    Python 3.12 on, which runs comprehensions in their caller's frame."""
    frame, level = sys._getframe(1), 2  # level 2: warn's caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
