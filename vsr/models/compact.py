"""A compact VGG-style real-time net (after Real-ESRGAN's SRVGGNetCompact): conv + PReLU body at low
resolution, pixel shuffle, plus a nearest-upsampled skip of the input so the body learns only the detail."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Compact(nn.Module):
    """num_conv 3×3 convolutions of `features` channels with PReLU, then a sub-pixel shuffle."""

    def __init__(self, *, scale: int, channels: int = 3, features: int = 48, num_conv: int = 10) -> None:
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.PReLU(features)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(features, features, 3, padding=1), nn.PReLU(features)]
        layers.append(nn.Conv2d(features, channels * scale * scale, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.shuffle(self.body(x)) + F.interpolate(x, scale_factor=self.scale, mode="nearest")
