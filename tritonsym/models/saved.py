"""A trained transformer in one file, to write with later (``tritonsym sample``).

``save`` writes the parameters as a safetensors file (``model.save_tensors``: no pickle, a
checksum of the tensors, written atomically) whose header also holds what writing needs
besides them: the ``Config`` and the tokens, the characters of a ``--text`` model or the
task of a digits model. ``load`` refuses a file that is damaged, of another format, or whose
parameters are not the network its configuration builds, naming what differs; a file
loads on any device and in its own dtype.

>>> import tempfile, os, torch
>>> from tritonsym.models import saved, transformer
>>> cfg = transformer.Config(vocab=3, max_len=4, width=8, heads=2, layers=1)
>>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
>>> params = {name: torch.zeros(shape, dtype=dtype) for name, (shape, dtype) in saved.expected_params(cfg).items()}
>>> saved.save(path, cfg, params, saved.Tokens(characters=("a", "b", "c")))
>>> model = saved.load(path)
>>> model.cfg == cfg, model.tokens.characters, sorted(model.params) == sorted(params)
(True, ('a', 'b', 'c'), True)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import torch

from .. import model
from ..base import FormatError, ParamError, dtype_name
from .sequences import TASK_VOCAB, TASKS
from .transformer import Config, decoder

FORMAT = "tritonsym-transformer"


@dataclass(frozen=True)
class Tokens:
    """What a model's tokens stand for: a text's characters (token k is ``characters[k]``),
    or the digits of a sequence task (``task``: 0-9, then the separator)."""

    characters: tuple[str, ...] | None = None
    task: str | None = None

    def __post_init__(self):
        if (self.characters is None) == (self.task is None):
            raise ParamError("saved.Tokens: give characters (a text model) or task (a digits model), one of them")


@dataclass(frozen=True)
class SavedModel:
    cfg: Config
    params: dict[str, torch.Tensor]
    tokens: Tokens


def expected_params(cfg: Config) -> dict[str, tuple[tuple, torch.dtype]]:
    """Each parameter's shape and dtype in the network ``cfg`` builds."""
    net = decoder(cfg.max_len, cfg)
    shapes = dict(data=(1, cfg.max_len), softmax_label=(1, cfg.max_len))
    arg_shapes, _, _ = net.infer_shape(**shapes)
    arg_types, _, _ = net.infer_type(data="float32", softmax_label="float32")
    return {name: (tuple(shape), dtype) for name, shape, dtype in zip(net.list_arguments(), arg_shapes, arg_types)
            if name not in shapes}


def save(path: str, cfg: Config, params: dict, tokens: Tokens) -> None:
    """Write ``cfg``'s network's ``params`` and ``tokens`` to ``path`` (atomically)."""
    problems = model.describe_mismatch({n: torch.as_tensor(v) for n, v in params.items()}, expected_params(cfg))
    if problems:
        raise ParamError(f"saved.save: the parameters are not those of the network cfg builds: {'; '.join(problems)}")
    metadata = {"format": FORMAT, "version": "1", "config": json.dumps(dataclasses.asdict(cfg)),
                "tokens": json.dumps(dataclasses.asdict(tokens))}
    model.save_tensors(path, dict(params), metadata)


def load(path: str) -> SavedModel:
    """The model ``save`` wrote to ``path``; ``FormatError`` naming the file and what is wrong
    otherwise."""
    tensors, metadata = model.load_tensors(path, FORMAT)
    try:
        cfg = Config(**json.loads(metadata["config"]))
        fields = json.loads(metadata["tokens"])
        tokens = Tokens(characters=None if fields.get("characters") is None else tuple(fields["characters"]),
                        task=fields.get("task"))
    except (KeyError, TypeError, ValueError, ParamError) as e:  # JSONDecodeError is a ValueError
        raise FormatError(f"{path}: its configuration or tokens cannot be read: {e}") from None
    if tokens.characters is not None and len(tokens.characters) != cfg.vocab:
        raise FormatError(f"{path}: {len(tokens.characters)} characters for a vocabulary of {cfg.vocab}")
    if tokens.task is not None and (tokens.task not in TASKS or cfg.vocab != TASK_VOCAB):
        raise FormatError(f"{path}: a model of the task {tokens.task!r} with a vocabulary of {cfg.vocab} (the tasks: "
                          f"{', '.join(TASKS)}, {TASK_VOCAB} tokens: the digits and the separator)")
    problems = model.describe_mismatch(tensors, expected_params(cfg))
    extra = sorted(set(tensors) - set(expected_params(cfg)))
    if problems or extra:
        found = problems + ([f"not in the network: {', '.join(extra)}"] if extra else [])
        raise FormatError(f"{path}: its parameters are not those of the network its configuration builds "
                          f"({dtype_name(getattr(torch, cfg.dtype))}): {'; '.join(found)}")
    return SavedModel(cfg, tensors, tokens)
