"""Adversarial training without pretrained features: the restoring look (`vsr train --gan`).

Real-ESRGAN trains its compact models with L1 + a VGG perceptual loss + a GAN loss against a spectrally
normalised U-Net discriminator. No pretrained network can be fetched here, so the perceptual term is a
feature-matching loss on the discriminator's own features (pix2pixHD's: L1 between its activations on the
output and on the target, layer by layer), which the discriminator keeps learning as it trains. An optional
frequency loss (L1 between the FFT amplitudes) keeps the fine spectrum where it belongs. The generator is
warm-started from the fidelity model, and the released weights are an exponential moving average of it
(steadier than the last step's, which GAN training leaves noisy).

Two discriminators: `unet` (Real-ESRGAN's design: a per-pixel real/fake map, so it judges texture where it
is, with skip connections; spectral norm on every convolution) and `patch` (a PatchGAN of four strided
convolutions: cheaper on a CPU, a verdict per 70×70-ish patch).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm

Discriminator = Literal["unet", "patch"]


@dataclass(frozen=True)
class GanConfig:
    """The adversarial part of a run: which discriminator, its width and rate, the loss weights, EMA."""

    discriminator: Discriminator = "unet"
    features: int = 32  # the discriminator's first width (Real-ESRGAN's is 64; a CPU affords half)
    lr: float = 1e-4  # the discriminator's Adam rate
    gan_weight: float = 0.1  # Real-ESRGAN's
    fm_weight: float = 1.0  # feature matching, in place of the VGG perceptual loss
    freq_weight: float = 0.0  # L1 of FFT amplitudes
    ema: float = 0.999  # decay of the released weights' moving average


def _sn(conv: nn.Conv2d) -> nn.Module:
    return spectral_norm(conv)


class UNetDiscriminator(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral norm: three stride-2 levels down, three up with skips,
    a per-pixel logit map at the input's size. `forward` returns (logits, features) for feature matching."""

    def __init__(self, channels: int = 3, features: int = 32) -> None:
        super().__init__()
        f = features
        self.conv0 = nn.Conv2d(channels, f, 3, padding=1)
        self.down = nn.ModuleList(
            [_sn(nn.Conv2d(f * 2**i, f * 2 ** (i + 1), 4, stride=2, padding=1, bias=False)) for i in range(3)]
        )
        self.up = nn.ModuleList(
            [_sn(nn.Conv2d(f * 2 ** (i + 1), f * 2**i, 3, padding=1, bias=False)) for i in (2, 1, 0)]
        )
        self.extra = nn.Sequential(
            _sn(nn.Conv2d(f, f, 3, padding=1, bias=False)),
            nn.LeakyReLU(0.2),
            _sn(nn.Conv2d(f, f, 3, padding=1, bias=False)),
            nn.LeakyReLU(0.2),
        )
        self.out = nn.Conv2d(f, 1, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        skips = [F.leaky_relu(self.conv0(x), 0.2)]
        for conv in self.down:
            skips.append(F.leaky_relu(conv(skips[-1]), 0.2))
        h, feats = skips.pop(), []
        for conv in self.up:
            skip = skips.pop()  # up to the skip's own size: odd sides halve with a remainder
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = F.leaky_relu(conv(h), 0.2) + skip
            feats.append(h)
        h = self.extra(h)
        return self.out(h), feats


class PatchDiscriminator(nn.Module):
    """A PatchGAN with spectral norm: four convolutions, three of stride 2; a logit per patch."""

    def __init__(self, channels: int = 3, features: int = 32) -> None:
        super().__init__()
        f = features
        widths = [channels, f, f * 2, f * 4, f * 8]
        self.body = nn.ModuleList(
            _sn(nn.Conv2d(widths[i], widths[i + 1], 4, stride=2 if i < 3 else 1, padding=1)) for i in range(4)
        )
        self.out = nn.Conv2d(widths[-1], 1, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        feats = []
        for conv in self.body:
            x = F.leaky_relu(conv(x), 0.2)
            feats.append(x)
        return self.out(x), feats


def build_discriminator(cfg: GanConfig) -> nn.Module:
    if cfg.discriminator == "unet":
        return UNetDiscriminator(features=cfg.features)
    return PatchDiscriminator(features=cfg.features)


def generator_adversarial(fake_logits: Tensor) -> Tensor:
    """The generator's GAN loss (vanilla, as Real-ESRGAN): its output should be called real."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The discriminator's loss: real called real, the (detached) output called fake."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def feature_matching(fake_feats: list[Tensor], real_feats: list[Tensor]) -> Tensor:
    """Mean L1 between the discriminator's activations on the output and on the target, layer by layer
    (the target's taken as constants): a perceptual loss learnt on our own data."""
    return torch.stack(
        [(f - r.detach()).abs().mean() for f, r in zip(fake_feats, real_feats, strict=True)]
    ).mean()


def frequency_loss(pred: Tensor, target: Tensor) -> Tensor:
    """L1 between the amplitude spectra (orthonormal 2-D FFT) of output and target."""
    a = torch.fft.rfft2(pred.float(), norm="ortho").abs()
    b = torch.fft.rfft2(target.float(), norm="ortho").abs()
    return (a - b).abs().mean()


class Ema:
    """An exponential moving average of a network's weights (buffers copied): the weights released."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.net = copy.deepcopy(net).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        for avg, live in zip(self.net.parameters(), net.parameters(), strict=True):
            avg.lerp_(live.detach(), 1 - self.decay)
        for avg, live in zip(self.net.buffers(), net.buffers(), strict=True):
            avg.copy_(live)


class Adversary:
    """The discriminator, its optimiser and the generator's extra losses for one run."""

    def __init__(self, cfg: GanConfig, generator: nn.Module, device: torch.device) -> None:
        self.cfg = cfg
        self.net = build_discriminator(cfg).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
        self.ema = Ema(generator, cfg.ema)
        self.last: dict[str, float] = {}

    def generator_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        """The adversarial, feature-matching and frequency terms for the generator's step (the discriminator
        is not updated by it: its gradients are discarded at its own step)."""
        fake_logits, fake_feats = self.net(pred)
        with torch.no_grad():
            _, real_feats = self.net(target)
        adv = generator_adversarial(fake_logits)
        fm = feature_matching(fake_feats, real_feats)
        loss = self.cfg.gan_weight * adv + self.cfg.fm_weight * fm
        self.last = {"g_adv": float(adv.detach()), "fm": float(fm.detach())}
        if self.cfg.freq_weight:
            freq = frequency_loss(pred, target)
            loss = loss + self.cfg.freq_weight * freq
            self.last["freq"] = float(freq.detach())
        return loss

    def step(self, pred: Tensor, target: Tensor, generator: nn.Module) -> None:
        """One discriminator step on the generator's (detached) output, then the EMA's update."""
        real_logits, _ = self.net(target)
        fake_logits, _ = self.net(pred.detach())
        loss = discriminator_loss(real_logits, fake_logits)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.last["d"] = float(loss.detach())
        self.ema.update(generator)

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict(), "ema": self.ema.net.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
        self.ema.net.load_state_dict(state["ema"])
