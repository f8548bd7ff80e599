"""The output contract: every encoder request is written exactly as asked or refused before decoding with
one line and exit 2; RGB outputs are tagged and coloured as RGB; a full or read-only disk is exit 4."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import av
import media_fixtures as mf
import numpy as np
import pytest

import vsr
from vsr.cli import main

CODECS = (
    "libx264", "libx264rgb", "libx265", "ffv1", "prores_ks", "mpeg2video", "mpeg4", "libvpx-vp9", "libsvtav1",
    "utvideo",
)  # fmt: skip
PIX_FMTS = ("yuv420p", "yuv422p", "yuv444p", "yuv420p10le", "gbrp", "bgr0")
CONTAINERS = (".mkv", ".mp4", ".mov", ".avi")
DECODED_AS = {"libx264": "h264", "libx264rgb": "h264", "libx265": "hevc", "prores_ks": "prores",
              "libvpx-vp9": "vp9", "libsvtav1": "av1"}  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three 32×24 frames at 25 fps (a rate MPEG-2 takes), lossless, tagged BT.709 limited range."""
    path = tmp_path_factory.mktemp("contract") / "tiny.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv444p"
        ctx = stream.codec_context
        ctx.color_primaries = ctx.color_trc = ctx.colorspace = 1  # bt709
        ctx.color_range = 1
        for k in range(3):
            rgb = mf.picture(k, 32, 24)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv444p", dst_colorspace=1
            )
            frame.pts = k
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _pts(path: Path) -> list:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return sorted(p.pts * s.time_base for p in c.demux(s) if p.pts is not None)


@pytest.mark.slow
def test_every_codec_pixel_format_and_container_is_written_exactly_or_refused(
    tiny: Path, tmp_path: Path
) -> None:
    written, refused = [], []
    yuv_tags = (1, 1)  # the source's: BT.709, limited range
    for codec, pix_fmt, suffix in itertools.product(CODECS, PIX_FMTS, CONTAINERS):
        out = tmp_path / f"{codec}-{pix_fmt}{suffix}"
        try:
            vsr.upscale(tiny, out, encode=vsr.EncodeSettings(codec=codec, pix_fmt=pix_fmt))
        except vsr.UsageError as error:  # the only way a request may fail: exit 2, one line, no file
            assert "\n" not in str(error) and not out.exists(), (codec, pix_fmt, suffix, error)
            refused.append((codec, pix_fmt, suffix))
            continue
        written.append((codec, pix_fmt, suffix))
        accepted = [f.name for f in av.codec.Codec(codec, "w").video_formats or []]
        assert not accepted or pix_fmt in accepted  # never written in a format the encoder does not take
        with av.open(str(out)) as c:
            ctx = c.streams.video[0].codec_context
            frames = list(c.decode(video=0))
            assert ctx.name == DECODED_AS.get(codec, codec) or (codec == "libsvtav1" and "av1" in ctx.name)
            # H.264 stores RGB as planar GBR whatever packed order it was given: decoders return gbrp.
            decoded = "gbrp" if codec == "libx264rgb" else pix_fmt
            assert frames[0].format.name == decoded, (codec, pix_fmt, suffix)
            rgb = av.video.format.VideoFormat(pix_fmt).is_rgb
            tags = (frames[0].colorspace, frames[0].color_range)
            if suffix != ".avi":  # AVI holds no colour tags
                want = (0, 2) if rgb else yuv_tags
                # MOV's colr atom has no range field: unspecified is read as limited, which is right here.
                limited_unsaid = want[1] == 1 and tags[1] == 0 and suffix == ".mov"
                assert tags == want or (tags[0] == want[0] and limited_unsaid), (codec, pix_fmt, suffix, tags)
            assert len(frames) == 3
        assert _pts(out) == _pts(tiny), (codec, pix_fmt, suffix)
    print(f"matrix: {len(written)} written exactly, {len(refused)} refused")  # for the record (-s)
    # Not a test that passes by refusing: FFV1, x264 and VP9 alone take most of these.
    assert len(written) >= 60 and {("ffv1", "bgr0", ".mkv"), ("libx264", "yuv420p", ".mp4")} <= set(written)
    assert ("prores_ks", "yuv420p", ".mov") in refused  # ProRes is 4:2:2 or 4:4:4


def test_the_issue_table_ends_in_a_file_or_one_line(tiny: Path, tmp_path: Path, capsys) -> None:
    cases = [
        (["--codec", "ffv1", "--pix-fmt", "gbrp"], ".mkv", 2, "takes"),  # gbrp is not FFV1's: say what is
        (["--codec", "mpeg2video"], ".mpg", 0, ""),
        (["--codec", "utvideo"], ".mkv", 2, "write .avi"),
        (["--codec", "utvideo"], ".avi", 0, ""),
        (["--codec", "libx264rgb", "--pix-fmt", "rgb24"], ".mkv", 0, ""),
        (["--codec", "nosuchcodec"], ".mkv", 2, "unknown video encoder"),
        (["--codec", "libx264", "--pix-fmt", "gbrp"], ".mkv", 2, "libx264 does not take gbrp"),
        (["--codec", "prores_ks", "--pix-fmt", "yuv420p"], ".mov", 2, "yuv422p10le"),
        (["--pix-fmt", "nosuchfmt"], ".mkv", 2, "unknown pixel format"),
    ]
    for k, (extra, suffix, code, said) in enumerate(cases):
        out = tmp_path / f"o{k}{suffix}"
        assert main(["upscale", str(tiny), str(out), *extra]) == code, extra
        err = capsys.readouterr().err.strip()
        if code:
            assert err.count("\n") == 0 and said in err and "internal" not in err, (extra, err)
            assert not out.exists()
        else:
            assert out.stat().st_size > 0


@pytest.mark.parametrize(
    "codec,pix_fmt,suffix",
    [("libx264rgb", "rgb24", ".mkv"), ("ffv1", "bgr0", ".mkv"), ("ffv1", "gbrp10le", ".mkv"),
     ("utvideo", "gbrp", ".avi")],
)  # fmt: skip
def test_rgb_outputs_are_tagged_rgb_and_keep_the_models_colours(
    codec: str, pix_fmt: str, suffix: str, tiny: Path, tmp_path: Path
) -> None:
    out = tmp_path / f"rgb{suffix}"
    crf = 0 if codec == "libx264rgb" else None  # lossless, so the colours can be compared
    vsr.upscale(
        tiny,
        out,
        model="espcn-x2",
        backend="onnxruntime",
        encode=vsr.EncodeSettings(codec=codec, pix_fmt=pix_fmt, crf=crf),
    )
    with av.open(str(tiny)) as c:
        source = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with vsr.load_model("espcn-x2", backend="onnxruntime") as model:
        want = model(source).astype(int)
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
        got = np.stack([f.to_ndarray(format="rgb24") for f in frames]).astype(int)
    if suffix != ".avi":  # AVI and Ut Video store no colour tags; RGB pixels need none to be read right
        assert (frames[0].colorspace, frames[0].color_range) == (0, 2)  # RGB (GBR) matrix, full range
    assert np.abs(got - want).max() <= 1


def test_a_request_the_container_cannot_take_fails_before_decoding(tiny: Path, tmp_path: Path) -> None:
    progress: list[int] = []
    with pytest.raises(vsr.UsageError, match="cannot hold utvideo"):
        vsr.upscale(tiny, tmp_path / "o.mkv", encode=vsr.EncodeSettings(codec="utvideo"),
                    on_progress=lambda p: progress.append(p.decoded))  # fmt: skip
    assert progress == [] and list(tmp_path.iterdir()) == []


def _mount(path: Path, options: str) -> bool:
    path.mkdir()
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


@pytest.mark.parametrize(
    "options,said", [("size=48k", "no space left"), ("ro", "cannot write the output there")]
)
def test_a_full_or_read_only_disk_is_exit_4_with_nothing_left(
    options: str, said: str, tmp_path: Path, capsys
) -> None:
    disk = tmp_path / "disk"
    if not _mount(disk, options):
        pytest.skip("needs to mount a tmpfs (root)")
    try:
        clip = mf.make_clip(tmp_path / "in.mkv", width=96, height=64, frames=24, audio_tracks=0)
        before = clip.path.read_bytes()
        assert main(["upscale", str(clip.path), str(disk / "out.mkv"), "--codec", "ffv1"]) == 4
        *before_work, err = capsys.readouterr().err.strip().splitlines()
        assert said in err and err.startswith("vsr: error:"), err
        if options.startswith("size"):  # FFV1 grows with the picture: the shortfall is said before any work
            assert len(before_work) == 1 and "needs about" in before_work[0] and "free" in before_work[0]
        assert list(disk.iterdir()) == [] and clip.path.read_bytes() == before
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_missing_output_folder_is_exit_4_before_any_work(tiny: Path, tmp_path: Path, capsys) -> None:
    assert main(["upscale", str(tiny), str(tmp_path / "nowhere" / "o.mkv")]) == 4
    assert "no such directory for the output" in capsys.readouterr().err
