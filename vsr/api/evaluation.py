"""Measuring models: `evaluate` (one model on the published protocol), `compare` (bicubic and every
upscaler of a scale on the same LR), `stability` (flicker on coded stills) and `compare_page` (an HTML
page of the same frames through each chain)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from vsr import compare_page as page
from vsr.api.choice import choose_model
from vsr.api.frames import Upscaler, _chain, load_model
from vsr.backends.options import BackendOptions
from vsr.compare_page import ComparePage
from vsr.degradations import Damage, h264_degrade, jpeg_degrade, noise_degrade
from vsr.errors import BadInputError, UsageError
from vsr.evaluate import Score, SrSet, evaluate_denoise, flicker, load_eval_images, mean_scores
from vsr.models.artefacts import shipped_models
from vsr.quality import parse_metrics


@dataclass(frozen=True)
class Evaluation:
    """Scores of a model on a folder of images, beside the baseline it must beat."""

    model: str
    data: str
    protocol: str
    baseline: str  # "bicubic" (SR) or "input" (the degraded image, for a denoiser)
    scores: tuple[Score, ...]

    @property
    def mean(self) -> dict[str, float]:
        """Mean PSNR/SSIM of the model and of the baseline."""
        return mean_scores(self.scores)

    def to_dict(self) -> dict[str, object]:
        """The JSON record of `vsr eval --json`."""
        head = {"model": self.model, "data": self.data, "protocol": self.protocol, "baseline": self.baseline}
        return {**head, "mean": self.mean, "images": [asdict(s) for s in self.scores]}


def evaluate(
    model: str,
    data: str | Path,
    *,
    task: str | None = None,
    scale: int | None = None,
    sigma: float | None = None,
    jpeg_quality: int | None = None,
    h264_crf: int | None = None,
    degrade: str = "clean",
    backend: str | BackendOptions = "onnxruntime",
    precision: str | None = None,
    threads: int = 0,
    metrics: Sequence[str] = (),
) -> Evaluation:
    """PSNR/SSIM of a shipped model on the published protocol (../shared/data/README.md): Y on
    MATLAB-bicubic LR for SR; for a denoiser, exactly one degradation (RGB for Gaussian noise of σ, Y for
    JPEG or H.264 compression). `task` and `scale`, when given, must be the model's. The reference runtime
    is ONNX Runtime fp32 (the manifest's figures); `backend`/`precision` score another (OpenVINO bf16...).
    `metrics` adds vsr.quality's (vmaf, vmaf_neg, erqa) to an upscaler's scores."""
    chain, folder = _chain(model, None, None), Path(data)  # one model, or a cascade "A+B"
    model_task, factor = chain[0].spec.task, math.prod(m.spec.scale for m in chain)
    if task is not None and task != model_task:
        raise UsageError(f"{model} is a {model_task} model, not {task}")
    if scale is not None and scale != factor:
        raise UsageError(f"{model} works at ×{factor}, not ×{scale}")
    if model_task == "sr":
        damage, sr_set = Damage.parse(degrade), SrSet.load(folder)
        with load_model(model, backend=backend, precision=precision, threads=threads) as upscaler:
            scores = sr_set.scores(factor, upscaler, damage, metrics)
            protocol = f"Y-PSNR, ×{factor}, {sr_set.lr(damage)}, shave {factor}, {upscaler.backend}"
        return Evaluation(model, str(folder), protocol, "bicubic", tuple(scores))
    if metrics:
        raise UsageError("--metrics scores upscalers; a denoiser is scored by PSNR/SSIM")
    images = load_eval_images(folder)
    with load_model(model, backend=backend, precision=precision, threads=threads) as upscaler:
        runtime = upscaler.backend
        if degrade != "clean":
            raise UsageError(
                "--degrade damages an upscaler's LR; a denoiser takes --sigma, --jpeg-quality or --h264-crf"
            )
        levels = [
            (n, v) for n, v in (("sigma", sigma), ("jpeg", jpeg_quality), ("h264", h264_crf)) if v is not None
        ]
        if len(levels) != 1:
            raise UsageError("a denoiser is scored on exactly one of --sigma, --jpeg-quality, --h264-crf")
        kind, level = levels[0]
        degrade = {
            "sigma": lambda: noise_degrade(float(level)),
            "jpeg": lambda: jpeg_degrade(int(level)),
            "h264": lambda: h264_degrade(int(level)),
        }[kind]()
        on_y = kind != "sigma"
        scores = evaluate_denoise(images, degrade, upscaler, on_y=on_y)
    protocol = f"{'Y' if on_y else 'RGB'}-PSNR, {kind} {level}, {runtime}"
    return Evaluation(model, str(folder), protocol, "input", tuple(scores))


@dataclass(frozen=True)
class Comparison:
    """Bicubic and every shipped upscaler of one scale, side by side on one protocol (`vsr eval` without
    --model)."""

    data: str
    protocol: str
    means: dict[str, dict[str, float]]  # "bicubic" first, then each model: psnr, ssim and any extra metric

    def to_dict(self) -> dict[str, object]:
        """The JSON record."""
        return asdict(self)


def compare(
    data: str | Path,
    *,
    scale: int = 2,
    degrade: str = "clean",
    models: Sequence[str] | None = None,
    backend: str | BackendOptions = "onnxruntime",
    precision: str | None = None,
    threads: int = 0,
    metrics: Sequence[str] = (),
) -> Comparison:
    """Y-PSNR/SSIM of bicubic and of every shipped ×`scale` upscaler (or `models`: shipped, imported or
    chains "a+b") on the same LR: the MATLAB-bicubic downscale of each image in `data` (or each frame of
    its clips), damaged by `degrade` (clean, h264:crf=N, jpeg:q=N, noise:sigma=N; H.264 codes a clip as one
    inter-predicted stream) and scored against the clean HR. `metrics` adds vsr.quality's on RGB."""
    damage, folder = Damage.parse(degrade), Path(data)
    sr_set = SrSet.load(folder)
    names = (
        list(models)
        if models
        else [n for n, m in shipped_models().items() if m.spec.task == "sr" and m.spec.scale == scale]
    )
    means: dict[str, dict[str, float]] = {}
    for name in names:
        if (factor := math.prod(m.spec.scale for m in _chain(name, None, None))) != scale:
            raise UsageError(f"{name} works at ×{factor}, not ×{scale}")
    for name in names:
        with load_model(name, backend=backend, precision=precision, threads=threads) as upscaler:
            mean = mean_scores(sr_set.scores(scale, upscaler, damage, metrics))
            runtime = upscaler.backend
        baseline = {k.removeprefix("baseline_"): v for k, v in mean.items() if k.startswith("baseline_")}
        means.setdefault("bicubic", baseline)
        means[name] = {k: v for k, v in mean.items() if not k.startswith("baseline_")}
    if not means:
        raise UsageError(f"no shipped model upscales ×{scale}")
    protocol = f"Y-PSNR/SSIM, ×{scale}, {sr_set.lr(damage)}, shave {scale}, {runtime}"
    return Comparison(str(folder), protocol, means)


def compare_page(
    input: str | Path,
    out: str | Path | None = None,
    *,
    models: Sequence[str] = ("auto",),
    scale: int = 2,
    frames: int = 4,
    at: Sequence[float | str] | None = None,
    reference: str | Path | None = None,
    backend: str | BackendOptions = "auto",
    precision: str | None = None,
    threads: int = 0,
) -> ComparePage:
    """A self-contained HTML page of the same frames of `input` through bicubic and each of `models`
    (shipped, imported, chains "a+b", or "auto", which runs what `--model auto` would and says why):
    `frames` frames spread over the clip, or those at the moments of `at` (seconds, or "[HH:]MM:SS").
    Per-frame NIQE; PSNR, VMAF and ERQA against `reference` (the same video at the output size) when
    given. Written beside the input as NAME.compare.html unless `out` says where."""
    src = Path(input)
    if not src.is_file():
        raise BadInputError(f"{src}: no such file")
    if frames < 1 or frames > 32:
        raise UsageError("--frames takes 1 to 32 frames (each is inlined in the page)")
    decision = choose_model(src, scale=scale) if "auto" in models else None

    def load(name: str) -> Upscaler:
        if name == "auto" and decision is not None:
            return load_model(decision.model, denoise=decision.denoise, backend=backend, precision=precision,
                              threads=threads)  # fmt: skip
        if (factor := math.prod(m.spec.scale for m in _chain(name, None, None))) != scale:
            raise UsageError(f"{name} works at ×{factor}, not ×{scale}")
        return load_model(name, backend=backend, precision=precision, threads=threads)

    metrics = ["niqe"]
    if reference is not None:
        metrics += [m for m in ("vmaf", "erqa") if _available(m)]
    times = [page.parse_time(str(a)) for a in at] if at else None
    return page.compare_page(
        src, Path(out) if out else src.with_name(f"{src.stem}.compare.html"), models=models, load=load,
        scale=scale, times=times, frames=frames, reference=Path(reference) if reference else None,
        auto=decision.describe() if decision else None, metrics=metrics,
    )  # fmt: skip


def _available(metric: str) -> bool:
    """Whether the quality extra that `metric` needs is installed (the page leaves it out otherwise)."""
    try:
        parse_metrics(metric)
    except UsageError:
        return False
    return True


def stability(
    data: str | Path,
    *,
    scale: int = 2,
    crf: int = 28,
    models: Sequence[str] | None = None,
    backend: str | BackendOptions = "onnxruntime",
    precision: str | None = None,
    threads: int = 0,
) -> Comparison:
    """Flicker on a static scene, bicubic and every shipped ×`scale` upscaler (or `models`) side by side:
    each image of `data` downscaled, held for 2 s and coded by x264 at `crf` (vsr.evaluate.flicker); the
    mean per-pixel temporal standard deviation of the output's Y ("flicker", lower is steadier)."""
    images = load_eval_images(Path(data))
    names = list(models) if models else [n for n, m in shipped_models().items() if m.spec.task == "sr"]
    means: dict[str, dict[str, float]] = {}
    for name in names:
        if math.prod(m.spec.scale for m in _chain(name, None, None)) != scale:
            continue
        with load_model(name, backend=backend, precision=precision, threads=threads) as upscaler:
            model_std, base_std = flicker(images, scale, upscaler, crf)
        means.setdefault("bicubic", {"flicker": round(base_std, 4)})
        means[name] = {"flicker": round(model_std, 4), "vs_bicubic": round(model_std / base_std, 3)}
    if not means:
        raise UsageError(f"no shipped model upscales ×{scale}")
    protocol = f"flicker: Y std over 50 frames of a still, ×{scale} MATLAB bicubic LR, x264 CRF {crf}"
    return Comparison(str(data), protocol, means)
