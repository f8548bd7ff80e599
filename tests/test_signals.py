"""Signals: Ctrl-C and SIGTERM end a real `vsr upscale` process cleanly, exit 130, nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import media_fixtures as mf
import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_sigterm_is_a_clean_interrupt(tmp_path: Path) -> None:
    src = mf.make_clip(tmp_path / "long.mkv", width=320, height=240, frames=240, audio_tracks=1).path
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsr", "upscale", str(src), str(out_dir / "out.mp4")],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.monotonic() + 60
    while not any(out_dir.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "vsr: error: interrupted"
    assert list(out_dir.iterdir()) == []


@pytest.mark.slow
def test_ctrl_c_exits_130_and_leaves_nothing(tmp_path: Path) -> None:
    src = mf.make_clip(tmp_path / "long.mkv", width=320, height=240, frames=240, audio_tracks=1).path
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsr", "upscale", str(src), str(out_dir / "out.mp4")],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A shell without job control starts background commands with SIGINT ignored, and Python then never
        # raises KeyboardInterrupt: give the child the default disposition a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not any(out_dir.iterdir()):  # the temporary output appears once encoding has started
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip() == "vsr: error: interrupted"
    assert list(out_dir.iterdir()) == []
