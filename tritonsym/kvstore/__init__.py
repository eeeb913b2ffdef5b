"""Key-value stores and data-parallel gradient synchronisation (MXNet's ``mx.kv``)."""

from .buckets import DEFAULT_BUCKET_BYTES, Bucket, GradientSync
from .factory import KINDS, create
from .kvstore import KVStore, KVStoreError

__all__ = ["DEFAULT_BUCKET_BYTES", "KINDS", "Bucket", "GradientSync", "KVStore", "KVStoreError", "create"]
