"""The training API: ``Module`` (MXNet's ``mx.mod``)."""

from .module import Module

__all__ = ["Module"]
