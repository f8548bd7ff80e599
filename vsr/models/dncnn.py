"""A DnCNN-style blind colour denoiser (after Zhang et al. 2017): a conv stack predicting the noise.

Two departures from the paper, both measured here: PReLU instead of ReLU, because the ReLU stack sat on
the identity (zero predicted noise) for thousands of steps while the PReLU one left it within a few
hundred; and no batch normalisation by default, because video arrives one batch at a time with
statistics unlike the training patches.
"""

from __future__ import annotations

from torch import Tensor, nn


class DnCNN(nn.Module):
    """Residual learning at scale 1: output = input - predicted noise."""

    def __init__(
        self, *, channels: int = 3, features: int = 64, depth: int = 17, batch_norm: bool = False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.PReLU(features)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(features))
            layers.append(nn.PReLU(features))
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x - self.body(x)
