"""What people see, beyond PSNR/SSIM: VMAF (and its NEG variant) through FFmpeg's libvmaf, and ERQA.

- VMAF: the bundled FFmpeg of `imageio-ffmpeg` is built with libvmaf and its built-in models, so nothing
  is fetched. Both sequences go to it as raw RGB and are converted to 4:2:0 there, as a streaming engineer
  scores an encode; a clip is scored as one sequence (VMAF's motion feature reads the frame before).
  vmaf_neg is the "no enhancement gain" model, which does not reward sharpening or contrast boosts.
  On a still (motion 0) vmaf_v0.6.1 cannot exceed 97.43, even for an identical pair.
- ERQA: MSU's edge-restoration measure (the `erqa` package): the F1 score of Canny edges of the output
  against the reference's, with one-pixel shifts forgiven. 1 is every edge restored, no false edge.
- NIQE: the no-reference measure, for footage that has no reference (lower is more natural). It is
  opinion-unaware: a distance from a Gaussian model of natural-scene statistics, whose 1,332 parameters
  are the official release's and ship as data (vsr/data/README.md); learned no-reference measures
  (BRISQUE's SVR, MUSIQ, CLIP-IQA) need weights from the web. numpy, as MATLAB's niqe computes it.

VMAF and ERQA need the `quality` extra; asking for them without it is one line, not a traceback.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vsr.errors import UsageError

BASIC = ("psnr", "ssim")
EXTRA = ("vmaf", "vmaf_neg", "erqa", "niqe")
NIQE_BLOCK = 96  # the release's block: images under 96×96 have no NIQE
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
    # niqe needs nothing beyond numpy


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


# Both models in one pass; escaped twice: once for the filtergraph, once for the option list of `model`.
_MODELS = r"version=vmaf_v0.6.1\\:name=vmaf|version=vmaf_v0.6.1neg\\:name=vmaf_neg"


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
        graph = (
            "[0:v]format=yuv420p[d];[1:v]format=yuv420p[r];"
            f"[d][r]libvmaf=model={_MODELS}:log_fmt=json:log_path={log}:n_threads={threads}"
        )
        inputs = [*raw, "-i", str(dist), *raw, "-i", str(ref)]
        cmd = [ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", *inputs, "-lavfi", graph, "-f", "null"]
        done = subprocess.run([*cmd, "-"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"libvmaf failed: {done.stderr.strip().splitlines()[-1:]}")
        frames = json.loads(log.read_text())["frames"]
    return [{k: float(f["metrics"][k]) for k in ("vmaf", "vmaf_neg")} for f in frames]


def video_quality(output: Path, reference: Path, *, threads: int = 0) -> dict[str, float | int | str]:
    """VMAF, VMAF NEG and Y-PSNR of a whole video against its reference, as a streaming engineer runs
    libvmaf on two files: both decoded by FFmpeg, their clocks started at zero, frames matched by time,
    scored in 4:2:0. The sizes must match (UsageError)."""
    from vsr.media import probe

    sizes = []
    for path in (output, reference):
        video = probe(path).video  # BadInputError where there is none
        sizes.append((video.width, video.height))
    if sizes[0] != sizes[1]:
        (w, h), (rw, rh) = sizes
        raise UsageError(f"--reference is {rw}×{rh}; the output {output.name} is {w}×{h}: not scored")
    with tempfile.TemporaryDirectory(prefix="vsr-vmaf-") as tmp:
        log = Path(tmp, "vmaf.json")
        graph = (
            "[0:v]setpts=PTS-STARTPTS,format=yuv420p[d];[1:v]setpts=PTS-STARTPTS,format=yuv420p[r];"
            f"[d][r]libvmaf=model={_MODELS}:feature=name=psnr:log_fmt=json:log_path={log}"
            f":n_threads={threads}"
        )
        cmd = [ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(output), "-i", str(reference)]
        done = subprocess.run([*cmd, "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise UsageError(f"libvmaf could not score {output.name}: {why}")
        result = json.loads(log.read_text())
    pooled = result["pooled_metrics"]
    return {
        "reference": str(reference),
        "frames": len(result["frames"]),
        "vmaf": round(pooled["vmaf"]["mean"], 3),
        "vmaf_neg": round(pooled["vmaf_neg"]["mean"], 3),
        "psnr_y": round(pooled["psnr_y"]["mean"], 3),
    }


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
    if "niqe" in names:
        for row, out in zip(rows, outputs, strict=True):
            row["niqe"] = niqe(out)
    return rows


@functools.cache
def _niqe_model() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    params = np.load(Path(__file__).parent / "data" / "niqe_pristine.npz")
    return params["mu_pris_param"].ravel(), params["cov_pris_param"], params["gaussian_window"]


@functools.cache
def _aggd_table() -> tuple[np.ndarray, np.ndarray]:
    """The shape grid of the AGGD fit and ρ(α) = Γ(2/α)² / (Γ(1/α) Γ(3/α)) on it (the release's)."""
    alphas = np.arange(0.2, 10.001, 0.001)
    g = np.vectorize(math.gamma)
    return alphas, g(2 / alphas) ** 2 / (g(1 / alphas) * g(3 / alphas))


def _aggd(x: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian fit by moment matching: (shape α, left β, right β)."""
    x = x.ravel()
    alphas, rho = _aggd_table()
    left, right = np.sqrt(np.mean(x[x < 0] ** 2)), np.sqrt(np.mean(x[x > 0] ** 2))
    g = left / right
    r = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    alpha = float(alphas[np.argmin((rho - r * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2) ** 2)])
    spread = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, left * spread, right * spread


def _block_features(block: np.ndarray) -> list[float]:
    """The 18 features of one block of normalised luminance: its AGGD, then that of the products of
    neighbours in four directions (shape, mean, left and right spread)."""
    alpha, bl, br = _aggd(block)
    features = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a, left, right = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        features += [a, (right - left) * math.gamma(2 / a) / math.gamma(1 / a), left, right]
    return features


def _smooth(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """`x` filtered by the (symmetric) window, edges replicated (MATLAB's imfilter 'replicate')."""
    r = window.shape[0] // 2
    padded = np.pad(x, r, mode="edge")
    view = np.lib.stride_tricks.sliding_window_view(padded, window.shape)
    return np.einsum("ijkl,kl->ij", view, window)


def niqe(image: np.ndarray) -> float:
    """NIQE of an (H, W, 3) uint8 RGB image or its (H, W) luma, on the protocol's Y (MATLAB's rgb2ycbcr,
    rounded), in 96×96 blocks at two scales, as the official release computes it. Lower is better."""
    from vsr.imresize import imresize
    from vsr.metrics import luma

    mu_pristine, cov_pristine, window = _niqe_model()
    y = luma(np.asarray(image)).astype(np.float64)
    rows, cols = y.shape[0] // NIQE_BLOCK, y.shape[1] // NIQE_BLOCK
    if not rows or not cols:
        raise UsageError(
            f"NIQE needs at least {NIQE_BLOCK}×{NIQE_BLOCK} pixels, not {y.shape[1]}×{y.shape[0]}"
        )
    y = y[: rows * NIQE_BLOCK, : cols * NIQE_BLOCK]
    per_scale = []
    for scale in (1, 2):
        mu = _smooth(y, window)
        sigma = np.sqrt(np.abs(_smooth(y * y, window) - mu * mu))
        normalised = (y - mu) / (sigma + 1)
        b = NIQE_BLOCK // scale
        per_scale.append(
            [
                _block_features(normalised[i * b : (i + 1) * b, j * b : (j + 1) * b])
                for j in range(cols)
                for i in range(rows)
            ]
        )
        y = imresize(y, 0.5)
    features = np.concatenate([np.array(f) for f in per_scale], axis=1)
    mu_image = np.nanmean(features, axis=0)
    cov_image = np.cov(features[~np.isnan(features).any(axis=1)], rowvar=False)
    d = mu_pristine - mu_image
    return float(np.sqrt(d @ np.linalg.pinv((cov_pristine + cov_image) / 2) @ d))
