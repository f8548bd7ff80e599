"""Inputs and signals an archive throws at vsr: profiles, bombs, size changes, SIGTERM, concealed damage."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import media_fixtures as mf
import numpy as np
import pytest

from vsr.cli import main
from vsr.media.hdr import HdrMetadata
from vsr.pipeline import JobResult

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "profile,suffix,codec,pix_fmt",
    [
        ("web", ".mp4", "h264", "yuv420p"),
        ("master", ".mov", "prores", "yuv422p10le"),
        ("archive", ".mkv", "ffv1", "yuv420p"),
        ("hevc10", ".mkv", "hevc", "yuv420p10le"),
    ],
)
def test_profiles(
    profile: str, suffix: str, codec: str, pix_fmt: str, sd_mp4: mf.Clip, tmp_path: Path
) -> None:
    out = tmp_path / f"out{suffix}"
    assert main(["upscale", str(sd_mp4.path), str(out), "--profile", profile]) == 0
    with av.open(str(out)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.name, ctx.pix_fmt) == (codec, pix_fmt)
        assert len(c.streams.audio) == 1
    if profile == "web":  # faststart: the index (moov) precedes the media data (mdat)
        data = out.read_bytes()
        assert data.index(b"moov") < data.index(b"mdat")


def test_profile_refuses_a_container_it_cannot_fill(
    sd_mp4: mf.Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["upscale", str(sd_mp4.path), str(tmp_path / "o.mp4"), "--profile", "master"]) == 2
    assert ".mov" in capsys.readouterr().err
    assert main(["upscale", str(sd_mp4.path), str(tmp_path / "o.mp4"), "--profile", "vhs"]) == 2
    assert list(tmp_path.iterdir()) == []


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


def test_concealed_damage_exits_1(monkeypatch: pytest.MonkeyPatch, sd_mp4: mf.Clip, tmp_path: Path) -> None:
    # FFmpeg conceals most damage silently; what the reader does count must reach the user as exit code 1.
    from vsr.pipeline import UpscaleJob

    real_run = UpscaleJob.run

    def run_with_damage(self: UpscaleJob, on_progress: object = None) -> JobResult:
        result = real_run(self, on_progress)  # type: ignore[arg-type]
        return JobResult(**{**result.__dict__, "decode_errors": 3})

    monkeypatch.setattr(UpscaleJob, "run", run_with_damage)
    assert main(["upscale", str(sd_mp4.path), str(tmp_path / "o.mp4"), "--preset", "ultrafast"]) == 1
    assert (tmp_path / "o.mp4").stat().st_size > 0


def test_sigterm_is_a_clean_interrupt(tmp_path: Path) -> None:
    src = mf.make_clip(tmp_path / "long.mkv", width=320, height=240, frames=240, audio_tracks=1).path
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsr", "upscale", str(src), str(out_dir / "out.mp4")],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.monotonic() + 60
    while not any(out_dir.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "vsr: error: interrupted"
    assert list(out_dir.iterdir()) == []


def _pts_seconds(path: Path) -> list:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return sorted(p.pts * s.time_base for p in c.demux(s) if p.pts is not None)


def test_interlaced_source_is_deinterlaced_with_timing_kept(
    interlaced_mkv: mf.Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

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
    import json

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


def _hdr_clip(path: Path) -> Path:
    """A 10-bit PQ HEVC clip with mastering display and content light level metadata (x265 SEI)."""
    import numpy as np

    params = (
        "log-level=error:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
        "L(10000000,1):max-cll=1000,400"
    )
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx265", rate=24, options={"x265-params": params})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p10le"
        ctx = s.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace = 9, 16, 9  # bt2020, smpte2084, bt2020nc
        for i in range(4):
            rgb = np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p10le")
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    return path


def _hdr_of(path: Path) -> HdrMetadata | None:
    from vsr.media.hdr import from_frame

    with av.open(str(path)) as c:
        return from_frame(next(c.decode(video=0)))


def test_hdr_metadata_is_carried_to_hevc10_and_warned_about_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fractions import Fraction

    src = _hdr_clip(tmp_path / "hdr.mkv")
    hdr = _hdr_of(src)
    assert isinstance(hdr, HdrMetadata) and (hdr.max_cll, hdr.max_fall) == (1000, 400)
    assert hdr.luminance == (Fraction(1, 10000), Fraction(1000))  # L(10000000,1) in 0.0001 cd/m²
    assert hdr.primaries is not None and hdr.primaries[0] == (
        Fraction(17, 25),
        Fraction(8, 25),
    )  # R(34000,16000)
    out = tmp_path / "o.mkv"
    assert main(["upscale", str(src), str(out), "--profile", "hevc10", "--json"]) == 0
    capsys.readouterr()
    assert _hdr_of(out) == hdr
    with av.open(str(out)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.color_primaries, ctx.color_trc, ctx.colorspace) == (9, 16, 9)
    assert main(["upscale", str(src), str(tmp_path / "x264.mkv"), "--preset", "ultrafast", "--json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert any("mastering-display/content-light metadata not carried" in w for w in warnings)


def test_colorspace_bt709_converts_sd_matrices(sd_mp4: mf.Clip, tmp_path: Path) -> None:
    # The same picture through the BT.601 source and a BT.709 output: decoded back with each file's own
    # matrix, the colours agree; decoded with the wrong one they would not.
    out = tmp_path / "hd.mkv"
    assert (
        main(["upscale", str(sd_mp4.path), str(out), "--colorspace", "bt709", "--preset", "ultrafast"]) == 0
    )
    kept = tmp_path / "sd.mkv"
    assert main(["upscale", str(sd_mp4.path), str(kept), "--preset", "ultrafast"]) == 0
    with av.open(str(out)) as a, av.open(str(kept)) as b:
        assert a.streams.video[0].codec_context.colorspace == 1  # bt709
        assert b.streams.video[0].codec_context.colorspace == 6  # smpte170m, as the source
        fa, fb = next(a.decode(video=0)), next(b.decode(video=0))
        rgb_a = fa.reformat(format="rgb24", src_colorspace=1).to_ndarray().astype(int)
        rgb_b = fb.reformat(format="rgb24", src_colorspace=5).to_ndarray().astype(int)
        wrong = fa.reformat(format="rgb24", src_colorspace=5).to_ndarray().astype(int)
    assert np.abs(rgb_a - rgb_b).mean() < 2.0 < np.abs(wrong - rgb_b).mean()


def test_square_pixels_resamples_anamorphic_output_keeping_the_display_aspect(
    vfr_mkv: mf.Clip, tmp_path: Path
) -> None:
    out = tmp_path / "square.mkv"
    assert main(["upscale", str(vfr_mkv.path), str(out), "--square-pixels", "--preset", "ultrafast"]) == 0
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        sar = s.codec_context.sample_aspect_ratio
        assert (s.width, s.height) == (284, 240)  # 320 x 8/9, rounded to even; the height is kept
        assert sar in (None, 1) and len(list(c.decode(s))) == len(vfr_mkv.pts)
    source_dar = Fraction(vfr_mkv.width, vfr_mkv.height) * Fraction(8, 9)
    assert abs(Fraction(284, 240) / source_dar - 1) < 0.01


def _ten_bit_ramp(path: Path, width: int = 256, height: int = 16) -> Path:
    """Lossless 10-bit video whose luma climbs one code per column (400..655), chroma neutral."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p10le"
        planes = np.full((height * 3 // 2, width), 512, np.uint16)
        planes[:height] = 400 + np.arange(width, dtype=np.uint16)[None]
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p10le")
            frame.pts = i
            out.mux(s.encode(frame))
        out.mux(s.encode(None))
    return path


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_ten_bit_source_keeps_ten_bits_on_the_cpu_path(backend: str, tmp_path: Path) -> None:
    # Through 8-bit RGB a ramp of one 10-bit code per column collapses into steps of about four codes; the
    # uint16 graph (ONNX Runtime) or 16-bit tensors (torch) with rgb48 frames keep nearly every code.
    if backend == "torch":
        pytest.importorskip("torch")
    src = _ten_bit_ramp(tmp_path / "ramp.mkv")
    out = tmp_path / "o.mkv"
    argv = [
        "upscale",
        str(src),
        str(out),
        "--profile",
        "archive",
        "--backend",
        backend,
        "--model",
        "compact-x2",
    ]
    assert main(argv) == 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
        row = next(c.decode(video=0)).to_ndarray()[16, 40:472]  # a middle row, away from the edges
    assert len(np.unique(row)) > 180  # 216 codes span this stretch; 8-bit RGB leaves about 60 of them


def test_unknown_colorspace_is_refused_before_any_work(
    sd_mp4: mf.Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["upscale", str(sd_mp4.path), str(tmp_path / "o.mkv"), "--colorspace", "rec709x"]) == 2
    assert "unknown --colorspace 'rec709x'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
