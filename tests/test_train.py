"""Training pieces on generated images: LR made like the protocol, augmentation, a tiny resumable run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsr.imresize import imresize  # noqa: E402
from vsr.train.augment import AugmentConfig, augment  # noqa: E402
from vsr.train.data import PatchSampler  # noqa: E402
from vsr.train.loop import TrainConfig, train  # noqa: E402
from vsr.train.losses import pixel_loss  # noqa: E402


def _smooth_image(seed: int, h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    f = rng.uniform(3, 12, 6)
    chans = [128 + 100 * np.sin(x / f[i] + y / f[i + 3]) for i in range(3)]
    return np.stack(chans, -1).round().clip(0, 255).astype(np.uint8)


def test_sampler_lr_matches_protocol_downscale() -> None:
    # No augmentation, one image: the on-device LR must be the MATLAB bicubic downscale of the HR patch.
    img = _smooth_image(0)
    off = AugmentConfig(flips=False, rotations=False, jitter_prob=0)
    sampler = PatchSampler(
        [img], scale=2, patch=32, batch=4, augment_cfg=off, device=torch.device("cpu"), seed=3
    )
    lr, hr = sampler.sample()
    assert lr.shape == (4, 3, 16, 16) and hr.shape == (4, 3, 32, 32)
    for i in range(4):
        hr_u8 = (hr[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        want = imresize(hr_u8, 0.5).astype(int)[2:-2, 2:-2]  # borders: the sampler saw real neighbours
        got = (lr[i].permute(1, 2, 0).numpy() * 255).round().astype(int)[2:-2, 2:-2]
        assert np.abs(got - want).max() <= 2


def test_geometric_augmentation_only_moves_pixels() -> None:
    x = torch.rand(8, 3, 16, 16)
    g = torch.Generator().manual_seed(0)
    y = augment(x, AugmentConfig(jitter_prob=0), g)
    for a, b in zip(x, y, strict=True):
        assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)
    jittered = augment(x, AugmentConfig(flips=False, rotations=False, jitter_prob=1.0), g)
    assert not torch.equal(jittered, x) and jittered.min() >= 0 and jittered.max() <= 1


def test_losses() -> None:
    a, b = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 0.5)
    assert pixel_loss("l1", a, b).item() == pytest.approx(0.5)
    assert pixel_loss("mse", a, b).item() == pytest.approx(0.25)
    assert pixel_loss("charbonnier", a, b).item() == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(ValueError):
        pixel_loss("l3", a, b)  # type: ignore[arg-type]


def _write_images(folder: Path, seeds: range) -> Path:
    from PIL import Image

    folder.mkdir()
    for s in seeds:
        Image.fromarray(_smooth_image(s)).save(folder / f"{s}.png")
    return folder


def test_tiny_run_learns_and_resumes(tmp_path: Path) -> None:
    data = _write_images(tmp_path / "train", range(4))
    val = _write_images(tmp_path / "val", range(10, 12))
    common = dict(model="espcn-x2", data=data, out=tmp_path / "run", batch=8, patch=32, lr=2e-3,
                  val_data=val, val_every=20, ckpt_every=20, warmup=5)  # fmt: skip
    train(TrainConfig(steps=40, **common), log=lambda _: None)  # type: ignore[arg-type]
    weights = train(TrainConfig(steps=60, **common), resume=True, log=lambda _: None)  # type: ignore[arg-type]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["step"] for h in history] == [20, 40, 60]
    assert history[-1]["val_psnr"] > history[0]["val_psnr"]  # it learns
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 60
    from safetensors.torch import load_file

    assert set(load_file(str(weights))) == set(state["model"])


def test_denoise_mix_weights_repeated_levels_and_shares_their_copy() -> None:
    from vsr.train.data import NoiseConfig

    mix = NoiseConfig(compressed_prob=1.0, jpeg_qualities=(5, 5, 95), h264_crfs=())
    sampler = PatchSampler(
        [_smooth_image(0), _smooth_image(1)], scale=1, patch=32, batch=64, device=torch.device("cpu"),
        augment_cfg=AugmentConfig(jitter_prob=0), seed=0, noise=mix,
    )  # fmt: skip
    for copies in sampler.compressed:
        assert len(copies) == 3 and copies[0] is copies[1] and not torch.equal(copies[0], copies[2])
    errors = torch.cat([(noisy - clean).abs().mean(dim=(1, 2, 3)) for noisy, clean in
                        (sampler.sample() for _ in range(8))])  # fmt: skip
    # q5 damages these smooth images far more than q95: the two populations split cleanly.
    strong = (errors > errors.min() + (errors.max() - errors.min()) / 2).float().mean().item()
    assert 0.55 < strong < 0.78  # drawn 2 times in 3


def test_training_command_records_a_custom_denoise_mix(tmp_path: Path) -> None:
    from vsr.train.release import _training_command

    config = TrainConfig(model="dncnn-color", data=tmp_path, out=tmp_path / "run").to_json()
    assert "--jpeg-qualities" not in _training_command(config)  # defaults are not spelled out
    config["noise"].update(compressed_prob=0.6, jpeg_qualities=[10, 10, 20], h264_crfs=[])
    cmd = _training_command(config)
    assert "--compressed-prob 0.6 --jpeg-qualities 10,10,20 --h264-crfs ''" in cmd
    assert "--sigma-max" not in cmd


def test_train_refuses_bad_codec_levels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vsr.cli import main

    base = ["train", "--model", "dncnn-color", "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    assert main([*base, "--jpeg-qualities", "10,x"]) == 2
    assert "comma-separated integers" in capsys.readouterr().err
    assert main([*base, "--h264-crfs", "23,60"]) == 2
    assert "0..51" in capsys.readouterr().err
    assert main([*base, "--jpeg-qualities", "", "--h264-crfs", ""]) == 2
    assert "at least one" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
