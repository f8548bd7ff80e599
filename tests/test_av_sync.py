"""A/V sync, proven for every kind of passthrough input: the output's video pts equal the input's (through
the deinterlacer's mapping), every audio and subtitle packet is byte-identical at its original time, and
the video spans agree."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import media_fixtures as mf
import pytest

from vsr.cli import main

CASES = {
    # name: (make_clip arguments, output suffix)
    "vfr mkv, 2 audio, subs": (dict(vfr=True, audio_tracks=2, subtitles=True, frames=30), ".mkv"),
    "cfr 25 mp4": (dict(rate=25, frames=30), ".mp4"),
    "29.97-like mov": (dict(rate=30, frames=30), ".mov"),
    "10-bit mkv": (dict(pix_fmt="yuv420p10le", frames=12), ".mkv"),
    "full-range 4:4:4": (dict(pix_fmt="yuv444p", full_range=True, frames=12), ".mkv"),
    "rotated mp4": (dict(rotation=270, frames=12), ".mp4"),
    "short gop, resumable": (dict(keyint=6, frames=30, vfr=True), ".mkv"),
}


def _video_pts(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return sorted(p.pts * s.time_base for p in c.demux(s) if p.pts is not None and p.size)


def _other_packets(path: Path) -> list[list[tuple[Fraction, bytes]]]:
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type in ("audio", "subtitle")]
        out: dict[int, list[tuple[Fraction, bytes]]] = {s.index: [] for s in streams}
        for p in c.demux(*streams):
            if p.size and p.pts is not None:
                out[p.stream.index].append((p.pts * p.time_base, bytes(p)))
        return [out[s.index] for s in streams]


@pytest.mark.parametrize("case", sorted(CASES))
def test_passthrough_keeps_sync(case: str, media_dir: Path, tmp_path: Path) -> None:
    kwargs, suffix = CASES[case]
    src_suffix = ".mp4" if suffix in (".mp4", ".mov") and not kwargs.get("subtitles") else ".mkv"
    clip = mf.make_clip(media_dir / f"sync-{case.replace(' ', '_').replace(',', '')}{src_suffix}", **kwargs)
    out = tmp_path / f"o{suffix}"
    extra = ["--resume", "--segment-seconds", "0.3"] if "resumable" in case else []
    assert main(["upscale", str(clip.path), str(out), "--preset", "ultrafast", *extra]) == 0
    want, got = _video_pts(clip.path), _video_pts(out)
    # Containers store time in their own units (mkv: ms): equal to within one tick of the coarser base.
    assert len(got) == len(want) == len(clip.pts)
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= Fraction(1, 1000)
    assert abs((got[-1] - got[0]) - (want[-1] - want[0])) <= Fraction(1, 1000)
    src_other, out_other = _other_packets(clip.path), _other_packets(out)
    assert [len(s) for s in out_other] == [len(s) for s in src_other]
    for a, b in zip(src_other, out_other, strict=True):
        assert [data for _, data in b] == [data for _, data in a]  # byte-identical
        assert max((abs(ta - tb) for (ta, _), (tb, _) in zip(a, b, strict=True)), default=0) <= Fraction(
            1, 1000
        )


def test_deinterlaced_pts_follow_the_field_mapping(interlaced_mkv: mf.Clip, tmp_path: Path) -> None:
    # One frame per field: each source frame's pts, then the midpoint to the next frame (or one field on).
    out = tmp_path / "fields.mkv"
    assert main(["upscale", str(interlaced_mkv.path), str(out), "--field-rate", "--preset", "ultrafast"]) == 0
    src, got = _video_pts(interlaced_mkv.path), _video_pts(out)
    assert len(got) == 2 * len(src)
    assert got[::2] == src
    for k in range(len(src) - 1):
        assert abs(got[2 * k + 1] - (src[k] + src[k + 1]) / 2) <= Fraction(1, 1000)
