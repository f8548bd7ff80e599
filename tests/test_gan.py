"""Adversarial training's pieces (vsr.train.gan): shapes, gradients to both nets, a discriminator that
learns, EMA weights released, and runs that pause and resume with the discriminator's state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsr.train import gan  # noqa: E402
from vsr.train.loop import TrainConfig, train  # noqa: E402


@pytest.mark.parametrize("kind", ["unet", "patch"])
def test_discriminators_give_logits_and_features_for_odd_sizes(kind: str) -> None:
    d = gan.build_discriminator(gan.GanConfig(discriminator=kind, features=8))
    logits, feats = d(torch.rand(2, 3, 70, 54))
    if kind == "unet":  # a verdict per pixel
        assert logits.shape == (2, 1, 70, 54) and len(feats) == 3
    else:
        assert logits.shape[:2] == (2, 1) and logits.shape[2] < 70 and len(feats) == 4


def test_gradients_reach_both_networks_and_only_the_discriminator_step_moves_it() -> None:
    torch.manual_seed(0)
    generator = torch.nn.Conv2d(3, 3, 3, padding=1)
    adversary = gan.Adversary(gan.GanConfig(features=8, freq_weight=0.5), generator, torch.device("cpu"))
    lr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    pred = generator(lr)
    loss = adversary.generator_loss(pred, hr)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())
    assert set(adversary.last) == {"g_adv", "fm", "freq"}
    before = [p.detach().clone() for p in adversary.net.parameters()]
    adversary.step(pred, hr, generator)
    moved = [not torch.equal(b, p) for b, p in zip(before, adversary.net.parameters(), strict=True)]
    assert any(moved) and "d" in adversary.last
    # The step's gradients were its own (the generator's backward through it was discarded first).
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in adversary.net.parameters())


def test_the_discriminator_learns_to_tell_sharp_from_blurred() -> None:
    torch.manual_seed(1)
    adversary = gan.Adversary(gan.GanConfig(features=8, lr=1e-3), torch.nn.Identity(), torch.device("cpu"))
    sharp = torch.rand(8, 3, 32, 32)
    soft = torch.nn.functional.avg_pool2d(sharp, 3, stride=1, padding=1)
    losses = []
    for _ in range(40):
        adversary.step(soft, sharp, torch.nn.Identity())
        losses.append(adversary.last["d"])
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


def test_ema_follows_slowly() -> None:
    net = torch.nn.Linear(2, 2)
    ema = gan.Ema(net, 0.9)
    with torch.no_grad():
        net.weight.add_(1.0)
    start = ema.net.weight.detach().clone()
    ema.update(net)
    step = ema.net.weight - start
    assert torch.allclose(step, torch.full_like(step, 0.1), atol=1e-6)  # 1 - decay of the way there
    assert not ema.net.weight.requires_grad


def _images(folder: Path) -> Path:
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:80, 0:96]
    for k in range(3):
        img = np.stack([128 + 90 * np.sin(x / (4 + k) + y / 7), 128 + 60 * np.cos(y / 5), x * 2.0], -1)
        img += rng.normal(0, 8, img.shape)
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{k}.png")
    return folder


def test_a_gan_run_releases_its_ema_and_resumes_with_the_discriminator(tmp_path: Path) -> None:
    data = _images(tmp_path / "data")
    cfg = TrainConfig(model="espcn-x2", data=data, out=tmp_path / "run", steps=6, batch=4, patch=32, warmup=2,
                      val_every=3, ckpt_every=3, gan=gan.GanConfig("patch", features=8, ema=0.5))  # fmt: skip
    weights = train(cfg, sitting_minutes=1e-9, log=lambda _: None)
    state = torch.load(cfg.out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 1 and set(state["gan"]) == {"net", "opt", "ema"}
    weights = train(cfg, resume=True, log=lambda _: None)
    history = json.loads((cfg.out / "history.json").read_text())
    assert [h["step"] for h in history] == [1, 3, 6] and {"d", "g_adv", "fm"} <= set(history[-1])
    from safetensors.torch import load_file

    released, final = load_file(str(weights)), torch.load(cfg.out / "checkpoint.pt", weights_only=True)
    assert all(torch.equal(released[k], v) for k, v in final["gan"]["ema"].items())
    assert any(not torch.equal(released[k], v) for k, v in final["model"].items())  # not the raw weights
    # The discriminator is part of the schedule: a resume without it is refused.
    from vsr.errors import UsageError

    with pytest.raises(UsageError, match="gan"):
        train(TrainConfig(**{**cfg.__dict__, "gan": None, "steps": 8}), resume=True, log=lambda _: None)


def test_training_command_records_the_gan(tmp_path: Path) -> None:
    from vsr.train.release import _training_command

    cfg = TrainConfig(model="espcn-x2", data=tmp_path, out=tmp_path / "run", gan=gan.GanConfig("unet"))
    cmd = _training_command(cfg.to_json())
    assert "--gan unet --d-features 32 --d-lr 0.0001 --gan-weight 0.1 --fm-weight 1.0" in cmd
    assert "--freq-weight 0.0 --ema 0.999" in cmd
