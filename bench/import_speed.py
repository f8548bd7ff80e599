"""`vsr import` against its targets: an imported Real-ESRGAN-compact-class ×2 model beside our own
compact-x2 of the same size on the same backend, and the import time of a ~20 MB ESRGAN checkpoint.

    .venv/bin/python bench/import_speed.py [--rounds 5] [--batch 2] [--out bench/results/import_speed.json]

The two models (our compact-x2, and the same weights imported as a community SRVGGNetCompact checkpoint)
run through the
backend contract (`Backend.run`, what the pipeline calls) on a batch of 640×360 frames, each configuration
on ONNX Runtime and OpenVINO fp32; rounds interleave the models so a slow spell of the machine hits both,
and each keeps its best round. The ratio imported ÷ shipped is the figure to read. The checkpoints have
random weights (the ESRGAN; import time does not depend on them) or ours, imported into a temporary store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.backends.options import OpenVinoOptions, OrtOptions  # noqa: E402
from vsr.backends.select import open_backend  # noqa: E402
from vsr.models.artefacts import shipped_model  # noqa: E402
from vsr.models.checkpoint import spandrel  # noqa: E402
from vsr.models.importer import import_file  # noqa: E402

FRAME = (360, 640)


def _checkpoint(net: torch.nn.Module, path: Path) -> Path:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.02)
    torch.save(net.state_dict(), path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/import_speed.json")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    archs = spandrel().architectures
    with tempfile.TemporaryDirectory(prefix="vsr-import-") as tmp:
        root = Path(tmp)
        os.environ["VSR_MODELS_DIR"] = str(root / "store")
        # Our compact-x2 is SRVGGNetCompact-shaped (48 features, 10 convolutions, PReLU): its weights, saved
        # under another name, are a Real-ESRGAN-compact-class checkpoint that spandrel detects as such. Same
        # weights, so the speeds compare the graphs alone (CPU convolution speed depends on the values).
        compact = root / "realesr-compact-x2.safetensors"
        shutil.copyfile(shipped_model("compact-x2").weights, compact)
        esrgan = _checkpoint(
            archs.ESRGAN.ESRGAN(in_nc=3, out_nc=3, num_filters=64, num_blocks=7, scale=4),
            root / "esrgan-x4.pth",
        )
        imports = {}
        for path in (compact, esrgan):
            t0 = time.perf_counter()
            result = import_file(path, root=root / "store")
            imports[path.stem] = {
                "checkpoint_mb": round(path.stat().st_size / 2**20, 1),
                "params": result.params,
                "seconds": round(time.perf_counter() - t0, 2),
                "max_diff_levels_vs_torch": result.max_diff,
            }
            print(path.stem, imports[path.stem], flush=True)
        from vsr.models.artefacts import imported_models

        ours, theirs = shipped_model("compact-x2"), imported_models(root / "store")["realesr-compact-x2"]
        frames = np.random.default_rng(0).integers(0, 256, (args.batch, *FRAME, 3), dtype=np.uint8)
        speed = {}
        for label, options in (
            ("onnxruntime fp32", OrtOptions(threads=cores)),
            ("openvino fp32", OpenVinoOptions(precision="fp32", threads=cores, cache=False)),
        ):
            backends = {
                "shipped compact-x2": open_backend(options, ours),
                "imported": open_backend(options, theirs),
            }
            best = dict.fromkeys(backends, float("inf"))
            outputs = [backend.run(frames).astype(np.int16) for backend in backends.values()]  # and warm-up
            same = int(np.abs(outputs[0] - outputs[1]).max())
            for _ in range(args.rounds):
                for key, backend in backends.items():
                    t0 = time.perf_counter()
                    backend.run(frames)
                    best[key] = min(best[key], time.perf_counter() - t0)
            fps = {k: round(args.batch / v, 2) for k, v in best.items()}
            speed[label] = {
                **fps,
                "imported_over_shipped": round(fps["imported"] / fps["shipped compact-x2"], 3),
                "max_diff_levels": same,
            }
            print(label, speed[label], flush=True)
    record = {
        "command": "bench/import_speed.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cores": cores, "load_avg": os.getloadavg()},
        "frame": f"{FRAME[1]}x{FRAME[0]}",
        "batch": args.batch,
        "rounds": args.rounds,
        "imports": imports,
        "frames_per_s": speed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
