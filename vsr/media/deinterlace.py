"""Deinterlacing with FFmpeg's bwdif, so the model never sees combed frames.

bwdif reports its output in half the input time base (a field is half a frame), so the reader adopts
that time base while deinterlacing: every timestamp stays exact, in seconds, with nothing re-derived.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Literal

import av
from av.filter import Graph

DeinterlaceMode = Literal["auto", "on", "off"]
FIELD_PARITY = {"tt": "tff", "tb": "tff", "bb": "bff", "bt": "bff"}


def wants_deinterlace(mode: DeinterlaceMode, field_order: str, flagged_interlaced: bool) -> bool:
    """auto: when the stream's field order or the first frames' flags say the source is interlaced."""
    if mode == "auto":
        return field_order in FIELD_PARITY or flagged_interlaced
    return mode == "on"


class Deinterlacer:
    """A bwdif graph for one stream: push decoded frames, get deinterlaced ones with exact pts."""

    def __init__(self, stream: av.video.stream.VideoStream, *, field_order: str, field_rate: bool) -> None:
        ctx = stream.codec_context
        self.time_base = Fraction(stream.time_base) / 2
        self._graph = Graph()
        src = self._graph.add_buffer(
            width=ctx.width,
            height=ctx.height,
            format=ctx.pix_fmt or "yuv420p",
            time_base=stream.time_base,
        )
        parity = {"tff": "0", "bff": "1"}.get(FIELD_PARITY.get(field_order, ""), "-1")
        mode = "send_field" if field_rate else "send_frame"
        # deint=all: the decision to deinterlace was made for the stream, unflagged frames included.
        bwdif = self._graph.add("bwdif", f"mode={mode}:parity={parity}:deint=all")
        sink = self._graph.add("buffersink")
        src.link_to(bwdif)
        bwdif.link_to(sink)
        self._graph.configure()

    def filter(self, frame: av.VideoFrame | None) -> Iterator[av.VideoFrame]:
        """Push one frame (None at the end) and yield what bwdif has ready, pts in self.time_base."""
        self._graph.push(frame)
        while True:
            try:
                yield self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
