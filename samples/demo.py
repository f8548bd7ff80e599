"""`make demo`: upscale the sample clip on the CPU, write a side-by-side frame (bicubic | vsr) and the
comparison page.

Runs the real command line (`vsr upscale`), then compares one frame of the result with a plain bicubic
upscale of the same input frame, then `vsr compare` writes a self-contained page of four frames through
bicubic, `auto`'s chain, compact-x2 and espcn-x2. Outputs go to out/ at the repo root.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "sample.mp4"
OUT = ROOT / "out"
FRAME = 66  # a frame with fine detail (grass, fur)


def nth_frame(path: Path, index: int) -> av.VideoFrame:
    """The index-th decoded frame of a file."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame
    raise SystemExit(f"{path} has fewer than {index + 1} frames")


def write_png(rgb: np.ndarray, path: Path) -> None:
    """Encode one RGB picture as PNG with PyAV (no imaging library needed)."""
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode(None))


def main() -> None:
    """Run the demo and print where the results are."""
    OUT.mkdir(exist_ok=True)
    video = OUT / "sample_x2.mp4"
    cmd = [sys.executable, "-m", "vsr", "upscale", str(SAMPLE), str(video), "--overwrite"]
    print("$ vsr upscale samples/sample.mp4 out/sample_x2.mp4 --overwrite", flush=True)
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit("demo failed: vsr upscale did not complete")

    vsr_rgb = nth_frame(video, FRAME).to_ndarray(format="rgb24")
    h, w = vsr_rgb.shape[:2]
    lr = nth_frame(SAMPLE, FRAME)
    bicubic = lr.reformat(width=w, height=h, format="rgb24", interpolation="BICUBIC").to_ndarray()
    divider = np.full((h, 4, 3), 255, np.uint8)
    png = OUT / "sample_x2_frame66_bicubic_vs_vsr.png"
    write_png(np.concatenate([bicubic, divider, vsr_rgb], axis=1), png)
    page = OUT / "sample_compare.html"
    cmd = [sys.executable, "-m", "vsr", "compare", str(SAMPLE), "--models", "auto,compact-x2,espcn-x2",
           "--frames", "4", "--out", str(page)]  # fmt: skip
    print("$ vsr compare samples/sample.mp4 --models auto,compact-x2,espcn-x2 --frames 4", flush=True)
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit("demo failed: vsr compare did not complete")
    print(f"video:        {video}")
    print(f"side by side: {png}  (left: bicubic, right: vsr)")
    print(f"compare page: {page}  (open it in a browser; it needs no network)")


if __name__ == "__main__":
    main()
