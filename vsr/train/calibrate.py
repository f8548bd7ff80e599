"""The calibration of `--model auto`: every candidate chain at every level of damage, on real files.

Two kinds of source, each coded into files exactly as a user would have them:
- stills: each image of Set5 and Set14, downscaled (MATLAB bicubic), damaged and coded alone: lossless
  FFV1 (RGB) for the clean and noisy levels, one intra x264 frame as the compressed protocol codes it
  (`vsr.degradations.h264_sequence`) for the others;
- clips: the first CLIP_FRAMES frames of each Vid4 clip, downscaled per frame and coded as one inter-coded
  x264 stream (I, P and B frames, with x264's macroblock tree), as the video protocol codes them.
`vsr.media.assess` measures each file as it measures a user's, and every candidate chain upscales the
decoded frames, scored in Y-PSNR against the clean HR (shaved by the scale) beside bicubic. The means per
level go into the manifest's "auto" table.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vsr.backends import Backend
from vsr.backends.options import BackendOptions, OpenVinoOptions, OrtOptions
from vsr.backends.select import installed, open_backend
from vsr.degradations import Damage, codec_file, coded_clip, decode_clip
from vsr.evaluate import (
    Predictor,
    bicubic_predictor,
    evaluate_sr,
    evaluate_video_sr,
    load_eval_clips,
    load_eval_images,
    mean_scores,
)
from vsr.files import atomic_write
from vsr.imresize import imresize
from vsr.media.assess import assess
from vsr.metrics import modcrop
from vsr.models.artefacts import MANIFEST, ShippedModel, shipped_models
from vsr.models.auto import DEFAULT_MODELS, Candidate, candidates

SETS = ("Set5", "Set14")
CLIPS = "Vid4"
CLIP_FRAMES = 8  # an I-frame and its P and B frames: enough to show how x264 spends its bits
STILL_LEVELS = (
    "clean",
    "noise:sigma=5",
    "noise:sigma=10",
    "noise:sigma=15",
    "noise:sigma=25",
    "h264:crf=0",
    "h264:crf=18",
    "h264:crf=23",
    "h264:crf=28",
    "h264:crf=33",
    "h264:crf=38",
)
# The DVD and tape-era codecs at fixed qscales, as DVDs (3-8) and starved MPEG-4 Part 2 files code them.
CLIP_LEVELS = ("h264:crf=18", "h264:crf=23", "h264:crf=28", "h264:crf=33", "h264:crf=38",
               "mpeg2:q=3", "mpeg2:q=6", "mpeg2:q=10", "mpeg4:q=4", "mpeg4:q=8", "mpeg4:q=14")  # fmt: skip
# Soft twins of some levels: the same damage after a Gaussian blur of the HR by half an LR pixel (σ 1.0
# at ×2), the softness of tape and old optics; auto tells them from their sharp twins by softness.
SOFT_STILLS = ("clean", "h264:crf=23", "h264:crf=28")
SOFT_CLIPS = ("h264:crf=28", "mpeg2:q=6")
Clips = list[list[np.ndarray]]


def soft(level: str, scale: int) -> str:
    """The soft twin of `level` at `scale`: "blur:sigma=1.0,h264:crf=28" (the HR blurred by half an LR
    pixel); "blur:sigma=1.0" for clean."""
    blur = f"blur:sigma={scale / 2:.1f}"
    return blur if level == "clean" else f"{blur},{level}"


def levels_of(scale: int) -> list[tuple[str, str]]:
    """The calibrated levels of `scale`, (damage, source) in the table's order: each sharp level, then the
    soft twins."""
    return [
        *((lv, "stills") for lv in STILL_LEVELS),
        *((lv, "clips") for lv in CLIP_LEVELS),
        *((soft(lv, scale), "stills") for lv in SOFT_STILLS),
        *((soft(lv, scale), "clips") for lv in SOFT_CLIPS),
    ]


Clips = list[list[np.ndarray]]
SCALES = DEFAULT_MODELS  # every scale, with the cascade a scale without one model is candidate through


def source_file(level: str, lrs: list[np.ndarray], index: int) -> bytes:
    """The file a source damaged to `level` would be: the RGB uint8 frames `lrs` (of the HR already
    softened, for a soft level) noised (seeded by `index`) or coded."""
    damage = Damage.parse(level)
    if damage.codec is not None:
        return codec_file(lrs, *damage.codec)
    if damage.apply is not None:
        lrs = [damage.apply(lr, index) for lr in lrs]
    return coded_clip(lrs, "ffv1", {}, pix_fmt="bgr0")


def decoded(data: bytes, like: np.ndarray) -> list[np.ndarray]:
    """The frames of a source file, cut back to the size of `like` (the coded size is even)."""
    h, w = like.shape[:2]
    return [f[:h, :w] for f in decode_clip(data)]


def _runtime() -> tuple[str, BackendOptions]:
    # OpenVINO fp32 scores the shipped graphs exactly as ONNX Runtime does (manifest, cpu_precisions), in
    # half the time.
    if installed("openvino"):
        return "openvino fp32", OpenVinoOptions(precision="fp32", cache=False)
    return "onnxruntime fp32", OrtOptions()


def chain_predictor(
    candidate: Candidate, models: dict[str, ShippedModel], options: BackendOptions
) -> tuple[Predictor, list[Backend]]:
    """A predictor running the candidate's models in turn, and the backends to close after."""
    backends = [open_backend(options, models[n]) for n in candidate.names]

    def predict(img: np.ndarray) -> np.ndarray:
        for backend in backends:
            img = backend.run(img[None])[0]
        return img

    return predict, backends


def _score(
    predict: Predictor,
    scale: int,
    stills: list[np.ndarray],
    clips: list[list[np.ndarray]],
    files: list[bytes],
) -> float:
    """Mean Y-PSNR of `predict` over every still, or every frame of every clip, decoded from `files`."""
    if clips:
        coded = iter(files)  # evaluate_video_sr damages the clips in order, one file each
        found = evaluate_video_sr(
            [(str(k), c) for k, c in enumerate(clips)],
            scale,
            predict,
            lambda lrs: decoded(next(coded), lrs[0]),
        )
    else:
        found = evaluate_sr([("", s) for s in stills], scale, predict, lambda lr, k: decoded(files[k], lr)[0])
    return round(mean_scores(found)["psnr"], 4)


def _files(name: str, source: str, scale: int, stills: list[np.ndarray], clips: Clips) -> list[bytes]:
    """The source files of one level: one per still, or one per clip."""
    sources = [[s] for s in stills] if source == "stills" else clips
    soften = Damage.parse(name).soften
    lrs = [[imresize(soften(modcrop(f, scale)), 1 / scale) for f in frames] for frames in sources]
    return [source_file(name, frames, k) for k, frames in enumerate(lrs)]


def _damage(files: list[bytes]) -> dict[str, Any]:
    """The damage columns of a level: its files measured as a user's are."""
    found = [assess(io.BytesIO(f)) for f in files]
    qps = [d.qp for d in found if d.qp is not None]
    return {
        "qp": round(float(np.mean(qps)), 2) if qps else None,
        "qp_scale": found[0].qp_scale,
        "intra": all(d.intra for d in found),
        "noise": round(float(np.mean([d.noise for d in found])), 3),
        "softness": round(float(np.mean([d.softness for d in found])), 3),
    }


def calibrate_scale(
    scale: int,
    stills: list[np.ndarray],
    clips: Clips,
    models: dict[str, ShippedModel],
    options: BackendOptions,
    known: dict[tuple[str, str], dict[str, Any]],
    log: Callable[[str], None] = lambda _m: None,
) -> list[dict[str, Any]]:
    """The "auto" rows of one scale: per level, the mean measured damage and every candidate's PSNR.
    `known` holds rows measured before, by (level, source), with only the cells still valid: a level
    with every chain known and its softness measured is kept as it is; otherwise its files are made
    again, its damage measured and only the missing chains run."""
    chains = candidates(scale, SCALES[scale], models)
    rows = []
    for name, source in levels_of(scale):
        old = known.get((name, source), {})
        done = old.get("psnr", {})
        if "softness" in old and all(c.label in done for c in chains):
            rows.append({**old, "psnr": {c.label: done[c.label] for c in chains}})
            continue
        kind = (stills, []) if source == "stills" else ([], clips)
        files = _files(name, source, scale, stills, clips)
        row = {"level": name, "source": source, **_damage(files)}
        row["bicubic"] = old.get("bicubic") or _score(bicubic_predictor(scale), scale, *kind, files)
        row["psnr"] = {}
        for chain in chains:
            if chain.label in done:
                row["psnr"][chain.label] = done[chain.label]
                continue
            predict, backends = chain_predictor(chain, models, options)
            try:
                row["psnr"][chain.label] = _score(predict, scale, *kind, files)
            finally:
                for backend in backends:
                    backend.close()
        log(f"×{scale} {name} on {source}: qp {row['qp']} noise {row['noise']} softness {row['softness']} "
            f"bicubic {row['bicubic']} {row['psnr']}")  # fmt: skip
        rows.append(row)
    return rows


def graph_hashes(models: dict[str, ShippedModel]) -> dict[str, str]:
    """The SHA-256 of each shipped model's graph: what a calibrated cell was measured with."""
    return {name: m.entry["sha256"][m.entry["onnx"]] for name, m in models.items()}


def _still_valid(
    rows: list[dict[str, Any]], recorded: dict[str, str], hashes: dict[str, str]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The rows by (level, source), without the cells of a chain whose models changed since."""

    def valid(label: str) -> bool:
        return all(recorded.get(n) == hashes.get(n) for n in Candidate.from_label(label).names)

    return {
        (r["level"], r["source"]): {**r, "psnr": {k: v for k, v in r["psnr"].items() if valid(k)}}
        for r in rows
    }


def calibrate(
    root: Path,
    data_root: Path,
    scales: list[int] | None = None,
    log: Callable[[str], None] = print,
    *,
    damage_only: bool = False,
    fresh: bool = False,
) -> dict[str, Any]:
    """Run the calibration for `scales` (default all) and write it into root's manifest as "auto".

    It measures only what the table lacks: levels added to the protocol, chains of models shipped since,
    and the chains of models whose graph changed (the table records, per scale, the hash of each graph it
    measured); `fresh` measures everything again.

    damage_only re-measures only the damage columns of the rows already there (the same files, made
    again: the stills come out bit for bit, the clips within a few hundredths of a QP, since x264's frame
    threads make its rate control vary a little from run to run) without running a chain: for a change
    to vsr.media.assess, which does not change what any chain scores."""
    images = [img for s in SETS for _n, img in load_eval_images(data_root / "sr-eval" / s)]
    stills = [img if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2) for img in images]
    clips = [frames[:CLIP_FRAMES] for _n, frames in load_eval_clips(data_root / "video-eval" / CLIPS)]
    models = shipped_models(root)
    hashes = graph_hashes(models)
    runtime, options = _runtime()
    path = root / MANIFEST
    manifest = json.loads(path.read_text())
    table = manifest.setdefault("auto", {})
    for scale in scales or list(SCALES):
        rows = table.get("scales", {}).get(str(scale), [])
        if damage_only:
            for row in rows:
                row.update(_damage(_files(row["level"], row["source"], scale, stills, clips)))
                log(f"×{scale} {row['level']} on {row['source']}: qp {row['qp']} noise {row['noise']}")
        else:
            table["protocol"] = (
                f"stills: {' + '.join(SETS)}, each image's MATLAB bicubic LR damaged and coded alone (FFV1 "
                "RGB for clean and noise, one intra x264 frame, preset medium tune psnr, for h264); clips: "
                f"the first {CLIP_FRAMES} frames of each {CLIPS} clip, LR per frame, coded as one "
                "inter-coded stream (x264 as above, MPEG-2 and MPEG-4 Part 2 at a fixed qscale, GOP 12, "
                "2 B-frames); soft levels blur the HR by a Gaussian of σ scale/2 first; measured by "
                f"vsr.media.assess; mean Y-PSNR shaved by the scale, {runtime}"
            )
            recorded = {} if fresh else table.get("hashes", {}).get(str(scale), {})
            known = _still_valid(rows, recorded, hashes)
            rows = calibrate_scale(scale, stills, clips, models, options, known, log)
            table.setdefault("scales", {})[str(scale)] = rows
            table.setdefault("hashes", {})[str(scale)] = hashes
        # Read again before writing: a model shipped meanwhile (`vsr export --run`) keeps its entry.
        current = json.loads(path.read_text())
        current["auto"] = table
        atomic_write(path, json.dumps(current, indent=1, ensure_ascii=False) + "\n")  # each scale kept
    return table
