"""A decoder-only transformer with the Symbol API: build it, look at it, train it, let it write.

The network is ``tritonsym/models/transformer.py``; read it first: each function there is one
piece (token and position embeddings, heads, causal attention, the MLP, pre-norm residual
blocks), a few lines of Symbol API each. This script builds it for a digit task (sort,
reverse or copy n digits after a separator), trains one network per question length over
shared weights (a BucketingModule), and then lets it answer fresh questions by itself.

    python examples/transformer.py [--task sort] [--epochs 4]

On 2 CPU cores (Triton's interpreter) the default run takes about 3-4 minutes; the accuracy of
the next answer digit climbs from 0.1 (chance) past 0.8.
"""

import argparse
import logging

import numpy as np

import tritonsym as ts
from tritonsym.models import sequences, transformer

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--task", choices=sequences.TASKS, default="sort")
parser.add_argument("--epochs", type=int, default=4)
parser.add_argument("--examples", type=int, default=400, help="training questions per length")
args = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="%(message)s")
ts.random.seed(0)

# 1. The network: questions of 4-6 digits, so sequences of up to 12 tokens (question,
#    separator, answer less its last digit). One network per length, one set of weights.
#    (Llama's choices are options: Config(kv_heads=2) shares each key and value head between
#    two query heads, norm="rms" normalises with RMSNorm, mlp="swiglu" gates the MLP with SiLU,
#    positions="rotary" rotates queries and keys by their positions instead of a learned table;
#    tie_embeddings=True lets the vocabulary head read the token table, GPT-2's tying; window=N
#    lets each position attend to itself and the N - 1 before it only, Mistral's sliding window.)
lengths = (4, 5, 6)
cfg = transformer.Config(vocab=sequences.TASK_VOCAB, max_len=2 * max(lengths), width=32, heads=4, layers=2)
net = transformer.decoder(cfg.max_len, cfg)
ts.viz.print_summary(net, shape={"data": (32, cfg.max_len)}, line_length=100)

# 2. The data: batches of one length each; a batch's bucket_key (its length) picks the network.
train = sequences.TaskIter(args.task, lengths, args.examples, batch_size=32)
val = sequences.TaskIter(args.task, lengths, args.examples // 5, batch_size=32, seed=1, shuffle=False)
question, label = train.examples[4][0][0], train.examples[4][1][0]
print(f"one example of the {args.task} task: inputs {question.astype(int)}, labels {label.astype(int)} "
      f"(separator {sequences.SEP}, {transformer.IGNORE}: not scored)")

# 3. Training: Adam, the loss averaged over the answer positions; per epoch the next-digit
#    accuracy (teacher-forced) and the perplexity on held-out questions.
mod = ts.mod.BucketingModule(transformer.sym_gen(cfg), default_bucket_key=train.max_len)
metric = ts.metric.CompositeEvalMetric([sequences.ScoredAccuracy(), ts.metric.Perplexity(ignore_label=-1)])
mod.fit(train, eval_data=val, eval_metric=metric, optimizer="adam", optimizer_params={"learning_rate": 5e-3},
        initializer=ts.init.Xavier(), num_epoch=args.epochs)

# 4. What attention keeps for backward: one log-sum-exp per query row, nothing of seq x seq.
kept = [v for v in mod.executor.memory.values if v.kind == "saved" and "attention" in v.name]
print("kept by attention for backward:", ", ".join(f"{v.name} {v.shape} {v.dtype}" for v in kept))

# 5. Writing: fresh questions, answered one digit after another from the network's own output.
sampler = sequences.Sampler(cfg, mod.get_params()[0], ts.cpu() if mod.executor.outputs[0].device.type == "cpu"
                            else ts.gpu(), rows=8)
rng = np.random.default_rng(7)
x = rng.integers(0, 10, (8, 6))
written = sampler.continue_(np.concatenate([x, np.full((8, 1), sequences.SEP)], axis=1), 6)
for row in range(8):
    want = sequences.answer(args.task, x[row:row + 1])[0]
    print("".join(map(str, x[row])), "->", "".join(map(str, written[row])), "right" if (written[row] == want).all()
          else f"(expected {''.join(map(str, want))})")
print(f"whole answers right: {sequences.exact_answers(sampler, args.task, 6, 64, rng):.3f} of 64 fresh questions")
