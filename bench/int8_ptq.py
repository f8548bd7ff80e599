"""Does int8 hold quality? NNCF post-training quantisation of a shipped graph, scored on Set5/Set14.

    .venv/bin/pip install nncf     # not a dependency of vsr: this experiment decides whether int8 ships
    .venv/bin/python bench/int8_ptq.py [--model compact-x2] [--data ../shared/data] \
        [--out bench/results/int8_ptq.json]

Calibrates on 64 random 96×96 crops of BSD400 (training images, never the evaluation sets), quantises the
uint8 ONNX graph to QDQ int8 twice (NNCF's default preset; and with the first and last convolutions kept in
float), then scores Y-PSNR on the published ×2 protocol through OpenVINO (fp32, bf16, int8) and times one
640×360 frame of each. int8 would ship only for a drop ≤ 0.1 dB on Set5 (#13).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.evaluate import evaluate_sr, load_eval_images, mean_scores  # noqa: E402
from vsr.media.images import image_files, read_image  # noqa: E402
from vsr.models.artefacts import shipped_model  # noqa: E402


def calibration_crops(folder: Path, count: int = 64, size: int = 96) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    crops = []
    for path in rng.choice(image_files(folder), count, replace=False):
        img = read_image(path)
        img = np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        crops.append(np.ascontiguousarray(img[None, y : y + size, x : x + size]))
    return crops


def quantise(onnx_path: Path, crops: list[np.ndarray], out: Path, keep_ends: bool) -> Path:
    import nncf
    import onnx

    model = onnx.load(onnx_path)
    name = model.graph.input[0].name
    ignored = nncf.IgnoredScope(patterns=[r".*body\.0/.*", r".*body\.22/.*"]) if keep_ends else None
    quantised = nncf.quantize(
        model, nncf.Dataset(crops, lambda a: {name: a}), subset_size=len(crops), ignored_scope=ignored
    )
    onnx.save(quantised, out)
    return out


def score_and_time(graph: Path, hint: str, data: Path, scale: int) -> dict[str, float]:
    import openvino as ov

    core = ov.Core()
    source = core.read_model(graph)
    result: dict[str, float] = {}
    for name in ("Set5", "Set14"):

        def predict(lr: np.ndarray) -> np.ndarray:
            model = source.clone()
            model.reshape([1, *lr.shape])
            compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
            return compiled({0: lr[None]})[0][0]

        scores = evaluate_sr(load_eval_images(data / "sr-eval" / name), scale, predict)
        result[name] = round(mean_scores(scores)["psnr"], 4)
    model = source.clone()
    model.reshape([1, 360, 640, 3])
    request = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint}).create_infer_request()
    frame = np.random.default_rng(0).integers(0, 256, (1, 360, 640, 3), np.uint8)
    request.infer({0: frame})
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        request.infer({0: frame})
        times.append(time.perf_counter() - t0)
    result["ms_640x360"] = round(1000 * min(times), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="compact-x2")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/int8_ptq.json")
    args = parser.parse_args()
    model = shipped_model(args.model)
    crops = calibration_crops(args.data / "sr-train" / "BSD400")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {
            "fp32": (model.onnx, "f32"),
            "bf16": (model.onnx, "bf16"),
            "int8 (NNCF default)": (quantise(model.onnx, crops, Path(tmp) / "a.onnx", False), "bf16"),
            "int8 (ends in float)": (quantise(model.onnx, crops, Path(tmp) / "b.onnx", True), "bf16"),
        }
        for label, (graph, hint) in graphs.items():
            rows[label] = score_and_time(graph, hint, args.data, model.spec.scale)
            print(f"{label:22} {rows[label]}")
    fp32 = rows["fp32"]["Set5"]
    drops = {label: round(fp32 - row["Set5"], 4) for label, row in rows.items()}
    record = {"model": args.model, "rows": rows, "set5_drop_db": drops}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
