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
