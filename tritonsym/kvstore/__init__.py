"""Key-value stores and data-parallel gradient synchronisation (MXNet's ``mx.kv``)."""

from .buckets import DEFAULT_BUCKET_BYTES, Bucket, GradientSync
from .kvstore import KINDS, KVStore, KVStoreError, create

__all__ = ["DEFAULT_BUCKET_BYTES", "KINDS", "Bucket", "GradientSync", "KVStore", "KVStoreError", "create"]
