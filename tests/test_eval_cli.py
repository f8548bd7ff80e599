"""`vsr eval`, `vsr models` and the denoising protocol pieces, through the CLI and the library."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vsr.cli import main
from vsr.degradations import h264, jpeg, noise_degrade
from vsr.evaluate import load_eval_images
from vsr.media.filters import nlmeans
from vsr.metrics import psnr

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _smooth(h: int = 64, w: int = 80) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack(
        [128 + 100 * np.sin(x / 7 + y / 11), 128 + 90 * np.cos(x / 5 - y / 9), 128 + 60 * np.sin(x / 6)], -1
    )
    return img.round().astype(np.uint8)


def test_degradations_are_deterministic_and_lossy() -> None:
    img = _smooth()
    a, b = noise_degrade(25)(img, 3), noise_degrade(25)(img, 3)
    assert np.array_equal(a, b) and not np.array_equal(a, noise_degrade(25)(img, 4))
    assert 19 < psnr(a, img) < 23  # σ = 25 → about 20.2 dB
    assert psnr(jpeg(img, 10), img) < psnr(jpeg(img, 90), img)
    odd = _smooth(63, 81)
    assert h264(odd, 40).shape == odd.shape and psnr(h264(odd, 40), odd) < psnr(h264(odd, 18), odd)


def test_nlmeans_denoises() -> None:
    img = _smooth(128, 160)
    noisy = noise_degrade(25)(img, 0)
    assert psnr(nlmeans(noisy, 10), img) > psnr(noisy, img) + 3


def test_eval_images_keep_greyscale(tmp_path: Path) -> None:
    import av

    for name, fmt, shape in (("grey.png", "gray", (16, 24)), ("rgb.png", "rgb24", (16, 24, 3))):
        with av.open(str(tmp_path / name), "w", format="image2") as c:
            s = c.add_stream("png", rate=1)
            s.width, s.height, s.pix_fmt = 24, 16, fmt
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.zeros(shape, np.uint8), format=fmt)))
            c.mux(s.encode(None))
    images = dict(load_eval_images(tmp_path))
    assert images["grey"].shape == (16, 24) and images["rgb"].shape == (16, 24, 3)


def test_models_lists_shipped_with_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)
    assert "espcn-x2" in models and models["espcn-x2"]["metrics"]["Set5"]["psnr"] > 33.66


def test_models_table_shows_upscalers_and_denoisers(capsys: pytest.CaptureFixture[str]) -> None:
    from vsr.models.artefacts import load_manifest

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name, entry in load_manifest()["models"].items():
        assert name in out
        if entry["task"] == "denoise":  # a row per level, with the gain on nlmeans
            q10 = entry["metrics"]["jpeg10"]
            assert f"{q10['psnr']:.2f} ({q10['psnr'] - q10['nlmeans_psnr']:+.2f})" in out


def test_eval_refuses_mismatched_requests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--model", "espcn-x2", "--data", str(tmp_path), "--scale", "4"]) == 2
    assert "×2" in capsys.readouterr().err
    assert main(["eval", "--model", "espcn-x2", "--data", str(tmp_path)]) == 2
    assert "no images" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "sr-eval" / "Set5").is_dir(), reason="../shared/data is not present")
def test_eval_sr_json_matches_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--model", "espcn-x2", "--data", str(DATA / "sr-eval" / "Set5"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["images"]) == 5
    assert result["mean"]["baseline_psnr"] == pytest.approx(33.66, abs=0.02)
    main(["models", "--json"])
    manifest = json.loads(capsys.readouterr().out)
    assert result["mean"]["psnr"] == pytest.approx(manifest["espcn-x2"]["metrics"]["Set5"]["psnr"], abs=0.01)


def test_damage_specs_parse_and_refuse() -> None:
    from vsr.degradations import Damage
    from vsr.errors import UsageError

    img = _smooth()
    assert Damage.parse("clean").apply is None
    for spec in ("h264:crf=28", "mpeg2:q=6", "mpeg4:q=8", "jpeg:q=30", "noise:sigma=10"):
        damaged = Damage.parse(spec).apply(img, 0)  # type: ignore[misc]
        assert damaged.shape == img.shape and 20 < psnr(damaged, img) < 60, spec
    bads = (
        "h264",
        "h264:q=28",
        "mpeg2:q=0",
        "mpeg4:q=32",
        "mpeg2:crf=6",
        "jpeg:q=0",
        "noise:sigma=x",
        "blur:sigma=0",
        "blur:sigma=11",
        "h264:crf=23,blur:sigma=1",
        "blur:sigma=1,blur:sigma=2",
        "blur:sigma=1,h264:crf=2,jpeg:q=3",
    )
    for bad in bads:
        with pytest.raises(UsageError):
            Damage.parse(bad)


def test_mpeg_damage_codes_one_stream_at_the_qscale_it_names() -> None:
    import io

    from vsr.degradations import Damage, codec_file
    from vsr.media.assess import assess

    frames = [np.roll(_smooth(), 3 * k, axis=1) for k in range(5)]
    for kind, q in (("mpeg2", 6), ("mpeg4", 10)):
        damage = Damage.parse(f"{kind}:q={q}")
        assert damage.codec == (kind, q)
        measured = assess(io.BytesIO(codec_file(frames, kind, q)))
        assert (measured.codec, measured.qp_scale, measured.qp) == (
            {"mpeg2": "mpeg2video", "mpeg4": "mpeg4"}[kind],
            "mpeg",
            2 * q,
        )  # FFmpeg exports the qscale doubled, on MPEG-2's scale
        assert not measured.intra  # a GOP of 12 with B-frames, as DVDs are authored
        coded = damage.sequence(frames)
        assert len(coded) == 5 and all(25 < psnr(c, f) < 60 for c, f in zip(coded, frames, strict=True))
    assert Damage.parse("blur:sigma=1.0,mpeg2:q=4").codec == ("mpeg2", 4)
    assert Damage.parse("noise:sigma=5").codec is None and Damage.parse("tape").codec is None


def test_tape_is_a_soft_noisy_source_on_dvd_mpeg2() -> None:
    from vsr.degradations import TAPE_BLUR, Damage

    tape = Damage.parse("tape")
    assert tape.blur == TAPE_BLUR and tape.apply is not None
    frames = [np.roll(_smooth(), 2 * k, axis=1) for k in range(6)]
    coded = tape.sequence(frames)
    assert len(coded) == 6 and coded[0].shape == frames[0].shape
    errors = [psnr(c, f) for c, f in zip(coded, frames, strict=True)]
    assert all(25 < e < 40 for e in errors), errors  # noise σ 5 and MPEG-2: damaged, still the picture
    assert not np.array_equal(coded[1] - frames[1], coded[2] - frames[2])  # each frame its own noise
    still = tape.apply(frames[0], 0)  # type: ignore[misc]
    assert still.shape == frames[0].shape and 25 < psnr(still, frames[0]) < 40


def test_a_soft_source_is_blurred_before_the_downscale_as_matlab_does() -> None:
    from vsr.degradations import Damage, gaussian_blur
    from vsr.evaluate import bicubic_predictor, evaluate_sr, mean_scores

    impulse = np.zeros((11, 11), np.uint8)
    impulse[5, 5] = 255
    # imgaussfilt(I, 1.0): a 5-tap kernel, centre weight 0.4026² of the impulse
    assert gaussian_blur(impulse, 1.0)[5, 5] == round(255 * 0.40262**2)
    assert gaussian_blur(impulse, 1.0)[5, 8] == 0  # 2·ceil(2σ)+1 = 5 taps: nothing 3 pixels away
    soft = Damage.parse("blur:sigma=1.0,h264:crf=23")
    assert soft.blur == 1.0 and soft.apply is not None
    images = [("a", _smooth()), ("b", _smooth()[::-1].copy())]
    clean = mean_scores(evaluate_sr(images, 2, bicubic_predictor(2)))["psnr"]
    blurred = mean_scores(evaluate_sr(images, 2, bicubic_predictor(2), soften=soft.soften))["psnr"]
    assert blurred < clean - 0.3  # scored against the sharp HR


def _png_folder(folder: Path, count: int = 3) -> Path:
    import av

    folder.mkdir()
    for k in range(count):
        with av.open(str(folder / f"{k}.png"), "w", format="image2") as c:
            s = c.add_stream("png", rate=1)
            s.width, s.height, s.pix_fmt = 80, 64, "rgb24"
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.roll(_smooth(), 7 * k, axis=1), format="rgb24")))
            c.mux(s.encode(None))
    return folder


def test_eval_without_a_model_puts_bicubic_and_every_upscaler_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vsr.models.artefacts import shipped_models

    folder = _png_folder(tmp_path / "imgs")
    x2 = {n for n, m in shipped_models().items() if m.spec.task == "sr" and m.spec.scale == 2}
    results = {}
    for spec in ("clean", "h264:crf=35"):
        assert main(["eval", "--data", str(folder), "--degrade", spec, "--threads", "1", "--json"]) == 0
        record = json.loads(capsys.readouterr().out)
        assert spec in record["protocol"] and set(record["means"]) == {"bicubic", *x2}
        results[spec] = record["means"]
    # The damage reaches the LR that bicubic and every model see: all score lower than on clean LR.
    assert all(results["h264:crf=35"][n]["psnr"] < results["clean"][n]["psnr"] for n in results["clean"])
    assert main(["eval", "--data", str(folder), "--degrade", "h264:crf=99"]) == 2
    assert "0..51" in capsys.readouterr().err
