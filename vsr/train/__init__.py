"""Training: data, degradations, augmentation, losses, the loop and the release step (needs the `train`
extra). This package's __init__ stays torch-free, so the CLI can list its choices without torch."""

from typing import Literal

LossName = Literal["l1", "mse", "charbonnier"]
