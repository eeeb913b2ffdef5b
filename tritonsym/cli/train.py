"""``tritonsym train``: train a network with Module.fit and report how well it learned.

Defaults: the MLP of MXNet's symbol tutorial (FullyConnected 128, relu, FullyConnected to the
classes, SoftmaxOutput) on the bundled 8x8 digits, with a fixed 80/20 train/validation
split; ``--data mnist --data-dir DIR`` trains on MNIST files on disk (validated on its
test set). ``--model transformer`` trains a decoder-only transformer on a sequence task or,
with ``--text FILE``, as a character-level language model (``train_transformer.py``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

from ..base import TritonSymError
from . import train_transformer
from .checkpoints import last_complete_checkpoint
from .options import context_from, loss_scale

DEFAULTS = dict(data="digits", hidden="128", activation="relu", epochs=15, batch_size=128, optimizer="sgd", lr=0.1,
                momentum=0.9, wd=1e-4, seed=0, dtype="float32", validation_fraction=0.2)
# The MLP job's own options: the transformer job refuses them rather than ignore them.
MLP_OPTIONS = ("data", "data_dir", "hidden", "activation", "validation_fraction")


class _HelpWithDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's default after its help, unless it has none or the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        return text if action.default is None or "default" in text else super()._get_help_string(action)


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train an MLP classifier (defaults: MXNet's tutorial MLP on the bundled digits) "
                       "or a transformer (--model transformer)", description=__doc__, formatter_class=_HelpWithDefaults)
    p.add_argument("--model", choices=("mlp", "transformer"), default="mlp",
                   help="mlp: the classifier below; transformer: the sequence job (its options further down)")
    p.add_argument("--data", choices=("digits", "mnist"), default=DEFAULTS["data"],
                   help="digits: the bundled UCI 8x8 digits (no download); mnist: IDX files in --data-dir")
    p.add_argument("--data-dir", help="folder with the four MNIST IDX files (plain or .gz)")
    p.add_argument("--hidden", default=DEFAULTS["hidden"], help="hidden layer sizes, comma-separated (e.g. 128,64)")
    p.add_argument("--activation", default=DEFAULTS["activation"],
                   choices=("relu", "sigmoid", "tanh", "softrelu", "softsign"),
                   help="activation after each hidden layer")
    p.add_argument("--epochs", type=int, help="passes over the training data (default: 15; transformer: 4, with "
                   "--text 3)")
    p.add_argument("--batch-size", type=int, help="samples per training step (default: 128; transformer: 32)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"),
                   help="the update rule (default: sgd; transformer: adam); adamw: Adam with decoupled weight decay")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: 0.1 for sgd, 0.001 for adam and "
                   "adamw; transformer: 0.005 for adam and adamw, 0.003 with --text)")
    p.add_argument("--momentum", type=float, default=DEFAULTS["momentum"], help="SGD momentum")
    p.add_argument("--wd", type=float, help="weight decay (weights only; default: 0.0001; transformer: 0; adamw: "
                   "0.01, multiplied by the learning rate)")
    p.add_argument("--clip-global-norm", type=float, metavar="N", help="scale each step's gradients to a global "
                   "norm of at most N (torch's clip_grad_norm_; default: none)")
    p.add_argument("--lr-schedule", choices=("none", "cosine"), default="cosine",
                   help="cosine: decay the rate to 0 over the run")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="initial weights and batch order")
    p.add_argument("--dtype", default=DEFAULTS["dtype"], choices=("float32", "float64", "float16", "bfloat16"),
                   help="the dtype of the data, parameters and arithmetic")
    p.add_argument("--multi-precision", action=argparse.BooleanOptionalAction, default=True,
                   help="with --dtype float16/bfloat16, keep a float32 master copy of the weights so that small "
                        "updates are not rounded away (no effect in float32/float64)")
    p.add_argument("--loss-scale", default=None, metavar="dynamic|none|N",
                   help="scale the loss so small float16 gradients do not flush to zero, skipping steps that "
                        "overflow: 'dynamic' (the default for float16), a number (a static scale) or 'none'")
    p.add_argument("--validation-fraction", type=float, default=DEFAULTS["validation_fraction"],
                   help="share of the digits held out for validation")
    p.add_argument("--save", metavar="PREFIX", help="write PREFIX-symbol.json, PREFIX-%%04d.safetensors and the "
                   "optimizer's PREFIX-%%04d.states.safetensors after each epoch (transformer: also the model, "
                   "PREFIX-transformer.safetensors, for tritonsym sample)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run saved under --save PREFIX from its last complete checkpoint (weights and "
                        "optimizer states of one save), bit for bit as if it had not stopped; give the same options")
    p.add_argument("--device", default="auto", help="auto, cpu (Triton interpreter), gpu or gpu:N")
    p.add_argument("--kvstore", choices=("local", "dist_sync"), default="local",
                   help="dist_sync: data-parallel over the processes of torchrun --nproc_per_node=N (each reads "
                        "its share of the training data, or of each transformer batch; the gradient is "
                        "all-reduced)")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=None,
                   help="replay each training step's forward, backward and update as CUDA graphs (default: on a "
                        "GPU with --kvstore local)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar per epoch (default: when stderr is a terminal)")
    train_transformer.add_arguments(p)


def build_mlp(hidden: list[int], activation: str, classes: int):
    """The tutorial's MLP: FullyConnected + activation per hidden layer, then the output layer."""
    from .. import sym

    net = sym.Variable("data")
    for k, size in enumerate(hidden, start=1):
        net = sym.FullyConnected(data=net, name=f"fc{k}", num_hidden=size)
        net = sym.Activation(data=net, name=f"{activation}{k}", act_type=activation)
    net = sym.FullyConnected(data=net, name=f"fc{len(hidden) + 1}", num_hidden=classes)
    return sym.SoftmaxOutput(data=net, name="softmax")


def load_data(args) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """``(train_x, train_y, val_x, val_y, description)``, pixels scaled to [0, 1]."""
    from .. import io

    if args.data == "digits":
        images, labels = io.load_digits()
        train, val = io.split(len(images), args.validation_fraction, seed=0)
        x = images.astype(np.float32) / 16.0
        return x[train], labels[train], x[val], labels[val], "the bundled UCI 8x8 digits"
    if not args.data_dir:
        raise TritonSymError("train: --data mnist needs --data-dir DIR, a folder with the four MNIST IDX files")
    m = io.load_mnist(args.data_dir)
    flat = lambda a: a.reshape(a.shape[0], -1).astype(np.float32) / 255.0  # noqa: E731
    return (flat(m["train_images"]), m["train_labels"], flat(m["test_images"]), m["test_labels"],
            f"MNIST from {args.data_dir} (validated on its test set)")


def run(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    log = logging.getLogger("tritonsym")
    try:
        return _train(args, log)
    except (TritonSymError, OSError) as e:  # KVStoreError is a TritonSymError; OSError: a file, named
        print(f"tritonsym train: error: {e}", file=sys.stderr)
        return 1


def _worker_context(args, kv, log):
    """This process's device; with several workers, one GPU each, and the first one reporting
    (the others train quietly)."""
    import torch

    import tritonsym as ts

    if kv.rank > 0:
        log.setLevel(logging.WARNING)
    ctx = context_from(args.device)
    if ctx.device_type == "gpu" and args.device in ("auto", "gpu") and kv.num_workers > 1:
        ctx = ts.gpu(kv.rank % max(1, torch.cuda.device_count()))
    return ctx


def _train(args, log) -> int:

    import tritonsym as ts

    start = time.perf_counter()
    if args.model == "transformer":
        stray = [f"--{name.replace('_', '-')}" for name in MLP_OPTIONS if getattr(args, name) != DEFAULTS.get(name)]
        if stray:
            raise TritonSymError(f"train: {', '.join(stray)} {'is' if len(stray) == 1 else 'are'} for --model mlp; "
                                 "the transformer job would train without it")
        kv = ts.kv.create(args.kvstore)
        return train_transformer.run(args, log, _worker_context(args, kv, log), kv)
    stray = train_transformer.given_options(args)
    if stray:
        raise TritonSymError(f"train: {', '.join(stray)} {'is' if len(stray) == 1 else 'are'} for --model transformer; "
                             "the MLP job would train without it")
    if args.wd is None and args.optimizer == "adamw":
        args.wd = ts.optimizer.AdamW.DEFAULT_WD  # decoupled decay is multiplied by the rate: torch's default
    for option in ("epochs", "batch_size", "optimizer", "wd"):  # the MLP's defaults where not given
        if getattr(args, option) is None:
            setattr(args, option, DEFAULTS[option])
    try:
        hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
    except ValueError:
        raise TritonSymError(f"train: --hidden {args.hidden!r}: expected sizes like 128 or 128,64") from None
    if any(h < 1 for h in hidden):
        raise TritonSymError(f"train: --hidden {args.hidden!r}: sizes must be positive")
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value < 1:
            raise TritonSymError(f"train: {flag} {value}: must be at least 1")
    if not 0 < args.validation_fraction < 1:
        raise TritonSymError(f"train: --validation-fraction {args.validation_fraction}: must be in (0, 1)")
    kv = ts.kv.create(args.kvstore)
    ctx = _worker_context(args, kv, log)
    ts.random.seed(args.seed)
    train_x, train_y, val_x, val_y, source = load_data(args)
    classes = int(max(train_y.max(), val_y.max())) + 1
    train = ts.io.NDArrayIter(train_x, train_y, batch_size=args.batch_size, shuffle=True, dtype=args.dtype,
                              num_parts=kv.num_workers, part_index=kv.rank)
    if args.batch_size > train.num_data:  # every batch would repeat samples to fill itself
        raise TritonSymError(f"train: --batch-size {args.batch_size} is more than the {train.num_data} training "
                             f"samples{' per worker' if kv.num_workers > 1 else ''}")
    val = ts.io.NDArrayIter(val_x, val_y, batch_size=args.batch_size, dtype=args.dtype)
    net = build_mlp(hidden, args.activation, classes)
    lr = args.lr if args.lr is not None else (0.1 if args.optimizer == "sgd" else 0.001)
    params = {"learning_rate": lr, "wd": args.wd}
    if args.clip_global_norm is not None:
        params["clip_global_norm"] = args.clip_global_norm
    if args.dtype in ("float16", "bfloat16"):
        params["multi_precision"] = args.multi_precision
    scale = loss_scale(args.loss_scale, args.dtype)
    if scale is not None:
        params["loss_scale"] = scale
    if args.optimizer == "sgd":
        params["momentum"] = args.momentum
    steps = args.epochs * -(-train.num_data // args.batch_size)  # updates per worker = updates of the job
    if args.lr_schedule == "cosine" and steps > 1:
        params["lr_scheduler"] = ts.lr_scheduler.CosineScheduler(max_update=steps)
    log.info("data: %s: %d train / %d validation samples, %d features, %d classes", source, len(train_x),
             len(val_x), train_x.shape[1], classes)
    log.info("network: %s, %s, SoftmaxOutput; %s on %s%s", "-".join(map(str, [train_x.shape[1], *hidden, classes])),
             args.activation, args.dtype, ctx, " (Triton interpreter)" if ctx.device_type == "cpu" else "")
    log.info("optimizer: %s %s, batch %d, %d epochs", args.optimizer,
             ", ".join(f"{k}={v}" for k, v in params.items() if k != "lr_scheduler")
             + (", cosine schedule" if "lr_scheduler" in params else ""), args.batch_size, args.epochs)
    if kv.num_workers > 1:
        log.info("kvstore: dist_sync, %d workers, global batch %d, %d training samples per worker",
                 kv.num_workers, args.batch_size * kv.num_workers, train.num_data)
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    batch_end = [ts.callback.ProgressBar(total=-(-train.num_data // args.batch_size))] if progress else None
    cuda_graph = args.cuda_graph if args.cuda_graph is not None else (ctx.device_type == "gpu"
                                                                      and args.kvstore == "local")
    begin = 0
    if args.resume:
        if not args.save:
            raise TritonSymError("train: --resume continues the run saved under --save PREFIX: give --save")
        begin = last_complete_checkpoint(args.save)
        if begin is None:
            raise TritonSymError(f"train: --resume: no complete checkpoint under {args.save} (weights and optimizer "
                                 "states saved together by --save)")
        if begin >= args.epochs:
            log.info("resume: %s-%04d is already epoch %d of --epochs %d: nothing to train", args.save, begin,
                     begin, args.epochs)
            return 0
        log.info("resume: from %s-%04d, epochs %d to %d", args.save, begin, begin + 1, args.epochs)
        mod = ts.mod.Module.load(args.save, begin, load_optimizer_states=True, context=ctx, cuda_graph=cuda_graph)
    else:
        mod = ts.mod.Module(net, context=ctx, cuda_graph=cuda_graph)
    epoch_end = ts.callback.module_checkpoint(mod, args.save, save_optimizer_states=True) \
        if args.save and kv.rank == 0 else None
    history = mod.fit(train, eval_data=val, eval_metric="acc", optimizer=args.optimizer, optimizer_params=params,
                      initializer=ts.init.Xavier(), num_epoch=args.epochs, batch_end_callback=batch_end,
                      epoch_end_callback=epoch_end, kvstore=kv, begin_epoch=begin)
    last = history[-1]
    fit_time = sum(h["time"] for h in history)
    log.info("final: validation accuracy %.4f, train accuracy %.4f after %d epochs; %.0f samples/s in training; "
             "%.1f s in all", last["validation"]["accuracy"], last["train"]["accuracy"], args.epochs,
             train.num_data * kv.num_workers * len(history) / fit_time, time.perf_counter() - start)
    if hasattr(kv, "close"):
        kv.close()
    return 0
