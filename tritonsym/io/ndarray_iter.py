"""Batches from arrays in memory (MXNet's ``NDArrayIter``), and what a batch carries.

An iterator yields ``DataBatch``es whose ``data`` and ``label`` are lists of torch tensors
on the host, one per name in ``provide_data`` / ``provide_label`` (``DataDesc``: name,
shape with the batch size, dtype), and whose ``pad`` says how many trailing samples are
filler. Every batch has the same shape, so a network is bound once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import numpy as np
import torch

from .. import random
from ..base import ParamError, converted_on_host, dtype_name, to_dtype, user_tensor

LAST_BATCH_HANDLES = ("pad", "discard", "roll_over")


class DataDesc(NamedTuple):
    """Name, shape (batch first) and dtype of one input."""

    name: str
    shape: tuple
    dtype: torch.dtype = torch.float32


@dataclass
class DataBatch:
    data: list[torch.Tensor]
    label: list[torch.Tensor] = field(default_factory=list)
    pad: int = 0
    index: np.ndarray | None = None
    provide_data: list[DataDesc] | None = None
    provide_label: list[DataDesc] | None = None
    bucket_key: object = None  # which bucket of a BucketingModule the batch is for (None: the default)

    def __str__(self) -> str:
        """MXNet's summary: the shapes, not the values."""
        def shapes(arrays):
            return None if arrays is None else [tuple(a.shape) for a in arrays]
        return f"DataBatch: data shapes: {shapes(self.data)} label shapes: {shapes(self.label)}"


class DataIter:
    """Base class: iterate over ``DataBatch``es; ``reset()`` starts the next epoch."""

    batch_size: int = 0

    def __iter__(self) -> Iterator[DataBatch]:
        return self

    def __next__(self) -> DataBatch:
        batch = self.next()
        if batch is None:
            raise StopIteration
        return batch

    def next(self) -> DataBatch | None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    @property
    def provide_data(self) -> list[DataDesc]:
        raise NotImplementedError

    @property
    def provide_label(self) -> list[DataDesc]:
        return []


def _named(what: str, arrays, default_name: str) -> list[tuple[str, np.ndarray | torch.Tensor]]:
    if arrays is None:
        return []
    if isinstance(arrays, dict):
        items = list(arrays.items())
    elif isinstance(arrays, (list, tuple)):
        items = [(default_name if len(arrays) == 1 else f"_{k}_{default_name}", a) for k, a in enumerate(arrays)]
    else:
        items = [(default_name, arrays)]
    out = []
    for name, a in items:
        a = user_tensor(f"NDArrayIter: {what} {name!r}", a, ParamError)
        if a.ndim == 0:
            raise ParamError(f"NDArrayIter: {what} {name!r} must have a batch dimension, got a scalar")
        out.append((name, a))
    return out


def _as_tensor(name: str, a, dtype: torch.dtype | None, is_label: bool) -> torch.Tensor:
    """A host tensor: data in ``dtype``; labels in ``dtype`` when fractional, else int64."""
    t = a.detach().cpu()
    if is_label and not t.is_floating_point():
        t = t.to(torch.int64)  # class indices (uint8 labels and friends) in the type kernels read
    elif dtype is not None and t.dtype != dtype:
        t = converted_on_host(f"NDArrayIter: {name!r}", t, dtype, ParamError)
    return t.contiguous()


def check_parts(what: str, num_parts, part_index) -> None:
    """A data-parallel worker's share: ``part_index`` of ``num_parts`` (iterators' arguments)."""
    if not (isinstance(num_parts, int) and num_parts >= 1 and isinstance(part_index, int)
            and 0 <= part_index < num_parts):
        raise ParamError(f"{what}: part_index={part_index!r} must be in [0, num_parts={num_parts!r})")


class NDArrayIter(DataIter):
    """Batches of ``batch_size`` samples from arrays (numpy or torch, or a list/dict of them).

    - ``shuffle``: a new order every epoch, a function of the seed (``seed``, or drawn from
      ``tritonsym.random`` when the iterator is made) and the epoch number: ``set_epoch(n)``
      (which ``fit`` calls) puts a new iterator where an uninterrupted run would be.
    - ``last_batch_handle``: ``"pad"`` fills the last batch with samples from the start of
      the epoch and reports how many in ``pad`` (metrics and ``predict`` drop them);
      ``"discard"`` drops an incomplete last batch; ``"roll_over"`` carries the leftover
      samples into the first batch of the next epoch.
    - ``dtype``: floating data and labels are converted to it (float32 by default, as in
      MXNet); integer labels keep an integer type.
    - ``num_parts`` / ``part_index``: this iterator reads only its contiguous share of the
      samples (for data-parallel workers): ``len // num_parts`` samples each, the same for
      every part, so that every worker runs the same number of batches.

    >>> import numpy as np
    >>> it = NDArrayIter(np.zeros((10, 3)), np.arange(10), batch_size=4)
    >>> [b.pad for b in it]
    [0, 0, 2]
    """

    def __init__(self, data, label=None, batch_size: int = 1, shuffle: bool = False,
                 last_batch_handle: str = "pad", data_name: str = "data", label_name: str = "softmax_label",
                 dtype="float32", seed: int | None = None, num_parts: int = 1, part_index: int = 0):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ParamError(f"NDArrayIter: batch_size={batch_size!r} must be a positive integer")
        if last_batch_handle not in LAST_BATCH_HANDLES:
            raise ParamError(f"NDArrayIter: last_batch_handle={last_batch_handle!r} must be one of "
                             f"{', '.join(LAST_BATCH_HANDLES)}")
        check_parts("NDArrayIter", num_parts, part_index)
        dtype = to_dtype(dtype) if dtype is not None else None
        data_items = _named("data", data, data_name)
        if not data_items:
            raise ParamError("NDArrayIter: no data given")
        named = data_items + _named("label", label, label_name)
        sizes = {name: a.shape[0] for name, a in named}
        if len(set(sizes.values())) != 1:
            raise ParamError(f"NDArrayIter: data and labels must have the same number of samples, got {sizes}")
        total = next(iter(sizes.values()))
        # Equal parts (the last total % num_parts samples are left out): every data-parallel
        # worker then runs the same number of batches, so their collectives pair up.
        share = total // num_parts
        lo, hi = share * part_index, share * (part_index + 1)
        n_data = len(data_items)
        arrays = [(name, _as_tensor(name, a[lo:hi], dtype, k >= n_data)) for k, (name, a) in enumerate(named)]
        self.data, self.label = arrays[:n_data], arrays[n_data:]
        self.num_data = hi - lo
        if self.num_data < batch_size and last_batch_handle == "discard":
            raise ParamError(f"NDArrayIter: {self.num_data} samples make no full batch of {batch_size} and "
                             "last_batch_handle='discard' would yield nothing")
        if self.num_data == 0:
            raise ParamError("NDArrayIter: no samples")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.last_batch_handle = last_batch_handle
        # Only a shuffling iterator draws from tritonsym.random, so others leave its sequence alone.
        if seed is None:
            seed = int(random.generator().integers(2 ** 63)) if shuffle else 0
        self.seed = seed
        self.epoch = 0  # the epoch being read: reset() moves to the next, set_epoch() to any
        self._carry = np.zeros(0, dtype=np.int64)  # roll_over: samples left from the last epoch
        self._start_epoch()

    @property
    def provide_data(self) -> list[DataDesc]:
        return [DataDesc(n, (self.batch_size, *t.shape[1:]), t.dtype) for n, t in self.data]

    @property
    def provide_label(self) -> list[DataDesc]:
        return [DataDesc(n, (self.batch_size, *t.shape[1:]), t.dtype) for n, t in self.label]

    def _epoch_order(self, epoch: int) -> np.ndarray:
        """The samples of ``epoch`` in order: a function of the seed and the epoch number
        alone, so that a run resumed at epoch n (``set_epoch``) reads what it would have."""
        if not self.shuffle:
            return np.arange(self.num_data)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_data)

    def _start_epoch(self) -> None:
        self._order = np.concatenate([self._carry, self._epoch_order(self.epoch)])
        self._cursor = 0

    def reset(self) -> None:
        """Start the next epoch. ``roll_over`` carries the leftover samples only when the
        epoch was read to its end (fewer than a batch left, as MXNet does): a reset before
        that (a fresh iterator, or an epoch cut short) starts over, rather than carrying a
        whole epoch's unread samples into the next one."""
        remaining = self._order[self._cursor:]
        read_to_the_end = len(remaining) < self.batch_size
        self._carry = remaining if self.last_batch_handle == "roll_over" and read_to_the_end else self._carry[:0]
        self.epoch += 1
        self._start_epoch()

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` as an uninterrupted run reaches it: its order comes from the seed
        and the epoch number, and ``roll_over``'s carried samples are replayed from the
        epochs before it, each read to its end (as ``fit`` reads them). ``fit`` calls this
        at every epoch, so ``fit(begin_epoch=n)`` on a new iterator with the same seed
        resumes the batch order bit for bit. Nothing happens when the iterator is already
        at ``epoch`` (however much of it was read: ``reset()`` starts it over)."""
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ParamError(f"NDArrayIter.set_epoch: epoch={epoch!r} must be a whole number >= 0")
        if epoch == self.epoch:
            return
        carry = np.zeros(0, dtype=np.int64)
        if self.last_batch_handle == "roll_over":
            for earlier in range(int(epoch)):
                order = np.concatenate([carry, self._epoch_order(earlier)])
                carry = order[len(order) - len(order) % self.batch_size:]
        self._carry, self.epoch = carry, int(epoch)
        self._start_epoch()

    def next(self) -> DataBatch | None:
        remaining = len(self._order) - self._cursor
        if remaining <= 0 or (remaining < self.batch_size and self.last_batch_handle != "pad"):
            return None
        index = self._order[self._cursor:self._cursor + self.batch_size]
        pad = self.batch_size - len(index)
        if pad:  # wrap around to the start of the epoch
            index = np.concatenate([index, np.resize(self._order, pad)])
        self._cursor += self.batch_size
        take = torch.from_numpy(index)
        return DataBatch([t[take] for _, t in self.data], [t[take] for _, t in self.label], pad, index,
                         self.provide_data, self.provide_label)

    def __repr__(self) -> str:
        descs = ", ".join(f"{d.name} {d.shape} {dtype_name(d.dtype)}" for d in self.provide_data + self.provide_label)
        return (f"NDArrayIter({self.num_data} samples, batch {self.batch_size}, shuffle={self.shuffle}, "
                f"last_batch_handle={self.last_batch_handle!r}: {descs})")
