"""One contract, every backend: the same checks for ONNX Runtime, torch (CPU, and CUDA where it exists) and
TensorRT (where it imports and a CUDA device exists)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from vsr.backends import Backend
from vsr.backends.ort_backend import OrtBackend
from vsr.models.artefacts import ShippedModel, shipped_models

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_CUDA = HAS_TORCH and __import__("torch").cuda.is_available()
HAS_TRT = HAS_CUDA and importlib.util.find_spec("tensorrt") is not None


@contextmanager
def _torch(model: ShippedModel, device: str, _tmp: Path) -> Iterator[Backend]:
    from vsr.backends.torch_backend import TorchBackend

    with TorchBackend(model.spec, model.weights, device=device) as backend:
        yield backend


@contextmanager
def _tensorrt(model: ShippedModel, tmp: Path) -> Iterator[Backend]:
    import os

    from vsr.backends.tensorrt_backend import TensorRTBackend, ensure_plan, onnx_for
    from vsr.backends.trt_plan import Profile

    os.environ["VSR_CACHE_DIR"] = str(tmp)
    profile = Profile((1, 8, 8), (2, 64, 64), (3, 96, 96))
    digest = model.entry["sha256"][model.onnx.name]
    cached, _ = ensure_plan(model.spec.name, digest, lambda: onnx_for(model, "fp32"), precision="fp32",
                            profile=profile, workspace_mib=512)  # fmt: skip
    with TensorRTBackend(cached.plan, profile, scale=model.spec.scale) as backend:
        yield backend


FACTORIES: dict[str, tuple[bool, Callable]] = {
    "onnxruntime": (True, lambda m, _tmp: OrtBackend(m.onnx, threads=1)),
    "torch-cpu": (HAS_TORCH, lambda m, tmp: _torch(m, "cpu", tmp)),
    "torch-cuda": (HAS_CUDA, lambda m, tmp: _torch(m, "cuda", tmp)),
    "tensorrt": (HAS_TRT, _tensorrt),
}
PARAMS = [
    pytest.param(name, marks=pytest.mark.skipif(not ok, reason=f"{name} is not available here"))
    for name, (ok, _f) in FACTORIES.items()
]


@pytest.mark.parametrize("model_name", ["espcn-x2", "compact-x4", "srcnn-x2"])
@pytest.mark.parametrize("backend_name", PARAMS)
def test_backend_contract(backend_name: str, model_name: str, tmp_path: Path) -> None:
    model = shipped_models()[model_name]
    s = model.spec.scale
    rng = np.random.default_rng(7)
    with (
        FACTORIES[backend_name][1](model, tmp_path) as backend,
        OrtBackend(model.onnx, threads=1) as reference,
    ):
        assert isinstance(backend, Backend) and backend.name
        for shape in ((1, 17, 31, 3), (3, 24, 20, 3)):  # odd sizes and a batch of three
            batch = rng.integers(0, 256, shape, dtype=np.uint8)
            out = backend.run(batch)
            n, h, w, _ = shape
            assert out.shape == (n, h * s, w * s, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
            assert np.abs(out.astype(np.int16) - reference.run(batch)).max() <= 1
            assert np.array_equal(out, backend.run(batch))  # deterministic
            # frames in a batch are independent of each other
            assert np.array_equal(out[:1], backend.run(batch[:1]))
        flat = np.full((1, 16, 16, 3), 128, np.uint8)
        assert np.abs(backend.run(flat).astype(int) - 128).max() <= 3  # a flat picture stays flat
