"""``tritonsym train --model transformer``: a decoder-only transformer (``tritonsym.models``)
trained with Module.fit on a sequence task that needs no download, or, with ``--text FILE``,
as a character-level language model of any text, which then writes.

A task run reports per epoch the loss's perplexity and the accuracy of the next token at the
answer's positions (teacher-forced), then the share of fresh questions whose whole answer
the network writes right by itself (greedy, token after token). A text run reports the
same per epoch over every position, then continues a prompt greedily and at a temperature.
``--save PREFIX`` keeps the model after each epoch (``PREFIX-transformer.safetensors``, what
``tritonsym sample`` writes with) and the weights and optimizer states, which ``--resume``
continues from bit for bit.
"""

from __future__ import annotations

import time

import numpy as np

from ..base import TritonSymError
from .options import loss_scale

TASK_DEFAULTS = dict(epochs=4, batch_size=32, lr=5e-3, width=32, heads=4, layers=2)
TEXT_DEFAULTS = dict(epochs=3, batch_size=32, lr=3e-3, width=64, heads=4, layers=2)
OPTIONS: dict[str, tuple[str, object]] = {}  # dest -> (flag, default) of the group, filled by add_arguments


def add_arguments(p) -> None:
    """The transformer's options, in a group of their own (``given_options`` reads them back)."""
    g = p.add_argument_group("transformer (--model transformer)")
    g.add_argument("--task", choices=("sort", "reverse", "copy"), default="sort",
                   help="read n digits and a separator, then write them sorted, reversed or copied")
    g.add_argument("--lengths", default="4,5,6", help="question lengths n, comma-separated (one bucket each)")
    g.add_argument("--examples", type=int, default=400, help="training questions per length (a fifth as many "
                   "are held out)")
    g.add_argument("--text", metavar="FILE", help="train a character-level language model on this text file "
                   "instead of a task, then sample from it")
    g.add_argument("--context", type=int, default=64, help="characters per training window (--text)")
    g.add_argument("--sample-length", type=int, default=200, help="characters written after training (--text)")
    g.add_argument("--temperature", type=float, default=0.8, help="sampling temperature of the second sample "
                   "(--text; the first is greedy)")
    g.add_argument("--top-k", type=int, help="the second sample draws from the K most probable characters only "
                   "(--text)")
    g.add_argument("--top-p", type=float, help="the second sample draws from the fewest most probable characters "
                   "whose probabilities add up to P (nucleus sampling; --text)")
    g.add_argument("--prompt", help="what the samples continue (--text; default: the text's first line, cut to "
                   "half the context)")
    g.add_argument("--width", type=int, help="values per token (default: 32 for a task, 64 for --text)")
    g.add_argument("--heads", type=int, help="attention heads (default: 4)")
    g.add_argument("--kv-heads", type=int, help="key and value heads, each shared by heads / kv-heads query heads "
                   "(grouped-query attention; default: one per query head)")
    g.add_argument("--norm", choices=("layer", "rms"), default="layer", help="LayerNorm (GPT's) or RMSNorm (Llama's)")
    g.add_argument("--mlp", choices=("gelu", "swiglu"), default="gelu", help="the feed-forward: GELU (GPT's) or "
                   "SwiGLU (Llama's)")
    g.add_argument("--window", type=int, help="each position attends to itself and the N - 1 before it only "
                   "(Mistral's sliding window; default: all before it)")
    g.add_argument("--tie-embeddings", action="store_true", help="the vocabulary head reads the token table as its "
                   "weight (GPT-2's weight tying)")
    g.add_argument("--positions", choices=("learned", "rotary"), default="learned", help="a learned position table "
                   "(GPT's) or rotary position embedding of queries and keys (RoPE, Llama's)")
    g.add_argument("--layers", type=int, help="transformer blocks (default: 2)")
    g.add_argument("--dropout", type=float, default=0.0, help="dropout after the embedding and each branch")

    OPTIONS.update({a.dest: (a.option_strings[0], a.default) for a in g._group_actions})


def given_options(args) -> list[str]:
    """The transformer options ``args`` sets to something other than their defaults (the MLP
    job refuses them rather than train without what they ask for)."""
    return [flag for dest, (flag, default) in OPTIONS.items() if getattr(args, dest, default) != default]


def _given(value, default):
    return default if value is None else value


def _positive_ints(flag: str, text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise TritonSymError(f"train: {flag} {text!r}: expected positive integers like 4,5,6")
    return values


def saved_path(prefix: str) -> str:
    """The file ``--save PREFIX`` writes the transformer to."""
    return f"{prefix}-transformer.safetensors"


def run(args, log, ctx, kv) -> int:
    import tritonsym as ts

    from ..models import saved, sequences, transformer

    start = time.perf_counter()
    defaults = TEXT_DEFAULTS if args.text else TASK_DEFAULTS
    epochs, batch = _given(args.epochs, defaults["epochs"]), _given(args.batch_size, defaults["batch_size"])
    optimizer = args.optimizer or "adam"
    lr = args.lr if args.lr is not None else (0.1 if optimizer == "sgd" else defaults["lr"])
    if args.resume and not args.save:
        raise TritonSymError("train: --resume continues the run saved under --save PREFIX: give --save")
    if args.prompt is not None and not args.prompt:  # said before training, not after it
        raise TritonSymError("train: --prompt '': a continuation needs at least one character to start from")
    try:  # the sampling settings too
        sequences.check_sampling("train", args.temperature, args.top_k, args.top_p,
                                 ("--temperature", "--top-k", "--top-p"))
    except ts.base.ParamError as e:
        raise TritonSymError(str(e)) from None
    for flag, value in (("--epochs", epochs), ("--batch-size", batch), ("--examples", args.examples),
                        ("--context", args.context)):
        if value < 1:
            raise TritonSymError(f"train: {flag} {value}: must be at least 1")
    size = dict(width=_given(args.width, defaults["width"]), heads=_given(args.heads, defaults["heads"]),
                layers=_given(args.layers, defaults["layers"]), dropout=args.dropout, dtype=args.dtype,
                kv_heads=args.kv_heads, norm=args.norm, mlp=args.mlp,
                positions=args.positions, tie_embeddings=args.tie_embeddings, window=args.window)
    try:
        if args.text:
            with open(args.text, encoding="utf-8") as f:
                text = sequences.CharText(f.read())
            cfg = transformer.Config(vocab=text.vocab, max_len=args.context, **size)
        else:
            lengths = _positive_ints("--lengths", args.lengths)
            cfg = transformer.Config(vocab=sequences.TASK_VOCAB, max_len=2 * max(lengths), **size)
    except (ValueError, UnicodeDecodeError) as e:  # Config's and the text's complaints name the option
        raise TritonSymError(f"train: {e}") from None
    if args.text and args.prompt:  # a character the text lacks is said before training, not after it
        try:
            text.encode(args.prompt)
        except ts.base.ParamError as e:
            raise TritonSymError(f"train: --prompt: {e}") from None
    ts.random.seed(args.seed)
    wd = args.wd if args.wd is not None else (ts.optimizer.AdamW.DEFAULT_WD if optimizer == "adamw" else 0.0)
    params = {"learning_rate": lr, "wd": wd}
    if args.clip_global_norm is not None:
        params["clip_global_norm"] = args.clip_global_norm
    if args.dtype in ("float16", "bfloat16"):  # as the MLP job: float32 master weights, float16's loss scaled
        params["multi_precision"] = args.multi_precision
        scale = loss_scale(args.loss_scale, args.dtype)
        if scale is not None:
            params["loss_scale"] = scale
    if optimizer == "sgd":
        params["momentum"] = args.momentum
    if kv.num_workers > 1:
        # The loss gradient is a mean over each worker's scored positions (normalization="valid",
        # per worker as in MXNet): the sum over the workers is num_workers times the mean over the
        # whole batch. Scaled back, a run on N workers of B rows steps as one process on N * B.
        params["rescale_grad"] = 1.0 / (batch * kv.num_workers ** 2)
    # dist_sync all-reduces gradient buckets between backward steps: a step is not one graph
    cuda_graph = args.cuda_graph if args.cuda_graph is not None else (ctx.device_type == "gpu" and kv.num_workers == 1)
    where = f"{args.dtype} on {ctx}{' (Triton interpreter)' if ctx.device_type == 'cpu' else ''}"
    grouped = f" on {cfg.key_heads} key and value heads" if cfg.key_heads != cfg.heads else ""
    grouped += (", RMSNorm" if cfg.norm == "rms" else "") + (", SwiGLU" if cfg.mlp == "swiglu" else "")
    grouped += ", rotary positions" if cfg.positions == "rotary" else ""
    grouped += ", tied embeddings" if cfg.tie_embeddings else ""
    grouped += f", a sliding window of {cfg.window}" if cfg.window else ""
    log.info("network: decoder-only transformer, %d blocks, width %d, %d heads%s, vocabulary %d, up to %d tokens; %s",
             cfg.layers, cfg.width, cfg.heads, grouped, cfg.vocab, cfg.max_len, where)
    log.info("optimizer: %s %s, batch %d, %d epochs", optimizer, ", ".join(f"{k}={v}" for k, v in params.items()),
             batch, epochs)
    if kv.num_workers > 1:
        log.info("kvstore: dist_sync, %d workers, global batch %d (each worker reads its %d rows of every batch)",
                 kv.num_workers, batch * kv.num_workers, batch)
    metric = ts.metric.CompositeEvalMetric([sequences.ScoredAccuracy(), ts.metric.Perplexity(ignore_label=-1)])
    fit = dict(eval_metric=metric, optimizer=optimizer, optimizer_params=params, initializer=ts.init.Xavier(),
               num_epoch=epochs, kvstore=kv)
    tokens = saved.Tokens(characters=tuple(text.chars)) if args.text else saved.Tokens(task=args.task)
    if args.save and kv.rank == 0:  # the model after each epoch, one file overwritten (atomically): what
        # tritonsym sample reads; the other workers hold the same parameters
        path = saved_path(args.save)
        fit["epoch_end_callback"] = [lambda epoch, symbol, arg_params, aux_params: saved.save(path, cfg, arg_params,
                                                                                             tokens)]
        log.info("saving: %s after each epoch (then: tritonsym sample %s --prompt ...), and the weights and "
                 "optimizer states under %s for --resume", path, path, args.save)
    if args.text:
        _train_text(args, log, ctx, cfg, tokens, text, batch, fit, cuda_graph, kv)
    else:
        _train_task(args, log, ctx, cfg, tokens, lengths, batch, fit, cuda_graph, kv)
    log.info("done in %.1f s", time.perf_counter() - start)
    return 0


def _describe(tokens) -> str:
    if tokens.task:
        return f"the {tokens.task} task"
    return f"a text of the characters {''.join(tokens.characters)!r}"


def _module(args, log, cfg, tokens, fit, make, load):
    """(module, first epoch): a new module (``make()``), or with ``--resume`` the one saved
    under ``--save`` after its last complete epoch (``load(epoch)``), its configuration
    and tokens checked against this run's; (None, epoch) when that epoch is already the last. With
    ``--save``, each epoch also saves the weights and optimizer states (with the dropout
    masks' random state), which ``--resume`` continues from bit for bit."""
    import tritonsym as ts

    from ..models import saved
    from .checkpoints import last_complete_checkpoint

    begin = 0
    if args.resume:
        begin = last_complete_checkpoint(args.save)
        if begin is None:
            raise TritonSymError(f"train: --resume: no complete checkpoint under {args.save} (weights and optimizer "
                                 "states saved together by --save)")
        try:
            model = saved.load(saved_path(args.save))
        except (ts.base.FormatError, OSError) as e:
            raise TritonSymError(f"train: --resume: {e}") from None
        kept = model.cfg
        if model.tokens != tokens:
            raise TritonSymError(f"train: --resume: the run under {args.save} was trained on "
                                 f"{_describe(model.tokens)}, this one on {_describe(tokens)}")
        if kept != cfg:
            differ = [f"{k} {getattr(kept, k)!r} (now {getattr(cfg, k)!r})" for k in cfg.__dataclass_fields__
                      if getattr(kept, k) != getattr(cfg, k)]
            raise TritonSymError(f"train: --resume: the run under {args.save} was trained with {', '.join(differ)}; "
                                 "give the same options")
        if begin >= fit["num_epoch"]:
            log.info("resume: %s-%04d is already epoch %d of --epochs %d: nothing to train", args.save, begin, begin,
                     fit["num_epoch"])
            return None, begin
        log.info("resume: from %s-%04d, epochs %d to %d", args.save, begin, begin + 1, fit["num_epoch"])
    mod = load(begin) if args.resume else make()
    if "epoch_end_callback" in fit:  # --save, on the worker that saves
        fit["epoch_end_callback"].append(ts.callback.module_checkpoint(mod, args.save, save_optimizer_states=True))
    return mod, begin


def _train_task(args, log, ctx, cfg, tokens, lengths, batch, fit, cuda_graph, kv) -> None:
    import tritonsym as ts

    from ..models import sequences, transformer

    try:
        train = sequences.TaskIter(args.task, lengths, args.examples, batch, seed=args.seed,
                                   num_parts=kv.num_workers, part_index=kv.rank)
    except ts.base.ParamError as e:
        raise TritonSymError(f"train: --examples {args.examples}: {e}") from None
    val = sequences.TaskIter(args.task, lengths, max(1, args.examples // 5), batch, seed=args.seed + 10_000,
                             shuffle=False)
    log.info("data: the %s task: %s, questions of %s digits, %d training%s / %d validation questions", args.task,
             {"sort": "write the digits in order", "reverse": "write the digits backwards",
              "copy": "write the digits again"}[args.task], ",".join(map(str, lengths)), train.num_data,
             " per worker" if kv.num_workers > 1 else "", val.num_data)
    mod, begin = _module(args, log, cfg, tokens, fit, lambda: ts.mod.BucketingModule(
        transformer.sym_gen(cfg), default_bucket_key=train.max_len, context=ctx, cuda_graph=cuda_graph),
        lambda epoch: ts.mod.BucketingModule.load(args.save, epoch, transformer.sym_gen(cfg), train.max_len,
                                                  load_optimizer_states=True, context=ctx, cuda_graph=cuda_graph))
    if mod is None:
        return
    mod.fit(train, eval_data=val, begin_epoch=begin, **fit)
    if kv.rank > 0:  # the first worker writes the answers; every worker holds the same parameters
        return
    sampler = sequences.Sampler(cfg, mod.get_params()[0], ctx, rows=min(64, max(1, args.examples // 5)),
                                cuda_graph=cuda_graph)
    rng = np.random.default_rng(args.seed + 2)
    for n in lengths:
        right = sequences.exact_answers(sampler, args.task, n, sampler.rows, rng)
        log.info("written answers: %d digits: %.3f of %d fresh questions entirely right (greedy, no teacher forcing)",
                 n, right, sampler.rows)
    x = rng.integers(0, sequences.DIGITS, (sampler.rows, lengths[-1]))
    written = sampler.continue_(np.concatenate([x, np.full((sampler.rows, 1), sequences.SEP)], 1), lengths[-1])
    for row in range(min(3, sampler.rows)):
        log.info("  %s -> %s (expected %s)", sequences.digits_text(x[row]), sequences.digits_text(written[row]),
                 sequences.digits_text(sequences.answer(args.task, x[row:row + 1])[0]))


def _train_text(args, log, ctx, cfg, tokens, text, batch, fit, cuda_graph, kv) -> None:
    import tritonsym as ts

    from ..models import sequences, transformer

    held = max(args.context + 2, len(text.ids) // 10)  # the last tenth of the text validates
    if len(text.ids) - held <= args.context + 1:
        raise TritonSymError(f"train: --text {args.text}: {len(text.ids)} characters leave too little to train on "
                             f"with --context {args.context} (a tenth is held out); give a longer text or a shorter "
                             "--context")
    train_ids, val_ids = text.ids[:-held], text.ids[-held:]
    # An epoch: about two windows' worth of starts per window of text, a whole number of batches
    # (of all the workers' rows together), shared out among the workers.
    whole = batch * kv.num_workers
    count = -(-max(whole, 2 * len(train_ids) // args.context) // whole) * whole
    log.info("data: %s: %d characters, %d distinct; %d training windows of %d at random starts per epoch%s, the "
             "last %d characters for validation", args.text, len(text.ids), text.vocab, count, args.context,
             f" ({count // kv.num_workers} per worker)" if kv.num_workers > 1 else "", held)
    train = sequences.TextIter(train_ids, args.context, count // kv.num_workers, batch, seed=args.seed,
                               num_parts=kv.num_workers, part_index=kv.rank)
    val = sequences.TextIter(val_ids, args.context, batch, batch, shuffle=False)
    mod, begin = _module(args, log, cfg, tokens, fit, lambda: ts.mod.Module(transformer.decoder(args.context, cfg),
                                                                    context=ctx, cuda_graph=cuda_graph),
                         lambda epoch: ts.mod.Module.load(args.save, epoch, load_optimizer_states=True, context=ctx,
                                                          cuda_graph=cuda_graph))
    if mod is None:
        return
    mod.fit(train, eval_data=val, begin_epoch=begin, **fit)
    if kv.rank > 0:  # the first worker writes the samples; every worker holds the same parameters
        return
    if args.prompt is None:  # the text's first line, cut to half a window (the sampler slides past a full one)
        prompt = text.decode(text.ids[:args.context]).split("\n")[0][:max(1, args.context // 2)]
        prompt = prompt or text.decode(text.ids[:1])
    else:
        prompt = args.prompt  # kept whole, however long: the window slides
    ids = text.encode(prompt)[None, :]  # checked before training
    sampler = sequences.Sampler(cfg, mod.get_params()[0], ctx, rows=1, cuda_graph=cuda_graph)
    rng = np.random.default_rng(args.seed)
    for label, temperature in (("greedy", 0.0), (f"temperature {args.temperature}", args.temperature)):
        written = sampler.continue_(ids, args.sample_length, temperature, rng, args.top_k, args.top_p)
        log.info("sample (%s):\n%s%s\n", label, prompt, text.decode(written[0]))
