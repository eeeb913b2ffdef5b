"""The memory targets on every network perf/bench_memory.py reports (binding plans memory
without running a kernel, so these are the benchmark's own figures)."""

import bench_memory
import pytest

import tritonsym as ts

NAMES = [n[0] for n in bench_memory.NETWORKS]


@pytest.mark.parametrize("name, make, batch, features", bench_memory.NETWORKS, ids=NAMES)
def test_benchmarked_networks_meet_the_targets(name, make, batch, features):
    net = make()
    train = net.simple_bind(ts.cpu(), data=(batch, features)).memory
    infer = net.simple_bind(ts.cpu(), grad_req="null", data=(batch, features)).memory
    mirror = net.simple_bind(ts.cpu(), mirror=True, data=(batch, features)).memory
    for m in (train, infer, mirror):
        assert m.planned_bytes <= 1.10 * m.lower_bound_bytes
        assert m.planned_bytes == m.schedule_bound_aligned_bytes
    assert mirror.planned_bytes <= train.planned_bytes
    if name.startswith("mlp"):
        hidden = len(name.split()[1].split("-")) - 2
        assert train.planned_bytes == train.schedule_bound_bytes  # every size here is a multiple of the alignment
        # above the unfused schedule's bound by the bias partials of the grad epilogues, no more
        partials = sum(v.nbytes for v in train.values if v.name.endswith("bias partials"))
        assert 0 < train.schedule_bound_bytes - train.lower_bound_bytes <= partials
        if hidden >= 2:
            assert train.planned_bytes <= train.naive_bytes / 2
        if hidden >= 3:
            assert infer.planned_bytes <= infer.naive_bytes / 3
    else:
        assert mirror.planned_bytes < train.planned_bytes
