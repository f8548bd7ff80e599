"""Degradations of clean RGB images: blur, Gaussian noise, real JPEG, H.264, MPEG-2 and MPEG-4 Part 2.

Evaluation scores a restorer on them and training learns to undo them; numpy, Pillow and PyAV only.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from vsr.errors import UsageError


def add_gaussian_noise(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Clean uint8 + N(0, σ²) noise with a fixed seed, rounded and clipped to uint8 (what a model sees)."""
    rng = np.random.default_rng(seed)
    noisy = img.astype(np.float64) + rng.normal(0.0, sigma, img.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip RGB uint8 through Pillow's standard JPEG encoder (4:2:0, as video is) at `quality`."""
    try:
        from PIL import Image
    except ImportError:
        raise UsageError("JPEG degradation uses Pillow's encoder: pip install pillow") from None
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def h264(img: np.ndarray, crf: int) -> np.ndarray:
    """Round-trip RGB uint8 through libx264 (one intra frame, 4:2:0, BT.601 limited range) at `crf`."""
    return h264_sequence([img], crf)[0]


# The x264 settings of the compressed protocol (the CRF is the level).
H264_OPTIONS = {"preset": "medium", "tune": "psnr"}


def h264_sequence(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """Round-trip a sequence of RGB uint8 frames through libx264 at `crf` (preset medium, tune psnr, its
    default GOP with B-frames, 4:2:0, BT.601 limited range): after the first, frames are inter-predicted,
    as in any real file."""
    return codec_sequence(frames, "h264", crf)


# The codecs a damage names, with the encoder options of a level: x264's CRF; for the DVD and tape-era
# codecs (MPEG-2, MPEG-4 Part 2) a fixed qscale (DVD bit rates put SD material at qscale 3-8) in GOPs of
# 12 with 2 B-frames, as DVD authoring codes them.
CODECS: dict[str, tuple[str, Callable[[int], dict[str, str]]]] = {
    "h264": ("libx264", lambda crf: {**H264_OPTIONS, "crf": str(crf)}),
    "mpeg2": ("mpeg2video", lambda q: {"qmin": str(q), "qmax": str(q), "g": "12", "bf": "2"}),
    "mpeg4": ("mpeg4", lambda q: {"qmin": str(q), "qmax": str(q), "g": "12", "bf": "2"}),
}


def codec_file(frames: list[np.ndarray], kind: str, level: int) -> bytes:
    """RGB uint8 frames coded as one stream by the codec `kind` names ("h264", "mpeg2", "mpeg4") at
    `level` (CRF or qscale): the file itself."""
    codec, options = CODECS[kind]
    return coded_clip(frames, codec, options(level))


def codec_sequence(frames: list[np.ndarray], kind: str, level: int) -> list[np.ndarray]:
    """Round-trip RGB uint8 frames through the codec `kind` names at `level`, cut back to their size."""
    h, w = frames[0].shape[:2]
    return [f[:h, :w] for f in decode_clip(codec_file(frames, kind, level))]


def coded_clip(
    frames: list[np.ndarray], codec: str, options: dict[str, str], pix_fmt: str = "yuv420p"
) -> bytes:
    """RGB uint8 frames coded by `codec` (in `pix_fmt`, 25 fps) into a Matroska file in memory: the very
    file a user would have, so the source assessment of `--model auto` can be calibrated on it."""
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, pix_fmt  # 4:2:0 wants even sizes
        stream.time_base = Fraction(1, 25)
        stream.options = options
        for i, img in enumerate(frames):
            even = np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame.reformat(format=pix_fmt)))
        container.mux(stream.encode(None))
    return buf.getvalue()


def decode_clip(data: bytes) -> list[np.ndarray]:
    """Every frame of a coded clip as RGB uint8, in presentation order (still at the coded, even size)."""
    with av.open(io.BytesIO(data)) as container:
        return [np.ascontiguousarray(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


# A soft tape-like source ("tape"): an analogue transfer's softness and noise, then a DVD's MPEG-2. The HR is
# blurred by σ 1.5 before the downscale; the LR gets Gaussian noise of σ 5 (each frame its own) and is
# coded by MPEG-2 at a fixed qscale of 6 (DVD bit rates put SD material at qscale 3-8), GOP 12, 2 B-frames.
TAPE_BLUR, TAPE_NOISE, TAPE_QSCALE = 1.5, 5.0, 6


def tape_sequence(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The LR frames of a tape-like source: each frame's noise (seeded by its index), one MPEG-2 stream."""
    noisy = [add_gaussian_noise(f, TAPE_NOISE, k) for k, f in enumerate(frames)]
    return codec_sequence(noisy, "mpeg2", TAPE_QSCALE)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """`img` (uint8, (H, W) or (H, W, C)) blurred by a Gaussian of `sigma` pixels as MATLAB's imgaussfilt
    does by default (a 2·ceil(2σ)+1 kernel, edges replicated), rounded back to uint8: the soft source that
    tape and old optics leave, made before the downscale."""
    r = int(np.ceil(2 * sigma))
    taps = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    taps /= taps.sum()
    x = img.astype(np.float64)
    for axis in (0, 1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        padded = np.pad(x, pad, mode="edge")
        x = sum(w * np.take(padded, range(k, k + img.shape[axis]), axis=axis) for k, w in enumerate(taps))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _tape_still(img: np.ndarray, index: int) -> np.ndarray:
    """One still as a tape-like source: its noise seeded by its index, coded as an MPEG-2 keyframe."""
    return codec_sequence([add_gaussian_noise(img, TAPE_NOISE, index)], "mpeg2", TAPE_QSCALE)[0]


def jpeg_degrade(quality: int) -> Callable[[np.ndarray, int], np.ndarray]:
    """The JPEG degradation at `quality`, in evaluate_denoise's form."""
    return lambda img, _index: jpeg(img, quality)


def noise_degrade(sigma: float) -> Callable[[np.ndarray, int], np.ndarray]:
    """Gaussian noise of σ (on 0..255) with the image index as seed, rounded to uint8."""
    return lambda img, index: add_gaussian_noise(img, sigma, index)


def h264_degrade(crf: int) -> Callable[[np.ndarray, int], np.ndarray]:
    """The intra H.264 degradation at `crf`, in evaluate_denoise's form."""
    return lambda img, _index: h264(img, crf)


def codec_degrade(kind: str) -> Callable[[int], Callable[[np.ndarray, int], np.ndarray]]:
    """A codec's still degradation at a level (one keyframe), in evaluate_denoise's form."""
    return lambda level: lambda img, _index: codec_sequence([img], kind, level)[0]


@dataclass(frozen=True)
class Damage:
    """A named degradation of an image, as `vsr eval --degrade` takes it: "clean", "h264:crf=28",
    "mpeg2:q=6", "mpeg4:q=8", "jpeg:q=30", "noise:sigma=15", each optionally after a soft source,
    "blur:sigma=1.0,h264:crf=23"; or "tape", a soft tape-like source on DVD (TAPE_BLUR, TAPE_NOISE,
    TAPE_QSCALE)."""

    spec: str
    apply: Callable[[np.ndarray, int], np.ndarray] | None  # (LR image, index) → degraded; None: clean
    blur: float = 0.0  # Gaussian σ applied to the HR before the downscale (gaussian_blur); 0: none

    def soften(self, hr: np.ndarray) -> np.ndarray:
        """The HR as the source had it before the downscale: blurred by `blur`, or unchanged."""
        return gaussian_blur(hr, self.blur) if self.blur else hr

    def sequence(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Damage the frames of a clip: H.264 codes them as one inter-predicted stream, JPEG and noise
        each frame alone (noise seeded by the frame's index)."""
        if self.apply is None:
            return frames
        if self.spec == "tape":
            return tape_sequence(frames)
        if codec := self.codec:
            return codec_sequence(frames, *codec)
        return [self.apply(f, i) for i, f in enumerate(frames)]

    @property
    def codec(self) -> tuple[str, int] | None:
        """("h264", 28) for a damage that ends in a video codec (CODECS) at a level; None otherwise."""
        kind, _, setting = self.spec.rsplit(",", 1)[-1].partition(":")
        return (kind, int(setting.partition("=")[2])) if kind in CODECS else None

    @classmethod
    def parse(cls, spec: str) -> Damage:
        """The degradation a spec names; UsageError listing the forms otherwise."""
        if spec == "tape":
            return cls(spec, _tape_still, TAPE_BLUR)
        first, _, rest = spec.partition(",")
        if first.startswith("blur:"):
            blur = cls._one(first)
            lr = cls._one(rest) if rest else cls("clean", None)
            if lr.blur:
                raise UsageError(
                    f"{spec!r}: one blur, first, then at most one of h264, mpeg2, mpeg4, jpeg or noise"
                )
            return cls(spec, lr.apply, blur.blur)
        if rest:
            raise UsageError(f"{spec!r}: a blur comes first (blur:sigma=S,h264:crf=N); one damage after it")
        return cls._one(spec)

    @classmethod
    def _one(cls, spec: str) -> Damage:
        kinds = {"h264": ("crf", 0, 51, h264_degrade), "mpeg2": ("q", 1, 31, codec_degrade("mpeg2")),
                 "mpeg4": ("q", 1, 31, codec_degrade("mpeg4")), "jpeg": ("q", 1, 100, jpeg_degrade),
                 "noise": ("sigma", 0, 255, noise_degrade), "blur": ("sigma", 0.1, 10, None)}  # fmt: skip
        if spec == "clean":
            return cls(spec, None)
        kind, _, setting = spec.partition(":")
        key, _, value = setting.partition("=")
        if kind not in kinds or key != kinds[kind][0]:
            raise UsageError(
                f"unknown degradation {spec!r}; use clean, h264:crf=N, mpeg2:q=N, mpeg4:q=N, jpeg:q=N or "
                "noise:sigma=N, optionally after blur:sigma=S (blur:sigma=1.0,h264:crf=23), or tape"
            )
        _, low, high, make = kinds[kind]
        try:
            level = float(value) if kind in ("noise", "blur") else int(value)
        except ValueError:
            raise UsageError(f"{spec!r}: {key} takes a number") from None
        if not low <= level <= high:
            raise UsageError(f"{spec!r}: {key} must lie in {low}..{high}")
        if kind == "blur":
            return cls(spec, None, float(level))
        return cls(spec, make(level))  # type: ignore[operator]
