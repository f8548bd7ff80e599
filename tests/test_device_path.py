"""The GPU path's parts on any machine: Y'CbCr maths against swscale, the double-buffered stager, tiling,
the memory plan, and a whole job with planar YUV staged through torch (on CUDA where there is one)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import av.filter
import media_fixtures as mf
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vsr.backends.options import TorchOptions  # noqa: E402
from vsr.backends.torch_backend import TorchBackend  # noqa: E402
from vsr.media import EncodeOptions  # noqa: E402
from vsr.media.colour import sws_matrix  # noqa: E402
from vsr.media.planes import pack, unpack  # noqa: E402
from vsr.media.profiles import EncodeSettings  # noqa: E402
from vsr.models.artefacts import shipped_models  # noqa: E402
from vsr.pipeline import UpscaleJob, UpscaleRequest  # noqa: E402
from vsr.pipeline.device import DevicePath  # noqa: E402
from vsr.pipeline.double_buffer import DeviceStager  # noqa: E402
from vsr.pipeline.tiling import plan_for_memory, run_tiled, tiles  # noqa: E402
from vsr.pipeline.yuv import YuvSpec, rgb_to_yuv, yuv_to_rgb  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
CASES = [
    (1, 1, "yuv420p"),
    (6, 1, "yuv420p"),
    (1, 2, "yuv420p"),
    (9, 1, "yuv420p10le"),
    (5, 2, "yuv420p10le"),
    (1, 1, "yuv422p"),
    (9, 2, "yuv422p10le"),
    (1, 1, "yuv444p"),
    (6, 1, "yuv444p10le"),
]


def _smooth(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    planes = [
        128 + 100 * np.sin(x / 17 + y / 21),
        128 + 90 * np.cos(x / 25 - y / 19),
        128 + 60 * np.sin((x + y) / 26),
    ]
    return np.stack(planes, -1).round().astype(np.uint8)


def _to_codes(rgb: np.ndarray, matrix: int, full: bool, fmt: str) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return pack(
        frame.reformat(format=fmt, dst_colorspace=sws_matrix(matrix), dst_color_range=2 if full else 1)
    )


def _rgb8(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.clamp(0, 1) * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()


@pytest.mark.parametrize("matrix,rng,fmt", CASES)
def test_flat_colours_convert_like_swscale(matrix: int, rng: int, fmt: str) -> None:
    # Flat patches make chroma filtering irrelevant: what is left is matrix, range and bit depth. swscale
    # itself dithers chroma by a code (white in full range comes out as a mix of 127 and 128), hence ±2.
    colours = [(200, 50, 100), (16, 235, 128), (255, 255, 255), (0, 0, 0), (90, 140, 30), (10, 20, 240)]
    for colour in colours:
        # 32 wide: swscale 8.1 fills 16-wide yuv422p10le chroma from uninitialised memory (varies run to run).
        rgb = np.empty((16, 32, 3), np.uint8)
        rgb[...] = colour
        codes = _to_codes(rgb, matrix, rng == 2, fmt)
        spec = YuvSpec(matrix, rng == 2, 10 if "10" in fmt else 8, layout=fmt)
        ours = _rgb8(yuv_to_rgb(torch.from_numpy(codes.astype(np.int32))[None], 16, spec))
        assert np.abs(ours.astype(int) - colour).max() <= 2, (colour, ours[0, 0])
        back = rgb_to_yuv(yuv_to_rgb(torch.from_numpy(codes.astype(np.int32))[None], 16, spec), spec)
        assert np.abs(back[0].numpy().astype(int) - codes).max() <= 1  # codes survive the round trip


@pytest.mark.parametrize("matrix,rng,fmt", CASES)
def test_natural_pictures_come_back_at_least_as_close_as_swscale(matrix: int, rng: int, fmt: str) -> None:
    img = _smooth(48, 64)
    codes = _to_codes(img, matrix, rng == 2, fmt)
    spec = YuvSpec(matrix, rng == 2, 10 if "10" in fmt else 8, layout=fmt)
    ours = _rgb8(yuv_to_rgb(torch.from_numpy(codes.astype(np.int32))[None], 48, spec))
    frame = unpack(codes, fmt, 64, 48)
    theirs = frame.reformat(
        format="rgb24", src_colorspace=sws_matrix(matrix), src_color_range=rng
    ).to_ndarray()
    ours_err, theirs_err = np.abs(ours.astype(int) - img).mean(), np.abs(theirs.astype(int) - img).mean()
    assert ours_err <= theirs_err + 0.05 and ours_err < 1.5


def test_ten_bit_precision_survives_the_round_trip() -> None:
    # A gentle 10-bit ramp: 8-bit maths would collapse neighbouring codes, float32 keeps them.
    h, w = 16, 256
    codes = np.empty((h * 3 // 2, w), np.uint16)
    codes[:h] = np.arange(300, 300 + w, dtype=np.uint16)[None]
    codes[h:] = 512
    spec = YuvSpec(1, False, 10)
    back = rgb_to_yuv(yuv_to_rgb(torch.from_numpy(codes.astype(np.int32))[None], h, spec), spec)
    assert np.array_equal(back[0, :h].numpy().astype(np.uint16), codes[:h])


@pytest.mark.parametrize("layout", ["yuv422p", "yuv422p10le", "yuv444p", "yuv444p10le"])
def test_full_vertical_chroma_survives_the_device_path(layout: str) -> None:
    """4:2:2 and 4:4:4 keep their chroma rows: stripes one row tall in Cb and Cr come back (a 4:2:0 detour,
    the old GPU path's, averages them away)."""
    from vsr.media.planes import PLANAR

    h, w = 16, 32
    planar = PLANAR[layout]
    top = 1 << (planar.bits - 8)
    codes = np.empty((planar.rows(h), w), planar.dtype)
    codes[:h] = 126 * top
    chroma = np.where(np.arange(h)[:, None] % 2 == 0, 100, 156) * top  # alternate rows: vertical detail
    cw = w // planar.sub_w
    cb = np.broadcast_to(chroma, (h, cw)).reshape(-1)
    codes[h:].reshape(-1)[:] = np.concatenate([cb, 256 * top - cb])
    spec = YuvSpec(1, False, planar.bits, layout=layout)
    back = rgb_to_yuv(yuv_to_rgb(torch.from_numpy(codes.astype(np.int32))[None], h, spec), spec)
    assert np.abs(back[0].numpy().astype(int) - codes).max() <= 1


def test_the_device_path_keeps_the_sources_chroma_layout() -> None:
    from vsr.pipeline.job import negotiate

    for source, encoder, expected in (
        ("yuv422p10le", "yuv422p10le", ("yuv422p10le", "yuv422p10le")),
        ("yuv444p", "yuv420p", ("yuv444p", "yuv420p")),
        ("yuv411p", "yuv422p", ("yuv422p", "yuv422p")),
        ("yuv420p10le", "p010le", ("yuv420p10le", "yuv420p10le")),
    ):
        layouts = negotiate(_format_with(pix_fmt=source), [], device=True, encoder_pix_fmt=encoder)
        assert (layouts.decode, layouts.encode) == expected, source
    odd = _format_with(width=63)  # no whole chroma samples: the RGB path
    assert negotiate(odd, [], device=True, encoder_pix_fmt="yuv420p").decode == "rgb24"
    rgb_source = _format_with(pix_fmt="gbrp")
    assert negotiate(rgb_source, [], device=True, encoder_pix_fmt="yuv420p").decode == "rgb24"


def _swscale(frame: av.VideoFrame, fmt: str, **positions: int) -> av.VideoFrame:
    """FFmpeg's own conversion with explicit chroma positions (1/256 of a luma sample; -1 for 4:2:0's
    halfway is 128), BT.709 limited range, accurate rounding and full chroma interpolation."""
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=frame.width, height=frame.height, format=frame.format, time_base=Fraction(1, 25)
    )
    side = "out" if fmt.startswith("yuv") else "in"
    options = ":".join(f"{k}={v}" for k, v in positions.items())
    scale = graph.add(
        "scale",
        f"{options}:{side}_color_matrix=bt709:{side}_range=tv:flags=bilinear+accurate_rnd+full_chroma_int",
    )
    convert, sink = graph.add("format", fmt), graph.add("buffersink")
    source.link_to(scale)
    scale.link_to(convert)
    convert.link_to(sink)
    graph.configure()
    graph.push(frame)
    return graph.pull()


# AVCHROMA_LOC_* → swscale's chroma position (horizontal, vertical) in 1/256 of a luma sample.
POSITIONS = {1: (0, 128), 2: (128, 128), 3: (0, 0)}


def _chroma_rich(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    planes = [
        128 + 100 * np.sin(x / 3.1 + y / 7),
        128 + 90 * np.sin(y / 2.7),
        128 + 100 * np.cos(x / 2.3 - y / 5),
    ]
    return np.stack(planes, -1).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("location", sorted(POSITIONS))
def test_chroma_is_read_from_where_ffmpeg_sited_it(location: int) -> None:
    """Planes FFmpeg subsampled at one siting come back closest when read at that siting: a half-pixel
    chroma shift (the old GPU path's) costs visibly more on fine colour detail."""
    rgb = _chroma_rich(64, 96)
    h_pos, v_pos = POSITIONS[location]
    coded = _swscale(
        av.VideoFrame.from_ndarray(rgb, format="rgb24"), "yuv420p", out_h_chr_pos=h_pos, out_v_chr_pos=v_pos
    )
    planes = torch.from_numpy(coded.to_ndarray()[None].copy())
    error = {
        loc: np.abs(_rgb8(yuv_to_rgb(planes, 64, YuvSpec(1, False, 8, loc))).astype(int) - rgb).mean()
        for loc in POSITIONS
    }
    assert min(error, key=error.__getitem__) == location
    assert all(error[loc] > 1.3 * error[location] for loc in POSITIONS if loc != location), error


def _format_with(**changes: object):  # type: ignore[no-untyped-def]
    import dataclasses

    from vsr.media.reader import SourceFormat

    base = SourceFormat(64, 48, "yuv420p", Fraction(1, 25), None, Fraction(25), 1, 1, 1, 1)
    return dataclasses.replace(base, **changes)


def test_output_chroma_is_left_sited_as_decoders_assume() -> None:
    rgb = _chroma_rich(64, 96)
    unit = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    centred = _format_with(chroma_location=2)
    assert YuvSpec.of(centred, "yuv420p").siting == ("mid", "mid")  # a centre-sited source is read so,
    assert YuvSpec.of(centred, "yuv420p", matrix=1).siting == ("even", "mid")  # and written left-sited
    planes = rgb_to_yuv(unit, YuvSpec(1, False, 8)).numpy()[0]
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    error = {
        loc: np.abs(
            _swscale(frame, "rgb24", in_h_chr_pos=h, in_v_chr_pos=v).to_ndarray().astype(int) - rgb
        ).mean()
        for loc, (h, v) in POSITIONS.items()
    }
    assert min(error, key=error.__getitem__) == 1 and error[2] > 1.5 * error[1], error


def test_the_reader_reports_the_streams_chroma_location(tmp_path: Path) -> None:
    from vsr.media import VideoReader

    for chromaloc, expected in ((0, 1), (2, 3), (1, 2)):  # x264's chroma_sample_loc_type → AVCHROMA_LOC
        path = tmp_path / f"cl{chromaloc}.mkv"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("libx264", rate=25, options={"x264-params": f"chromaloc={chromaloc}"})
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for i in range(3):
                picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
                out.mux(stream.encode(picture.reformat(format="yuv420p")))
            out.mux(stream.encode())
        with VideoReader(path) as reader:
            assert reader.format.chroma_location == expected, chromaloc


def test_stager_returns_every_batch_in_order_with_overlap_slots() -> None:
    calls: list[int] = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls.append(int(x[0, 0, 0]))
        return (x.to(torch.int32) * 2 + 1).to(torch.int16)

    batches = [np.full((n, 6, 4), k, np.uint8) for k, n in enumerate([2, 2, 1, 3, 3, 2, 1])]
    got = []
    with DeviceStager(fn, DEVICE, slots=2) as stager:
        for k, b in enumerate(batches):
            if stager.full:
                got.append(stager.collect())
            stager.submit(b, meta=k)
        assert stager.full
        with pytest.raises(RuntimeError, match="busy"):
            stager.submit(batches[0])
        got += stager.drain()
        with pytest.raises(RuntimeError, match="nothing submitted"):
            stager.collect()
    assert [meta for _, meta in got] == list(range(len(batches))) and calls == list(range(len(batches)))
    for (out, k), b in zip(got, batches, strict=True):
        assert out.shape == b.shape and (out == 2 * k + 1).all()


def test_stager_uploads_batches_from_where_they_were_assembled_and_reuses_buffers() -> None:
    """The decode thread's pinned batch is uploaded in place (no host copy); results are read in place
    and their buffers serve later batches once released, so the pools stay as small as the queues."""
    stager = DeviceStager(lambda x: x * 2, DEVICE, slots=2)
    seen_in, seen_out = set(), set()
    for k in range(6):
        batch = stager.host_batch((3, 4, 5), np.uint8)
        batch[...] = k
        seen_in.add(batch.__array_interface__["data"][0])
        stager.submit(batch[: 2 if k == 5 else 3])  # the last batch ends short: a slice of its buffer
        out, _ = stager.collect()
        assert out.shape == ((2 if k == 5 else 3), 4, 5) and (out == 2 * k).all()
        seen_out.add(out.__array_interface__["data"][0])
        stager.release(out)
    assert len(seen_in) == 1 and len(seen_out) <= 2  # one input buffer; the short batch's output is its own
    held = [stager.host_batch((3, 4, 5), np.uint8) for _ in range(3)]  # all out at once: the pool grows
    assert len({h.__array_interface__["data"][0] for h in held}) == 3
    foreign = np.full((3, 4, 5), 7, np.uint8)  # a batch not from the pool is copied in once
    stager.submit(foreign)
    foreign[...] = 0  # the caller may reuse its array at once
    assert (stager.collect()[0] == 14).all()


def test_stager_carries_ten_bit_planes_as_their_bits() -> None:
    planes = np.array([[[0, 1023], [512, 65535]]], np.uint16)
    with DeviceStager(lambda x: x.clone(), DEVICE) as stager:
        stager.submit(planes)
        out, _ = stager.collect()
    assert out.dtype == np.uint16 and np.array_equal(out, planes)


def test_tiles_partition_the_frame() -> None:
    h, w = 70, 130
    cover = np.zeros((h, w), int)
    for t in tiles(h, w, 32, 8):
        cover[t.core_y0 : t.core_y1, t.core_x0 : t.core_x1] += 1
        assert t.y0 <= t.core_y0 and t.core_y1 <= t.y1 and t.x0 <= t.core_x0 and t.core_x1 <= t.x1
        assert t.core_y0 - t.y0 == min(8, t.core_y0) and t.x1 - t.core_x1 == min(8, w - t.core_x1)
    assert (cover == 1).all()


@pytest.mark.parametrize("name", ["compact-x2", "srcnn-x2"])
def test_tiled_equals_untiled_when_overlap_covers_the_receptive_field(name: str) -> None:
    model = shipped_models()[name]
    with TorchBackend(model.spec, model.weights) as backend:
        x = torch.from_numpy(_smooth(50, 70)).permute(2, 0, 1)[None].float() / 255
        whole = backend.run_float(x)
        tiled = run_tiled(backend.run_float, x, scale=2, tile=24, overlap=16)
    assert tiled.shape == whole.shape == (1, 3, 100, 140)
    assert (tiled - whole).abs().max() < 1e-4


def test_memory_plan_batches_small_frames_and_tiles_huge_ones() -> None:
    gib = 1 << 30
    roomy = plan_for_memory(40 * gib, 1080, 1920, scale=2, features=48)
    assert roomy.tile is None and roomy.batch == 8
    tight = plan_for_memory(2 * gib, 1080, 1920, scale=2, features=48)
    assert tight.tile is None and 1 <= tight.batch < 8
    tiny = plan_for_memory(256 << 20, 2160, 3840, scale=4, features=48)
    assert tiny.batch == 1 and tiny.tile is not None and tiny.tile % 64 == 0
    per_tile = plan_for_memory(256 << 20, tiny.tile, tiny.tile, scale=4, features=48)
    assert per_tile.tile is None  # a tile of the chosen side fits the budget


@pytest.mark.parametrize(
    "pix_fmt,codec,out_fmt",
    [
        ("yuv420p", "libx264", "yuv420p"),
        ("yuv420p10le", "ffv1", "yuv420p10le"),
        ("yuv422p10le", "ffv1", "yuv422p10le"),  # 4:2:2 stays 4:2:2 on the GPU path
        ("yuv444p", "ffv1", "yuv444p"),
        ("yuv422p", "libx264", "yuv420p"),  # planes of one layout in, another out
    ],
)
def test_job_on_the_device_path_keeps_timing_and_matches_the_rgb_path(
    pix_fmt: str, codec: str, out_fmt: str, media_dir: Path, tmp_path: Path
) -> None:
    clip = mf.make_clip(
        media_dir / f"dev-{pix_fmt}.mkv", frames=11, pix_fmt=pix_fmt, vfr=True, audio_tracks=1
    )
    model = shipped_models()["espcn-x2"]
    if codec == "ffv1":
        encode = EncodeSettings(profile="archive", pix_fmt=out_fmt).resolve(".mkv")
    else:
        encode = EncodeOptions(codec=codec, pix_fmt=out_fmt, preset="ultrafast", crf=12)
    outputs = {}
    for label, path in (("device", DevicePath(DEVICE, (model.spec,))), ("rgb", None)):
        out = tmp_path / f"{label}.mkv"
        with TorchBackend(model.spec, model.weights, TorchOptions(device=DEVICE.type)) as backend:
            request = UpscaleRequest(clip.path, out, scale=2, batch=3, encode=encode)
            result = UpscaleJob(request, [backend], device_path=path).run()
        assert result.frames == 11
        with av.open(str(out)) as c:
            s = c.streams.video[0]
            assert s.codec_context.pix_fmt == out_fmt and (s.width, s.height) == (
                clip.width * 2,
                clip.height * 2,
            )
            frames = list(c.decode(s))
            assert [f.pts * f.time_base for f in frames] == [p * clip.time_base for p in clip.pts]
            outputs[label] = np.stack([f.to_ndarray(format="rgb24") for f in frames]).astype(int)
            assert len(c.streams.audio) == 1
        if "10le" in pix_fmt:
            with av.open(str(out)) as c:
                y = pack(next(c.decode(video=0)))[: clip.height * 2]
            assert len(np.unique(y % 4)) == 4  # real 10-bit codes, not 8-bit values shifted up
    # The same model on the two paths: only colour conversion and chroma filtering differ (a wrong matrix,
    # range or plane order would be off by tens of levels; the fixture's chroma detail accounts for ~2).
    assert np.abs(outputs["device"] - outputs["rgb"]).mean() < 3.0
