"""Which x264 preset keeps up with the model stage: encode fps, size and quality per preset on real output.

    .venv/bin/python bench/encode_presets.py [--frames 48] [--crf 18] [--rounds 2] \
        [--out bench/results/encode_presets.json]

The sample's first frames are upscaled 640×360 → 1280×720 by espcn-x2 (OpenVINO, as `vsr upscale` runs
it), held in memory and encoded with libx264 at one CRF under each preset, yuv420p as the default profile
writes it (colour conversion included, commit included; best of --rounds). Size is bits per pixel; quality
is Y-PSNR of the decoded file against the frames handed to the encoder. With the model stage's own fps
(measured here too, for espcn-x2 and compact-x2) each preset gets the shared-core bound
1 / (1/decode + 1/model + 1/encode) it allows, and the share of that time the model takes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.backends.select import choose, open_backend  # noqa: E402
from vsr.media import EncodeOptions, Frame, VideoReader, VideoWriter  # noqa: E402
from vsr.metrics import luma, psnr  # noqa: E402
from vsr.models.artefacts import shipped_model  # noqa: E402

SAMPLE = ROOT / "samples" / "sample.mp4"
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")
MODELS = ("espcn-x2", "compact-x2")


def model_fps(name: str, frames: list[np.ndarray], rounds: int) -> tuple[float, list[np.ndarray]]:
    with open_backend(choose("auto").options, shipped_model(name)) as backend:
        backend.run(np.stack(frames[:2]))
        best, out = 0.0, []
        for _ in range(rounds):
            t0 = time.perf_counter()
            out = [f for i in range(0, len(frames), 2) for f in backend.run(np.stack(frames[i : i + 2]))]
            best = max(best, len(frames) / (time.perf_counter() - t0))
    return best, out


def encode(frames: list[np.ndarray], preset: str, crf: int, path: Path) -> float:
    with VideoReader(SAMPLE) as reader:
        step = round(1 / (reader.format.frame_rate * reader.format.time_base))
        h, w = frames[0].shape[:2]
        options = EncodeOptions(crf=crf, preset=preset)
        with VideoWriter(path, source=reader.format, width=w, height=h, options=options) as out:
            t0 = time.perf_counter()
            for i, rgb in enumerate(frames):
                out.write_frame(rgb, i * step)
            out.commit()
            return len(frames) / (time.perf_counter() - t0)


def quality(path: Path, frames: list[np.ndarray]) -> float:
    with av.open(str(path)) as f:
        decoded = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    return float(np.mean([psnr(luma(a), luma(b)) for a, b in zip(decoded, frames, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--crf", type=int, default=EncodeOptions().crf)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/encode_presets.json")
    args = parser.parse_args()
    with VideoReader(SAMPLE) as reader:
        t0 = time.perf_counter()
        source = [item.pixels for item in reader if isinstance(item, Frame)][: args.frames]
        decode = len(source) / (time.perf_counter() - t0)  # the whole file decoded, RGB conversion included
    measured = {name: model_fps(name, source, args.rounds) for name in MODELS}
    models = {name: fps for name, (fps, _frames) in measured.items()}
    upscaled = measured["espcn-x2"][1]  # what the encoder is fed
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in PRESETS:
            path = Path(tmp) / f"{preset}.mkv"
            fps = max(encode(upscaled, preset, args.crf, path) for _ in range(args.rounds))
            pixels = len(upscaled) * upscaled[0].shape[0] * upscaled[0].shape[1]
            bounds = {m: 1 / (1 / decode + 1 / f + 1 / fps) for m, f in models.items()}
            rows[preset] = {
                "encode_fps": round(fps, 2),
                "bits_per_pixel": round(8 * path.stat().st_size / pixels, 4),
                "y_psnr": round(quality(path, upscaled), 2),
                "shared_core_bound_fps": {m: round(b, 2) for m, b in bounds.items()},
                "model_share": {
                    m: round((1 / models[m]) / (1 / decode + 1 / models[m] + 1 / fps), 2) for m in models
                },
            }
            print(preset, rows[preset], flush=True)
    record = {
        "input": "samples/sample.mp4 640x360 → 1280x720 (espcn-x2)",
        "crf": args.crf,
        "decode_fps": round(decode, 1),
        "model_fps": {m: round(f, 2) for m, f in models.items()},
        "presets": rows,
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
