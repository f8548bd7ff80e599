"""Generators of small synthetic media for the tests: real encodes made with PyAV, no external files."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
from av.stream import Disposition, Stream

if TYPE_CHECKING:
    from av.container.core import Chapter

MS = Fraction(1, 1000)
VFR_STEPS_MS = (33, 50, 17, 67, 40, 25)  # irregular on purpose: a nominal rate cannot reproduce these
AUDIO_LANGUAGES = ("eng", "fra", "deu")
AUDIO_RATE = 48000

# name -> (swscale matrix id used to make the YUV, AVCOL primaries, transfer, matrix tag)
COLOURS = {
    "bt709": (1, 1, 1, 1),
    "bt601": (5, 6, 6, 6),
    "untagged": (5, 2, 2, 2),  # untagged SD is BT.601 by convention
}


@dataclass(frozen=True)
class Clip:
    """A generated clip and the video timing it was encoded with."""

    path: Path
    width: int
    height: int
    time_base: Fraction
    pts: tuple[int, ...]

    def seconds(self) -> list[Fraction]:
        """The encoded presentation times in seconds."""
        return [p * self.time_base for p in self.pts]


def picture(index: int, width: int, height: int) -> np.ndarray:
    """A moving, saturated test picture: gradients plus a box, so the encoder and the matrix both matter."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[..., 0] = (x * 255 // max(width - 1, 1) + index * 6) % 256
    rgb[..., 1] = y * 200 // max(height - 1, 1) + 20
    rgb[..., 2] = 255 - (x + y + index * 3) % 200
    top, left = height // 4, (index * 4) % max(width - 16, 1)
    rgb[top : top + 16, left : left + 16] = (230, 20, 40)
    return rgb


def make_clip(
    path: Path,
    *,
    width: int = 160,
    height: int = 120,
    frames: int = 24,
    rate: int = 24,
    vfr: bool = False,
    pix_fmt: str = "yuv420p",
    colours: str = "bt709",
    full_range: bool = False,
    sar: Fraction | None = None,
    rotation: int = 0,
    interlaced: bool = False,
    bottom_field_first: bool = False,
    audio_tracks: int = 1,
    subtitles: bool = False,
    attachment: bool = False,
    chapters: int = 0,
    keyint: int | None = None,
) -> Clip:
    """Encode a small H.264 clip (with B-frames) plus the requested audio, subtitle and attachment streams.

    keyint: the longest GOP (x264's keyint); None keeps x264's default of 250, one keyframe per clip here.
    """
    pts = _vfr_pts(frames) if vfr else tuple(round(i * 1000 / rate) for i in range(frames))
    matrix, primaries, trc, colorspace = COLOURS[colours]
    colour_range = 2 if full_range else 1
    x264 = ("bff=1" if bottom_field_first else "tff=1") if interlaced else "bframes=2"
    if keyint is not None:
        x264 += f":keyint={keyint}:min-keyint={keyint}:scenecut=0"
    srt = _write_srt(path, int(pts[-1] * MS * 1000)) if subtitles else None
    # Every stream is added before the first mux: PyAV aborts the process on streams added after the header.
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(av.open(str(path), mode="w"))
        out.metadata["title"] = "vsr fixture"
        out.metadata["comment"] = "made by tests/media_fixtures.py"
        video = out.add_stream("libx264", rate=rate, options={"preset": "superfast", "x264-params": x264})
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        # Both time bases: the encoder would otherwise rescale pts to 1/rate and round VFR away.
        video.codec_context.time_base = MS
        video.time_base = MS
        ctx = video.codec_context
        ctx.color_primaries, ctx.color_trc = primaries, trc
        ctx.colorspace, ctx.color_range = colorspace, colour_range
        if sar is not None:
            ctx.sample_aspect_ratio = sar
        if rotation:
            video.set_display_rotation(rotation)
        audios = [_add_audio(out, n) for n in range(audio_tracks)]
        subs = stack.enter_context(av.open(str(srt))) if srt else None
        sub_stream = _add_subtitle_stream(out, subs.streams.subtitles[0]) if subs else None
        if attachment:
            out.add_attachment("notes.txt", "text/plain", b"attached to the fixture\n")
        if chapters:
            out.set_chapters(_chapters(chapters, pts[-1] + 1))
        for i, p in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(picture(i, width, height), format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=matrix, dst_color_range=colour_range
            )
            frame.pts, frame.time_base = p, MS
            out.mux(video.encode(frame))
        out.mux(video.encode())
        seconds = float((pts[-1] + 40) * MS)
        for stream in audios:
            _write_tone(out, stream, seconds)
        if subs and sub_stream:
            for packet in subs.demux():
                if packet.dts is not None:
                    packet.stream = sub_stream
                    out.mux(packet)
    if srt:
        srt.unlink()
    return Clip(path=path, width=width, height=height, time_base=MS, pts=pts)


def write_frames(
    path: Path, frames: list[np.ndarray], *, codec: str, pix_fmt: str, options: dict[str, str] | None = None
) -> Path:
    """Encode (H, W, 3) uint8 RGB pictures at 25 fps, pts 0, 1, 2, …"""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25, options=options or {})
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def flip_bytes(src: Path, dst: Path, *, count: int, start: int, mask: int, seed: int) -> Path:
    """Copy `src` to `dst` with `count` bytes past offset `start`, chosen by `seed`, XORed with `mask`."""
    data = bytearray(src.read_bytes())
    rng = random.Random(seed)
    for _ in range(count):
        data[rng.randrange(start, len(data))] ^= mask
    dst.write_bytes(bytes(data))
    return dst


def make_audio_only(path: Path) -> Path:
    """An AAC-only file (no video stream)."""
    with av.open(str(path), mode="w") as out:
        _write_tone(out, _add_audio(out, 0), 0.5)
    return path


def make_zero_byte(path: Path) -> Path:
    """An empty file."""
    path.write_bytes(b"")
    return path


def make_headerless_h264(path: Path) -> Path:
    """An H.264 stream of access-unit delimiters only: FFmpeg opens it as a 0x0 video with no frames."""
    path.write_bytes(b"\x00\x00\x00\x01\x09\x10" * 20)
    return path


def make_text(path: Path) -> Path:
    """A text file (named whatever the caller likes, e.g. .mp4)."""
    path.write_text("This is not a video, just some text.\n" * 20)
    return path


def make_random(path: Path) -> Path:
    """Random bytes that no demuxer accepts."""
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 8192, dtype=np.uint8).tobytes())
    return path


def make_still_png(path: Path) -> Path:
    """A PNG image stored under `path` (e.g. a .mp4 name): FFmpeg opens it as a one-frame video."""
    png = path.with_name(path.stem + ".tmp.png")
    av.VideoFrame.from_ndarray(picture(0, 64, 48), format="rgb24").save(str(png))
    png.replace(path)
    return path


def _vfr_pts(frames: int) -> tuple[int, ...]:
    pts, t = [], 0
    for i in range(frames):
        pts.append(t)
        t += VFR_STEPS_MS[i % len(VFR_STEPS_MS)]
    return tuple(pts)


def _add_audio(out: av.container.OutputContainer, n: int) -> av.audio.stream.AudioStream:
    stream = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
    stream.metadata["language"] = AUDIO_LANGUAGES[n % len(AUDIO_LANGUAGES)]
    stream.metadata["title"] = f"Track {n + 1}"
    stream.disposition = Disposition.default if n == 0 else Disposition(0)
    return stream


def _write_tone(
    out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float
) -> None:
    samples = int(seconds * AUDIO_RATE)
    t = np.arange(samples, dtype=np.float32) / AUDIO_RATE
    tone = (0.2 * np.sin(2 * np.pi * (330 + 110 * stream.index) * t)).astype(np.float32)
    for start in range(0, samples, 1024):
        chunk = tone[start : start + 1024]
        frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        out.mux(stream.encode(frame))
    out.mux(stream.encode())


def _write_srt(path: Path, end_ms: int) -> Path:
    # PyAV cannot build subtitle packets from text directly, so a tiny .srt is demuxed and remuxed.
    srt = path.with_name(path.stem + ".srt")
    half = end_ms // 2
    cues = [(0, half, "Hello"), (half, end_ms, "World")]
    srt.write_text(
        "".join(
            f"{n}\n{_srt_time(a)} --> {_srt_time(b)}\n{text}\n\n" for n, (a, b, text) in enumerate(cues, 1)
        )
    )
    return srt


def _add_subtitle_stream(
    out: av.container.OutputContainer, template: av.subtitles.stream.SubtitleStream
) -> Stream:
    stream = out.add_stream_from_template(template)
    stream.metadata["language"] = "spa"
    stream.metadata["title"] = "Forced Spanish"
    stream.disposition = Disposition.forced
    return stream


def _srt_time(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _chapters(count: int, end_ms: int) -> list[Chapter]:
    step = end_ms // count
    return [
        {
            "id": i + 1,
            "start": i * step,
            "end": (i + 1) * step,
            "time_base": MS,
            "metadata": {"title": f"Part {i + 1}"},
        }
        for i in range(count)
    ]


def downscaled(src: Path, dst: Path, width: int, height: int) -> Path:
    """`src`'s video at width×height (area filter, x264 CRF 12), with the same timestamps: the input of an
    upscale whose master `src` is."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        video = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=video.average_rate or 24, options={"crf": "12"})
        stream.width, stream.height, stream.pix_fmt, stream.time_base = (
            width,
            height,
            "yuv420p",
            video.time_base,
        )
        for frame in inp.decode(video):
            small = frame.reformat(width=width, height=height, interpolation="AREA")
            small.pts, small.time_base = frame.pts, frame.time_base
            out.mux(stream.encode(small))
        out.mux(stream.encode(None))
    return dst
