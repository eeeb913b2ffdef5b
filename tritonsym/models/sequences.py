"""Data for the transformer job, none of it downloaded, and sampling from a trained network.

- Tasks on digit sequences (``TASKS``): the network reads ``x1 .. xn SEP`` and must continue
  with the answer ``y1 .. yn``: ``copy`` (y = x), ``reverse`` and ``sort``. Lengths vary, one
  length per batch: ``TaskIter`` yields batches a ``BucketingModule`` routes by length.
  Only the answer's positions are scored (the prompt's labels are ``IGNORE``).
- Character-level text (``CharText``, ``TextIter``): any text file as windows of ``context``
  characters at random starts, each position predicting the next character.
- ``Sampler``: a trained network bound once for inference, continuing a prompt greedily or
  by sampling at a temperature, one token a step with its keys and values cached.
"""

from __future__ import annotations

import numpy as np
import torch

from ..base import ExecutionError, ParamError
from ..io.ndarray_iter import DataBatch, DataDesc, DataIter, check_parts
from ..metric.base import EvalMetric
from .transformer import IGNORE, Config, cache_length, decoder, decoder_step

TASKS = ("sort", "reverse", "copy")
DIGITS = 10
SEP = DIGITS  # the token between a question and its answer
TASK_VOCAB = DIGITS + 1


def answer(task: str, x: np.ndarray) -> np.ndarray:
    """The answers to question rows ``x`` (count, n) of digits."""
    if task == "copy":
        return x.copy()
    if task == "reverse":
        return x[:, ::-1].copy()
    if task == "sort":
        return np.sort(x, axis=1)
    raise ParamError(f"sequence task {task!r} is not one of {', '.join(TASKS)}")


def digits_text(tokens) -> str:
    """A digits task's tokens as text: the digits, the separator as ``|``."""
    return "".join("|" if int(k) == SEP else str(int(k)) for k in tokens)


def task_examples(task: str, count: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` examples of questions of ``n`` digits: inputs (count, 2n) — question, SEP,
    answer less its last token — and labels (count, 2n), the next token at each answer
    position and ``IGNORE`` on the question."""
    x = rng.integers(0, DIGITS, (count, n))
    tokens = np.concatenate([x, np.full((count, 1), SEP), answer(task, x)], axis=1)
    labels = tokens[:, 1:].astype(np.float32)
    labels[:, :n] = IGNORE  # predicting the question's own digits is not the task
    return tokens[:, :-1].astype(np.float32), labels


class TaskIter(DataIter):
    """Batches of task examples, one question length per batch, its ``bucket_key`` the input
    length 2n. ``count`` examples per length; shuffled (batches and their order) per epoch
    from ``seed`` when ``shuffle``. The last batch of a length may be smaller. Tokens and
    labels are float32, as MXNet's iterators give indices (exact up to 2**24).

    ``num_parts`` / ``part_index`` (data-parallel workers): every worker draws the same
    batches of ``batch_size * num_parts`` examples in the same order and reads its
    ``batch_size`` rows of each, so all take the same bucket at each step and together read
    what one process with the whole batch reads. A length's last batch keeps a multiple of
    ``num_parts`` rows (the few left over are read in other epochs, shuffled anew)."""

    def __init__(self, task: str, lengths, count: int, batch_size: int, seed: int = 0, shuffle: bool = True,
                 num_parts: int = 1, part_index: int = 0):
        if task not in TASKS:
            raise ParamError(f"TaskIter: task {task!r} is not one of {', '.join(TASKS)}")
        lengths = sorted(set(int(n) for n in lengths))
        if not lengths or lengths[0] < 1:
            raise ParamError(f"TaskIter: question lengths must be at least 1, got {lengths}")
        if count < 1 or batch_size < 1:
            raise ParamError(f"TaskIter: count {count} and batch_size {batch_size} must be at least 1")
        check_parts("TaskIter", num_parts, part_index)
        if count < num_parts:
            raise ParamError(f"TaskIter: count {count} questions of each length cannot give each of {num_parts} "
                             "parts one")
        rng = np.random.default_rng(seed)
        self.examples = {n: task_examples(task, count, n, rng) for n in lengths}
        self.task, self.lengths, self.batch_size = task, lengths, batch_size
        self.num_data = count // num_parts * len(lengths)  # this part's share
        self._parts, self._part = num_parts, part_index
        self._seed, self._shuffle, self._epoch = seed, shuffle, 0
        self.reset()

    @property
    def max_len(self) -> int:
        return 2 * self.lengths[-1]

    @property
    def provide_data(self) -> list[DataDesc]:  # the default bucket's (the longest), as MXNet's iterators
        return [DataDesc("data", (self.batch_size, self.max_len))]

    @property
    def provide_label(self) -> list[DataDesc]:
        return [DataDesc("softmax_label", (self.batch_size, self.max_len))]

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self.reset()

    def reset(self) -> None:
        rng = np.random.default_rng((self._seed, self._epoch))
        self._batches = []
        whole = self.batch_size * self._parts  # the batch of all the parts together
        for n, (x, _) in self.examples.items():
            order = rng.permutation(len(x)) if self._shuffle else np.arange(len(x))
            order = order[:len(order) - len(order) % self._parts]  # every part the same number of rows
            self._batches += [(n, order[i:i + whole]) for i in range(0, len(order), whole)]
        if self._shuffle:
            self._batches = [self._batches[k] for k in rng.permutation(len(self._batches))]
        self._next = 0
        self._epoch += 1

    def next(self) -> DataBatch | None:
        if self._next == len(self._batches):
            return None
        n, rows = self._batches[self._next]
        self._next += 1
        share = len(rows) // self._parts
        rows = rows[share * self._part:share * (self._part + 1)]
        x, y = self.examples[n]
        shape = (len(rows), 2 * n)
        return DataBatch([torch.from_numpy(x[rows])], [torch.from_numpy(y[rows])], bucket_key=2 * n,
                         provide_data=[DataDesc("data", shape)], provide_label=[DataDesc("softmax_label", shape)])


class ScoredAccuracy(EvalMetric):
    """The share of scored positions (label not ``IGNORE``) whose most probable next token is
    the label; predictions (batch, positions, vocab)."""

    def __init__(self, name: str = "accuracy", **kwargs):
        super().__init__(name, **kwargs)

    def _update_one(self, label, pred):
        scored = label != IGNORE
        self.sum_metric += float((pred.argmax(-1) == label)[scored].sum())
        self.num_inst += int(scored.sum())


class CharText:
    """A text's characters as tokens: the sorted distinct characters are the vocabulary."""

    def __init__(self, text: str):
        if len(text) < 2:
            raise ParamError(f"CharText: a text of {len(text)} characters has nothing to predict")
        self.chars = sorted(set(text))
        self.index = {c: k for k, c in enumerate(self.chars)}
        self.ids = self.encode(text)

    @property
    def vocab(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ParamError(f"CharText: characters {''.join(unknown)!r} are not in the text's vocabulary")
        return np.array([self.index[c] for c in text], dtype=np.int64)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(k)] for k in ids)


class TextIter(DataIter):
    """Windows of ``context`` characters from token ids, ``count`` per epoch at random starts
    drawn afresh each epoch from ``seed`` (fixed starts would tie each position to the same
    part of a repetitive text, and the model would learn positions instead of the text);
    labels are the next characters (float32). ``shuffle=False``: evenly spaced windows, the
    same every epoch (for validation).

    ``num_parts`` / ``part_index`` (data-parallel workers): ``count`` windows for each part;
    every worker draws the same ``count * num_parts`` starts and reads its ``batch_size`` of
    each batch of ``batch_size * num_parts``: together what one process with the whole
    batch reads."""

    def __init__(self, ids: np.ndarray, context: int, count: int, batch_size: int, seed: int = 0,
                 shuffle: bool = True, num_parts: int = 1, part_index: int = 0):
        if len(ids) <= context:
            raise ParamError(f"TextIter: {len(ids)} characters are not longer than the context {context}")
        if count < 1 or batch_size < 1:
            raise ParamError(f"TextIter: count {count} and batch_size {batch_size} must be at least 1")
        check_parts("TextIter", num_parts, part_index)
        self.ids, self.context, self.num_data, self.batch_size = np.asarray(ids), context, count, batch_size
        self._parts, self._part = num_parts, part_index
        self._seed, self._shuffle, self._epoch = seed, shuffle, 0
        self.reset()

    @property
    def provide_data(self) -> list[DataDesc]:
        return [DataDesc("data", (self.batch_size, self.context))]

    @property
    def provide_label(self) -> list[DataDesc]:
        return [DataDesc("softmax_label", (self.batch_size, self.context))]

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self.reset()

    def reset(self) -> None:
        last = len(self.ids) - self.context - 1  # the last start whose label window fits
        total = self.num_data * self._parts
        if self._shuffle:
            starts = np.random.default_rng((self._seed, self._epoch)).integers(0, last + 1, total)
        else:
            starts = np.linspace(0, last, total).round().astype(np.int64)
        # This part's rows of each batch of all the parts (the last batch split evenly too).
        whole = self.batch_size * self._parts
        self._starts = np.concatenate([np.array_split(starts[i:i + whole], self._parts)[self._part]
                                       for i in range(0, total, whole)])
        self._next = 0
        self._epoch += 1

    def next(self) -> DataBatch | None:
        if self._next >= self.num_data:
            return None
        starts = self._starts[self._next:self._next + self.batch_size]
        self._next += self.batch_size
        take = starts[:, None] + np.arange(self.context)
        shape = (len(starts), self.context)
        return DataBatch([torch.from_numpy(self.ids[take].astype(np.float32))],
                         [torch.from_numpy(self.ids[take + 1].astype(np.float32))],
                         provide_data=[DataDesc("data", shape)], provide_label=[DataDesc("softmax_label", shape)])


class Sampler:
    """A trained decoder bound once for inference over ``rows`` sequences, its parameters
    copied from ``arg_params`` (each bind replayed as a CUDA graph with ``cuda_graph``, on a
    GPU), writing with key and value caches: a prompt is read at once
    (``decoder_step(prefill=True)``), then each new token costs its own work, not its
    prefix's (``decoder_step``). With learned positions, whose table ends at ``max_len``, a
    text longer than that slides a window instead: the last ``max_len`` tokens are read
    again for each new one (``probabilities``: the whole ``decoder``, bound when first
    needed). With rotary positions the caches are rings that keep the last
    ``cache_length(cfg)`` tokens (a sliding window's keys), so writing goes on at the cost
    of one token a step, each cached key as its token was read."""

    def __init__(self, cfg: Config, arg_params: dict, context, rows: int = 1, cuda_graph: bool = False):
        self.cfg, self.rows, self._context, self._cuda_graph = cfg, rows, context, cuda_graph
        self._params = dict(arg_params)
        self.cache_len = cache_length(cfg)
        self.step_executor = self._bound(decoder_step(cfg, rows), data=(rows, 1), position=(rows,))
        self.prefill_executor = self._bound(decoder_step(cfg, rows, prefill=True), data=(rows, self.cache_len),
                                            position=(rows,))  # the same parameters and caches
        self._full_executor = None
        self._token = torch.zeros((rows, 1), dtype=torch.float32)
        self._prompt = torch.zeros((rows, self.cache_len), dtype=torch.float32)
        self._position = torch.zeros((rows,), dtype=torch.float32)
        self.read_count = 0  # tokens of the current texts read (their keys and values cached)

    def _bound(self, net, **shapes):
        if getattr(self, "step_executor", None) is not None:  # shares its parameters and caches
            return net.simple_bind(self._context, grad_req="null", shared_exec=self.step_executor,
                                   shared_arg_names=list(self._params), cuda_graph=self._cuda_graph, **shapes)
        executor = net.simple_bind(self._context, grad_req="null", cuda_graph=self._cuda_graph, **shapes)
        for name, value in self._params.items():
            if name in executor.arg_dict:
                executor.arg_dict[name][...] = value
        return executor

    def probabilities(self, tokens) -> np.ndarray:
        """(rows, vocab): each row's next-token distribution after its tokens, the last
        ``max_len`` of them, read at once by the whole network (no cache). ``tokens``: an
        array (rows, t), or one sequence a row, of lengths of their own."""
        texts = self._texts(tokens, "probabilities")
        if self._full_executor is None:
            shape = (self.rows, self.cfg.max_len)
            self._full_executor = self._bound(decoder(self.cfg.max_len, self.cfg), data=shape, softmax_label=shape)
            self._full_data = torch.zeros(shape, dtype=torch.float32)
        self._full_data.zero_()  # padding after a shorter text: causal attention never lets its end see it
        ends = []
        for row, text in enumerate(texts):
            text = text[-self.cfg.max_len:]
            self._full_data[row, :len(text)] = torch.from_numpy(text.astype(np.float32))
            ends.append(len(text) - 1)
        self._full_executor.forward(is_train=False, data=self._full_data)
        out = self._full_executor.outputs[0][torch.arange(self.rows), torch.tensor(ends)]
        return out.to(torch.float64).cpu().numpy()

    def _texts(self, tokens, what: str) -> list[np.ndarray]:
        """``tokens`` as ``rows`` sequences of whole numbers in ``[0, vocab)``, each at least
        one long; refused, naming the row and the token, otherwise (an index outside the table
        would give that row NaN, and its argmax token 0, without an error)."""
        wanted = (f"Sampler.{what}: tokens must be {self.rows} rows of at least one token each (an array "
                  f"({self.rows}, t), or one sequence a row)")
        if isinstance(tokens, (np.ndarray, torch.Tensor)) and tokens.ndim != 2:
            raise ParamError(f"{wanted}, got an array of shape {tuple(tokens.shape)}")
        try:
            texts = [np.asarray(row, dtype=np.float64) for row in tokens]
        except (TypeError, ValueError) as e:
            raise ParamError(f"{wanted}: {e}") from None
        if len(texts) != self.rows or any(t.ndim != 1 or t.size < 1 for t in texts):
            raise ParamError(f"{wanted}, got {len(texts)} rows of shapes {[t.shape for t in texts]}")
        for row, text in enumerate(texts):
            bad = ~((text >= 0) & (text < self.cfg.vocab) & (text == np.floor(text)))  # NaN too
            if bad.any():
                at = int(bad.argmax())
                raise ParamError(f"Sampler.{what}: row {row} holds token {float(text[at]):g} at {at}, not a whole "
                                 f"number in [0, vocab={self.cfg.vocab})")
        return [t.astype(np.int64) for t in texts]

    def reset(self) -> None:
        """Start new texts: ``read`` then reads from position 0."""
        self.read_count = 0

    def read(self, tokens: np.ndarray) -> np.ndarray:
        """Read ``tokens`` (rows, t) after those read since ``reset``, caching their keys and
        values: (rows, vocab), each row's next-token distribution after the last of them.
        A text's first tokens are read at once (up to ``cache_len``; ``decoder_step(prefill=
        True)``), the others one step each. With learned positions a text ends at ``max_len``
        tokens (``continue_`` then slides a window with ``probabilities``)."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[0] != self.rows or tokens.shape[1] < 1:
            raise ParamError(f"Sampler.read: tokens must be ({self.rows}, t >= 1), got shape {tokens.shape}")
        tokens = np.stack(self._texts(tokens, "read"))
        end = self.read_count + tokens.shape[1]
        if self.cfg.positions == "learned" and end > self.cfg.max_len:
            raise ParamError(f"Sampler.read: {end} tokens are past max_len={self.cfg.max_len}, the learned position "
                             "table's end; use probabilities(), which reads the last max_len")
        if self.read_count == 0:
            first = min(tokens.shape[1], self.cache_len)
            p = self._prefill(list(tokens[:, :first]))
            self.read_count, tokens = first, tokens[:, first:]
        for column in tokens.T:
            p = self._step(column, np.full(self.rows, self.read_count))
            self.read_count += 1
        return p

    def _prefill(self, texts: list[np.ndarray]) -> np.ndarray:
        """Each text's first tokens (up to ``cache_len``, lengths of their own) read at once:
        (rows, vocab), each row's distribution after the last of its tokens."""
        self._prompt.zero_()  # padding: its keys are written over before any step reads them
        ends = []
        for row, text in enumerate(texts):
            first = text[:self.cache_len]
            self._prompt[row, :len(first)] = torch.from_numpy(first.astype(np.float32))
            ends.append(len(first) - 1)
        self._position.zero_()
        self.prefill_executor.forward(is_train=False, data=self._prompt, position=self._position)
        out = self.prefill_executor.outputs[0][torch.arange(self.rows), torch.tensor(ends)]
        return out.to(torch.float64).cpu().numpy()

    def _step(self, tokens: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Each row's token read at that row's position (its key and value cached)."""
        self._token[:, 0] = torch.from_numpy(tokens.astype(np.float32))
        self._position.copy_(torch.from_numpy(positions.astype(np.float32)))
        self.step_executor.forward(is_train=False, data=self._token, position=self._position)
        return self.step_executor.outputs[0][:, 0].to(torch.float64).cpu().numpy()

    def continue_(self, prompt, steps: int, temperature: float = 0.0, rng: np.random.Generator | None = None,
                  top_k: int | None = None, top_p: float | None = None) -> np.ndarray:
        """(rows, steps): ``steps`` more tokens after each row's prompt, the most probable one
        (``temperature`` 0) or drawn from the distribution sharpened (< 1) or flattened (> 1),
        cut to its ``top_k`` most probable tokens and to the fewest whose probabilities add up
        to ``top_p`` (nucleus sampling) first (``next_tokens``).

        ``prompt``: an array (rows, t), or one sequence a row, of lengths of their own. The
        prompts are read at once (a shorter one padded), then every row goes on one token a
        step at its own position: a row still reading its prompt reads its next token, a row
        done reads its last again (its cache unchanged). Greedily, a row writes what it would
        alone. Each call starts new texts (``reset``)."""
        texts = [list(text) for text in self._texts(prompt, "continue_")]
        check_sampling("Sampler", temperature, top_k, top_p)
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ParamError(f"Sampler.continue_: steps {steps!r} must be a whole number of tokens, at least 0")
        rng = rng or np.random.default_rng(0)
        wanted = np.array([len(text) + steps for text in texts])
        read = np.zeros(self.rows, dtype=np.int64)  # each text's tokens whose keys and values are cached
        self.reset()
        while True:
            lengths = np.array([len(text) for text in texts])
            if (lengths == wanted).all():
                break
            if self.cfg.positions == "learned" and lengths.max() > self.cfg.max_len:
                p, read = self.probabilities(texts), lengths  # past the position table: the window slides
            elif not read.any():
                p, read = self._prefill([np.array(text) for text in texts]), np.minimum(lengths, self.cache_len)
            else:
                at = np.minimum(read, lengths - 1)
                p, read = self._step(np.array([text[i] for text, i in zip(texts, at)]), at), at + 1
            drawing = (read == lengths) & (lengths < wanted)  # rows past their prompt, not yet done
            if drawing.any():
                for row, token in zip(np.flatnonzero(drawing), next_tokens(p[drawing], temperature, rng, top_k, top_p)):
                    texts[row].append(int(token))
        self.reset()
        return np.array([text[len(text) - steps:] for text in texts], dtype=np.int64).reshape(self.rows, steps)


def check_sampling(what: str, temperature: float, top_k: int | None, top_p: float | None,
                   names: tuple[str, str, str] = ("temperature", "top_k", "top_p")) -> None:
    """Refuse settings ``next_tokens`` cannot draw with, naming them (as ``names`` says)."""
    if not temperature >= 0:  # NaN too
        raise ParamError(f"{what}: {names[0]} {temperature} must be 0 (greedy) or positive")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ParamError(f"{what}: {names[1]} {top_k!r} must be a whole number of tokens, at least 1")
    if top_p is not None and not 0 < top_p <= 1:  # NaN too
        raise ParamError(f"{what}: {names[2]} {top_p} must be in (0, 1]: the share of probability kept")


def next_tokens(p: np.ndarray, temperature: float, rng: np.random.Generator, top_k: int | None = None,
                top_p: float | None = None) -> np.ndarray:
    """One token per row of ``p`` (rows, vocab), each row a distribution: its most probable
    (``temperature`` 0; the first of equals), else drawn from ``p ** (1 / temperature)``
    renormalised, kept to its ``top_k`` most probable tokens and then to the fewest most
    probable whose share reaches ``top_p`` (at least one), as Hugging Face's samplers cut.
    A row holding NaN or inf is refused: its argmax would be token 0, written as if predicted."""
    finite = np.isfinite(p).all(-1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        count = int((~np.isfinite(p[row])).sum())
        raise ExecutionError(f"next_tokens: row {row}'s next-token distribution holds {count} NaN/inf of "
                             f"{p.shape[-1]}: the network's outputs are not finite (its parameters, or what it read)")
    if temperature == 0:
        return p.argmax(-1)
    logits = np.log(np.maximum(p, 1e-30)) / temperature
    q = np.exp(logits - logits.max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    order = np.argsort(-q, axis=-1, kind="stable")  # most probable first; equals in token order
    ranked = np.take_along_axis(q, order, -1)
    keep = np.ones_like(ranked, dtype=bool)
    if top_k is not None:
        keep[:, top_k:] = False
    if top_p is not None:
        before = np.cumsum(ranked, -1) - ranked  # the share of the more probable tokens
        keep &= before < top_p
    ranked = np.where(keep, ranked, 0.0)
    ranked /= ranked.sum(-1, keepdims=True)
    return np.array([order[r, rng.choice(ranked.shape[1], p=ranked[r])] for r in range(len(ranked))])


def exact_answers(sampler: Sampler, task: str, n: int, count: int, rng: np.random.Generator) -> float:
    """The share of ``count`` fresh questions of ``n`` digits whose whole answer the network
    writes right, greedily, one token after another (no teacher forcing)."""
    right = 0
    for start in range(0, count, sampler.rows):
        rows = sampler.rows
        x = rng.integers(0, DIGITS, (rows, n))
        prompt = np.concatenate([x, np.full((rows, 1), SEP)], axis=1)
        written = sampler.continue_(prompt, n)
        right += int((written == answer(task, x)).all(axis=1)[:min(rows, count - start)].sum())
    return right / count
