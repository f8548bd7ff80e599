"""One contract, every backend: the same checks for ONNX Runtime, OpenVINO fp32 (where it installs), torch
(CPU, and CUDA where it exists) and TensorRT (where it imports and a CUDA device exists)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from vsr.backends import Backend
from vsr.backends.options import OpenVinoOptions, OrtOptions, TensorRTOptions, TorchOptions
from vsr.backends.ort_backend import OrtBackend
from vsr.backends.select import cuda_available, installed
from vsr.models.artefacts import ShippedModel, shipped_models

HAS_TORCH = installed("torch")
HAS_CUDA = cuda_available()
HAS_TRT = HAS_CUDA and installed("tensorrt")


def _ort(model: ShippedModel) -> OrtBackend:
    return OrtBackend(model.onnx, scale=model.spec.scale, options=OrtOptions(threads=1))


@contextmanager
def _torch(model: ShippedModel, device: Literal["cpu", "cuda"], _tmp: Path) -> Iterator[Backend]:
    from vsr.backends.torch_backend import TorchBackend

    with TorchBackend(model.spec, model.weights, TorchOptions(device=device)) as backend:
        yield backend


def _openvino(model: ShippedModel) -> Backend:
    from vsr.backends.openvino_backend import OpenVinoBackend

    return OpenVinoBackend(model, OpenVinoOptions(precision="fp32", workers=2, cache=False))


@contextmanager
def _tensorrt(model: ShippedModel, tmp: Path) -> Iterator[Backend]:
    import os

    from vsr.backends.tensorrt_backend import open_tensorrt
    from vsr.backends.trt_plan import ShapeProfile

    os.environ["VSR_CACHE_DIR"] = str(tmp)
    profile = ShapeProfile((1, 8, 8), (2, 64, 64), (3, 96, 96))
    options = TensorRTOptions(precision="fp32", profile=profile, workspace_mib=512)
    with open_tensorrt(model, options) as backend:
        yield backend


FACTORIES: dict[str, tuple[bool, Callable]] = {
    "onnxruntime": (True, lambda m, _tmp: _ort(m)),
    "openvino-fp32": (installed("openvino"), lambda m, _tmp: _openvino(m)),
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
        _ort(model) as reference,
    ):
        assert isinstance(backend, Backend) and backend.name
        for shape in ((1, 17, 31, 3), (3, 24, 20, 3)):  # odd sizes and a batch of three
            batch = rng.integers(0, 256, shape, dtype=np.uint8)
            out = backend.run(batch)
            n, h, w, _ = shape
            assert out.shape == (n, h * s, w * s, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
            assert np.abs(out.astype(np.int16) - reference.run(batch)).max() <= 1
            assert np.array_equal(out, backend.run(batch))  # deterministic
            # Frames in a batch are independent of each other: exactly on the CPU; within one level on a
            # GPU, whose kernels (and TF32 use) differ with the batch size.
            alone = backend.run(batch[:1]).astype(np.int16)
            assert np.abs(out[:1] - alone).max() <= (1 if backend_name in ("torch-cuda", "tensorrt") else 0)
        flat = np.full((1, 16, 16, 3), 128, np.uint8)
        assert np.abs(backend.run(flat).astype(int) - 128).max() <= 3  # a flat picture stays flat
