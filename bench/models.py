"""Per-model cost on this machine: ONNX Runtime CPU inference and torch CPU training throughput.

    .venv/bin/python bench/models.py [--rounds 3] [--train-steps 20] [--out bench/results/models.json]

For every shipped model: ms per 640×360 input frame (batch 1, all cores, best of --rounds after a warm-up),
the GFLOP/s that implies (GFLOPs from the manifest, scaled from 1080p by the pixel count), and training
patches/s with the batch and patch size of the shipped recipe (torch, all cores). Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.backends.ort_backend import OrtBackend  # noqa: E402
from vsr.models.artefacts import shipped_models  # noqa: E402

FRAME = (360, 640)
FULL_HD_PIXELS = 1920 * 1080


def inference_ms(onnx: Path, rounds: int) -> float:
    """Best wall time of one 640×360 frame through ONNX Runtime, after one warm-up run."""
    frame = np.random.default_rng(0).integers(0, 256, (1, *FRAME, 3), dtype=np.uint8)
    with OrtBackend(onnx, scale=1) as backend:  # the scale only labels it; the graph sets the output
        backend.run(frame)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            backend.run(frame)
            times.append(time.perf_counter() - t0)
    return 1000 * min(times)


def training_patches_per_s(name: str, entry: dict, steps: int) -> float | None:
    """Patches/s of the shipped recipe's batch and patch size on the CPU (synthetic images, no disk)."""
    try:
        import torch

        from vsr.models.registry import get_spec
        from vsr.train.augment import AugmentConfig
        from vsr.train.data import NoiseConfig, PatchSampler
        from vsr.train.losses import pixel_loss
    except ImportError:
        return None
    command = entry["training"]["command"].split()
    batch = int(command[command.index("--batch") + 1])
    patch = int(command[command.index("--patch") + 1])
    spec = get_spec(name)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (321, 481, 3), dtype=np.uint8) for _ in range(8)]
    noise = NoiseConfig(compressed_prob=0) if spec.task == "denoise" else None
    sampler = PatchSampler(images, scale=spec.scale, patch=patch, batch=batch, augment_cfg=AugmentConfig(),
                           device=torch.device("cpu"), seed=0, noise=noise)  # fmt: skip
    model = spec.build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        lr, hr = sampler.sample()
        loss = pixel_loss("l1", model(lr), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    """Measure every shipped model and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "models.json")
    args = parser.parse_args()
    rows = {}
    for name, model in shipped_models().items():
        ms = inference_ms(model.onnx, args.rounds)
        gflops = model.entry["gflops_1080p"] * FRAME[0] * FRAME[1] / FULL_HD_PIXELS
        rows[name] = {
            "params": model.entry["params"],
            "gflops_per_640x360_frame": round(gflops, 2),
            "ort_ms_per_frame": round(ms, 1),
            "ort_fps": round(1000 / ms, 2),
            "ort_gflop_per_s": round(gflops / (ms / 1000), 1),
            "train_patches_per_s": _round(training_patches_per_s(name, model.entry, args.train_steps)),
        }
        print(f"{name:12s} {ms:8.1f} ms/frame  {rows[name]['ort_gflop_per_s']:6.1f} GFLOP/s  "
              f"train {rows[name]['train_patches_per_s']} patches/s", flush=True)  # fmt: skip
    result = {
        "command": " ".join([".venv/bin/python", "bench/models.py", *sys.argv[1:]]),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "onnxruntime": ort.__version__,
        },
        "frame": {"width": FRAME[1], "height": FRAME[0]},
        "statistic": f"inference: best of {args.rounds} after a warm-up; training: {args.train_steps} steps",
        "models": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


if __name__ == "__main__":
    main()
