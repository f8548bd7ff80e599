"""The remaining cases of ../shared/docs/BAD-INPUTS.md, each with a fixture generated here: lying
extensions, mp4 without its index, cut transport streams, broken codec config, fake extra tracks and the
33-bit timestamp wrap of MPEG-TS."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import media_fixtures as mf
import numpy as np
import pytest

from vsr.cli import main

FAST = ["--preset", "ultrafast", "--json"]


def _ts(path: Path, *, frames: int = 25, start: int = 0, empty_audio: bool = False) -> Path:
    """H.264 in MPEG-TS (90 kHz), pts from `start`; optionally an audio track that never gets a packet."""
    with av.open(str(path), "w", format="mpegts") as out:
        video = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        video.codec_context.time_base = video.time_base = Fraction(1, 90000)
        if empty_audio:
            out.add_stream("aac", rate=48000).layout = "stereo"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(mf.picture(i, 160, 120), format="rgb24")
            frame.pts, frame.time_base = start + i * 3600, Fraction(1, 90000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


def _run(src: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict | None, str]:
    code = main(["upscale", str(src), str(out), *FAST])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def test_3_extension_that_lies_is_read_by_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    liar = tmp_path / "really_ts.mp4"
    liar.write_bytes(_ts(tmp_path / "a.ts").read_bytes())
    code, report, _ = _run(liar, tmp_path / "o.mkv", capsys)
    assert code == 0 and report is not None and report["frames"] == 25


def test_7_mp4_without_moov_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = mf.make_clip(tmp_path / "c.mp4", frames=24)  # the mp4 muxer writes its index (moov) last
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.path.read_bytes()[: clip.path.stat().st_size // 2])
    code, _, err = _run(cut, tmp_path / "o.mkv", capsys)
    assert code == 2 and err.count("\n") == 1 and "cut.mp4" in err
    assert not (tmp_path / "o.mkv").exists()


def test_8_ts_cut_mid_packet_decodes_to_the_cut(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ts = _ts(tmp_path / "a.ts", frames=50)
    cut = tmp_path / "cut.ts"
    cut.write_bytes(ts.read_bytes()[: int(ts.stat().st_size * 0.6) + 77])  # not on a 188-byte boundary
    code, report, _ = _run(cut, tmp_path / "o.mkv", capsys)
    assert code in (0, 1) and report is not None and 20 <= report["frames"] < 50
    assert (tmp_path / "o.mkv").exists()


def test_10_broken_codec_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = mf.make_clip(tmp_path / "c.h264", frames=12, audio_tracks=0).path
    data = bytearray(raw.read_bytes())
    for i in range(len(data) - 4):  # every SPS and PPS NAL unit loses its payload
        if data[i : i + 3] == b"\x00\x00\x01" and data[i + 3] & 0x1F in (7, 8):
            data[i + 4 : i + 12] = b"\xff" * 8
    broken = tmp_path / "broken.h264"
    broken.write_bytes(bytes(data))
    code, _, err = _run(broken, tmp_path / "o.mkv", capsys)
    assert code == 2 and err.count("\n") == 1 and not (tmp_path / "o.mkv").exists()


def test_11_25_fake_tracks_are_dropped_and_the_real_video_processed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _ts(tmp_path / "a.ts", empty_audio=True)
    code, report, _ = _run(src, tmp_path / "o.mkv", capsys)
    assert code == 0 and report is not None and report["frames"] == 25
    assert any("empty or broken track" in d for d in report["streams_dropped"])
    # A second, smaller video track (a preview, a data-like track): the largest real one is processed.
    both = tmp_path / "both.mkv"
    with av.open(str(both), "w") as out:
        tracks = []
        for w, h in ((32, 24), (160, 120)):
            track = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
            track.width, track.height, track.pix_fmt = w, h, "yuv420p"
            tracks.append(track)
        for i in range(10):
            for track in tracks:
                w, h = track.width, track.height
                frame = av.VideoFrame.from_ndarray(mf.picture(i, w, h), format="rgb24")
                frame.pts = i
                out.mux(track.encode(frame))
        for track in tracks:
            out.mux(track.encode(None))
    code, report, _ = _run(both, tmp_path / "o2.mkv", capsys)
    assert code == 0 and report is not None and report["input_size"] == [160, 120]
    assert any("video" in d and "not copied" in d for d in report["streams_dropped"])


def test_22_ts_timestamps_across_the_33_bit_wrap_stay_continuous(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _ts(tmp_path / "wrap.ts", frames=50, start=2**33 - 45000)  # wraps half a second in
    code, report, _ = _run(src, tmp_path / "o.mkv", capsys)
    assert code == 0 and report is not None and report["frames"] == 50
    with av.open(str(tmp_path / "o.mkv")) as c:
        s = c.streams.video[0]
        pts = sorted(p.pts * s.time_base for p in c.demux(s) if p.pts is not None)
    steps = np.diff([float(p) for p in pts])
    assert len(pts) == 50 and np.allclose(steps, 0.04, atol=0.0011)  # no jump back by 2^33 ticks


def test_22_delayed_audio_keeps_its_offset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Audio that starts half a second after the video (a capture artefact) must stay half a second late.
    clip = mf.make_clip(tmp_path / "c.mkv", frames=24, audio_tracks=1)
    delayed = tmp_path / "delayed.mkv"
    with av.open(str(clip.path)) as inp, av.open(str(delayed), "w") as out:
        streams = {
            s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")
        }
        for packet in inp.demux(*[inp.streams[i] for i in streams]):
            if not packet.size:  # the demuxer's end-of-stream marker
                continue
            if packet.stream.type == "audio":
                shift = int(Fraction(1, 2) / packet.time_base)
                packet.pts = packet.pts + shift
                packet.dts = None if packet.dts is None else packet.dts + shift
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    code, report, _ = _run(delayed, tmp_path / "o.mkv", capsys)
    assert code == 0 and report is not None

    def first_times(path: Path) -> tuple[Fraction, Fraction]:
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            tv = min(p.pts * v.time_base for p in c.demux(v) if p.pts is not None)
        with av.open(str(path)) as c:
            a = c.streams.audio[0]
            ta = min(p.pts * a.time_base for p in c.demux(a) if p.pts is not None)
        return tv, ta

    (sv, sa), (ov, oa) = first_times(delayed), first_times(tmp_path / "o.mkv")
    # (0.5 s less the AAC encoder's priming of 1024 samples, which the fixture's audio starts with)
    assert sa - sv == pytest.approx(0.5 - 1024 / 48000, abs=0.002)
    assert oa - ov == pytest.approx(float(sa - sv), abs=0.002)


def test_tags_that_are_not_utf8_do_not_stop_the_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found by fuzzing: PyAV decoded tags strictly and raised while merely opening the file (exit 3).
    clip = mf.make_clip(tmp_path / "c.mkv", frames=6)
    data = clip.path.read_bytes()
    assert data.count(b"vsr fixture") == 1  # the container title written by the fixture
    latin1 = tmp_path / "latin1.mkv"
    latin1.write_bytes(data.replace(b"vsr fixture", "vsr f\xeftur\xe9 ".encode("latin-1")[:11]))
    code, report, _ = _run(latin1, tmp_path / "o.mkv", capsys)
    assert code == 0 and report is not None and report["frames"] == 6
