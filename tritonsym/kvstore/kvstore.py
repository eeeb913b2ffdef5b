"""Key-value stores (MXNet's ``mx.kv``): ``local`` / ``device`` in one process, ``dist_sync``
across processes and machines on torch.distributed (``dist.py``).

The surface MXNet users know, over torch tensors: ``init(key, value)``, ``push(key,
value)`` (the values pushed for a key, summed over the list and, for ``dist_sync``, over
every worker, replace what the store holds), ``pull(key, out)``, ``pushpull(key, value,
out)``, ``rank``, ``num_workers``, ``barrier()``. Keys are ints or strings; a list of keys
takes a list of values.

>>> import torch, tritonsym as ts
>>> kv = ts.kv.create("local")
>>> kv.init("w", torch.zeros(3))
>>> kv.push("w", [torch.ones(3), 2 * torch.ones(3)])   # two devices' gradients: summed
>>> out = torch.empty(3); kv.pull("w", out=out); out.tolist()
[3.0, 3.0, 3.0]
"""

from __future__ import annotations

import torch

from ..base import TritonSymError


class KVStoreError(TritonSymError, RuntimeError):
    """A store operation that cannot work: unknown key, shapes that differ, a worker lost."""


def _pairs(what: str, keys, values) -> list[tuple]:
    if isinstance(keys, (list, tuple)):
        if not isinstance(values, (list, tuple)) or len(values) != len(keys):
            raise KVStoreError(f"kvstore.{what}: {len(keys)} keys need a list of {len(keys)} values")
        return list(zip(keys, values))
    return [(keys, values)]


def _tensors(what: str, key, value) -> list[torch.Tensor]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if not isinstance(v, torch.Tensor):
            raise KVStoreError(f"kvstore.{what}({key!r}): values must be torch tensors, got {type(v).__name__}")
    shapes = {tuple(v.shape) for v in values}
    if len(shapes) > 1:
        raise KVStoreError(f"kvstore.{what}({key!r}): the values have different shapes {sorted(shapes)}")
    return values


class KVStore:
    """A store in this process (``local`` and ``device`` behave alike: one device per process)."""

    def __init__(self, kind: str = "local"):
        self.type = kind
        self._store: dict = {}

    @property
    def rank(self) -> int:
        return 0

    @property
    def num_workers(self) -> int:
        return 1

    def barrier(self) -> None:
        pass

    # Collectives on a tensor in place: nothing to do alone; dist_sync overrides them.
    def broadcast(self, tensor: torch.Tensor) -> None:
        """Give every worker rank 0's ``tensor``."""

    def all_reduce(self, tensor: torch.Tensor) -> None:
        """Replace ``tensor`` by its sum over the workers."""

    def init(self, key, value) -> None:
        """Store the first value of each key (with ``dist_sync``, rank 0's value, on every worker).
        A store's keys are all integers or all strings, as MXNet's."""
        for k, v in _pairs("init", key, value):
            if not isinstance(k, (int, str)) or isinstance(k, bool):
                raise KVStoreError(f"kvstore.init: key {k!r} must be an int or a str")
            kinds = {type(existing) for existing in self._store}
            if kinds and type(k) not in kinds:
                kind = "a str" if isinstance(k, str) else "an int"
                theirs = "strs" if str in kinds else "ints"
                raise KVStoreError(f"kvstore.init: key {k!r} is {kind}, but this store's keys are {theirs}; one store "
                                   "does not mix key types (as MXNet's)")
            if k in self._store:
                raise KVStoreError(f"kvstore.init: key {k!r} is already initialized")
            stored = _tensors("init", k, v)[0].detach().clone()
            self.broadcast(stored)
            self._store[k] = stored

    def _stored(self, what: str, key, shape) -> torch.Tensor:
        if key not in self._store:
            raise KVStoreError(f"kvstore.{what}: key {key!r} was never init()-ed (keys: {list(self._store)})")
        stored = self._store[key]
        if shape is not None and tuple(shape) != tuple(stored.shape):
            raise KVStoreError(f"kvstore.{what}({key!r}): shape {tuple(shape)} does not match the stored "
                               f"{tuple(stored.shape)}")
        return stored

    def push(self, key, value, priority: int = 0) -> None:
        """Replace each key's value by the sum of the values pushed (over the list, and over
        all workers for ``dist_sync``)."""
        for k, v in _pairs("push", key, value):
            values = _tensors("push", k, v)
            stored = self._stored("push", k, values[0].shape)
            total = values[0].to(stored.dtype, copy=True)
            for extra in values[1:]:
                total += extra.to(total.device, total.dtype)  # host-side bookkeeping, not a training step
            self.all_reduce(total)
            stored.copy_(total)

    def pull(self, key, out=None, priority: int = 0) -> None:
        """Copy each key's value into ``out`` (a tensor or a list of tensors)."""
        if out is None:
            raise KVStoreError("kvstore.pull: give out= (the tensors to copy the values into)")
        for k, o in _pairs("pull", key, out):
            for target in _tensors("pull", k, o):
                target.copy_(self._stored("pull", k, target.shape))

    def pushpull(self, key, value, out=None, priority: int = 0) -> None:
        """``push`` then ``pull`` (into ``value`` itself when ``out`` is None)."""
        self.push(key, value, priority)
        self.pull(key, value if out is None else out, priority)

    def set_optimizer(self, optimizer) -> None:
        raise KVStoreError("kvstore.set_optimizer: tritonsym runs the optimizer on every worker after the gradient "
                           "all-reduce (Module.fit does this); the store does not update weights")

    def __repr__(self) -> str:
        return f"KVStore({self.type!r}, rank {self.rank} of {self.num_workers})"
