"""Batch augmentation on the training device: geometric (flips, 90° rotations) and photometric jitter.

Each sample draws its own parameters; every transform is applied to the clean HR patch before the
degradation, so LR and HR stay consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run, and how strongly; a zero range switches a jitter off."""

    flips: bool = True
    rotations: bool = True
    jitter_prob: float = 0.2  # probability that a sample gets photometric jitter at all
    brightness: float = 0.05  # additive, ± on 0..1
    contrast: float = 0.1  # multiplicative around the sample mean, 1 ±
    gamma: float = 0.1  # exponent 1 ±
    hue: float = 0.03  # rotation of the chroma plane, ± turns


def _uniform(n: int, spread: float, device: torch.device, generator: torch.Generator) -> Tensor:
    return (torch.rand(n, 1, 1, 1, device=device, generator=generator) * 2 - 1) * spread


def _rotate_hue(x: Tensor, turns: Tensor) -> Tensor:
    # Rotate the (I, Q) chroma plane of YIQ: keeps luma, shifts hue.
    yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=x.device
    )
    rgb = torch.linalg.inv(yiq)
    angle = turns.view(-1) * 2 * torch.pi
    cos, sin = torch.cos(angle), torch.sin(angle)
    n = x.shape[0]
    rot = torch.zeros(n, 3, 3, device=x.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = cos, -sin, sin, cos
    mat = rgb @ rot @ yiq  # (n, 3, 3)
    return torch.einsum("nij,njhw->nihw", mat, x)


def augment(x: Tensor, cfg: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Augment a (N, C, H, W) float batch on 0..1 with square patches; returns a new tensor."""
    n, dev = x.shape[0], x.device
    if cfg.flips:
        flip = torch.rand(n, device=dev, generator=generator) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if cfg.rotations:
        k = torch.randint(0, 4, (n,), device=dev, generator=generator)
        x = torch.stack([torch.rot90(s, int(r), dims=(-2, -1)) for s, r in zip(x, k.tolist(), strict=True)])
    if cfg.jitter_prob > 0 and x.shape[1] == 3:
        on = (torch.rand(n, 1, 1, 1, device=dev, generator=generator) < cfg.jitter_prob).float()
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        y = (x - mean) * (1 + _uniform(n, cfg.contrast, dev, generator)) + mean
        y = y + _uniform(n, cfg.brightness, dev, generator)
        y = y.clamp(0, 1) ** (1 + _uniform(n, cfg.gamma, dev, generator))
        if cfg.hue > 0:
            y = _rotate_hue(y, _uniform(n, cfg.hue, dev, generator))
        x = on * y.clamp(0, 1) + (1 - on) * x
    return x
