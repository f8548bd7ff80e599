"""Tiles with overlap for frames too large for the device or the host, and the GPU's batch/tile choice from
free memory.

A tile is run with `overlap` extra input pixels on every inner side; only its core is kept, so as long as
the overlap covers the model's receptive radius the stitched output equals the untiled one exactly (no
seams, no blending needed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from vsr.backends import Backend

if TYPE_CHECKING:
    from torch import Tensor

Array = TypeVar("Array", "Tensor", np.ndarray)


@dataclass(frozen=True)
class Tile:
    """Input box to run (with overlap) and the core of it to keep, in input pixels."""

    y0: int
    y1: int
    x0: int
    x1: int  # the box run through the model
    core_y0: int
    core_y1: int
    core_x0: int
    core_x1: int  # the part kept, within the frame


def tiles(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Cover (height, width) with cores of at most tile×tile, each grown by `overlap` within the frame."""
    if tile < 1 or overlap < 0:
        raise ValueError("tile must be positive and overlap non-negative")
    out = []
    for cy0 in range(0, height, tile):
        cy1 = min(cy0 + tile, height)
        for cx0 in range(0, width, tile):
            cx1 = min(cx0 + tile, width)
            y0, y1 = max(0, cy0 - overlap), min(height, cy1 + overlap)
            x0, x1 = max(0, cx0 - overlap), min(width, cx1 + overlap)
            out.append(Tile(y0, y1, x0, x1, cy0, cy1, cx0, cx1))
    return out


def run_tiled(fn: Callable[[Array], Array], x: Array, *, scale: int, tile: int, overlap: int) -> Array:
    """fn over a batch in tiles, stitched: (N, C, H, W) device tensors (the GPU path) or (N, H, W, C)
    numpy arrays (the CPU path, for frames whose activations do not fit a small machine's memory)."""
    nhwc = isinstance(x, np.ndarray)
    h, w = x.shape[1:3] if nhwc else x.shape[2:4]
    if tile >= h and tile >= w:
        return fn(x)

    def box(y0: int, y1: int, x0: int, x1: int) -> tuple[slice, ...]:
        spatial = (slice(y0, y1), slice(x0, x1))
        return (slice(None), *spatial) if nhwc else (slice(None), slice(None), *spatial)

    out: Any = None
    for t in tiles(h, w, tile, overlap):
        part = x[box(t.y0, t.y1, t.x0, t.x1)]
        y = fn(np.ascontiguousarray(part) if nhwc else part)
        if out is None:
            shape = list(y.shape)
            shape[1 if nhwc else 2], shape[2 if nhwc else 3] = h * scale, w * scale
            out = np.empty(shape, y.dtype) if nhwc else y.new_empty(shape)
        oy, ox = (t.core_y0 - t.y0) * scale, (t.core_x0 - t.x0) * scale
        hh, ww = (t.core_y1 - t.core_y0) * scale, (t.core_x1 - t.core_x0) * scale
        s = scale
        out[box(t.core_y0 * s, t.core_y1 * s, t.core_x0 * s, t.core_x1 * s)] = y[
            box(oy, oy + hh, ox, ox + ww)
        ]
    return out


class FixedTiles(Backend):
    """A backend whose graph takes one picture size only (an imported window-attention model, exported at
    `tile`×`tile`): each frame is cut into tiles of that size overlapping by `overlap` on every inner side,
    edge tiles are padded by replication to the full size, and the cores are stitched (run_tiled)."""

    def __init__(self, inner: Backend, tile: int, overlap: int) -> None:
        self.inner, self.tile, self.overlap = inner, tile, overlap
        self.scale, self.channels, self.dtypes = inner.scale, inner.channels, inner.dtypes
        self.name = f"{inner.name}, {tile}×{tile} tiles"

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.check(batch)
        core = self.tile - 2 * self.overlap
        return run_tiled(self._padded, batch, scale=self.scale, tile=core, overlap=self.overlap)

    def _padded(self, part: np.ndarray) -> np.ndarray:
        _n, h, w, _c = part.shape
        full = np.pad(part, ((0, 0), (0, self.tile - h), (0, self.tile - w), (0, 0)), mode="edge")
        return self.inner.run(full)[:, : h * self.scale, : w * self.scale]

    def close(self) -> None:
        self.inner.close()


class OnePerCall(Backend):
    """A backend whose graph keeps the batch it was traced at (an imported DITN): one picture per call."""

    def __init__(self, inner: Backend) -> None:
        self.inner, self.scale, self.channels, self.dtypes = inner, inner.scale, inner.channels, inner.dtypes
        self.name = f"{inner.name}, one picture per call"

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.check(batch)
        return np.concatenate([self.inner.run(batch[i : i + 1]) for i in range(len(batch))])

    def close(self) -> None:
        self.inner.close()


@dataclass(frozen=True)
class DevicePlan:
    """How many frames per batch, and the tile side (None: whole frames)."""

    batch: int
    tile: int | None


def plan_for_memory(
    free_bytes: int,
    height: int,
    width: int,
    *,
    scale: int,
    features: int,
    pre_upsampling: bool = False,
    max_batch: int = 8,
) -> DevicePlan:
    """Batch and tile that keep the working set within half the free device memory.

    The estimate per frame: input and output RGB in float32 twice over (conversion copies), plus two live
    activations of `features` channels in float16 (the most a plain conv stack keeps at once), at the
    output size for pre-upsampling models and at the input size for post-upsampling ones.
    """
    budget = free_bytes // 2
    in_px, out_px = height * width, height * width * scale * scale
    per_frame = (in_px + out_px) * 3 * 4 * 2 + (out_px if pre_upsampling else in_px) * 2 * features * 2
    if per_frame <= budget:
        return DevicePlan(batch=max(1, min(max_batch, budget // per_frame)), tile=None)
    # Even one frame is too large: tiles of a side whose working set fits, rounded down to a multiple of 64.
    side = int((height * width * budget / per_frame) ** 0.5)
    return DevicePlan(batch=1, tile=max(64, side // 64 * 64))
