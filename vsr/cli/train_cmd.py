"""`vsr train`: train a registered model on a folder of images (needs the `train` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vsr.cli import app, choices
from vsr.errors import UsageError


@app.command("train")
def train_command(
    model: Annotated[str, typer.Option(help="Registered model name (see `vsr models`).")],
    data: Annotated[
        list[Path],
        typer.Option(exists=True, file_okay=False, help="Folder of HR training images; repeat to add more."),
    ],
    out: Annotated[Path, typer.Option(help="Run folder: config, checkpoints, history, final weights.")],
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 20000,
    minutes: Annotated[
        float | None, typer.Option(help="Wall-clock budget; ends the cosine schedule early.")
    ] = None,
    batch: Annotated[int, typer.Option(min=1)] = 32,
    patch: Annotated[int, typer.Option(min=8, help="HR patch side (a multiple of the scale).")] = 96,
    lr: Annotated[float, typer.Option(help="Peak Adam learning rate (cosine decay).")] = 1e-3,
    loss: Annotated[choices.Loss, typer.Option(help="Pixel loss.")] = "l1",  # type: ignore[assignment]
    val_data: Annotated[Path | None, typer.Option(help="Validation images, e.g. Set5.")] = None,
    val_every: Annotated[int, typer.Option(min=1)] = 1000,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N.")] = "cpu",
    threads: Annotated[int, typer.Option(min=0, help="CPU threads for torch; 0 = torch's default.")] = 0,
    amp: Annotated[
        bool,
        typer.Option(
            help="bf16 autocast where the device computes bf16 (CUDA, AMX, AVX-512-BF16); else refused."
        ),
    ] = False,
    channels_last: Annotated[bool, typer.Option(help="NHWC activations (see bench/train_speed.py).")] = False,
    sitting_minutes: Annotated[
        float | None,
        typer.Option(
            help="End this sitting after so long with a checkpoint; --resume continues the schedule."
        ),
    ] = None,
    jitter: Annotated[float, typer.Option(help="Probability of brightness/contrast/gamma/hue jitter.")] = 0.2,
    brightness: Annotated[float, typer.Option(help="Jitter: added brightness, ± on 0..1.")] = 0.05,
    contrast: Annotated[float, typer.Option(help="Jitter: contrast factor 1 ±.")] = 0.1,
    gamma: Annotated[float, typer.Option(help="Jitter: gamma exponent 1 ±.")] = 0.1,
    hue: Annotated[float, typer.Option(help="Jitter: hue rotation, ± turns.")] = 0.03,
    no_flips: Annotated[bool, typer.Option("--no-flips")] = False,
    no_rotations: Annotated[bool, typer.Option("--no-rotations")] = False,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.pt if it exists.")] = False,
    init: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Warm start from these weights (.safetensors)."),
    ] = None,
    sigma_max: Annotated[
        float, typer.Option(min=0, max=255, help="Denoiser: Gaussian σ drawn from 0..this (on 0..255).")
    ] = 50.0,
    compressed_prob: Annotated[
        float, typer.Option(min=0, max=1, help="Denoiser: share of samples compressed instead of noised.")
    ] = 0.5,
    jpeg_qualities: Annotated[
        str, typer.Option(help="Denoiser: JPEG qualities to draw from, comma list; repeat one to weight it.")
    ] = "10,15,20,30,40,60,80",
    degradation: Annotated[
        choices.Degradation | None,
        typer.Option(
            help="SR inputs: bicubic (the protocol's), real or codec (vsr/train/real.py); default: model's."
        ),
    ] = None,
    pool: Annotated[
        int | None, typer.Option(min=64, help="Real degradation: (LR, HR) pairs kept and renewed; 2048.")
    ] = None,
    gan: Annotated[
        str | None,
        typer.Option(
            help="Adversarial training (the restoring look) with this discriminator: unet or patch."
        ),
    ] = None,
    gan_weight: Annotated[float, typer.Option(min=0, help="--gan: weight of the adversarial loss.")] = 0.1,
    fm_weight: Annotated[float, typer.Option(min=0, help="--gan: weight of feature matching.")] = 1.0,
    freq_weight: Annotated[float, typer.Option(min=0, help="--gan: weight of the FFT-amplitude L1.")] = 0.0,
    d_lr: Annotated[float, typer.Option(help="--gan: the discriminator's learning rate.")] = 1e-4,
    d_features: Annotated[int, typer.Option(min=8, help="--gan: the discriminator's first width.")] = 32,
    ema: Annotated[
        float, typer.Option(min=0, max=0.99999, help="--gan: decay of the released weights' average.")
    ] = 0.999,
    consistency: Annotated[
        float,
        typer.Option(
            min=0, help="Real degradation: weight of the temporal consistency L1 between coded twins."
        ),
    ] = 0.0,
    fresh: Annotated[
        float | None,
        typer.Option(min=0.01, help="Real degradation: new pairs made per pair trained on, at most."),
    ] = None,
    preview_degradations: Annotated[
        Path | None, typer.Option(help="Write a PNG grid of degraded samples here and stop (no training).")
    ] = None,
    h264_crfs: Annotated[
        str, typer.Option(help="Denoiser: x264 CRFs to draw from, comma-separated (may be empty).")
    ] = "23,28,33,38,43",
) -> None:
    """Train a model; writes OUT/model.safetensors and OUT/history.json."""
    try:
        from vsr.train.augment import AugmentConfig
        from vsr.train.data import NoiseConfig
        from vsr.train.loop import TrainConfig, train
    except ImportError as exc:
        raise UsageError(f"training needs the train extra (pip install 'vsr[train]'): {exc}") from None
    if preview_degradations is not None:
        from vsr.train.loop import preview_degradations as write_preview

        grid = write_preview(
            model, data[0], preview_degradations, degradation=choices.value(degradation), seed=seed
        )
        typer.echo(f"preview: {grid}")
        return
    noise = NoiseConfig(
        sigma_max=sigma_max,
        compressed_prob=compressed_prob,
        jpeg_qualities=_levels(jpeg_qualities, "--jpeg-qualities", 1, 100),
        h264_crfs=_levels(h264_crfs, "--h264-crfs", 0, 51),
    )
    if compressed_prob > 0 and not noise.levels():
        raise UsageError("--compressed-prob > 0 needs at least one JPEG quality or x264 CRF")
    if gan is not None and gan not in ("unet", "patch"):
        raise UsageError(f"--gan takes unet or patch, not {gan!r}")
    adversarial = None
    if gan is not None:
        from vsr.train.gan import GanConfig

        adversarial = GanConfig(gan, d_features, d_lr, gan_weight, fm_weight, freq_weight, ema)  # type: ignore[arg-type]
    cfg = TrainConfig(
        model=model,
        data=data[0] if len(data) == 1 else tuple(data),
        out=out,
        steps=steps,
        minutes=minutes,
        batch=batch,
        patch=patch,
        lr=lr,
        loss=choices.value(loss),  # type: ignore[arg-type]
        val_data=val_data,
        val_every=val_every,
        ckpt_every=val_every,
        seed=seed,
        device=device,
        threads=threads,
        amp=amp,
        channels_last=channels_last,
        init=init,
        noise=noise,
        degradation=choices.value(degradation),
        pool=pool,
        fresh=fresh,
        consistency=consistency,
        gan=adversarial,
        augment=AugmentConfig(
            flips=not no_flips,
            rotations=not no_rotations,
            jitter_prob=jitter,
            brightness=brightness,
            contrast=contrast,
            gamma=gamma,
            hue=hue,
        ),
    )
    weights = train(cfg, resume=resume, sitting_minutes=sitting_minutes, log=typer.echo)
    typer.echo(f"weights: {weights}")


def _levels(text: str, option: str, low: int, high: int) -> tuple[int, ...]:
    """A comma-separated list of integer codec levels, each within low..high."""
    try:
        levels = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"{option} takes comma-separated integers, not {text!r}") from None
    if any(not low <= v <= high for v in levels):
        raise UsageError(f"{option} values must lie in {low}..{high}: {text!r}")
    return levels
