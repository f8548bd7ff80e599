"""`vsr compare`: the same frames of a video through several chains and bicubic, on one HTML page.

The page is self-contained (vsr/data/compare.html, with the frames inlined as JPEG 4:4:4 at quality 95 and
every script and style in the file): it opens from a disk or an e-mail with no network. It shows a
before/after slider between any two chains, a zoom of one spot in every chain at once, the chain `auto`
chose and why, each chain's speed on these frames, and per-frame metrics: NIQE always (no reference
needed), PSNR, VMAF and ERQA against `--reference` when one is given.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from vsr.errors import BadInputError, UsageError
from vsr.files import atomic_write
from vsr.imresize import imresize
from vsr.media import VideoReader
from vsr.media.reader import Frame
from vsr.metrics import luma, psnr

TEMPLATE = Path(__file__).parent / "data" / "compare.html"
BICUBIC = "bicubic"


class Chain(AbstractContextManager, Protocol):
    """What the page needs of a loaded chain (vsr.api.Upscaler is one)."""

    name: str
    backend: str

    def __call__(self, frames: np.ndarray) -> np.ndarray: ...


class _Bicubic:
    """MATLAB bicubic as a chain: the baseline every page starts with."""

    name, backend = BICUBIC, "numpy"

    def __init__(self, scale: int) -> None:
        self.scale = scale

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([imresize(f, self.scale) for f in frames])

    def __enter__(self) -> _Bicubic:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


@dataclass(frozen=True)
class ChainResult:
    """One chain's row on the page: what ran, how fast, how it scored per frame."""

    name: str  # as asked ("auto", "compact-x2", "bicubic")
    chain: str  # what ran ("dncnn-color → compact-x2")
    backend: str
    ms_per_frame: float
    metrics: dict[str, list[float]] = field(default_factory=dict)  # per frame, in frame order


@dataclass(frozen=True)
class ComparePage:
    """What `compare_page` wrote: the page and the figures it shows."""

    path: Path
    input: str
    times: list[float]  # seconds into the input of each frame shown
    scale: int
    auto: str | None  # auto's decision in words, when "auto" was one of the chains
    chains: list[ChainResult]
    bytes: int

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "path": str(self.path)}


def parse_time(text: str) -> float:
    """Seconds from "83.5", "1:23.5" or "00:01:23.5"."""
    try:
        parts = [float(p) for p in text.split(":")]
    except ValueError:
        raise UsageError(f"--at takes seconds or [HH:]MM:SS(.s), not {text!r}") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise UsageError(f"--at takes seconds or [HH:]MM:SS(.s), not {text!r}")
    return sum(p * 60**k for k, p in enumerate(reversed(parts)))


def grab_frames(
    path: Path, times: Sequence[float] | None, count: int
) -> tuple[list[float], list[np.ndarray]]:
    """RGB frames of `path` (as the pipeline reads them: colour, deinterlacing): the first frame at or
    after each of `times`, or `count` frames spread evenly over the clip. Returns their times too."""
    with VideoReader(path) as reader:
        tb = reader.format.time_base
        first: Frame | None = next((f for f in reader.read(passthrough=False) if isinstance(f, Frame)), None)
        if first is None:
            raise BadInputError(f"{path}: no decodable video frames")
        if times is None:
            expected = reader.frames_expected
            rate = float(reader.format.frame_rate or 25)
            duration = (expected or 1) / rate
            times = [duration * (k + 0.5) / count for k in range(count)]
        shown, frames = [], []
        for t in times:
            pts = first.pts + round(t / tb)
            frame = next((f for f in reader.read(start=pts, passthrough=False) if isinstance(f, Frame)), None)
            if frame is None:
                raise UsageError(f"{path}: no frame at {t:.2f} s (the video is shorter)")
            shown.append(round(float((frame.pts - first.pts) * tb), 3))
            frames.append(frame.pixels)
    return shown, frames


def _jpeg(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95, subsampling=0)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _scores(
    outputs: list[np.ndarray], references: list[np.ndarray] | None, metrics: Sequence[str]
) -> dict[str, list[float]]:
    """Per-frame metrics of one chain's outputs: NIQE, and the full-reference ones against `references`."""
    from vsr.quality import erqa, niqe, vmaf

    scores: dict[str, list[float]] = {}
    if "niqe" in metrics:
        scores["niqe"] = [round(niqe(o), 3) for o in outputs]
    if references is not None:
        scores["psnr"] = [round(psnr(luma(o), luma(r)), 3) for o, r in zip(outputs, references, strict=True)]
        if "vmaf" in metrics:  # each frame a still: the frames shown are far apart
            scores["vmaf"] = [
                round(vmaf([o], [r])[0]["vmaf"], 2) for o, r in zip(outputs, references, strict=True)
            ]
        if "erqa" in metrics:
            scores["erqa"] = [round(erqa(o, r), 4) for o, r in zip(outputs, references, strict=True)]
    return scores


def compare_page(
    input: Path,
    out: Path,
    *,
    models: Sequence[str],
    load: Callable[[str], Chain],
    scale: int,
    times: Sequence[float] | None = None,
    frames: int = 4,
    reference: Path | None = None,
    auto: str | None = None,
    metrics: Sequence[str] = ("niqe", "vmaf", "erqa"),
) -> ComparePage:
    """Write the page for `models` (bicubic is always added first). `load(name)` opens a chain by name;
    the caller (vsr.api) resolves `auto` and the runtimes."""
    shown, lows = grab_frames(input, times, frames)
    h, w = lows[0].shape[:2]
    references = None
    if reference is not None:
        _, references = grab_frames(reference, shown, len(shown))
        if references[0].shape[:2] != (h * scale, w * scale):
            rh, rw = references[0].shape[:2]
            raise UsageError(f"--reference is {rw}×{rh}; the outputs are {w * scale}×{h * scale}")
    rows, pictures = [], {}
    for name in [BICUBIC, *(m for m in models if m != BICUBIC)]:
        with _Bicubic(scale) if name == BICUBIC else load(name) as chain:
            chain(np.stack(lows[:1]))  # warm-up: the first call builds the runtime's kernels
            t0 = time.perf_counter()
            outputs = list(chain(np.stack(lows)))
            ms = 1000 * (time.perf_counter() - t0) / len(lows)
            ran, backend = chain.name, chain.backend
        if outputs[0].shape[:2] != (h * scale, w * scale):
            raise UsageError(f"{name} upscales ×{outputs[0].shape[0] // h}, not ×{scale}")
        rows.append(ChainResult(name, ran, backend, round(ms, 1), _scores(outputs, references, metrics)))
        pictures[name] = [_jpeg(o) for o in outputs]
    data = {
        "input": input.name,
        "size": [w, h],
        "scale": scale,
        "times": shown,
        "auto": auto,
        "reference": reference.name if reference else None,
        "chains": [asdict(r) for r in rows],
        "pictures": pictures,
        "references": [_jpeg(r) for r in references] if references is not None else None,
    }
    # "</" cannot end the script element from inside a JSON string once escaped.
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    html = TEMPLATE.read_text().replace("/*VSR_DATA*/null", blob)
    atomic_write(out, html)
    return ComparePage(out, str(input), shown, scale, auto, rows, len(html.encode()))
