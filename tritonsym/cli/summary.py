"""``tritonsym summary net.json``: the layer table of a saved symbol, optionally its drawing;
``tritonsym summary PREFIX-transformer.safetensors``: those of a transformer ``train --save`` kept."""

from __future__ import annotations

import sys

from ..base import TritonSymError


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="print the layers, shapes and parameter counts of a saved symbol",
                       description=__doc__)
    p.add_argument("symbol", help="a symbol JSON file (e.g. PREFIX-symbol.json from a checkpoint), or a "
                   "transformer that train --save kept (PREFIX-transformer.safetensors)")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=D1,D2,...",
                   help="an input's shape, e.g. --shape data=64,784 (repeat for more inputs)")
    p.add_argument("--dot", metavar="FILE", help="also write the network as Graphviz DOT to FILE")
    p.add_argument("--render", choices=("svg", "png", "pdf"),
                   help="with --dot, also render FILE.<format> with Graphviz's dot program")


def _shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for item in items:
        name, _, dims = item.partition("=")
        try:
            shapes[name.strip()] = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            raise TritonSymError(f"summary: --shape {item!r}: expected NAME=D1,D2,... (e.g. data=64,784)") from None
        if not name.strip() or not shapes[name.strip()]:
            raise TritonSymError(f"summary: --shape {item!r}: expected NAME=D1,D2,... (e.g. data=64,784)")
    return shapes


def _saved_transformer(path: str):
    """The training network of a transformer ``train --save`` kept, and its shapes for one
    text of ``max_len`` tokens; its configuration printed first."""
    from ..models import saved, transformer

    model = saved.load(path)
    cfg = model.cfg
    print(f"{path}: a transformer of {cfg.layers} blocks, width {cfg.width}, {cfg.heads} heads ({cfg.key_heads} for "
          f"keys and values), {cfg.norm} norm, {cfg.mlp} MLP, {cfg.positions} positions"
          f"{', tied embeddings' if cfg.tie_embeddings else ''}"
          f"{f', a window of {cfg.window}' if cfg.window else ''}, vocabulary {cfg.vocab} "
          f"({'the ' + model.tokens.task + ' task' if model.tokens.task else 'characters'}), up to {cfg.max_len} "
          f"tokens, {cfg.dtype}; its network for one text of {cfg.max_len} tokens:")
    return transformer.decoder(cfg.max_len, cfg), {"data": (1, cfg.max_len), "softmax_label": (1, cfg.max_len)}


def run(args) -> int:
    from .. import symbol, viz

    try:
        if args.symbol.endswith(".safetensors"):  # a transformer tritonsym train --save kept
            net, default_shapes = _saved_transformer(args.symbol)
        else:
            net, default_shapes = symbol.load(args.symbol), {}
        shapes = _shapes(args.shape) or default_shapes
        unknown = [n for n in shapes if n not in net.list_arguments()]
        if unknown:
            raise TritonSymError(f"summary: --shape names {unknown}, which are not arguments of the symbol "
                                 f"({', '.join(net.list_arguments())})")
        viz.print_summary(net, shape=shapes or None)
        if args.dot:
            graph = viz.plot_network(net, shape=shapes or None, title=args.dot.rsplit("/", 1)[-1])
            graph.save(args.dot)
            print(f"wrote {args.dot}")
            if args.render:
                print(f"wrote {graph.render(args.dot, format=args.render)}")
    except (TritonSymError, OSError) as e:
        print(f"tritonsym summary: error: {e}", file=sys.stderr)
        return 1
    return 0
