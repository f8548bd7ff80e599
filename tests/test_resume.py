"""Resumable jobs: segments at keyframes, a manifest beside the output, assembly by stream copy, and a real
`vsr upscale --resume` process killed mid-job and resumed into the same result as an uninterrupted run."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import media_fixtures as mf
import pytest

import vsr
from vsr.cli import main
from vsr.media import EncodeOptions, VideoReader
from vsr.pipeline import UpscaleJob, UpscaleRequest
from vsr.pipeline.resume import ResumableJob, parts_dir

REPO = Path(__file__).resolve().parent.parent
FAST = ["--preset", "veryfast"]  # B-frames: the segments must rejoin with reordering


def _streams(path: Path) -> dict[str, object]:
    """What must match between runs: every video pts, and every other stream's packets byte for byte."""
    with av.open(str(path)) as c:
        video = [(f.pts, f.time_base) for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        others: dict[int, list[tuple[int | None, bytes]]] = {
            s.index: [] for s in c.streams if s.type != "video"
        }
        for packet in c.demux(*[s for s in c.streams if s.type != "video"]):
            if packet.size:
                others[packet.stream.index].append((packet.pts, bytes(packet)))
        kinds = [s.type for s in c.streams]
    return {"video": video, "others": others, "kinds": kinds}


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory: pytest.TempPathFactory) -> mf.Clip:
    folder = tmp_path_factory.mktemp("resume")
    return mf.make_clip(folder / "gop.mkv", frames=72, vfr=True, audio_tracks=2, subtitles=True, keyint=10)


def test_segmented_run_equals_a_plain_run(gop_clip: mf.Clip, tmp_path: Path) -> None:
    plain, segmented = tmp_path / "plain.mkv", tmp_path / "seg.mkv"
    fast = vsr.EncodeSettings(preset="veryfast")
    whole = vsr.upscale(gop_clip.path, plain, encode=fast)
    # No manifest yet: resume simply starts the job, here in segments of about 0.4 s (8 of them).
    parts = vsr.upscale(gop_clip.path, segmented, encode=fast, resume=True, segment_seconds=0.4)
    # Both results are built in one place: the segmented one reports what the plain one does.
    same = ("frames", "frames_in", "partial", "duration_difference_s", "streams_copied", "streams_dropped")
    assert {k: getattr(parts, k) for k in same} == {k: getattr(whole, k) for k in same}
    assert whole.duration_difference_s == 0.0 and whole.frames == len(gop_clip.pts)
    a, b = _streams(plain), _streams(segmented)
    assert len(b["video"]) == len(gop_clip.pts) and b["video"] == a["video"]
    assert b["others"] == a["others"] and b["kinds"] == a["kinds"]
    assert not parts_dir(segmented).exists()  # the parts are removed once the output is in place


class _Crash(Exception):
    pass


def test_manifest_is_reused_only_for_the_same_settings(gop_clip: mf.Clip, tmp_path: Path) -> None:
    from vsr.backends.ort_backend import OrtBackend
    from vsr.models.artefacts import shipped_model

    shipped = shipped_model("espcn-x2")
    with OrtBackend(shipped.onnx, scale=shipped.spec.scale) as model:

        def crashing(after: int):  # a job factory that dies when segment `after` starts, as a crash would
            started: list[int] = []

            def make(r: UpscaleRequest, reader: VideoReader) -> UpscaleJob:
                if len(started) == after:
                    raise _Crash
                started.append(1)
                return UpscaleJob(r, [model], source=reader)

            return make

        for label, settings in (
            ("same", EncodeOptions(preset="veryfast")),
            ("other", EncodeOptions(crf=30)),
        ):
            out = tmp_path / f"{label}.mkv"
            request = UpscaleRequest(gop_clip.path, out, scale=2, encode=EncodeOptions(preset="veryfast"))
            with pytest.raises(_Crash):
                ResumableJob(request, [model], segment_seconds=0.4, job_factory=crashing(2)).run()
            manifest = json.loads((parts_dir(out) / "manifest.json").read_text())
            assert [s["index"] for s in manifest["segments"]] == [0, 1] and not out.exists()
            again = ResumableJob(dataclasses.replace(request, encode=settings), [model], segment_seconds=0.4)
            result = again.run()
            assert again.resumed_segments == (2 if label == "same" else 0)  # other settings start over
            assert result.frames == len(gop_clip.pts) and out.exists()


def test_parts_dir_keeps_the_segments_elsewhere_and_resumes_from_there(
    gop_clip: mf.Clip, tmp_path: Path
) -> None:
    """--parts-dir: the manifest and segments live in that folder (scratch space, or storage a cluster's
    nodes share), nothing beside the output; a crashed job resumes from there, which is then emptied."""
    from vsr.backends.ort_backend import OrtBackend
    from vsr.models.artefacts import shipped_model

    root, out = tmp_path / "scratch", tmp_path / "out" / "a.mkv"
    out.parent.mkdir()
    shipped = shipped_model("espcn-x2")
    with OrtBackend(shipped.onnx, scale=shipped.spec.scale) as model:
        calls: list[int] = []

        def crash_at_third(r: UpscaleRequest, reader: VideoReader) -> UpscaleJob:
            calls.append(1)
            if len(calls) == 3:
                raise _Crash
            return UpscaleJob(r, [model], source=reader)

        request = UpscaleRequest(gop_clip.path, out, scale=2, encode=EncodeOptions(preset="veryfast"))
        job = ResumableJob(request, [model], segment_seconds=0.4, parts_root=root, job_factory=crash_at_third)
        with pytest.raises(_Crash):
            job.run()
        manifest = json.loads((parts_dir(out, root) / "manifest.json").read_text())
        assert [s["index"] for s in manifest["segments"]] == [0, 1]
        assert list(out.parent.iterdir()) == [] and parts_dir(out, root).parent == root
        again = ResumableJob(request, [model], segment_seconds=0.4, parts_root=root)
        result = again.run()
        assert result.frames == len(gop_clip.pts) and again.resumed_segments == 2
        # The frames of the earlier run count in the progress, not in this run's rate.
        assert again.progress.resumed == sum(s["frames"] for s in manifest["segments"]) > 0
        assert 0 < result.fps < result.frames / result.seconds
    assert out.exists() and list(root.iterdir()) == []
    with pytest.raises(vsr.UsageError, match="keeps the segments of --resume or --cluster"):
        vsr.upscale(gop_clip.path, tmp_path / "b.mkv", parts_dir=root)


def test_a_parts_dir_that_cannot_be_made_is_an_output_error(gop_clip: mf.Clip, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(vsr.VsrError, match="cannot make the parts folder") as caught:
        vsr.upscale(gop_clip.path, tmp_path / "o.mkv", resume=True, parts_dir=tmp_path / "a-file" / "parts")
    assert type(caught.value).__name__ == "OutputError"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_the_rate_of_a_resumed_job_leaves_out_what_an_earlier_run_encoded() -> None:
    progress = vsr.Progress(encoded=100, resumed=90, started=time.perf_counter() - 1.0)
    assert 9.0 < progress.fps <= 10.0


@pytest.mark.slow
def test_killed_process_resumes_into_the_uninterrupted_result(tmp_path: Path) -> None:
    clip = mf.make_clip(tmp_path / "long.mkv", width=320, height=240, frames=240, audio_tracks=1, keyint=24)
    reference, out = tmp_path / "ref.mkv", tmp_path / "out.mkv"
    args = [*FAST, "--resume", "--segment-seconds", "1"]
    assert main(["upscale", str(clip.path), str(reference), *args]) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "vsr", "upscale", str(clip.path), str(out), *args]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    manifest = parts_dir(out) / "manifest.json"
    deadline = time.monotonic() + 120
    done: list[dict] = []
    while len(done) < 2:  # wait for two finished segments, then pull the plug
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
        with contextlib.suppress(OSError, ValueError):  # not written yet, or caught mid-replace
            done = json.loads(manifest.read_text())["segments"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()
    finished = len(json.loads(manifest.read_text())["segments"])
    assert 2 <= finished < 10
    resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {finished} of 10 segments were done earlier" in resumed.stderr
    assert _streams(out) == _streams(reference)
    assert not parts_dir(out).exists()
