"""ESPCN (Shi et al. 2016): features at low resolution, then a sub-pixel shuffle to the output size."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class ESPCN(nn.Module):
    """Three convolutions with tanh, the last producing scale² sub-pixels per channel.

    With `skip`, a nearest-upsampled copy of the input is added, so the body learns only the detail: the
    paper's net without it trains slowly and plateaus low on RGB.
    """

    def __init__(
        self, *, scale: int, channels: int = 3, features: tuple[int, int] = (64, 32), skip: bool = False
    ) -> None:
        super().__init__()
        self.scale, self.skip = scale, skip
        f1, f2 = features
        self.body = nn.Sequential(
            nn.Conv2d(channels, f1, 5, padding=2),
            nn.Tanh(),
            nn.Conv2d(f1, f2, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(f2, channels * scale * scale, 3, padding=1),
        )
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: Tensor) -> Tensor:
        y = self.shuffle(self.body(x))
        return y + F.interpolate(x, scale_factor=self.scale, mode="nearest") if self.skip else y
