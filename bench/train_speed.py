"""Training speed on this CPU, side by side: precision, memory layout, threads, torch.compile, and the
real-degradation producer against the trainer.

    .venv/bin/python bench/train_speed.py [--model real-compact-x2] [--batch 16] [--patch 96] \
        [--steps 12] [--out bench/results/train_speed.json]

Part 1 times whole optimiser steps (forward, L1, backward, Adam) on a fixed random batch for every
setting: fp32 and bf16 autocast, each in NCHW and channels_last, on 1 and 2 torch threads, plus
torch.compile of the fp32 step. Settings take turns step by step, so a slow spell of the machine hits
them all; each reports its median. bf16 is measured even where the CPU only emulates it, to show why
`vsr train --amp` refuses there.

Part 2 runs the training as `vsr train` does on real degradations, the DegradedPool producer making
pairs beside the trainer: the trainer on 1 or 2 torch threads, the producer unbounded or capped by
`--fresh` (new pairs per pair drawn). It records patches/s, the share of time the trainer waited for
data, and pairs made per step (how often each pair is reused).

The ratios within one run are the figures to read; the JSON records the CPU model and its flags.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.models.registry import get_spec  # noqa: E402
from vsr.train.losses import pixel_loss  # noqa: E402
from vsr.train.silicon import describe  # noqa: E402

DATA = ROOT.parent / "shared/data/sr-train/DIV2K-crops"


def make_step(
    model_name: str, batch: int, lr_side: int, *, bf16: bool, channels_last: bool, compile_: bool
) -> Callable[[], None]:
    """A closure running one optimiser step of a fresh model on a fixed batch."""
    spec = get_spec(model_name)
    torch.manual_seed(0)
    model = spec.build()
    lr = torch.rand(batch, 3, lr_side, lr_side)
    hr = torch.rand(batch, 3, lr_side * spec.scale, lr_side * spec.scale)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        lr = lr.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile_ else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = forward(lr)
        loss = pixel_loss("l1", pred.float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def step_settings(args: argparse.Namespace) -> dict[str, dict]:
    """Median step time and patches/s of every setting, on 1 and on 2 threads."""
    lr_side = args.patch // get_spec(args.model).scale
    results: dict[str, dict] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        settings = {
            f"{p}{' channels_last' if cl else ''} ×{threads}": dict(bf16=p == "bf16", channels_last=cl)
            for p in ("fp32", "bf16")
            for cl in (False, True)
        }
        if args.compile:
            settings[f"fp32 compiled ×{threads}"] = dict(bf16=False, channels_last=False, compile_=True)
        steps = {}
        for label, kw in settings.items():
            try:
                steps[label] = make_step(args.model, args.batch, lr_side, **{"compile_": False, **kw})
                for _ in range(3):  # warm-up: oneDNN primitives, compilation
                    steps[label]()
            except Exception as exc:  # torch.compile needs a working C++ toolchain
                results[label] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
                steps.pop(label, None)
        times: dict[str, list[float]] = {label: [] for label in steps}
        for _ in range(args.steps):
            for label, step in steps.items():
                t0 = time.perf_counter()
                step()
                times[label].append(time.perf_counter() - t0)
        for label, ts in times.items():
            median = statistics.median(ts)
            results[label] = {
                "ms_per_step": round(1000 * median, 1),
                "patches_per_s": round(args.batch / median, 1),
            }
    base = {t: results[f"fp32 ×{t}"]["ms_per_step"] for t in (1, 2)}
    for label, row in results.items():
        if "ms_per_step" in row:
            row["speedup_vs_fp32"] = round(base[int(label[-1])] / row["ms_per_step"], 2)
    return results


def with_producer(args: argparse.Namespace, threads: int, fresh: float | None) -> dict[str, float]:
    """`vsr train`'s real-degradation loop for a fixed time, the producer thread beside the trainer."""
    from vsr.train.augment import AugmentConfig
    from vsr.train.data import PatchSampler, load_images
    from vsr.train.real import RealDegradation

    spec = get_spec(args.model)
    torch.set_num_threads(threads)
    t_pool = time.perf_counter()
    sampler = PatchSampler(
        load_images(DATA), scale=spec.scale, patch=args.patch, batch=args.batch, augment_cfg=AugmentConfig(),
        device=torch.device("cpu"), seed=0, real=RealDegradation(), pool=args.pool, fresh=fresh,
    )  # fmt: skip
    assert sampler.pool is not None
    pool_s = time.perf_counter() - t_pool
    model = spec.build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    made0, steps, data_s = sampler.pool.made, 0, 0.0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        waited = time.perf_counter()
        lr, hr = sampler.sample()
        data_s += time.perf_counter() - waited
        loss = pixel_loss("l1", model(lr), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    wall = time.perf_counter() - t0
    made = sampler.pool.made - made0
    sampler.close()
    return {
        "seconds": round(wall, 1),
        "patches_per_s": round(steps * args.batch / wall, 1),
        "data_share": round(data_s / wall, 3),
        "pairs_per_s": round(made / wall, 1),
        "pairs_per_step": round(made / steps, 2),
        "pool_fill_pairs_per_s": round(args.pool / pool_s, 1),
    }


def producer_settings(args: argparse.Namespace) -> dict[str, dict] | str:
    """The trainer's threads and the producer's cap (`--fresh`) side by side."""
    if not DATA.is_dir():
        return f"skipped: {DATA} is absent"
    results = {}
    for threads, fresh in ((1, None), (2, None), (2, 1.0), (2, 0.5)):
        label = f"×{threads} fresh {fresh if fresh is not None else 'unbounded'}"
        results[label] = with_producer(args, threads, fresh)
        print(f"  {label:28} {results[label]}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="real-compact-x2")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=96, help="HR patch side")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per setting")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--pool", type=int, default=256, help="part 2: pairs in the pool")
    parser.add_argument("--seconds", type=float, default=60, help="part 2: how long each setting trains")
    parser.add_argument("--only-producer", action="store_true", help="part 2 alone")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/train_speed.json")
    args = parser.parse_args()
    record = {
        "machine": {**describe(), "cores": len(os.sched_getaffinity(0)), "load_before": os.getloadavg()},
        "input": {"model": args.model, "batch": args.batch, "patch": args.patch, "steps": args.steps},
        "steps": {} if args.only_producer else step_settings(args),
    }
    for label, row in record["steps"].items():
        print(f"  {label:28} {row}")
    record["with_producer"] = producer_settings(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
