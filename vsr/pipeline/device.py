"""The device path of a job: planar YUV uploaded as decoded, converted, run and converted back on the GPU.

decode thread ─► model thread: DeviceStager (pinned buffers, upload/compute/download streams)
                  └─ on the device: Y'CbCr → RGB float → model chain (tiled if asked) → Y'CbCr codes
                ─► encode thread: planes straight into the encoder's frames
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from vsr.backends import DeviceBackend
from vsr.backends.trt_plan import Shape, fits
from vsr.errors import UsageError
from vsr.models.registry import ModelSpec
from vsr.pipeline.double_buffer import DeviceFn
from vsr.pipeline.tiling import plan_for_memory, run_tiled, tiles
from vsr.pipeline.yuv import YuvSpec, rgb_to_yuv, yuv_to_rgb


@dataclass(frozen=True)
class DevicePath:
    """Where and how the device path runs."""

    device: torch.device
    specs: tuple[ModelSpec, ...]  # the chain, first model first
    tile: int | None = None  # tile side in input pixels; None runs whole frames
    overlap: int = 16  # input pixels around each tile; must cover the model's receptive radius
    slots: int = 3  # pinned buffer sets in flight: upload, compute and download each have one
    auto: bool = False  # choose batch and tile from free device memory once the frame size is known
    max_batch: int = 8  # the most frames per batch the planner picks (a TensorRT plan's profile caps it)
    max_box: tuple[int, int] | None = None  # the largest H, W a model may be given (a plan's profile)

    @classmethod
    def for_chain(
        cls,
        device: torch.device,
        specs: Sequence[ModelSpec],
        *,
        tile: int | None = None,
        auto: bool = False,
        max_batch: int = 8,
        max_box: tuple[int, int] | None = None,
    ) -> DevicePath:
        """The path for a model chain."""
        return cls(device, tuple(specs), tile=tile, auto=auto, max_batch=max_batch, max_box=max_box)

    def _factors(self) -> list[int]:
        """Each model's input size as a multiple of the chain's input size."""
        out, f = [], 1
        for spec in self.specs:
            out.append(f)
            f *= spec.scale
        return out

    def _fits(self, batch: int, height: int, width: int, tile: int | None) -> bool:
        """Whether every model's largest input stays within TensorRT's tensor limit and the plan's box."""
        for spec, f in zip(self.specs, self._factors(), strict=True):
            h, w = height * f, width * f
            if tile is not None:
                h, w = min(h, tile + 2 * self.overlap), min(w, tile + 2 * self.overlap)
            if not fits(spec, (batch, h, w)):
                return False
            if self.max_box is not None and (h > self.max_box[0] or w > self.max_box[1]):
                return False
        return True

    def planned(self, height: int, width: int, scale: int, batch: int) -> tuple[DevicePath, int]:
        """This path and a batch size for frames of height×width: with `auto` on CUDA, from free memory;
        then cut (fewer frames, then tiles) until every model's tensors stay within TensorRT's limit and
        a plan's profile, or refused when the batch and tile were asked for and do not fit."""
        tile = self.tile
        if self.auto and self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            plan = plan_for_memory(
                free,
                height,
                width,
                scale=scale,
                features=max(s.widest_features for s in self.specs),
                pre_upsampling=any(s.family == "pre-upsampling" for s in self.specs),
                max_batch=self.max_batch,
            )
            batch, tile = plan.batch, plan.tile
        if not self.auto:
            if not self._fits(batch, height, width, tile):
                asked = f"--batch {batch}" + (f" --tile {tile}" if tile else "")
                raise UsageError(
                    f"{asked} at {width}x{height} exceeds TensorRT's 2^31-1 elements per tensor (or the "
                    "plan's profile); use a smaller --batch or --tile"
                )
            return self, batch
        while batch > 1 and not self._fits(batch, height, width, tile):
            batch -= 1
        while not self._fits(batch, height, width, tile):
            side = tile or max(height, width)
            if side <= 64:
                raise UsageError(f"no tile of {self.specs[0].name} fits TensorRT's limits")
            tile = max(64, (side - 1) // 64 * 64)
        return replace(self, tile=tile), batch

    def shapes(self, height: int, width: int, batch: int) -> list[tuple[Shape, Shape]]:
        """(smallest, largest) input N, H, W of each model of the chain in a job of this size and batch:
        what a TensorRT plan made for the job must take (edge tiles and a short last batch are smaller)."""
        out = []
        for f in self._factors():
            h, w = height * f, width * f
            if self.tile is None:
                out.append(((1, h, w), (batch, h, w)))
                continue
            boxes = tiles(h, w, self.tile, self.overlap)
            hs, ws = [b.y1 - b.y0 for b in boxes], [b.x1 - b.x0 for b in boxes]
            out.append(((1, min(hs), min(ws)), (batch, max(hs), max(ws))))
        return out


def yuv_chain(
    models: Sequence[DeviceBackend], height: int, source: YuvSpec, target: YuvSpec, path: DevicePath
) -> DeviceFn:
    """The per-batch device function: packed planes in, packed planes of the output size out (each in its
    own layout: a 4:2:2 source may be written as 4:2:0 if the encoder takes nothing else)."""

    @torch.inference_mode()
    def run(planes: Tensor) -> Tensor:
        rgb = yuv_to_rgb(planes, height, source).clamp_(0.0, 1.0)
        for model in models:
            if path.tile is None:
                rgb = model.run_float(rgb)
            else:
                rgb = run_tiled(model.run_float, rgb, scale=model.scale, tile=path.tile, overlap=path.overlap)
        return rgb_to_yuv(rgb, target)

    return run
