"""Image quality on the SR evaluation protocol (MATLAB conventions); numpy only."""

from __future__ import annotations

import numpy as np


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop H and W down to multiples of `scale`."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma of (H, W, 3) uint8 RGB in 0..255, rounded to uint8 (16..235)."""
    x = rgb.astype(np.float64)
    y = 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def luma(img: np.ndarray) -> np.ndarray:
    """Y of an RGB image; a greyscale (H, W) image is already Y (converting it would bias PSNR)."""
    return img if img.ndim == 2 else rgb_to_y(img)


def shave(img: np.ndarray, border: int) -> np.ndarray:
    """Drop `border` pixels on every side."""
    return img[border:-border, border:-border] if border > 0 else img


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two same-shaped images on 0..peak, MSE in float64."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(peak * peak / mse))


def _gaussian_filter_valid(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    k = kernel.size
    rows = np.lib.stride_tricks.sliding_window_view(img, k, axis=0) @ kernel
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ kernel


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """SSIM of two (H, W) images on 0..peak: Gaussian 11×11 window, σ = 1.5, K1 = 0.01, K2 = 0.03."""
    x = np.arange(11, dtype=np.float64) - 5
    g = np.exp(-(x * x) / (2 * 1.5 * 1.5))
    g /= g.sum()
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b = _gaussian_filter_valid(a, g), _gaussian_filter_valid(b, g)
    var_a = _gaussian_filter_valid(a * a, g) - mu_a**2
    var_b = _gaussian_filter_valid(b * b, g) - mu_b**2
    cov = _gaussian_filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))
