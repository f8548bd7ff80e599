"""The training loop: Adam, a cosine schedule, validation PSNR on the protocol, resumable checkpoints.

A run is a schedule over steps that may span many sittings: `sitting_minutes` ends one sitting with a
checkpoint (weights, optimiser, every random state, the pool's seed, the history) without touching the
schedule, and `resume` continues from it, on this machine or another that has the run folder.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vsr.degradations import h264_degrade, noise_degrade
from vsr.errors import UsageError
from vsr.evaluate import Predictor, evaluate_denoise, evaluate_sr, load_eval_images, mean_scores
from vsr.files import atomic_write
from vsr.models.export import IntegerIo
from vsr.models.registry import get_spec
from vsr.train.augment import AugmentConfig
from vsr.train.data import NoiseConfig, PatchSampler, load_images
from vsr.train.gan import Adversary, GanConfig
from vsr.train.losses import LossName, pixel_loss
from vsr.train.real import PRESETS, RealDegradation
from vsr.train.silicon import check_amp


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; saved beside its outputs so a run can be repeated exactly."""

    model: str
    data: Path | tuple[Path, ...]  # one folder of HR images, or several drawn from as one
    out: Path
    steps: int = 20000
    batch: int = 32
    patch: int = 96  # HR patch side
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup: int = 200
    loss: LossName = "l1"
    val_data: Path | None = None
    val_every: int = 1000
    ckpt_every: int = 1000
    seed: int = 0
    minutes: float | None = None  # wall-clock budget: the schedule follows whichever of steps/time ends first
    device: str = "cpu"
    threads: int = 0  # CPU threads for torch; 0 keeps torch's default
    amp: bool = False  # bf16 autocast where the device computes bf16 natively (vsr.train.silicon)
    channels_last: bool = False  # NHWC activations (oneDNN's preferred layout; bench/train_speed.py)
    init: Path | None = None  # warm start: weights to begin from (the optimiser and schedule start afresh)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    degradation: str | None = None  # "bicubic" or a PRESETS mix; None: the model's (ModelSpec.degradation)
    gan: GanConfig | None = None  # adversarial training (vsr.train.gan): the restoring look
    pool: int | None = None  # real degradation: (LR, HR) pairs kept and renewed (None: 2048)
    fresh: float | None = None  # real degradation: new pairs per pair drawn at most (None: unbounded)
    # Temporal consistency: the weight of the L1 between the outputs of two consecutive coded frames of a
    # still (RealDegradation.twins), drawn for TWIN_SHARE of the pairs; 0 switches it off.
    consistency: float = 0.0

    def __post_init__(self) -> None:
        spec = get_spec(self.model)
        real = self.mix is not None
        if real and spec.task != "sr":
            raise UsageError(
                f"--degradation {self.degradation} trains upscalers; a denoiser has its noise/codec mix"
            )
        if self.pool is not None and not real:
            raise UsageError("--pool sizes the real degradations' pool; this run trains on bicubic LR")
        if self.consistency and not real:
            raise UsageError("--consistency compares coded twins of the real degradations; add them")

    @property
    def mix(self) -> RealDegradation | None:
        """The real-world degradation mix the LR inputs are made by (None: the protocol's bicubic)."""
        return PRESETS.get(self.degradation or get_spec(self.model).degradation)

    @property
    def data_folders(self) -> tuple[Path, ...]:
        return self.data if isinstance(self.data, tuple) else (self.data,)

    def to_json(self) -> dict:
        """JSON-ready dict (paths as strings; several data folders as a list)."""
        d = asdict(self)
        for k in ("out", "val_data", "init"):
            d[k] = None if d[k] is None else str(d[k])
        folders = [str(f) for f in self.data_folders]
        d["data"] = folders[0] if len(folders) == 1 else folders
        return d


def _progress(cfg: TrainConfig, step: int, elapsed_s: float) -> float:
    """Fraction of the run done, 0..1: by steps, or by wall-clock time when a budget is set."""
    by_steps = step / cfg.steps
    return by_steps if cfg.minutes is None else max(by_steps, elapsed_s / (60 * cfg.minutes))


def _lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def torch_predictor(model: torch.nn.Module, device: torch.device, scale: int) -> Predictor:
    """Wrap a float NCHW 0..1 model as a uint8 RGB (H, W, 3) → uint8 RGB predictor (IntegerIo's codes)."""
    wrapped = IntegerIo(model, scale=scale)

    @torch.no_grad()
    def predict(img: np.ndarray) -> np.ndarray:
        return wrapped(torch.from_numpy(np.ascontiguousarray(img))[None].to(device))[0].cpu().numpy()

    return predict


def validate(
    model: torch.nn.Module, cfg: TrainConfig, images: list, device: torch.device
) -> dict[str, float]:
    """Mean PSNR on the validation images: Y-PSNR for SR, RGB PSNR at σ = 25 for the denoiser; a model
    trained on real degradations is also scored on LR compressed by x264 at CRF 28 (h264_* keys)."""
    spec = get_spec(cfg.model)
    was_training = model.training
    model.eval()
    predict = torch_predictor(model, device, spec.scale)
    if spec.task == "sr":
        result = mean_scores(evaluate_sr(images, spec.scale, predict))
        if cfg.mix is not None:
            damaged = mean_scores(evaluate_sr(images, spec.scale, predict, h264_degrade(28)))
            result.update({"h264_psnr": damaged["psnr"], "h264_baseline_psnr": damaged["baseline_psnr"]})
    else:
        result = mean_scores(evaluate_denoise(images, noise_degrade(25), predict, on_y=False))
    model.train(was_training)
    return result


# What must match between a checkpoint's run and the command that resumes it. The length (steps, minutes)
# may change: lengthening a run is deliberate, a different rate or patch on resume is almost always a typo.
_SCHEDULE_KEYS = (
    "model", "batch", "patch", "lr", "min_lr", "warmup", "loss", "degradation", "pool", "gan", "consistency"
)  # fmt: skip
TWIN_SHARE = 0.25  # of the pool's pairs, when a run trains temporal consistency


def _check_resumable(cfg: TrainConfig, saved: Path) -> None:
    """Refuse to resume a run whose schedule the command would change (a typo would silently fork it)."""
    old, new = json.loads(saved.read_text()), cfg.to_json()
    # A key the saved run predates had its default then (an option added since, such as consistency).
    defaults = {k: TrainConfig.__dataclass_fields__[k].default for k in _SCHEDULE_KEYS}
    changed = [k for k in _SCHEDULE_KEYS if old.get(k, defaults[k]) != new.get(k)]
    if changed:
        diff = ", ".join(f"{k} {old.get(k)} → {new.get(k)}" for k in changed)
        raise UsageError(f"--resume: {cfg.out} was trained with another schedule ({diff})")


def _save_checkpoint(
    path: Path,
    model,
    opt,
    step: int,
    elapsed_s: float,
    history: list,
    sampler: PatchSampler,
    adversary: Adversary | None,
) -> None:
    state = {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "step": step,
        "elapsed_s": elapsed_s,
        "pool_seed": sampler.seed,
        "rng": {
            "torch": torch.get_rng_state(),
            "sampler_torch": sampler.generator.get_state(),
            # numpy's state holds 128-bit integers: kept as JSON text for torch's weights-only loader
            "sampler_numpy": json.dumps(sampler.numpy_rng_state()),
        },
    }
    if adversary is not None:
        state["gan"] = adversary.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())
    atomic_write(path.parent / "history.json", json.dumps(history, indent=1))


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    sitting_minutes: float | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Train cfg.model; returns the path of the weights (safetensors) as they stand when it returns.

    sitting_minutes: stop this sitting after so long with a checkpoint; `resume` continues the schedule.
    """
    spec = get_spec(cfg.model)
    device = torch.device(cfg.device)
    if cfg.amp:
        check_amp(device)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    ckpt_path = cfg.out / "checkpoint.pt"
    resuming = resume and ckpt_path.exists()
    if resuming:
        _check_resumable(cfg, cfg.out / "config.json")
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "config.json").write_text(json.dumps(cfg.to_json(), indent=1))

    model = spec.build().to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.init is not None:
        model.load_state_dict(load_file(str(cfg.init), device=str(device)))
        log(f"warm start from {cfg.init}")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    adversary = Adversary(cfg.gan, model, device) if cfg.gan is not None else None
    start, history, spent_s, rng = 0, [], 0.0, {}
    if resuming:
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start, spent_s = int(state["step"]), float(state.get("elapsed_s", 0.0))
        rng = state.get("rng", {})
        if adversary is not None:
            adversary.load_state_dict(state["gan"])
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        history = json.loads((cfg.out / "history.json").read_text())
        log(f"resumed at step {start} of {cfg.steps}")

    images = [img for folder in cfg.data_folders for img in load_images(folder)]
    sampler = PatchSampler(
        images,
        scale=spec.scale,
        patch=cfg.patch,
        batch=cfg.batch,
        augment_cfg=cfg.augment,
        device=device,
        seed=cfg.seed + start,  # the pool's seed: a resumed run does not replay the pairs it already saw
        noise=cfg.noise if spec.task == "denoise" else None,
        real=cfg.mix,
        pool=cfg.pool or 2048,
        fresh=cfg.fresh,
        twins=TWIN_SHARE if cfg.consistency else 0.0,
    )
    if "sampler_numpy" in rng:  # the crops and flips go on where the last sitting left them
        sampler.set_rng_state(json.loads(rng["sampler_numpy"]), rng["sampler_torch"])
    val_images = []
    if cfg.val_data is not None:
        val_images = load_eval_images(cfg.val_data)

    loop = _Loop(cfg, model, opt, sampler, val_images, device, ckpt_path, log, adversary)
    try:
        loop.run(start, spent_s, history, sitting_minutes)
    finally:
        sampler.close()
    weights = cfg.out / "model.safetensors"
    released = adversary.ema.net if adversary is not None else model  # a GAN run releases its EMA
    save_file({k: v.detach().cpu().contiguous() for k, v in released.state_dict().items()}, str(weights))
    return weights


class _Loop:
    """The optimiser steps, validation and checkpoints of `train`, until the schedule or the sitting ends."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        sampler: PatchSampler,
        val_images: list,
        device: torch.device,
        ckpt_path: Path,
        log: Callable[[str], None],
        adversary: Adversary | None = None,
    ) -> None:
        self.cfg, self.model, self.opt, self.sampler = cfg, model, opt, sampler
        self.val_images, self.device, self.ckpt_path, self.log = val_images, device, ckpt_path, log
        self.adversary = adversary
        self.last_consistency: torch.Tensor | None = None
        self.autocast = cfg.amp and device.type in ("cpu", "cuda")  # check_amp has refused the rest

    def step(
        self,
        step: int,
        progress: float,
        lr_img: torch.Tensor,
        hr_img: torch.Tensor,
        twin_index: torch.Tensor | None = None,
        twin_lr: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One optimiser step on one batch (and the twins' second frames, if any); returns the loss."""
        cfg = self.cfg
        for group in self.opt.param_groups:
            group["lr"] = _lr_at(cfg, step, progress)
        if cfg.channels_last:
            lr_img = lr_img.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            pred = self.model(lr_img)
        # The loss in fp32: bf16's 8-bit mantissa would round away the small residuals late in training.
        loss = pixel_loss(cfg.loss, pred.float(), hr_img)
        if self.adversary is not None:
            loss = loss + self.adversary.generator_loss(pred.float(), hr_img)
        if cfg.consistency and twin_index is not None and len(twin_index):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                twin = self.model(twin_lr)
            self.last_consistency = (pred[twin_index].float() - twin.float()).abs().mean()
            loss = loss + cfg.consistency * self.last_consistency
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.adversary is not None:
            self.adversary.step(pred.float(), hr_img, self.model)
        return loss

    def run(self, start: int, spent_s: float, history: list, sitting_minutes: float | None) -> None:
        cfg, sampler = self.cfg, self.sampler
        t0, seen, data_s = time.perf_counter(), 0, 0.0
        made0 = sampler.pool.made if sampler.pool is not None else 0
        sitting_end = None if sitting_minutes is None else t0 + 60 * sitting_minutes
        step = start
        while (progress := _progress(cfg, step, spent_s + time.perf_counter() - t0)) < 1.0:
            waited = time.perf_counter()
            batch = sampler.sample()
            data_s += time.perf_counter() - waited
            loss = self.step(step, progress, *batch)
            seen += cfg.batch
            step += 1
            now = time.perf_counter()
            elapsed = spent_s + now - t0
            last = _progress(cfg, step, elapsed) >= 1.0
            stop = sitting_end is not None and now >= sitting_end
            if step % cfg.val_every == 0 or last or stop:
                entry: dict = {"step": step, "elapsed_s": round(elapsed, 1)}
                entry["patches_per_s"] = round(seen / (now - t0), 1)
                entry["patches_seen"] = step * cfg.batch
                entry["loss"] = float(loss.detach())
                entry["data_share"] = round(data_s / (now - t0), 3)  # time spent waiting for data
                if sampler.pool is not None:
                    entry["pairs_made"] = sampler.pool.made  # how fresh the degraded pairs are
                    entry["pairs_per_step"] = round((sampler.pool.made - made0) / (step - start), 2)
                if self.adversary is not None:
                    entry.update({k: round(v, 4) for k, v in self.adversary.last.items()})
                if self.last_consistency is not None:
                    entry["consistency"] = round(float(self.last_consistency.detach()), 5)
                if self.val_images:  # a GAN run is judged by the weights it releases: the EMA
                    judged = self.adversary.ema.net if self.adversary is not None else self.model
                    scores = validate(judged, cfg, self.val_images, self.device)
                    entry.update({f"val_{k}": round(v, 4) for k, v in scores.items()})
                history.append(entry)
                self.log(json.dumps(entry))
            if step % cfg.ckpt_every == 0 or last or stop:
                _save_checkpoint(
                    self.ckpt_path, self.model, self.opt, step, elapsed, history, sampler, self.adversary
                )
            if stop and not last:
                self.log(f"sitting over at step {step} of {cfg.steps}: continue with --resume")
                return


def preview_degradations(
    model: str, data: Path, out: Path, *, degradation: str | None = None, seed: int = 0
) -> Path:
    """The PNG grid of vsr.train.real.preview for `model`'s scale and mix (or `degradation`'s), from the
    images in `data`."""
    from vsr.train.real import preview

    name = degradation or get_spec(model).degradation
    if name not in PRESETS:
        raise UsageError(f"{model} trains on the bicubic downscale: name a mix with --degradation real|codec")

    images = [i for i in load_images(data) if min(i.shape[:2]) >= 96]
    if not images:
        raise UsageError(f"{data}: no image is at least 96×96, the preview's crop")
    return preview(images, get_spec(model).scale, out, mix=PRESETS[name], seed=seed)
