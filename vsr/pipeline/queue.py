"""A folder of inputs as a queue: one job per file, per-file status and report, resumable as a whole.

The status lives in OUTDIR/vsr-queue.json and is rewritten (atomically) after every file, so a queue that
was interrupted or crashed is resumed by running the same command again: files recorded as done whose
output still exists are skipped, everything else runs (failed files are retried).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vsr.errors import UsageError, VsrError
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


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _save(path: Path, files: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"files": files}, indent=1) + "\n")
    tmp.replace(path)


def run_queue(
    indir: Path,
    outdir: Path,
    requests: Sequence[UpscaleRequest],
    run_one: Callable[[UpscaleRequest], JobResult],
    *,
    names: str,
    reason: str,
    say: Callable[[str], None] = print,
) -> int:
    """Run every request, continuing past failed files; returns the queue's exit code.

    0: all done; 1: all done, some with concealed decode errors; 2 or 3: some file failed (bad input or
    usage, internal error; the highest wins). Ctrl-C stops the queue after saving its status (130).
    """
    status_path = outdir / STATUS_FILE
    files = _load(status_path)
    worst = 0
    for k, request in enumerate(requests, 1):
        key = request.input.name
        tag = f"[{k}/{len(requests)}] {key}"
        previous = files.get(key, {})
        if previous.get("status") == "done" and request.output.exists():
            say(f"{tag}: done earlier, skipped")
            worst = max(worst, previous.get("exit_code", 0))
            continue
        report = request.output.with_name(f"{request.output.stem}.vsr.json")
        try:
            result = run_one(request)
        except KeyboardInterrupt:
            files[key] = {"status": "interrupted", "exit_code": 130}
            _save(status_path, files)
            raise
        except VsrError as exc:
            files[key] = {"status": "failed", "exit_code": exc.exit_code, "error": str(exc)}
            say(f"{tag}: failed ({exc})")
        except Exception as exc:  # a defect in one file's job must not stop the others
            files[key] = {"status": "failed", "exit_code": 3, "error": f"internal error: {exc!r}"}
            say(f"{tag}: failed (internal error: {exc!r})")
        else:
            code = 1 if result.damaged else 0
            record = result.report(names, reason)
            report.write_text(json.dumps(record, indent=2) + "\n")
            files[key] = {
                "status": "done",
                "exit_code": code,
                "output": str(request.output),
                "report": str(report),
            }
            say(f"{tag}: {result.frames} frames in {result.seconds:.1f} s → {request.output}")
        worst = max(worst, files[key]["exit_code"])
        _save(status_path, files)
    done = sum(1 for r in requests if files.get(r.input.name, {}).get("status") == "done")
    say(f"queue: {done} of {len(requests)} done; status in {status_path}")
    return worst
