"""Shared fixtures: generated media, made once per session so the suite stays fast."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import media_fixtures as mf
import pytest


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide folder for generated inputs (outputs go to each test's own tmp_path)."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def vfr_mkv(media_dir: Path) -> mf.Clip:
    """VFR H.264 in mkv with two audio tracks, a forced subtitle, an attachment, chapters and SAR 8:9."""
    return mf.make_clip(
        media_dir / "vfr.mkv",
        vfr=True,
        audio_tracks=2,
        subtitles=True,
        attachment=True,
        chapters=3,
        sar=Fraction(8, 9),
    )


@pytest.fixture(scope="session")
def sd_mp4(media_dir: Path) -> mf.Clip:
    """CFR 25 fps BT.601 H.264 in mp4, rotated 90 degrees by its display matrix, one audio track."""
    return mf.make_clip(media_dir / "sd.mp4", rate=25, colours="bt601", rotation=90)


@pytest.fixture(scope="session")
def full_range_mkv(media_dir: Path) -> mf.Clip:
    """Full-range BT.709 4:4:4 video without audio."""
    return mf.make_clip(media_dir / "full.mkv", frames=8, pix_fmt="yuv444p", full_range=True, audio_tracks=0)


@pytest.fixture(scope="session")
def untagged_mkv(media_dir: Path) -> mf.Clip:
    """SD video with no colour tags at all (BT.601 by convention)."""
    return mf.make_clip(media_dir / "untagged.mkv", frames=8, colours="untagged", audio_tracks=0)


@pytest.fixture(scope="session")
def interlaced_mkv(media_dir: Path) -> mf.Clip:
    """Interlaced (top field first) H.264."""
    return mf.make_clip(
        media_dir / "interlaced.mkv", width=176, height=144, frames=6, interlaced=True, audio_tracks=0
    )


@pytest.fixture(scope="session")
def raw_h264(media_dir: Path) -> mf.Clip:
    """An H.264 elementary stream: no container, so no timestamps at all."""
    return mf.make_clip(media_dir / "raw.h264", frames=10, audio_tracks=0)


@pytest.fixture(scope="session")
def bad_inputs(media_dir: Path) -> dict[str, Path]:
    """Files vsr must refuse with a clear message, by case name."""
    bad = media_dir / "bad"
    bad.mkdir()
    return {
        "missing": bad / "missing.mp4",
        "zero-byte": mf.make_zero_byte(bad / "zero.mp4"),
        "zero-byte-h264": mf.make_zero_byte(bad / "zero.h264"),
        "headerless-h264": mf.make_headerless_h264(bad / "headerless.h264"),
        "text": mf.make_text(bad / "text.mp4"),
        "random": mf.make_random(bad / "random.mp4"),
        "still-png": mf.make_still_png(bad / "still.mp4"),
        "audio-only": mf.make_audio_only(bad / "audio.m4a"),
        "directory": bad,
    }
