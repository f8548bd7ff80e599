"""The public Python API, in process: vsr.upscale, upscale_folder, load_model, probe, typed errors."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import av
import media_fixtures as mf
import numpy as np
import pytest

import vsr

REPO = Path(__file__).resolve().parent.parent
FAST = vsr.EncodeSettings(preset="ultrafast")


def test_upscale_returns_a_result_reports_progress_and_prints_nothing(
    vfr_mkv: mf.Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[int] = []
    result = vsr.upscale(
        vfr_mkv.path, tmp_path / "o.mkv", encode=FAST, on_progress=lambda p: seen.append(p.encoded)
    )
    assert result.frames == len(vfr_mkv.pts) and result.fps > 0
    assert result.output_size == (2 * vfr_mkv.width, 2 * vfr_mkv.height)
    # The default model is auto: it measured the source and ran the chain it names.
    assert result.auto is not None and result.model == result.auto["chain"]
    assert result.backend_reason.startswith("auto:")
    assert seen and seen[-1] == result.frames and seen == sorted(seen)
    assert capsys.readouterr() == ("", "")  # the library never prints


def test_errors_are_typed_and_match_the_builtins(tmp_path: Path, sd_mp4: mf.Clip) -> None:
    with pytest.raises(vsr.BadInputError) as missing:
        vsr.upscale(tmp_path / "missing.mp4", tmp_path / "o.mkv")
    assert isinstance(missing.value, ValueError) and isinstance(missing.value, vsr.VsrError)
    with pytest.raises(vsr.UsageError, match="neither shipped nor imported"):
        vsr.upscale(sd_mp4.path, tmp_path / "o.mkv", model="nosuch")
    with pytest.raises(vsr.UsageError, match="fp32, not bf16"):
        vsr.upscale(sd_mp4.path, tmp_path / "o.mkv", backend="onnxruntime", precision="bf16")
    with pytest.raises(vsr.UsageError, match="with a backend options object"):
        vsr.load_model("espcn-x2", backend=vsr.OrtOptions(), precision="fp32")
    assert list(tmp_path.iterdir()) == []


def test_load_model_upscales_numpy_frames_of_both_depths_and_tiles_alike() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
    with vsr.load_model("espcn-x2", backend=vsr.OrtOptions(threads=1)) as model:
        assert model.scale == 2 and model.name == "espcn-x2" and "onnxruntime" in model.backend
        whole = model(frames)
        assert whole.shape == (2, 80, 112, 3) and whole.dtype == np.uint8
        assert np.array_equal(model(frames[0]), whole[0])  # one (H, W, 3) frame
        deep = model(frames.astype(np.uint16) * 257)
        assert deep.dtype == np.uint16 and np.abs(deep / 257.0 - whole).max() <= 2
        with pytest.raises(vsr.UsageError, match="uint8/uint16"):
            model(frames.astype(np.float32))
    with vsr.load_model("espcn-x2", backend=vsr.OrtOptions(threads=1), tile=16) as tiled:
        assert np.abs(tiled(frames).astype(int) - whole).max() <= 1


def test_load_model_chains_a_denoiser_before_the_upscaler() -> None:
    frame = np.full((24, 32, 3), 128, np.uint8)
    with vsr.load_model("espcn-x2", denoise="dncnn-color", backend="onnxruntime") as chain:
        assert chain.name == "dncnn-color → espcn-x2" and chain.scale == 2
        assert chain(frame).shape == (48, 64, 3)
    with pytest.raises(vsr.UsageError, match="takes a denoiser"):
        vsr.load_model("espcn-x2", denoise="compact-x2")


def test_probe_describes_the_file(sd_mp4: mf.Clip) -> None:
    info = vsr.probe(str(sd_mp4.path))
    assert isinstance(info, vsr.MediaInfo)
    assert (info.video.width, info.video.height) == (sd_mp4.width, sd_mp4.height)


def test_upscale_folder_records_each_file(vfr_mkv: mf.Clip, tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    shutil.copy(vfr_mkv.path, inbox / "a.mkv")
    (inbox / "b.mp4").write_bytes(b"not a video")
    calls: list[tuple[int, int, str]] = []
    done = vsr.upscale_folder(
        inbox, tmp_path / "out", encode=FAST, on_file=lambda k, n, f: calls.append((k, n, f.status))
    )
    assert calls == [(1, 2, "done"), (2, 2, "failed")]
    assert done.done == 1 and done.files[1].error_type == "BadInputError"
    assert (tmp_path / "out" / "a.vsr.json").is_file() and done.status_file.is_file()


def test_readme_python_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### From Python") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    mf.make_clip(tmp_path / "input.mp4", width=64, height=48, frames=4)
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code.group(1), "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    said = capsys.readouterr().out
    assert "(720, 1280, 3)" in said and "refused: " in said and "missing.mp4" in said
    with av.open(str(tmp_path / "output.mkv")) as c:
        assert c.streams.video[0].codec_context.width == 128
