"""SRCNN (Dong et al. 2014), pre-upsampling: the input is bicubic-upscaled first, then refined."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SRCNN(nn.Module):
    """9-5-5 convolutions (64, 32 features) on the bicubic upscale, padded so the size is kept."""

    def __init__(self, *, scale: int, channels: int = 3, features: tuple[int, int] = (64, 32)) -> None:
        super().__init__()
        self.scale = scale
        f1, f2 = features
        self.body = nn.Sequential(
            nn.Conv2d(channels, f1, 9, padding=4),
            nn.ReLU(inplace=True),
            nn.Conv2d(f1, f2, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(f2, channels, 5, padding=2),
        )

    def forward(self, x: Tensor) -> Tensor:
        up = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self.body(up)
