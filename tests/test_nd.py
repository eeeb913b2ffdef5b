"""tritonsym.nd: MXNet's array constructors returning torch tensors, and its list files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tritonsym as ts
from tritonsym import FormatError, ParamError


def test_constructors_follow_mxnet_dtype_rules():
    assert ts.nd.array([1, 2]).dtype == torch.float32
    assert ts.nd.array(np.arange(3)).dtype == torch.float32  # a numpy array of int64 too
    source = torch.tensor([1, 2], dtype=torch.int32)
    copy = ts.nd.array(source)
    assert copy.dtype == torch.int32 and copy.data_ptr() != source.data_ptr()
    assert ts.nd.full(3, 2.5, dtype="float64").tolist() == [2.5, 2.5, 2.5]
    assert ts.nd.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert ts.nd.arange(0, 1, 0.5, repeat=3).tolist() == [0, 0, 0, 0.5, 0.5, 0.5]
    assert ts.nd.concat(ts.nd.ones((2, 1)), ts.nd.zeros((2, 2))).shape == (2, 3)
    assert ts.nd.zeros_like(ts.nd.ones((2,), dtype="float16")).dtype == torch.float16
    half = ts.nd.asnumpy(ts.nd.ones((2,), dtype="bfloat16"))
    assert half.dtype == np.float32 and half.tolist() == [1.0, 1.0]
    ts.nd.waitall()
    with pytest.raises(ParamError, match="nd.arange: repeat=0 must be a positive integer"):
        ts.nd.arange(3, repeat=0)
    with pytest.raises(ParamError, match="nd: ctx must be tritonsym.cpu"):
        ts.nd.zeros((2,), ctx="gpu")


def test_save_and_load_lists_and_dicts(tmp_path):
    values = [torch.arange(6, dtype=torch.float64).reshape(2, 3), torch.tensor([1, 2], dtype=torch.int32)]
    ts.nd.save(str(tmp_path / "list.nd"), values)
    loaded = ts.nd.load(str(tmp_path / "list.nd"))
    assert isinstance(loaded, list) and all(torch.equal(a.cpu(), b.cpu()) for a, b in zip(loaded, values))
    ts.nd.save(str(tmp_path / "dict.nd"), {"w": values[0]})
    assert torch.equal(ts.nd.load(str(tmp_path / "dict.nd"))["w"], values[0])
    ts.nd.save(str(tmp_path / "one.nd"), values[1])
    assert torch.equal(ts.nd.load(str(tmp_path / "one.nd"))[0], values[1])
    # a list without names is not a checkpoint: loading it as one is refused, naming the file
    with pytest.raises(FormatError, match="list.nd: its arrays have no names"):
        ts.mxnet_format.read_params(str(tmp_path / "list.nd"))
    with pytest.raises(ParamError, match="nd.save: data must be a tensor"):
        ts.nd.save(str(tmp_path / "x.nd"), "text")
