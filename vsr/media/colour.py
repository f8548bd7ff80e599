"""FFmpeg colour enums and pixel formats: names for reports, bit depths, and the one matrix/range choice that
reader and writer share."""

from __future__ import annotations

import re
from fractions import Fraction

import av
import av.filter
import av.logging
from av.video.format import VideoFormat as PixelFormat
from av.video.reformatter import Colorspace

# av_color_*_name() of FFmpeg, keyed by the AVCOL_* ints PyAV exposes on codec contexts and frames.
PRIMARIES = {
    1: "bt709", 2: "unknown", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}  # fmt: skip
TRANSFERS = {
    1: "bt709", 2: "unknown", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1", 14: "bt2020-10",
    15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}  # fmt: skip
MATRICES = {
    0: "gbr", 1: "bt709", 2: "unknown", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 14: "ictcp",
}  # fmt: skip
RANGES = {0: "unknown", 1: "tv", 2: "pc"}
# av_chroma_location_name() of FFmpeg, keyed by AVCHROMA_LOC_*: where a subsampled chroma sample sits.
CHROMA_LOCATIONS = {
    0: "unspecified",
    1: "left",
    2: "center",
    3: "topleft",
    4: "top",
    5: "bottomleft",
    6: "bottom",
}
CHROMA_LEFT = 1  # MPEG-2, H.264 and HEVC 4:2:0 when the stream says nothing (what swscale assumes)


def chroma_location(frame: av.VideoFrame) -> int:
    """The decoder's AVCHROMA_LOC_* of `frame`, which PyAV does not expose: FFmpeg's showinfo filter
    prints it ("cl:topleft"), so one frame is run through it with FFmpeg's log captured. 0 when unknown."""
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, 25)
    )
    show, sink = graph.add("showinfo"), graph.add("buffersink")
    source.link_to(show)
    show.link_to(sink)
    graph.configure()
    level = av.logging.get_level()
    av.logging.set_level(av.logging.INFO)
    try:
        with av.logging.Capture(local=False) as logs:
            graph.push(frame)
            graph.pull()
    finally:
        av.logging.set_level(level)
    names = {v: k for k, v in CHROMA_LOCATIONS.items()}
    for _level, name, message in logs:
        if name == "showinfo" and (match := re.search(r"\bcl:(\w+)", message)):
            return names.get(match.group(1), 0)
    return 0


BT709 = 1
SMPTE170M = 6  # the BT.601 matrix as SD sources tag it
RANGE_LIMITED = 1
RANGE_FULL = 2

# swscale takes SWS_CS_* ids, not AVCOL_SPC_* ids; they differ for BT.601 (5 vs 5/6) and BT.2020 CL.
_SWS_MATRIX = {
    1: Colorspace.ITU709,
    4: Colorspace.FCC,
    5: Colorspace.ITU601,
    6: Colorspace.ITU601,
    7: Colorspace.SMPTE240M,
    9: Colorspace.BT2020,
    10: Colorspace.BT2020,
}


def name(table: dict[int, str], value: int) -> str:
    """The FFmpeg name of a colour enum value, or the number itself when FFmpeg has none."""
    return table.get(value, str(value))


def resolve_matrix(colorspace: int, height: int) -> int:
    """The AVCOL_SPC matrix to convert with: the tag when usable, else BT.709 for HD and BT.601 for SD."""
    if colorspace in _SWS_MATRIX:
        return colorspace
    # The convention of players (mpv, browsers) for untagged video: decide by picture height.
    return BT709 if height >= 720 else SMPTE170M


def resolve_range(color_range: int, pix_fmt: str) -> int:
    """The AVCOL_RANGE to convert with: the tag when set, else full for yuvj* and limited otherwise."""
    if color_range in (RANGE_LIMITED, RANGE_FULL):
        return color_range
    return RANGE_FULL if pix_fmt.startswith("yuvj") else RANGE_LIMITED


def sws_matrix(colorspace: int) -> int:
    """The swscale id (SWS_CS_*) of a resolved AVCOL_SPC matrix."""
    return int(_SWS_MATRIX[colorspace])


def bit_depth(pix_fmt: str) -> int:
    """Bits of the deepest component of an FFmpeg pixel format (8 for yuv420p, 10 for yuv420p10le)."""
    return max(c.bits for c in PixelFormat(pix_fmt).components)
