"""MXNet's ``mx.rnn.encode_sentences`` and ``mx.rnn.BucketSentenceIter``: token sentences to
integer codes, and batches of sentences padded to the next bucket length, with the label at
each step the next token (a language model's), for ``BucketingModule``. Shuffling draws from
``tritonsym.random``'s generator, so ``ts.random.seed`` makes it repeat (MXNet's draws from
Python's and numpy's global ones)."""

from __future__ import annotations

import bisect

import numpy as np
import torch

from .. import random
from ..base import ParamError, dtype_name, to_dtype
from ..io import DataBatch, DataDesc, DataIter


def encode_sentences(sentences, vocab: dict | None = None, invalid_label: int = -1, invalid_key: str = "\n",
                     start_label: int = 0, unknown_token: str | None = None):
    """(each sentence as a list of codes, the vocabulary). Without ``vocab`` a new one is
    made, codes from ``start_label`` in order of first appearance (skipping
    ``invalid_label``, which ``invalid_key`` has); with one, an unknown token is refused
    unless ``unknown_token`` names the token it becomes."""
    idx = start_label
    new_vocab = vocab is None
    vocab = {invalid_key: invalid_label} if new_vocab else vocab
    encoded = []
    for sentence in sentences:
        codes = []
        for word in sentence:
            if word not in vocab:
                if not (new_vocab or unknown_token):
                    raise ParamError(f"encode_sentences: unknown token {word!r} (give unknown_token to map such "
                                     "tokens to one code)")
                if idx == invalid_label:
                    idx += 1
                if unknown_token:
                    word = unknown_token
                vocab[word] = idx
                idx += 1
            codes.append(vocab[word])
        encoded.append(codes)
    return encoded, vocab


class BucketSentenceIter(DataIter):
    """Batches of ``batch_size`` encoded sentences of one bucket: each sentence padded with
    ``invalid_label`` to the smallest bucket length that holds it (sentences longer than the
    largest bucket are discarded, and counted in ``discarded``). ``buckets`` default: every
    length that at least ``batch_size`` sentences have. ``layout`` "NT" gives (batch, length)
    arrays, "TN" (length, batch). Each batch's ``bucket_key`` is its length."""

    def __init__(self, sentences, batch_size: int, buckets=None, invalid_label: int = -1, data_name: str = "data",
                 label_name: str = "softmax_label", dtype="float32", layout: str = "NT"):
        if layout not in ("NT", "TN"):
            raise ParamError(f"BucketSentenceIter: layout={layout!r} must be 'NT' (batch major) or 'TN' (time major)")
        if not buckets:
            counts = np.bincount([len(s) for s in sentences])
            buckets = [length for length, count in enumerate(counts) if count >= batch_size]
        buckets = sorted(buckets)
        if not buckets:
            raise ParamError(f"BucketSentenceIter: no bucket: no sentence length is shared by batch_size={batch_size} "
                             "sentences; give buckets")
        self.dtype = to_dtype(dtype)
        numpy_dtype = np.dtype(dtype_name(self.dtype).replace("bfloat16", "float32"))
        rows: list[list[np.ndarray]] = [[] for _ in buckets]
        self.discarded = 0
        for sentence in sentences:
            bucket = bisect.bisect_left(buckets, len(sentence))
            if bucket == len(buckets):
                self.discarded += 1
                continue
            row = np.full((buckets[bucket],), invalid_label, dtype=numpy_dtype)
            row[:len(sentence)] = sentence
            rows[bucket].append(row)
        kept = [k for k, r in enumerate(rows) if r]
        self.buckets = [buckets[k] for k in kept]
        self.data = [np.asarray(rows[k]) for k in kept]
        self.batch_size = batch_size
        self.data_name, self.label_name = data_name, label_name
        self.invalid_label = invalid_label
        self.layout = layout
        self.major_axis = layout.find("N")
        self.default_bucket_key = max(self.buckets)
        self.idx = [(i, j) for i, bucket in enumerate(self.data) for j in range(0, len(bucket) - batch_size + 1,
                                                                                 batch_size)]
        self.reset()

    def _desc(self, name: str, length: int) -> DataDesc:
        shape = (self.batch_size, length) if self.major_axis == 0 else (length, self.batch_size)
        return DataDesc(name, shape, self.dtype)

    @property
    def provide_data(self):
        return [self._desc(self.data_name, self.default_bucket_key)]

    @property
    def provide_label(self):
        return [self._desc(self.label_name, self.default_bucket_key)]

    def reset(self) -> None:
        """A new order of the batches and of the sentences within each bucket."""
        rng = random.generator()
        self.curr_idx = 0
        rng.shuffle(self.idx)
        for bucket in self.data:
            rng.shuffle(bucket)
        self.nddata, self.ndlabel = [], []
        for bucket in self.data:
            label = np.empty_like(bucket)
            label[:, :-1] = bucket[:, 1:]
            label[:, -1] = self.invalid_label
            self.nddata.append(torch.tensor(bucket, dtype=self.dtype))
            self.ndlabel.append(torch.tensor(label, dtype=self.dtype))

    def next(self) -> DataBatch | None:
        if self.curr_idx == len(self.idx):
            return None
        i, j = self.idx[self.curr_idx]
        self.curr_idx += 1
        data = self.nddata[i][j:j + self.batch_size]
        label = self.ndlabel[i][j:j + self.batch_size]
        if self.major_axis == 1:
            data, label = data.T.contiguous(), label.T.contiguous()
        length = self.buckets[i]
        return DataBatch([data], [label], pad=0, bucket_key=length,
                         provide_data=[self._desc(self.data_name, length)],
                         provide_label=[self._desc(self.label_name, length)])
