"""No option is silently ignored: every combination a path cannot honour is one line and exit 2, before any
work, and leaves no file behind."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import media_fixtures as mf
import pytest

from vsr.backends.select import cuda_available, installed
from vsr.cli import main

NO_CUDA = not cuda_available()


def _nvenc_opens() -> bool:
    import av

    ctx = av.CodecContext.create("h264_nvenc", "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = 256, 256, "yuv420p", Fraction(1, 25)
    try:
        ctx.open()
    except (OSError, ValueError, av.error.FFmpegError):
        return False
    return True


NO_NVENC = not _nvenc_opens()
TORCH = installed("torch")
OPENVINO = installed("openvino")

REFUSED = [
    (["--backend", "onnxruntime", "--precision", "bf16"], "ONNX Runtime runs fp32, not bf16", True),
    (["--backend", "onnxruntime", "--precision", "fp16"], "ONNX Runtime runs fp32, not fp16", True),
    (["--backend", "onnxruntime", "--torch-compile"], "need the torch backend", True),
    (["--backend", "onnxruntime", "--cuda-graphs"], "need the torch backend", True),
    (["--backend", "openvino", "--precision", "fp16"], "OpenVINO runs fp32 or bf16, not fp16", OPENVINO),
    (["--backend", "openvino", "--torch-compile"], "need the torch backend", OPENVINO),
    (["--backend", "torch", "--precision", "fp16"], "fp16 needs CUDA", TORCH and NO_CUDA),
    (["--backend", "torch", "--cuda-graphs"], "CUDA graphs need a CUDA device", TORCH and NO_CUDA),
    (["--backend", "tensorrt"], "needs a working CUDA device", TORCH and NO_CUDA),
    (["--codec", "ffv1", "--crf", "10"], "--crf applies to libx264, libx264rgb and libx265, not ffv1", True),
    (
        ["--profile", "archive", "--preset", "slow"],
        "--preset applies to libx264, libx264rgb and libx265, not ffv1",
        True,
    ),
    (["--segment-seconds", "5"], "add --resume", True),
    (["--ext", ".mp4"], "--ext sets the container of a folder", True),
    (["--field-rate", "--deinterlace", "off"], "needs deinterlacing", True),
    (["--scale", "5"], "no default model for scale 5", True),
    (["--model", "espcn-x2", "--scale", "4"], "upscales ×2, not ×4", True),
    (["--denoise", "espcn-x2"], "takes a denoiser", True),
    (["--cluster", "somewhere"], "use local, auto or ray://HOST:PORT", True),
    (["--workers", "2"], "size a --cluster pool; add --cluster", True),
    (["--worker-cores", "2"], "size a --cluster pool; add --cluster", True),
    (["--parts-dir", "scratch"], "--parts-dir keeps the segments of --resume or --cluster", True),
    (["--resume", "--parts-dir", "/dev/null"], "--parts-dir /dev/null: not a folder", True),
    (["--cluster", "local", "--worker-cores", "4096"], "do not fit this machine's", True),
    (["--profile", "nvenc"], "h264_nvenc needs an NVIDIA GPU with NVENC", NO_NVENC),
    (["--profile", "nvenc-hevc"], "hevc_nvenc needs an NVIDIA GPU with NVENC", NO_NVENC),
    (["--codec", "av1_nvenc"], "av1_nvenc needs an NVIDIA GPU with NVENC", NO_NVENC),
]


@pytest.mark.parametrize("extra,message,applies", REFUSED, ids=[" ".join(r[0]) for r in REFUSED])
def test_refused_before_any_work(
    extra: list[str], message: str, applies: bool, sd_mp4: mf.Clip, tmp_path: Path, capsys
) -> None:
    if not applies:
        pytest.skip("this machine can honour the combination")
    out = tmp_path / "o.mkv"
    assert main(["upscale", str(sd_mp4.path), str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vsr: error:") and err.count("\n") == 0 and message in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "extra", [["--tile", "8"], ["--colorspace", "xyz"], ["--backend", "cuda"], ["--precision", "fp8"]]
)
def test_values_outside_the_choices_are_usage_errors(
    extra: list[str], sd_mp4: mf.Clip, tmp_path: Path
) -> None:
    assert main(["upscale", str(sd_mp4.path), str(tmp_path / "o.mkv"), *extra]) == 2
    assert list(tmp_path.iterdir()) == []


def test_cluster_without_ray_is_one_line(
    sd_mp4: mf.Clip, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the cluster extra were not installed
    args = ["upscale", str(sd_mp4.path), str(tmp_path / "o.mkv"), "--model", "espcn-x2", "--cluster", "local"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == "vsr: error: --cluster needs Ray: pip install 'vsr[cluster]'"
    assert list(tmp_path.iterdir()) == []


def test_report_is_refused_for_a_folder(sd_mp4: mf.Clip, tmp_path: Path, capsys) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    (inbox / "a.mp4").write_bytes(sd_mp4.path.read_bytes())
    assert main(["upscale", str(inbox), str(tmp_path / "out"), "--report", str(tmp_path / "r.json")]) == 2
    assert "--report is for one file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
