"""`vsr upscale DIR OUTDIR`: a queue with per-file status and reports that continues past bad files and
resumes as a whole; `--report` for one file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import media_fixtures as mf
import pytest

from vsr.cli import main

FAST = ["--preset", "ultrafast"]


@pytest.fixture
def inbox(vfr_mkv: mf.Clip, sd_mp4: mf.Clip, tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(vfr_mkv.path, folder / "a.mkv")
    shutil.copy(sd_mp4.path, folder / "b.mp4")
    mf.make_random(folder / "c.mp4")  # a damaged file among good ones
    (folder / "notes.txt").write_text("not a video, not picked up")
    return folder


def _status(outdir: Path) -> dict:
    return json.loads((outdir / "vsr-queue.json").read_text())["files"]


def test_queue_continues_past_a_bad_file_and_reports_each(inbox: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert main(["upscale", str(inbox), str(out), *FAST]) == 2  # the worst file decides
    status = _status(out)
    assert set(status) == {"a.mkv", "b.mp4", "c.mp4"}
    assert status["a.mkv"]["status"] == status["b.mp4"]["status"] == "done"
    assert status["c.mp4"]["status"] == "failed" and status["c.mp4"]["error_type"] == "BadInputError"
    assert "c.mp4" in status["c.mp4"]["error"]
    assert sorted(p.name for p in out.iterdir()) == [
        "a.mkv",
        "a.vsr.json",
        "b.mkv",
        "b.vsr.json",
        "vsr-queue.json",
    ]
    report = json.loads((out / "a.vsr.json").read_text())
    assert report["frames"] > 0 and report["input"].endswith("a.mkv") and "backend_reason" in report
    said = capsys.readouterr().out
    assert "[3/3] c.mp4: failed" in said and "folder: 2 of 3 done" in said


def test_queue_resumes_as_a_whole(inbox: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    main(["upscale", str(inbox), str(out), *FAST])
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mkv")}
    (inbox / "c.mp4").unlink()  # the user removes the damaged file and runs the same command again
    capsys.readouterr()
    assert main(["upscale", str(inbox), str(out), *FAST]) == 0
    said = capsys.readouterr().out
    assert said.count("done earlier, skipped") == 2
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.mkv")} == first  # not redone


def test_queue_refuses_unusable_folders(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["upscale", str(empty), str(tmp_path / "o")]) == 2
    assert "no video files" in capsys.readouterr().err
    (empty / "x.mkv").write_bytes(b"")
    assert main(["upscale", str(empty), str(empty)]) == 2
    assert "must not be the input folder" in capsys.readouterr().err


def test_report_file_equals_the_json_summary(vfr_mkv: mf.Clip, tmp_path: Path, capsys) -> None:
    report = tmp_path / "r.json"
    assert (
        main(
            ["upscale", str(vfr_mkv.path), str(tmp_path / "o.mkv"), "--json", "--report", str(report), *FAST]
        )
        == 0
    )
    assert json.loads(report.read_text()) == json.loads(capsys.readouterr().out)


def test_folder_json_lists_every_file_with_its_exit_code(inbox: Path, tmp_path: Path, capsys) -> None:
    assert main(["upscale", str(inbox), str(tmp_path / "out"), "--json", *FAST]) == 2
    said = json.loads(capsys.readouterr().out)
    codes = {Path(f["input"]).name: (f["status"], f["exit_code"]) for f in said["files"]}
    assert codes == {"a.mkv": ("done", 0), "b.mp4": ("done", 0), "c.mp4": ("failed", 2)}


def test_report_counts_frames_streams_and_duration(vfr_mkv: mf.Clip, tmp_path: Path, capsys) -> None:
    # mp4 cannot hold the fixture's SRT subtitles or its attachment: both are listed as dropped.
    assert main(["upscale", str(vfr_mkv.path), str(tmp_path / "o.mp4"), "--json", *FAST]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == report["frames_in"] == len(vfr_mkv.pts)
    assert report["duration_difference_s"] == 0.0 and report["partial"] is False
    assert len(report["streams_dropped"]) == 2 and report["streams_copied"] == 2  # two audio tracks
    assert all(d in report["warnings"] for d in report["streams_dropped"])
