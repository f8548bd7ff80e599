"""TensorRT: plans built from our ONNX graphs, cached per GPU, run with TensorRT 10/11's named-tensor API.

Written against the documented API only (Builder, strongly typed networks, OnnxParser, optimisation
profiles, timing cache, Runtime, set_input_shape / set_tensor_address / execute_async_v3). TensorRT gets a
graph of its own: float NCHW in and out (fp16 I/O for fp16 plans, float32 otherwise), exported from the
shipped weights with the body already in the plan's precision, because TensorRT 11 removed the
weak-typing builder flags (BuilderFlag.FP16 and friends). The GPU path's colour conversion feeds it
directly: no uint8 round trip, 10-bit sources keep their precision.

Plans are made per job, as vs-mlrt does: `prepare` is told the job's smallest and largest input and finds a
cached plan whose profile takes both (one `vsr build-engine` made, or an earlier job's) or builds a narrow
one, so tactics are tuned for the shape that runs and the context's memory is sized for it.

Device memory and streams come from torch, so no pycuda is needed. A TensorRT object is only created after
torch has found a working CUDA device: the lean runtime crashes without one.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vsr.backends import UINT8, UINT16, DeviceBackend
from vsr.backends.options import TensorRTOptions
from vsr.backends.trt_plan import (
    DEFAULT_PROFILE,
    CachedPlan,
    PlanKey,
    Shape,
    ShapeProfile,
    TrtPrecision,
    cache_dir,
    capped,
    fits,
)
from vsr.errors import BackendUnavailableError, ModelError, PlanError, UsageError
from vsr.files import atomic_write
from vsr.models.artefacts import ShippedModel

Log = Callable[[str], None]


def _tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError:
        raise BackendUnavailableError(
            "the tensorrt backend needs TensorRT (pip install 'vsr[tensorrt]' from NVIDIA's index)"
        ) from None
    return trt


def _cuda_device() -> Any:
    """torch's CUDA device 0, or BackendUnavailableError; called before anything touches TensorRT."""
    try:
        import torch
    except ImportError:
        raise BackendUnavailableError("the tensorrt backend needs torch for device memory") from None
    if not torch.cuda.is_available():
        raise BackendUnavailableError("the tensorrt backend needs a working CUDA device; none was found")
    return torch.device("cuda", torch.cuda.current_device())


def device_identity() -> tuple[str, str]:
    """(GPU name, compute capability 'major.minor') of the current CUDA device."""
    import torch

    device = _cuda_device()
    major, minor = torch.cuda.get_device_capability(device)
    return torch.cuda.get_device_name(device), f"{major}.{minor}"


def onnx_for(model: ShippedModel, precision: TrtPrecision) -> bytes:
    """TensorRT's graph of a shipped model: float NCHW I/O, the body in `precision`."""
    import torch

    from vsr.models.export import export_onnx, load_model

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    buffer = io.BytesIO()
    spec = model.spec
    net = load_model(spec, model.weights)
    export_onnx(net, buffer, scale=spec.scale, margin=spec.edge_margin, dtype=dtype, io="float")
    return buffer.getvalue()


def _parse(onnx: bytes) -> tuple[Any, Any, Any, Any]:
    """(trt, builder, network, logger) with `onnx` parsed; ModelError quotes the parser on rejection."""
    _cuda_device()  # first: TensorRT is never touched without a working CUDA device
    trt = _tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # Strongly typed: every tensor keeps the type the graph gives it (required in 11, opt-in in 10.x).
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelError(f"TensorRT's ONNX parser rejected the graph: {errors or 'no message'}")
    if network.num_inputs != 1 or network.num_outputs != 1:
        raise ModelError(f"expected one input and one output, the graph has {network.num_inputs} and "
                         f"{network.num_outputs}")  # fmt: skip
    return trt, builder, network, logger


def build_plan(
    onnx: bytes, profile: ShapeProfile, *, workspace_mib: int, timing_cache: Path | None = None
) -> bytes:
    """Serialize a plan for `onnx` with one optimisation profile; ModelError quotes the parser on failure.
    The timing cache (tactic timings of this GPU, shared by every plan) is read first and written back
    atomically, so two jobs building at once never leave a torn cache."""
    trt, builder, network, _logger = _parse(onnx)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    cache_bytes = timing_cache.read_bytes() if timing_cache is not None and timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    opt_profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    opt_profile.set_shape(name, _nchw(profile.min), _nchw(profile.opt), _nchw(profile.max))
    config.add_optimization_profile(opt_profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError("TensorRT could not build a plan (see its messages above)")
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(plan))


def _nchw(shape: Shape) -> tuple[int, int, int, int]:
    n, h, w = shape
    return n, 3, h, w


def plan_key(digest: str, precision: TrtPrecision, profile: ShapeProfile, workspace_mib: int) -> PlanKey:
    """The cache key of a plan for this graph on the present GPU and TensorRT."""
    gpu, capability = device_identity()
    version = _tensorrt().__version__
    return PlanKey(digest, gpu, capability, version, precision, profile.describe(), workspace_mib)


def ensure_plan(
    name: str,
    digest: str,
    onnx: Callable[[], bytes],
    *,
    precision: TrtPrecision = "fp16",
    profile: ShapeProfile = DEFAULT_PROFILE,
    workspace_mib: int = 4096,
    rebuild: bool = False,
    log: Log = lambda _msg: None,
) -> tuple[CachedPlan, PlanKey]:
    """A valid cached plan for this graph, building (and caching) it when absent, stale or foreign."""
    key = plan_key(digest, precision, profile, workspace_mib)
    cached = CachedPlan.for_key(key, name)
    if not rebuild and cached.valid_for(key):
        return cached, key
    log(f"building a TensorRT plan for {name} ({precision}, {profile.describe()}); this takes a while once")
    t0 = time.perf_counter()
    timing = cache_dir() / f"timing-{key.gpu_digest()}.cache"
    plan = build_plan(onnx(), profile, workspace_mib=workspace_mib, timing_cache=timing)
    cached.store(key, plan, {"model": name, "build_s": round(time.perf_counter() - t0, 1)})
    return cached, key


class TensorRTBackend(DeviceBackend):
    """A shipped model on TensorRT: one plan and execution context at a time, float NCHW on the device.

    With a profile in its options the plan is made (or found) when it opens, as `vsr build-engine` would;
    without one it opens by parsing the graph only (so `auto` can still fall back if TensorRT rejects it)
    and makes the plan for the job's shapes in `prepare`, or at the first batch of a shape no plan takes.
    """

    def __init__(self, model: ShippedModel, options: TensorRTOptions, *, log: Log = lambda _m: None) -> None:
        import torch

        self._torch, self._model, self._options, self._log = torch, model, options, log
        self.device = _cuda_device()  # before any TensorRT object exists
        self.scale = model.spec.scale
        self.dtypes = frozenset({UINT8, UINT16})  # codes become floats on the device, at any depth
        self._io_dtype = torch.float16 if options.precision == "fp16" else torch.float32
        self._onnx: bytes | None = None
        self._engine: Any = None
        self._context: Any = None
        self.profile: ShapeProfile | None = None
        trt = _tensorrt()
        self._trt, self._runtime = trt, trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.name = (
            f"tensorrt {trt.__version__} ({torch.cuda.get_device_name(self.device)}, {options.precision})"
        )
        if options.profile is not None:
            self._load(*self._plan(capped(options.profile, model.spec)))
        else:
            _parse(self._graph())  # a graph TensorRT refuses fails here, where `auto` can fall back

    def _graph(self) -> bytes:
        if self._onnx is None:
            self._onnx = onnx_for(self._model, self._options.precision)
        return self._onnx

    def _plan(self, profile: ShapeProfile) -> tuple[CachedPlan, ShapeProfile]:
        spec = self._model.spec
        digest = self._model.entry["sha256"][self._model.weights.name]
        cached, _key = ensure_plan(
            spec.name,
            digest,
            self._graph,
            precision=self._options.precision,
            profile=profile,
            workspace_mib=self._options.workspace_mib,
            log=self._log,
        )
        return cached, profile

    def prepare(self, low: Shape, high: Shape) -> None:
        """Make sure the loaded plan takes every input from `low` to `high` (N, H, W): a cached plan whose
        profile covers them, else one built for exactly that range."""
        if self.profile is not None and self.profile.covers(low) and self.profile.covers(high):
            return
        spec = self._model.spec
        if not fits(spec, high):
            raise UsageError(
                f"{spec.name}: {'x'.join(map(str, high))} makes a tensor wider than TensorRT's 2^31-1 "
                "elements; use a smaller --batch or --tile"
            )
        digest = self._model.entry["sha256"][self._model.weights.name]
        opts = self._options
        wanted = ShapeProfile.around(low, high)
        key = plan_key(digest, opts.precision, wanted, opts.workspace_mib)
        try:
            found = CachedPlan.covering(key, spec.name, low, high)
            if found is not None:
                self._load(found, ShapeProfile.parse(found.key().profile))
            else:
                self._load(*self._plan(wanted))
        except (ModelError, RuntimeError, MemoryError) as exc:  # TensorRT's own errors are RuntimeErrors
            raise PlanError(f"{spec.name}: no TensorRT plan for {wanted.describe()}: {exc}") from exc

    def _load(self, plan: CachedPlan, profile: ShapeProfile) -> None:
        self._context = self._engine = None  # the old plan's memory goes before the new one's arrives
        engine = self._runtime.deserialize_cuda_engine(plan.plan.read_bytes())
        if engine is None:
            raise ModelError(f"{plan.plan}: TensorRT could not deserialize the plan")
        trt = self._trt
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{plan.plan}: expected one input and one output tensor, got {names}")
        self._engine, self._context = engine, engine.create_execution_context()
        self._input, self._output = inputs[0], outputs[0]
        self.profile = profile

    def run_float(self, x: Any) -> Any:
        """(N, 3, H, W) float 0..1 CUDA tensor → (N, 3, H·s, W·s) float32, queued on torch's current stream.
        A shape no loaded plan takes gets a plan of its own first (prepare() avoids that per shape)."""
        torch = self._torch
        shape = (x.shape[0], x.shape[2], x.shape[3])
        if self.profile is None or not self.profile.covers(shape):
            if self._options.profile is not None:  # a plan asked for by profile is never replaced
                have = self.profile.describe() if self.profile else "none"
                raise UsageError(
                    f"input {'x'.join(map(str, shape))} is outside the plan's profile {have}; "
                    "rebuild with vsr build-engine --max"
                )
            self.prepare(shape, shape)
        x = x.to(self._io_dtype).contiguous()
        ctx = self._context
        ctx.set_input_shape(self._input, tuple(x.shape))
        y = torch.empty(tuple(ctx.get_tensor_shape(self._output)), dtype=self._io_dtype, device=self.device)
        ctx.set_tensor_address(self._input, x.data_ptr())
        ctx.set_tensor_address(self._output, y.data_ptr())
        if not ctx.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise ModelError("TensorRT failed to enqueue the batch")
        return y.float()

    def run_device(self, x: Any) -> Any:
        """(N, H, W, 3) uint8 or 16-bit codes on the device → codes of the same type, ×scale."""
        from vsr.models.export import codes_to_unit, unit_to_codes

        return unit_to_codes(self.run_float(codes_to_unit(x)), x.dtype)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8/uint16 RGB → (N, H·s, W·s, 3) of the same type (synchronous)."""
        self.check(batch)
        x = self._torch.from_numpy(batch).to(
            self.device
        )  # uint16 arrives as torch.uint16, as in torch's backend
        return self.run_device(x).cpu().numpy()

    def close(self) -> None:
        """Release context, engine and runtime in the reverse order of creation."""
        self._context = self._engine = self._runtime = None


def open_tensorrt(
    model: ShippedModel, options: TensorRTOptions, *, log: Log = lambda _m: None
) -> TensorRTBackend:
    """A TensorRT backend for a shipped model (see TensorRTBackend for when its plan is made)."""
    return TensorRTBackend(model, options, log=log)
