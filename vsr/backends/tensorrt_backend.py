"""TensorRT: plans built from our ONNX graphs, cached per GPU, run with TensorRT 10/11's named-tensor API.

Written against the documented API only (Builder, strongly typed networks, OnnxParser, optimisation
profiles, timing cache, Runtime, set_input_shape / set_tensor_address / execute_async_v3). Precision lives
in the graph: fp16/bf16 plans are built from an ONNX export whose body is already in that type, because
TensorRT 11 removed the weak-typing builder flags (BuilderFlag.FP16 and friends).

Device memory and streams come from torch, so no pycuda is needed. A TensorRT runtime is only created after
torch has found a working CUDA device: the lean runtime crashes without one.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vsr.backends import DeviceBackend
from vsr.backends.options import TensorRTOptions
from vsr.backends.trt_plan import DEFAULT_PROFILE, CachedPlan, PlanKey, ShapeProfile, TrtPrecision, cache_dir
from vsr.errors import BackendUnavailableError, ModelError
from vsr.models.artefacts import ShippedModel


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
    """The shipped fp32 graph, or a strongly typed fp16/bf16 export of the same weights."""
    if precision == "fp32":
        return model.onnx.read_bytes()
    import torch

    from vsr.models.export import export_onnx, load_model

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    buffer = io.BytesIO()
    spec = model.spec
    export_onnx(
        load_model(spec, model.weights), buffer, scale=spec.scale, margin=spec.edge_margin, dtype=dtype
    )
    return buffer.getvalue()


def build_plan(
    onnx: bytes, profile: ShapeProfile, *, workspace_mib: int, timing_cache: Path | None = None
) -> bytes:
    """Serialize a plan for `onnx` with one optimisation profile; ModelError quotes the parser on failure."""
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
    if network.num_inputs != 1:
        raise ModelError(f"expected one input tensor, the graph has {network.num_inputs}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    cache_bytes = timing_cache.read_bytes() if timing_cache is not None and timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=False)
    opt_profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    opt_profile.set_shape(name, (*profile.min, 3), (*profile.opt, 3), (*profile.max, 3))
    config.add_optimization_profile(opt_profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError("TensorRT could not build a plan (see its messages above)")
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(plan))


def plan_key(onnx_sha256: str, precision: TrtPrecision, profile: ShapeProfile, workspace_mib: int) -> PlanKey:
    """The cache key of a plan for this graph on the present GPU and TensorRT."""
    gpu, capability = device_identity()
    version = _tensorrt().__version__
    return PlanKey(onnx_sha256, gpu, capability, version, precision, profile.describe(), workspace_mib)


def ensure_plan(
    name: str,
    onnx_sha256: str,
    onnx: Callable[[], bytes],
    *,
    precision: TrtPrecision = "fp16",
    profile: ShapeProfile = DEFAULT_PROFILE,
    workspace_mib: int = 4096,
    rebuild: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
) -> tuple[CachedPlan, PlanKey]:
    """A valid cached plan for this graph, building (and caching) it when absent, stale or foreign."""
    key = plan_key(onnx_sha256, precision, profile, workspace_mib)
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
    """One plan, one execution context; uint8 NHWC in and out (the plans have uint8 interfaces)."""

    def __init__(self, plan: Path, profile: ShapeProfile, *, scale: int) -> None:
        import torch

        self.scale = scale
        self._torch = torch
        self.device = _cuda_device()  # before any TensorRT object exists
        trt = _tensorrt()
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(plan.read_bytes())
        if self._engine is None:
            raise ModelError(f"{plan}: TensorRT could not deserialize the plan")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{plan}: expected one input and one output tensor, got {names}")
        self._input, self._output = inputs[0], outputs[0]
        self.profile = profile
        self.name = f"tensorrt {trt.__version__} ({torch.cuda.get_device_name(self.device)})"

    def run_device(self, x: Any) -> Any:
        """(N, H, W, 3) uint8 CUDA tensor → upscaled uint8 CUDA tensor, queued on torch's current stream."""
        torch = self._torch
        shape = tuple(x.shape[:3])
        if not self.profile.covers(shape):  # type: ignore[arg-type]
            raise ModelError(f"input {'x'.join(map(str, shape))} is outside the plan's profile "
                             f"{self.profile.describe()}; rebuild with vsr build-engine --max")  # fmt: skip
        x = x.contiguous()
        ctx = self._context
        ctx.set_input_shape(self._input, tuple(x.shape))
        y = torch.empty(tuple(ctx.get_tensor_shape(self._output)), dtype=torch.uint8, device=self.device)
        ctx.set_tensor_address(self._input, x.data_ptr())
        ctx.set_tensor_address(self._output, y.data_ptr())
        if not ctx.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise ModelError("TensorRT failed to enqueue the batch")
        return y

    def run_float(self, x: Any) -> Any:
        """(N, 3, H, W) float 0..1 → float output through the plan's uint8 interface (8-bit at the model)."""
        from vsr.models.export import codes_to_unit, unit_to_codes

        return codes_to_unit(self.run_device(unit_to_codes(x, self._torch.uint8)))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB → (N, H·s, W·s, 3) uint8 RGB (synchronous; the GPU pipeline overlaps)."""
        self.check(batch)
        x = self._torch.from_numpy(batch).to(self.device)
        return self.run_device(x).cpu().numpy()

    def close(self) -> None:
        """Release context, engine and runtime in the reverse order of creation."""
        self._context = self._engine = self._runtime = None


def open_tensorrt(
    model: ShippedModel, options: TensorRTOptions, *, log: Callable[[str], None] = lambda _m: None
) -> TensorRTBackend:
    """A TensorRT backend for a shipped model with the options' profile, building its plan once."""
    cached, _key = ensure_plan(
        model.spec.name,
        model.entry["sha256"][model.onnx.name],
        lambda: onnx_for(model, options.precision),
        precision=options.precision,
        profile=options.profile,
        workspace_mib=options.workspace_mib,
        log=log,
    )
    return TensorRTBackend(cached.plan, options.profile, scale=model.spec.scale)
