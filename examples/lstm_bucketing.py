"""A word-level LSTM language model on any text file, as MXNet's example/rnn/bucketing:
``ts.rnn`` cells unrolled per bucket length, BucketSentenceIter's padded sentences, one
BucketingModule sharing the weights across buckets, perplexity per epoch (padding left out).

    python examples/lstm_bucketing.py --text README.md [--epochs N] [--layers N] [--fused]

``--fused`` runs the stack as one fused RNN operator (``ts.rnn.FusedRNNCell``, MXNet's
cuDNN path) instead of a graph of cells: the same network, fewer launches.

Each line of the file is a sentence; words are split on spaces. Triton's CPU interpreter runs
it slowly (a launch per operator per step): the defaults are small.
"""

import argparse
import logging
import pathlib

import tritonsym as ts

S = ts.sym
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--text", required=True, help="a text file: one sentence a line")
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--layers", type=int, default=1)
parser.add_argument("--hidden", type=int, default=32, help="LSTM units and embedding width")
parser.add_argument("--batch-size", type=int, default=16)
parser.add_argument("--buckets", default="4,8,12,16", help="sentence lengths, comma separated")
parser.add_argument("--sentences", type=int, default=256, help="use the first N lines (0: all)")
parser.add_argument("--fused", action="store_true", help="one fused RNN operator for the whole stack")
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(message)s")

lines = [line.split() for line in pathlib.Path(args.text).read_text(encoding="utf-8").splitlines() if line.split()]
lines = lines[:args.sentences] if args.sentences else lines
codes, vocab = ts.rnn.encode_sentences(lines, invalid_label=0, start_label=1)  # 0 pads
buckets = [int(b) for b in args.buckets.split(",")]
ts.random.seed(0)
train = ts.rnn.BucketSentenceIter(codes, args.batch_size, buckets=buckets, invalid_label=0)
logging.info("%d sentences (%d longer than %d left out), %d words, buckets %s", len(lines), train.discarded,
             max(buckets), len(vocab), train.buckets)

if args.fused:  # unfuse() would give the cells below, named so that the weights move between the two
    stack = ts.rnn.FusedRNNCell(args.hidden, num_layers=args.layers, mode="lstm", prefix="lstm_")
else:
    stack = ts.rnn.SequentialRNNCell()
    for layer in range(args.layers):
        stack.add(ts.rnn.LSTMCell(args.hidden, prefix=f"lstm_l{layer}_"))


def sym_gen(length):
    """The network for one bucket: every bucket's graph names the same weights."""
    embed = S.Embedding(S.Variable("data"), input_dim=len(vocab) + 1, output_dim=args.hidden, name="embed")
    stack.reset()
    outputs, _ = stack.unroll(length, embed, merge_outputs=True)
    pred = S.FullyConnected(S.Reshape(outputs, shape=(-1, args.hidden)), num_hidden=len(vocab) + 1, name="pred")
    label = S.Reshape(S.Variable("softmax_label"), shape=(-1,))
    return S.SoftmaxOutput(pred, label, name="softmax"), ["data"], ["softmax_label"]


mod = ts.mod.BucketingModule(sym_gen, default_bucket_key=train.default_bucket_key)
mod.fit(train, num_epoch=args.epochs, optimizer="adam", optimizer_params={"learning_rate": 0.01},
        initializer=ts.init.Xavier(), eval_metric=ts.metric.Perplexity(ignore_label=0),
        batch_end_callback=ts.callback.Speedometer(args.batch_size, 10))
