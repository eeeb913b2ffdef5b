"""MXNet 1.x checkpoints in and out: a checkpoint saved by real MXNet 1.9.1
(tests/data/mxnet_checkpoint, recorded by scripts/record_mxnet_checkpoint.py) loads and
predicts what MXNet predicted; tritonsym writes the same format back; broken files are
named errors."""

import json
import pathlib
import shutil
import struct

import numpy as np
import pytest
import torch

import tritonsym as ts
from tritonsym import mxnet_format
from tritonsym.base import FormatError

DATA = pathlib.Path(__file__).resolve().parent / "data" / "mxnet_checkpoint"
EXPECTED = np.load(DATA / "expected.npz")


def _predict(mod, probe):
    mod.bind([("data", probe.shape)], None, for_training=False)
    mod.forward(ts.io.DataBatch([torch.from_numpy(probe)]), is_train=False)
    return mod.get_outputs()[0].numpy()


def test_an_mxnet_checkpoint_loads_and_predicts_what_mxnet_predicted():
    sym, args, aux = ts.model.load_checkpoint(str(DATA / "mlp"), 2)
    assert sorted(args) == ["fc1_bias", "fc1_weight", "fc2_bias", "fc2_weight"] and aux == {}
    assert args["fc1_weight"].dtype == torch.float32 and tuple(args["fc1_weight"].shape) == (16, 10)
    mod = ts.mod.Module.load(str(DATA / "mlp"), 2)
    np.testing.assert_allclose(_predict(mod, EXPECTED["probe"]), EXPECTED["probabilities"], rtol=1e-5, atol=1e-6)


def test_an_mxnet_checkpoint_with_batch_norm_loads_its_moving_statistics_and_predicts_the_same(tmp_path):
    """MXNet's JSON for BatchNorm and its auxiliary states (aux:bn1_moving_mean ...) load;
    inference uses the moving statistics MXNet trained, so the predictions agree."""
    sym, args, aux = ts.model.load_checkpoint(str(DATA / "batchnorm"), 2)
    assert sym.list_auxiliary_states() == ["bn1_moving_mean", "bn1_moving_var"]
    assert sorted(aux) == ["bn1_moving_mean", "bn1_moving_var"] and "bn1_gamma" in args
    assert sym.attr_dict()["bn1"]["momentum"] == "0.8" and sym.attr_dict()["bn1"]["fix_gamma"] == "False"
    assert not torch.equal(aux["bn1_moving_var"].cpu(), torch.ones(16).cpu())  # trained, not their starting values
    mod = ts.mod.Module.load(str(DATA / "batchnorm"), 2)
    np.testing.assert_allclose(_predict(mod, EXPECTED["probe"] * 3.0 + 5.0), EXPECTED["batchnorm_probabilities"],
                               rtol=1e-5, atol=1e-6)
    ts.model.save_mxnet_checkpoint(str(tmp_path / "back"), 2, sym, args, aux)  # and back out, to the same bytes
    assert (tmp_path / "back-0002.params").read_bytes() == (DATA / "batchnorm-0002.params").read_bytes()


def test_a_checkpoint_written_in_mxnet_format_reads_back_bit_for_bit(tmp_path):
    sym, args, aux = ts.model.load_checkpoint(str(DATA / "mlp"), 2)
    prefix = str(tmp_path / "back")
    ts.model.save_mxnet_checkpoint(prefix, 2, sym, args, aux)
    # The same bytes as MXNet's own file: same layout, names and order.
    assert (tmp_path / "back-0002.params").read_bytes() == (DATA / "mlp-0002.params").read_bytes()
    again, args2, _ = ts.model.load_checkpoint(prefix, 2)
    assert again.list_arguments() == sym.list_arguments()
    assert all(torch.equal(args[k], args2[k]) for k in args)
    written = json.loads((tmp_path / "back-symbol.json").read_text())
    assert [n["op"] for n in written["nodes"]] == [n["op"] for n in json.loads(
        (DATA / "mlp-symbol.json").read_text())["nodes"]]


def test_every_dtype_mxnet_stores_round_trips(tmp_path):
    tensors = {f"arg:{np.dtype(t).name}": torch.from_numpy((np.arange(6) - 2).astype(t).reshape(2, 3))
               for t in mxnet_format.DTYPES.values()}
    tensors["aux:scalar_row"] = torch.tensor([1.5])
    mxnet_format.write_params(str(tmp_path / "all.params"), tensors)
    back = mxnet_format.read_params(str(tmp_path / "all.params"))
    assert list(back) == list(tensors)
    assert all(back[k].dtype == v.dtype and torch.equal(back[k].cpu(), v.cpu()) for k, v in tensors.items())


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:40], "truncated"),
    (lambda b: b[:-3], "truncated"),
    (lambda b: b"PK\x03\x04" + b[4:], "not an MXNet .params file"),
    (lambda b: b[:24] + struct.pack("<I", 0xDEADBEEF) + b[28:], "not an MXNet array"),
    (lambda b: b[:16] + struct.pack("<Q", 10**12) + b[24:], "more than its"),
    (lambda b: b + b"extra", "bytes after the last name"),
])
def test_a_broken_params_file_is_a_named_error(tmp_path, damage, message):
    shutil.copy(DATA / "mlp-symbol.json", tmp_path / "mlp-symbol.json")
    (tmp_path / "mlp-0002.params").write_bytes(damage((DATA / "mlp-0002.params").read_bytes()))
    with pytest.raises(FormatError, match=message) as raised:
        ts.model.load_checkpoint(str(tmp_path / "mlp"), 2)
    assert "mlp-0002.params" in str(raised.value)
