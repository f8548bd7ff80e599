"""The built wheel carries the model artefacts, and a non-editable install upscales from anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import media_fixtures as mf
import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # builds and installs a wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(out),
        str(REPO),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    (path,) = out.glob("vsr-*.whl")
    return path


def test_wheel_contains_engines(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    manifest = json.loads((REPO / "engines" / "manifest.json").read_text())
    assert "vsr/engines/manifest.json" in names
    for entry in manifest["models"].values():
        assert f"vsr/engines/{entry['onnx']}" in names and f"vsr/engines/{entry['weights']}" in names


def test_installed_wheel_upscales_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    clip = mf.make_clip(tmp_path / "in.mp4", frames=6, audio_tracks=1)
    work = tmp_path / "elsewhere"
    work.mkdir()
    # The installed copy, not the checkout, must be the one imported: PYTHONPATH puts it first.
    code = (
        "import sys, vsr; from vsr.cli import main; "
        f"assert vsr.__file__.startswith({str(site)!r}), vsr.__file__; "
        "sys.exit(main(['upscale', sys.argv[1], 'out.mp4', '--preset', 'ultrafast']))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(clip.path)],
        cwd=work,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (work / "out.mp4").stat().st_size > 0
