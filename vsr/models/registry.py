"""The explicit model registry: a written-out list of every architecture configuration vsr knows.

torch-free: a spec names its architecture and hyper-parameters; `build()` imports torch only when called.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Literal

from vsr.errors import UsageError

Task = Literal["sr", "denoise"]
# What the LR inputs of training were: the protocol's bicubic downscale, or a mix of vsr.train.real.PRESETS.
Degradation = Literal["bicubic", "real", "codec"]
Family = Literal["post-upsampling", "pre-upsampling", "denoise", "imported"]
# What a model is for: "faithful" to the source (L1-trained; `auto` chooses among these) or "restore" (the
# restoring look: adversarially trained, it draws detail the source lost; only when asked).
Look = Literal["faithful", "restore"]


@dataclass(frozen=True)
class ModelSpec:
    """What a runtime and the trainer need to know about one model configuration."""

    name: str
    arch: str  # "module:Class" under vsr.models
    task: Task
    family: Family
    scale: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    channels: int = 3  # RGB in and out
    degradation: Degradation = "bicubic"  # the training inputs (vsr.train.real.PRESETS for the others)
    look: Look = "faithful"
    # Input pixels replicated around each frame and cropped from the output, for models whose zero-padded
    # convolutions get the outermost pixels wrong (see vsr.models.export.IntegerIo). Set from measurement:
    # on a flat frame FSRCNN was 64 levels off at the edge and SRCNN 33. ESPCN ×3 and the denoiser were 4
    # off: ESPCN ×3 gets its receptive radius (it costs 0.008 dB on Set14), the denoiser 12 (it gains
    # 0.007-0.02 dB, as denoising PSNR counts the border). ESPCN ×2 and the compact nets were within 3 and
    # lose PSNR near the border with a margin, so they keep 0.
    edge_margin: int = 0

    @property
    def widest_features(self) -> int:
        """The widest activation the architecture keeps (64 where its hyper-parameters do not say)."""
        f = self.kwargs.get("features", self.kwargs.get("d", 64))  # FSRCNN calls its width d
        return max(f) if isinstance(f, tuple | list) else int(f)

    def build(self) -> Any:
        """Instantiate the torch module (imports torch)."""
        module_name, cls_name = self.arch.split(":")
        cls = getattr(importlib.import_module(f"vsr.models.{module_name}"), cls_name)
        extra = {} if self.task == "denoise" else {"scale": self.scale}
        return cls(**extra, **self.kwargs)


_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("espcn-x2", "espcn:ESPCN", "sr", "post-upsampling", 2, {"skip": True}),
    ModelSpec("espcn-x3", "espcn:ESPCN", "sr", "post-upsampling", 3, {"skip": True}, edge_margin=4),
    ModelSpec("fsrcnn-x2", "fsrcnn:FSRCNN", "sr", "post-upsampling", 2, {"d": 56}, edge_margin=8),
    ModelSpec("compact-x2", "compact:Compact", "sr", "post-upsampling", 2, {"features": 48, "num_conv": 10}),
    ModelSpec("compact-x4", "compact:Compact", "sr", "post-upsampling", 4, {"features": 48, "num_conv": 10}),
    ModelSpec("srcnn-x2", "srcnn:SRCNN", "sr", "pre-upsampling", 2, edge_margin=8),
    ModelSpec("vdsr-x2", "vdsr:VDSR", "sr", "pre-upsampling", 2),
    # Trained on real-world damage (blur, noise, resampling, JPEG and video codecs): restore and upscale.
    ModelSpec("real-espcn-x2", "espcn:ESPCN", "sr", "post-upsampling", 2, {"skip": True}, degradation="real"),
    ModelSpec(
        "real-compact-x2",
        "compact:Compact",
        "sr",
        "post-upsampling",
        2,
        {"features": 48, "num_conv": 10},
        degradation="real",
    ),
    # Trained for sharp masters damaged by their codec (the "codec" mix); `auto` runs it where it wins.
    ModelSpec(
        "codec-compact-x2",
        "compact:Compact",
        "sr",
        "post-upsampling",
        2,
        {"features": 48, "num_conv": 10},
        degradation="codec",
    ),
    ModelSpec(
        "real-compact-x4",
        "compact:Compact",
        "sr",
        "post-upsampling",
        4,
        {"features": 48, "num_conv": 10},
        degradation="real",
    ),
    # The restoring look (#26): a real-* model fine-tuned adversarially (`vsr train --gan`, vsr.train.gan).
    ModelSpec(
        "restore-compact-x4",
        "compact:Compact",
        "sr",
        "post-upsampling",
        4,
        {"features": 48, "num_conv": 10},
        degradation="real",
        look="restore",
    ),
    ModelSpec(
        "dncnn-color", "dncnn:DnCNN", "denoise", "denoise", 1, {"features": 32, "depth": 12}, edge_margin=12
    ),
)


def _index(specs: tuple[ModelSpec, ...]) -> dict[str, ModelSpec]:
    index: dict[str, ModelSpec] = {}
    for spec in specs:
        if spec.name in index:
            raise ValueError(f"duplicate model name in the registry: {spec.name}")
        index[spec.name] = spec
    return index


REGISTRY: dict[str, ModelSpec] = _index(_SPECS)


def get_spec(name: str) -> ModelSpec:
    """The spec registered under `name`; UsageError listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; known: {', '.join(REGISTRY)}") from None
