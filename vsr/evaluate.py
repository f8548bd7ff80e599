"""Evaluation on the published protocol (../shared/data/README.md), for any predictor.

A predictor maps an (H, W, 3) uint8 RGB image to its restored uint8 RGB image, so the same code scores an
ONNX Runtime session, a torch model during training, or plain bicubic. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from vsr.degradations import Damage, h264_sequence, jpeg_degrade, noise_degrade
from vsr.imresize import imresize
from vsr.media.images import clip_files, image_files, read_clip, read_image
from vsr.metrics import luma, modcrop, psnr, shave, ssim

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Score:
    """PSNR (dB) and SSIM of one image, for the model and for the baseline it must beat; `extra` holds the
    metrics of vsr.quality asked for, as "vmaf" and "baseline_vmaf", "erqa" and "baseline_erqa"..."""

    name: str
    psnr: float
    ssim: float
    baseline_psnr: float
    baseline_ssim: float
    extra: dict[str, float] = field(default_factory=dict)


def load_eval_images(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(name, image) for every image in `folder`; greyscale files stay greyscale, as the protocol wants."""
    return [(p.stem, read_image(p)) for p in image_files(folder)]


def _as_rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def _back_to_layout(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    # A greyscale image went through the model as three equal channels; its output is their mean.
    if like.ndim == 2:
        return np.round(out.astype(np.float64).mean(axis=2)).astype(np.uint8)
    return out


def _score(name: str, out: np.ndarray, base: np.ndarray, ref: np.ndarray, border: int) -> Score:
    y_ref, y_out, y_base = (shave(luma(i), border) for i in (ref, out, base))
    return Score(name, psnr(y_out, y_ref), ssim(y_out, y_ref), psnr(y_base, y_ref), ssim(y_base, y_ref))


def _with_extra(
    scores: list[Score], metrics: Sequence[str], outs: list, bases: list, refs: list, border: int
) -> list[Score]:
    """`scores` with the vsr.quality `metrics` of one sequence (an image, or a clip) added, on the same
    shaved region as PSNR."""
    if not metrics:
        return scores
    from vsr.quality import score_frames

    def region(frames: list) -> list[np.ndarray]:
        return [shave(_as_rgb(f), border) for f in frames]

    model = score_frames(metrics, region(outs), region(refs))
    base = score_frames(metrics, region(bases), region(refs))
    return [
        replace(s, extra={**m, **{f"baseline_{k}": v for k, v in b.items()}})
        for s, m, b in zip(scores, model, base, strict=True)
    ]


def bicubic_predictor(scale: int) -> Predictor:
    """MATLAB bicubic upscaling, the SR baseline."""
    return lambda lr: imresize(lr, scale)


def evaluate_sr(
    images: Sequence[tuple[str, np.ndarray]],
    scale: int,
    predict: Predictor,
    degrade: Callable[[np.ndarray, int], np.ndarray] | None = None,
    metrics: Sequence[str] = (),
    soften: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[Score]:
    """Y-PSNR/SSIM of `predict` on LR = MATLAB-bicubic(HR), shaved by `scale`, with bicubic beside it.

    `degrade(lr, index)` damages the LR first (compression, noise): both the model and bicubic then see
    the damaged LR and are scored against the clean HR. `soften(hr)` makes a soft source of the HR before
    the downscale (Damage.soften); the score is still against the sharp HR. `metrics` adds vsr.quality's
    (on RGB).
    """
    scores = []
    for k, (name, img) in enumerate(images):
        hr = modcrop(img, scale)
        lr = imresize(soften(hr) if soften else hr, 1 / scale)
        if degrade is not None:
            lr = _back_to_layout(degrade(_as_rgb(lr), k), hr)
        out = _back_to_layout(predict(_as_rgb(lr)), hr)
        base = imresize(lr, scale)
        scores += _with_extra([_score(name, out, base, hr, scale)], metrics, [out], [base], [hr], scale)
    return scores


def evaluate_video_sr(
    clips: Sequence[tuple[str, list[np.ndarray]]],
    scale: int,
    predict: Predictor,
    degrade: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None,
    metrics: Sequence[str] = (),
    soften: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[Score]:
    """Per-frame Y-PSNR/SSIM of `predict` on whole clips: each frame's LR is MATLAB-bicubic(HR), then
    `degrade` damages the LR clip as a sequence (H.264 inter-predicts it), model and bicubic see the same
    damaged frames and are scored against the clean HR, shaved by `scale`. Scores are per frame
    ("clip#index"), so their mean is the mean over all frames of all clips. `metrics` adds vsr.quality's,
    each clip scored as one sequence (VMAF's motion feature reads the frame before)."""
    scores = []
    for name, frames in clips:
        hrs = [modcrop(f, scale) for f in frames]
        lrs = [imresize(soften(hr) if soften else hr, 1 / scale) for hr in hrs]
        if degrade is not None:
            lrs = degrade(lrs)
        outs, bases = [predict(lr) for lr in lrs], [imresize(lr, scale) for lr in lrs]
        clip = [
            _score(f"{name}#{k}", out, base, hr, scale)
            for k, (out, base, hr) in enumerate(zip(outs, bases, hrs, strict=True))
        ]
        scores += _with_extra(clip, metrics, outs, bases, hrs, scale)
    return scores


@dataclass(frozen=True)
class SrSet:
    """An SR evaluation set: a folder of images, or of clips (Vid4), each clip scored frame by frame."""

    images: list[tuple[str, np.ndarray]]
    clips: list[tuple[str, list[np.ndarray]]]

    @classmethod
    def load(cls, folder: Path) -> SrSet:
        """The clips of `folder` if it has any, else its images."""
        clips = load_eval_clips(folder)
        return cls([], clips) if clips else cls(load_eval_images(folder), [])

    def scores(
        self, scale: int, predict: Predictor, damage: Damage, metrics: Sequence[str] = ()
    ) -> list[Score]:
        """Model and bicubic on every image (or every frame of every clip) of the set."""
        soften = damage.soften if damage.blur else None
        if self.clips:
            return evaluate_video_sr(self.clips, scale, predict, damage.sequence, metrics, soften)
        return evaluate_sr(self.images, scale, predict, damage.apply, metrics, soften)

    def lr(self, damage: Damage) -> str:
        """How the LR was made, for the protocol line."""
        if not self.clips:
            return f"MATLAB bicubic LR, {damage.spec}"
        inter = damage.spec.rsplit(",", 1)[-1].startswith("h264")
        coded = ", coded as one x264 stream per clip (preset medium)" if inter else ""
        return f"MATLAB bicubic LR per frame, {damage.spec}{coded}; mean over all frames"


def flicker(
    images: Sequence[tuple[str, np.ndarray]],
    scale: int,
    predict: Predictor,
    crf: int = 28,
    frames: int = 50,
) -> tuple[float, float]:
    """Temporal instability on a static scene, (model, bicubic): each image's LR (MATLAB bicubic) is held
    still for `frames` frames (2 s at 25 fps) and coded by x264 at `crf` as one stream, so only the codec
    changes from frame to frame; the score is the per-pixel standard deviation of Y over time, averaged
    over the pixels (shaved by `scale`) and over the images. A restorer that amplifies the codec's
    changing artefacts scores above bicubic."""
    model_std, base_std = [], []
    for _name, img in images:
        lr = imresize(modcrop(_as_rgb(img), scale), 1 / scale)
        coded = h264_sequence([lr] * frames, crf)
        for out, stds in ((map(predict, coded), model_std), ((imresize(f, scale) for f in coded), base_std)):
            ys = np.stack([shave(luma(o).astype(np.float64), scale) for o in out])
            stds.append(float(ys.std(axis=0).mean()))
    return float(np.mean(model_std)), float(np.mean(base_std))


def load_eval_clips(folder: Path) -> list[tuple[str, list[np.ndarray]]]:
    """(name, frames) for every clip in `folder` (Vid4: calendar, city, foliage, walk)."""
    return [(p.stem, read_clip(p)) for p in clip_files(folder)]


def evaluate_denoise(
    images: Sequence[tuple[str, np.ndarray]],
    degrade: Callable[[np.ndarray, int], np.ndarray],
    predict: Predictor,
    *,
    on_y: bool,
) -> list[Score]:
    """PSNR/SSIM of `predict` on degrade(clean, index), on Y or on RGB; the degraded input is the baseline."""
    scores = []
    for k, (name, img) in enumerate(images):
        rgb = _as_rgb(img)
        noisy = degrade(rgb, k)
        out = predict(noisy)
        if on_y:
            scores.append(_score(name, out, noisy, rgb, 0))
        else:
            scores.append(
                Score(name, psnr(out, rgb), _ssim_rgb(out, rgb), psnr(noisy, rgb), _ssim_rgb(noisy, rgb))
            )
    return scores


def _ssim_rgb(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([ssim(a[..., c], b[..., c]) for c in range(3)]))


def mean_scores(scores: Sequence[Score]) -> dict[str, float]:
    """Mean of each field, and of each extra metric, over the images."""
    fields = ("psnr", "ssim", "baseline_psnr", "baseline_ssim")
    means = {f: float(np.mean([getattr(s, f) for s in scores])) for f in fields}
    extra = [k for k in scores[0].extra if all(k in s.extra for s in scores)] if scores else []
    return means | {k: float(np.mean([s.extra[k] for s in scores])) for k in extra}


@dataclass(frozen=True)
class DenoiseLevel:
    """One point of the denoising protocol: a degradation, the sets it runs on, and the PSNR channel."""

    key: str  # "sigma15", "jpeg10", ...
    degrade: Callable[[np.ndarray, int], np.ndarray]
    datasets: tuple[str, ...]  # paths under the data root
    on_y: bool
    nlmeans_grid: tuple[float, ...]  # strengths tried when tuning FFmpeg's nlmeans (valid: 1..30)


# The grids bracket the best strengths seen on these sets: Gaussian noise wants 6..20, JPEG much less.
SIGMA_GRID = (4, 6, 8, 10, 12, 16, 20, 30)
JPEG_GRID = (1, 2, 3, 4, 5, 6, 8)
DENOISE_LEVELS: tuple[DenoiseLevel, ...] = (
    *(
        DenoiseLevel(f"sigma{s}", noise_degrade(s), ("sr-eval/Set5", "sr-eval/Set14"), False, SIGMA_GRID)
        for s in (15, 25, 50)
    ),
    *(
        DenoiseLevel(f"jpeg{q}", jpeg_degrade(q), ("denoise-eval/LIVE1",), True, JPEG_GRID)
        for q in (10, 20, 30)
    ),
)


def _pooled(level: DenoiseLevel, root: Path) -> list[tuple[str, np.ndarray]]:
    return [
        (f"{d.rsplit('/', 1)[-1]}/{n}", img) for d in level.datasets for n, img in load_eval_images(root / d)
    ]


def measure_denoise(
    predict: Predictor, root: Path, nlmeans_strength: dict[str, float] | None = None
) -> dict[str, dict[str, float]]:
    """Mean PSNR of `predict`, of the degraded input and of FFmpeg's nlmeans at every protocol level.

    nlmeans gets, per level, the strength given, or else the best of the level's grid on these very images
    (an oracle-tuned baseline: about the strongest nlmeans can be on this data).
    """
    from vsr.media.filters import nlmeans

    results = {}
    for level in DENOISE_LEVELS:
        images = _pooled(level, root)
        model = mean_scores(evaluate_denoise(images, level.degrade, predict, on_y=level.on_y))
        grid = [nlmeans_strength[level.key]] if nlmeans_strength else list(level.nlmeans_grid)
        best_s, best = grid[0], -1.0
        for s in grid:
            scores = evaluate_denoise(
                images, level.degrade, lambda img, s=s: nlmeans(img, s), on_y=level.on_y
            )
            if (p := mean_scores(scores)["psnr"]) > best:
                best_s, best = s, p
        results[level.key] = {
            "psnr": round(model["psnr"], 4),
            "ssim": round(model["ssim"], 4),
            "input_psnr": round(model["baseline_psnr"], 4),
            "nlmeans_psnr": round(best, 4),
            "nlmeans_s": best_s,
        }
    return results
