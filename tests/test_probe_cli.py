"""`vsr probe`: table and JSON output, and one clean line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import media_fixtures as mf
import pytest

import vsr.cli.probe_cmd  # noqa: F401  (registers the command even before vsr.cli._register lists it)
from vsr.cli import main


def test_probe_prints_a_table(vfr_mkv: mf.Clip, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", str(vfr_mkv.path)]) == 0
    out = capsys.readouterr().out
    for expected in (
        "matroska",
        "160x120",
        "24 frames",
        "variable",
        "eng",
        "fra",
        "spa",
        "forced",
        "attachment",
    ):
        assert expected in out


def test_probe_json(vfr_mkv: mf.Clip, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", str(vfr_mkv.path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    video = data["streams"][data["video_index"]]["video"]
    assert (video["width"], video["height"], video["frame_count"]) == (160, 120, 24)
    assert video["variable_frame_rate"] is True
    assert [s["type"] for s in data["streams"]] == ["video", "audio", "audio", "subtitle", "attachment"]
    assert data["chapters"] == 3


@pytest.mark.parametrize("case", ["missing", "zero-byte", "text", "audio-only", "still-png"])
def test_probe_bad_input_is_one_line_and_exit_2(
    case: str, bad_inputs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", str(bad_inputs[case])]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vsr: error: ")
    assert "Traceback" not in captured.err
