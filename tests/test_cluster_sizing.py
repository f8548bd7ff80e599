"""How a cluster pool is sized from the cluster's resources (no Ray needed): one worker per GPU where the
pool runs on GPUs, more sharing them in fractions that pack whole, one per `cores` CPUs otherwise. The
specs are of a cluster elsewhere ("auto"), since a local pool must also fit this machine."""

from __future__ import annotations

import os

import pytest

from vsr.cluster import ClusterSpec, PoolSize, size_pool
from vsr.errors import UsageError


@pytest.mark.parametrize(
    ("spec", "cpus", "gpus", "gpu_backend", "size"),
    [
        (ClusterSpec("auto"), 16, 0, True, PoolSize(16, 1, 0.0)),  # no GPU: one per core
        (ClusterSpec("auto", cores=4), 16, 0, False, PoolSize(4, 4, 0.0)),
        (ClusterSpec("auto", cores=4), 2, 0, False, PoolSize(1, 4, 0.0)),  # one: the cluster may grow
        (ClusterSpec("auto"), 64, 8, True, PoolSize(8, 1, 1.0)),  # one per GPU
        (ClusterSpec("auto"), 64, 8, False, PoolSize(64, 1, 0.0)),  # a CPU backend leaves the GPUs alone
        (ClusterSpec("auto", workers=4), 16, 1, True, PoolSize(4, 1, 0.25)),  # four encoders fed by one GPU
        (ClusterSpec("auto", workers=3), 16, 2, True, PoolSize(3, 1, 0.5)),  # halves: 2/3 strands one
        (ClusterSpec("auto", workers=1), 16, 2, True, PoolSize(1, 1, 1.0)),
        (ClusterSpec("auto", gpus=False), 16, 2, True, PoolSize(16, 1, 0.0)),
        (ClusterSpec("auto", gpus=True, cores=2), 16, 2, False, PoolSize(2, 2, 1.0)),
    ],
)
def test_pool_size(spec: ClusterSpec, cpus: int, gpus: int, gpu_backend: bool, size: PoolSize) -> None:
    assert size_pool(spec, cpus, gpus, gpu_backend) == size


def test_every_worker_fits_the_gpus_it_shares() -> None:
    for whole in (1, 2, 3, 8):
        for workers in range(1, 20):
            share = size_pool(ClusterSpec("auto", workers=workers), 64, whole, True).gpus
            per_gpu = round(1 / share)
            assert per_gpu * whole >= workers and share * per_gpu <= 1.0


def test_gpu_workers_on_a_cluster_without_gpus_are_refused() -> None:
    with pytest.raises(UsageError, match="no GPU"):
        size_pool(ClusterSpec("auto", gpus=True), 16, 0, True)


def test_a_cpu_worker_runs_on_its_own_cores_and_a_gpu_worker_as_asked() -> None:
    from vsr.backends.options import OrtOptions
    from vsr.cluster import SegmentWorker

    def make(_load: object, _job: object) -> None:
        return None

    cpu, gpu = SegmentWorker(make, None, 2, on_gpu=False), SegmentWorker(make, None, 2, on_gpu=True)
    asked = {"name": "espcn-x2", "backend": "auto", "threads": 0}
    assert cpu._on_own_cores(asked)["threads"] == 2
    assert cpu._on_own_cores({**asked, "threads": 1})["threads"] == 1
    assert cpu._on_own_cores({"backend": OrtOptions()})["backend"] == OrtOptions(threads=2)
    assert gpu._on_own_cores(asked) == asked


def test_a_local_pool_larger_than_this_machine_is_refused_before_ray_starts() -> None:
    cores = os.cpu_count() or 1
    with pytest.raises(UsageError, match=f"do not fit this machine's {cores} cores"):
        ClusterSpec(workers=cores + 1)
    with pytest.raises(UsageError, match="do not fit"):
        ClusterSpec(cores=cores + 1)
    assert ClusterSpec("auto", workers=cores + 1).workers == cores + 1  # a cluster elsewhere may grow
