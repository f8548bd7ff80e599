"""`vsr bench` on this machine: the grid, the stage breakdown, JSON and the chart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_bench_writes_grid_breakdown_json_and_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    args = ["--models", "espcn-x2", "--resolutions", "360p", "--batches", "1,2", "--precisions", "fp32,fp16"]
    args += ["--backends", "onnxruntime", "--seconds", "0.1", "--e2e-frames", "6", "--out", str(out)]
    args += ["--e2e-backend", "onnxruntime"]
    run = subprocess.run(
        [sys.executable, "-m", "vsr", "bench", *args, "--chart", str(png), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert results == json.loads(out.read_text())
    grid = results["model_only"]
    measured = [p for p in grid if p["precision"] == "fp32"]
    assert [(p["batch"], p["resolution"]) for p in measured] == [(1, "360p"), (2, "360p")]
    for p in measured:
        assert p["frames_per_s"] > 0 and p["ms_per_batch"] > 0 and p["skipped"] is None
        # fps, ms per batch and megapixels agree with each other
        # (fields are rounded to 2 decimals, hence the absolute tolerance)
        assert p["frames_per_s"] == pytest.approx(1000 * p["batch"] / p["ms_per_batch"], rel=0.01, abs=0.01)
        mp = p["frames_per_s"] * 720 * 1280 / 1e6
        assert p["output_megapixels_per_s"] == pytest.approx(mp, rel=0.01, abs=0.02)
    assert all(p["skipped"] for p in grid if p["precision"] == "fp16")  # recorded as skipped, not dropped
    e2e = results["end_to_end"]
    assert e2e["frames"] == 6 and set(e2e["stages_fps"]) == {"decode", "compute", "encode"}
    # On the CPU the stages share the cores: the bound is the harmonic sum of the stages alone.
    bound = 1 / sum(1 / v for v in e2e["stages_fps"].values())
    assert e2e["bound"] == "shared cores" and e2e["bound_fps"] == pytest.approx(bound, rel=0.01)
    assert e2e["efficiency"] == pytest.approx(e2e["end_to_end_fps"] / bound, rel=0.02, abs=0.005)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_bench_refuses_unknown_grid_values() -> None:
    for args, message in ((["--resolutions", "8k"], "unknown resolution"), (["--batches", "x"], "integers")):
        run = subprocess.run([sys.executable, "-m", "vsr", "bench", *args], capture_output=True, text=True)
        assert run.returncode == 2 and message in run.stderr


def test_staged_device_path_breakdown_runs_on_the_cpu(tmp_path: Path) -> None:
    # The CUDA breakdown (upload, compute, download, host-to-host staged vs naive) with torch on the CPU:
    # the same code a GPU machine runs, minus the streams.
    pytest.importorskip("torch")
    from vsr import bench

    clip = bench.synthetic_clip(tmp_path / "c.mkv", height=64, width=96, frames=6)
    r = bench.end_to_end(clip, "espcn-x2", "torch", precision=None, batch=2, out_dir=tmp_path, staged=True)
    assert r.frames == 6 and r.path == "cpu yuv420p staged"
    assert set(r.stages_fps) == {"decode", "upload", "compute", "download", "encode"}
    assert r.staged_host_fps and r.naive_host_fps and r.efficiency > 0


@pytest.mark.slow
def test_bench_sets_cpu_runtimes_and_precisions_side_by_side() -> None:
    pytest.importorskip("openvino")
    from vsr import bench

    result = bench.run(
        models=["espcn-x2"],
        resolutions=["360p"],
        batches=[1],
        precisions=["fp32", "bf16"],
        backends=["onnxruntime", "openvino"],
        seconds=0.1,
        e2e=False,
    )
    points = {(p.backend, p.precision): p for p in result.model_only}
    assert set(points) == {(b, p) for b in ("onnxruntime", "openvino") for p in ("fp32", "bf16")}
    assert "ONNX Runtime runs fp32" in (points["onnxruntime", "bf16"].skipped or "")
    assert points["onnxruntime", "fp32"].set5_psnr_cost_db == 0
    assert points["openvino", "fp32"].frames_per_s
    import openvino as ov

    from vsr.backends.openvino_backend import bf16_capable

    if not bf16_capable(ov.Core()):  # an AVX2-only CPU (the AMD EPYC some days): refused, and said why
        assert "no native bf16" in (points["openvino", "bf16"].skipped or "")
        return
    assert points["openvino", "bf16"].frames_per_s
    cost = points["openvino", "bf16"].set5_psnr_cost_db
    assert cost is not None and 0 <= cost <= 0.05  # the manifest's figure, itself recomputed by test_quality
