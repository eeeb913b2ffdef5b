"""Data-parallel training on torch.distributed: Gloo, 2 processes, a file:// rendezvous in a
temporary folder, bounded timeouts (the issue's tests), and the local store's surface."""

import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import tritonsym as ts
from tritonsym.kvstore import KVStoreError

WORKER = pathlib.Path(__file__).with_name("dist_worker.py")


# The workers bind on cpu() over gloo, also on a machine with a GPU: there NCCL would put
# every rank on the one GPU, which it refuses ("Duplicate GPU detected").
WORKER_ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def _run(tmp_path, world, tag, ranks=None, **options):
    """Start the workers of one job (``ranks``: which of them to start) and wait for them."""
    init = f"file://{tmp_path}/rendezvous-{tag}"
    procs = []
    for rank in ranks if ranks is not None else range(world):
        argv = [sys.executable, str(WORKER), "--rank", str(rank), "--world", str(world), "--init", init,
                "--out", str(tmp_path / f"{tag}-{rank}")]
        for key, value in options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=WORKER_ENV))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        results.append((proc.returncode, out, err))
    return results


def _params(tmp_path, name):
    return ts.model.load_params(str(tmp_path / f"{name}.safetensors"))[0]


@pytest.mark.slow  # 10 s: three processes (the quick run stays under 5 minutes)
@pytest.mark.cpu_only  # two workers on one GPU: NCCL needs a device per worker
def test_two_workers_on_half_batches_equal_one_process_on_the_full_batch(tmp_path):
    start = time.perf_counter()
    for rc, _, err in _run(tmp_path, 2, "dp"):
        assert rc == 0, err
    two = time.perf_counter() - start
    (rc, _, err), = _run(tmp_path, 1, "single")
    assert rc == 0, err
    single, rank0, rank1 = (_params(tmp_path, n) for n in ("single-0", "dp-0", "dp-1"))
    for name, value in single.items():
        assert torch.equal(rank0[name], rank1[name]), f"{name}: the workers disagree"
        torch.testing.assert_close(rank0[name], value, rtol=1e-13, atol=1e-15, msg=name)
    stats = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in ("single-0", "dp-0")}
    assert stats["dp-0"]["num_update"] == stats["single-0"]["num_update"] == 3
    print(f"seconds per step: 1 process {sum(stats['single-0']['step_seconds']) / 2:.3f}, "
          f"2 processes {sum(stats['dp-0']['step_seconds']) / 2:.3f} (job {two:.1f} s)")


@pytest.mark.slow  # two worker processes: 8 s
@pytest.mark.cpu_only  # two workers on one GPU: NCCL needs a device per worker
def test_small_and_large_buckets_give_identical_results(tmp_path):
    for tag, size in (("small", 64), ("large", 1 << 30)):
        for rc, _, err in _run(tmp_path, 2, tag, bucket_bytes=size):
            assert rc == 0, err
    small, large = _params(tmp_path, "small-0"), _params(tmp_path, "large-0")
    assert all(torch.equal(small[n], large[n]) for n in small)


@pytest.mark.slow  # waits out a 5 s rendezvous timeout
def test_a_worker_that_never_joins_fails_the_others_within_the_timeout(tmp_path):
    start = time.perf_counter()
    (rc, _, err), = _run(tmp_path, 2, "alone", ranks=[0], timeout=5)
    elapsed = time.perf_counter() - start
    assert rc != 0 and "rank 0 could not join the 2 workers" in err and "is every rank started" in err
    assert elapsed < 60, f"took {elapsed:.0f} s"


@pytest.mark.slow  # two worker processes (3 s); CI runs -m slow
def test_workers_with_different_networks_are_told_so(tmp_path):
    init = f"file://{tmp_path}/rendezvous-mismatch"
    procs = [subprocess.Popen([sys.executable, str(WORKER), "--rank", str(r), "--world", "2", "--init", init,
                               "--out", str(tmp_path / f"m-{r}"), "--hidden", str(16 + r), "--timeout", "30"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=WORKER_ENV)
             for r in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode != 0 and "workers [1] bound a different network or gradient buckets" in err


def test_local_store_surface():
    kv = ts.kv.create("local")
    assert (kv.rank, kv.num_workers, kv.type) == (0, 1, "local")
    kv.init([3, 4], [torch.zeros(2), torch.ones(4)])
    kv.push(3, [torch.ones(2), torch.full((2,), 2.0)])
    out = torch.empty(2)
    kv.pull(3, out=out)
    assert out.tolist() == [3.0, 3.0]
    named = ts.kv.create("local")
    named.init("b", torch.ones(4))
    value = torch.full((4,), 5.0)
    named.pushpull("b", value)
    assert value.tolist() == [5.0] * 4
    with pytest.raises(KVStoreError, match="key 'x' is a str, but this store's keys are ints; one store does not mix"):
        kv.init("x", torch.zeros(1))
    kv.barrier()
    with pytest.raises(KVStoreError, match="key 'c' was never init"):
        kv.push("c", torch.zeros(1))
    with pytest.raises(KVStoreError, match=r"shape \(3,\) does not match the stored \(2,\)"):
        kv.push(3, torch.zeros(3))
    with pytest.raises(KVStoreError, match=r"kvstore.push\(3\): the values have different shapes \[\(2,\), \(3,\)\]"):
        kv.push(3, [torch.zeros(2), torch.zeros(3)])
    for values in (torch.zeros(2), [torch.zeros(2)]):
        with pytest.raises(KVStoreError, match="kvstore.init: 2 keys need a list of 2 values"):
            kv.init([7, 8], values)
    with pytest.raises(KVStoreError, match="kvstore.init: key 3 is already initialized"):
        kv.init(3, torch.zeros(2))
    with pytest.raises(KVStoreError, match="kvstore.pull: give out="):
        kv.pull(3)
    with pytest.raises(KVStoreError, match="kvstore.set_optimizer: tritonsym runs the optimizer on every worker"):
        kv.set_optimizer(ts.optimizer.SGD())
    with pytest.raises(KVStoreError, match="'dist_async' is not supported"):
        ts.kv.create("dist_async")
    with pytest.raises(KVStoreError, match="unknown type 'nccl'"):
        ts.kv.create("nccl")


def test_init_stores_rank_0s_value_and_push_sums_over_the_workers():
    """What ``init`` and ``push`` ask of the collectives: a store whose broadcast gives every
    worker rank 0's value and whose all-reduce sums two workers (this one and its twin)."""

    class Rank1(ts.kv.KVStore):
        def broadcast(self, tensor):
            tensor.fill_(7.0)  # rank 0 initialized 7s

        def all_reduce(self, tensor):
            tensor.mul_(2)  # the other worker pushed the same

    kv = Rank1()
    mine = torch.ones(3)
    kv.init("w", mine)
    out = torch.empty(3)
    kv.pull("w", out=out)
    assert out.tolist() == [7.0] * 3 and mine.tolist() == [1.0] * 3  # the value handed in is left alone
    kv.pushpull("w", [torch.ones(3), torch.ones(3)], out=out)
    assert out.tolist() == [4.0] * 3  # (1 + 1) here, doubled over the workers


@pytest.mark.slow  # torchrun and two training processes: 7 s
@pytest.mark.cpu_only  # two workers on one GPU: NCCL needs a device per worker
def test_train_command_under_torchrun(tmp_path):
    prefix = tmp_path / "ckpt"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "-m", "tritonsym", "train", "--kvstore", "dist_sync", "--epochs", "2", "--no-progress",
                             "--save", str(prefix)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "kvstore: dist_sync, 2 workers, global batch 256, 719 training samples per worker" in out
    assert out.count("Epoch[1] Validation-accuracy=") == 1  # rank 0 reports, rank 1 trains quietly
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ckpt")) == [
        "ckpt-0001.safetensors", "ckpt-0001.states.safetensors", "ckpt-0002.safetensors",
        "ckpt-0002.states.safetensors", "ckpt-symbol.json"]


def _trained(tmp_path, name: str, options: list[str], workers: int) -> dict:
    """The parameters ``tritonsym train --model transformer OPTIONS --save NAME`` ends with,
    in one process or under torchrun with ``workers`` processes; and its output."""
    from safetensors.numpy import load_file

    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={workers}"] if workers > 1 else []
    argv = [sys.executable, *launcher, "-m", "tritonsym", "train", "--model", "transformer", "--no-progress",
            "--save", name, *options] + (["--kvstore", "dist_sync"] if workers > 1 else [])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    epochs = options[options.index("--epochs") + 1]
    return load_file(str(tmp_path / f"{name}-{int(epochs):04d}.safetensors")), result.stdout


@pytest.mark.slow  # four small transformer runs, two under torchrun: 40 s
@pytest.mark.cpu_only  # two workers on one GPU: NCCL needs a device per worker
@pytest.mark.parametrize("job", ["task", "text"])
def test_the_transformer_on_two_workers_steps_as_one_process_on_the_whole_batch(tmp_path, job):
    """SGD (the update is linear in the gradient): two workers reading 8 rows of each batch
    end with the parameters of one process reading all 16, up to the rounding of the sum."""
    options = ["--width", "16", "--layers", "1", "--heads", "2", "--optimizer", "sgd", "--lr", "0.2"]
    if job == "task":
        options += ["--examples", "64", "--lengths", "3,4", "--epochs", "2"]
    else:
        (tmp_path / "t.txt").write_text("the quick brown fox jumps over the lazy dog. " * 12)
        options += ["--text", "t.txt", "--context", "12", "--epochs", "1", "--sample-length", "4"]
    one, _ = _trained(tmp_path, "one", options + ["--batch-size", "16"], workers=1)
    two, out = _trained(tmp_path, "two", options + ["--batch-size", "8"], workers=2)
    assert "kvstore: dist_sync, 2 workers, global batch 16 (each worker reads its 8 rows of every batch)" in out
    assert out.count("Epoch[0] Validation-accuracy=") == 1  # the first worker reports, the other trains quietly
    assert (tmp_path / "two-transformer.safetensors").exists()
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=0, atol=1e-6, err_msg=name)
