"""The cluster's overheads measured here, and on paper what they mean for a 100-hour archive on N nodes.

    .venv/bin/python bench/cluster.py [--frames 1440] [--segment-seconds 1] [--folder-files 6] \
        [--gpu-node-fps 30] [--out bench/results/cluster.json]

On a synthetic 60-second 640x360 clip with a keyframe every second (espcn-x2, ONNX Runtime, FFV1), in
one run: the plain single-process job, the same job in segments on this process (--resume), and on a
local Ray cluster with 1 and 2 workers; the start of Ray and of a worker pool (actors and their model
loads), a part's trip through the object store, and the stream copy that assembles the output; then a
folder of short files (one segment each, so only whole files can be spread) in one process and on the
2-worker cluster. The projection then takes those overheads and a per-node rate (this machine's,
measured; a GPU node's, assumed and stated) to the wall time of 100 hours of 24 fps video on 1, 8 and 64
nodes. It is a model, not a measurement of a cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ray  # noqa: E402

import vsr  # noqa: E402
from vsr.bench import synthetic_clip  # noqa: E402
from vsr.cluster import ClusterSpec, RayPool  # noqa: E402
from vsr.media import VideoReader  # noqa: E402
from vsr.pipeline.resume import segment_starts  # noqa: E402

ARCHIVE_HOURS = 100
RATE = 24


def _timed(call):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = call()
    return result, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1440, help="the clip's length; 1440 = 60 s")
    parser.add_argument("--segment-seconds", type=float, default=1.0)
    parser.add_argument(
        "--gpu-node-fps",
        type=float,
        default=30.0,
        help="assumed end-to-end rate of one GPU node at 1080p -> 4K (x264-bound; no GPU figure yet)",
    )
    parser.add_argument("--folder-files", type=int, default=6, help="short files of the folder run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/cluster.json")
    args = parser.parse_args()
    job = dict(model="espcn-x2", backend="onnxruntime", encode=vsr.EncodeSettings(profile="archive"))
    with tempfile.TemporaryDirectory(prefix="vsr-cluster-") as tmp:
        root = Path(tmp)
        clip = synthetic_clip(root / "clip.mkv", height=360, width=640, frames=args.frames, keyint=RATE)
        seg = dict(segment_seconds=args.segment_seconds)
        warm = synthetic_clip(root / "warm.mkv", height=360, width=640, frames=48, keyint=RATE)
        vsr.upscale(warm, root / "warm-out.mkv", **job)  # caches and the model's first load out of the way
        plain_s = resume_s = float("inf")
        for _ in range(2):  # alternated, best of two: a slow spell of the machine hits both
            plain_s = min(
                plain_s, _timed(lambda: vsr.upscale(clip, root / "plain.mkv", overwrite=True, **job))[1]
            )
            again = lambda: vsr.upscale(clip, root / "resume.mkv", overwrite=True, resume=True, **seg, **job)  # noqa: E731
            resume_s = min(resume_s, _timed(again)[1])
        segments = max(1, round(args.frames / RATE / args.segment_seconds))
        with VideoReader(clip) as reader:  # what a segment pays to start: seek, and decode its keyframe
            starts = segment_starts(reader, args.segment_seconds)[1:]
            _, seek_s = _timed(lambda: [next(iter(reader.read(start=s, passthrough=False))) for s in starts])
        seek_s /= max(1, len(starts))
        _, init_s = _timed(
            lambda: ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        )
        load = {"name": "espcn-x2", "scale": None, "denoise": None, "backend": vsr.OrtOptions()}

        def start_pool() -> RayPool:
            pool = RayPool(ClusterSpec(workers=2), vsr.api._segment_runner, vsr.api._Job())
            ray.get([a.warm.remote(load) for a in pool.actors])  # up, with their models loaded
            return pool

        pool, pool_s = _timed(start_pool)
        pool.close()
        part = (root / "plain.mkv").read_bytes()[: 4 << 20]
        _, transfer_s = _timed(lambda: ray.get(ray.put(part)))
        cluster = {}
        for workers in (1, 2):
            out, spec = root / f"c{workers}.mkv", ClusterSpec(workers=workers)
            _, seconds = _timed(lambda out=out, spec=spec: vsr.upscale(clip, out, cluster=spec, **seg, **job))
            cluster[workers] = round(args.frames / seconds, 2)
        folder = root / "folder"
        folder.mkdir()
        for n in range(args.folder_files):  # one segment each (30 s): only whole files can be spread
            synthetic_clip(folder / f"f{n}.mkv", height=360, width=640, frames=4 * RATE, keyint=RATE)
        folder_frames = args.folder_files * 4 * RATE
        _, folder_here_s = _timed(lambda: vsr.upscale_folder(folder, root / "fh", resume=True, **job))
        spec = ClusterSpec(workers=2)
        _, folder_cluster_s = _timed(lambda: vsr.upscale_folder(folder, root / "fc", cluster=spec, **job))
        import av

        def remux() -> None:
            with av.open(str(root / "plain.mkv")) as src, av.open(str(root / "copy.mkv"), "w") as dst:
                streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
                for packet in src.demux():
                    if packet.dts is not None:
                        packet.stream = streams[packet.stream.index]
                        dst.mux(packet)

        _, remux_s = _timed(remux)
    plain_fps, resume_fps = args.frames / plain_s, args.frames / resume_s
    per_segment_s = max(0.0, (resume_s - plain_s) / segments)
    assembly_fps = args.frames / remux_s
    measured = {
        "plain_fps": round(plain_fps, 2),
        "segmented_here_fps": round(resume_fps, 2),
        "per_segment_overhead_s": round(per_segment_s, 3),
        "seek_to_keyframe_s": round(seek_s, 4),
        "ray_init_s": round(init_s, 2),
        "pool_start_s": round(pool_s, 2),
        "object_store_MB_per_s": round(len(part) / 2**20 / transfer_s, 1),
        "cluster_fps": {f"{k} workers": v for k, v in cluster.items()},
        "two_over_one_worker": round(cluster[2] / cluster[1], 3),
        "two_workers_over_single_process": round(cluster[2] / plain_fps, 3),
        "assembly_fps": round(assembly_fps, 1),
        "folder": {
            "files": f"{args.folder_files} x 4 s 640x360, one segment each",
            "single_process_fps": round(folder_frames / folder_here_s, 2),
            "cluster_2_workers_fps": round(folder_frames / folder_cluster_s, 2),
            "cluster_over_single_process": round(folder_here_s / folder_cluster_s, 3),
        },
    }
    frames = ARCHIVE_HOURS * 3600 * RATE
    seg_frames = 30 * RATE  # the default --segment-seconds

    def wall_hours(nodes: int, node_fps: float) -> float:
        overhead = per_segment_s * node_fps / seg_frames  # share of a node's time lost per segment
        encode = frames / (nodes * node_fps) * (1 + overhead)
        return round((init_s + pool_s + encode + frames / assembly_fps) / 3600, 2)

    node_rates = {
        "this 2-core CPU node (measured, 360p -> 720p)": cluster[2],
        f"GPU node (assumed {args.gpu_node_fps:g} fps at 1080p -> 4K)": args.gpu_node_fps,
    }
    projection = {
        name: {f"{n} nodes": wall_hours(n, fps) for n in (1, 8, 64)} for name, fps in node_rates.items()
    }
    record = {
        "command": "bench/cluster.py " + " ".join(sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cores": os.cpu_count(), "load_avg": os.getloadavg()},
        "clip": f"640x360, {args.frames} frames at {RATE} fps, a keyframe a second, "
        f"segments of {args.segment_seconds:g} s",
        "measured": measured,
        "projection_hours_for_100h_archive": projection,
        "assumptions": [
            "nodes work independently on 30 s segments; every worker stays busy until the last wave",
            "the per-segment overhead measured here (seek, part file, manifest: the segmented run's time over"
            " the plain run's, per segment; 0 when it is within the noise of the two runs) is paid once a"
            " segment",
            "the driver assembles the output by stream copy at the rate measured here, after the last part",
            "per-node rates scale linearly with nodes: no shared-storage or network bottleneck is modelled",
            "no GPU rate has been measured yet: the GPU node's rate is an input (--gpu-node-fps)",
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))
    ray.shutdown()


if __name__ == "__main__":
    main()
