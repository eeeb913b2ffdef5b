"""Devices: ``tritonsym.cpu()`` runs kernels in Triton's interpreter, ``tritonsym.gpu(i)``
compiles them for CUDA device i."""

from __future__ import annotations

import torch

from . import ops
from .base import BindError


class Context:
    """A device for bound arrays and kernels (MXNet's ``Context``)."""

    __slots__ = ("device_type", "device_id")

    def __init__(self, device_type: str, device_id: int = 0):
        if device_type not in ("cpu", "gpu"):
            raise ValueError(f"Context: device_type={device_type!r} is not 'cpu' or 'gpu'")
        if not isinstance(device_id, int) or device_id < 0:
            raise ValueError(f"Context: device_id={device_id!r} is not a non-negative integer")
        self.device_type = device_type
        self.device_id = device_id

    @property
    def torch_device(self) -> torch.device:
        return torch.device("cpu") if self.device_type == "cpu" else torch.device("cuda", self.device_id)

    def check_usable(self) -> None:
        """Raise a clear error if kernels cannot run on this device in this process."""
        if self.device_type == "cpu" and not ops.INTERPRET:
            raise BindError("cpu() runs Triton kernels in the interpreter, but this process compiles them for CUDA "
                            "(a CUDA device was found); use gpu(0), or set TRITONSYM_INTERPRET=1 before importing "
                            "tritonsym")
        if self.device_type == "gpu":
            if not torch.cuda.is_available():
                raise BindError(f"{self}: no CUDA device is available; use tritonsym.cpu()")
            if self.device_id >= torch.cuda.device_count():
                raise BindError(f"{self}: there are only {torch.cuda.device_count()} CUDA devices")

    def __eq__(self, other) -> bool:
        return isinstance(other, Context) and (self.device_type, self.device_id) == (other.device_type, other.device_id)

    def __hash__(self) -> int:
        return hash((self.device_type, self.device_id))

    def __repr__(self) -> str:
        return f"{self.device_type}({self.device_id})"


def cpu(device_id: int = 0) -> Context:
    return Context("cpu", device_id)


def gpu(device_id: int = 0) -> Context:
    return Context("gpu", device_id)


_chosen: Context | None = None  # set_default_context's choice


def default_context() -> Context:
    """The context ``set_default_context`` chose, else gpu(0) when kernels are compiled for
    CUDA, else cpu(). Module, simple_bind and the test utilities bind there by default."""
    if _chosen is not None:
        return _chosen
    return cpu() if ops.INTERPRET else gpu(0)


def set_default_context(context: Context | None) -> None:
    """Make ``context`` the default (MXNet's ``test_utils.set_default_context``); None goes back
    to the automatic choice."""
    global _chosen
    if context is not None and not isinstance(context, Context):
        raise BindError(f"set_default_context: expected tritonsym.cpu(), tritonsym.gpu(i) or None, got {context!r}")
    _chosen = context
