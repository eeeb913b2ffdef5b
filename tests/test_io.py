"""NDArrayIter's batching modes, the MNIST IDX reader, and the bundled digits."""

import gzip
import struct

import numpy as np
import pytest
import torch
from property_settings import given, property_settings, settings, st

import tritonsym as ts
from tritonsym import FormatError, ParamError
from tritonsym.io import NDArrayIter


def _epoch(it):
    return [(b.label[0].tolist(), b.pad) for b in it]


def test_pad_discard_roll_over():
    x, y = np.arange(10.0).reshape(10, 1), np.arange(10)
    assert _epoch(NDArrayIter(x, y, batch_size=4)) == [([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0), ([8, 9, 0, 1], 2)]
    assert _epoch(NDArrayIter(x, y, batch_size=4, last_batch_handle="discard")) == [([0, 1, 2, 3], 0),
                                                                                     ([4, 5, 6, 7], 0)]
    roll = NDArrayIter(x, y, batch_size=4, last_batch_handle="roll_over")
    assert _epoch(roll) == [([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0)]
    roll.reset()  # 8 and 9 start the next epoch, which then has 12 samples: 3 batches
    assert _epoch(roll) == [([8, 9, 0, 1], 0), ([2, 3, 4, 5], 0), ([6, 7, 8, 9], 0)]
    roll.reset()
    assert _epoch(roll) == [([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0)]


def test_a_reset_before_the_end_of_an_epoch_carries_nothing_over():
    """roll_over carries only the leftover of an epoch read to its end: ``reset()`` on a
    fresh iterator (a training loop that resets first) or in mid-epoch starts over."""
    x, y = np.arange(10.0).reshape(10, 1), np.arange(10)
    roll = NDArrayIter(x, y, batch_size=4, last_batch_handle="roll_over")
    roll.reset()
    assert _epoch(roll) == [([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0)]
    roll.reset()
    roll.next()  # cut short: 4..9 are not carried
    roll.reset()
    assert _epoch(roll) == [([0, 1, 2, 3], 0), ([4, 5, 6, 7], 0)]
    exact = NDArrayIter(x[:9], y[:9], batch_size=3, last_batch_handle="roll_over")
    exact.next(), exact.next()
    exact.reset()  # a whole batch (6, 7, 8) unread: the epoch was cut short, nothing is carried
    assert _epoch(exact) == [([0, 1, 2], 0), ([3, 4, 5], 0), ([6, 7, 8], 0)]


def _expected_epochs(n, batch_size, handle, reads):
    """The (labels, pad) of every batch of each epoch, written from the documented semantics
    (no shuffle): ``reads[e]`` batches are read (None: to the end) before each reset."""
    carry, epochs = [], []
    for wanted in reads:
        stream, position, batches = carry + list(range(n)), 0, []
        while wanted is None or len(batches) < wanted:
            rest = len(stream) - position
            if rest <= 0 or (rest < batch_size and handle != "pad"):
                break
            labels = stream[position:position + batch_size]
            pad = batch_size - len(labels)
            labels += [stream[k % len(stream)] for k in range(pad)]  # padded from the epoch's start
            batches.append((labels, pad))
            position += batch_size
        epochs.append(batches)
        leftover = stream[position:]
        carry = leftover if handle == "roll_over" and len(leftover) < batch_size else []
    return epochs


@settings(**property_settings(60))
@given(st.integers(1, 13), st.integers(1, 6), st.sampled_from(["pad", "discard", "roll_over"]),
       st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=1, max_size=5))
def test_batches_follow_the_semantics_over_epochs_cut_short_or_not(n, batch_size, handle, reads):
    if handle == "discard" and n < batch_size:
        return  # refused at construction (test_errors)
    x = np.arange(n, dtype=np.float64)[:, None] * np.array([[1.0, -2.0]])
    it = NDArrayIter(x, np.arange(n), batch_size=batch_size, last_batch_handle=handle)
    for epoch, expected in enumerate(_expected_epochs(n, batch_size, handle, reads)):
        got = []
        while reads[epoch] is None or len(got) < reads[epoch]:
            batch = it.next()
            if batch is None:
                break
            labels = batch.label[0]
            assert torch.equal(batch.data[0], torch.from_numpy(x[labels.numpy()]).float()), "rows follow labels"
            got.append((labels.tolist(), batch.pad))
        assert got == expected, f"epoch {epoch}"
        it.reset()


def test_every_sample_once_per_epoch_when_shuffled():
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    ts.random.seed(4)
    it = NDArrayIter(x, y, batch_size=3, shuffle=True)
    first = [b for b in it]
    seen = np.concatenate([b.label[0].cpu().numpy()[:3 - b.pad] for b in first])
    assert sorted(seen) == list(range(10)) and seen.tolist() != list(range(10))
    for b in first:  # data rows travel with their labels
        assert torch.equal(b.data[0][:, 0], 2.0 * b.label[0])
    it.reset()
    second = np.concatenate([b.label[0].cpu().numpy()[:3 - b.pad] for b in it])
    assert sorted(second) == list(range(10)) and second.tolist() != seen.tolist()  # a new order per epoch
    ts.random.seed(4)
    again = [b.label[0].tolist() for b in NDArrayIter(x, y, batch_size=3, shuffle=True)]
    assert again == [b.label[0].tolist() for b in first]  # the seed fixes the order


def test_descs_dtypes_and_named_inputs():
    it = NDArrayIter({"a": np.ones((5, 2, 3), np.float64), "b": np.ones((5, 4))}, {"lab": np.arange(5, dtype=np.uint8)},
                     batch_size=2)
    assert it.provide_data == [ts.io.DataDesc("a", (2, 2, 3), torch.float32), ts.io.DataDesc("b", (2, 4),
                                                                                            torch.float32)]
    assert it.provide_label == [ts.io.DataDesc("lab", (2,), torch.int64)]
    assert NDArrayIter(np.zeros((3, 1)), np.zeros(3), dtype="float64").provide_label[0].dtype == torch.float64
    assert NDArrayIter(np.zeros((3, 1), np.uint8)).provide_data[0].dtype == torch.float32  # pixels become floats


def test_lists_plain_sequences_and_dtype_none():
    """MXNet's names for arrays given in a list (one keeps the plain name, several are
    ``_0_data``, ``_1_data``); nested Python lists are arrays too; ``dtype=None`` keeps
    each array's own floating type."""
    x = np.arange(12.0).reshape(6, 2)
    one = NDArrayIter([x], [np.arange(6)], batch_size=3)
    assert [d.name for d in one.provide_data] == ["data"] and [d.name for d in one.provide_label] == ["softmax_label"]
    two = NDArrayIter([x, np.ones((6, 5))], [np.arange(6), np.zeros(6)], batch_size=3)
    assert [(d.name, d.shape) for d in two.provide_data] == [("_0_data", (3, 2)), ("_1_data", (3, 5))]
    assert [d.name for d in two.provide_label] == ["_0_softmax_label", "_1_softmax_label"]
    plain = NDArrayIter({"data": x.tolist()}, {"softmax_label": [0, 1, 2, 3, 4, 5]}, batch_size=4)
    batch = plain.next()
    assert torch.equal(batch.data[0].cpu(), torch.tensor(x[:4], dtype=torch.float32).cpu())
    assert batch.label[0].tolist() == [0, 1, 2, 3] and batch.label[0].dtype == torch.int64
    kept = NDArrayIter(x, np.arange(6) / 2, batch_size=3, dtype=None)
    assert [d.dtype for d in kept.provide_data + kept.provide_label] == [torch.float64, torch.float64]
    assert NDArrayIter(torch.arange(6.0).reshape(6, 1).half(), dtype=None).provide_data[0].dtype == torch.float16
    targets = NDArrayIter(x, np.full((6, 3), 1 / 3), batch_size=4)  # probability targets: a label per class
    assert targets.provide_label == [ts.io.DataDesc("softmax_label", (4, 3), torch.float32)]
    assert repr(targets) == ("NDArrayIter(6 samples, batch 4, shuffle=False, last_batch_handle='pad': data (4, 2) "
                             "float32, softmax_label (4, 3) float32)")


def test_parts_split_the_samples():
    x = np.arange(10.0).reshape(10, 1)
    parts = [NDArrayIter(x, batch_size=1, num_parts=3, part_index=k).num_data for k in range(3)]
    assert parts == [3, 3, 3]  # equal parts: every worker runs as many batches
    assert NDArrayIter(x, batch_size=1, num_parts=3, part_index=2).next().data[0].item() == 6.0


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size=0 must be a positive integer"),
    (dict(last_batch_handle="wrap"), "last_batch_handle='wrap' must be one of pad, discard, roll_over"),
    (dict(label=np.zeros(4)), r"same number of samples, got \{'data': 5, 'softmax_label': 4\}"),
    (dict(batch_size=6, last_batch_handle="discard"), "make no full batch of 6"),
    (dict(num_parts=2, part_index=2), r"part_index=2 must be in \[0, num_parts=2\)"),
])
def test_errors(kwargs, message):
    with pytest.raises(ParamError, match=message):
        NDArrayIter(np.zeros((5, 2)), **kwargs)


def test_values_a_half_dtype_cannot_hold_are_named():
    data = np.zeros((5, 2))
    data[3, 1] = -7e4
    with pytest.raises(ParamError, match=r"NDArrayIter: 'data' has 1 value\(s\) beyond the range of float16 "
                                         r"\(largest magnitude 70000; float16 holds up to 65504\)"):
        NDArrayIter(data, dtype="float16")
    assert NDArrayIter(data, dtype="bfloat16").next().data[0].dtype == torch.bfloat16  # bfloat16 holds 7e4
    data[0, 0] = np.inf  # an inf given is no overflow
    with pytest.raises(ParamError, match="has 1 value"):
        NDArrayIter(data, dtype="float16")


def _idx(array: np.ndarray, type_byte: int) -> bytes:
    return bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _write_mnist(folder, n_train=6, n_test=4, gz=True):
    rng = np.random.default_rng(0)
    files = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
             "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
             "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8)}
    for name, array in files.items():
        raw = _idx(array, 0x08)
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(raw) if gz else raw)
    return files


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reader(tmp_path, gz):
    files = _write_mnist(tmp_path, gz=gz)
    m = ts.io.load_mnist(str(tmp_path))
    np.testing.assert_array_equal(m["train_images"], files["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(m["test_labels"], files["t10k-labels-idx1-ubyte"])
    big_endian = np.arange(6, dtype=">i4").reshape(2, 3)
    (tmp_path / "ints").write_bytes(_idx(big_endian, 0x0C))
    np.testing.assert_array_equal(ts.io.read_idx(str(tmp_path / "ints")), np.arange(6).reshape(2, 3))


def test_mnist_reader_rejects_bad_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(FormatError, match="not an IDX file"):
        ts.io.read_idx(str(tmp_path / "junk"))
    raw = _idx(np.zeros((3, 28, 28), np.uint8), 0x08)
    (tmp_path / "short").write_bytes(raw[:-10])
    with pytest.raises(FormatError, match=r"shape \(3, 28, 28\) of uint8 needs 2368 bytes, the file has 2358"):
        ts.io.read_idx(str(tmp_path / "short"))
    (tmp_path / "badgz").write_bytes(gzip.compress(raw)[:40])
    with pytest.raises(FormatError, match="not a readable gzip file"):
        ts.io.read_idx(str(tmp_path / "badgz"))
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.* not found"):
        ts.io.load_mnist(str(tmp_path))


def test_bundled_digits():
    images, labels = ts.io.load_digits()
    assert images.shape == (1797, 64) and labels.shape == (1797,)
    assert images.dtype == np.uint8 and images.max() == 16 and images.min() == 0
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    train, val = ts.io.split(1797, 0.2)
    assert len(val) == 359 and len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 1797
