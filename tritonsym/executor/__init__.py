"""Binding: from a symbol to an Executor running pre-built launches on a static workspace."""

from .bind import bind, simple_bind
from .executor import Executor

__all__ = ["Executor", "bind", "simple_bind"]
