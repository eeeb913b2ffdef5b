"""Checkpoints written by an earlier tritonsym still load, and mean the same.

``tests/data/format_v1/`` holds a checkpoint (symbol JSON, parameters, Adam's states after
one step) written once by the first file format and then frozen (``write_files.py`` says
how). The oracle here is the format itself, read without tritonsym or the safetensors
library: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
shape and byte range, the raw little-endian bytes, and a SHA-256 over name, dtype, shape
and bytes in name order. A change to the reader, the checksum's recipe or the names
(``arg:``, the optimizer's ``mean:``/``var:``) that would strand users' checkpoints fails
here, as does a writer that no longer writes the same bytes.
"""

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import tritonsym as ts

FROZEN = Path(__file__).resolve().parent / "data" / "format_v1"
PREFIX = str(FROZEN / "mlp")
NUMPY_DTYPES = {"F32": ("<f4", torch.float32), "I64": ("<i8", torch.int64)}

sys.path.insert(0, str(FROZEN))
from write_files import batch, known_params, network  # noqa: E402  (how the frozen files were made)


def _read_by_hand(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + length])
    metadata = header.pop("__metadata__")
    body = raw[8 + length:]
    tensors = {}
    for name, entry in header.items():
        numpy_dtype, torch_dtype = NUMPY_DTYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype=numpy_dtype).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.astype(array.dtype.newbyteorder("="))).to(torch_dtype)
    return tensors, metadata


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def _header_and_body(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + length]), raw[8 + length:]


@pytest.mark.parametrize("name", ["mlp-0002.safetensors", "mlp-0002.states.safetensors"])
def test_the_frozen_files_carry_the_checksum_of_their_tensors(name):
    tensors, metadata = _read_by_hand(FROZEN / name)
    assert metadata["sha256"] == _checksum(tensors)


def test_a_version_1_checkpoint_loads_with_its_values():
    sym, args, aux = ts.model.load_checkpoint(PREFIX, 2)
    assert sym.list_arguments() == ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias", "softmax_label"]
    assert sym.get_internals()["tanh1_output"].attr("act_type") == "tanh"
    assert aux == {}
    stored, metadata = _read_by_hand(FROZEN / "mlp-0002.safetensors")
    assert metadata["format"] == "tritonsym-params" and metadata["epoch"] == "2"
    assert sorted(args) == sorted(k.removeprefix("arg:") for k in stored)
    for name, value in args.items():
        assert value.dtype == torch.float32 and torch.equal(value, stored[f"arg:{name}"]), name
    # one Adam step moved every parameter from the known start by about the learning rate
    for name, start in known_params().items():
        assert 0 < (args[name] - start.cpu()).abs().max() <= 0.011, name


def test_a_version_1_checkpoint_resumes_training_where_it_stopped():
    """Module.load with the optimizer states continues the frozen run: its second step is
    the one a run that never stopped takes (today's kernels, so to float32 rounding)."""
    resumed = ts.mod.Module.load(PREFIX, 2, load_optimizer_states=True)
    resumed.bind([("data", (4, 6))], [("softmax_label", (4,))])
    resumed.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.01, "wd": 1e-3})
    states, _ = _read_by_hand(FROZEN / "mlp-0002.states.safetensors")
    loaded = resumed._updater.state_dict()
    assert sorted(loaded) == sorted(states)
    assert all(torch.equal(loaded[k], states[k]) for k in states)
    assert int(states["num_update"]) == 1
    resumed.train_step(batch())

    continuous = ts.mod.Module(network())
    continuous.bind([("data", (4, 6))], [("softmax_label", (4,))])
    continuous.init_params(arg_params=known_params())
    continuous.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.01, "wd": 1e-3})
    continuous.train_step(batch())
    continuous.train_step(batch())
    for name, value in continuous.get_params()[0].items():
        torch.testing.assert_close(resumed.get_params()[0][name], value, rtol=1e-5, atol=1e-6)
    assert resumed.optimizer.num_update == continuous.optimizer.num_update == 2


def test_todays_writer_writes_the_same_bytes(tmp_path):
    """Saving what was loaded reproduces the frozen symbol file byte for byte, and the
    parameters file's header and bytes (safetensors writes the metadata in no fixed order).
    The states file's header also names the optimizer's settings, so its tensors and format
    are compared instead."""
    sym, args, aux = ts.model.load_checkpoint(PREFIX, 2)
    prefix = str(tmp_path / "mlp")
    ts.model.save_checkpoint(prefix, 2, sym, args, aux)
    assert (tmp_path / "mlp-symbol.json").read_bytes() == (FROZEN / "mlp-symbol.json").read_bytes()
    assert _header_and_body(tmp_path / "mlp-0002.safetensors") == _header_and_body(FROZEN / "mlp-0002.safetensors")

    shutil.copy(FROZEN / "mlp-0002.states.safetensors", tmp_path)
    mod = ts.mod.Module.load(prefix, 2, load_optimizer_states=True)
    mod.bind([("data", (4, 6))], [("softmax_label", (4,))])
    mod.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.01, "wd": 1e-3})
    mod.save_optimizer_states(str(tmp_path / "again.states.safetensors"))
    again, metadata = _read_by_hand(tmp_path / "again.states.safetensors")
    frozen, frozen_metadata = _read_by_hand(FROZEN / "mlp-0002.states.safetensors")
    assert metadata["format"] == frozen_metadata["format"] == "tritonsym-optimizer-states"
    assert metadata["optimizer"].startswith("Adam(")
    assert sorted(again) == sorted(frozen) and all(torch.equal(again[k], frozen[k]) for k in frozen)


def test_numpy_parameters_are_saved_as_tensors(tmp_path):
    path = str(tmp_path / "p.safetensors")
    ts.model.save_params(path, {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, {"a": np.ones(2)}, epoch=1)
    args, aux = ts.model.load_params(path)
    assert torch.equal(args["w"].cpu(), torch.arange(6.0).reshape(2, 3).cpu())
    assert aux["a"].dtype == torch.float64 and torch.equal(aux["a"], torch.ones(2, dtype=torch.float64))
