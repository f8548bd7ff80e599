"""A soft tape-like source made from Vid4, through bicubic and upscalers side by side, as one PNG.

    .venv/bin/python samples/soft_source.py [--clip ../shared/data/video-eval/Vid4/calendar.mkv] \
        [--frame 20] [--scale 4] [--models compact-x4,realesr-general-x4v3] [--crop 200,120,240,180] \
        [--out out/soft_source_x4.png]

The source is `vsr eval --degrade tape` (vsr.degradations): each HR frame blurred by σ 1.5, downscaled by
MATLAB bicubic, given its own Gaussian noise of σ 5, and the clip coded as one MPEG-2 stream at qscale 6
(DVD quantisers). Each panel is the same crop of one frame of the upscaled clip: bicubic, then each model,
then the ground truth. Models are shipped or imported names (`vsr import`), run with OpenVINO fp32.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vsr  # noqa: E402
from vsr.degradations import Damage  # noqa: E402
from vsr.imresize import imresize  # noqa: E402
from vsr.media.images import read_clip  # noqa: E402
from vsr.metrics import luma, modcrop, psnr  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=ROOT.parent / "shared/data/video-eval/Vid4/calendar.mkv")
    parser.add_argument("--frame", type=int, default=20)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--models", default="compact-x4")
    parser.add_argument("--crop", default="200,120,240,180", help="x,y,w,h in output pixels")
    parser.add_argument("--out", type=Path, default=ROOT / "out/soft_source_x4.png")
    args = parser.parse_args()
    tape = Damage.parse("tape")
    hrs = [modcrop(f, args.scale) for f in read_clip(args.clip)]
    lrs = tape.sequence([imresize(tape.soften(hr), 1 / args.scale) for hr in hrs])
    lr, hr = lrs[args.frame], hrs[args.frame]
    panels = [("bicubic", imresize(lr, args.scale))]
    for name in (m for m in args.models.split(",") if m):
        with vsr.load_model(name, backend="openvino", precision="fp32") as model:
            panels.append((name, model(lr)))
    panels.append(("ground truth", hr))
    x, y, w, h = (int(v) for v in args.crop.split(","))
    caption = 28
    sheet = Image.new("RGB", (len(panels) * (w + 6), h + caption), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (name, picture) in enumerate(panels):
        sheet.paste(
            Image.fromarray(np.ascontiguousarray(picture[y : y + h, x : x + w])), (k * (w + 6), caption)
        )
        score = "" if name == "ground truth" else f"  {psnr(luma(picture), luma(hr)):.2f} dB"
        draw.text((k * (w + 6) + 2, 8), f"{name}{score}", fill="black")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    names = ", ".join(n for n, _ in panels)
    print(f"wrote {args.out}: {args.clip.stem} frame {args.frame}, ×{args.scale}, {names}")


if __name__ == "__main__":
    main()
