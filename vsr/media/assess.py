"""How damaged a source is, measured before a model is chosen (`--model auto`).

Measured on windows of 8 frames decoded from 6 evenly spaced seeks (so a long file costs no more than a
short one):
- the quantiser the encoder used, where the decoder exports it (H.264, MPEG-2, MPEG-4 Part 2, VP9,
  through FFmpeg's video encoding parameters): the mean QP of the frames' blocks, I, P and B frames alike,
  because an encoder spends its bits unevenly (x264's macroblock tree gives a CRF 28 stream's keyframes QP
  26 and its B-frames QP 33) and the model sees every frame;
- whether every frame measured was intra-coded: a still or an intra-only codec is damaged differently from
  an inter-coded stream at the same QP, and is calibrated apart;
- a noise estimate on their luma (Immerkær's Laplacian-difference estimator in the flattest tenth of 8×8
  blocks, so that texture is not taken for noise);
- softness, so that a soft tape transfer is not taken for clean because its noise is low: Crété-Roffet
  et al.'s no-reference blur measure (2007) on the luma, 0 for sharp to 1 for blurred: the share of the
  neighbouring-pixel differences that survive a 9-tap box re-blur (a sharp picture loses most of its
  variation to the re-blur, an already soft one little), the worse of the two directions;
- bits per pixel per frame, from the stream's or the container's bit rate (reported, not used to choose:
  it depends on the picture as much as on the damage).
Softness is measured and reported; `auto` chooses by it once the calibration holds soft levels. On
Set14's ×2 LR, clean pictures read 0.20-0.37 and the same pictures blurred by σ 1.5 before the downscale
0.31-0.49: it rises with the blur for every picture, but content moves it as much, so it is one measure
beside the others, never a verdict alone.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import av
import numpy as np
from av.container import InputContainer
from av.sidedata.encparams import VideoEncParams, VideoEncParamsType
from av.video.frame import PictureType
from av.video.stream import VideoStream

from vsr.errors import BadInputError
from vsr.media._input import main_video_stream, open_input, side_data

SAMPLES, WINDOW = 6, 8  # windows of 8 frames from 6 evenly spaced seeks; a short file has fewer
# No new window starts after this many seconds: a file without a seek index (Matroska without cues) can make
# each seek a scan from the start, and the measurement must stay a small part of the job.
BUDGET_SECONDS = 5.0
NOISE_CROP = 1024  # the noise estimate runs on the centre of larger frames: as good, and bounded in time
# The noise estimate keeps the flattest tenth of 8×8 blocks: on Set5 and Set14 LR this tells clean
# pictures (at most 2.3) from σ 5 noise (at least 1.6 on luma) where the whole-picture estimator, edges left
# out, confused them (clean up to 6.2, σ 5 from 3.2). On pure Gaussian noise that tenth sits at 0.80 σ
# (measured for σ 2..20), which NOISE_BIAS takes out.
NOISE_BLOCK, NOISE_QUANTILE, NOISE_BIAS = 8, 0.1, 0.80
SOFT_TAPS = 9  # the re-blur of the softness measure (Crété-Roffet et al.'s)

# Which quantiser scale a codec's QP is on: H.264's logarithmic 0..51; the linear scale of MPEG-2 and the
# MPEG-4 Part 2 family (FFmpeg exports a 1..31 qscale doubled, on MPEG-2's 2..62 scale); VP9's qindex
# 0..255. HEVC and AV1 (dav1d) export none: such sources are judged on their noise.
QP_SCALES = {VideoEncParamsType.H264: "h264", VideoEncParamsType.MPEG2: "mpeg", VideoEncParamsType.VP9: "vp9"}


@dataclass(frozen=True)
class SourceDamage:
    """What `assess` measured: the codec, its quantiser (None where not exposed), noise σ on 0..255 luma,
    bits per pixel per frame (None where no bit rate is known), whether every frame was intra-coded, and
    how many frames were measured."""

    codec: str
    qp: float | None
    qp_scale: str | None  # "h264", "mpeg" or "vp9"
    noise: float
    bpp: float | None
    intra: bool  # every frame measured was intra-coded (a still, or an intra-only codec)
    frames: int
    softness: float = 0.0  # Crété-Roffet blur, 0 sharp .. 1 blurred (median of the frames measured)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line: "h264, QP 27.9, noise σ 1.4, softness 0.31, 0.21 bits/pixel"."""
        parts = [self.codec]
        if self.qp is not None:
            parts.append(f"QP {self.qp:.1f}" if self.qp_scale == "h264" else f"qscale {self.qp:.1f}")
        parts.append(f"noise σ {self.noise:.2f}")
        parts.append(f"softness {self.softness:.2f}")
        if self.bpp is not None:
            parts.append(f"{self.bpp:.3f} bits/pixel")
        return ", ".join(parts)


def noise_sigma(y: np.ndarray) -> float:
    """Noise σ of a luma plane (on 0..255): Immerkær's estimator in the flattest blocks of the picture."""
    h, w = y.shape
    top, left = max(0, (h - NOISE_CROP) // 2), max(0, (w - NOISE_CROP) // 2)
    y = y[top : top + NOISE_CROP, left : left + NOISE_CROP].astype(np.float32)
    if min(y.shape) < NOISE_BLOCK + 2:
        return 0.0
    # The 3×3 kernel [1 -2 1; -2 4 -2; 1 -2 1] is blind to planes and ramps: what it sees is noise, and
    # texture. Texture is left out by keeping the blocks where it sees least.
    rows = y[:, :-2] - 2 * y[:, 1:-1] + y[:, 2:]
    lap = np.abs(rows[:-2] - 2 * rows[1:-1] + rows[2:])
    bh, bw = lap.shape[0] // NOISE_BLOCK, lap.shape[1] // NOISE_BLOCK
    blocks = (
        lap[: bh * NOISE_BLOCK, : bw * NOISE_BLOCK]
        .reshape(bh, NOISE_BLOCK, bw, NOISE_BLOCK)
        .mean(axis=(1, 3))
    )
    flat = float(np.quantile(blocks, NOISE_QUANTILE))
    return math.sqrt(math.pi / 2) * flat / 6 / NOISE_BIAS


def _box(x: np.ndarray, axis: int, taps: int = SOFT_TAPS) -> np.ndarray:
    """A `taps`-wide moving average along `axis`, edges replicated (same size)."""
    r = taps // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (r + 1, r)
    c = np.cumsum(np.pad(x, pad, mode="edge"), axis=axis, dtype=np.float64)
    n = x.shape[axis]
    upper = np.take(c, range(taps, taps + n), axis=axis)
    lower = np.take(c, range(n), axis=axis)
    return (upper - lower) / taps


def softness(y: np.ndarray) -> float:
    """Crété-Roffet's blur measure of a luma plane: 0 (sharp) .. 1 (blurred); 1 for a flat picture."""
    h, w = y.shape
    top, left = max(0, (h - NOISE_CROP) // 2), max(0, (w - NOISE_CROP) // 2)
    f = y[top : top + NOISE_CROP, left : left + NOISE_CROP].astype(np.float64)
    blur = 0.0
    for axis in (0, 1):
        d_f = np.abs(np.diff(f, axis=axis))
        d_b = np.abs(np.diff(_box(f, axis), axis=axis))
        total = d_f.sum()
        if total <= 0:
            return 1.0
        blur = max(blur, float((total - np.maximum(0.0, d_f - d_b).sum()) / total))
    return blur


def _qp(frame: av.VideoFrame) -> tuple[float, str] | None:
    """The mean quantiser of a frame's blocks, weighted by their area, and the scale it is on.

    Read straight from the side data's AVVideoBlockParams array (src_x, src_y, w, h, delta_qp: five int32):
    PyAV's qp_map() refuses field-coded (interlaced) frames, whose blocks do not tile the frame."""
    for data in side_data(frame):
        if isinstance(data, VideoEncParams) and (scale := QP_SCALES.get(data.codec_type)):
            raw = memoryview(data)
            end = data.blocks_offset + data.nb_blocks * data.block_size
            if not data.nb_blocks or data.block_size < 20 or data.block_size % 4 or end > len(raw):
                return float(data.qp), scale  # no blocks, or a layout we do not know: the frame's base QP
            ints = np.frombuffer(
                raw, dtype=np.int32, count=(end - data.blocks_offset) // 4, offset=data.blocks_offset
            )
            blocks = ints.reshape(data.nb_blocks, -1)
            area = blocks[:, 2].astype(np.float64) * blocks[:, 3]
            if area.sum() <= 0:
                return float(data.qp), scale
            return float(data.qp + np.average(blocks[:, 4], weights=area)), scale
    return None


def _luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.reformat(format="gray16le" if frame.format.components[0].bits > 8 else "gray")
    y = plane.to_ndarray()
    return y / 257.0 if y.dtype == np.uint16 else y


@dataclass(frozen=True)
class _FrameDamage:
    qp: tuple[float, str] | None
    noise: float
    intra: bool
    softness: float


def _measure(frame: av.VideoFrame) -> _FrameDamage:
    y = _luma(frame)
    return _FrameDamage(_qp(frame), noise_sigma(y), frame.pict_type == PictureType.I, softness(y))


def _windows(container: InputContainer, stream: VideoStream) -> list[_FrameDamage]:
    """Each frame of WINDOW frames from each of SAMPLES evenly spaced seeks (one window from the start
    where the file has no duration), measured as it is decoded so no picture is kept; each window starts
    at a keyframe, and no window starts once BUDGET_SECONDS have run out."""
    stream.codec_context.options = {"export_side_data": "venc_params"}
    duration = container.duration  # AV_TIME_BASE units; None for a stream without one
    starts = sorted({duration * k // SAMPLES for k in range(SAMPLES)}) if duration else [0]
    found: dict[int, _FrameDamage] = {}
    began = time.monotonic()
    for start in starts:
        if found and time.monotonic() - began > BUDGET_SECONDS:
            break
        try:
            if start:
                container.seek(start, backward=True)
                stream.codec_context.flush_buffers()
            for k, frame in enumerate(container.decode(stream)):
                key = frame.pts if frame.pts is not None else len(found)
                if key not in found:  # windows that land on the same keyframe overlap
                    found[key] = _measure(frame)
                if k + 1 >= WINDOW:
                    break
        except av.error.FFmpegError:
            continue  # an unseekable or damaged stretch: the other windows still count
    return list(found.values())


def assess(source: str | Path | BinaryIO) -> SourceDamage:
    """Measure the damage of a video file (or an open binary file): quantiser, noise, bits per pixel."""
    path = Path(source) if isinstance(source, str | Path) else Path("<stream>")
    container = open_input(path) if isinstance(source, str | Path) else av.open(source)
    with container:
        stream = main_video_stream(container, path)
        frames = _windows(container, stream)
        if not frames:
            raise BadInputError(f"{path}: no frame could be decoded")
        qps = [f.qp for f in frames if f.qp is not None]
        noise = float(np.median([f.noise for f in frames]))
        intra = all(f.intra for f in frames)
        ctx = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        bit_rate = stream.bit_rate or container.bit_rate
        bpp = bit_rate / (float(rate) * ctx.width * ctx.height) if bit_rate and rate else None
        return SourceDamage(
            codec=ctx.name,
            qp=float(np.mean([q for q, _ in qps])) if qps else None,
            qp_scale=qps[0][1] if qps else None,
            noise=round(noise, 3),
            bpp=round(bpp, 4) if bpp else None,
            intra=intra,
            frames=len(frames),
            softness=round(float(np.median([f.softness for f in frames])), 3),
        )
