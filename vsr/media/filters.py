"""FFmpeg filters through PyAV's filter graph: on single RGB pictures, and the letterbox for size changes."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import numpy as np
from av.filter import Graph


def run_filter(rgb: np.ndarray, chain: list[tuple[str, str]]) -> np.ndarray:
    """Apply a linear chain of (filter, arguments) to an (H, W, 3) uint8 RGB picture."""
    graph = Graph()
    src = graph.add_buffer(width=rgb.shape[1], height=rgb.shape[0], format="rgb24", time_base=Fraction(1, 25))
    nodes = [graph.add(name, args) for name, args in chain]
    nodes += [graph.add("format", "rgb24"), graph.add("buffersink")]
    prev = src
    for node in nodes:
        prev.link_to(node)
        prev = node
    graph.configure()
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    frame.pts = 0
    src.push(frame)
    return nodes[-1].pull().to_ndarray()


def nlmeans(rgb: np.ndarray, strength: float) -> np.ndarray:
    """FFmpeg's non-local means denoiser (on YUV 4:4:4, as it runs on video) with strength s."""
    return run_filter(rgb, [("format", "yuv444p"), ("nlmeans", f"s={strength}")])


class Letterbox:
    """Fits pictures of another size into (width, height): scaled to fit, centred on black, aspect kept.

    For streams whose picture size changes mid-stream (spliced broadcasts, concatenated files): the job's
    output keeps its first size, and no frame is distorted or dropped.
    """

    def __init__(self, width: int, height: int) -> None:
        self.size = (width, height)
        self._graphs: dict[tuple[int, int, str], tuple[Graph, av.filter.context.FilterContext, Any]] = {}

    def fit(self, picture: av.VideoFrame) -> av.VideoFrame:
        """The picture letterboxed (or pillarboxed) to the target size, same pixel format and pts."""
        key = (picture.width, picture.height, picture.format.name)
        if key not in self._graphs:
            w, h = self.size
            graph = Graph()
            src = graph.add_buffer(
                width=picture.width,
                height=picture.height,
                format=picture.format.name,
                time_base=Fraction(1, 1),
            )
            chain = [
                graph.add("scale", f"w={w}:h={h}:force_original_aspect_ratio=decrease:force_divisible_by=2"),
                graph.add("pad", f"{w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black"),
                graph.add("format", picture.format.name),
                graph.add("buffersink"),
            ]
            prev = src
            for node in chain:
                prev.link_to(node)
                prev = node
            graph.configure()
            self._graphs[key] = (graph, src, chain[-1])
        _graph, src, sink = self._graphs[key]
        pts, time_base = picture.pts, picture.time_base
        picture.pts = 0  # the graph needs no timing; the picture's own is put back on the result
        src.push(picture)
        out = sink.pull()
        out.pts = pts
        if time_base is not None:
            out.time_base = time_base
        return out
