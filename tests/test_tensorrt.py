"""TensorRT: profiles, cache keys and sidecars, strongly typed ONNX exports, and backend choice — on any
machine; plan building and running wherever TensorRT imports and a CUDA device exists."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vsr.backends.options import OrtOptions
from vsr.backends.trt_plan import DEFAULT_PROFILE, CachedPlan, PlanKey, ShapeProfile, cache_dir, parse_shape
from vsr.errors import BackendUnavailableError, UsageError
from vsr.models.artefacts import shipped_models


def _cuda() -> bool:
    from vsr.backends.select import cuda_available

    return cuda_available()


needs_trt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None or not _cuda(), reason="needs TensorRT and a CUDA device"
)
KEY = PlanKey("ab" * 32, "NVIDIA H100 80GB HBM3", "9.0", "10.13.0", "fp16", DEFAULT_PROFILE.describe(), 4096)


def test_shapes_parse_and_refuse_garbage() -> None:
    assert parse_shape("4x1080x1920") == (4, 1080, 1920)
    assert parse_shape(" 1X64X64 ") == (1, 64, 64)
    for bad in ("1080x1920", "0x64x64", "ax1x1", "1x2x3x4", ""):
        with pytest.raises(UsageError):
            parse_shape(bad)


def test_default_profile_covers_sd_to_4k_in_one_plan() -> None:
    for n in (1, 2, 4):
        for h, w in ((480, 720), (576, 720), (720, 1280), (1080, 1920), (2160, 3840), (1080, 1440)):
            assert DEFAULT_PROFILE.covers((n, h, w))
    assert not DEFAULT_PROFILE.covers((1, 4320, 7680)) and not DEFAULT_PROFILE.covers((8, 1080, 1920))
    with pytest.raises(UsageError, match="min <= opt <= max"):
        ShapeProfile(min=(1, 64, 64), opt=(1, 32, 64), max=(1, 64, 64))


def test_plan_key_changes_with_every_field_and_only_then() -> None:
    assert KEY.digest() == dataclasses.replace(KEY).digest()  # stable, not random or time-based
    variants = {
        "weights_sha256": "cd" * 32,
        "gpu": "NVIDIA H200",
        "compute_capability": "8.9",
        "tensorrt": "11.0.0",
        "precision": "bf16",
        "profile": ShapeProfile((1, 32, 32), (1, 720, 1280), (2, 1080, 1920)).describe(),
        "workspace_mib": 1024,
        "format": 99,
    }
    digests = {dataclasses.replace(KEY, **{k: v}).digest() for k, v in variants.items()}
    assert len(digests) == len(variants) and KEY.digest() not in digests
    assert KEY.file_stem("compact-x2").startswith("compact-x2-fp16-")
    assert dataclasses.replace(KEY, gpu="other").gpu_digest() != KEY.gpu_digest()
    assert dataclasses.replace(KEY, precision="fp32").gpu_digest() == KEY.gpu_digest()


def test_cached_plan_is_loaded_only_for_its_exact_key(tmp_path: Path) -> None:
    cached = CachedPlan.for_key(KEY, "compact-x2", tmp_path)
    assert not cached.valid_for(KEY)  # nothing built yet
    cached.store(KEY, b"plan bytes", {"build_s": 1.0})
    assert cached.valid_for(KEY)
    assert json.loads(cached.sidecar.read_text())["key"]["gpu"] == KEY.gpu
    foreign = dataclasses.replace(KEY, gpu="NVIDIA GeForce RTX 4090", compute_capability="8.9")
    assert not cached.valid_for(foreign)  # a plan from another GPU is never loaded
    assert not cached.valid_for(dataclasses.replace(KEY, tensorrt="10.14.0"))  # nor a stale one
    cached.plan.write_bytes(b"truncated")
    assert not cached.valid_for(KEY)  # the plan's hash is checked too
    cached.store(KEY, b"plan bytes")
    cached.sidecar.write_text("{not json")
    assert not cached.valid_for(KEY)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave nothing behind


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VSR_CACHE_DIR", str(tmp_path / "plans"))
    assert cache_dir() == tmp_path / "plans"
    monkeypatch.delenv("VSR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "vsr" / "engines"


@pytest.mark.parametrize("name", ["compact-x2", "espcn-x2", "fsrcnn-x2", "srcnn-x2"])
def test_fp16_graph_is_valid_strongly_typed_and_close_to_fp32(name: str) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("torch")
    import onnxruntime as ort

    from vsr.backends.tensorrt_backend import onnx_for

    model = shipped_models()[name]
    data = onnx_for(model, "fp16")
    graph = onnx.load_from_string(data)
    onnx.checker.check_model(graph, full_check=True)
    assert {t.data_type for t in graph.graph.initializer if t.dims} == {onnx.TensorProto.FLOAT16}
    io_types = [v.type.tensor_type.elem_type for v in (*graph.graph.input, *graph.graph.output)]
    assert io_types == [onnx.TensorProto.FLOAT16] * 2  # fp16 NCHW in and out, as vs-mlrt feeds TensorRT
    batch = np.random.default_rng(3).integers(0, 256, (2, 30, 44, 3), dtype=np.uint8)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    unit = session.run(None, {"input": batch.transpose(0, 3, 1, 2).astype(np.float16) / 255})[0]
    half = np.clip(np.round(unit.astype(np.float32) * 255), 0, 255).transpose(0, 2, 3, 1)
    full = ort.InferenceSession(str(model.onnx)).run(None, {"input": batch})[0]
    diff = np.abs(half - full)
    assert half.shape == full.shape and diff.max() <= 2 and diff.mean() < 0.05


def test_bf16_graph_passes_the_onnx_checker() -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("torch")
    from vsr.backends.tensorrt_backend import onnx_for

    graph = onnx.load_from_string(onnx_for(shipped_models()["compact-x2"], "bf16"))
    onnx.checker.check_model(graph, full_check=True)
    assert {t.data_type for t in graph.graph.initializer if t.dims} == {onnx.TensorProto.BFLOAT16}


def test_export_does_not_change_the_model_it_is_given() -> None:
    torch = pytest.importorskip("torch")
    from vsr.models.export import export_onnx, load_model

    model = shipped_models()["espcn-x2"]
    net = load_model(model.spec, model.weights)
    export_onnx(net, io.BytesIO(), scale=2, dtype=torch.float16)
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_auto_prefers_tensorrt_then_torch_cuda_then_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    from vsr.backends import select

    def machine(cuda: bool, installed: set[str]) -> None:
        monkeypatch.setattr(select, "cuda_available", lambda: cuda)
        monkeypatch.setattr(select, "installed", lambda m: m in installed)

    machine(True, {"torch", "tensorrt"})
    assert (select.choose("auto").options.name, select.choose("auto").reason) == (
        "tensorrt",
        "auto: CUDA device and TensorRT found",
    )
    assert select.choose("auto").device == "cuda"
    machine(True, {"torch"})
    choice = select.choose("auto")
    assert (choice.options.name, choice.device) == ("torch", "cuda")
    assert "TensorRT not installed" in choice.reason
    machine(False, {"torch", "tensorrt"})
    no_openvino = "auto: no CUDA device, OpenVINO not installed"
    assert select.choose("auto") == select.Choice(OrtOptions(), no_openvino)
    assert select.choose("auto").device == "cpu"
    with pytest.raises(BackendUnavailableError, match="CUDA device"):
        select.choose("tensorrt")  # never reaches TensorRT without a device
    machine(True, {"torch"})
    with pytest.raises(BackendUnavailableError, match="TensorRT"):
        select.choose("tensorrt")
    machine(False, set())
    assert "torch is not installed" in select.choose("auto").reason
    with pytest.raises(UsageError, match="unknown backend"):
        select.choose("cuda")


@pytest.mark.slow
@pytest.mark.skipif(_cuda(), reason="checks the refusal on a machine without CUDA")
def test_build_engine_without_a_gpu_is_one_clear_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vsr", "build-engine", "--model", "compact-x2"], capture_output=True, text=True
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "CUDA device" in out.stderr


@pytest.mark.slow
def test_build_engine_checks_its_arguments_before_any_gpu_work(tmp_path: Path) -> None:
    cases = [
        (["--model", "compact-x2", "--min", "2x64x64", "--opt", "1x64x64"], "min <= opt <= max"),
        (["--model", "compact-x2", "--max", "4k"], "expected NxHxW"),
        (["--model", "compact-x2", "--precision", "int8"], "'int8' is not one of"),
        (["--model", str(tmp_path / "missing.onnx"), "--precision", "fp32"], "no such file"),
    ]
    for args, message in cases:
        out = subprocess.run(
            [sys.executable, "-m", "vsr", "build-engine", *args], capture_output=True, text=True
        )
        assert out.returncode == 2 and message in out.stderr, (args, out.stderr)


def test_a_covering_plan_is_found_and_only_for_its_model_and_machine(tmp_path: Path) -> None:
    """Plans of `vsr build-engine` (or an earlier job) are used by any job whose shapes their profile
    takes; the narrowest wins; another GPU's, model's or precision's never."""
    wide = ShapeProfile((1, 32, 32), (4, 1080, 1920), (4, 2160, 3840))
    narrow = ShapeProfile((1, 1080, 1920), (2, 1080, 1920), (2, 1080, 1920))
    for profile in (wide, narrow):
        key = dataclasses.replace(KEY, profile=profile.describe())
        CachedPlan.for_key(key, "compact-x2", tmp_path).store(key, profile.describe().encode())
    other_gpu = dataclasses.replace(KEY, gpu="NVIDIA A100", profile=wide.describe())
    CachedPlan.for_key(other_gpu, "compact-x2", tmp_path).store(other_gpu, b"x")
    job = dataclasses.replace(KEY, profile=ShapeProfile.around((1, 1080, 1920), (2, 1080, 1920)).describe())

    def found(low: tuple, high: tuple, key: PlanKey = job, model: str = "compact-x2") -> str | None:
        plan = CachedPlan.covering(key, model, low, high, tmp_path)
        return None if plan is None else plan.plan.read_text()

    assert found((1, 1080, 1920), (2, 1080, 1920)) == narrow.describe()
    assert found((1, 720, 1280), (4, 1080, 1920)) == wide.describe()
    assert found((1, 720, 1280), (8, 1080, 1920)) is None  # no profile takes batch 8
    assert found((1, 16, 16), (1, 16, 16)) is None  # nor a 16x16 tile
    assert found((1, 1080, 1920), (2, 1080, 1920), model="espcn-x2") is None
    assert found((1, 1080, 1920), (2, 1080, 1920), dataclasses.replace(job, precision="fp32")) is None
    assert found((1, 1080, 1920), (2, 1080, 1920), dataclasses.replace(job, tensorrt="10.14.0")) is None
    (tmp_path / f"{KEY.file_stem('compact-x2')}.json").write_text("{not json")  # damaged: skipped
    assert found((1, 1080, 1920), (2, 1080, 1920)) == narrow.describe()


def test_timing_cache_and_plans_are_written_atomically() -> None:
    """A torn timing cache would fail every later build on that GPU (ignore_mismatch=False)."""
    import inspect

    from vsr.backends import tensorrt_backend

    source = inspect.getsource(tensorrt_backend.build_plan)
    assert "atomic_write(timing_cache" in source and ".write_bytes(" not in source


@needs_trt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_matches_onnxruntime_and_reuses_its_plan(
    precision: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vsr.backends.options import TensorRTOptions
    from vsr.backends.ort_backend import OrtBackend
    from vsr.backends.tensorrt_backend import TensorRTBackend

    monkeypatch.setenv("VSR_CACHE_DIR", str(tmp_path))
    model = shipped_models()["compact-x2"]
    builds: list[str] = []
    options = TensorRTOptions(precision=precision, workspace_mib=1024)  # type: ignore[arg-type]
    batch = np.random.default_rng(4).integers(0, 256, (2, 40, 72, 3), dtype=np.uint8)
    with (
        TensorRTBackend(model, options, log=builds.append) as trt_b,
        OrtBackend(model.onnx, scale=2) as ort_b,
    ):
        trt_b.prepare((1, 40, 72), (2, 40, 72))
        got, want = trt_b.run(batch), ort_b.run(batch)
        ten_bit = trt_b.run(batch.astype(np.uint16) * 257)  # 16-bit codes: no 8-bit step inside
    with TensorRTBackend(model, options, log=builds.append) as again:
        again.prepare((1, 40, 72), (1, 40, 72))  # covered by the first job's plan: no second build
        assert len(builds) == 1 and again.run(batch[:1]).shape == (1, 80, 144, 3)
    diff = np.abs(got.astype(np.int16) - want)
    assert got.shape == want.shape and diff.max() <= (1 if precision == "fp32" else 2)
    assert ten_bit.dtype == np.uint16 and np.abs(ten_bit / 257 - want).max() <= 2
    fixed = TensorRTOptions(precision=precision, profile=ShapeProfile((1, 16, 16), (1, 64, 64), (2, 64, 64)))  # type: ignore[arg-type]
    with (
        TensorRTBackend(model, fixed) as pinned,
        pytest.raises(UsageError, match="outside the plan's profile"),
    ):
        pinned.run(np.zeros((1, 128, 128, 3), np.uint8))
