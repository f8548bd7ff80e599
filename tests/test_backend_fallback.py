"""`auto` degrades gracefully when its runtime fails to load, a named backend fails loudly, and no batch
exceeds what a TensorRT plan's profile takes. The runtimes are stubbed: this runs on any CPU."""

from __future__ import annotations

import numpy as np
import pytest

import vsr
from vsr.api import frames
from vsr.backends import Backend
from vsr.backends.options import OrtOptions, TensorRTOptions, TorchOptions
from vsr.backends.select import Choice, fallback, max_batch
from vsr.backends.trt_plan import ShapeProfile
from vsr.errors import ModelError


class _Nearest(Backend):
    def __init__(self, name: str, scale: int) -> None:
        self.name, self.scale = name, scale

    def run(self, batch: np.ndarray) -> np.ndarray:
        return batch.repeat(self.scale, axis=1).repeat(self.scale, axis=2)


@pytest.fixture
def gpu_machine(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A machine where auto picks TensorRT, whose plan build fails; torch on CUDA loads (stubbed)."""
    from vsr.backends import select

    monkeypatch.setattr(select, "installed", lambda module: True)
    monkeypatch.setattr(select, "cuda_available", lambda: True)
    opened: list[str] = []

    def open_backend(options, model, *, log=lambda _m: None):  # type: ignore[no-untyped-def]
        opened.append(options.name)
        if isinstance(options, TensorRTOptions):
            raise ModelError("TensorRT's ONNX parser rejected the graph: UINT8 intermediate tensor")
        return _Nearest(f"{options.name} stub", model.spec.scale)

    monkeypatch.setattr(frames, "open_backend", open_backend)
    return opened


def test_auto_falls_back_to_torch_cuda_and_says_why(gpu_machine: list[str]) -> None:
    said: list[str] = []
    with vsr.load_model("espcn-x2", log=said.append) as model:
        assert gpu_machine == ["tensorrt", "torch"]
        assert model.choice.reason.startswith("auto: TensorRT failed (TensorRT's ONNX parser rejected")
        assert model.choice.reason.endswith("torch on CUDA instead") and said == [
            f"warning: {model.choice.reason}"
        ]
        assert model(np.zeros((4, 6, 3), np.uint8)).shape == (8, 12, 3)


def test_a_named_backend_fails_loudly(gpu_machine: list[str]) -> None:
    with pytest.raises(ModelError, match="UINT8 intermediate"):
        vsr.load_model("espcn-x2", backend="tensorrt")
    assert gpu_machine == ["tensorrt"]


def test_the_fallback_chain_ends_on_the_cpu() -> None:
    trt = Choice(TensorRTOptions(precision="bf16"), "auto: CUDA device and TensorRT found")
    torch = fallback(trt, ModelError("no plan"))
    assert torch is not None and torch.options == TorchOptions(device="cuda", precision="bf16")
    ort = fallback(torch, RuntimeError("CUDA error: out of memory"))
    assert ort is not None and isinstance(ort.options, OrtOptions) and "out of memory" in ort.reason
    assert fallback(ort, ModelError("x")) is None
    assert fallback(Choice(TensorRTOptions(), "asked for"), ModelError("x")) is None


def test_no_batch_exceeds_the_plans_profile(tmp_path) -> None:  # type: ignore[no-untyped-def]
    profile = ShapeProfile(min=(1, 32, 32), opt=(2, 64, 64), max=(2, 128, 128))
    assert max_batch(TensorRTOptions(profile=profile)) == 2 and max_batch(OrtOptions()) is None
    with pytest.raises(vsr.UsageError, match="over the TensorRT plan's profile"):
        vsr.upscale(
            tmp_path / "in.mp4", tmp_path / "o.mkv", batch=3, backend=TensorRTOptions(profile=profile)
        )
    from vsr.pipeline.tiling import plan_for_memory

    plan = plan_for_memory(80 << 30, 1080, 1920, scale=2, features=48, max_batch=4)
    assert plan.batch == 4  # an H200's free memory alone would allow far more


def test_a_plan_that_fails_for_the_jobs_shapes_sends_the_job_to_torch(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """TensorRT builds its plan once the job knows its shapes; under auto a failure there reruns the job
    on the next backend (the output written once, the reason in the result), as a failure at load does."""
    torch = pytest.importorskip("torch")
    import media_fixtures as mf

    from vsr.backends import DeviceBackend, select
    from vsr.errors import PlanError

    class _DeviceNearest(DeviceBackend):
        def __init__(self, name: str, scale: int, fail: bool) -> None:
            self.name, self.scale, self.fail, self.device = name, scale, fail, torch.device("cpu")

        def prepare(self, low: tuple, high: tuple) -> None:
            if self.fail:
                raise PlanError(f"no TensorRT plan for {low}..{high}: out of memory")

        def run_float(self, x):  # type: ignore[no-untyped-def]
            return torch.nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")

        def run(self, batch: np.ndarray) -> np.ndarray:
            return batch.repeat(self.scale, axis=1).repeat(self.scale, axis=2)

    monkeypatch.setattr(select, "installed", lambda module: True)
    monkeypatch.setattr(select, "cuda_available", lambda: True)
    opened: list[str] = []

    def open_backend(options, model, *, log=lambda _m: None):  # type: ignore[no-untyped-def]
        opened.append(options.name)
        return _DeviceNearest(f"{options.name} stub", model.spec.scale, fail=options.name == "tensorrt")

    monkeypatch.setattr(frames, "open_backend", open_backend)
    clip = mf.make_clip(tmp_path / "in.mkv", frames=5, width=64, height=48)
    said: list[str] = []
    result = vsr.upscale(clip.path, tmp_path / "out.mkv", model="espcn-x2", log=said.append)
    assert opened == ["tensorrt", "torch"] and result.frames == 5
    assert result.backend_reason.startswith(
        "auto: TensorRT failed (no TensorRT plan for (1, 48, 64)..(2, 48, 64)"
    )
    assert said == [f"warning: {result.backend_reason}"] and (tmp_path / "out.mkv").is_file()
    with pytest.raises(PlanError):  # asked for by name: no second chance
        vsr.upscale(clip.path, tmp_path / "again.mkv", model="espcn-x2", backend="tensorrt")
    assert not (tmp_path / "again.mkv").exists()
