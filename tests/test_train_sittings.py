"""Runs that span sittings, and training at the silicon's speed: resumes that change nothing, bf16 only
where the device computes it, the degradation producer capped beside the trainer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsr.errors import UsageError  # noqa: E402
from vsr.train import silicon  # noqa: E402
from vsr.train.loop import TrainConfig, train  # noqa: E402


def _images(folder: Path, seeds: range) -> Path:
    from PIL import Image

    folder.mkdir()
    for s in seeds:
        rng = np.random.default_rng(s)
        y, x = np.mgrid[0:80, 0:96]
        f = rng.uniform(3, 12, 6)
        img = np.stack([128 + 100 * np.sin(x / f[i] + y / f[i + 3]) for i in range(3)], -1)
        Image.fromarray(img.round().clip(0, 255).astype(np.uint8)).save(folder / f"{s}.png")
    return folder


def _config(tmp_path: Path, out: str, **kw) -> TrainConfig:
    data = tmp_path / "train"
    if not data.exists():
        _images(data, range(3))
    base = dict(model="espcn-x2", data=data, out=tmp_path / out, steps=12, batch=4, patch=32, warmup=3,
                val_every=100, ckpt_every=100, threads=1)  # fmt: skip
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_a_run_paused_and_resumed_is_the_run_done_at_once(tmp_path: Path) -> None:
    # The sampler's crops and flips, torch's generator, Adam's moments and the schedule all carry over:
    # three sittings of one run end on exactly the weights of one uninterrupted run.
    whole = _weights(train(_config(tmp_path, "whole"), log=lambda _: None))
    paused = _config(tmp_path, "paused")
    train(paused, sitting_minutes=1e-9, log=lambda _: None)  # stops after its first step
    state = torch.load(paused.out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 1 and {"torch", "sampler_torch", "sampler_numpy"} <= set(state["rng"])
    train(paused, resume=True, sitting_minutes=1e-9, log=lambda _: None)
    resumed = _weights(train(paused, resume=True, log=lambda _: None))
    history = json.loads((paused.out / "history.json").read_text())
    assert [h["step"] for h in history] == [1, 2, 12]
    assert history[-1]["patches_seen"] == 12 * 4
    assert set(whole) == set(resumed)
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name


def test_resuming_with_another_schedule_is_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "run", steps=4)
    train(cfg, log=lambda _: None)
    with pytest.raises(UsageError, match=r"lr 0.001 → 0.0005"):
        train(_config(tmp_path, "run", steps=8, lr=5e-4), resume=True, log=lambda _: None)
    # A run saved before an option existed resumes: the option had its default then.
    saved = json.loads((cfg.out / "config.json").read_text())
    del saved["consistency"]
    (cfg.out / "config.json").write_text(json.dumps(saved))
    # A longer schedule is a deliberate choice and goes on.
    train(_config(tmp_path, "run", steps=6), resume=True, log=lambda _: None)
    assert torch.load(cfg.out / "checkpoint.pt", weights_only=True)["step"] == 6


def test_bf16_is_refused_where_the_cpu_would_emulate_it(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(silicon, "cpu_flags", lambda: {"avx2"})
    with pytest.raises(UsageError, match="no native bf16"):
        silicon.check_amp(cpu)
    for flag, unit in (("avx512_bf16", "AVX-512-BF16"), ("amx_bf16", "AMX")):
        monkeypatch.setattr(silicon, "cpu_flags", lambda flag=flag: {"avx2", flag})
        assert silicon.cpu_bf16() == unit
        silicon.check_amp(cpu)  # allowed


def test_train_amp_on_this_cpu_is_one_line_or_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from vsr.cli import main

    data = _images(tmp_path / "train", range(2))
    args = ["train", "--model", "espcn-x2", "--data", str(data), "--out", str(tmp_path / "run"),
            "--steps", "2", "--batch", "2", "--patch", "32", "--amp", "--channels-last"]  # fmt: skip
    code = main(args)
    if silicon.cpu_bf16() is None:
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no native bf16" in err[0] and "Traceback" not in err[0]
    else:
        assert code == 0
        assert json.loads((tmp_path / "run" / "config.json").read_text())["amp"] is True


def test_the_producer_is_capped_at_fresh_pairs_per_pair_drawn() -> None:
    from vsr.train.data import DegradedPool
    from vsr.train.real import RealDegradation

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(2)]
    fast = RealDegradation(codec_weights=(0, 0, 0, 0, 1))  # no codec: the producer is quick
    pool = DegradedPool(images, scale=2, patch=32, size=8, degradation=fast, seed=0, fresh=0.5)
    try:
        time.sleep(0.3)
        assert pool.made == 8  # nothing drawn yet: nothing renewed
        pool.draw(20, rng)
        deadline = time.monotonic() + 10
        while pool.made < 18 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        assert pool.made == 8 + 10  # half a new pair per pair drawn, no more
    finally:
        pool.close()


def test_several_data_folders_train_as_one_and_are_recorded(tmp_path: Path) -> None:
    from vsr.train.release import _training_command

    a, b = _images(tmp_path / "a", range(2)), _images(tmp_path / "b", range(5, 7))
    cfg = _config(tmp_path, "run", data=(a, b), steps=2)
    train(cfg, log=lambda _: None)
    saved = json.loads((cfg.out / "config.json").read_text())
    assert saved["data"] == [str(a), str(b)]
    assert f"--data {a} --data {b}" in _training_command(saved)
