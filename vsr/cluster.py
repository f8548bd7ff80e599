"""A job's segments on a Ray cluster: the same segments, manifest and assembly as `--resume`, encoded by a
pool of Ray actors that each load the model chain once.

    driver: plan keyframe segments (ResumableJob) ──► RayPool.run ──► actors: seek, decode, model, encode
            record each finished segment in the manifest ◄── (index, entry) as they finish, any order
            assemble by stream copy (ResumableJob), exactly as a single-process run

Ray does the scheduling, the restarts of a dead worker and the retry of its segment on the restarted one;
an error of vsr's own (bad input) is not retried and fails the job with the file's error. Parts are written
straight into the parts folder when every node sees it (a local cluster, or --parts-dir on shared
storage), or come back through Ray's object store otherwise.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vsr.errors import UsageError, VsrError
from vsr.files import atomic_write
from vsr.pipeline.job import UpscaleRequest

Log = Callable[[str], None]


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--cluster needs Ray: pip install 'vsr[cluster]'") from None
    return ray


@dataclass(frozen=True)
class ClusterSpec:
    """Where the pool runs: "local" (a Ray instance on this machine, every core), "auto" (the cluster this
    machine belongs to) or "ray://HOST:PORT"; `workers` actors of `cores` CPUs each (and a GPU with
    `gpus`)."""

    address: str = "local"
    workers: int | None = None
    cores: int = 1
    gpus: bool = False
    shared_parts: bool | None = None  # None: shared on a local cluster, through the object store elsewhere

    def __post_init__(self) -> None:
        if self.address not in ("local", "auto") and not self.address.startswith("ray://"):
            raise UsageError(f"--cluster {self.address!r}: use local, auto or ray://HOST:PORT")
        if (self.workers is not None and self.workers < 1) or self.cores < 1:
            raise UsageError("a cluster needs at least one worker of at least one core")


class RayPool:
    """Ray actors that encode segments: each calls `make_runner(load, job)` once (vsr.api passes its own
    function, by reference: the chain loaded with `load`'s keywords of vsr.load_model, run with the job's
    settings) and runs segment requests with what it returns."""

    def __init__(
        self,
        spec: ClusterSpec,
        make_runner: Callable[[dict[str, Any], Any], Any],
        load: dict[str, Any],
        job: Any,
        *,
        log: Log = lambda _m: None,
    ) -> None:
        ray = _ray()
        self.spec, self._ray, self._log = spec, ray, log
        if not ray.is_initialized():
            if spec.address == "local":
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=spec.address, log_to_driver=False)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = spec.workers or max(1, cpus // spec.cores)
        self.shared = spec.address == "local" if spec.shared_parts is None else spec.shared_parts
        worker = ray.remote(
            num_cpus=spec.cores, num_gpus=1 if spec.gpus else 0, max_restarts=3, max_task_retries=3
        )(SegmentWorker)
        self.actors = [worker.remote(make_runner, load, job, spec.cores) for _ in range(workers)]
        log(f"cluster: {workers} workers of {spec.cores} core(s) each on {spec.address}")

    def run(self, segments: Sequence[tuple[int, UpscaleRequest]]) -> Iterator[tuple[int, dict[str, Any]]]:
        """Every segment through the pool, one in flight per actor; (index, entry) as each finishes."""
        ray = self._ray
        queue = list(segments)
        running: dict[Any, tuple[Any, int, UpscaleRequest]] = {}

        def submit(actor: Any) -> None:
            k, sub = queue.pop(0)
            running[actor.encode.remote(k, sub, not self.shared)] = (actor, k, sub)

        for actor in self.actors[: len(queue)]:
            submit(actor)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, k, sub = running.pop(ready[0])
            try:
                entry, data = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:  # vsr's own errors fail the job as they would here
                cause = exc.cause if isinstance(exc.cause, VsrError) else None
                raise (cause or exc) from None
            if data is not None:  # the part came through the object store: write it where it belongs
                atomic_write(sub.output, data)
            if queue:
                submit(actor)
            yield k, entry

    def close(self) -> None:
        """Let the actors go (the Ray instance stays for the process, as Ray intends)."""
        for actor in self.actors:
            self._ray.kill(actor)
        self.actors = []


class SegmentWorker:
    """A Ray actor: the chain loaded once, segments encoded on request (the input opened once and kept)."""

    def __init__(
        self, make_runner: Callable[[dict[str, Any], Any], Any], load: dict[str, Any], job: Any, cores: int
    ) -> None:
        backend = load["backend"]
        if getattr(backend, "threads", None) == 0 and getattr(backend, "device", "cpu") == "cpu":
            backend = replace(backend, threads=cores)  # the actor's own cores, not the whole machine's
        self._runner = make_runner({**load, "backend": backend}, job)
        self._readers: dict[Path, Any] = {}

    def encode(self, k: int, sub: UpscaleRequest, ship: bool) -> tuple[dict[str, Any], bytes | None]:
        """Encode segment `k`; returns its manifest entry and, when parts are shipped, the part's bytes."""
        from vsr.media import VideoReader
        from vsr.pipeline.resume import segment_entry

        if sub.input not in self._readers:
            self._readers[sub.input] = VideoReader(
                sub.input, threads=sub.decode_threads, deinterlace=sub.deinterlace, field_rate=sub.field_rate
            ).__enter__()
        with tempfile.TemporaryDirectory(prefix="vsr-part-") as tmp:
            local = replace(sub, output=Path(tmp) / sub.output.name) if ship else sub
            job = self._runner.make_job(local, self._readers[sub.input])
            result = job.run()
            data = local.output.read_bytes() if ship else None
        return segment_entry(job, result, sub), data

    def pid(self) -> int:
        return os.getpid()
