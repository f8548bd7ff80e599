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
        "onnx_sha256": "cd" * 32,
        "gpu": "NVIDIA H200",
        "compute_capability": "8.9",
        "tensorrt": "11.0.0",
        "precision": "bf16",
        "profile": ShapeProfile((1, 32, 32), (1, 720, 1280), (2, 1080, 1920)).describe(),
        "workspace_mib": 1024,
        "format": 2,
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
    assert io_types == [onnx.TensorProto.UINT8] * 2
    batch = np.random.default_rng(3).integers(0, 256, (2, 30, 44, 3), dtype=np.uint8)
    run = lambda g: ort.InferenceSession(g, providers=["CPUExecutionProvider"]).run(None, {"input": batch})[0]  # noqa: E731
    half, full = run(data), run(model.onnx.read_bytes())
    diff = np.abs(half.astype(np.int16) - full)
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


@needs_trt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_matches_onnxruntime_and_reuses_its_plan(
    precision: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vsr.backends.ort_backend import OrtBackend
    from vsr.backends.tensorrt_backend import TensorRTBackend, ensure_plan, onnx_for

    monkeypatch.setenv("VSR_CACHE_DIR", str(tmp_path))
    model = shipped_models()["compact-x2"]
    profile = ShapeProfile((1, 16, 16), (2, 64, 96), (2, 128, 128))
    digest = model.entry["sha256"][model.onnx.name]
    builds: list[str] = []
    args = dict(precision=precision, profile=profile, workspace_mib=1024, log=builds.append)
    cached, _key = ensure_plan("compact-x2", digest, lambda: onnx_for(model, precision), **args)  # type: ignore[arg-type]
    again, _ = ensure_plan("compact-x2", digest, lambda: onnx_for(model, precision), **args)  # type: ignore[arg-type]
    assert again == cached and len(builds) == 1  # the second call found the cached plan
    batch = np.random.default_rng(4).integers(0, 256, (2, 40, 72, 3), dtype=np.uint8)
    with TensorRTBackend(cached.plan, profile, scale=2) as trt_b, OrtBackend(model.onnx, scale=2) as ort_b:
        got, want = trt_b.run(batch), ort_b.run(batch)
        with pytest.raises(Exception, match="outside the plan's profile"):
            trt_b.run(np.zeros((1, 256, 256, 3), np.uint8))
    diff = np.abs(got.astype(np.int16) - want)
    assert got.shape == want.shape and diff.max() <= (1 if precision == "fp32" else 2)
