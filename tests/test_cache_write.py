"""CacheWrite (the key and value cache of decoding) and RotaryEmbedding at run-time positions:
the slots written and nothing else, as a ring; the gradient read back from them; an invalid
position poisoning its row instead of writing a slot nobody meant; the output being the
auxiliary state itself; errors. Every dtype, NaN and finite differences: the generic
operator cases (``tests/operator_cases.py``, ``cache_write_*``, ``rotary_at_positions``).
That decoding with the caches equals the training network: ``tests/test_transformer.py``."""

from __future__ import annotations

import numpy as np
import oracles as o
import pytest
import torch
from tolerances import DTYPE_IDS, DTYPES, to_numpy
from tritonsym.ops import cache_write as kernels
from tritonsym.ops import rotary
from tritonsym.ops._common import KernelArgumentError, run

import tritonsym as ts

S = ts.sym


def _step(rng, dtype, batch=3, heads=2, steps=2, cache_len=5, dim=4):
    """Split heads (a transposed view, as attention's inputs), a cache, positions that wrap."""
    data = torch.from_numpy(rng.normal(size=(batch, steps, heads, dim))).to(dtype).transpose(1, 2)
    cache = torch.from_numpy(rng.normal(size=(batch, heads, cache_len, dim))).to(dtype)
    return data, cache, torch.tensor([0, 4, 12][:batch])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_a_write_fills_its_slots_bit_for_bit_and_leaves_the_others(dtype, rng):
    data, cache, position = _step(rng, dtype)
    before = cache.clone()
    run(kernels.plan_cache_write(data, cache, position, axis=2))
    want = o.cache_write(to_numpy(data), to_numpy(before), position.numpy(), 2)
    assert torch.equal(cache, torch.from_numpy(want).to(dtype))  # copied, not computed: exact
    # Row 1 starts at slot 4 and wraps: its second entry is in slot 0, slots 1-3 keep theirs.
    assert torch.equal(cache[1, :, 0], data[1, :, 1]) and torch.equal(cache[1, :, 1:4], before[1, :, 1:4])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("accumulate", [False, True], ids=["write", "add"])
def test_the_gradient_reads_the_written_slots_back(dtype, accumulate, rng):
    data, head, position = _step(rng, dtype)
    grad = torch.from_numpy(rng.normal(size=(3, 2, 2, 4))).to(dtype).transpose(1, 2)  # strided too
    start = grad.clone()
    run(kernels.plan_cache_write(grad, head, position, axis=2, gather=True, accumulate=accumulate))
    want = o.cache_write_grad(to_numpy(head), position.numpy(), 2, 2) + (to_numpy(start) if accumulate else 0)
    np.testing.assert_allclose(to_numpy(grad), want, rtol=0 if not accumulate else 1e-2, atol=0)


@pytest.mark.parametrize("bad", [float("nan"), -1.0, 1.5, float("inf")])
def test_an_invalid_position_fills_its_rows_cache_with_nan(bad, rng):
    data, cache, _ = _step(rng, torch.float32)
    before = cache.clone()
    position = torch.tensor([2.0, bad, 0.0])
    run(kernels.plan_cache_write(data, cache, position, axis=2))
    assert cache[1].isnan().all(), "the row of the bad position must say so everywhere"
    assert not cache[[0, 2]].isnan().any()
    assert torch.equal(cache[0, :, 2:4], data[0]) and torch.equal(cache[0, :, :2], before[0, :, :2])
    grad = torch.zeros(data.shape)
    run(kernels.plan_cache_write(grad, before, position, axis=2, gather=True))
    assert grad[1].isnan().all() and not grad[[0, 2]].isnan().any()


def test_integer_positions_and_a_write_as_long_as_the_cache(rng):
    data = torch.from_numpy(rng.normal(size=(2, 4, 3))).float()
    cache = torch.zeros(2, 4, 3)
    position = torch.tensor([0, 7], dtype=torch.int32)  # row 1 starts at slot 3 and wraps
    run(kernels.plan_cache_write(data, cache, position, axis=1))
    assert torch.equal(cache[0], data[0]) and torch.equal(cache[1], data[1].roll(3, 0))


def test_errors_name_the_argument_and_the_values():
    data, cache, position = torch.zeros(2, 3, 4), torch.zeros(2, 5, 4), torch.zeros(2)
    with pytest.raises(KernelArgumentError, match="axis=0 is not a cache axis"):
        kernels.plan_cache_write(data, cache, position, axis=0)
    with pytest.raises(KernelArgumentError, match=r"data holds 3 entries along axis 1, more than the cache's 2"):
        kernels.plan_cache_write(data, torch.zeros(2, 2, 4), position, axis=1)
    with pytest.raises(KernelArgumentError, match=r"cache of shape \(2, 5, 3\) must equal data's"):
        kernels.plan_cache_write(data, torch.zeros(2, 5, 3), position, axis=1)
    with pytest.raises(KernelArgumentError, match="must have data's dtype"):
        kernels.plan_cache_write(data, cache.double(), position, axis=1)
    with pytest.raises(KernelArgumentError, match="cache of shape .* must be contiguous"):
        kernels.plan_cache_write(data, torch.zeros(2, 4, 5).transpose(1, 2), position, axis=1)
    with pytest.raises(KernelArgumentError, match=r"position must be contiguous of shape \(2,\)"):
        kernels.plan_cache_write(data, cache, torch.zeros(3), axis=1)
    with pytest.raises(KernelArgumentError, match="share memory"):
        kernels.plan_cache_write(cache[:, :3], cache, position, axis=1)


def test_the_output_is_the_auxiliary_state_and_a_repeated_forward_changes_nothing(rng):
    net = S.CacheWrite(S.Variable("data"), S.Variable("cache", shape=(2, 6, 3)), S.Variable("position"), axis=1,
                       name="kv")
    assert net.list_arguments() == ["data", "position"] and net.list_auxiliary_states() == ["cache"]
    exe = net.simple_bind(ts.cpu(), data=(2, 2, 3), grad_req="null")
    assert exe.outputs[0].data_ptr() == exe.aux_dict["cache"].data_ptr()  # a view: no copy, no memory
    x = rng.normal(size=(2, 2, 3))
    first = exe.forward(data=x, position=np.array([5.0, 1.0]))[0].clone()
    again = exe.forward(data=x, position=np.array([5.0, 1.0]))[0]
    assert torch.equal(first, again)
    np.testing.assert_array_equal(first[0, [5, 0]].numpy(), x[0].astype(np.float32))
    np.testing.assert_array_equal(first[1, 1:3].numpy(), x[1].astype(np.float32))


def test_bind_errors_name_the_node():
    net = S.CacheWrite(S.Variable("data"), S.Variable("cache"), S.Variable("position"), axis=1, name="kv")
    with pytest.raises(ts.base.ShapeError, match="cannot infer the shape of cache"):
        net.simple_bind(ts.cpu(), data=(2, 3, 4), grad_req="null")
    with pytest.raises(ts.base.ShapeError, match=r"kv.*data holds 3 entries along axis 1, more than the cache's 2"):
        net.simple_bind(ts.cpu(), data=(2, 3, 4), cache=(2, 2, 4), grad_req="null")
    with pytest.raises(ts.base.ShapeError, match=r"kv.*cache \(2, 5, 3\) must equal data \(2, 3, 4\) but along"):
        net.simple_bind(ts.cpu(), data=(2, 3, 4), cache=(2, 5, 3), grad_req="null")
    with pytest.raises(ts.base.ShapeError, match="kv.*axis=0 is not a cache axis"):
        S.CacheWrite(S.Variable("data"), S.Variable("cache"), S.Variable("position"), axis=0, name="kv"
                     ).simple_bind(ts.cpu(), data=(2, 3, 4), cache=(2, 5, 4), grad_req="null")


# ------------------------------------------------------------- RotaryEmbedding at positions


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_rotary_at_positions_equals_each_rows_offset(dtype, rng):
    x = torch.from_numpy(rng.normal(size=(3, 2, 4, 8))).to(dtype)
    position = torch.tensor([0.0, 9.0, 2.0])
    out = torch.empty_like(x)
    run(rotary.plan_rotary(x, out, axis=2, offset=1, position=position))
    for b, p in enumerate((0, 9, 2)):
        want = torch.empty_like(x[b:b + 1])
        run(rotary.plan_rotary(x[b:b + 1], want, axis=2, offset=1 + p))
        assert torch.equal(out[b:b + 1], want)


def test_rotary_at_an_invalid_position_is_nan_on_its_rows_only(rng):
    x = torch.from_numpy(rng.normal(size=(3, 2, 4, 8))).float()
    out = torch.empty_like(x)
    run(rotary.plan_rotary(x, out, axis=2, position=torch.tensor([1.0, -2.0, float("nan")])))
    assert not out[0].isnan().any() and out[1:].isnan().all()


def test_rotary_positions_are_one_per_batch_row():
    with pytest.raises(KernelArgumentError, match=r"position must be contiguous of shape \(3,\)"):
        rotary.plan_rotary(torch.zeros(3, 4, 8), None, axis=1, position=torch.zeros(4))
    with pytest.raises(KernelArgumentError, match="position axis 0 must be another"):
        rotary.plan_rotary(torch.zeros(3, 4, 8), None, axis=0, position=torch.zeros(3))
    with pytest.raises(ts.base.ShapeError, match="use_position: the positions are one per batch row"):
        S.RotaryEmbedding(S.Variable("data"), S.Variable("p"), axis=0, use_position=True).simple_bind(
            ts.cpu(), data=(3, 4, 8), grad_req="null")
