"""A DnCNN-style blind colour denoiser (after Zhang et al. 2017): a conv-ReLU stack predicting the noise.

Batch normalisation is optional and off by default: video frames arrive one batch at a time with
statistics unlike the training patches, and without it the first training steps cannot kill every ReLU.
"""

from __future__ import annotations

from torch import Tensor, nn


class DnCNN(nn.Module):
    """Residual learning at scale 1: output = input - predicted noise."""

    def __init__(
        self, *, channels: int = 3, features: int = 64, depth: int = 17, batch_norm: bool = False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(features))
            layers.append(nn.ReLU(inplace=True))
        last = nn.Conv2d(features, channels, 3, padding=1)
        # Start from the identity (zero predicted noise) rather than from a random noise estimate.
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        layers.append(last)
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x - self.body(x)
