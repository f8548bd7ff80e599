"""VMAF (libvmaf through the bundled FFmpeg) and ERQA, checked against their references, and in `vsr eval`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

quality = pytest.importorskip("vsr.quality")
pytest.importorskip("imageio_ffmpeg")
pytest.importorskip("erqa")

from vsr.evaluate import bicubic_predictor, evaluate_sr, load_eval_images, mean_scores  # noqa: E402
from vsr.imresize import imresize  # noqa: E402
from vsr.metrics import modcrop, shave  # noqa: E402

SET5 = Path(__file__).resolve().parents[2] / "shared/data/sr-eval/Set5"
BABOON = SET5.parent / "Set14/baboon.png"


def _texture(h: int = 144, w: int = 176, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    f = rng.uniform(2, 9, 6)
    img = np.stack([128 + 90 * np.sin(x / f[i] + y / f[i + 3]) for i in range(3)], -1)
    return (img + rng.normal(0, 12, img.shape)).round().clip(0, 255).astype(np.uint8)


def test_vmaf_of_identical_frames() -> None:
    still = _texture()
    # A still has no motion: vmaf_v0.6.1 tops out at 97.43 there, whatever the pair.
    assert quality.vmaf([still], [still])[0]["vmaf"] == pytest.approx(97.43, abs=0.01)
    # A panning clip scored against itself: every frame after the first at 100 (VMAF's ceiling).
    big = _texture(200, 400, seed=1)
    clip = [np.ascontiguousarray(big[:144, 8 * k : 8 * k + 176]) for k in range(8)]
    scores = quality.vmaf(clip, clip)
    assert len(scores) == 8
    assert np.mean([s["vmaf"] for s in scores[1:]]) >= 99.5
    assert all(s["vmaf_neg"] <= s["vmaf"] + 1e-6 for s in scores)


def test_vmaf_falls_with_damage_and_neg_does_not_reward_sharpening() -> None:
    ref = _texture()
    soft = imresize(imresize(ref, 0.5), 2)
    sharpened = np.clip(soft + 1.5 * (soft.astype(float) - imresize(imresize(soft, 0.5), 2)), 0, 255)
    sharpened = sharpened.round().astype(np.uint8)
    v_soft, v_sharp = quality.vmaf([soft], [ref])[0], quality.vmaf([sharpened], [ref])[0]
    assert v_soft["vmaf"] < quality.vmaf([ref], [ref])[0]["vmaf"] - 5  # 90.05 against 97.43
    # Unsharp masking lifts plain VMAF more than the "no enhancement gain" model.
    assert v_sharp["vmaf"] - v_soft["vmaf"] > v_sharp["vmaf_neg"] - v_soft["vmaf_neg"]


@pytest.mark.skipif(not SET5.is_dir(), reason="needs ../shared/data (Set5)")
def test_vmaf_of_bicubic_on_set5_is_the_ffmpeg_command_lines(tmp_path: Path) -> None:
    # The figure an engineer gets from the same FFmpeg on two PNGs: the API must not move it.
    from PIL import Image

    images = load_eval_images(SET5)
    ours = evaluate_sr(images, 2, bicubic_predictor(2), metrics=("vmaf",))
    theirs = []
    for name, img in images:
        hr = modcrop(img, 2)
        base = imresize(imresize(hr, 0.5), 2)
        pair = [quality._even(shave(x, 2)) for x in (base, hr)]
        for label, x in zip(("dist", "ref"), pair, strict=True):
            Image.fromarray(x).save(tmp_path / f"{name}_{label}.png")
        log = tmp_path / f"{name}.json"
        cmd = [quality.ffmpeg(), "-v", "error", "-i", str(tmp_path / f"{name}_dist.png"),
               "-i", str(tmp_path / f"{name}_ref.png"), "-lavfi",
               f"[0:v]format=yuv420p[d];[1:v]format=yuv420p[r];[d][r]libvmaf=log_fmt=json:log_path={log}",
               "-f", "null", "-"]  # fmt: skip
        subprocess.run(cmd, check=True)
        theirs.append(json.loads(log.read_text())["pooled_metrics"]["vmaf"]["mean"])
    ours_mean = mean_scores(ours)["vmaf"]
    assert ours_mean == pytest.approx(float(np.mean(theirs)), abs=0.5)
    assert ours_mean == pytest.approx(84.68, abs=0.5)  # measured with this FFmpeg build (README)


def test_erqa_scores_edges() -> None:
    ref = _texture()
    assert quality.erqa(ref, ref) == pytest.approx(1.0)
    # One-pixel shifts of edges are forgiven (global compensation), blur loses edges, noise adds false ones.
    shifted = np.roll(ref, 1, axis=1)
    assert quality.erqa(shifted, ref) > 0.95
    soft = imresize(imresize(ref, 0.25), 4)
    noisy = np.clip(ref + np.random.default_rng(3).normal(0, 40, ref.shape), 0, 255).astype(np.uint8)
    assert quality.erqa(soft, ref) < 0.8
    assert quality.erqa(noisy, ref) < 0.9


def test_erqa_is_the_package_on_bgr() -> None:
    import erqa

    a, b = _texture(seed=4), imresize(imresize(_texture(seed=4), 0.5), 2)
    assert quality.erqa(a, b) == pytest.approx(erqa.ERQA()(a[..., ::-1].copy(), b[..., ::-1].copy()))


@pytest.mark.skipif(not BABOON.is_file(), reason="needs ../shared/data (Set14)")
def test_niqe_of_baboon_is_matlabs() -> None:
    from vsr.media.images import read_image

    # The official release on Set14's baboon.png, as BasicSR records MATLAB R2021a's result: 5.72957338.
    assert quality.niqe(read_image(BABOON)) == pytest.approx(5.72957338, abs=1e-4)


def test_niqe_rises_with_blur_and_refuses_tiny_images() -> None:
    img = _texture(288, 384, seed=5)
    soft = imresize(imresize(img, 0.25), 4)
    assert quality.niqe(soft) > quality.niqe(img) + 1
    with pytest.raises(quality.UsageError, match="96×96"):
        quality.niqe(img[:80])


def test_unknown_metric_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from vsr.cli import main

    assert main(["eval", "--data", str(tmp_path), "--metrics", "psnr,lpips"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vsr: error: --metrics: unknown lpips; choose from psnr, ssim, vmaf, vmaf_neg, erqa, niqe"]


@pytest.mark.skipif(not SET5.is_dir(), reason="needs ../shared/data (Set5)")
def test_eval_puts_models_side_by_side_with_every_metric(capsys: pytest.CaptureFixture[str]) -> None:
    from vsr.cli import main

    args = ["eval", "--data", str(SET5), "--models", "bicubic,espcn-x2,compact-x2",
            "--metrics", "psnr,ssim,vmaf,vmaf_neg,erqa", "--json"]  # fmt: skip
    assert main(args) == 0
    means = json.loads(capsys.readouterr().out)["means"]
    assert list(means) == ["bicubic", "espcn-x2", "compact-x2"]
    assert set(means["compact-x2"]) == {"psnr", "ssim", "vmaf", "vmaf_neg", "erqa"}
    assert means["bicubic"]["psnr"] == pytest.approx(33.65, abs=0.02)  # the protocol's bicubic
    for name in ("espcn-x2", "compact-x2"):  # every measure agrees that a trained model beats bicubic
        assert all(means[name][k] > means["bicubic"][k] for k in means[name])
