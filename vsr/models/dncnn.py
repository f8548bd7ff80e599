"""A DnCNN-style blind colour denoiser (Zhang et al. 2017): conv-BN-ReLU stack predicting the noise."""

from __future__ import annotations

from torch import Tensor, nn


class DnCNN(nn.Module):
    """Residual learning at scale 1: output = input - predicted noise. BatchNorm folds away at export."""

    def __init__(self, *, channels: int = 3, features: int = 64, depth: int = 17) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [
                nn.Conv2d(features, features, 3, padding=1, bias=False),
                nn.BatchNorm2d(features),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x - self.body(x)
