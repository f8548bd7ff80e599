"""The README's quality tables: PSNR, SSIM, VMAF, VMAF NEG and ERQA of bicubic and every model side by side.

    .venv/bin/python bench/quality_table.py [--data ../shared/data] [--sets Set5,Vid4] \
        [--levels h264:crf=0,h264:crf=28] [--peers realesr-general-x4v3] [--threads 1] \
        [--out bench/results/quality_table.json]

Each row is `vsr eval --models ... --metrics psnr,ssim,vmaf,vmaf_neg,erqa` on the protocol: the MATLAB
bicubic downscale, x264 at the level given (CRF 0 is lossless but for 4:2:0 chroma; a Vid4 clip is coded
as one inter-predicted stream), scored against the clean HR (Y-PSNR/SSIM shaved by the scale; VMAF and
ERQA on RGB, the same region). ×2 rows hold every shipped ×2 upscaler (or those of --models); ×4 rows
compact-x4 and the peers imported with `vsr import` (community models, measured, never shipped).
OpenVINO fp32 (the same outputs as ONNX Runtime fp32, faster on these CPUs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vsr.api  # noqa: E402
from vsr.models.artefacts import imported_models, shipped_models  # noqa: E402
from vsr.train.silicon import describe  # noqa: E402

SETS = {"Set5": "sr-eval/Set5", "Vid4": "video-eval/Vid4"}
COLUMNS = {"psnr": ("PSNR", 2), "ssim": ("SSIM", 4), "vmaf": ("VMAF", 2), "vmaf_neg": ("VMAF NEG", 2),
           "erqa": ("ERQA", 4)}  # fmt: skip


def markdown(records: list[dict]) -> str:
    """The README's tables: one per set and scale, a row per model and level (bicubic, measured in every
    run on the same LR, appears once)."""
    out, merged = [], {}
    for t in (t for r in records for t in r["tables"]):  # runs of other models on the same protocol join
        key = (t["set"], t["scale"], t["level"])
        merged.setdefault(key, {**t, "means": {}})["means"].update(t["means"])
    tables = list(merged.values())
    for key in dict.fromkeys((t["set"], t["scale"]) for t in tables):
        rows = [t for t in tables if (t["set"], t["scale"]) == key]
        out.append(f"| {key[0]} ×{key[1]} | level | " + " | ".join(c for c, _ in COLUMNS.values()) + " |")
        out.append("|---|---|" + "---|" * len(COLUMNS))
        for t in rows:
            level = t["level"].replace("h264:crf=", "x264 CRF ")
            for model, m in t["means"].items():
                cells = " | ".join(f"{m[k]:.{d}f}" for k, (_, d) in COLUMNS.items())
                out.append(f"| {model} | {level} | {cells} |")
        out.append("")
    return "\n".join(out)


METRICS = ("vmaf", "vmaf_neg", "erqa")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data")
    parser.add_argument("--sets", default="Set5,Vid4")
    parser.add_argument("--levels", default="h264:crf=0,h264:crf=28")
    parser.add_argument("--scales", default="2,4")
    parser.add_argument("--peers", default="realesr-general-x4v3", help="imported models to add, if imported")
    parser.add_argument("--models", default="", help="only these shipped models (default: all of the scale)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/quality_table.json")
    parser.add_argument("--render", type=Path, nargs="+", help="print these results as markdown and stop")
    args = parser.parse_args()
    if args.render:
        print(markdown([json.loads(p.read_text()) for p in args.render]))
        return
    imported = imported_models()
    peers = [p for p in args.peers.split(",") if p in imported]
    record: dict = {"machine": describe(), "runtime": "openvino fp32", "tables": []}
    for scale in (int(s) for s in args.scales.split(",")):
        only = set(args.models.split(",")) - {""}
        models = [
            n for n, m in shipped_models().items()
            if m.spec.task == "sr" and m.spec.scale == scale and (not only or n in only)
        ]  # fmt: skip
        models += [p for p in peers if imported[p].spec.scale == scale]
        for name in args.sets.split(","):
            for level in args.levels.split(","):
                t0 = time.perf_counter()
                result = vsr.api.compare(
                    args.data / SETS[name], scale=scale, degrade=level, models=models,
                    metrics=METRICS, backend="openvino", precision="fp32", threads=args.threads,
                )  # fmt: skip
                row = {"set": name, "scale": scale, "level": level, "protocol": result.protocol,
                       "seconds": round(time.perf_counter() - t0, 1), "means": result.means}  # fmt: skip
                record["tables"].append(row)
                print(f"{name} ×{scale} {level} ({row['seconds']} s)")
                for model, m in result.means.items():
                    print(f"  {model:22} " + "  ".join(f"{k} {v:.4f}" for k, v in m.items()))
                args.out.write_text(
                    json.dumps(record, indent=1) + "\n"
                )  # after every table: a partial run counts
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
