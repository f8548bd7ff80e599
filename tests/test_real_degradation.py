"""The real-world degradation pipeline (vsr/train/real.py): each step does what it says, the pool feeds
the trainer aligned pairs, and a model trains on them end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsr.errors import UsageError  # noqa: E402
from vsr.imresize import imresize  # noqa: E402
from vsr.metrics import psnr  # noqa: E402
from vsr.train import real  # noqa: E402
from vsr.train.augment import AugmentConfig  # noqa: E402
from vsr.train.data import DegradedPool, PatchSampler  # noqa: E402
from vsr.train.loop import TrainConfig, train  # noqa: E402


def _picture(seed: int, h: int = 160, w: int = 200) -> np.ndarray:
    """Texture with edges and detail at several scales, like a natural image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = [128 + 60 * np.sin(x / rng.uniform(3, 9) + y / rng.uniform(4, 11)) for _ in range(3)]
    edges = 50 * ((x // 23 + y // 17) % 2)
    img = np.stack(base, -1) + edges[..., None] + rng.normal(0, 4, (h, w, 3))
    return img.round().clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("scale", [2, 4])
def test_degrade_gives_the_lr_size_and_is_repeatable(scale: int) -> None:
    hr = _picture(0)[:96, :96]
    degradation = real.RealDegradation()
    a, steps = degradation.degrade(hr, scale, np.random.default_rng(7))
    b, same = degradation.degrade(hr, scale, np.random.default_rng(7))
    assert a.shape == (96 // scale, 96 // scale, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and steps == same and steps


def test_a_share_of_samples_is_truly_clean() -> None:
    """Pristine samples are the plain antialiased downscale, untouched by chroma or codec steps; they are
    about `pristine_prob` of the mix (the rest as before: a model must still see clean input often)."""
    hr = _picture(1)[:48, :48]
    degradation = real.RealDegradation()
    rng = np.random.default_rng(5)
    draws = [degradation.degrade(hr, 2, rng) for _ in range(300)]
    pristine = [lr for lr, steps in draws if steps == ["pristine"]]
    assert 0.14 < len(pristine) / len(draws) < 0.26  # 0.2 expected; the binomial's 3-sigma is ±0.07
    plain = real._resize(hr.astype(np.float32) / 255.0, 24, 24, "bicubic")
    assert all(np.array_equal(lr, np.clip(np.round(plain * 255), 0, 255).astype(np.uint8)) for lr in pristine)
    only = real.RealDegradation(pristine_prob=0.0)
    assert all(only.degrade(hr, 2, np.random.default_rng(k))[1] != ["pristine"] for k in range(20))


def test_every_codec_is_reached_and_damages_a_little() -> None:
    # Forced one at a time: each real codec round trip is lossy but still the same picture.
    lr = _picture(1)[:48, :64]
    for index, codec in enumerate(("jpeg", "x264", "mpeg2", "mpeg4")):
        weights = tuple(float(k == index) for k in range(5))
        out, steps = real.RealDegradation(codec_weights=weights)._codec(lr, np.random.default_rng(3), [])
        assert steps[-1].startswith(codec) and out.shape == lr.shape
        assert 18 < psnr(out, lr) < 60, (codec, psnr(out, lr))


def test_inter_coded_frame_is_predicted_from_its_predecessors() -> None:
    # The kept frame of a panned sequence is a P/B-frame: x264 spends fewer bits on it than on the same
    # picture coded alone, and its decoded picture differs from the intra-coded one.
    lr = _picture(2)[:64, :64]
    options = {"crf": "30", "preset": "medium", "bf": "2"}
    panned = real.inter_coded(lr, "libx264", options, 4, (1, 1))
    alone = real.inter_coded(lr, "libx264", options, 1, (0, 0))
    assert panned.shape == alone.shape == lr.shape
    assert not np.array_equal(panned, alone) and psnr(panned, lr) > 20


def test_kernels_are_normalised_and_shaped() -> None:
    iso = real.blur_kernel(21, 2.0, 2.0, 0.0, "iso")
    aniso = real.blur_kernel(21, 3.0, 0.5, 0.0, "aniso")
    assert iso.shape == (21, 21) and abs(iso.sum() - 1) < 1e-5 and np.allclose(iso, iso.T)
    assert aniso[10, 15] > aniso[15, 10]  # spread along x, narrow along y
    plateau = real.blur_kernel(13, 1.5, 1.5, 0.0, "plateau", 1.5)
    gauss = real.blur_kernel(13, 1.5, 1.5, 0.0, "iso")
    assert plateau[6, 0] > gauss[6, 0]  # heavier tails than a Gaussian
    sinc = real.sinc_kernel(21, np.pi / 3)
    assert abs(sinc.sum() - 1) < 1e-5 and sinc.min() < 0  # ringing lobes


def test_chroma_bleed_smears_colour_and_keeps_luma() -> None:
    img = np.full((32, 64, 3), 110, np.uint8)  # grey, then red: colours a smear keeps within gamut
    img[:, 32:] = (170, 80, 80)
    bled = real.chroma_bleed(img, 3.0)
    luma = lambda a: a.astype(float) @ [0.299, 0.587, 0.114]  # noqa: E731
    assert np.abs(luma(bled) - luma(img)).max() < 4  # luma kept
    assert (bled[:, 30, 0] > bled[:, 30, 1] + 10).all()  # red bled across the edge
    assert np.abs(bled[:, :8].astype(int) - img[:, :8]).max() <= 1  # nothing wraps around from the right


def test_pool_renews_pairs_and_keeps_them_aligned() -> None:
    images = [_picture(k) for k in range(3)]
    pool = DegradedPool(images, scale=2, patch=48, size=16, degradation=real.RealDegradation(), seed=0)
    try:
        lr, hr, lr2, twin = pool.draw(5, np.random.default_rng(0))
        assert not twin.any() and (lr2 == lr).all()  # no twins asked for
        assert lr.shape == (5, 24, 24, 3) and hr.shape == (5, 48, 48, 3)
        # Each LR is a degraded downscale of its own HR: closer to it than to another pair's HR.
        small = hr.reshape(5, 24, 2, 24, 2, 3).mean(axis=(2, 4))
        own = [psnr(lr[k], small[k]) for k in range(5)]
        other = [psnr(lr[k], small[(k + 1) % 5]) for k in range(5)]
        assert np.mean(own) > np.mean(other) + 3
        before = pool.made
        deadline = __import__("time").monotonic() + 20
        while pool.made == before and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.05)
        assert pool.made > before  # the producer thread renews the pool
    finally:
        pool.close()


def test_sampler_augments_lr_and_hr_alike() -> None:
    images = [_picture(k) for k in range(2)]
    sampler = PatchSampler(
        images, scale=2, patch=48, batch=8, augment_cfg=AugmentConfig(), device=torch.device("cpu"), seed=1,
        real=real.RealDegradation(codec_weights=(0, 0, 0, 0, 1)), pool=16,
    )  # fmt: skip
    try:
        lr, hr = sampler.sample()
        assert lr.shape == (8, 3, 24, 24) and hr.shape == (8, 3, 48, 48)
        down = torch.nn.functional.avg_pool2d(hr, 2)
        aligned = (lr - down).abs().mean()
        flipped = (lr - down.flip(-1)).abs().mean()
        assert aligned < flipped  # the same flips and rotations hit both
    finally:
        sampler.close()


def test_real_training_runs_and_records_its_data_rate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    from PIL import Image

    for k in range(3):
        Image.fromarray(_picture(k)).save(data / f"{k}.png")
    cfg = TrainConfig(
        model="real-espcn-x2", data=data, out=tmp_path / "run", steps=6, batch=4, patch=48, pool=16,
        val_every=3, ckpt_every=3,
    )  # fmt: skip
    weights = train(cfg, log=lambda _m: None)
    history = __import__("json").loads((tmp_path / "run" / "history.json").read_text())
    assert weights.is_file() and history[-1]["step"] == 6
    assert 0 <= history[-1]["data_share"] <= 1 and history[-1]["pairs_made"] >= 16


def test_preview_writes_a_grid(tmp_path: Path) -> None:
    from PIL import Image

    out = real.preview([_picture(5)], 2, tmp_path / "grid.png", count=4)
    grid = Image.open(out)
    assert grid.size[0] > 3 * 96 and grid.size[1] > 96


def test_the_codec_mix_draws_the_protocols_case_far_more_often_than_the_real_one() -> None:
    # The x264 protocols' case: a clean bicubic downscale, then the codec. `real` draws it for ~12 % of
    # its samples, `codec` (codec-compact-x2's mix) for ~30 %.
    hr, rng = _picture(7)[:48, :48], np.random.default_rng(0)

    def share(mix: real.RealDegradation) -> float:
        steps = [mix.degrade(hr, 2, rng)[1] for _ in range(300)]
        return sum(s[0] == "clean" and any("x264" in x for x in s) for s in steps) / len(steps)

    assert share(real.PRESETS["real"]) < 0.2 < 0.25 < share(real.PRESETS["codec"])
    assert TrainConfig(model="codec-compact-x2", data=Path("d"), out=Path("o")).mix is real.PRESETS["codec"]
    assert TrainConfig(model="compact-x2", data=Path("d"), out=Path("o")).mix is None


def test_preview_shows_the_models_mix_or_the_one_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    from vsr.cli import main

    Image.fromarray(_picture(1)).save(tmp_path / "a.png")
    argv = ["train", "--model", "compact-x2", "--data", str(tmp_path), "--out", str(tmp_path / "r")]
    assert main([*argv, "--preview-degradations", str(tmp_path / "p.png")]) == 2
    assert "--degradation real|codec" in capsys.readouterr().err
    assert main([*argv, "--degradation", "codec", "--preview-degradations", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").is_file()


def test_options_a_run_cannot_use_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vsr.cli import main
    from vsr.errors import UsageError

    with pytest.raises(UsageError, match="--pool sizes"):
        TrainConfig(model="espcn-x2", data=tmp_path, out=tmp_path / "run", pool=64)
    with pytest.raises(UsageError, match="trains upscalers"):
        TrainConfig(model="dncnn-color", data=tmp_path, out=tmp_path / "run", degradation="real")
    small = tmp_path / "small"
    small.mkdir()
    from PIL import Image

    Image.fromarray(_picture(0, 40, 40)).save(small / "a.png")
    argv = ["train", "--model", "real-espcn-x2", "--data", str(small), "--out", str(tmp_path / "r")]
    assert main([*argv, "--preview-degradations", str(tmp_path / "p.png")]) == 2
    assert "at least 96" in capsys.readouterr().err and not (tmp_path / "p.png").exists()


def test_twins_are_two_coded_frames_of_one_still_and_train_a_consistency_loss(tmp_path: Path) -> None:
    hr = _picture(3)[:96, :96]
    a, b, steps = real.RealDegradation(pristine_prob=0, clean_prob=1).twins(hr, 2, np.random.default_rng(4))
    assert a.shape == b.shape == (48, 48, 3) and "twins, grain" in steps[-1]
    assert 0 < np.abs(a.astype(int) - b).mean() < 8  # the same picture, coded twice: close, not equal
    assert psnr(a, imresize(hr, 0.5)) > 20  # damaged, still the same picture
    images = [_picture(k) for k in range(2)]
    pool = DegradedPool(
        images, scale=2, patch=48, size=32, degradation=real.RealDegradation(), seed=0, twins=0.5
    )
    try:
        assert 0.2 < pool.twin.mean() < 0.8
        assert all((pool.lr2[k] == pool.lr[k]).all() for k in np.flatnonzero(~pool.twin))
    finally:
        pool.close()
    folder = tmp_path / "data"
    folder.mkdir()
    from PIL import Image

    for k, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{k}.png")
    cfg = TrainConfig(model="real-espcn-x2", data=folder, out=tmp_path / "run", steps=4, batch=8, patch=48,
                      pool=64, consistency=1.0, val_every=2, ckpt_every=2, warmup=1)  # fmt: skip
    train(cfg, log=lambda _: None)
    history = json.loads((cfg.out / "history.json").read_text())
    assert all(h["consistency"] > 0 for h in history)
    with pytest.raises(UsageError, match="consistency"):
        TrainConfig(model="espcn-x2", data=folder, out=tmp_path / "r2", consistency=1.0)
