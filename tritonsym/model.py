"""Checkpoints: ``prefix-symbol.json`` and ``prefix-0010.safetensors`` (MXNet's layout).

Parameters are stored with safetensors (a JSON header and raw little-endian bytes; never
pickle, so loading a file cannot run code), as ``arg:<name>`` and ``aux:<name>``, with the
epoch, a format tag and a SHA-256 of the tensors in the header: safetensors rejects a
truncated file, the checksum a file whose bytes were changed. Every file is written to a temporary file and
renamed (``files.atomic_write``): a run killed mid-save leaves the previous checkpoint
intact. Optimizer states, when saved, go to ``prefix-0010.states.safetensors``.

>>> import tritonsym as ts, torch, tempfile, os
>>> net = ts.sym.FullyConnected(ts.sym.Variable("data"), name="fc", num_hidden=2)
>>> prefix = os.path.join(tempfile.mkdtemp(), "net")
>>> ts.model.save_checkpoint(prefix, 3, net, {"fc_weight": torch.ones(2, 5), "fc_bias": torch.zeros(2)}, {})
>>> sym, args, aux = ts.model.load_checkpoint(prefix, 3)
>>> sorted(args), tuple(args["fc_weight"].shape)
(['fc_bias', 'fc_weight'], (2, 5))
"""

from __future__ import annotations

import hashlib
import json
import os

import torch

from . import mxnet_format
from .base import FormatError, dtype_name
from .files import atomic_write
from .symbol.symbol import load as load_symbol

PARAMS_FORMAT = "tritonsym-params"
STATES_FORMAT = "tritonsym-optimizer-states"


def params_path(prefix: str, epoch: int) -> str:
    return f"{prefix}-{int(epoch):04d}.safetensors"


def states_path(prefix: str, epoch: int) -> str:
    return f"{prefix}-{int(epoch):04d}.states.safetensors"


def _host(t) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t)
    return t.detach().to("cpu").contiguous()


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _safetensors():
    """safetensors' (save, load, error type), imported where a checkpoint is read or written,
    so that everything else in tritonsym works without it."""
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load, save
    except ImportError as e:
        raise ImportError(f"tritonsym's checkpoint files need the safetensors package (pip install safetensors): "
                          f"{e}") from None
    return save, load, SafetensorError


def save_tensors(path: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """Write a safetensors file atomically, with a checksum of its tensors in the header;
    returns the checksum."""
    host = {k: _host(v) for k, v in tensors.items()}
    save_bytes, _, _ = _safetensors()
    digest = _digest(host)
    atomic_write(path, save_bytes(host, metadata=dict(metadata, sha256=digest)))
    return digest


def load_tensors(path: str, expected_format: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file written by ``save_tensors``; a truncated, tampered or foreign
    file raises ``FormatError`` naming it."""
    _, load_bytes, safetensor_error = _safetensors()
    with open(path, "rb") as f:
        raw = f.read()
    try:
        tensors = load_bytes(raw)
    except (safetensor_error, ValueError, RuntimeError) as e:
        raise FormatError(f"{path}: not a readable safetensors file (truncated or corrupt?): {e}") from None
    # load() returns the tensors only; the metadata sits in the (now validated) JSON header.
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != expected_format:
        raise FormatError(f"{path}: format {metadata.get('format')!r}, expected {expected_format!r}")
    # Every file of these formats carries the checksum: a missing one means a damaged header.
    if metadata.get("sha256") != _digest(tensors):
        what = "do not match the checksum written with them" if "sha256" in metadata else "have no checksum"
        raise FormatError(f"{path}: the tensors {what}; the file was modified or damaged after it was saved")
    return tensors, metadata


def save_params(path: str, arg_params: dict, aux_params: dict, epoch: int | None = None) -> str:
    """Write a parameters file; returns its checksum (what an optimizer-states file saved
    with it records, to be loaded only with it)."""
    tensors = {f"arg:{k}": v for k, v in arg_params.items()} | {f"aux:{k}": v for k, v in aux_params.items()}
    metadata = {"format": PARAMS_FORMAT, "version": "1"} | ({"epoch": str(epoch)} if epoch is not None else {})
    return save_tensors(path, tensors, metadata)


def load_params(path: str, epoch: int | None = None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(arg_params, aux_params)`` from a parameters file. With ``epoch`` (the number in its
    name), the epoch its header records must be the same: a file renamed from epoch 1 to 5
    is not epoch 5."""
    tensors, metadata = load_tensors(path, PARAMS_FORMAT)
    if epoch is not None and "epoch" in metadata and metadata["epoch"] != str(int(epoch)):
        raise FormatError(f"{path}: its header says it holds epoch {metadata['epoch']}, but its name says epoch "
                          f"{int(epoch)}; was it renamed or copied?")
    return _split_names(path, tensors)


def _split_names(path: str, tensors: dict) -> tuple[dict, dict]:
    """``arg:<name>`` and ``aux:<name>`` entries apart (tritonsym's files and MXNet's alike)."""
    args, aux = {}, {}
    for key, value in tensors.items():
        kind, _, name = key.partition(":")
        if kind not in ("arg", "aux") or not name:
            raise FormatError(f"{path}: entry {key!r} is neither 'arg:<name>' nor 'aux:<name>'")
        (args if kind == "arg" else aux)[name] = value
    return args, aux


def save_checkpoint(prefix: str, epoch: int, symbol, arg_params: dict, aux_params: dict) -> None:
    """Write ``prefix-symbol.json`` and ``prefix-%04d.safetensors`` (each atomically)."""
    symbol.save(f"{prefix}-symbol.json")
    save_params(params_path(prefix, epoch), arg_params, aux_params, epoch)


def mxnet_params_path(prefix: str, epoch: int) -> str:
    return f"{prefix}-{int(epoch):04d}.params"


def load_checkpoint(prefix: str, epoch: int):
    """``(symbol, arg_params, aux_params)``; the parameters' names are checked against the
    symbol. An MXNet 1.x checkpoint (``prefix-%04d.params`` and MXNet's symbol JSON) is read
    where there is no tritonsym one."""
    sym = load_symbol(f"{prefix}-symbol.json")
    path = params_path(prefix, epoch)
    if not os.path.exists(path) and os.path.exists(mxnet_params_path(prefix, epoch)):
        path = mxnet_params_path(prefix, epoch)
        args, aux = _split_names(path, mxnet_format.read_params(path))
    else:
        args, aux = load_params(path, epoch)
    check_names(path, args, aux, sym.list_arguments(), sym.list_auxiliary_states())
    return sym, args, aux


def save_mxnet_checkpoint(prefix: str, epoch: int, symbol, arg_params: dict, aux_params: dict) -> None:
    """Write ``prefix-symbol.json`` and ``prefix-%04d.params`` as MXNet 1.x writes them, for
    ``mx.model.load_checkpoint`` / ``mx.mod.Module.load`` (each atomically)."""
    atomic_write(f"{prefix}-symbol.json", mxnet_format.symbol_json(symbol).encode())
    tensors = {f"arg:{k}": v for k, v in arg_params.items()} | {f"aux:{k}": v for k, v in aux_params.items()}
    mxnet_format.write_params(mxnet_params_path(prefix, epoch), tensors)


def read_metadata(path: str) -> dict[str, str]:
    """The metadata in a safetensors file's header (its tensors are not read or checked)."""
    try:
        with open(path, "rb") as f:
            length = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(length)) if 0 < length < 1 << 24 else None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: cannot read its header: {e}") from None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__", {}), dict):
        raise FormatError(f"{path}: not a safetensors file written by tritonsym")
    return header.get("__metadata__") or {}


def check_pair(states_file: str, states_metadata: dict, params_file: str) -> None:
    """An optimizer-states file saved with a parameters file records that file's checksum;
    loaded beside another one (a kill or a full disk between the two writes of a save
    leaves the new weights with the old states, or the reverse) it is refused, naming both.
    States files written before this record existed, or on their own, are not checked."""
    expected = states_metadata.get("params_sha256")
    if expected is None:
        return
    found = read_metadata(params_file).get("sha256")
    if found != expected:
        raise FormatError(f"{states_file} was saved with other weights than {params_file} holds (the two files come "
                          f"from different saves: interrupted between them?); load the epoch before, or "
                          f"load_optimizer_states=False to start the optimizer afresh")


def check_names(path: str, args: dict, aux: dict, arg_names, aux_names) -> None:
    """Every stored parameter must be an argument or auxiliary state of the symbol."""
    extra = sorted(set(args) - set(arg_names)) + sorted(set(aux) - set(aux_names))
    if extra:
        raise FormatError(f"{path}: holds {', '.join(extra)}, which the symbol does not have (its arguments: "
                          f"{', '.join(arg_names)})")


def describe_mismatch(stored: dict[str, torch.Tensor], expected: dict[str, tuple[tuple, torch.dtype]]) -> list[str]:
    """What differs between stored tensors and the shapes/dtypes a network expects."""
    problems = []
    missing = [n for n in expected if n not in stored]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    for name, (shape, dtype) in expected.items():
        if name not in stored:
            continue
        t = stored[name]
        if tuple(t.shape) != tuple(shape):
            problems.append(f"{name}: stored shape {tuple(t.shape)}, the network has {tuple(shape)}")
        elif t.dtype != dtype:
            problems.append(f"{name}: stored dtype {dtype_name(t.dtype)}, the network has {dtype_name(dtype)}")
    return problems

