"""Opening an input: the checks every public entry point shares, so bad input fails the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import av
from av.container import InputContainer
from av.sidedata.sidedata import SideData
from av.stream import Disposition
from av.video.stream import VideoStream

from vsr.errors import BadInputError

# Frames decoded up front to learn what only frames carry (display matrix, interlacing flags, HDR).
PEEK_FRAMES = 3
PEEK_PACKETS = 64


# Tags that are not valid UTF-8 (damaged or legacy-encoded files) are read with replacement characters:
# a strict decode would make PyAV raise while merely opening the file.
METADATA_ERRORS = "replace"


def side_data(frame: av.VideoFrame) -> Iterable[SideData]:
    """The side data a decoded frame carries. PyAV 18 made `frame.side_data` a mapping keyed by type
    (iterating it yields the keys); before, iterating yielded the side data itself."""
    found = frame.side_data
    return found.values() if isinstance(found, Mapping) else found


def open_input(path: Path) -> InputContainer:
    """Open `path` for demuxing, or raise BadInputError with a one-line reason."""
    if not path.exists():
        raise BadInputError(f"{path}: no such file")
    if path.is_dir():
        raise BadInputError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: file is empty (0 bytes)")
    try:
        return av.open(str(path), mode="r", metadata_errors=METADATA_ERRORS)
    except OSError as exc:  # before FFmpegError: av.error.PermissionError is both
        raise BadInputError(f"{path}: cannot open ({exc.strerror or exc})") from exc
    except av.error.FFmpegError as exc:
        raise BadInputError(f"{path}: not a media file FFmpeg can read ({exc.strerror})") from exc


# Decompression-bomb guard: a header may declare any size, and nothing is allocated before this check.
MAX_PIXELS = 7680 * 4320


def main_video_stream(container: InputContainer, path: Path) -> VideoStream:
    """The stream vsr processes: the largest real video stream (not cover art, not a 0x0 stream)."""
    videos = [s for s in container.streams.video if not s.disposition & Disposition.attached_pic]
    if not videos:
        kinds = sorted({s.type for s in container.streams}) or ["no streams"]
        raise BadInputError(f"{path}: no video stream (found: {', '.join(kinds)})")
    fmt = container.format.name
    # Image demuxers (png_pipe, jpeg_pipe, image2) open a still as a one-frame "video".
    if fmt.endswith("_pipe") or fmt == "image2":
        raise BadInputError(f"{path}: a still image ({fmt}), not a video")
    sized = [
        s
        for s in videos
        if s.codec_context is not None and s.codec_context.width > 0 and s.codec_context.height > 0
    ]
    if not sized:
        raise BadInputError(f"{path}: not a video (no picture size; nothing decodable)")
    stream = max(sized, key=lambda s: (s.codec_context.width * s.codec_context.height, -s.index))
    w, h = stream.codec_context.width, stream.codec_context.height
    if w * h > MAX_PIXELS:
        raise BadInputError(f"{path}: declares {w}x{h}, above the {MAX_PIXELS:,}-pixel limit (8K UHD)")
    return stream


def tag_rotation(stream: VideoStream) -> int:
    """The legacy `rotate` tag of a stream in degrees, 0 when absent or unreadable."""
    try:
        return int(float(stream.metadata.get("rotate", "0"))) % 360
    except ValueError:
        return 0
