"""Gradient all-reduce in buckets, straight from the workspace, overlapped with backward.

Each dtype's parameter gradients lie in one flat region (``Executor.param_regions``). A
bucket is a contiguous slice of it (a view, never a copy) covering whole parameters,
filled from the end of the region: the last layers' gradients, which backward produces
first. When backward finishes the step after which every gradient of a bucket is final
(``Executor.grad_ready_steps``), that bucket's all-reduce starts, asynchronously, while
backward goes on; ``finish()`` waits for all of them before the optimizer runs.

Every worker must bind the same network and get the same buckets, or their collectives
would pair up wrongly: ``check_layout`` compares a fingerprint of both across workers
first and fails with a clear message instead of hanging or mixing tensors. And every
worker starts every bucket's all-reduce in the buckets' own order, whichever executor ran
(a BucketingModule's buckets may finish their gradients in other orders, and a gradient
no step writes is still summed): a bucket starts once it and every bucket before it are
final, so the collectives pair up whatever each worker ran.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from .kvstore import KVStoreError

DEFAULT_BUCKET_BYTES = 25 << 20  # as PyTorch DDP


@dataclass(frozen=True)
class Bucket:
    dtype: torch.dtype
    start: int  # elements, in the region
    end: int
    names: tuple[str, ...]
    view: torch.Tensor


class GradientSync:
    """The buckets of one executor's gradient regions and their all-reduces during backward."""

    def __init__(self, kv, executor, bucket_bytes: int = DEFAULT_BUCKET_BYTES, names=None):
        if not isinstance(bucket_bytes, int) or bucket_bytes < 1:
            raise KVStoreError(f"GradientSync: bucket_bytes={bucket_bytes!r} must be a positive integer")
        self.kv = kv
        self.buckets: list[Bucket] = []
        for region in executor.param_regions(names):  # names: the parameters (not inputs_need_grad's data)
            members = list(region.members)
            group: list[tuple[str, int, int]] = []
            for member in reversed(members):  # last layers first: their gradients are ready first
                group.append(member)
                if sum(size for _, _, size in group) * region.dtype.itemsize >= bucket_bytes:
                    self._add(region, group)
                    group = []
            if group:
                self._add(region, group)
        self._ready: dict[int, dict[int, list[int]]] = {}  # id(executor) -> step -> bucket indices
        self._pending: list = []

    def _add(self, region, group) -> None:
        start = min(s for _, s, _ in group)
        end = max(s + n for _, s, n in group)
        self.buckets.append(Bucket(region.dtype, start, end, tuple(n for n, _, _ in group),
                                   region.grads[start:end]))

    def layout(self) -> str:
        """The buckets as text: what the workers' fingerprints are made of."""
        return "; ".join(f"{str(b.dtype)[6:]}[{b.start}:{b.end}] {','.join(b.names)}" for b in self.buckets)

    def check_layout(self, network: str) -> None:
        """All workers must have the same ``network`` description and buckets."""
        digest = hashlib.sha256((network + "\n" + self.layout()).encode()).digest()
        mine = int.from_bytes(digest[:8], "little", signed=True)
        everyone = self.kv.all_gather_int(mine)
        differ = [rank for rank, value in enumerate(everyone) if value != everyone[0]]
        if differ:
            raise KVStoreError(f"kvstore 'dist_sync': workers {differ} bound a different network or gradient "
                               f"buckets than worker 0 (fingerprints {[f'{v & 0xffffffff:08x}' for v in everyone]}); "
                               "every worker must run the same script with the same network, batch size and "
                               f"options. This worker (rank {self.kv.rank}) has: {self.layout()}")

    def _schedule(self, executor) -> dict[int, list[int]]:
        """{backward step: the buckets whose gradients are final after it} (step -1: written
        by no step, zeroed before them)."""
        key = id(executor)
        if key not in self._ready:
            ready = executor.grad_ready_steps()
            by_step: dict[int, list[int]] = {}
            for k, bucket in enumerate(self.buckets):
                step = max(ready[name] for name in bucket.names)
                by_step.setdefault(step, []).append(k)
            self._ready[key] = by_step
        return self._ready[key]

    def backward(self, executor, out_grads=None) -> None:
        """Run ``executor``'s backward, starting each bucket's all-reduce once it and every
        bucket before it are final; the rest after the last step."""
        if self._pending:
            raise KVStoreError("GradientSync: the last backward's all-reduce was never finished (call finish())")
        schedule = self._schedule(executor)
        final = [False] * len(self.buckets)
        for k in schedule.get(-1, ()):
            final[k] = True
        started = 0

        def start_final(step: int) -> None:
            nonlocal started
            for k in schedule.get(step, ()):
                final[k] = True
            while started < len(self.buckets) and final[started]:
                self._pending.append(self.kv.all_reduce_async(self.buckets[started].view))
                started += 1

        executor.backward(out_grads, after_step=start_final)
        final[:] = [True] * len(self.buckets)  # a backward of no steps; buckets no step wrote
        start_final(-1)

    def finish(self) -> None:
        """Wait for every all-reduce of the last backward (the gradients are then summed)."""
        pending, self._pending = self._pending, []
        for work in pending:
            self.kv.wait(work)
