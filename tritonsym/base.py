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


def user_tensor(what: str, value, error=ValueError) -> torch.Tensor:
    """User data (a torch tensor, numpy array, nested list or number) as a torch tensor of
    real numbers, or ``error`` naming ``what``: never torch's own message, which names
    nothing. numpy's big-endian arrays, ``longdouble`` and unsigned types that torch cannot
    compute with are converted (a value they cannot keep is an error); a tensor that
    requires grad is detached (its values are what is wanted, not its graph)."""
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            raise error(f"{what} is a tensor on the meta device: it has a shape but no values")
        tensor = value.detach()
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as e:
            raise error(f"{what}: cannot read an array from {type(value).__name__} ({e})") from None
        if array.dtype.kind not in "biuf":
            raise error(f"{what} is an array of {array.dtype} ({_describe_kind(array.dtype)}); a real number type "
                        "is needed")
        if not array.dtype.isnative:  # big-endian data from a file: the same numbers in this machine's order
            array = array.astype(array.dtype.newbyteorder("="))
        if array.dtype.kind == "f" and array.dtype.itemsize > 8:  # longdouble: torch has no such type
            with np.errstate(over="ignore"):
                wide = array.astype(np.float64)
            overflowed = np.isinf(wide) & np.isfinite(array)
            if overflowed.any():
                raise error(f"{what} is a {array.dtype} array with values beyond float64's range "
                            f"(e.g. {array[overflowed].flat[0]!r})")
            array = wide
        elif array.dtype.kind == "u" and array.dtype.itemsize > 1:  # torch computes on uint8 only
            if array.size and array.max() > np.iinfo(np.int64).max:
                raise error(f"{what} holds {array.max()!r}, beyond the int64 range")
            array = array.astype(np.int64)
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise error(f"{what} has dtype {dtype_name(tensor.dtype)}; a real number type is needed")
    return tensor


def _describe_kind(dtype: np.dtype) -> str:
    return {"U": "text", "S": "bytes", "O": "Python objects", "M": "dates", "m": "time spans", "b": "booleans",
            "c": "complex numbers", "V": "raw records"}.get(dtype.kind, dtype.kind)


def converted_exactly(what: str, src: torch.Tensor, dtype: torch.dtype, error=ValueError) -> torch.Tensor:
    """Host tensor ``src`` in ``dtype``, refusing every value the conversion would change:
    1.7 or NaN into an integer array, 2**32 + 2 into int32 (it would wrap to 2), 257 into
    bfloat16 (256). For class indices such a change picks another class without a word.
    NaN stays NaN between floating dtypes."""
    converted = src.to(dtype)
    if src.is_floating_point() and dtype.is_floating_point:
        wide, back = src.to(torch.float64), converted.to(torch.float64)
        changed = (back != wide) & ~(torch.isnan(back) & torch.isnan(wide))
    elif src.is_floating_point():  # into an integer dtype: whole, finite and in range
        wide = src.to(torch.float64)
        info = torch.iinfo(dtype)
        changed = ~torch.isfinite(wide) | (wide != torch.round(wide)) | (wide < info.min) | (wide > info.max)
    else:  # from an integer dtype (or bool)
        changed = converted.to(torch.int64) != src.to(torch.int64)
    if changed.any():
        flat = torch.nonzero(changed.reshape(-1))[:, 0]
        position = tuple(int(i) for i in np.unravel_index(int(flat[0]), tuple(src.shape))) if src.dim() else ()
        value = src.reshape(-1)[flat[0]].item()
        raise error(f"{what}: the value {value!r} at position {position} cannot be stored exactly in "
                    f"{dtype_name(dtype)} (it would become {converted.reshape(-1)[flat[0]].item()!r}); "
                    f"{flat.numel()} of {src.numel()} value(s) would change")
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
