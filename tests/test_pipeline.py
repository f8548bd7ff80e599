"""The streaming job with stand-in models: timing, batching, error propagation, abort, bounded memory."""

from __future__ import annotations

from pathlib import Path

import av
import media_fixtures as mf
import numpy as np
import pytest

from vsr.backends import Backend
from vsr.errors import UsageError
from vsr.media import EncodeOptions
from vsr.pipeline import UpscaleJob, UpscaleRequest

FAST = EncodeOptions(preset="ultrafast")


class Nearest(Backend):
    """A stand-in backend: nearest-neighbour ×2, counting batch sizes."""

    name = "nearest"
    scale = 2

    def __init__(self, fail_at: int | None = None) -> None:
        self.batches: list[int] = []
        self.fail_at = fail_at

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self.fail_at is not None and len(self.batches) == self.fail_at:
            raise RuntimeError("model exploded")
        self.batches.append(batch.shape[0])
        return batch.repeat(2, axis=1).repeat(2, axis=2)


def test_batches_and_pts(vfr_mkv: mf.Clip, tmp_path: Path) -> None:
    model = Nearest()
    out = tmp_path / "o.mkv"
    seen: list[int] = []
    result = UpscaleJob(UpscaleRequest(vfr_mkv.path, out, scale=2, batch=5, encode=FAST), [model]).run(
        lambda p: seen.append(p.encoded)
    )
    n = len(vfr_mkv.pts)
    assert result.frames == n and sum(model.batches) == n
    assert model.batches == [5] * (n // 5) + ([n % 5] if n % 5 else [])
    assert seen[-1] == n and seen == sorted(seen)
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert sorted(p.pts * s.time_base for p in c.demux(s) if p.pts is not None) == sorted(
            vfr_mkv.seconds()
        )


def test_model_chain_applies_in_order(sd_mp4: mf.Clip, tmp_path: Path) -> None:
    first, second = Nearest(), Nearest()
    result = UpscaleJob(
        UpscaleRequest(sd_mp4.path, tmp_path / "o.mp4", scale=4, encode=FAST), [first, second]
    ).run()
    assert result.output_size == (4 * sd_mp4.width, 4 * sd_mp4.height)
    assert sum(first.batches) == sum(second.batches) == result.frames


def test_failure_in_model_stage_stops_everything_and_leaves_no_file(vfr_mkv: mf.Clip, tmp_path: Path) -> None:
    out = tmp_path / "o.mkv"
    with pytest.raises(RuntimeError, match="model exploded"):
        UpscaleJob(
            UpscaleRequest(vfr_mkv.path, out, scale=2, batch=2, encode=FAST), [Nearest(fail_at=3)]
        ).run()
    assert list(tmp_path.iterdir()) == []


def test_abort_raises_keyboard_interrupt_and_cleans_up(vfr_mkv: mf.Clip, tmp_path: Path) -> None:
    job = UpscaleJob(
        UpscaleRequest(vfr_mkv.path, tmp_path / "o.mkv", scale=2, batch=1, encode=FAST), [Nearest()]
    )

    def abort_early(p: object) -> None:
        job.abort()

    with pytest.raises(KeyboardInterrupt):
        job.run(abort_early)
    assert list(tmp_path.iterdir()) == []


def test_wrong_model_scale_is_caught(sd_mp4: mf.Clip, tmp_path: Path) -> None:
    # The request says ×4 but the model gives ×2: the writer refuses the frame instead of writing garbage.
    with pytest.raises(ValueError, match="expected"):
        UpscaleJob(UpscaleRequest(sd_mp4.path, tmp_path / "o.mp4", scale=4, encode=FAST), [Nearest()]).run()
    assert list(tmp_path.iterdir()) == []


def test_request_validation(tmp_path: Path) -> None:
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    with pytest.raises(UsageError):
        UpscaleRequest(a, b, scale=2, batch=0)
    with pytest.raises(UsageError, match="tile"):
        UpscaleRequest(a, b, scale=2, tile=8)
    with pytest.raises(UsageError, match="deinterlacing"):
        UpscaleRequest(a, b, scale=2, field_rate=True, deinterlace="off")
    with pytest.raises(UsageError):
        UpscaleJob(UpscaleRequest(a, b, scale=2), [])


def test_cpu_tiles_are_stitched_into_the_whole_frame(sd_mp4: mf.Clip, tmp_path: Path) -> None:
    # Tiles of 16 input pixels through a model that sees only its tile: the nearest ×2 of every tile,
    # stitched, is the nearest ×2 of the frame, so the tiled and the whole-frame outputs are identical.
    outputs = []
    for tile in (None, 16):
        model, out = Nearest(), tmp_path / f"o{tile}.mkv"
        request = UpscaleRequest(sd_mp4.path, out, scale=2, tile=tile, encode=EncodeOptions(codec="ffv1"))
        UpscaleJob(request, [model]).run()
        with av.open(str(out)) as c:
            outputs.append(np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]))
    assert outputs[0].shape[0] == len(sd_mp4.pts)
    assert np.array_equal(outputs[0], outputs[1])


class Hangs(Nearest):
    """A model that stops answering after its first batch, as a hung runtime would."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self.batches:
            import time

            time.sleep(3)  # far past the watchdog's limit below, short enough to let the thread end
        return super().run(batch)


def test_watchdog_stops_a_stalled_job_and_leaves_no_file(vfr_mkv: mf.Clip, tmp_path: Path) -> None:
    from vsr.errors import StalledError

    out = tmp_path / "o.mkv"
    request = UpscaleRequest(vfr_mkv.path, out, scale=2, encode=FAST, stall_seconds=0.5, queue_depth=1)
    with pytest.raises(StalledError, match=r"no frame decoded or encoded for 0.5 s"):
        UpscaleJob(request, [Hangs()]).run()
    assert list(tmp_path.iterdir()) == []
