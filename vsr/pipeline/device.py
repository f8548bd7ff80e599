"""The device path of a job: planar YUV uploaded as decoded, converted, run and converted back on the GPU.

decode thread ─► model thread: DeviceStager (pinned double buffers, upload/compute/download streams)
                  └─ on the device: Y'CbCr → RGB float → model chain (tiled if asked) → Y'CbCr codes
                ─► encode thread: planes straight into the encoder's frames
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from vsr.backends import DeviceBackend
from vsr.models.registry import ModelSpec
from vsr.pipeline.double_buffer import DeviceFn
from vsr.pipeline.tiling import plan_for_memory, run_tiled
from vsr.pipeline.yuv import YuvSpec, rgb_to_yuv420, yuv420_to_rgb


@dataclass(frozen=True)
class DevicePath:
    """Where and how the device path runs."""

    device: torch.device
    tile: int | None = None  # tile side in input pixels; None runs whole frames
    overlap: int = 16  # input pixels around each tile; must cover the model's receptive radius
    slots: int = 2  # pinned buffer sets that alternate (2 = double buffering)
    auto: bool = False  # choose batch and tile from free device memory once the frame size is known
    features: int = 64  # widest activation of the chain, for the memory estimate
    pre_upsampling: bool = False  # whether some model of the chain works at the output size
    max_batch: int = 8  # the most frames per batch the planner picks (a TensorRT plan's profile caps it)

    @classmethod
    def for_chain(
        cls,
        device: torch.device,
        specs: Sequence[ModelSpec],
        *,
        tile: int | None = None,
        auto: bool = False,
        max_batch: int = 8,
    ) -> DevicePath:
        """The path for a model chain: its widest activation and family feed the memory plan."""
        return cls(
            device,
            tile=tile,
            auto=auto,
            features=max(s.widest_features for s in specs),
            pre_upsampling=any(s.family == "pre-upsampling" for s in specs),
            max_batch=max_batch,
        )

    def planned(self, height: int, width: int, scale: int) -> tuple[DevicePath, int | None]:
        """With `auto` on CUDA: this path with the tile fitting free memory, and a batch size; else as is."""
        if not self.auto or self.device.type != "cuda":
            return self, None
        free, _total = torch.cuda.mem_get_info(self.device)
        plan = plan_for_memory(
            free,
            height,
            width,
            scale=scale,
            features=self.features,
            pre_upsampling=self.pre_upsampling,
            max_batch=self.max_batch,
        )
        return replace(self, tile=plan.tile), plan.batch


def yuv_chain(
    models: Sequence[DeviceBackend], height: int, source: YuvSpec, target: YuvSpec, path: DevicePath
) -> DeviceFn:
    """The per-batch device function: packed 4:2:0 planes in, packed 4:2:0 planes of the output size out."""

    @torch.inference_mode()
    def run(planes: Tensor) -> Tensor:
        rgb = yuv420_to_rgb(planes, height, source).clamp_(0.0, 1.0)
        for model in models:
            if path.tile is None:
                rgb = model.run_float(rgb)
            else:
                rgb = run_tiled(model.run_float, rgb, scale=model.scale, tile=path.tile, overlap=path.overlap)
        return rgb_to_yuv420(rgb, target)

    return run
