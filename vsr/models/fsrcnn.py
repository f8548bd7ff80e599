"""FSRCNN (Dong et al. 2016): shrink, map, expand at low resolution, then a transposed convolution."""

from __future__ import annotations

from torch import Tensor, nn


class FSRCNN(nn.Module):
    """Feature extraction d, shrinking s, m mapping layers, expanding, and a 9×9 deconvolution."""

    def __init__(self, *, scale: int, channels: int = 3, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, d, 5, padding=2), nn.PReLU(d)]
        layers += [nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        # padding 4 and output_padding scale-1 make the output exactly scale × the input size.
        self.deconv = nn.ConvTranspose2d(d, channels, 9, stride=scale, padding=4, output_padding=scale - 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.deconv(self.body(x))
