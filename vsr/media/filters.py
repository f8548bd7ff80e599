"""FFmpeg filters run on single RGB pictures through PyAV's filter graph."""

from __future__ import annotations

from fractions import Fraction

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
