"""A folder of inputs as a queue: one job per file, per-file status and report, resumable as a whole.

Exit codes are the CLI's business: this module records what happened to each file and why.

The status lives in OUTDIR/vsr-queue.json and is rewritten (atomically) after every file, so a queue that
was interrupted or crashed is resumed by running the same command again: files recorded as done whose
output still exists are skipped, everything else runs (failed files are retried).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vsr.errors import UsageError
from vsr.files import atomic_write
from vsr.pipeline.job import JobResult, Progress, UpscaleRequest

STATUS_FILE = "vsr-queue.json"
# Containers a queue picks up; anything else in the folder is left alone.
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".m2v", ".ts", ".m2ts", ".mts"}
    | {".mxf", ".dv", ".flv", ".wmv", ".ogv", ".3gp", ".vob", ".y4m"}
)


def plan(indir: Path, outdir: Path, ext: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs for the videos directly in `indir`, by name; outputs in `outdir` with `ext`."""
    ext = ext if ext.startswith(".") else f".{ext}"
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"{outdir}: the output of a folder must be a folder")
    if outdir.resolve() == indir.resolve():
        raise UsageError("the output folder must not be the input folder")
    files = sorted(p for p in indir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise UsageError(f"{indir}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    outdir.mkdir(parents=True, exist_ok=True)
    pairs = [(p, outdir / f"{p.stem}{ext}") for p in files]
    if len({dst for _, dst in pairs}) != len(pairs):
        raise UsageError(f"{indir}: two inputs share a name and would write the same output; use --ext")
    return pairs


@dataclass(frozen=True)
class FileOutcome:
    """What became of one file of a folder: done (now or by an earlier run), or failed with its error."""

    input: Path
    output: Path
    status: Literal["done", "skipped", "failed"]  # skipped: done by an earlier run, its output still there
    result: JobResult | None = None
    error: str | None = None
    error_type: str | None = None  # the exception's class name, e.g. "BadInputError"
    damaged: bool = False  # done, with decode errors skipped or concealed


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def run_folder(
    requests: Sequence[UpscaleRequest],
    run_one: Callable[[UpscaleRequest], JobResult],
    status_path: Path,
    *,
    on_file: Callable[[int, int, FileOutcome], None] = lambda _k, _n, _outcome: None,
    parallel: int = 1,
) -> list[FileOutcome]:
    """Run every request, continuing past failed files; returns what became of each, in request order.

    parallel: files run at once (run_one must then be thread-safe), each in a thread of its own; on_file
    then comes in the order files finish. The status file is rewritten after every file. Ctrl-C
    (KeyboardInterrupt) stops the folder after recording the files in flight as interrupted, and
    propagates; with parallel files their jobs are the caller's to stop (a cluster pool closed fails them).
    """
    files = _load(status_path)
    outcomes: list[FileOutcome | None] = [None] * len(requests)
    lock, stopping = threading.Lock(), threading.Event()

    def save() -> None:
        atomic_write(status_path, json.dumps({"files": files}, indent=1) + "\n")

    def one(i: int) -> None:
        request = requests[i]
        previous = files.get(request.input.name, {})
        if previous.get("status") == "done" and request.output.exists():
            outcome = FileOutcome(
                request.input, request.output, "skipped", damaged=bool(previous.get("damaged"))
            )
        else:
            outcome = _run(request, run_one)
        with lock:
            if stopping.is_set() and outcome.status == "failed":  # stopped by the interrupt, not failed
                return
            if outcome.status != "skipped":
                files[request.input.name] = _record(outcome)
                save()
            outcomes[i] = outcome
            on_file(sum(o is not None for o in outcomes), len(requests), outcome)

    def interrupted(running: Sequence[int]) -> None:
        with lock:
            stopping.set()
            for i in running:
                files[requests[i].input.name] = {"status": "interrupted"}
            save()

    if parallel <= 1:  # in this thread, so Ctrl-C reaches the job itself
        for i in range(len(requests)):
            try:
                one(i)
            except KeyboardInterrupt:
                interrupted([i])
                raise
        return [o for o in outcomes if o is not None]
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="vsr-file")
    futures = {pool.submit(one, i): i for i in range(len(requests))}
    try:
        waiting = set(futures)
        while waiting:  # with a timeout, so Ctrl-C is seen at once
            _done, waiting = wait(waiting, timeout=0.5)
    except KeyboardInterrupt:
        interrupted([futures[f] for f in futures if f.running()])
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    for future in futures:
        future.result()  # a defect of on_file or the status file is raised here, not lost
    return [o for o in outcomes if o is not None]


class Combined:
    """One Progress over files that run at once: their frames summed, the total that of the files started,
    the rate since the first call."""

    def __init__(self, on_progress: Callable[[Progress], None]) -> None:
        self._on_progress = on_progress
        self._files: dict[int, Progress] = {}  # by id; the Progress is kept, so its id is not reused
        self._lock = threading.Lock()
        self.progress = Progress()

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            self._files[id(progress)] = progress
            files = self._files.values()
            totals = [p.total_frames for p in files]
            self.progress.total_frames = None if None in totals else sum(totals)  # type: ignore[arg-type]
            self.progress.decoded = sum(p.decoded for p in files)
            self.progress.encoded = sum(p.encoded for p in files)
            self.progress.resumed = sum(p.resumed for p in files)
            self._on_progress(self.progress)


def _run(request: UpscaleRequest, run_one: Callable[[UpscaleRequest], JobResult]) -> FileOutcome:
    try:
        result = run_one(request)
    except Exception as exc:  # VsrError or a defect in one file's job: neither may stop the others
        return FileOutcome(
            request.input, request.output, "failed", error=str(exc), error_type=type(exc).__name__
        )
    report = report_path(request.output)
    atomic_write(report, json.dumps(result.to_dict(), indent=2) + "\n")
    return FileOutcome(request.input, request.output, "done", result=result, damaged=result.damaged)


def report_path(output: Path) -> Path:
    """Where a folder job writes a file's report: OUTDIR/NAME.vsr.json."""
    return output.with_name(f"{output.stem}.vsr.json")


def _record(outcome: FileOutcome) -> dict[str, Any]:
    if outcome.status == "failed":
        return {"status": "failed", "error": outcome.error, "error_type": outcome.error_type}
    return {
        "status": "done",
        "damaged": outcome.damaged,
        "output": str(outcome.output),
        "report": str(report_path(outcome.output)),
    }
