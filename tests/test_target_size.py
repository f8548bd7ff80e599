"""Target sizes (`--size`, `--width`, `--height`, `--fit`) and the ×8 cascade: the arithmetic on the
issue's own examples, then whole jobs that keep every frame, its pts and the audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import media_fixtures as mf
import numpy as np
import pytest

import vsr
from vsr.cli import main
from vsr.media.geometry import Placement, TargetSize, place

SCALES = (2, 3, 4, 8)
PAL_SD = (720, 576, Fraction(16, 15))  # 4:3 on screen


def test_sd_at_16_15_reaches_1080_lines_as_4_3() -> None:
    assert place(*PAL_SD, 0, TargetSize(height=1080), SCALES) == Placement(2, None, (1440, 1080))
    assert place(*PAL_SD, 0, TargetSize(width=1440), SCALES) == Placement(2, None, (1440, 1080))


def test_pad_pillarboxes_into_the_frame() -> None:
    p = place(*PAL_SD, 0, TargetSize(1920, 1080, "pad"), SCALES)
    assert (p.scale, p.inner, p.pad, p.size) == (2, (1440, 1080), (240, 0, 240, 0), (1920, 1080))


def test_crop_keeps_the_middle_at_the_targets_aspect() -> None:
    # 4:3 into 16:9: all 720 columns, 432 of the 576 rows, which ×2 would not fill: ×3 runs.
    p = place(*PAL_SD, 0, TargetSize(1920, 1080, "crop"), SCALES)
    assert (p.scale, p.crop, p.inner, p.pad) == (3, (0, 216, 2160, 1296), (1920, 1080), (0, 0, 0, 0))


def test_stretch_ignores_the_aspect_and_rotation_turns_the_target() -> None:
    assert place(640, 360, None, 0, TargetSize(1920, 1440, "stretch"), SCALES).inner == (1920, 1440)
    # A phone clip stored 640x360 and shown turned: the viewer's 1080x1920 is 1920x1080 stored.
    assert place(640, 360, None, 90, TargetSize(1080, 1920), SCALES) == Placement(3, None, (1920, 1080))


def test_non_integer_factors_take_the_next_scale_up() -> None:
    assert place(640, 360, None, 0, TargetSize(height=800), SCALES).scale == 3  # ×2.22
    assert place(160, 120, None, 0, TargetSize(width=1280), SCALES).scale == 8


@pytest.mark.parametrize(
    "target,message",
    [
        (TargetSize(640, 360), "no larger than the 640x360 source"),
        (TargetSize(height=6480), "needs ×18.00; the largest factor here is ×8"),
    ],
)
def test_targets_out_of_reach_are_refused(target: TargetSize, message: str) -> None:
    with pytest.raises(vsr.UsageError, match=message.replace("×", ".")):
        place(640, 360, None, 0, target, SCALES)


@pytest.mark.parametrize("args", [(1921, 1080), (8, 8)])
def test_odd_or_tiny_sides_are_refused(args: tuple[int, int]) -> None:
    with pytest.raises(vsr.UsageError, match="even and at least 16"):
        TargetSize(*args)


def _frames_and_pts(path: Path) -> tuple[list[np.ndarray], list[int]]:
    with av.open(str(path)) as f:
        frames = list(f.decode(video=0))
    return [fr.to_ndarray(format="rgb24") for fr in frames], [fr.pts for fr in frames]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> mf.Clip:
    return mf.make_clip(tmp_path_factory.mktemp("target") / "in.mkv", width=160, height=120, frames=6)


def test_pad_job_draws_black_bars_and_keeps_timing_and_audio(clip: mf.Clip, tmp_path: Path) -> None:
    out = tmp_path / "pad.mkv"
    result = vsr.upscale(clip.path, out, size="640x360")  # 4:3 into 16:9: ×3, 480x360 between bars
    assert result.model == "espcn-x3" and result.output_size == (640, 360)
    frames, pts = _frames_and_pts(out)
    assert pts == _frames_and_pts(clip.path)[1]
    with av.open(str(out)) as f:
        assert f.streams.video[0].sample_aspect_ratio in (None, Fraction(1)) and len(f.streams.audio) == 1
    bars = np.concatenate([frames[0][:, :78], frames[0][:, -78:]], axis=1)
    assert bars.max() <= 2 and frames[0][:, 90:-90].mean() > 20  # black bars, a picture between them


def test_crop_and_width_jobs(clip: mf.Clip, tmp_path: Path) -> None:
    crop = vsr.upscale(clip.path, tmp_path / "crop.mkv", size=(640, 360), fit="crop")
    assert crop.output_size == (640, 360) and crop.frames == 6
    frames, _ = _frames_and_pts(tmp_path / "crop.mkv")
    assert frames[0][:, :8].mean() > 20  # no bars: the picture fills the frame
    wide = vsr.upscale(clip.path, tmp_path / "w.mkv", width=400, model="espcn-x3")
    assert wide.output_size == (400, 300) and wide.model == "espcn-x3"


def test_x8_is_a_cascade(clip: mf.Clip, tmp_path: Path) -> None:
    result = vsr.upscale(clip.path, tmp_path / "x8.mkv", scale=8)
    assert result.model == "compact-x4 → espcn-x2" and result.output_size == (1280, 960)
    assert result.frames == 6


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--fit", "crop"], "--fit applies to a target size"),
        (["--size", "640x360", "--width", "640"], "not both"),
        (["--size", "640"], "WIDTHxHEIGHT"),
        (["--size", "320x240", "--square-pixels"], "square pixels already"),
        (["--size", "640x480", "--model", "espcn-x2"], "needs ×4.00; the largest factor here is ×2"),
        (["--model", "espcn-x2+dncnn-color"], "dncnn-color is not one"),
    ],
)
def test_refused_target_requests(
    extra: list[str], message: str, clip: mf.Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["upscale", str(clip.path), str(tmp_path / "o.mkv"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
