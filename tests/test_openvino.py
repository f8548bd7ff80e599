"""The OpenVINO CPU backend: precision chosen by what the CPU computes, deep sources kept in fp32, frames in
order across workers, compiled shapes reused and bounded, and `auto` picking it (or falling back)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino")

from vsr.backends import UINT16
from vsr.backends import openvino_backend as ovb
from vsr.backends.options import OpenVinoOptions, OrtOptions
from vsr.backends.ort_backend import OrtBackend
from vsr.backends.select import Choice, choose, cuda_available, fallback
from vsr.errors import ModelError, UsageError
from vsr.models.artefacts import shipped_model

ESPCN = shipped_model("espcn-x2")


class _Cpu:
    """A stand-in for openvino.Core that reports the given capabilities."""

    def __init__(self, *caps: str) -> None:
        self.caps = ["FP32", *caps]

    def get_property(self, _device: str, _name: str) -> list[str]:
        return self.caps


def test_auto_precision_follows_the_cpu_and_the_source_depth() -> None:
    assert ovb.resolve_precision("auto", _Cpu("BF16"))[0] == "bf16"
    precision, why = ovb.resolve_precision("auto", _Cpu())
    assert precision == "fp32" and "no native bf16" in why
    precision, why = ovb.resolve_precision("auto", _Cpu("BF16"), UINT16)
    assert precision == "fp32" and "8 significant bits" in why
    assert ovb.resolve_precision("bf16", _Cpu()) == ("bf16", "asked for")
    # A model that bf16 measured to cost more than the budget on Set5 stays in fp32 under `auto`.
    precision, why = ovb.resolve_precision("auto", _Cpu("BF16"), cost=ovb.BF16_BUDGET_DB + 0.01)
    assert precision == "fp32" and "below fp32 on Set5" in why
    assert ovb.resolve_precision("auto", _Cpu("BF16"), cost=ovb.BF16_BUDGET_DB)[0] == "bf16"
    assert ovb.bf16_cost({}) == 0.0


def test_bf16_is_refused_on_a_cpu_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ovb, "bf16_capable", lambda _core: False)
    with pytest.raises(UsageError, match="no native bf16"):
        ovb.OpenVinoBackend(ESPCN, OpenVinoOptions(precision="bf16", cache=False))
    with ovb.OpenVinoBackend(ESPCN, OpenVinoOptions(cache=False)) as backend:
        assert backend.precision == "fp32" and "no native bf16" in backend.reason


def test_options_refuse_what_openvino_cannot_do() -> None:
    with pytest.raises(UsageError, match="OpenVINO runs fp32 or bf16, not fp16"):
        OpenVinoOptions(precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="3 workers need at least as many threads"):
        OpenVinoOptions(threads=2, workers=3)


def _frames(n: int, h: int, w: int, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    top = 256 if dtype is np.uint8 else 65536
    return np.random.default_rng(seed).integers(0, top, (n, h, w, 3)).astype(dtype)


def test_frames_come_back_in_order_across_workers() -> None:
    batch = _frames(5, 24, 40)  # more frames than workers, so requests are reused
    with ovb.OpenVinoBackend(ESPCN, OpenVinoOptions(precision="fp32", workers=2, cache=False)) as backend:
        out = backend.run(batch)
        for i in range(len(batch)):
            assert np.array_equal(out[i], backend.run(batch[i : i + 1])[0]), i


def test_deep_sources_stay_in_fp32_under_auto() -> None:
    # bf16 keeps 8 significant bits: on 16-bit codes it is off by whole 10-bit levels, so `auto` runs the
    # uint16 graph in fp32 and matches ONNX Runtime to within rounding.
    batch = _frames(2, 20, 28, np.uint16)
    with OrtBackend(ESPCN.onnx, scale=2, onnx_uint16=ESPCN.onnx_uint16) as ort:
        reference = ort.run(batch).astype(np.int64)
    with ovb.OpenVinoBackend(ESPCN, OpenVinoOptions(cache=False)) as auto:
        assert np.abs(auto.run(batch) - reference).max() <= 2  # 16-bit codes: 1/32 of a 10-bit level
    if ovb.bf16_capable(__import__("openvino").Core()):
        with ovb.OpenVinoBackend(ESPCN, OpenVinoOptions(precision="bf16", cache=False)) as bf16:
            assert np.abs(bf16.run(batch) - reference).max() > 64  # over one 10-bit level


def test_bf16_stays_within_a_few_levels_of_fp32() -> None:
    if not ovb.bf16_capable(__import__("openvino").Core()):
        pytest.skip("this CPU computes no bf16")
    batch = _frames(2, 36, 52)
    with (
        OrtBackend(ESPCN.onnx, scale=2) as ort,
        ovb.OpenVinoBackend(ESPCN, OpenVinoOptions(cache=False)) as bf16,
    ):
        assert bf16.precision == "bf16"
        diff = np.abs(bf16.run(batch).astype(np.int16) - ort.run(batch))
    assert diff.max() <= 4 and diff.mean() < 0.5


class _CountingCore:
    """Wraps openvino.Core and counts compiles."""

    def __init__(self, core: object) -> None:
        self.core, self.compiles = core, 0

    def compile_model(self, *args: object) -> object:
        self.compiles += 1
        return self.core.compile_model(*args)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.core, name)


def test_each_shape_compiles_once_and_few_are_kept() -> None:
    with ovb.OpenVinoBackend(ESPCN, OpenVinoOptions(precision="fp32", cache=False)) as backend:
        core = backend._core = _CountingCore(backend._core)  # type: ignore[assignment]
        for _ in range(3):
            backend.run(_frames(2, 16, 24))  # one compile, then reused
        backend.run(_frames(1, 16, 24))  # a short last batch: the same per-frame shape
        assert core.compiles == 1
        for h in range(17, 17 + 2 * ovb._SHAPES_KEPT):
            backend.run(_frames(1, h, 16))
        assert len(backend._compiled) == ovb._SHAPES_KEPT
        assert core.compiles == 1 + 2 * ovb._SHAPES_KEPT


def test_an_unreadable_graph_is_a_model_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="cannot load ONNX graph"):
        ovb.OpenVinoBackend(dataclasses.replace(ESPCN, onnx=bad), OpenVinoOptions(cache=False))


@pytest.mark.skipif(cuda_available(), reason="auto picks a GPU runtime here")
def test_auto_picks_openvino_on_the_cpu_and_onnxruntime_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from vsr.backends import select

    choice = choose("auto")
    assert isinstance(choice.options, OpenVinoOptions) and choice.options.precision == "auto"
    assert "fastest CPU runtime" in choice.reason
    real = select.installed
    monkeypatch.setattr(select, "installed", lambda m: m != "openvino" and real(m))
    choice = choose("auto")
    assert isinstance(choice.options, OrtOptions) and "OpenVINO not installed" in choice.reason


def test_a_failing_openvino_falls_back_to_onnxruntime() -> None:
    picked = Choice(OpenVinoOptions(threads=2), "auto: no CUDA device; OpenVINO is the fastest")
    ort = fallback(picked, ModelError("cannot compile"))
    assert ort is not None and ort.options == OrtOptions(threads=2) and "cannot compile" in ort.reason
    assert fallback(Choice(OpenVinoOptions(), "asked for"), ModelError("x")) is None


def test_upscale_through_openvino_keeps_every_frame(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import av
    import media_fixtures as mf

    import vsr

    clip = mf.make_clip(tmp_path / "in.mkv", width=64, height=48, frames=7)
    result = vsr.upscale(clip.path, tmp_path / "out.mkv", model="espcn-x2", backend="openvino", batch=3)
    assert result.frames == 7 and result.backend.startswith("openvino")
    with av.open(str(tmp_path / "out.mkv")) as out:
        video = out.streams.video[0]
        assert (video.width, video.height) == (128, 96) and len(out.streams.audio) == 1
        assert sum(1 for _ in out.decode(video)) == 7


def test_openvino_imported_after_vsr_sends_no_telemetry() -> None:
    # `import openvino` posts an analytics event from a forked child unless its telemetry package is
    # missing, when it uses its own no-op stub; offline the child hung `vsr upscale`'s exit after SIGTERM.
    import subprocess
    import sys

    code = "import vsr, openvino.tools.ovc.telemetry_utils as t; print(t.tm.__name__)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "openvino.tools.ovc.telemetry_stub"
