"""`vsr bench`: model-only throughput over a grid, and an end-to-end run with each stage timed alone.

Model-only timing keeps the data where the model reads it (host memory for the CPU runtimes, device memory
for torch and TensorRT on CUDA) and synchronises before the clock stops; each CPU precision carries the
Set5 PSNR it costs against ONNX Runtime fp32, as the manifest records it (`cpu_precisions`, recomputed by
tests/test_quality.py). The end-to-end part times decode, (upload,) compute, (download,) and encode each
alone on the same frames, then the whole job, against the bound that applies: on the CPU the stages share
the cores, so 1 / (1/decode + 1/compute + 1/encode); on CUDA compute runs beside the CPU stages, so the
slowest stage alone. Efficiency = end-to-end fps ÷ that bound.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from vsr.backends import DeviceBackend
from vsr.backends.options import OrtOptions, TorchOptions
from vsr.backends.select import Choice, choose, cuda_available, installed, open_backend
from vsr.errors import BackendUnavailableError, ModelError, UsageError
from vsr.files import atomic_write
from vsr.media import EncodeOptions, Frame, VideoReader, VideoWriter
from vsr.media.reader import PixelLayout, yuv_layout
from vsr.models.artefacts import ShippedModel, shipped_model
from vsr.pipeline import UpscaleJob, UpscaleRequest

RESOLUTIONS = {"360p": (360, 640), "480p": (480, 854), "720p": (720, 1280), "1080p": (1080, 1920)}


@dataclass(frozen=True)
class GridPoint:
    """One model-only measurement (or the reason it could not be taken)."""

    model: str
    backend: str
    device: str
    precision: str
    resolution: str
    batch: int
    frames_per_s: float | None = None
    output_megapixels_per_s: float | None = None
    ms_per_batch: float | None = None
    peak_gpu_mib: float | None = None
    set5_psnr_cost_db: float | None = None  # the manifest's Set5 drop of this runtime/precision, CPU only
    skipped: str | None = None


def _timed(call: Callable[[], None], sync: Callable[[], None], seconds: float) -> tuple[int, float]:
    """Calls per elapsed time. Each call is synchronised, so the clock measures finished work and the
    loop ends on time (unsynchronised, the host could queue far more work than `seconds` runs)."""
    call()  # warm-up: allocations, cuDNN/TensorRT tactic choice
    sync()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        call()
        sync()
        calls += 1
    return calls, time.perf_counter() - start


def model_grid(
    models: Sequence[str],
    resolutions: Sequence[str],
    batches: Sequence[int],
    precisions: Sequence[str],
    backends: Sequence[str],
    *,
    seconds: float = 1.0,
    log: Callable[[str], None] = lambda _m: None,
    on_point: Callable[[list[GridPoint]], None] = lambda _p: None,
) -> list[GridPoint]:
    """Measure every combination; combinations a backend cannot run are recorded as skipped, not dropped.
    `on_point` sees the points so far after each one (a long grid's record survives a timeout)."""
    points: list[GridPoint] = []
    for name, backend_name, precision in itertools.product(models, backends, precisions):
        model = shipped_model(name)
        try:
            choice = choose(backend_name, precision=precision)
            backend = open_backend(choice.options, model, log=log)
        except (BackendUnavailableError, UsageError) as exc:
            for res, batch in itertools.product(resolutions, batches):
                points.append(GridPoint(name, backend_name, "-", precision, res, batch, skipped=str(exc)))
            continue
        with backend:
            for res in resolutions:
                h, w = RESOLUTIONS[res]
                try:  # one TensorRT plan per resolution takes every batch
                    if isinstance(backend, DeviceBackend):
                        backend.prepare((1, h, w), (max(batches), h, w))
                except (UsageError, ModelError) as exc:
                    points += [
                        GridPoint(name, backend_name, "-", precision, res, b, skipped=str(exc))
                        for b in batches
                    ]
                    continue
                for batch in batches:
                    point = _measure(model, backend, choice, precision, res, batch, seconds)
                    log(_describe(point))
                    points.append(point)
                    on_point(points)
    return points


def _measure(
    model: ShippedModel, backend: Any, choice: Choice, precision: str, res: str, batch: int, seconds: float
) -> GridPoint:
    h, w = RESOLUTIONS[res]
    host = np.random.default_rng(0).integers(0, 256, (batch, h, w, 3), dtype=np.uint8)
    base = GridPoint(model.spec.name, choice.options.name, choice.device, precision, res, batch)
    peak = None
    if choice.device == "cuda":
        import torch

        # The model as the GPU path runs it: float NCHW from the colour conversion, float out.
        x = torch.from_numpy(host).cuda().permute(0, 3, 1, 2).float().div_(255)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        free_before = torch.cuda.mem_get_info()[0]
        try:
            calls, elapsed = _timed(lambda: backend.run_float(x), torch.cuda.synchronize, seconds)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return GridPoint(**{**asdict(base), "skipped": "out of GPU memory"})
        # torch's own peak; TensorRT allocates its activations itself, so count what left the free pool too.
        used = max(torch.cuda.max_memory_allocated(), free_before - torch.cuda.mem_get_info()[0])
        peak = round(used / 2**20, 1)
    else:
        calls, elapsed = _timed(lambda: backend.run(host), lambda: None, seconds)
    fps = calls * batch / elapsed
    s = model.spec.scale
    return GridPoint(
        **{
            **asdict(base),
            "frames_per_s": round(fps, 2),
            "output_megapixels_per_s": round(fps * h * w * s * s / 1e6, 2),
            "ms_per_batch": round(1000 * elapsed / calls, 2),
            "peak_gpu_mib": peak,
            "set5_psnr_cost_db": _psnr_cost(model, f"{choice.options.name} {precision}"),
        }
    )


def _psnr_cost(model: ShippedModel, runtime: str) -> float | None:
    """Set5 dB lost against ONNX Runtime fp32, as the manifest records it (None where it records none)."""
    recorded = model.entry.get("cpu_precisions", {})
    if runtime not in recorded or "onnxruntime fp32" not in recorded:
        return None
    return round(recorded["onnxruntime fp32"]["Set5"] - recorded[runtime]["Set5"], 4)


def _describe(p: GridPoint) -> str:
    head = f"{p.model:12} {p.backend:11} {p.precision:4} {p.resolution:5} ×{p.batch}"
    if p.skipped:
        return f"{head} skipped: {p.skipped}"
    return f"{head} {p.frames_per_s:8.2f} fps {p.ms_per_batch} ms/batch"


def synthetic_clip(
    path: Path, *, height: int, width: int, frames: int, rate: int = 24, keyint: int | None = None
) -> Path:
    """A moving test pattern in H.264 (x264 ultrafast, yuv420p): a repeatable bench input; `keyint` puts a
    keyframe every that many frames (segments start there)."""
    options = {"preset": "ultrafast", "crf": "18"} | ({"g": str(keyint)} if keyint else {})
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        for i in range(frames):
            phase = i / 6
            r = 128 + 100 * np.sin(x / 23 + phase)
            g = 128 + 90 * np.cos(y / 17 - phase)
            b = 128 + 60 * np.sin((x + y) / 31)
            rgb = np.stack([r, g, b], -1)
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return path


@dataclass(frozen=True)
class EndToEnd:
    """Each stage alone and the pipeline, in frames per second, on one clip."""

    clip: str
    frames: int
    model: str
    backend: str
    path: str  # "cpu rgb" or "cuda yuv staged"
    batch: int
    stages_fps: dict[str, float]
    end_to_end_fps: float
    naive_fps: float  # the whole job done one frame at a time, fp32, synchronously, colour on the CPU
    bound: str  # "shared cores" (CPU) or "slowest stage" (CUDA)
    bound_fps: float
    efficiency: float  # end_to_end ÷ bound
    speedup_over_naive: float
    # CUDA only, host memory to host memory without decode/encode: the staged path (pinned double buffers,
    # streams, YUV on the device, batch, reduced precision) against one frame at a time (upload, fp32
    # eager model, download, synchronise).
    staged_host_fps: float | None = None
    naive_host_fps: float | None = None


def end_to_end(
    clip: Path,
    model_name: str,
    backend_name: str,
    *,
    precision: str | None,
    batch: int | None,
    out_dir: Path,
    staged: bool | None = None,
) -> EndToEnd:
    """Time decode, (upload,) compute, (download,) encode alone, the naive loop and the whole job.

    staged: the YUV device path with its stager (default: on CUDA); torch on the CPU can take it too,
    which is how machines without a GPU test this code.
    """
    model = shipped_model(model_name)
    choice = choose(backend_name, precision=precision)
    cuda = choice.device == "cuda" if staged is None else staged
    if cuda and isinstance(choice.options, OrtOptions):
        raise UsageError("the staged device path needs the torch or tensorrt backend")
    encode = EncodeOptions(preset="veryfast") if cuda else EncodeOptions()
    with VideoReader(clip) as reader:
        fmt = reader.format
        layout = yuv_layout(fmt.pix_fmt) if cuda else "rgb24"
        frames = [item for item in reader.read(layout) if isinstance(item, Frame)]
        t0 = time.perf_counter()
        n = sum(1 for item in reader.read(layout) if isinstance(item, Frame))
        stages = {"decode": n / (time.perf_counter() - t0)}
    pts = [f.pts for f in frames]
    pixels = [f.pixels for f in frames]
    with open_backend(choice.options, model) as backend:
        if cuda:
            from vsr.pipeline.device import DevicePath

            path = DevicePath.for_chain(_torch_device(choice.device), [model.spec], auto=batch is None)
            path, size = path.planned(fmt.height, fmt.width, model.spec.scale, batch or 2)
            ((low, high),) = path.shapes(fmt.height, fmt.width, size)
            backend.prepare(low, high)
            out_pixels, gpu_stages = _device_stages(backend, path, pixels, size, fmt, layout)
            stages.update(gpu_stages)
            host_rates = _host_to_host(backend, model, path, pixels, size, fmt, layout)
        else:
            path, size, host_rates = None, batch or UpscaleRequest.batch, (None, None)
            t0 = time.perf_counter()
            out_pixels = [backend.run(np.stack(pixels[i : i + size])) for i in range(0, len(pixels), size)]
            stages["compute"] = len(pixels) / (time.perf_counter() - t0)
            out_pixels = [p for b in out_pixels for p in b]
        stages["encode"] = _encode_alone(
            clip, out_pixels, pts, model.spec.scale, encode, out_dir / "encode.mkv", layout
        )
        request = UpscaleRequest(
            clip, out_dir / "e2e.mkv", scale=model.spec.scale, batch=size, encode=encode, overwrite=True
        )
        result = UpscaleJob(request, [backend], device_path=path).run()
    fp32 = choose(backend_name, precision="fp32")
    with open_backend(fp32.options, model) as fp32_backend:
        naive = naive_loop(clip, fp32_backend, model.spec.scale, encode, out_dir / "naive.mkv")
    # On the CPU every stage competes for the same cores; on CUDA compute overlaps the CPU's stages.
    on_gpu = choice.device == "cuda"
    bound = "slowest stage" if on_gpu else "shared cores"
    bound_fps = min(stages.values()) if on_gpu else 1 / sum(1 / v for v in stages.values())
    return EndToEnd(
        clip=str(clip),
        frames=result.frames,
        model=model_name,
        backend=result.backend,
        path=f"{choice.device} {layout} staged" if cuda else f"{choice.device} {layout}",
        batch=size,
        stages_fps={k: round(v, 2) for k, v in stages.items()},
        end_to_end_fps=round(result.fps, 2),
        naive_fps=round(naive, 2),
        bound=bound,
        bound_fps=round(bound_fps, 2),
        efficiency=round(result.fps / bound_fps, 3),
        speedup_over_naive=round(result.fps / naive, 2),
        staged_host_fps=host_rates[0],
        naive_host_fps=host_rates[1],
    )


def _torch_device(name: str) -> Any:
    import torch

    return torch.device(name)


def _device_stages(
    backend: Any, path: Any, pixels: list[np.ndarray], size: int, fmt: Any, layout: str
) -> tuple[list[np.ndarray], dict[str, float]]:
    """Upload, compute and download alone on the device path (pinned buffers, data already on the device)."""
    import torch

    from vsr.pipeline.device import yuv_chain
    from vsr.pipeline.yuv import YuvSpec

    spec = YuvSpec.of(fmt, layout)
    run = yuv_chain([backend], fmt.height, spec, spec, path)
    cuda = path.device.type == "cuda"
    batches = [np.stack(pixels[i : i + size]) for i in range(0, len(pixels), size)]
    host = [torch.from_numpy(b.view(np.int16) if b.dtype == np.uint16 else b) for b in batches]
    host = [h.pin_memory() for h in host] if cuda else host
    n = len(pixels)

    def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
        fn()
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = fn()
        if cuda:
            torch.cuda.synchronize()
        return n / (time.perf_counter() - t0), result

    upload_fps, device = timed(lambda: [h.to(path.device, non_blocking=True) for h in host])
    compute_fps, outputs = timed(lambda: [run(d) for d in device])
    pinned = [torch.empty(o.shape, dtype=o.dtype, pin_memory=cuda) for o in outputs]
    download_fps, _ = timed(
        lambda: [p.copy_(o, non_blocking=True) for p, o in zip(pinned, outputs, strict=True)]
    )
    frames = [f.view(np.uint16) if f.dtype == np.int16 else f for p in pinned for f in p.numpy()]
    return frames, {"upload": upload_fps, "compute": compute_fps, "download": download_fps}


def _host_to_host(
    backend: Any, model: ShippedModel, path: Any, pixels: list[np.ndarray], size: int, fmt: Any, layout: str
) -> tuple[float, float]:
    """(staged fps, naive fps) from host frames to host frames, no decode or encode."""
    from vsr.backends.torch_backend import TorchBackend
    from vsr.pipeline.device import yuv_chain
    from vsr.pipeline.double_buffer import DeviceStager
    from vsr.pipeline.yuv import YuvSpec

    spec = YuvSpec.of(fmt, layout)
    batches = [np.stack(pixels[i : i + size]) for i in range(0, len(pixels), size)]
    with DeviceStager(yuv_chain([backend], fmt.height, spec, spec, path), path.device) as stager:
        stager.submit(batches[0])  # warm-up
        stager.drain()
        t0 = time.perf_counter()
        for b in batches:
            if stager.full:
                stager.collect()
            stager.submit(b)
        stager.drain()
        staged = len(pixels) / (time.perf_counter() - t0)
    frame = np.random.default_rng(0).integers(0, 256, (1, fmt.height, fmt.width, 3), np.uint8)
    eager_options = TorchOptions(device=path.device.type, precision="fp32")
    with TorchBackend(model.spec, model.weights, eager_options) as eager:
        eager.run(frame)  # warm-up
        t0 = time.perf_counter()
        for _ in pixels:
            eager.run(frame)  # upload, fp32 model, download; .cpu() synchronises
        naive = len(pixels) / (time.perf_counter() - t0)
    return round(staged, 2), round(naive, 2)


def _encode_alone(
    clip: Path,
    pixels: list[np.ndarray],
    pts: list[int],
    scale: int,
    encode: EncodeOptions,
    out: Path,
    layout: PixelLayout,
) -> float:
    with VideoReader(clip) as reader:
        fmt = reader.format
        width, height = fmt.width * scale, fmt.height * scale
        with VideoWriter(
            out, source=fmt, streams=reader.streams, width=width, height=height, options=encode
        ) as writer:
            t0 = time.perf_counter()
            for picture, p in zip(pixels, pts, strict=True):
                writer.write_frame(picture, p, layout)  # type: ignore[arg-type]
            writer.commit()
            return len(pixels) / (time.perf_counter() - t0)


def naive_loop(clip: Path, backend: Any, scale: int, encode: EncodeOptions, out: Path) -> float:
    """Fps of the plain loop: one frame at a time through `backend`, synchronous, in one thread, audio
    copied as the pipeline does; timed from opening the input, as a job's own fps is."""
    t0 = time.perf_counter()
    with VideoReader(clip) as reader:
        fmt = reader.format
        size = {"width": fmt.width * scale, "height": fmt.height * scale}
        with VideoWriter(out, source=fmt, streams=reader.streams, options=encode, **size) as writer:
            for item in reader:
                if isinstance(item, Frame):
                    writer.write_frame(backend.run(item.pixels[None])[0], item.pts)
                else:
                    writer.write_packet(item)
            writer.commit()
            return writer.frames_written / (time.perf_counter() - t0)


def chart(points: Sequence[GridPoint], e2e: EndToEnd | None, out: Path) -> Path:
    """A PNG: model-only fps per grid point (log scale) and, when given, the end-to-end stage breakdown."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--chart needs matplotlib (pip install 'vsr[bench]')") from None
    measured = [p for p in points if p.frames_per_s]
    panels = 1 + (e2e is not None)
    height = max(3.0, 0.28 * len(measured) + 1.5)
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, height), squeeze=False)
    ax = axes[0][0]
    labels = [f"{p.model} {p.backend} {p.precision} {p.resolution} ×{p.batch}" for p in measured]
    ax.barh(labels, [p.frames_per_s for p in measured], color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("frames/s (model only)")
    ax.invert_yaxis()
    if e2e is not None:
        # Milliseconds per frame on a log axis: decode (~2 ms) and a model stage (~100 ms) stay readable
        # side by side, and on the CPU the shared-core bound is simply the sum of the stages.
        ax2 = axes[0][1]
        names = [*e2e.stages_fps, f"bound ({e2e.bound})", "end to end", "naive loop"]
        fps = [*e2e.stages_fps.values(), e2e.bound_fps, e2e.end_to_end_fps, e2e.naive_fps]
        colours = ["tab:gray"] * len(e2e.stages_fps) + ["tab:orange", "tab:green", "tab:red"]
        ax2.barh(names, [1000 / f for f in fps], color=colours)
        ax2.set_xscale("log")
        ax2.set_xlabel("ms per frame (log)")
        title = f"{e2e.model} {e2e.path}: {e2e.end_to_end_fps:.1f} fps"
        ax2.set_title(f"{title}, {e2e.efficiency:.2f} of the {e2e.bound} bound", fontsize=10)
        ax2.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def run(
    *,
    models: Sequence[str] | None = None,
    resolutions: Sequence[str] | None = None,
    batches: Sequence[int] = (1, 4),
    precisions: Sequence[str] | None = None,
    backends: Sequence[str] | None = None,
    seconds: float = 1.0,
    e2e: bool = True,
    clip: Path | None = None,
    e2e_model: str | None = None,
    e2e_backend: str = "auto",
    e2e_size: str | None = None,
    e2e_frames: int = 48,
    log: Callable[[str], None] = lambda _m: None,
    out: Path | None = None,
) -> BenchResult:
    """The whole `vsr bench`: the grid and the end-to-end breakdown, with defaults chosen by device.
    With `out`, the JSON record is written there after every grid point and at the end (atomically: a run
    cut short leaves its last complete record)."""
    import platform
    import tempfile

    cuda = cuda_available()
    gpu = None
    if cuda:
        import torch

        gpu = torch.cuda.get_device_name()
    machine = {"platform": platform.platform(), "processor": platform.processor(), "gpu": gpu}
    resolutions = list(resolutions or (["720p", "1080p"] if cuda else ["360p"]))
    if unknown := [r for r in [*resolutions, e2e_size or "360p"] if r not in RESOLUTIONS]:
        raise UsageError(f"unknown resolution {unknown[0]!r}; choose among {', '.join(RESOLUTIONS)}")
    if not batches or min(batches) < 1:
        raise UsageError("batch sizes must be positive integers")
    if backends is None:
        gpu = (["tensorrt"] if installed("tensorrt") else []) + ["torch"]
        cpu = [b for b in ("onnxruntime", "openvino", "torch") if b == "onnxruntime" or installed(b)]
        backends = gpu if cuda else cpu
    default_models = ["espcn-x2", "compact-x2", "compact-x4"] if cuda else ["espcn-x2", "compact-x2"]
    points = model_grid(
        list(models or default_models),
        resolutions,
        batches,
        list(precisions or (["fp32", "fp16"] if cuda else ["fp32", "bf16"])),
        backends,
        seconds=seconds,
        log=log,
        on_point=lambda so_far: BenchResult(machine, tuple(so_far), None).save(out),
    )
    breakdown = None
    if e2e:
        with tempfile.TemporaryDirectory(prefix="vsr-bench-") as tmp:
            if clip is None:
                h, w = RESOLUTIONS[e2e_size or ("1080p" if cuda else "360p")]
                clip = synthetic_clip(Path(tmp) / "clip.mkv", height=h, width=w, frames=e2e_frames)
            model = e2e_model or ("compact-x2" if cuda else "espcn-x2")
            breakdown = end_to_end(clip, model, e2e_backend, precision=None, batch=None, out_dir=Path(tmp))
    result = BenchResult(machine, tuple(points), breakdown)
    result.save(out)
    return result


@dataclass(frozen=True)
class BenchResult:
    """A `vsr bench` run: the machine, the model-only grid and the end-to-end breakdown."""

    machine: dict[str, str | None]
    model_only: tuple[GridPoint, ...]
    end_to_end: EndToEnd | None

    def save(self, path: Path | None) -> None:
        """Write the JSON record to `path` (atomically), if one is given."""
        if path is not None:
            atomic_write(path, json.dumps(self.to_dict(), indent=1) + "\n")

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (bench/results/*.json)."""
        return {
            "machine": self.machine,
            "model_only": [asdict(p) for p in self.model_only],
            "end_to_end": asdict(self.end_to_end) if self.end_to_end else None,
        }
