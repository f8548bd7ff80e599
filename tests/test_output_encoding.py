"""What the output is encoded as: profiles, colour matrices, square pixels, HDR metadata, 10-bit depth."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import media_fixtures as mf
import numpy as np
import pytest

from vsr.cli import main
from vsr.media.hdr import HdrMetadata

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "profile,suffix,codec,pix_fmt",
    [
        ("web", ".mp4", "h264", "yuv420p"),
        ("master", ".mov", "prores", "yuv422p10le"),
        ("archive", ".mkv", "ffv1", "yuv420p"),
        ("hevc10", ".mkv", "hevc", "yuv420p10le"),
        ("prores", ".mov", "prores", "yuv422p10le"),
        ("ffv1", ".mkv", "ffv1", "yuv420p"),
        ("av1", ".mkv", "libdav1d", "yuv420p10le"),
        ("broadcast", ".ts", "mpeg2video", "yuv422p"),
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
