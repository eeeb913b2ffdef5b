"""The training API: ``Module`` and ``BucketingModule`` (MXNet's ``mx.mod``)."""

from .bucketing import BucketingModule
from .module import Module

__all__ = ["BucketingModule", "Module"]
