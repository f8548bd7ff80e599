"""`vsr upscale` end to end through the real CLI: what the output keeps, and how bad input is refused."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import media_fixtures as mf
import numpy as np
import pytest

from vsr.cli import main

REPO = Path(__file__).resolve().parent.parent


def _video_pts_seconds(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return sorted(p.pts * stream.time_base for p in c.demux(stream) if p.pts is not None)


def _packets(path: Path, kind: str) -> dict[int, list[bytes]]:
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        out: dict[int, list[bytes]] = {i: [] for i in range(len(streams))}
        order = {s.index: i for i, s in enumerate(streams)}
        for p in c.demux(*streams):
            if p.size:
                out[order[p.stream.index]].append(bytes(p))
        return out


@pytest.fixture(scope="module")
def upscaled(vfr_mkv: mf.Clip, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("up") / "out.mkv"
    rc = main(["upscale", str(vfr_mkv.path), str(out), "--json", "--preset", "ultrafast"])
    assert rc == 0
    return out, {}


def test_output_keeps_frames_timing_streams_and_tags(upscaled: tuple[Path, dict], vfr_mkv: mf.Clip) -> None:
    out, _ = upscaled
    with av.open(str(vfr_mkv.path)) as src, av.open(str(out)) as dst:
        sv, dv = src.streams.video[0], dst.streams.video[0]
        assert (dv.codec_context.width, dv.codec_context.height) == (2 * vfr_mkv.width, 2 * vfr_mkv.height)
        assert dv.codec_context.sample_aspect_ratio == sv.codec_context.sample_aspect_ratio == Fraction(8, 9)
        for tag in ("color_primaries", "color_trc", "colorspace", "color_range"):
            assert getattr(dv.codec_context, tag) == getattr(sv.codec_context, tag), tag
        assert [s.metadata.get("language") for s in dst.streams.audio] == ["eng", "fra"]
        assert len(dst.streams.subtitles) == 1
    # Every frame, at exactly the source's (variable) times.
    assert _video_pts_seconds(out) == _video_pts_seconds(vfr_mkv.path) == sorted(vfr_mkv.seconds())
    assert _packets(out, "audio") == _packets(vfr_mkv.path, "audio")
    assert _packets(out, "subtitle") == _packets(vfr_mkv.path, "subtitle")


def test_json_summary(vfr_mkv: mf.Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.mp4"
    assert (
        main(["upscale", str(vfr_mkv.path), str(out), "--json", "--preset", "ultrafast", "--batch", "3"]) == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == len(vfr_mkv.pts)
    assert result["output_size"] == [2 * vfr_mkv.width, 2 * vfr_mkv.height]
    assert result["model"] == result["auto"]["chain"]  # the default, auto, says what it ran and why
    assert result["auto"]["measured"]["codec"] == "h264" and result["auto"]["reason"]
    # mp4 cannot hold the srt subtitle: dropped with a warning, never fatal.
    assert any("subtitle" in w or "srt" in w for w in result["warnings"])


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("vsr: error:") and "Traceback" not in err
    return err


@pytest.mark.parametrize("case", ["missing", "zero-byte", "text", "random", "audio-only", "still-png"])
def test_bad_input_one_line_exit_2_no_output(
    case: str, bad_inputs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    _refused(["upscale", str(bad_inputs[case]), str(out)], capsys)
    assert list(tmp_path.iterdir()) == []


def test_output_equal_to_input_refused(sd_mp4: mf.Clip, capsys: pytest.CaptureFixture[str]) -> None:
    before = sd_mp4.path.read_bytes()
    assert "overwrite the input" in _refused(["upscale", str(sd_mp4.path), str(sd_mp4.path)], capsys)
    assert sd_mp4.path.read_bytes() == before


def test_existing_output_needs_overwrite(
    sd_mp4: mf.Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    out.write_bytes(b"keep me")
    assert "--overwrite" in _refused(["upscale", str(sd_mp4.path), str(out)], capsys)
    assert out.read_bytes() == b"keep me"
    assert main(["upscale", str(sd_mp4.path), str(out), "--overwrite", "--preset", "ultrafast"]) == 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.width == 2 * sd_mp4.width
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temporary file left


def test_unknown_model_and_wrong_scale(
    sd_mp4: mf.Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "neither shipped nor imported" in _refused(
        ["upscale", str(sd_mp4.path), str(tmp_path / "a.mp4"), "--model", "x"], capsys
    )
    err = _refused(
        ["upscale", str(sd_mp4.path), str(tmp_path / "a.mp4"), "--model", "espcn-x2", "--scale", "4"], capsys
    )
    assert "×2" in err


def test_every_shipped_model_runs_in_upscale(tmp_path: Path) -> None:
    from vsr.models.artefacts import shipped_models

    clip = mf.make_clip(tmp_path / "in.mkv", width=64, height=48, frames=3, audio_tracks=1)
    models = shipped_models()
    denoisers = [n for n, m in models.items() if m.spec.task == "denoise"]
    for name, model in models.items():
        if model.spec.task == "denoise":
            continue
        for denoise in [None, *denoisers]:
            out = tmp_path / f"{name}-{denoise}.mkv"
            argv = ["upscale", str(clip.path), str(out), "--model", name, "--preset", "ultrafast"]
            assert main(argv + (["--denoise", denoise] if denoise else [])) == 0, (name, denoise)
            with av.open(str(out)) as c:
                ctx = c.streams.video[0].codec_context
                assert (ctx.width, ctx.height) == (64 * model.spec.scale, 48 * model.spec.scale)


def _rgb_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24").astype(float) for f in c.decode(video=0)])


def test_denoise_runs_before_the_upscaler(tmp_path: Path) -> None:
    # A clean clip and the same clip with σ = 25 noise, both lossless. Upscaled with --denoise, the noisy
    # clip must come much closer to the clean clip's upscale than it does without the denoiser.
    from vsr.models.artefacts import shipped_models

    denoisers = [n for n, m in shipped_models().items() if m.spec.task == "denoise"]
    if not denoisers:
        pytest.skip("no denoiser is shipped")
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:96]
    # Mid-range levels, so that clipping the noise at 0 and 255 does not bias it.
    waves = [
        np.stack([128 + 70 * np.sin((x + 3 * i) / 9 + c * y / 13) for c in range(3)], -1) for i in range(3)
    ]
    clean = [w.round().astype(np.uint8) for w in waves]
    noisy = [(c + rng.normal(0, 25, c.shape)).round().clip(0, 255).astype(np.uint8) for c in clean]
    sources = {
        label: mf.write_frames(tmp_path / f"{label}.mkv", frames, codec="ffv1", pix_fmt="yuv444p")
        for label, frames in (("clean", clean), ("noisy", noisy))
    }
    runs = {"reference": ("clean", None), "plain": ("noisy", None), "denoised": ("noisy", denoisers[0])}
    outputs = {}
    for label, (source, denoise) in runs.items():
        out = tmp_path / f"{label}.mkv"
        argv = ["upscale", str(sources[source]), str(out), "--model", "espcn-x2", "--profile", "archive"]
        assert main(argv + (["--denoise", denoise] if denoise else [])) == 0
        outputs[label] = _rgb_frames(out)
    assert outputs["reference"].shape == (3, 128, 192, 3)
    error = {k: np.sqrt(np.mean((outputs[k] - outputs["reference"]) ** 2)) for k in ("plain", "denoised")}
    assert error["denoised"] < 0.5 * error["plain"], error  # 0.28 measured; 1.0 without the denoiser
