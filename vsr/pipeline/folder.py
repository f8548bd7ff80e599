"""A folder of inputs as a queue: one job per file, per-file status and report, resumable as a whole.

Exit codes are the CLI's business: this module records what happened to each file and why.

The status lives in OUTDIR/vsr-queue.json and is rewritten (atomically) after every file, so a queue that
was interrupted or crashed is resumed by running the same command again: files recorded as done whose
output still exists are skipped, everything else runs (failed files are retried).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vsr.errors import UsageError
from vsr.files import atomic_write
from vsr.pipeline.job import JobResult, UpscaleRequest

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
) -> list[FileOutcome]:
    """Run every request, continuing past failed files; returns what became of each.

    The status file is rewritten after every file. Ctrl-C (KeyboardInterrupt) stops the folder after
    recording the file in flight as interrupted, and propagates.
    """
    files = _load(status_path)
    outcomes = []
    for k, request in enumerate(requests, 1):
        key = request.input.name
        previous = files.get(key, {})
        if previous.get("status") == "done" and request.output.exists():
            outcome = FileOutcome(
                request.input, request.output, "skipped", damaged=bool(previous.get("damaged"))
            )
        else:
            try:
                outcome = _run(request, run_one)
            except KeyboardInterrupt:
                files[key] = {"status": "interrupted"}
                atomic_write(status_path, json.dumps({"files": files}, indent=1) + "\n")
                raise
            files[key] = _record(outcome)
            atomic_write(status_path, json.dumps({"files": files}, indent=1) + "\n")
        outcomes.append(outcome)
        on_file(k, len(requests), outcome)
    return outcomes


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
