"""The compressed-video evaluation protocol: clips scored frame by frame, H.264 coding a clip as one
inter-predicted stream, on generated clips (and on Vid4 when ../shared/data is present)."""

from __future__ import annotations

from pathlib import Path

import media_fixtures as mf
import numpy as np
import pytest

from vsr.degradations import Damage, h264, h264_sequence
from vsr.evaluate import SrSet, bicubic_predictor, evaluate_video_sr, mean_scores
from vsr.metrics import psnr

VID4 = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "video-eval" / "Vid4"


def _moving(n: int, h: int = 64, w: int = 96) -> list[np.ndarray]:
    return [mf.picture(i, w, h) for i in range(n)]


def test_h264_sequence_keeps_every_frame_in_order() -> None:
    frames = _moving(12)
    decoded = h264_sequence(frames, 23)
    assert len(decoded) == 12 and all(d.shape == f.shape for d, f in zip(decoded, frames, strict=True))
    # Each decoded frame is closest to its own source frame: the order survived B-frame reordering.
    for i, d in enumerate(decoded):
        assert int(np.argmax([psnr(d, f) for f in frames])) == i
    assert min(psnr(d, f) for d, f in zip(decoded, frames, strict=True)) > 25  # 28.7 at CRF 23
    assert h264(frames[5], 23).shape == frames[5].shape  # the one-frame (intra) case is the same code


def test_video_protocol_scores_every_frame_of_every_clip() -> None:
    clips = [("a", _moving(5)), ("b", _moving(3, 48, 64))]
    scores = evaluate_video_sr(clips, 2, bicubic_predictor(2), Damage.parse("h264:crf=30").sequence)
    assert [s.name for s in scores] == ["a#0", "a#1", "a#2", "a#3", "a#4", "b#0", "b#1", "b#2"]
    # bicubic as the model: model and baseline are the same numbers
    assert all(s.psnr == pytest.approx(s.baseline_psnr) for s in scores)


def test_noise_and_jpeg_damage_each_frame_alone() -> None:
    frames = _moving(3)
    noisy = Damage.parse("noise:sigma=10").sequence(frames)
    assert not np.array_equal(noisy[0] - frames[0], noisy[1] - frames[1])  # seeded by the frame index
    assert Damage.parse("clean").sequence(frames) is frames


def test_a_folder_of_clips_is_a_video_set(tmp_path: Path) -> None:
    mf.write_frames(tmp_path / "c.mkv", _moving(4), codec="ffv1", pix_fmt="bgr0")
    sr_set = SrSet.load(tmp_path)
    assert [name for name, _ in sr_set.clips] == ["c"] and len(sr_set.clips[0][1]) == 4
    assert "mean over all frames" in sr_set.lr(Damage.parse("h264:crf=28"))
    assert np.array_equal(sr_set.clips[0][1][2], _moving(4)[2])  # lossless round trip


@pytest.mark.slow
@pytest.mark.skipif(not VID4.is_dir(), reason="../shared/data is not present")
def test_vid4_calendar_inter_coded_compact_beats_bicubic(tmp_path: Path) -> None:
    import vsr.api

    (tmp_path / "calendar.mkv").symlink_to(VID4 / "calendar.mkv")
    result = vsr.api.evaluate(
        "compact-x2", tmp_path, degrade="h264:crf=28", backend="openvino", precision="fp32"
    )
    mean = mean_scores(result.scores)
    assert len(result.scores) == 41 and "x264 stream per clip" in result.protocol
    assert mean["psnr"] > mean["baseline_psnr"] + 1.0  # measured: 24.60 against 23.11


def test_flicker_is_zero_for_a_steady_restorer_and_counts_a_restless_one() -> None:
    from vsr.evaluate import flicker
    from vsr.imresize import imresize

    still = [("s", mf.picture(3, 48, 32))]
    steady = flicker(still, 2, lambda lr: imresize(lr, 2), crf=28, frames=6)
    assert steady[0] == pytest.approx(steady[1])  # bicubic as the model: the same instability
    calls = iter(range(100))

    def restless(lr: np.ndarray) -> np.ndarray:  # adds a different offset every frame
        return np.clip(imresize(lr, 2).astype(int) + next(calls) % 3 * 4, 0, 255).astype(np.uint8)

    model, bicubic = flicker(still, 2, restless, crf=28, frames=6)
    assert model > bicubic + 1.0


def test_eval_flicker_refuses_a_damage_it_cannot_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vsr.cli import main

    (tmp_path / "a.png").write_bytes(b"")
    assert main(["eval", "--data", str(tmp_path), "--flicker", "--degrade", "jpeg:q=30"]) == 2
    assert "--flicker codes the stills with x264" in capsys.readouterr().err
