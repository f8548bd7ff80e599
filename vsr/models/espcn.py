"""ESPCN (Shi et al. 2016): features at low resolution, then a sub-pixel shuffle to the output size."""

from __future__ import annotations

from torch import Tensor, nn


class ESPCN(nn.Module):
    """Three convolutions with tanh, the last producing scale² sub-pixels per channel."""

    def __init__(self, *, scale: int, channels: int = 3, features: tuple[int, int] = (64, 32)) -> None:
        super().__init__()
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
        return self.shuffle(self.body(x))
