"""Keyframe segments on a Ray cluster: the same segments, manifest and assembly as `--resume`, encoded by
one pool of Ray actors that serves every job of the process (a file, or all the files of a folder at once).

    driver: jobs plan keyframe segments (ResumableJob) ──► RayPool: one queue, earliest job first
            a dispatcher thread hands each idle actor the next segment ──► actor: seek, decode, model, encode
            each job records its finished segments (any order) ◄── and assembles by stream copy, as before

Ray does the scheduling and restarts a dead worker (on another node if its node is gone); the segment it
held goes back to the queue, for whichever worker is free first, at most ATTEMPTS times, so a segment that
kills its worker every time fails its job instead of looping, and the pool lives on for the other files.
An error of vsr's own (bad input) is not retried and fails that job with the file's error. Parts are
written straight into the parts folder when every node sees it (a local cluster, or --parts-dir on shared
storage), or come back through Ray's object store otherwise.

Workers are one per GPU when the pool runs on GPUs (more share the GPUs in equal fractions: several x264
encoders fed by one GPU), otherwise one per `cores` CPUs. Each loads a chain once, as soon as a job names
it, and keeps it for the segments and files after; the encoded-frame count of the segment in hand is
polled twice a second, so progress moves between segments.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vsr.errors import UsageError, VsrError
from vsr.files import atomic_write
from vsr.pipeline.job import UpscaleRequest

Log = Callable[[str], None]
Segment = tuple[int, UpscaleRequest]
POLL_SECONDS = 0.5  # how often the frames of segments in flight are asked for
UP_SECONDS = 300.0  # how long segments may wait with no worker up (none placed, or all lost) before failing
ATTEMPTS = 3  # times a segment may lose its worker (killed, node lost) before its job fails


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError("--cluster needs Ray: pip install 'vsr[cluster]'") from None
    return ray


class PoolClosedError(VsrError):
    """The pool was closed (Ctrl-C, or the end of the call) while a job still had segments to run."""


class WorkerLostError(VsrError, RuntimeError):
    """A segment lost its worker ATTEMPTS times (a crash it causes, or nodes that keep going away)."""


@dataclass(frozen=True)
class ClusterSpec:
    """Where the pool runs: "local" (a Ray instance on this machine, every core and GPU), "auto" (the cluster
    this machine belongs to) or "ray://HOST:PORT"; `workers` actors of `cores` CPUs each. gpus: True puts
    every worker on a GPU, False none; None (the default) does where the cluster has GPUs and the backend
    asked for can use them."""

    address: str = "local"
    workers: int | None = None
    cores: int = 1
    gpus: bool | None = None
    shared_parts: bool | None = None  # None: shared on a local cluster, through the object store elsewhere

    def __post_init__(self) -> None:
        if self.address not in ("local", "auto") and not self.address.startswith("ray://"):
            raise UsageError(f"--cluster {self.address!r}: use local, auto or ray://HOST:PORT")
        if (self.workers is not None and self.workers < 1) or self.cores < 1:
            raise UsageError("a cluster needs at least one worker of at least one core")
        cpus, wanted = os.cpu_count() or 1, (self.workers or 1) * self.cores
        if self.address == "local" and wanted > cpus:  # Ray would never place the rest: say so now
            raise UsageError(f"{wanted} worker cores do not fit this machine's {cpus} cores")


@dataclass(frozen=True)
class PoolSize:
    """How many workers, and what each holds of the cluster."""

    workers: int
    cpus: int
    gpus: float  # 0, 1, or a fraction when several workers share a GPU


def size_pool(spec: ClusterSpec, cpus: float, gpus: float, gpu_backend: bool) -> PoolSize:
    """One worker per GPU when the pool runs on GPUs (spec.gpus, or by default wherever the cluster has
    GPUs and the backend can use them); `workers` beyond the GPU count share them in equal fractions that
    pack whole (1/2, 1/3...), so no worker waits for a GPU that others already split. Otherwise one worker
    per `cores` CPUs."""
    whole = int(gpus)
    on_gpu = spec.gpus if spec.gpus is not None else gpu_backend and whole >= 1
    if not on_gpu:
        return PoolSize(spec.workers or max(1, int(cpus) // spec.cores), spec.cores, 0.0)
    if whole < 1:
        raise UsageError("the cluster has no GPU for GPU workers (start its nodes with ray start --num-gpus)")
    workers = spec.workers or whole
    return PoolSize(workers, spec.cores, 1.0 / math.ceil(workers / whole))


@dataclass(order=True)
class _Task:
    """One segment of one job; ordered by (job, segment), so the earliest job's segments go first."""

    order: tuple[int, int]
    sub: UpscaleRequest = field(compare=False)
    load: dict[str, Any] = field(compare=False)
    future: Future[tuple[dict[str, Any], bytes | None]] = field(compare=False, default_factory=Future)
    frames: int = field(compare=False, default=0)  # encoded so far by its worker (polled)
    attempts: int = field(compare=False, default=0)


class RayPool:
    """Ray actors that encode segments for any number of jobs at once (thread-safe). Each worker calls
    `make_runner(load, job)` once per chain (vsr.api passes its own function, by reference: the chain
    loaded with `load`'s keywords of vsr.load_model, run with the job's settings) and encodes segment
    requests with what it returns."""

    def __init__(
        self,
        spec: ClusterSpec,
        make_runner: Callable[[dict[str, Any], Any], Any],
        job: Any,
        *,
        gpu_backend: bool = False,
        log: Log = lambda _m: None,
    ) -> None:
        ray = _ray()
        self.spec, self._ray, self._log = spec, ray, log
        if not ray.is_initialized():  # quietly: Ray's own start-up notes are not the user's business
            quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
            if spec.address == "local":  # every core here, and every GPU (Ray finds them itself)
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **quiet)
            else:
                ray.init(address=spec.address, **quiet)
        resources = ray.cluster_resources()
        self.size = size_pool(spec, resources.get("CPU", 1), resources.get("GPU", 0), gpu_backend)
        self.shared = spec.address == "local" if spec.shared_parts is None else spec.shared_parts
        worker = ray.remote(SegmentWorker).options(
            num_cpus=self.size.cpus,
            num_gpus=self.size.gpus,
            max_restarts=-1,  # a worker that dies comes back (elsewhere, if its node is gone) ...
            max_task_retries=0,  # ... and the dispatcher, which counts, hands its segment out again
            max_concurrency=2,  # a segment, and the poll of its frames beside it
        )
        args = (make_runner, job, self.size.cpus, self.on_gpu)
        self.actors = [worker.remote(*args) for _ in range(self.size.workers)]
        self._cond = threading.Condition()
        self._queue: list[_Task] = []
        self._idle: list[Any] = []
        self._starting = {actor.ready.remote(): actor for actor in self.actors}
        self._running: dict[Any, tuple[Any, _Task]] = {}
        self._polls: dict[Any, _Task] = {}
        self._jobs = itertools.count()
        self._up_since = time.monotonic()  # the last moment a worker was up, or nothing waited
        self._warmed: set[str] = set()
        self._closed = False
        self._dispatcher = threading.Thread(target=self._dispatch, name="vsr-cluster", daemon=True)
        self._dispatcher.start()
        gpu = f" and {self.size.gpus:g} GPU" if self.size.gpus else ""
        parts = "into the parts folder" if self.shared else "through Ray's object store"
        workers = f"{self.size.workers} workers of {self.size.cpus} core(s){gpu} each"
        log(f"cluster: {workers} on {spec.address}; parts go {parts}")

    @property
    def on_gpu(self) -> bool:
        return self.size.gpus > 0

    def for_chain(self, load: dict[str, Any]) -> ChainPool:
        """This pool as one job sees it: its segments run with the chain `load` names. Every worker starts
        loading the chain now, while the driver scans the input for keyframes."""
        key = _chain_key(load)
        if key not in self._warmed:
            self._warmed.add(key)
            for actor in self.actors:
                actor.warm.remote(load)  # its error, if any, comes again with the first segment
        return ChainPool(self, load)

    def run(
        self,
        segments: Sequence[Segment],
        load: dict[str, Any],
        on_frames: Callable[[int], None] | None = None,
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """A job's segments through the pool; (index, entry) as each finishes, in any order. on_frames gets,
        twice a second, the frames encoded so far by this job's segments in flight. Stopping early (an
        error, Ctrl-C) withdraws the job's segments not yet started."""
        job = next(self._jobs)
        queued = [_Task((job, k), _absolute(sub), load) for k, sub in segments]
        tasks = {task.future: task for task in queued}
        with self._cond:
            if self._closed:
                raise PoolClosedError("the cluster pool is closed")
            for task in queued:
                heapq.heappush(self._queue, task)
            self._cond.notify()
        try:
            while tasks:
                finished, _ = wait(tasks, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = tasks.pop(future)
                    entry, data = future.result()  # the segment's error, raised here, fails the job
                    if data is not None:  # the part came through the object store: write it where it belongs
                        atomic_write(task.sub.output, data)
                    yield task.order[1], entry
                if on_frames is not None:
                    on_frames(sum(t.frames for t in tasks.values()))
        finally:
            with self._cond:
                self._queue = [t for t in self._queue if t.order[0] != job]
                heapq.heapify(self._queue)

    def close(self) -> None:
        """Let the actors go (the Ray instance stays for the process, as Ray intends); jobs still waiting on
        segments fail with PoolClosedError."""
        with self._cond:
            self._closed = True
            waiting = [t for _, t in self._running.values()] + self._queue
            self._queue, self._running = [], {}
            actors, self.actors = self.actors, []
            self._cond.notify()
        for task in waiting:
            _settle(task, error=PoolClosedError("the cluster pool was closed"))
        for actor in actors:
            self._ray.kill(actor)

    # The dispatcher thread: the only one that hands out segments and reads what comes back.

    def _dispatch(self) -> None:
        ray, polled = self._ray, time.monotonic()
        while True:
            with self._cond:
                while self._idle and self._queue and not self._closed:
                    task = heapq.heappop(self._queue)
                    actor = self._idle.pop()
                    self._running[actor.encode.remote(task.sub, task.load, not self.shared)] = (actor, task)
                self._check_up()
                refs = [*self._starting, *self._running, *self._polls]
                if self._closed:
                    return
                if not refs:
                    self._cond.wait()
                    continue
            ready, _ = ray.wait(refs, num_returns=1, timeout=POLL_SECONDS / 2)
            if ready:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            with self._cond:
                for ref in ready:
                    self._settle_ref(ref)
                if time.monotonic() - polled >= POLL_SECONDS:
                    polled = time.monotonic()
                    asked = {id(t) for t in self._polls.values()}
                    for actor, task in self._running.values():
                        if id(task) not in asked:
                            self._polls[actor.frames.remote()] = task

    def _settle_ref(self, ref: Any) -> None:
        ray = self._ray
        if ref in self._starting:
            actor = self._starting.pop(ref)
            try:
                ray.get(ref)
            except ray.exceptions.RayError as exc:  # a worker that cannot start: the others go on
                self._log(f"cluster: a worker did not start ({str(exc).splitlines()[0]})")
                self.actors = [a for a in self.actors if a is not actor]
                return
            self._idle.append(actor)
        elif ref in self._polls:
            task = self._polls.pop(ref)
            with contextlib.suppress(ray.exceptions.RayError):  # a worker gone: its segment's ref says so
                task.frames = ray.get(ref)
        elif ref in self._running:
            actor, task = self._running.pop(ref)
            try:
                _settle(task, result=ray.get(ref))
            except ray.exceptions.RayTaskError as exc:  # the segment's own error fails the job, as here
                self._idle.append(actor)
                _settle(task, error=exc.cause if isinstance(exc.cause, Exception) else exc)
            except ray.exceptions.RayError as exc:  # the worker died: Ray restarts it, its segment waits
                self._starting[actor.ready.remote()] = actor  # back in service once it is up again
                task.attempts, task.frames = task.attempts + 1, 0
                if task.attempts < ATTEMPTS:
                    heapq.heappush(self._queue, task)
                else:
                    why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    name = f"{task.sub.input.name} segment {task.order[1]}"
                    _settle(task, error=WorkerLostError(f"{name} lost its worker {ATTEMPTS} times ({why})"))
            else:
                self._idle.append(actor)

    def _check_up(self) -> None:
        """Segments have waited UP_SECONDS with no worker up (none could be placed, or every one was lost
        and none could come back): fail them rather than wait for ever."""
        now = time.monotonic()
        if self._idle or self._running or not self._queue:
            self._up_since = now
        if now - self._up_since < UP_SECONDS:
            return
        gpu = f" and {self.size.gpus:g} GPU" if self.size.gpus else ""
        room = f"{self.size.cpus} CPU(s){gpu}"
        error = UsageError(f"no cluster worker up for {UP_SECONDS:.0f} s: no node has {room} free")
        for task in self._queue:
            _settle(task, error=error)
        self._queue = []


def _absolute(sub: UpscaleRequest) -> UpscaleRequest:
    """A worker elsewhere does not share this process's working folder: its paths must not be relative."""
    return replace(sub, input=sub.input.absolute(), output=sub.output.absolute())


def _settle(
    task: _Task, *, result: tuple[dict[str, Any], bytes | None] | None = None, error: Exception | None = None
) -> None:
    """Resolve a task's future once (a pool closing and its dispatcher may both reach it)."""
    if task.future.done():
        return
    if error is not None:
        task.future.set_exception(error)
    else:
        task.future.set_result(result)  # type: ignore[arg-type]


def _chain_key(load: dict[str, Any]) -> str:
    return repr(sorted(load.items()))  # the keywords are strings, numbers, None and frozen dataclasses


@dataclass(frozen=True)
class ChainPool:
    """A RayPool bound to one chain: what a ResumableJob runs its segments on (vsr.pipeline.resume's
    SegmentPool)."""

    pool: RayPool
    load: dict[str, Any]

    def run(
        self, segments: Sequence[Segment], on_frames: Callable[[int], None] | None = None
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        return self.pool.run(segments, self.load, on_frames)


class SegmentWorker:
    """A Ray actor: each chain loaded on its first segment and kept; the input of the last segment kept
    open for the next, which is most often of the same file."""

    def __init__(
        self, make_runner: Callable[[dict[str, Any], Any], Any], job: Any, cores: int, on_gpu: bool
    ) -> None:
        self._make_runner, self._job, self._cores, self._on_gpu = make_runner, job, cores, on_gpu
        self._runners: dict[str, Any] = {}
        self._loading = threading.Lock()  # a warm-up and the first segment load a chain once between them
        self._reader: Any = None
        self._encoding: Any = None  # the UpscaleJob of the segment in hand, whose frames are polled

    def ready(self) -> dict[str, Any]:
        """Where this worker runs: its process, node and the GPUs Ray gave it."""
        import ray

        context = ray.get_runtime_context()
        return {"pid": os.getpid(), "node": context.get_node_id(), "gpus": ray.get_gpu_ids()}

    def warm(self, load: dict[str, Any]) -> None:
        """Load a chain ahead of its first segment."""
        self._runner(load)

    def frames(self) -> int:
        """Frames encoded so far of the segment in hand (0 between segments)."""
        job = self._encoding
        return job.progress.encoded if job is not None else 0

    def encode(
        self, sub: UpscaleRequest, load: dict[str, Any], ship: bool
    ) -> tuple[dict[str, Any], bytes | None]:
        """Encode one segment; returns its manifest entry and, when parts are shipped, the part's bytes."""
        from vsr.pipeline.resume import segment_entry

        runner = self._runner(load)
        reader = self._open(sub)
        with tempfile.TemporaryDirectory(prefix="vsr-part-") as tmp:
            local = replace(sub, output=Path(tmp) / sub.output.name) if ship else sub
            job = self._encoding = runner.make_job(local, reader)
            try:
                result = job.run()
            finally:
                self._encoding = None
            data = local.output.read_bytes() if ship else None
        return segment_entry(job, result, sub), data

    def _runner(self, load: dict[str, Any]) -> Any:
        key = _chain_key(load)
        with self._loading:
            if key not in self._runners:
                self._runners[key] = self._make_runner(self._on_own_cores(load), self._job)
            return self._runners[key]

    def _on_own_cores(self, load: dict[str, Any]) -> dict[str, Any]:
        """A CPU worker's runtime on the actor's cores, not every core of its node (which other workers
        share); a GPU worker's as asked."""
        backend = load["backend"]
        if self._on_gpu:
            return load
        if isinstance(backend, str):  # resolved here: a backend asked for by name
            return {**load, "threads": load.get("threads") or self._cores}
        if getattr(backend, "threads", None) == 0 and getattr(backend, "device", "cpu") == "cpu":
            return {**load, "backend": replace(backend, threads=self._cores)}
        return load

    def _open(self, sub: UpscaleRequest) -> Any:
        from vsr.media import VideoReader

        if self._reader is None or self._reader.path != sub.input:
            if self._reader is not None:
                self._reader.__exit__(None, None, None)
            self._reader = VideoReader(
                sub.input, threads=sub.decode_threads, deinterlace=sub.deinterlace, field_rate=sub.field_rate
            ).__enter__()
        return self._reader
