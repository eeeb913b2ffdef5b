"""Hostile files: tampered, truncated and fuzzed checkpoints and symbol JSON are rejected with
a clear error (never another exception, never a partial result); a bind that would not fit
in memory says how much it needs before allocating."""

import json

import numpy as np
import pytest
import torch
from networks import mlp
from property_settings import HealthCheck, given, property_settings, settings, st

import tritonsym as ts
from tritonsym import BindError, FormatError, TritonSymError

S = ts.sym


def _net():
    return mlp((4,), 3)


@pytest.fixture
def checkpoint(tmp_path):
    prefix = str(tmp_path / "net")
    rng = np.random.default_rng(0)
    args = {n: torch.as_tensor(rng.normal(size=s)).float() for n, s in
            (("fc1_weight", (4, 5)), ("fc1_bias", (4,)), ("fc2_weight", (3, 4)), ("fc2_bias", (3,)))}
    ts.model.save_checkpoint(prefix, 1, _net(), args, {})
    return prefix, args


def test_tampered_data_fails_the_checksum(checkpoint):
    prefix, _ = checkpoint
    path = prefix + "-0001.safetensors"
    raw = bytearray(open(path, "rb").read())
    raw[-5] ^= 0x40  # a bit of the last tensor's data
    open(path, "wb").write(raw)
    with pytest.raises(FormatError, match="do not match the checksum written with them"):
        ts.mod.Module.load(prefix, 1)


def test_a_damaged_checksum_entry_is_not_a_missing_one(checkpoint):
    """Found by fuzzing: a byte flip inside the header's "sha256" key used to make the file
    look unchecked, and its tampered data loaded. Every file of ours has the checksum."""
    prefix, _ = checkpoint
    path = prefix + "-0001.safetensors"
    raw = bytearray(open(path, "rb").read())
    at = raw.index(b'"sha256"')
    raw[at + 1:at + 7] = b"shaXYZ"
    raw[-5] ^= 0x40
    open(path, "wb").write(raw)
    with pytest.raises(FormatError, match="the tensors have no checksum"):
        ts.model.load_params(path)


@pytest.mark.parametrize("keep", [0, 7, 8, 40, -30, -1])
def test_truncated_checkpoints_are_rejected(checkpoint, keep):
    prefix, _ = checkpoint
    path = prefix + "-0001.safetensors"
    raw = open(path, "rb").read()
    open(path, "wb").write(raw[:keep] if keep >= 0 else raw[:len(raw) + keep])
    with pytest.raises(FormatError, match="not a readable safetensors file"):
        ts.model.load_checkpoint(prefix, 1)


FUZZ_CASES = {"checkpoint": 0, "symbol": 0}


@settings(**property_settings(150, HealthCheck.function_scoped_fixture))
@given(data=st.data())
def test_fuzzed_checkpoints_load_whole_or_fail_clearly(checkpoint, data):
    prefix, args = checkpoint
    raw = open(prefix + "-0001.safetensors", "rb").read()
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        mutated[i] = data.draw(st.integers(0, 255))
    path = prefix + "-0002.safetensors"
    open(path, "wb").write(bytes(mutated))
    FUZZ_CASES["checkpoint"] += 1
    try:
        loaded, _ = ts.model.load_params(path)
    except FormatError:
        return
    assert sorted(loaded) == sorted(args)  # accepted only if every tensor is intact
    assert all(torch.equal(loaded[n].cpu(), args[n].cpu()) for n in args)


@pytest.mark.parametrize("key", ["fc1_weight", "opt:fc1_weight", "arg:", "aux:"])
def test_parameter_files_with_foreign_entry_names_are_rejected(tmp_path, key):
    """A file of the parameters format whose checksum is right but an entry is neither
    ``arg:<name>`` nor ``aux:<name>`` (written by hand or by another tool)."""
    path = str(tmp_path / "p.safetensors")
    ts.model.save_tensors(path, {"arg:fc2_bias": torch.zeros(3), key: torch.ones(2)},
                          {"format": ts.model.PARAMS_FORMAT, "version": "1"})
    with pytest.raises(FormatError, match=f"entry '{key}' is neither 'arg:<name>' nor 'aux:<name>'"):
        ts.model.load_params(path)


def test_every_difference_from_the_network_is_listed():
    expected = {"w": ((2, 3), torch.float32), "b": ((2,), torch.float32), "c": ((1,), torch.float16)}
    stored = {"w": torch.zeros(3, 2), "c": torch.zeros(1)}
    assert ts.model.describe_mismatch(stored, expected) == [
        "missing b", "w: stored shape (3, 2), the network has (2, 3)",
        "c: stored dtype float32, the network has float16"]
    assert ts.model.describe_mismatch({"w": torch.zeros(2, 3)}, {"w": ((2, 3), torch.float32)}) == []


@settings(**property_settings(150))
@given(data=st.data())
def test_fuzzed_symbol_json_loads_or_fails_clearly(data):
    text = _net().tojson()
    doc = json.loads(text)
    node = data.draw(st.sampled_from(doc["nodes"]))
    field = data.draw(st.sampled_from(["op", "name", "inputs", "params", "attrs", "heads", "drop"]))
    junk = data.draw(st.one_of(st.none(), st.integers(-3, 10 ** 12), st.text(max_size=8),
                               st.lists(st.integers(-2, 9), max_size=3),
                               st.lists(st.lists(st.one_of(st.integers(-2, 9), st.booleans(), st.floats(-1, 9)),
                                                 max_size=3), max_size=3),
                               st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)))
    if field == "heads":
        doc["heads"] = junk
    elif field == "drop":
        doc["nodes"].remove(node)
    else:
        node[field] = junk
    FUZZ_CASES["symbol"] += 1
    try:
        sym = S.load_json(json.dumps(doc))
    except TritonSymError:
        return
    sym.list_arguments()  # whatever loaded is a usable symbol
    sym.tojson()


def test_absurd_shapes_are_refused_before_allocating():
    text = S.FullyConnected(S.Variable("data", shape=(10 ** 7, 10 ** 6)), name="fc", num_hidden=10 ** 6).tojson()
    net = S.load_json(text)
    with pytest.raises(BindError, match=r"the workspace needs [\d,.]+ MiB \(float32 arena .*\) but only [\d,.]+ MiB "
                                        rf"are free on {ts.cpu().torch_device}"):
        net.simple_bind(ts.cpu())
