"""Checkpoints into vsr's graphs, through spandrel: read as data only, architecture detected, wrapped in
vsr's interface (spandrel's padding to the size multiple, grey models on luma), exported and checked.

A checkpoint is read with safetensors or torch.load(weights_only=True): one that needs arbitrary unpickling
is refused, never run. The exported graph's output through ONNX Runtime is compared with the network in
torch on test pictures of odd sizes before anything is written; more than one level apart is refused.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vsr.errors import BadInputError, UsageError

# BT.601 luma: what grey (Y-channel) SR models are trained on.
KR, KB = 0.299, 0.114
TOLERANCE = 1  # levels (8-bit) between the exported graph and the network in torch


def spandrel() -> types.ModuleType:
    """spandrel, imported so that torchvision's native ops stay out of the way.

    spandrel imports torchvision only in two architectures vsr never runs (LaMa inpainting, RestoreFormer
    face restoration), for two Python functions. Where torchvision is missing, or is a build that does not
    load against this torch ("operator torchvision::nms does not exist": a CUDA torchvision beside a CPU
    torch), those names are given stand-ins that refuse to run, so every SR architecture still loads.
    """
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    try:
        importlib.import_module("torchvision.transforms.functional")
    except Exception:
        for key in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[key]
        _stand_in_torchvision()
    try:
        return importlib.import_module("spandrel")
    except ImportError as exc:
        raise UsageError(f"importing checkpoints needs spandrel: pip install 'vsr[import]' ({exc})") from None


def _stand_in_torchvision() -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("this architecture needs torchvision, which is not usable here")

    package, transforms = types.ModuleType("torchvision"), types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    package.__path__, transforms.__path__ = [], []  # type: ignore[attr-defined]
    functional.InterpolationMode = type("InterpolationMode", (), {})  # type: ignore[attr-defined]
    functional.rotate = functional.normalize = refuse  # type: ignore[attr-defined]
    package.transforms, transforms.functional = transforms, functional  # type: ignore[attr-defined]
    sys.modules.update(
        {
            "torchvision": package,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
        }
    )


def read_checkpoint(path: Path) -> tuple[dict[str, Tensor], str | None]:
    """(state dict, licence if the file names one), read as data only."""
    import pickle

    license = None
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors import safe_open
            from safetensors.torch import load_file

            with safe_open(str(path), "pt") as handle:
                meta = handle.metadata() or {}
            license = meta.get("license") or meta.get("licence")
            return load_file(str(path)), license
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found is None:  # not a pickle of objects at all: a damaged or foreign file
            raise BadInputError(f"{path}: not a readable checkpoint (no tensors could be read)") from None
        raise BadInputError(
            f"{path}: loading it would unpickle {found.group(1)}, arbitrary code vsr refuses to run; re-save "
            "its state dict as .safetensors on a machine where you trust the file"
        ) from None
    except Exception as exc:
        raise BadInputError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: holds a {type(data).__name__}, not a state dict")
    for key in ("license", "licence"):
        if isinstance(data.get(key), str):
            license = data[key]
    return data, license


def describe(state_dict: dict[str, Tensor], path: Path) -> Any:
    """spandrel's descriptor of the checkpoint (architecture, scale, channels, size requirements)."""
    sp = spandrel()
    try:
        descriptor = sp.ModelLoader(device="cpu").load_from_state_dict(sp.canonicalize_state_dict(state_dict))
    except sp.UnsupportedModelError:
        raise BadInputError(f"{path}: spandrel recognises no architecture in this checkpoint") from None
    except Exception as exc:
        raise BadInputError(
            f"{path}: a damaged checkpoint ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    if descriptor.purpose not in ("SR", "Restoration"):
        raise UsageError(
            f"{path}: a {descriptor.purpose} model ({descriptor.architecture.name}); "
            "vsr runs SR and restoration models"
        )
    channels = (descriptor.input_channels, descriptor.output_channels)
    if channels not in ((3, 3), (1, 1)):
        raise UsageError(f"{path}: {channels[0]} channels in, {channels[1]} out; vsr runs RGB or grey models")
    return descriptor.eval()


def wrap(descriptor: Any) -> nn.Module:
    """The descriptor's network as vsr runs it: (N, 3, H, W) RGB 0..1 → (N, 3, H·s, W·s), padded to the
    architecture's size multiple the way spandrel pads (reflect, then replicate, right and bottom) and
    cropped back; a grey model on luma with chroma upscaled bicubically."""
    req = descriptor.size_requirements
    net: nn.Module = Padded(descriptor.model, descriptor.scale, req.multiple_of, req.minimum)
    return Luma(net, descriptor.scale) if descriptor.input_channels == 1 else net


class Padded(nn.Module):
    """Pads right and bottom to the architecture's size multiple as spandrel does (reflect, at most
    size - 1, then replicate) and crops the output back: inside the graph, for any input size."""

    def __init__(self, net: nn.Module, scale: int, multiple: int, minimum: int) -> None:
        super().__init__()
        self.net, self.scale, self.multiple, self.minimum = net, scale, multiple, minimum

    def forward(self, x: Tensor) -> Tensor:
        if self.multiple == 1 and self.minimum <= 1:
            return self.net(x)
        h, w = x.shape[2], x.shape[3]
        pad_h, pad_w = _pad_to(h, self.multiple, self.minimum), _pad_to(w, self.multiple, self.minimum)
        reflect_h, reflect_w = (
            torch.minimum(pad_h, torch.as_tensor(h) - 1),
            torch.minimum(pad_w, torch.as_tensor(w) - 1),
        )
        x = F.pad(x, (0, reflect_w, 0, reflect_h), mode="reflect")
        x = F.pad(x, (0, pad_w - reflect_w, 0, pad_h - reflect_h), mode="replicate")
        return self.net(x)[:, :, : h * self.scale, : w * self.scale]


class Luma(nn.Module):
    """A grey model on the luma of RGB frames; chroma upscaled bicubically beside it."""

    def __init__(self, net: nn.Module, scale: int) -> None:
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: Tensor) -> Tensor:
        r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
        y = KR * r + (1 - KR - KB) * g + KB * b
        cb, cr = (b - y) / (2 * (1 - KB)), (r - y) / (2 * (1 - KR))
        y = self.net(y)
        if self.scale > 1:
            cb = F.interpolate(cb, scale_factor=self.scale, mode="bicubic", align_corners=False)
            cr = F.interpolate(cr, scale_factor=self.scale, mode="bicubic", align_corners=False)
        r, b = y + 2 * (1 - KR) * cr, y + 2 * (1 - KB) * cb
        return torch.cat([r, (y - KR * r - KB * b) / (1 - KR - KB), b], dim=1)


def _pad_to(size: Any, multiple: int, minimum: int) -> Tensor:
    """Padding that brings `size` to at least `minimum` and a multiple of `multiple` (traced sizes too)."""
    size = torch.as_tensor(size)
    target = (torch.clamp(size, min=minimum) + multiple - 1) // multiple * multiple
    return target - size


def rebuild(weights: Path) -> nn.Module:
    """An imported model's network from its stored weights, wrapped as at import (torch, TensorRT)."""
    state, _license = read_checkpoint(weights)
    return wrap(describe(state, weights)).eval()


def check_picture(height: int = 45, width: int = 37) -> np.ndarray:
    """A deterministic natural-looking RGB picture of odd size: smooth gradients, edges and fine texture."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(11)
    base = np.stack(
        [120 + 90 * np.sin(x / 7 + y / 11), 110 + 80 * np.cos(y / 6), 130 + 70 * np.sin((x - y) / 5)], -1
    )
    base[(x > width / 2) & (y > height / 3)] *= 0.4  # an edge
    texture = rng.normal(0, 12, (height, width, 3))
    return np.clip(base + texture, 0, 255).astype(np.uint8)


def describe_entry(descriptor: Any, net: nn.Module) -> dict[str, Any]:
    """The store entry's description of a checkpoint's model (files and hashes are added by the caller)."""
    req = descriptor.size_requirements
    convs = [m.out_channels for m in descriptor.model.modules() if isinstance(m, nn.Conv2d)]
    return {
        "arch": descriptor.architecture.id,
        "arch_name": descriptor.architecture.name,
        "imported": True,
        "task": "sr" if descriptor.scale > 1 else "denoise",
        "family": "imported",
        "scale": descriptor.scale,
        "params": sum(p.numel() for p in descriptor.model.parameters()),
        "gflops_1080p": round(_gflops(net), 1),
        "widest_features": max(convs or [64]),
        "input_channels": descriptor.input_channels,
        "tags": list(descriptor.tags),
        "size_requirements": {"minimum": req.minimum, "multiple_of": req.multiple_of, "square": req.square},
        "supports_half": descriptor.supports_half,
        "supports_bfloat16": descriptor.supports_bfloat16,
    }


def weights_of(descriptor: Any) -> bytes:
    """The network's state dict as safetensors bytes (what rebuild() reads back)."""
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in descriptor.model.state_dict().items()})


@dataclass(frozen=True)
class ExportCheck:
    """How an exported graph compares with the network in torch."""

    max_diff: int  # levels, over every picture checked
    batched: bool  # whether it runs two pictures in one call (a graph may keep the batch it was traced at)


def check_export(net: nn.Module, onnx_bytes: bytes, sizes: list[tuple[int, int]]) -> ExportCheck | None:
    """The graph through ONNX Runtime against the network in torch (float32, rounded the same way) on check
    pictures of the given sizes, one at a time and then two in one call; None when the graph does not run
    one picture at one of the sizes (a graph that keeps the size it was traced at: window attention sized
    in Python)."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    worst, batched = 0, True
    for height, width in sizes:
        picture = check_picture(height, width)
        pair = np.stack([picture, np.ascontiguousarray(picture[::-1, ::-1])])
        with torch.no_grad():
            x = torch.from_numpy(pair).permute(0, 3, 1, 2).float() / 255
            want = (net(x).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        try:
            got = session.run(None, {"input": pair[:1]})[0]
        except Exception:  # ONNX Runtime's shape errors
            return None
        if got.shape != want[:1].shape:
            return None
        worst = max(worst, int(np.abs(got.astype(int) - want[:1]).max()))
        if batched:
            batched = _runs_batched(session, pair, want)
    return ExportCheck(worst, batched)


def _runs_batched(session: Any, pair: np.ndarray, want: np.ndarray) -> bool:
    """Whether two pictures in one call come out as torch makes them. A batch traced into the graph either
    fails (DITN's reshape) or, worse, runs and mixes the pictures (HAT's window masks: 3 levels off)."""
    try:
        both = session.run(None, {"input": pair})[0]
    except Exception:  # ONNX Runtime's shape errors
        return False
    return both.shape == want.shape and int(np.abs(both.astype(int) - want).max()) <= TOLERANCE


def _gflops(net: nn.Module) -> float:
    """GFLOPs for one 1080p frame, counted by torch over every op (convolutions and matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode

    side = 64
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, side, side))
    return counter.get_total_flops() * (1080 * 1920) / (side * side) / 1e9
