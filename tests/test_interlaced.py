"""Interlaced sources: bwdif with timing kept, one frame per field on request, progressive left alone."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import av
import media_fixtures as mf
import pytest

from vsr.cli import main

REPO = Path(__file__).resolve().parent.parent


def _pts_seconds(path: Path) -> list:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return sorted(p.pts * s.time_base for p in c.demux(s) if p.pts is not None)


def test_interlaced_source_is_deinterlaced_with_timing_kept(
    interlaced_mkv: mf.Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bff = mf.make_clip(tmp_path / "bff.mkv", width=176, height=144, frames=6, interlaced=True,
                       bottom_field_first=True, audio_tracks=0)  # fmt: skip
    with av.open(str(bff.path)) as c:
        assert c.streams.video[0].codec_context.field_order == 3  # bb: the fixture really is BFF
    for clip in (interlaced_mkv, bff):
        out = tmp_path / "o.mkv"
        argv = ["upscale", str(clip.path), str(out), "--json", "--preset", "ultrafast", "--overwrite"]
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out)["deinterlaced"] is True
        assert _pts_seconds(out) == sorted(clip.seconds())
        with av.open(str(out)) as c:
            assert c.streams.video[0].codec_context.field_order in (0, 1)  # unknown or progressive


def test_field_rate_gives_one_frame_per_field(interlaced_mkv: mf.Clip, tmp_path: Path) -> None:
    out = tmp_path / "o.mkv"
    assert main(["upscale", str(interlaced_mkv.path), str(out), "--field-rate", "--preset", "ultrafast"]) == 0
    src, got = sorted(interlaced_mkv.seconds()), _pts_seconds(out)
    assert len(got) == 2 * len(src)
    assert got[::2] == src  # every source frame time is kept; the second field falls between
    assert all(a < b for a, b in itertools.pairwise(got))


def test_progressive_source_is_left_alone_unless_asked(
    sd_mp4: mf.Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    for mode, expected in (("auto", False), ("on", True)):
        out = tmp_path / f"{mode}.mp4"
        argv = [
            "upscale",
            str(sd_mp4.path),
            str(out),
            "--deinterlace",
            mode,
            "--json",
            "--preset",
            "ultrafast",
        ]
        assert main(argv) == 0
        assert json.loads(capsys.readouterr().out)["deinterlaced"] is expected
        assert _pts_seconds(out) == sorted(sd_mp4.seconds())
    assert main(["upscale", str(sd_mp4.path), str(tmp_path / "x.mp4"), "--deinterlace", "maybe"]) == 2
