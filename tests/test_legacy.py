"""Legacy and tiny sources (BAD-INPUTS #24, #13): H.263 at QCIF, MPEG-4 ASP in AVI, MPEG-2 in MPEG-PS
(progressive, and interlaced 576i), MJPEG (full-range yuvj) and PAL DV, each generated here and upscaled
end to end; the interlaced ones (DV, 576i MPEG-2) are detected and deinterlaced."""

from __future__ import annotations

import json
from pathlib import Path

import av
import media_fixtures as mf
import numpy as np
import pytest

from vsr.cli import main

CASES = {  # name: (file, encoder, width, height, pix_fmt, encoder options, interlaced)
    "h263 qcif": ("clip.3gp", "h263", 176, 144, "yuv420p", {}, False),
    "mpeg4 asp avi": ("clip.avi", "mpeg4", 320, 240, "yuv420p", {}, False),
    "mpeg2 ps": ("clip.mpg", "mpeg2video", 352, 288, "yuv420p", {}, False),
    "mpeg2 576i": ("clip.mpg", "mpeg2video", 720, 576, "yuv420p", {"flags": "+ilme+ildct"}, True),
    "mjpeg full range": ("clip.avi", "mjpeg", 160, 120, "yuvj420p", {}, False),
    "pal dv": ("clip.dv", "dvvideo", 720, 576, "yuv420p", {}, True),
}
FRAMES = 6


def _make(path: Path, codec: str, width: int, height: int, pix_fmt: str, options: dict[str, str]) -> Path:
    y, x = np.mgrid[0:height, 0:width]
    waves = [
        np.stack(
            [128 + 100 * np.sin(x / 9 + i), 128 + 90 * np.cos(y / 7 - i), 128 + 60 * np.sin((x + y) / 11)], -1
        )
        for i in range(FRAMES)
    ]
    return mf.write_frames(
        path, [w.astype(np.uint8) for w in waves], codec=codec, pix_fmt=pix_fmt, options=options
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_legacy_source_upscales(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name, codec, width, height, pix_fmt, options, interlaced = CASES[case]
    src = _make(tmp_path / name, codec, width, height, pix_fmt, options)
    out = tmp_path / "o.mkv"
    assert main(["upscale", str(src), str(out), "--preset", "ultrafast", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["output_size"] == [2 * width, 2 * height]
    assert report["frames"] == report["frames_in"] == FRAMES and report["duration_difference_s"] == 0.0
    assert report["deinterlaced"] is interlaced
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == FRAMES
    # The picture survives: the output, shrunk back, resembles the source (not black, not noise).
    with av.open(str(src)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    small = frames[0].reformat(width=width, height=height, format="rgb24").to_ndarray().astype(int)
    assert np.abs(small - first).mean() < 12
