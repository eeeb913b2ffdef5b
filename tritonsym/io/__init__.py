"""Data for training: in-memory batch iterators, the bundled digits, MNIST from disk."""

from .datasets import load_digits, split
from .mnist import load_mnist, read_idx
from .ndarray_iter import LAST_BATCH_HANDLES, DataBatch, DataDesc, DataIter, NDArrayIter

__all__ = ["LAST_BATCH_HANDLES", "DataBatch", "DataDesc", "DataIter", "NDArrayIter", "load_digits", "load_mnist",
           "read_idx", "split"]
