"""What people see, beyond PSNR/SSIM: VMAF (and its NEG variant) through FFmpeg's libvmaf, and ERQA.

- VMAF: the bundled FFmpeg of `imageio-ffmpeg` is built with libvmaf and its built-in models, so nothing
  is fetched. Both sequences go to it as raw RGB and are converted to 4:2:0 there, as a streaming engineer
  scores an encode; a clip is scored as one sequence (VMAF's motion feature reads the frame before).
  vmaf_neg is the "no enhancement gain" model, which does not reward sharpening or contrast boosts.
  On a still (motion 0) vmaf_v0.6.1 cannot exceed 97.43, even for an identical pair.
- ERQA: MSU's edge-restoration measure (the `erqa` package): the F1 score of Canny edges of the output
  against the reference's, with one-pixel shifts forgiven. 1 is every edge restored, no false edge.

Both need the `quality` extra; asking for them without it is one line, not a traceback.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vsr.errors import UsageError

BASIC = ("psnr", "ssim")
EXTRA = ("vmaf", "vmaf_neg", "erqa")
METRICS = (*BASIC, *EXTRA)


def parse_metrics(text: str) -> tuple[str, ...]:
    """The metrics of `--metrics a,b,c` beyond PSNR/SSIM (which every evaluation reports)."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise UsageError(f"--metrics: unknown {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    extra = tuple(n for n in EXTRA if n in names)
    for name in extra:
        _require(name)
    return extra


def _require(name: str) -> None:
    if name.startswith("vmaf"):
        ffmpeg()
    elif name == "erqa":
        _erqa()


@functools.cache
def ffmpeg() -> str:
    """The path of an FFmpeg built with libvmaf (imageio-ffmpeg's)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise UsageError("VMAF needs the quality extra: pip install 'vsr[quality]'") from None
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    version = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, check=False)
    if "--enable-libvmaf" not in version.stdout:
        raise UsageError(f"VMAF: {exe} is built without libvmaf")
    return exe


@functools.cache
def _erqa() -> Callable[[np.ndarray, np.ndarray], float]:
    try:
        import erqa
    except ImportError:
        raise UsageError("ERQA needs the quality extra: pip install 'vsr[quality]'") from None
    return erqa.ERQA()


def _even(frame: np.ndarray) -> np.ndarray:
    """Cropped to even height and width (4:2:0)."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def vmaf(
    outputs: Sequence[np.ndarray], references: Sequence[np.ndarray], *, threads: int = 0
) -> list[dict[str, float]]:
    """Per-frame {"vmaf", "vmaf_neg"} of `outputs` against `references`: same-sized (H, W, 3) uint8 RGB
    sequences, scored as one clip (a single image is a one-frame clip)."""
    if len(outputs) != len(references) or not outputs:
        raise ValueError("vmaf: two non-empty sequences of the same length")
    outs = [_even(np.asarray(o)) for o in outputs]
    refs = [_even(np.asarray(r)) for r in references]
    h, w = refs[0].shape[:2]
    if any(f.shape != (h, w, 3) for f in (*outs, *refs)):
        raise ValueError("vmaf: every frame must be (H, W, 3) of one size")
    with tempfile.TemporaryDirectory(prefix="vsr-vmaf-") as tmp:
        dist, ref, log = Path(tmp, "dist.rgb"), Path(tmp, "ref.rgb"), Path(tmp, "vmaf.json")
        dist.write_bytes(b"".join(np.ascontiguousarray(f).tobytes() for f in outs))
        ref.write_bytes(b"".join(np.ascontiguousarray(f).tobytes() for f in refs))
        raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "25"]
        # Escaped twice: once for the filtergraph, once for the option list of `model`.
        models = r"version=vmaf_v0.6.1\\:name=vmaf|version=vmaf_v0.6.1neg\\:name=vmaf_neg"
        graph = (
            "[0:v]format=yuv420p[d];[1:v]format=yuv420p[r];"
            f"[d][r]libvmaf=model={models}:log_fmt=json:log_path={log}:n_threads={threads}"
        )
        inputs = [*raw, "-i", str(dist), *raw, "-i", str(ref)]
        cmd = [ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", *inputs, "-lavfi", graph, "-f", "null"]
        done = subprocess.run([*cmd, "-"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"libvmaf failed: {done.stderr.strip().splitlines()[-1:]}")
        frames = json.loads(log.read_text())["frames"]
    return [{k: float(f["metrics"][k]) for k in ("vmaf", "vmaf_neg")} for f in frames]


def erqa(output: np.ndarray, reference: np.ndarray) -> float:
    """ERQA 1.0 of one (H, W, 3) uint8 RGB image against its reference."""
    # The package reads OpenCV's BGR order.
    return float(_erqa()(np.ascontiguousarray(output[..., ::-1]), np.ascontiguousarray(reference[..., ::-1])))


def score_frames(
    names: Sequence[str], outputs: Sequence[np.ndarray], references: Sequence[np.ndarray]
) -> list[dict[str, float]]:
    """The `names` (of EXTRA) of every frame of one sequence (an image, or a clip's frames)."""
    rows: list[dict[str, float]] = [{} for _ in outputs]
    if "vmaf" in names or "vmaf_neg" in names:
        for row, scores in zip(rows, vmaf(outputs, references), strict=True):
            row.update({k: v for k, v in scores.items() if k in names})
    if "erqa" in names:
        for row, out, ref in zip(rows, outputs, references, strict=True):
            row["erqa"] = erqa(out, ref)
    return rows
