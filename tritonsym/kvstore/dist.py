"""``dist_sync``: the workers of a torch.distributed job (NCCL between GPUs, Gloo between CPUs).

Start the job with ``torchrun --nproc_per_node=N script.py`` (rendezvous from the
environment) or give ``init_method`` (``"file:///shared/path"``, ``"tcp://host:port"``)
with ``rank`` and ``num_workers``. Every collective has a timeout (``timeout`` seconds,
default 300): a worker that never joins, crashes or falls behind makes the others fail
with an error that says so instead of hanging.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from .buckets import DEFAULT_BUCKET_BYTES
from .kvstore import KVStore, KVStoreError


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value is not None and value.strip().isdigit() else None


class DistSyncKVStore(KVStore):
    """A store shared by every worker: ``push`` all-reduces (sums) over the workers."""

    def __init__(self, init_method: str | None = None, rank: int | None = None, num_workers: int | None = None,
                 timeout: float = 300.0, backend: str | None = None, bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        super().__init__("dist_sync")
        self.timeout = datetime.timedelta(seconds=float(timeout))
        self.bucket_bytes = bucket_bytes  # the size of one gradient all-reduce (buckets.py)
        if dist.is_initialized():  # the script set torch.distributed up itself: use its group
            self._rank, self._size = dist.get_rank(), dist.get_world_size()
            return
        rank = rank if rank is not None else _env_int("RANK")
        size = num_workers if num_workers is not None else _env_int("WORLD_SIZE")
        if rank is None or size is None:
            raise KVStoreError("kvstore 'dist_sync': this process is not part of a distributed job (no RANK and "
                               "WORLD_SIZE in the environment); start it with torchrun --nproc_per_node=N, or give "
                               "init_method=..., rank=... and num_workers=...")
        if not 0 <= rank < size:
            raise KVStoreError(f"kvstore 'dist_sync': rank={rank} must be in [0, num_workers={size})")
        backend = backend or ("nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo")
        init_method = init_method or "env://"
        try:
            dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=size,
                                    timeout=self.timeout)
        except Exception as e:  # torch raises several types (DistStoreError, RuntimeError, ValueError)
            raise KVStoreError(f"kvstore 'dist_sync': rank {rank} could not join the {size} workers at "
                               f"{init_method!r} within {self.timeout.total_seconds():g} s ({type(e).__name__}: "
                               f"{e}); is every rank started, with the same init_method and num_workers?") from e
        self._rank, self._size = rank, size

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def num_workers(self) -> int:
        return self._size

    def _collective(self, what: str, run):
        try:
            work = run()
            if work is not None and not work.wait(self.timeout):
                raise RuntimeError(f"not complete after {self.timeout.total_seconds():g} s")
        except KVStoreError:
            raise
        except Exception as e:
            raise KVStoreError(f"kvstore 'dist_sync': {what} failed on rank {self._rank} of {self._size} "
                               f"({type(e).__name__}: {e}); another worker stopped, crashed or did something "
                               "else (every worker must run the same steps)") from e

    def barrier(self) -> None:
        self._collective("barrier", lambda: dist.barrier(async_op=True))

    def broadcast(self, tensor: torch.Tensor) -> None:
        self._collective("broadcast from rank 0", lambda: dist.broadcast(tensor, src=0, async_op=True))

    def all_reduce(self, tensor: torch.Tensor) -> None:
        self._collective("all-reduce", lambda: dist.all_reduce(tensor, async_op=True))

    def all_reduce_async(self, tensor: torch.Tensor):
        """Start summing ``tensor`` (contiguous, in place) over the workers; ``wait(work)`` ends it."""
        try:
            return dist.all_reduce(tensor, async_op=True)
        except Exception as e:
            raise KVStoreError(f"kvstore 'dist_sync': starting an all-reduce failed on rank {self._rank}: {e}") from e

    def wait(self, work) -> None:
        self._collective("gradient all-reduce", lambda: work)

    def all_gather_int(self, value: int) -> list[int]:
        """Every worker's ``value`` (an int64), in rank order."""
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        mine = torch.tensor([value], dtype=torch.int64, device=device)
        everyone = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(self._size)]
        self._collective("all-gather", lambda: dist.all_gather(everyone, mine, async_op=True))
        return [int(t.item()) for t in everyone]

    def close(self) -> None:
        """Leave the job (the process group is destroyed)."""
        if dist.is_initialized():
            dist.destroy_process_group()
