"""``kvstore.create``: a store by name, for one process or a torch.distributed job."""

from __future__ import annotations

from .dist import DistSyncKVStore
from .kvstore import KVStore, KVStoreError

KINDS = ("local", "device", "dist_sync")


def create(name: str = "local", **kwargs) -> KVStore:
    """``"local"`` or ``"device"`` (one process), or ``"dist_sync"`` (every process of a
    torch.distributed job; ``kwargs`` go to ``DistSyncKVStore``: ``init_method``, ``rank``,
    ``num_workers``, ``timeout``, ``backend``)."""
    if isinstance(name, KVStore):
        return name
    if name in ("local", "device"):
        if kwargs:
            raise KVStoreError(f"kvstore.create({name!r}) takes no options, got {sorted(kwargs)}")
        return KVStore(name)
    if name == "dist_sync":
        return DistSyncKVStore(**kwargs)
    if isinstance(name, str) and name.startswith("dist_async"):
        raise KVStoreError("kvstore 'dist_async' is not supported: tritonsym trains data-parallel synchronously "
                           "(every worker applies the same all-reduced gradient); use 'dist_sync'")
    raise KVStoreError(f"kvstore: unknown type {name!r}; use one of {', '.join(KINDS)}")

