"""`--cluster`: a job's keyframe segments on a local Ray cluster (several worker processes) give the same
output as the single-process run, frame for frame, pts for pts and byte for byte in the audio; a worker
killed mid-job has its segment retried; a driver killed mid-job resumes with the same command.

The encoder is FFV1 (lossless, deterministic): x264 on this machine does not encode the same frames twice
alike (two single-process runs differ), so its output cannot show that the cluster changed nothing."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import media_fixtures as mf
import pytest

import vsr
from vsr.cli import main
from vsr.pipeline.resume import parts_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="Ray is not installed (the cluster extra)"
    ),
]
ARCHIVE = vsr.EncodeSettings(profile="archive")
JOB = dict(model="espcn-x2", backend="onnxruntime", encode=ARCHIVE, segment_seconds=0.3)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> mf.Clip:
    folder = tmp_path_factory.mktemp("cluster")
    return mf.make_clip(folder / "gop.mkv", frames=48, vfr=True, audio_tracks=1, subtitles=True, keyint=8)


@pytest.fixture(scope="module")
def reference(clip: mf.Clip, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("reference") / "single.mkv"
    vsr.upscale(clip.path, out, resume=True, **JOB)  # type: ignore[arg-type]
    return _signature(out)


@pytest.fixture(scope="module", autouse=True)
def ray_instance():  # type: ignore[no-untyped-def]
    import ray

    yield
    ray.shutdown()


def _signature(path: Path) -> dict[str, object]:
    """Every video frame's pts and pixel hash, and every other stream's packets byte for byte."""
    with av.open(str(path)) as c:
        video = [
            (f.pts, hashlib.sha256(f.to_ndarray(format="rgb24").tobytes()).hexdigest())
            for f in c.decode(video=0)
        ]
    with av.open(str(path)) as c:
        others = [
            (p.stream.index, p.pts, bytes(p))
            for p in c.demux(*[s for s in c.streams if s.type != "video"])
            if p.size
        ]
    return {"video": video, "others": others}


def test_cluster_output_equals_the_single_process_run(
    clip: mf.Clip, reference: dict[str, object], tmp_path: Path
) -> None:
    said: list[str] = []
    result = vsr.upscale(clip.path, tmp_path / "out.mkv", cluster="local", log=said.append, **JOB)  # type: ignore[arg-type]
    assert result.frames == len(clip.pts) and any(s.startswith("cluster: 2 workers") for s in said)
    assert _signature(tmp_path / "out.mkv") == reference
    assert not parts_dir(tmp_path / "out.mkv").exists()


def _segment_workers(busy: bool) -> list[int]:
    """PIDs of the Ray worker processes of SegmentWorker actors (busy: running a segment right now)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "ray::SegmentWorker" in title and (not busy or "SegmentWorker.encode" in title):
            found.append(int(entry.name))
    return found


def test_a_worker_killed_mid_segment_is_replaced_and_the_output_is_the_same(
    clip: mf.Clip, reference: dict[str, object], tmp_path: Path
) -> None:
    killed: list[int] = []

    def kill_the_first_busy_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for pid in _segment_workers(busy=True):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_first_busy_worker)
    killer.start()
    try:
        result = vsr.upscale(clip.path, tmp_path / "out.mkv", cluster="local", **JOB)  # type: ignore[arg-type]
    finally:
        killer.join()
    assert killed, "no worker was seen encoding"
    assert result.frames == len(clip.pts) and _signature(tmp_path / "out.mkv") == reference


def test_a_segment_that_fails_for_its_input_fails_the_job_with_that_error(
    clip: mf.Clip, tmp_path: Path
) -> None:
    """vsr's own errors are not retried: the job stops with the file's error, as it would run here."""
    from vsr.cluster import ClusterSpec, RayPool
    from vsr.pipeline import UpscaleRequest

    load = {"name": "espcn-x2", "scale": None, "denoise": None, "backend": vsr.OrtOptions()}
    pool = RayPool(ClusterSpec(workers=1), vsr.api._segment_runner, vsr.api._Job())
    try:
        missing = UpscaleRequest(tmp_path / "gone.mkv", tmp_path / "seg.nut", scale=2)
        with pytest.raises(vsr.VsrError, match=r"gone\.mkv"):
            list(pool.run([(0, missing)], load))
    finally:
        pool.close()


def test_the_driver_killed_mid_job_resumes_with_the_same_command(
    clip: mf.Clip, reference: dict[str, object], tmp_path: Path
) -> None:
    out = tmp_path / "out.mkv"
    command = [
        sys.executable, "-m", "vsr", "upscale", str(clip.path), str(out), "--model", "espcn-x2",
        "--backend", "onnxruntime", "--profile", "archive", "--cluster", "local", "--segment-seconds", "0.3",
    ]  # fmt: skip
    manifest = parts_dir(out) / "manifest.json"
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        try:
            if json.loads(manifest.read_text())["segments"]:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    assert driver.poll() is None, "the job ended before it could be killed"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    done_before = len(json.loads(manifest.read_text())["segments"])
    assert not out.exists() and done_before >= 1
    assert main(command[3:]) == 0  # the same command, in this process
    assert _signature(out) == reference


def test_a_folder_runs_its_files_segments_on_one_pool(clip: mf.Clip, tmp_path: Path) -> None:
    """Every file's segments go to the same workers (loaded once); each output is the single-process one."""
    indir = tmp_path / "in"
    indir.mkdir()
    mf.make_clip(indir / "a.mkv", frames=24, keyint=8)
    mf.make_clip(indir / "b.mkv", frames=30, keyint=8, audio_tracks=1)
    here = vsr.upscale_folder(indir, tmp_path / "here", resume=True, **JOB)  # type: ignore[arg-type]
    said: list[str] = []
    there = vsr.upscale_folder(indir, tmp_path / "there", cluster="local", log=said.append, **JOB)  # type: ignore[arg-type]
    assert [o.status for o in there.files] == [o.status for o in here.files] == ["done", "done"]
    assert sum(s.startswith("cluster:") for s in said) == 1  # one pool for the whole folder
    for name in ("a.mkv", "b.mkv"):
        assert _signature(tmp_path / "there" / name) == _signature(tmp_path / "here" / name)


def test_a_node_lost_mid_job_changes_nothing(
    clip: mf.Clip, reference: dict[str, object], tmp_path: Path
) -> None:
    """A Ray cluster of several nodes on this machine (Ray's own test cluster): two one-CPU nodes, each
    holding one of the two workers; once a segment is done a fresh node joins and the first node is removed
    with its worker mid-job; the job ends with the same output. Parts come back through the object store,
    as on any cluster that is not local. (Ray adds and removes nodes from the main thread only, so the job
    runs in another.)"""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()  # this test runs a cluster of its own
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    out, outcome = tmp_path / "out.mkv", {}

    def job() -> None:
        spec = vsr.ClusterSpec("auto", workers=2)
        try:
            outcome["result"] = vsr.upscale(clip.path, out, cluster=spec, **JOB)  # type: ignore[arg-type]
        except Exception as exc:  # reported below
            outcome["error"] = exc

    try:
        ray.init(address=cluster.address, log_to_driver=False)
        runner = threading.Thread(target=job)
        runner.start()
        manifest, deadline = parts_dir(out) / "manifest.json", time.monotonic() + 120
        while time.monotonic() < deadline and runner.is_alive():
            with contextlib.suppress(OSError, ValueError, KeyError):
                if json.loads(manifest.read_text())["segments"]:
                    break
            time.sleep(0.005)
        assert runner.is_alive(), "the job ended before a node could be lost"
        cluster.add_node(num_cpus=1)  # where the lost worker is restarted
        cluster.remove_node(nodes[0])
        runner.join()
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert "error" not in outcome, outcome
    assert outcome["result"].frames == len(clip.pts) and _signature(out) == reference


def _most_encoding_at_once(outdir: Path, during: threading.Event) -> list[int]:
    """Watches `outdir` until `during` is set; returns the most files seen with a segment being written
    at one moment (a worker writes its part to a hidden temporary file, renamed when done)."""
    most = [0]

    def watch() -> None:
        while not during.is_set():
            writing = {p.parent for p in outdir.glob(".*.vsr-parts/.seg-*.vsr-*.nut")}
            most[0] = max(most[0], len(writing))
            time.sleep(0.005)

    threading.Thread(target=watch, daemon=True).start()
    return most


def test_a_folder_of_one_segment_files_keeps_every_worker_busy(tmp_path: Path) -> None:
    """Files, not only segments, are spread over the pool: two one-segment files encode at the same time
    on the two workers, and each output is the single-process one."""
    indir = tmp_path / "in"
    indir.mkdir()
    for name in ("a", "b", "c"):
        mf.make_clip(indir / f"{name}.mkv", width=320, height=240, frames=48, keyint=48)
    job = {**JOB, "segment_seconds": 60.0}
    here = vsr.upscale_folder(indir, tmp_path / "here", resume=True, **job)  # type: ignore[arg-type]
    finished, lines = threading.Event(), []
    most = _most_encoding_at_once(tmp_path / "there", finished)
    try:
        there = vsr.upscale_folder(
            indir, tmp_path / "there", cluster="local", on_file=lambda k, n, o: lines.append((k, n)), **job
        )  # type: ignore[arg-type]
    finally:
        finished.set()
    assert [o.status for o in there.files] == [o.status for o in here.files] == ["done"] * 3
    assert most[0] == 2, "no two files were encoded at once"
    assert sorted(lines) == [(1, 3), (2, 3), (3, 3)]
    status = json.loads((tmp_path / "there" / "vsr-queue.json").read_text())["files"]
    assert {v["status"] for v in status.values()} == {"done"}
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        assert _signature(tmp_path / "there" / name) == _signature(tmp_path / "here" / name)
        assert (tmp_path / "there" / name.replace(".mkv", ".vsr.json")).is_file()


def test_progress_moves_within_a_segment_and_sums_the_workers(tmp_path: Path) -> None:
    """The frames of segments in flight are polled from the workers: the job's progress rises between
    segment ends, and ends at every frame."""
    clip = mf.make_clip(tmp_path / "long.mkv", width=320, height=240, frames=96, keyint=48)
    seen: list[int] = []
    job = {**JOB, "segment_seconds": 1.0}  # two segments of 48 frames, one per worker
    result = vsr.upscale(
        clip.path, tmp_path / "out.mkv", cluster="local", on_progress=lambda p: seen.append(p.encoded), **job
    )  # type: ignore[arg-type]
    assert result.frames == 96 and seen[-1] == 96
    assert any(0 < n < 96 and n != 48 for n in seen), seen  # mid-segment, not only at a segment's end
    assert seen == sorted(seen)


def test_ctrl_c_stops_a_cluster_folder_cleanly_and_the_rerun_finishes_it(tmp_path: Path) -> None:
    """SIGINT to the driver mid-folder: one line, exit 130, no hang; files in flight are recorded as
    interrupted, their finished segments kept; the same command then finishes every file."""
    indir, outdir = tmp_path / "in", tmp_path / "out"
    indir.mkdir()
    for name in ("a", "b", "c"):
        mf.make_clip(indir / f"{name}.mkv", width=320, height=240, frames=48, keyint=16)
    here = vsr.upscale_folder(indir, tmp_path / "here", resume=True, **JOB)  # type: ignore[arg-type]
    command = [
        sys.executable, "-m", "vsr", "upscale", str(indir), str(outdir), "--model", "espcn-x2",
        "--backend", "onnxruntime", "--profile", "archive", "--cluster", "local", "--segment-seconds", "0.3",
    ]  # fmt: skip
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        if any(outdir.glob(".*.vsr-parts/seg-*.nut")):
            break
        time.sleep(0.01)
    assert driver.poll() is None, "the folder ended before it could be interrupted"
    driver.send_signal(signal.SIGINT)
    _out, err = driver.communicate(timeout=60)
    assert driver.returncode == 130, err
    assert err.strip().splitlines()[-1] == "vsr: error: interrupted" and "Traceback" not in err, err
    status = json.loads((outdir / "vsr-queue.json").read_text())["files"]
    assert "interrupted" in {v["status"] for v in status.values()}
    assert main(command[3:]) == 0
    status = json.loads((outdir / "vsr-queue.json").read_text())["files"]
    assert [status[n]["status"] for n in ("a.mkv", "b.mkv", "c.mkv")] == ["done"] * 3
    assert [o.status for o in here.files] == ["done"] * 3
    for name in ("a.mkv", "b.mkv", "c.mkv"):
        assert _signature(outdir / name) == _signature(tmp_path / "here" / name)


def test_a_cluster_with_gpus_gets_gpu_workers_that_choose_their_own_runtime(
    clip: mf.Clip, tmp_path: Path
) -> None:
    """Ray is told this machine has one GPU (it schedules by resources, not devices): with backend auto the
    two workers share it in halves and each resolves `auto` itself (here, with no CUDA in fact, a CPU
    runtime), while the driver keeps only a copy on ONNX Runtime for its bookkeeping; a CPU backend asked
    for leaves the GPU alone."""
    import ray

    ray.shutdown()
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        said: list[str] = []
        spec = vsr.ClusterSpec("auto", workers=2)
        job = {**JOB, "backend": "auto"}
        result = vsr.upscale(clip.path, tmp_path / "gpu.mkv", cluster=spec, log=said.append, **job)  # type: ignore[arg-type]
        assert any(s.startswith("cluster: 2 workers of 1 core(s) and 0.5 GPU each on auto;") for s in said)
        assert result.frames == len(clip.pts)
        with vsr.load_model("espcn-x2", backend="auto") as here:  # what `auto` resolves to on a worker
            expected = here.backend
        assert result.backend.split(" (")[0] == expected.split(" (")[0], result.backend
        said.clear()
        vsr.upscale(clip.path, tmp_path / "cpu.mkv", cluster=spec, log=said.append, **JOB)  # type: ignore[arg-type]
        assert any(s.startswith("cluster: 2 workers of 1 core(s) each on auto;") for s in said)
    finally:
        ray.shutdown()


def test_parts_dir_on_a_cluster_has_the_workers_write_their_parts_there(
    clip: mf.Clip, reference: dict[str, object], tmp_path: Path
) -> None:
    """On a cluster that is not local the parts come through Ray's object store, unless --parts-dir names
    a folder every node sees: the workers then write into it, and the output is the same."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    said: list[str] = []
    result = vsr.upscale(
        clip.path, tmp_path / "out.mkv", cluster="auto", parts_dir=tmp_path / "shared", log=said.append, **JOB
    )  # type: ignore[arg-type]
    assert any(s.startswith("cluster: ") and s.endswith("parts go into the parts folder") for s in said)
    assert result.frames == len(clip.pts) and _signature(tmp_path / "out.mkv") == reference
    assert list((tmp_path / "shared").iterdir()) == []
    said.clear()
    vsr.upscale(clip.path, tmp_path / "store.mkv", cluster="auto", log=said.append, **JOB)  # type: ignore[arg-type]
    assert any(s.endswith("parts go through Ray's object store") for s in said)
    assert _signature(tmp_path / "store.mkv") == reference


class _CrashOn:
    """A worker's runner that kills its worker process on any segment of an input named crash*."""

    def __init__(self, runner: object) -> None:
        self.runner = runner

    def make_job(self, request: object, reader: object) -> object:
        if request.input.name.startswith("crash"):  # type: ignore[attr-defined]
            os._exit(1)  # as a segfault would: no exception, no cleanup
        return self.runner.make_job(request, reader)  # type: ignore[attr-defined]


def _crashing_runner(load: dict[str, object], job: object) -> _CrashOn:
    return _CrashOn(vsr.api._segment_runner(load, job))  # type: ignore[arg-type]


def test_a_segment_that_kills_every_worker_fails_its_job_and_the_pool_goes_on(
    clip: mf.Clip, reference: dict[str, object], tmp_path: Path
) -> None:
    """A segment whose worker dies every time is handed out ATTEMPTS times, then fails its job with one
    line; the workers come back, and the next job on the same pool is the single-process run."""
    import ray.cloudpickle

    from vsr.cluster import ATTEMPTS, ClusterSpec, RayPool, WorkerLostError
    from vsr.pipeline import UpscaleRequest
    from vsr.pipeline.resume import ResumableJob, segment_request

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
    load = {"name": "espcn-x2", "scale": None, "denoise": None, "backend": vsr.OrtOptions()}
    pool = RayPool(ClusterSpec(workers=2), _crashing_runner, vsr.api._Job())
    try:
        crash = tmp_path / "crash.mkv"
        crash.write_bytes(clip.path.read_bytes())
        sub = segment_request(UpscaleRequest(crash, tmp_path / "c.mkv", scale=2), tmp_path, [0], 0)
        with pytest.raises(WorkerLostError, match=f"crash.mkv segment 0 lost its worker {ATTEMPTS} times"):
            list(pool.run([(0, sub)], load))
        out = tmp_path / "after.mkv"
        request = vsr.api._Job(resume=True, encode=ARCHIVE, segment_seconds=0.3).request(clip.path, out, 2)
        job = ResumableJob(request, [], segment_seconds=0.3, pool=pool.for_chain(load))
        assert job.run().frames == len(clip.pts) and _signature(out) == reference
    finally:
        pool.close()
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
