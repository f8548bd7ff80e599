"""The release step: a finished training run becomes shipped artefacts (weights, ONNX graphs) with a
measured manifest entry. Lives with training, so `vsr.models` never imports a runtime."""

from __future__ import annotations

import json
import shlex
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vsr.backends.options import BackendOptions, OpenVinoOptions, OrtOptions
from vsr.backends.ort_backend import OrtBackend
from vsr.backends.select import installed, open_backend
from vsr.degradations import Damage, noise_degrade
from vsr.errors import BackendUnavailableError
from vsr.evaluate import (
    Score,
    evaluate_denoise,
    evaluate_sr,
    load_eval_images,
    mean_scores,
    measure_denoise,
)
from vsr.files import atomic_write
from vsr.models.artefacts import MANIFEST, ShippedModel, shipped_model
from vsr.models.export import export_onnx, load_model, sha256
from vsr.models.registry import ModelSpec, get_spec
from vsr.train.data import NoiseConfig
from vsr.train.real import PRESETS

FULL_HD = (1080, 1920)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters())


def gflops_per_frame(model: nn.Module, size: tuple[int, int] = FULL_HD) -> float:
    """GFLOPs (2 × multiply-adds of the convolutions) for one RGB input frame of `size` (H, W).

    Measured on a 64×64 input and scaled by the pixel count: every layer here is convolutional.
    """
    macs = 0

    def hook(module: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.ConvTranspose2d):
            # Each input pixel scatters a full kernel into the output.
            macs += (
                _inp[0][0, 0].numel() * module.in_channels * module.out_channels * module.kernel_size[0] ** 2
            )
        else:
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs += out[0].numel() * k

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, 64, 64))
    for h in handles:
        h.remove()
    return 2 * macs * (size[0] * size[1]) / (64 * 64) / 1e9


def _training_command(config: dict[str, Any]) -> str:
    keys = (
        "model",
        "data",
        "out",
        "steps",
        "minutes",
        "batch",
        "patch",
        "lr",
        "loss",
        "val_data",
        "val_every",
        "seed",
        "device",
        "threads",
        "init",
    )
    parts = ["vsr train"]
    for k in keys:
        if config.get(k) is not None and not (k == "threads" and config[k] == 0):
            parts += [f"--{k.replace('_', '-')} {v}" for v in _as_list(config[k])]
    if config.get("degradation"):
        parts.append(f"--degradation {config['degradation']}")
    if (config.get("degradation") or get_spec(config["model"]).degradation) in PRESETS:
        parts.append(f"--pool {config.get('pool') or 2048}")
        if config.get("fresh") is not None:
            parts.append(f"--fresh {config['fresh']}")
        if config.get("consistency"):
            parts.append(f"--consistency {config['consistency']}")
    parts.append(f"--jitter {config['augment']['jitter_prob']}")
    if config.get("amp"):
        parts.append("--amp")
    if config.get("channels_last"):
        parts.append("--channels-last")
    if gan := config.get("gan"):
        parts.append(f"--gan {gan['discriminator']} --d-features {gan['features']} --d-lr {gan['lr']}")
        parts.append(f"--gan-weight {gan['gan_weight']} --fm-weight {gan['fm_weight']}")
        parts.append(f"--freq-weight {gan['freq_weight']} --ema {gan['ema']}")
    # The denoiser's training mix, where it differs from the defaults (older configs lack it).
    noise, default = config.get("noise"), asdict(NoiseConfig())
    for k, v in (noise or {}).items():
        value = tuple(v) if isinstance(v, list) else v
        if value != default[k]:
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            parts.append(f"--{k.replace('_', '-')} {shlex.quote(text)}")
    return " ".join(parts)


def _as_list(value: Any) -> list:
    """A config value that may be one item or a list of them (the data folders)."""
    return value if isinstance(value, list) else [value]


def _summary(scores: list[Score]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in mean_scores(scores).items()}


def measure(
    spec: ModelSpec, onnx_path: Path, data_root: Path, threads: int = 0
) -> dict[str, dict[str, float]]:
    """Measured through ONNX Runtime on the protocol: SR on Set5 and Set14 beside bicubic; a denoiser at
    every level of DENOISE_LEVELS beside the degraded input and a tuned nlmeans."""
    with OrtBackend(onnx_path, scale=spec.scale, options=OrtOptions(threads=threads)) as backend:

        def predict(img: Any) -> Any:
            return backend.run(img[None])[0]

        if spec.task == "denoise":
            return measure_denoise(predict, data_root)
        results = {}
        for name in ("Set5", "Set14"):
            scores = evaluate_sr(load_eval_images(data_root / "sr-eval" / name), spec.scale, predict)
            results[name] = _summary(scores)
        return results


# The CPU runtimes and precisions whose quality the manifest records (`cpu_precisions`): the reference,
# OpenVINO's fp32 and the bf16 that `auto` picks on AMX / AVX-512-BF16 machines.
CPU_PRECISIONS: dict[str, BackendOptions] = {
    "onnxruntime fp32": OrtOptions(),
    "openvino fp32": OpenVinoOptions(precision="fp32", cache=False),
    "openvino bf16": OpenVinoOptions(precision="bf16", cache=False),
}
DENOISE_PRECISION_SIGMA = 25  # a denoiser's precision figures: RGB-PSNR at Gaussian σ 25


def measure_precisions(model: ShippedModel, data_root: Path) -> dict[str, dict[str, float]]:
    """Mean PSNR on Set5 and Set14 per CPU runtime and precision (an upscaler: Y on the SR protocol; a
    denoiser: RGB at σ 25), so the cost of each precision is on record beside the reference."""
    if not installed("openvino"):
        raise BackendUnavailableError("measuring the CPU precisions needs openvino")
    sets = {name: load_eval_images(data_root / "sr-eval" / name) for name in ("Set5", "Set14")}
    results = {}
    for label, options in CPU_PRECISIONS.items():
        with open_backend(options, model) as backend:

            def predict(img: Any) -> Any:
                return backend.run(img[None])[0]

            scores = {}
            for name, images in sets.items():
                if model.spec.task == "sr":
                    found = evaluate_sr(images, model.spec.scale, predict)
                else:
                    noise = noise_degrade(DENOISE_PRECISION_SIGMA)
                    found = evaluate_denoise(images, noise, predict, on_y=False)
                scores[name] = round(mean_scores(found)["psnr"], 4)
            results[label] = scores
    return results


DAMAGE_LEVELS = ("h264:crf=23", "h264:crf=28", "h264:crf=33")  # the compressed protocol of #14, intra


def measure_damaged(model: ShippedModel, data_root: Path) -> dict[str, dict[str, float]]:
    """An upscaler's Set5 Y-PSNR when the LR was compressed first (ONNX Runtime fp32), beside bicubic on
    the same damaged LR, per level of DAMAGE_LEVELS."""
    images = load_eval_images(data_root / "sr-eval" / "Set5")
    with OrtBackend(model.onnx, scale=model.spec.scale) as backend:
        results = {}
        for level in DAMAGE_LEVELS:
            scores = evaluate_sr(
                images, model.spec.scale, lambda x: backend.run(x[None])[0], Damage.parse(level).apply
            )
            mean = mean_scores(scores)
            results[level] = {
                "psnr": round(mean["psnr"], 4),
                "baseline_psnr": round(mean["baseline_psnr"], 4),
            }
    return results


def remeasure(names: list[str], root: Path, data_root: Path) -> dict[str, Any]:
    """Measure shipped models' PSNR per CPU runtime and precision and, for upscalers, on compressed LR,
    and write both into their manifest entries."""
    manifest_path = root / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    for name in names:
        model, entry = shipped_model(name, root), manifest["models"][name]
        entry["cpu_precisions"] = measure_precisions(model, data_root)
        if model.spec.task == "sr":
            entry["damaged_set5"] = measure_damaged(model, data_root)
    atomic_write(manifest_path, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    keys = ("cpu_precisions", "damaged_set5")
    return {
        name: {k: manifest["models"][name][k] for k in keys if k in manifest["models"][name]}
        for name in names
    }


def _export_graphs(name: str, model: nn.Module, root: Path) -> tuple[Path, Path]:
    """Write the shipped graphs of `name`: uint8 I/O, and uint16 I/O for sources deeper than 8 bits."""
    spec = get_spec(name)
    onnx_path, uint16_path = root / f"{name}.onnx", root / f"{name}.uint16.onnx"
    export_onnx(model, onnx_path, scale=spec.scale, margin=spec.edge_margin)
    export_onnx(model, uint16_path, scale=spec.scale, margin=spec.edge_margin, io="uint16")
    return onnx_path, uint16_path


def export_graphs(names: list[str], root: Path) -> dict[str, dict[str, str]]:
    """Re-export shipped models' graphs from their shipped weights (after a change of the graphs'
    interface) and record the new hashes; the weights, and so every measured score, stay as they are."""
    manifest_path = root / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    for name in names:
        entry = manifest["models"][name]
        weights = root / entry["weights"]
        paths = (weights, *_export_graphs(name, load_model(get_spec(name), weights), root))
        entry["sha256"] = {p.name: sha256(p) for p in paths}
    atomic_write(manifest_path, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return {name: manifest["models"][name]["sha256"] for name in names}


def ship(
    name: str, run_dir: Path, root: Path, data_root: Path, *, trained_on: str, recipe: str
) -> dict[str, Any]:
    """Export run_dir's weights for `name` into `root`, measure them, and write the manifest entry."""
    spec = get_spec(name)
    weights = root / f"{name}.safetensors"
    onnx_path = root / f"{name}.onnx"
    shutil.copyfile(run_dir / "model.safetensors", weights)
    model = load_model(spec, weights)
    onnx_path, uint16_path = _export_graphs(name, model, root)
    config = json.loads((run_dir / "config.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    entry: dict[str, Any] = {
        "arch": spec.arch,
        "task": spec.task,
        "family": spec.family,
        "scale": spec.scale,
        "kwargs": spec.kwargs,
        "params": count_params(model),
        "gflops_1080p": round(gflops_per_frame(model), 1),
        "weights": weights.name,
        "onnx": onnx_path.name,
        "onnx_uint16": uint16_path.name,
        "sha256": {p.name: sha256(p) for p in (weights, onnx_path, uint16_path)},
        "training": {
            "command": _training_command(config),
            "recipe": recipe,
            "data": "+".join(Path(d).name for d in _as_list(config["data"])),
            "steps": history[-1]["step"],
            "elapsed_s": history[-1]["elapsed_s"],
            "trained_on": trained_on,
        },
    }
    entry["metrics"] = measure(spec, onnx_path, data_root)
    manifest_path = root / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"models": {}}
    manifest["models"][name] = entry
    manifest["models"] = dict(sorted(manifest["models"].items()))
    atomic_write(manifest_path, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    remeasure([name], root, data_root)
    return json.loads(manifest_path.read_text())["models"][name]
