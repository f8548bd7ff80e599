"""Training pairs made on the training device: random HR crops, augmentation, then the degradation.

SR: LR = antialiased bicubic downscale (the protocol's kernel; never a cubic without antialias), rounded
to 8-bit levels as real video is. The crop carries a margin so the downscale sees real neighbours at the
patch edges, and the margin is cut away afterwards.
Denoise: Gaussian noise of a random σ, or real JPEG / H.264 compression at a random level.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vsr.degradations import h264, jpeg
from vsr.media.images import image_files, read_image
from vsr.train.augment import AugmentConfig, augment
from vsr.train.real import RealDegradation


def load_images(folder: Path) -> list[np.ndarray]:
    """Every image in `folder` (sorted by name) as (H, W, 3) uint8 RGB; greyscale is repeated to RGB."""
    images = [read_image(p) for p in image_files(folder)]
    return [np.repeat(i[..., None], 3, axis=2) if i.ndim == 2 else i for i in images]


def quantize(x: Tensor) -> Tensor:
    """Clamp to 0..1 and round to 8-bit levels."""
    return torch.round(x.clamp(0, 1) * 255) / 255


@dataclass(frozen=True)
class NoiseConfig:
    """Degradations for denoiser training."""

    sigma_max: float = 50.0  # Gaussian σ drawn uniformly from 0..sigma_max (on 0..255)
    compressed_prob: float = 0.5  # share of samples compressed (JPEG or H.264) instead of noised
    # Compressed samples draw uniformly from these levels; a level listed twice is drawn twice as often.
    jpeg_qualities: tuple[int, ...] = (10, 15, 20, 30, 40, 60, 80)
    h264_crfs: tuple[int, ...] = (23, 28, 33, 38, 43)

    def levels(self) -> list[tuple[str, int]]:
        """Every compressed level to draw from, repeats included, in a fixed order."""
        return [("jpeg", q) for q in self.jpeg_qualities] + [("h264", c) for c in self.h264_crfs]


def _to_device(images: list[np.ndarray], device: torch.device) -> list[Tensor]:
    return [torch.from_numpy(np.array(i)).permute(2, 0, 1).to(device) for i in images]


class PatchSampler:
    """Draws (degraded, clean) float batches (N, 3, h, w) on 0..1 from images held on the device."""

    def __init__(
        self,
        images: list[np.ndarray],
        *,
        scale: int,
        patch: int,
        batch: int,
        augment_cfg: AugmentConfig,
        device: torch.device,
        seed: int,
        noise: NoiseConfig | None = None,
        real: RealDegradation | None = None,
        pool: int = 2048,
        fresh: float | None = None,
        twins: float = 0.0,
    ) -> None:
        if patch % scale:
            raise ValueError(f"patch {patch} must be a multiple of the scale {scale}")
        self.pool = (
            DegradedPool(
                images,
                scale=scale,
                patch=patch,
                size=pool,
                degradation=real,
                seed=seed,
                fresh=fresh,
                twins=twins,
            )
            if real
            else None
        )
        self.scale, self.patch, self.batch, self.seed = scale, patch, batch, seed
        self.augment_cfg, self.noise = augment_cfg, noise
        self.device = device
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self._rng = np.random.default_rng(seed)
        # The bicubic kernel reaches 2 LR pixels = 2·scale HR pixels beyond the patch.
        self.margin = 2 * scale if scale > 1 else 0
        crop = patch + 2 * self.margin
        usable = [i for i in images if min(i.shape[:2]) >= crop]
        if not usable:
            raise ValueError(f"no training image is at least {crop}×{crop}")
        self.images = _to_device(usable, device)
        # Real codecs are too slow to run per batch: each image is compressed once at every distinct
        # level, and a repeated level shares that copy.
        self.compressed: list[list[Tensor]] = []
        if noise is not None and noise.compressed_prob > 0:
            codecs = {"jpeg": jpeg, "h264": h264}
            distinct = list(dict.fromkeys(noise.levels()))
            for img in usable:
                copies = _to_device([codecs[c](img, v) for c, v in distinct], device)
                coded = dict(zip(distinct, copies, strict=True))
                self.compressed.append([coded[lv] for lv in noise.levels()])

    def _crops(self, size: int) -> tuple[Tensor, Tensor | None]:
        clean, degraded = [], []
        for _ in range(self.batch):
            k = int(self._rng.integers(len(self.images)))
            img = self.images[k]
            y = int(self._rng.integers(img.shape[1] - size + 1))
            x = int(self._rng.integers(img.shape[2] - size + 1))
            clean.append(img[:, y : y + size, x : x + size])
            if self.compressed:
                q = int(self._rng.integers(len(self.compressed[k])))
                degraded.append(self.compressed[k][q][:, y : y + size, x : x + size])
        pair = torch.stack(degraded) if degraded else None
        return torch.stack(clean), pair

    def sample(self) -> tuple[Tensor, Tensor]:
        """One (input, target) batch."""
        if self.pool is not None:
            return self._sample_real(self.pool)
        return self._sample_denoise() if self.noise is not None else self._sample_sr()

    def numpy_rng_state(self) -> dict:
        """The state of the crop and pool draws (the torch generator's is `generator.get_state()`)."""
        return self._rng.bit_generator.state

    def set_rng_state(self, numpy_state: dict, torch_state: Tensor) -> None:
        """Continue the draws of an earlier sampler (a resumed run)."""
        self._rng.bit_generator.state = numpy_state
        self.generator.set_state(torch_state)

    def close(self) -> None:
        """Stop the degradation pool's producer, if any."""
        if self.pool is not None:
            self.pool.close()

    def _sample_real(self, pool: DegradedPool) -> tuple[Tensor, ...]:
        """(LR, HR), and for a pool with twins also (indices of the twin samples, their second LR)."""
        lr, hr, lr2, twin = pool.draw(self.batch, self._rng)
        # Flips and 90° rotations, the same for all; photometric jitter would change what the codecs saw.
        geo = AugmentConfig(flips=self.augment_cfg.flips, rotations=self.augment_cfg.rotations, jitter_prob=0)

        def tensor(a: np.ndarray) -> Tensor:
            return torch.from_numpy(a).to(self.device).permute(0, 3, 1, 2).float() / 255

        state = self.generator.get_state()
        # The twins' LR rides along as three more channels, so it gets the same flips and turns.
        both = torch.cat([tensor(lr), tensor(lr2)], dim=1) if pool.twins > 0 else tensor(lr)
        lrs = augment(both, geo, self.generator)
        self.generator.set_state(state)  # replay the same draws on the HR batch
        hr_t = augment(tensor(hr), geo, self.generator)
        if pool.twins <= 0:
            return lrs, hr_t
        index = torch.from_numpy(np.flatnonzero(twin)).to(self.device)
        return lrs[:, :3], hr_t, index, lrs[index, 3:]

    def _sample_sr(self) -> tuple[Tensor, Tensor]:
        s, m = self.scale, self.margin
        hr, _ = self._crops(self.patch + 2 * m)
        hr = augment(hr.float() / 255, self.augment_cfg, self.generator)
        lr = F.interpolate(hr, scale_factor=1 / s, mode="bicubic", antialias=True, align_corners=False)
        lr = quantize(lr)
        if m:
            hr, lr = hr[..., m:-m, m:-m], lr[..., m // s : -m // s, m // s : -m // s]
        return lr, hr

    def _sample_denoise(self) -> tuple[Tensor, Tensor]:
        assert self.noise is not None
        clean_u8, coded_u8 = self._crops(self.patch)
        n = clean_u8.shape[0]
        # Geometric augmentation must hit clean and compressed alike: augment them as one 6-channel stack.
        geo = AugmentConfig(flips=self.augment_cfg.flips, rotations=self.augment_cfg.rotations, jitter_prob=0)
        both = clean_u8.float() / 255
        if coded_u8 is not None:
            both = torch.cat([both, coded_u8.float() / 255], dim=1)
        both = augment(both, geo, self.generator)
        clean = both[:, :3]
        sigma = torch.rand(n, 1, 1, 1, device=self.device, generator=self.generator) * self.noise.sigma_max
        noise = torch.randn(clean.shape, device=self.device, generator=self.generator) * sigma / 255
        noisy = quantize(clean + noise)
        if coded_u8 is not None:
            use_coded = torch.rand(n, 1, 1, 1, device=self.device, generator=self.generator)
            noisy = torch.where(use_coded < self.noise.compressed_prob, both[:, 3:], noisy)
        return noisy, clean


class DegradedPool:
    """(LR, HR) pairs made by RealDegradation, held in a pool that a producer thread keeps renewing.

    The codecs make a pair far slower than a training step uses one (about 80 pairs/s on one core), so
    batches draw from the pool while the producer replaces a random pair at a time: each pair serves a few
    batches, and the pool is renewed every pool/80 seconds. Crops carry a margin of 8 LR pixels that blur
    kernels and the codec's pan read and that is cut away afterwards.

    With `twins` > 0, that share of the pairs holds a second LR of the same HR (RealDegradation.twins: two
    consecutive frames of a coded still), for a temporal consistency loss; the others repeat their LR.

    `fresh` caps the producer at that many new pairs per pair drawn. Unbounded, it makes ~100 pairs per
    step of 16 on a 2-core CPU (bench/train_speed.py), a whole core mostly thrown away; at 1 it needs
    about a quarter of a core and the trainer gets the rest.
    """

    def __init__(
        self,
        images: list[np.ndarray],
        *,
        scale: int,
        patch: int,
        size: int,
        degradation: RealDegradation,
        seed: int,
        fresh: float | None = None,
        twins: float = 0.0,
    ) -> None:
        self.scale, self.patch, self.degradation, self.fresh = scale, patch, degradation, fresh
        self.twins = twins
        self.margin = 8 * scale
        crop = patch + 2 * self.margin
        self.images = [i for i in images if min(i.shape[:2]) >= crop]
        if not self.images:
            raise ValueError(f"no training image is at least {crop}×{crop}")
        lr_side = patch // scale
        self.lr = np.empty((size, lr_side, lr_side, 3), np.uint8)
        self.lr2 = np.empty_like(self.lr)  # the twin's LR, or the LR again
        self.twin = np.zeros(size, bool)
        self.hr = np.empty((size, patch, patch, 3), np.uint8)
        self._rng = np.random.default_rng(seed + 1)
        for k in range(size):
            self._store(k, *self.pair())
        self.made = size
        self._renewed = self._drawn = 0
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._renew, name="vsr-degrade", daemon=True)
        self._thread.start()

    def pair(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One fresh (LR, HR, twin LR or None) from a random crop of a random image."""
        img = self.images[int(self._rng.integers(len(self.images)))]
        side = self.patch + 2 * self.margin
        y = int(self._rng.integers(img.shape[0] - side + 1))
        x = int(self._rng.integers(img.shape[1] - side + 1))
        hr = img[y : y + side, x : x + side]
        m, lm = self.margin, self.margin // self.scale
        if self.twins > 0 and self._rng.random() < self.twins:
            a, b, _steps = self.degradation.twins(hr, self.scale, self._rng)
            return a[lm:-lm, lm:-lm], hr[m:-m, m:-m], b[lm:-lm, lm:-lm]
        lr, _steps = self.degradation.degrade(hr, self.scale, self._rng)
        return lr[lm:-lm, lm:-lm], hr[m:-m, m:-m], None

    def _store(self, k: int, lr: np.ndarray, hr: np.ndarray, twin: np.ndarray | None) -> None:
        self.lr[k], self.hr[k], self.twin[k] = lr, hr, twin is not None
        self.lr2[k] = lr if twin is None else twin

    def _renew(self) -> None:
        while not self._stop.is_set():
            if self.fresh is not None and self._renewed >= self.fresh * self._drawn:
                self._stop.wait(0.005)  # ahead of the trainer: let it have the core
                continue
            made = self.pair()
            k = int(self._rng.integers(len(self.lr)))
            with self._lock:
                self._store(k, *made)
                self.made += 1
                self._renewed += 1

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """n random pairs (copies): (N, h, w, 3) uint8 LR, (N, H, W, 3) uint8 HR, the twins' LR (the LR
        again where a pair has none) and which pairs are twins."""
        idx = rng.integers(len(self.lr), size=n)
        with self._lock:
            self._drawn += n
            return self.lr[idx], self.hr[idx], self.lr2[idx], self.twin[idx]

    def close(self) -> None:
        """Stop the producer."""
        self._stop.set()
        self._thread.join()
