"""Compact variants sized for the CPU (#24 item 3): quality after an equal CPU-time budget, and speed.

    .venv/bin/python bench/arch_sweep.py [--data ../shared/data] [--budget 240] [--pool 4096] \
        [--variants 32x8,32x16,48x10,48x16,64x8,64x12] [--out bench/results/arch_sweep.json]

Every variant (FEATURESxCONVS of vsr.models.compact.Compact, ×2) trains from scratch on one and the same
pool of RealDegradation pairs (DIV2K crops + BSD400, made once before any variant starts, so no producer
competes with the trainer) for the same budget of process CPU seconds on one torch thread: bf16 autocast
and channels_last where the CPU computes bf16 natively, fp32 otherwise (as `vsr train` would). CPU
seconds rather than wall seconds, so another job on the machine slows a variant without shortening its
training. Adam 1e-3, cosine to 1e-5 over the budget, L1, batch 16 of 96² HR patches.

Then each variant is scored on Set5 ×2 (Y-PSNR, torch fp32): clean, and with the LR coded by x264 at
CRF 28; and timed on OpenVINO (bf16 where the CPU has it, else fp32; one thread, one 640×360 frame, best of
the rounds, the rounds interleaving the variants so a busy spell of the machine hits them all). The ratios
against the shipped size (48x10) are the figures to compare; the JSON records the CPU and its flags.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.backends.options import OpenVinoOptions  # noqa: E402
from vsr.backends.select import open_backend  # noqa: E402
from vsr.degradations import Damage  # noqa: E402
from vsr.evaluate import evaluate_sr, load_eval_images, mean_scores  # noqa: E402
from vsr.models.artefacts import ShippedModel  # noqa: E402
from vsr.models.export import export_onnx  # noqa: E402
from vsr.models.registry import get_spec  # noqa: E402
from vsr.train import silicon  # noqa: E402
from vsr.train.data import DegradedPool, load_images  # noqa: E402
from vsr.train.losses import pixel_loss  # noqa: E402
from vsr.train.real import RealDegradation  # noqa: E402

SCALE, PATCH, BATCH = 2, 96, 16
FRAME = (360, 640)
SHIPPED = "48x10"  # compact-x2's size, the reference of the ratios


def variant_spec(label: str):
    features, convs = (int(v) for v in label.split("x"))
    return replace(get_spec("real-compact-x2"), name=f"sweep-{label}",
                   kwargs={"features": features, "num_conv": convs})  # fmt: skip


def train(label: str, pool: DegradedPool, budget_s: float, bf16: bool, seed: int) -> dict:
    """Train one variant from scratch for `budget_s` CPU seconds; its model and what it got through."""
    torch.manual_seed(seed)
    model = (
        variant_spec(label).build().to(memory_format=torch.channels_last if bf16 else torch.contiguous_format)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.99))
    rng = np.random.default_rng(seed)
    cpu0, steps = time.process_time(), 0
    while (spent := time.process_time() - cpu0) < budget_s:
        for group in opt.param_groups:  # cosine over the budget spent so far
            group["lr"] = 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * spent / budget_s))
        lr, hr, _lr2, _twin = pool.draw(BATCH, rng)
        x = torch.from_numpy(lr).permute(0, 3, 1, 2).float() / 255
        y = torch.from_numpy(hr).permute(0, 3, 1, 2).float() / 255
        if bf16:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = model(x)
        loss = pixel_loss("l1", pred.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    return {"model": model.eval().float().to(memory_format=torch.contiguous_format), "steps": steps,
            "cpu_s": round(time.process_time() - cpu0, 1)}  # fmt: skip


def score(model: torch.nn.Module, images: list, level: str) -> float:
    """Set5 ×2 Y-PSNR of the model (torch fp32) on LR damaged to `level`."""

    def predict(lr: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            y = model(x)[0].clamp(0, 1) * 255
        return y.round().byte().permute(1, 2, 0).numpy()

    damage = Damage.parse(level)
    return round(mean_scores(evaluate_sr(images, SCALE, predict, damage.apply))["psnr"], 4)


def timings(models: dict[str, torch.nn.Module], precision: str, rounds: int) -> dict[str, float]:
    """ms per 640×360 frame on OpenVINO, one thread: each variant's best round."""
    frame = np.random.default_rng(0).integers(0, 256, (1, *FRAME, 3), dtype=np.uint8)
    options = OpenVinoOptions(precision=precision, threads=1, workers=1, cache=False)
    with tempfile.TemporaryDirectory() as tmp:
        backends = {}
        for label, model in models.items():
            onnx, weights = Path(tmp) / f"{label}.onnx", Path(tmp) / f"{label}.safetensors"
            export_onnx(model, onnx, scale=SCALE)
            save_file(model.state_dict(), str(weights))
            shipped = ShippedModel(variant_spec(label), onnx, weights, onnx, {"scale": SCALE})
            backends[label] = open_backend(options, shipped)
            backends[label].run(frame)  # compile, warm the caches
        best = dict.fromkeys(backends, float("inf"))
        for _ in range(rounds):
            for label, backend in backends.items():
                t0 = time.perf_counter()
                backend.run(frame)
                best[label] = min(best[label], time.perf_counter() - t0)
        for backend in backends.values():
            backend.close()
    return {label: round(1000 * s, 1) for label, s in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--budget", type=float, default=240, help="CPU seconds of training per variant")
    parser.add_argument("--pool", type=int, default=4096, help="degraded pairs made once, shared")
    parser.add_argument("--variants", default="32x8,32x16,48x10,48x16,64x8,64x12")
    parser.add_argument("--rounds", type=int, default=10, help="timing rounds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/arch_sweep.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bf16 = silicon.cpu_bf16() is not None
    precision = "bf16" if bf16 else "fp32"
    train_dirs = [args.data / "sr-train" / d for d in ("DIV2K-crops", "BSD400")]
    images = [img for d in train_dirs for img in load_images(d)]
    t0 = time.perf_counter()
    pool = DegradedPool(images, scale=SCALE, patch=PATCH, size=args.pool, degradation=RealDegradation(),
                        seed=args.seed, fresh=0.0)  # fmt: skip  # fresh 0: made once, never renewed
    pool_s = time.perf_counter() - t0
    set5 = load_eval_images(args.data / "sr-eval" / "Set5")
    labels = args.variants.split(",")
    rows, models = {}, {}
    for label in labels:
        run = train(label, pool, args.budget, bf16, args.seed)
        models[label] = model = run.pop("model")
        rows[label] = {
            **run,
            "params": sum(p.numel() for p in model.parameters()),
            "set5_clean": score(model, set5, "clean"),
            "set5_h264_crf28": score(model, set5, "h264:crf=28"),
        }
        print(label, rows[label], flush=True)
    pool.close()
    ms = timings(models, precision, args.rounds)
    ref = ms.get(SHIPPED)
    for label in labels:
        rows[label][f"openvino_{precision}_ms"] = ms[label]
        if ref:
            rows[label]["cost_vs_48x10"] = round(ms[label] / ref, 2)
    result = {
        "machine": silicon.describe() | {"cores_used": 1},
        "input": {
            "budget_cpu_s": args.budget,
            "pool_pairs": args.pool,
            "pool_s": round(pool_s, 1),
            "batch": BATCH,
            "patch": PATCH,
            "train_precision": precision,
            "frame": list(FRAME),
        },
        "variants": rows,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for label, row in rows.items():
        print(f"  {label:6} {row}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
