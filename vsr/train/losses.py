"""Pixel losses for restoration training."""

from __future__ import annotations

import torch
from torch import Tensor

from vsr.train import LossName


def pixel_loss(name: LossName, pred: Tensor, target: Tensor) -> Tensor:
    """Mean L1, MSE or Charbonnier (ε = 1e-3) between two batches."""
    diff = pred - target
    if name == "l1":
        return diff.abs().mean()
    if name == "mse":
        return (diff * diff).mean()
    if name == "charbonnier":
        return torch.sqrt(diff * diff + 1e-6).mean()
    raise ValueError(f"unknown loss {name!r}; choose l1, mse or charbonnier")
