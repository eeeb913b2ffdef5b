"""Recurrent networks with the Symbol API, as MXNet's ``mx.rnn``: cells that build one step
(RNNCell, LSTMCell, GRUCell), cells made of cells (SequentialRNNCell, BidirectionalCell,
DropoutCell, ZoneoutCell, ResidualCell), ``unroll`` over a sequence, and the text
iterator of bucketing (``encode_sentences``, ``BucketSentenceIter``); and FusedRNNCell, a
whole stack as one fused RNN operator, which ``unfuse`` turns into the cells above."""

from .cells import BaseRNNCell, GRUCell, LSTMCell, RNNCell, RNNParams
from .combinators import BidirectionalCell, DropoutCell, ModifierCell, ResidualCell, SequentialRNNCell, ZoneoutCell
from .fused import FusedRNNCell
from .io import BucketSentenceIter, encode_sentences

__all__ = ["BaseRNNCell", "BidirectionalCell", "BucketSentenceIter", "DropoutCell", "FusedRNNCell", "GRUCell",
           "LSTMCell", "ModifierCell", "RNNCell", "RNNParams", "ResidualCell", "SequentialRNNCell", "ZoneoutCell",
           "encode_sentences"]
