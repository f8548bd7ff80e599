"""CPU pipeline benchmark: each stage alone, the threaded pipeline, a naive loop, and peak RSS vs clip length.

    .venv/bin/python bench/cpu_pipeline.py [--model espcn-x2] [--backend auto] [--baseline onnxruntime]
        [--preset faster] [--baseline-preset medium] [--frames N] [--rss-frames N] [--rounds N]
        [--out bench/results/cpu_pipeline.json]

Each stage alone gets all cores; in the pipeline the stages share them, so the pipeline should reach the
shared-core bound 1 / (1/decode + 1/model + 1/encode); efficiency = end-to-end / bound. It can exceed 1 where
a stage alone leaves cores idle (x264 keeps about 1.7 of 2 busy) and another stage fills them. The
end-to-end run is repeated with --baseline's runtime and preset (the defaults before OpenVINO) in the same
rounds, for the speed-up over them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import onnxruntime as ort

# Run from a source checkout whether or not the package is installed into the venv.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vsr.backends import Backend  # noqa: E402
from vsr.backends.select import choose, open_backend  # noqa: E402
from vsr.bench import naive_loop  # noqa: E402
from vsr.media import EncodeOptions, Frame, VideoReader, VideoWriter  # noqa: E402
from vsr.models.artefacts import shipped_model  # noqa: E402
from vsr.pipeline.job import UpscaleJob, UpscaleRequest  # noqa: E402

SAMPLE = ROOT / "samples" / "sample.mp4"
BATCH = UpscaleRequest.batch  # the pipeline's default batch size
LONG_FACTOR = 10
DISTURBED = 0.05  # cores taken by other processes above which a sample is flagged


def make_clip(src: Path, dst: Path, frames: int, repeats: int = 1) -> None:
    """Stream-copy the first `frames` video packets (and the audio demuxed with them), `repeats` times over.

    Packets are cut in decode order, so every kept frame's references are kept too; each repeat starts on the
    source's first (key) frame and is shifted by the longest stream's span, so timestamps keep rising.
    """
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        kept = [s for s in inp.streams if s.type in ("video", "audio")]
        outs = {s.index: out.add_stream_from_template(s) for s in kept}
        offset = dict.fromkeys(outs, 0)
        for _ in range(repeats):
            span = dict.fromkeys(outs, 0)
            first = dict.fromkeys(outs, 0)
            inp.seek(0)
            seen = 0
            for packet in inp.demux(*kept):
                if packet.dts is None or not packet.size:
                    continue
                if packet.stream.type == "video":
                    if seen == frames:
                        break
                    seen += 1
                i = packet.stream.index
                pts = packet.dts if packet.pts is None else packet.pts
                if span[i] == 0:
                    first[i] = min(packet.dts, pts)
                end = max(pts, packet.dts) + (packet.duration or 1)
                span[i] = max(span[i], end - first[i])
                packet.pts = None if packet.pts is None else packet.pts + offset[i]
                packet.dts += offset[i]
                packet.stream = outs[i]
                out.mux(packet)
            # One shift in seconds for all streams keeps audio and video aligned across repeats.
            shift = max(span[s.index] * s.time_base for s in kept)
            for s in kept:
                offset[s.index] += math.ceil(shift / s.time_base)


def decode_all(clip: Path) -> list[np.ndarray]:
    """The clip's frames as the pipeline sees them (RGB, source colour matrix)."""
    with VideoReader(clip) as reader:
        return [item.pixels for item in reader if isinstance(item, Frame)]


def time_decode(clip: Path) -> float:
    """Decode-only fps: iterating the reader, RGB conversion included, container opening excluded."""
    with VideoReader(clip) as reader:
        start, n = time.perf_counter(), 0
        for item in reader:
            n += isinstance(item, Frame)
        return n / (time.perf_counter() - start)


def time_model(backend: Backend, batches: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    """Model-only fps on pre-stacked batches; also returns the upscaled frames for the encode bench."""
    backend.run(batches[0])  # warm-up: the first run on a shape allocates and plans
    start, outputs = time.perf_counter(), []
    for batch in batches:
        outputs.extend(backend.run(batch))
    return sum(len(b) for b in batches) / (time.perf_counter() - start), outputs


def time_encode(clip: Path, frames: list[np.ndarray], out: Path, encode: EncodeOptions) -> float:
    """Encode-only fps of in-memory RGB frames, commit (flush) included."""
    height, width = frames[0].shape[:2]
    with VideoReader(clip) as reader:
        step = round(1 / (reader.format.frame_rate * reader.format.time_base))
        with VideoWriter(
            out, source=reader.format, streams=reader.streams, width=width, height=height, options=encode
        ) as writer:
            start = time.perf_counter()
            for i, rgb in enumerate(frames):
                writer.write_frame(rgb, i * step)
            writer.commit()
            return len(frames) / (time.perf_counter() - start)


def time_e2e(clip: Path, out: Path, backend: Backend, scale: int, encode: EncodeOptions) -> float:
    """End-to-end fps of UpscaleJob, file opening included (as a user sees it)."""
    job = UpscaleJob(UpscaleRequest(clip, out, scale, overwrite=True, encode=encode), [backend])
    start = time.perf_counter()
    result = job.run()
    return result.frames / (time.perf_counter() - start)


def time_naive(clip: Path, out: Path, backend: Backend, scale: int, encode: EncodeOptions) -> float:
    """One thread, one frame at a time: decode → model → encode, audio copied as the pipeline does."""
    return naive_loop(clip, backend, scale, encode, out)


def measure(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, dict[str, Any]]:
    """Each run once per round, rounds interleaved so that a busy spell of the machine hits all of them.

    Keeps the best fps (the run least disturbed by other processes) and, for every sample, the cores this
    process kept busy (CPU time of all its threads ÷ wall time; below the core count means idle cores) and
    the cores other processes took meanwhile (above ~0.05 means the sample is disturbed).
    """
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            wall, cpu, busy = time.perf_counter(), time.process_time(), machine_busy_s()
            fps = run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            others = (machine_busy_s() - busy - cpu) / wall
            samples[name].append((round(fps, 3), round(cpu / wall, 2), round(max(others, 0), 2)))
    summary = {}
    for name, triples in samples.items():
        fps, cores, others = zip(*triples, strict=True)
        summary[name] = {
            "best": max(fps),
            "median": statistics.median(fps),
            "samples": fps,
            "cores": cores,
            "other_processes_cores": others,
        }
    return summary


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (Linux /proc/stat; steal counts as busy)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split()[1:9]]
    idle, iowait = ticks[3], ticks[4]
    return (sum(ticks) - idle - iowait) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib() -> float:
    """Peak RSS of this process image: VmHWM, which starts afresh at exec.

    Not getrusage's ru_maxrss: Linux carries it over fork+exec, so a child would report its parent's peak
    (the parent holds the upscaled frames of the encode run, hundreds of MiB) whenever that is the larger.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(clip: Path, model: str, backend_name: str, preset: str, out: Path) -> None:
    """--child mode: one end-to-end run in this fresh process, then fps and peak RSS as JSON on stdout."""
    shipped = shipped_model(model)
    with open_backend(choose(backend_name).options, shipped) as backend:
        fps = time_e2e(clip, out, backend, shipped.spec.scale, EncodeOptions(preset=preset))
    print(json.dumps({"fps": round(fps, 3), "peak_rss_mib": round(peak_rss_mib(), 1)}))


def rss_run(clip: Path, args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Peak RSS of an end-to-end run in its own process, so earlier runs' memory does not count."""
    cmd = [sys.executable, __file__, "--child", str(clip), "--model", args.model, "--out", str(out)]
    cmd += ["--backend", args.backend, "--preset", args.preset]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--model", default="espcn-x2")
    parser.add_argument("--backend", default="auto", help="runtime measured (auto: what vsr upscale picks)")
    parser.add_argument("--baseline", default="onnxruntime", help="runtime of the comparison end-to-end run")
    parser.add_argument("--preset", default=EncodeOptions().preset, help="x264 preset of the encode stage")
    parser.add_argument("--baseline-preset", default="medium", help="x264 preset of the baseline run")
    parser.add_argument("--frames", type=int, default=132, help="sample frames of the fps runs")
    parser.add_argument("--rss-frames", type=int, default=24, help="base clip of the RSS runs (long: 10×)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each fps measurement (best kept)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cpu_pipeline.json")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.backend, args.preset, args.out)
        return
    encode = EncodeOptions(preset=args.preset)
    baseline_encode = EncodeOptions(preset=args.baseline_preset)

    shipped = shipped_model(args.model)
    scale = shipped.spec.scale
    with tempfile.TemporaryDirectory(prefix="vsr-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        clip, out = tmp / "clip.mp4", tmp / "out.mp4"
        make_clip(SAMPLE, clip, args.frames)
        frames = decode_all(clip)
        batches = [np.stack(frames[i : i + BATCH]) for i in range(0, len(frames), BATCH)]
        height, width = frames[0].shape[:2]
        upscaled: list[np.ndarray] = []

        def model_fps() -> float:
            fps, outputs = time_model(backend, batches)
            upscaled[:] = outputs
            return fps

        print(f"{args.model}: {len(frames)} frames {width}×{height} → ×{scale}, best of {args.rounds} rounds")
        with (
            open_backend(choose(args.backend).options, shipped) as backend,
            open_backend(choose(args.baseline).options, shipped) as baseline,
        ):
            runs = {  # model before encode: the encode run feeds on the model run's output
                "decode": lambda: time_decode(clip),
                "model": model_fps,
                "encode": lambda: time_encode(clip, upscaled, out, encode),
                "end_to_end": lambda: time_e2e(clip, out, backend, scale, encode),
                "end_to_end_baseline": lambda: time_e2e(clip, out, baseline, scale, baseline_encode),
                "naive": lambda: time_naive(clip, out, backend, scale, encode),
            }
            fps = measure(runs, args.rounds)
        del upscaled[:]

        short, long = tmp / "rss-short.mp4", tmp / "rss-long.mp4"
        make_clip(SAMPLE, short, args.rss_frames)
        make_clip(SAMPLE, long, args.rss_frames, repeats=LONG_FACTOR)
        rss = {"short": rss_run(short, args, out), "long": rss_run(long, args, out)}

    best = {k: float(v["best"]) for k, v in fps.items()}
    bound = 1 / sum(1 / best[k] for k in ("decode", "model", "encode"))
    slowest = min(best["decode"], best["model"], best["encode"])
    ratios = {
        "cpu_pipeline_efficiency": best["end_to_end"] / bound,
        "end_to_end_vs_slowest_stage": best["end_to_end"] / slowest,
        "end_to_end_vs_naive": best["end_to_end"] / best["naive"],
        "end_to_end_vs_baseline": best["end_to_end"] / best["end_to_end_baseline"],
        "rss_long_vs_short": rss["long"]["peak_rss_mib"] / rss["short"]["peak_rss_mib"],
    }
    report = {
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "onnxruntime": ort.__version__,
            "av": av.__version__,
            "numpy": np.__version__,
        },
        "model": args.model,
        "backend": backend.name,
        "baseline": f"{baseline.name}, x264 {args.baseline_preset}",
        "preset": args.preset,
        "input_size": [width, height],
        "output_size": [width * scale, height * scale],
        "frames": len(frames),
        "batch": BATCH,
        "statistic": f"best (highest fps) of {args.rounds} interleaved rounds",
        "cores": "CPU time of this process ÷ wall; other_processes_cores: the rest of the machine meanwhile",
        "fps": fps,
        "shared_core_bound_fps": round(bound, 3),
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "targets": {"cpu_pipeline_efficiency": ">= 0.9", "rss_long_vs_short": "<= 1.15"},
        "rss": {
            "short_frames": args.rss_frames,
            "long_frames": args.rss_frames * LONG_FACTOR,
            "short": rss["short"],
            "long": rss["long"],
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")

    for name, value in best.items():
        i = fps[name]["samples"].index(value)
        cores, others = fps[name]["cores"][i], fps[name]["other_processes_cores"][i]
        flag = f"  (other processes took {others:.2f} cores)" if others > DISTURBED else ""
        print(f"  {name + ' fps':<24}{value:8.2f}   cores {cores:.2f}{flag}")
    print(f"  {'shared-core bound fps':<24}{bound:8.2f}")
    for name, value in ratios.items():
        print(f"  {name:<32}{value:6.3f}")
    for name in ("short", "long"):
        r = rss[name]
        print(f"  peak RSS {name:<6}{r['peak_rss_mib']:8.1f} MiB  ({r['fps']:.2f} fps)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
