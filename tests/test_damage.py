"""Damage an archive throws at vsr: decompression bombs, size changes, corrupted slices, garbage."""

from __future__ import annotations

import json
from pathlib import Path

import av
import media_fixtures as mf
import pytest

from vsr.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_decompression_bomb_refused_before_allocating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = tmp_path / "bomb.y4m"  # a 48-megapixel header and no picture behind it
    bomb.write_bytes(b"YUV4MPEG2 W8000 H6000 F25:1 Ip A1:1 C420jpeg\nFRAME\n")
    assert main(["upscale", str(bomb), str(tmp_path / "o.mp4")]) == 2
    assert "pixel limit" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.y4m"]


def test_size_change_mid_stream_is_letterboxed_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = mf.make_clip(tmp_path / "a.h264", width=160, height=120, frames=6, audio_tracks=0).path
    b = mf.make_clip(tmp_path / "b.h264", width=176, height=96, frames=6, audio_tracks=0).path
    joined = tmp_path / "joined.h264"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    out = tmp_path / "o.mkv"
    assert main(["upscale", str(joined), str(out), "--json", "--preset", "ultrafast"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == report["frames_in"] == 12
    assert any("6 frames of 176x96 letterboxed into 160x120" in w for w in report["warnings"])
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert {f.shape for f in frames} == {(240, 320, 3)}
    # 176x96 fits 160x120 as 160x88 (even): black bars of 16 input rows top and bottom, picture between
    last = frames[-1].astype(int)
    assert last[:24].mean() < 20 and last[-24:].mean() < 20 and last[60:180].mean() > 40


def test_real_damage_is_concealed_counted_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Bytes flipped inside the coded slices: FFmpeg decodes around them and says so only in its log.
    clip = mf.make_clip(tmp_path / "c.mkv", frames=48, audio_tracks=0, keyint=12)
    damaged = mf.flip_bytes(clip.path, tmp_path / "damaged.mkv", count=40, start=2000, mask=0x55, seed=3)
    out = tmp_path / "o.mkv"
    assert main(["upscale", str(damaged), str(out), "--json", "--preset", "ultrafast"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["concealed_errors"] > 0 and report["frames"] > 0 and out.exists()
    assert captured.err.strip().splitlines() == [
        f"vsr: warning: damaged input: {report['decode_errors']} packets skipped, "
        f"{report['concealed_errors']} errors concealed"
    ]  # FFmpeg's own log lines are counted, not printed


def test_a_mostly_garbage_stream_is_given_up_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The thresholds are lowered so that a small damaged fixture crosses them (in real use: 500 packets).
    from vsr.media import reader

    clip = mf.make_clip(tmp_path / "c.h264", frames=48, audio_tracks=0, keyint=12)
    mf.flip_bytes(clip.path, tmp_path / "garbage.h264", count=400, start=200, mask=0xFF, seed=1)
    monkeypatch.setattr(reader, "GIVE_UP_REJECTED", 0)
    monkeypatch.setattr(reader, "GIVE_UP_RATIO", 0)
    assert main(["upscale", str(tmp_path / "garbage.h264"), str(tmp_path / "o.mkv")]) == 2
    err = capsys.readouterr().err
    assert "too damaged" in err and err.count("\n") == 1 and not (tmp_path / "o.mkv").exists()
