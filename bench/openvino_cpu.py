"""CPU runtimes side by side: ONNX Runtime fp32 against OpenVINO fp32/bf16, one worker or one per core.

    .venv/bin/python bench/openvino_cpu.py [--models espcn-x2,compact-x2,dncnn-color] [--rounds 5] \
        [--batch 4] [--out bench/results/openvino_cpu.json]

Each configuration runs the shipped graph through the backend contract (`Backend.run`, what the pipeline
calls) on a batch of 640×360 uint8 frames; rounds interleave the configurations so a slow spell of the
machine hits them all, and each keeps its best round. Also the largest and mean difference, in 8-bit
levels, from ONNX Runtime's output. The ratios (against ONNX Runtime fp32, same round structure) are the
figures to read; the machine's other load is recorded with them.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.backends.options import BackendOptions, OpenVinoOptions, OrtOptions  # noqa: E402
from vsr.backends.select import open_backend  # noqa: E402
from vsr.models.artefacts import shipped_model  # noqa: E402

FRAME = (360, 640)


def configurations(cores: int) -> dict[str, BackendOptions]:
    """ONNX Runtime as the reference, then OpenVINO per precision with one worker and with one per core."""
    configs: dict[str, BackendOptions] = {"onnxruntime fp32": OrtOptions(threads=cores)}
    for precision in ("fp32", "bf16"):
        for workers in sorted({1, cores}):
            options = OpenVinoOptions(precision=precision, threads=cores, workers=workers, cache=False)
            configs[f"openvino {precision} ×{workers}"] = options  # type: ignore[arg-type]
    return configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="espcn-x2,compact-x2,dncnn-color")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/openvino_cpu.json")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    frames = np.random.default_rng(0).integers(0, 256, (args.batch, *FRAME, 3), dtype=np.uint8)
    results = {}
    for name in args.models.split(","):
        model = shipped_model(name)
        backends = {label: open_backend(o, model) for label, o in configurations(cores).items()}
        reference = backends["onnxruntime fp32"].run(frames).astype(np.int16)
        best = dict.fromkeys(backends, float("inf"))
        diffs = {}
        for label, backend in backends.items():
            diff = np.abs(backend.run(frames).astype(np.int16) - reference)  # also the warm-up
            diffs[label] = {"max": int(diff.max()), "mean": round(float(diff.mean()), 3)}
        for _ in range(args.rounds):
            for label, backend in backends.items():
                t0 = time.perf_counter()
                backend.run(frames)
                best[label] = min(best[label], time.perf_counter() - t0)
        base = best["onnxruntime fp32"]
        rows = {
            label: {
                "ms_per_frame": round(1000 * t / args.batch, 1),
                "speedup": round(base / t, 2),
                "diff_levels": diffs[label],
                "backend": backends[label].name,
            }
            for label, t in best.items()
        }
        for backend in backends.values():
            backend.close()
        results[name] = rows
        print(name)
        for label, row in rows.items():
            d, ms = row["diff_levels"], row["ms_per_frame"]
            print(f"  {label:20} {ms:8.1f} ms/frame  ×{row['speedup']:<5} diff {d['max']}/{d['mean']}")
    record = {
        "machine": {"platform": platform.platform(), "cores": cores, "load_before": os.getloadavg()},
        "input": {"frame": list(FRAME), "batch": args.batch, "rounds": args.rounds},
        "models": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
