"""``tritonsym sample MODEL --prompt TEXT``: write with a transformer that ``tritonsym train
--model transformer --save PREFIX`` saved (``PREFIX-transformer.safetensors``).

A text model continues each prompt (characters of the text it learned); a digits model
answers each question (its digits, e.g. ``--prompt 52813``: the separator is added, and as
many digits are written as the question has). Several ``--prompt`` are written together,
one row each, whatever their lengths. Greedy by default; ``--temperature``, ``--top-k`` and
``--top-p`` draw instead, reproducibly for a ``--seed``.
"""

from __future__ import annotations

import sys

import numpy as np

from ..base import FormatError, ParamError, TritonSymError
from .options import context_from


def add_parser(sub) -> None:
    p = sub.add_parser("sample", help="write with a transformer saved by train --model transformer --save",
                       description=__doc__)
    p.add_argument("model", help="the saved model, PREFIX-transformer.safetensors")
    p.add_argument("--prompt", action="append", required=True,
                   help="what to continue (a text model) or the question's digits (a digits model); repeat for "
                        "several, written together")
    p.add_argument("--length", type=int, help="tokens to write after each prompt (default: 200 characters; a "
                   "digits model: as many digits as its question)")
    p.add_argument("--temperature", type=float, default=0.0, help="0: the most probable token each step; above "
                   "0: drawn from the distribution sharpened (< 1) or flattened (> 1)")
    p.add_argument("--top-k", type=int, help="draw from the K most probable tokens only")
    p.add_argument("--top-p", type=float, help="draw from the fewest most probable tokens whose probabilities add "
                   "up to P (nucleus sampling)")
    p.add_argument("--seed", type=int, default=0, help="the draws' generator")
    p.add_argument("--device", default="auto", help="auto, cpu (Triton interpreter), gpu or gpu:N")


def run(args) -> int:
    try:
        for line in write(args):
            print(line)
    except (TritonSymError, OSError) as e:  # FormatError and ParamError are TritonSymErrors
        print(f"tritonsym sample: error: {e}", file=sys.stderr)
        return 1
    return 0


def write(args) -> list[str]:
    """The lines ``run`` prints: each prompt with what the model wrote after it."""
    from ..models import saved, sequences

    try:
        sequences.check_sampling("sample", args.temperature, args.top_k, args.top_p,
                                 ("--temperature", "--top-k", "--top-p"))
    except ParamError as e:
        raise TritonSymError(str(e)) from None
    if args.length is not None and args.length < 0:
        raise TritonSymError(f"sample: --length {args.length}: must be at least 0")
    ctx = context_from(args.device, "sample")  # a bad --device is said before the model is read
    try:
        model = saved.load(args.model)
    except FormatError as e:
        raise TritonSymError(f"sample: {e}") from None
    prompts, lengths = _encode(args.prompt, model.tokens)
    steps = args.length if args.length is not None else (max(lengths) if model.tokens.task else 200)
    sampler = sequences.Sampler(model.cfg, model.params, ctx, rows=len(prompts),
                                cuda_graph=ctx.device_type == "gpu")
    written = sampler.continue_(prompts, steps, args.temperature, np.random.default_rng(args.seed), args.top_k,
                                args.top_p)
    if model.tokens.task:  # each answer as long as its question, unless --length says otherwise
        return [f"{prompt} -> {sequences.digits_text(row[:n if args.length is None else steps])}"
                for prompt, row, n in zip(args.prompt, written, lengths)]
    decode = model.tokens.characters
    return [prompt + "".join(decode[int(k)] for k in row) for prompt, row in zip(args.prompt, written)]


def _encode(prompts: list[str], tokens) -> tuple[list[np.ndarray], list[int]]:
    """Each prompt as the model's tokens (a question's digits then the separator), and its length."""
    from ..models import sequences

    encoded = []
    for prompt in prompts:
        if not prompt:
            raise TritonSymError("sample: --prompt '': a continuation needs at least one token to start from")
        if tokens.task:
            if not (prompt.isascii() and prompt.isdigit()):
                raise TritonSymError(f"sample: --prompt {prompt!r}: a model of the {tokens.task} task reads digits "
                                     "0-9 (the question), e.g. --prompt 52813")
            encoded.append(np.array([int(c) for c in prompt] + [sequences.SEP]))
        else:
            unknown = sorted(set(prompt) - set(tokens.characters))
            if unknown:
                raise TritonSymError(f"sample: --prompt {prompt!r}: characters {''.join(unknown)!r} are not in the "
                                     "model's vocabulary (the characters of the text it learned)")
            index = {c: k for k, c in enumerate(tokens.characters)}
            encoded.append(np.array([index[c] for c in prompt]))
    return encoded, [len(p) for p in prompts]
