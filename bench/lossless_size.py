"""Bytes per pixel of the lossless and intra-only encoders, for the pre-flight space check of
vsr/pipeline/job.py (BYTES_PER_PIXEL): 24 frames of samples/sample.mp4, bicubic-upscaled to 1280x720.

Usage: python bench/lossless_size.py [--out bench/results/lossless_size.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent
ENCODERS = (  # codec, pixel format, container, options: as the profiles and the writer use them
    ("ffv1", "yuv420p", ".mkv", {"level": "3", "slicecrc": "1", "g": "1", "slices": "24"}),
    ("utvideo", "yuv420p", ".avi", {}),
    ("prores_ks", "yuv422p10le", ".mov", {"profile": "3", "vendor": "apl0"}),
)


def main() -> None:
    """Encode the frames with each encoder and print and write bytes per pixel."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "lossless_size.json")
    args = parser.parse_args()
    with av.open(str(ROOT / "samples" / "sample.mp4")) as clip:
        frames = [
            f.reformat(width=1280, height=720, format="rgb24", interpolation="BICUBIC").to_ndarray()
            for _, f in zip(range(24), clip.decode(video=0), strict=False)
        ]
    results = {}
    for codec, pix_fmt, suffix, options in ENCODERS:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"x{suffix}"
            with av.open(str(path), "w") as out:
                stream = out.add_stream(codec, rate=24, options=options)
                stream.width, stream.height, stream.pix_fmt = 1280, 720, pix_fmt
                for i, rgb in enumerate(frames):
                    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
                    frame.pts = i
                    out.mux(stream.encode(frame))
                out.mux(stream.encode(None))
            results[codec] = round(path.stat().st_size / (len(frames) * 1280 * 720), 3)
        print(f"{codec:10} {pix_fmt:12} {results[codec]:.2f} bytes/pixel")
    args.out.write_text(
        json.dumps({"frames": len(frames), "size": "1280x720", "bytes_per_pixel": results}) + "\n"
    )


if __name__ == "__main__":
    main()
