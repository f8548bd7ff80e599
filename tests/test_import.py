"""`vsr import`: community checkpoints through spandrel and ONNX files into the model store, proved per
architecture family against spandrel's own torch output, and refused cleanly when they cannot be run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import av
import media_fixtures as mf
import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("spandrel") is None:  # imported through vsr, which keeps torchvision out of it
    pytest.skip("spandrel is not installed (the import extra)", allow_module_level=True)

import vsr  # noqa: E402
from vsr.cli import main  # noqa: E402
from vsr.models.checkpoint import Luma, describe, read_checkpoint, spandrel  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.mp4"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "store"
    monkeypatch.setenv("VSR_MODELS_DIR", str(root))
    return root


def _frame(height: int = 43, width: int = 61) -> np.ndarray:
    """A real picture of odd size: a crop of the sample clip's first frame."""
    with av.open(str(SAMPLE)) as container:
        rgb = next(container.decode(video=0)).to_ndarray(format="rgb24")
    return np.ascontiguousarray(rgb[200 : 200 + height, 300 : 300 + width])


def _make(family: str) -> torch.nn.Module:
    """A small network of the family with random weights (spandrel's own classes)."""
    spandrel()
    torch.manual_seed(0)
    archs = spandrel().architectures
    if family == "compact":
        net = archs.Compact.Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=4, upscale=2)
    elif family == "compact-grey":
        net = archs.Compact.Compact(num_in_ch=1, num_out_ch=1, num_feat=16, num_conv=4, upscale=2)
    elif family == "esrgan":
        net = archs.ESRGAN.ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=2, scale=4)
    elif family == "span":
        net = archs.SPAN.SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2)
    elif family == "swinir":
        net = archs.SwinIR.SwinIR(
            in_chans=3, embed_dim=24, depths=[2], num_heads=[2], window_size=8, upscale=2,
            upsampler="pixelshuffledirect", img_size=32,
        )  # fmt: skip
    elif family == "omnisr":
        net = archs.OmniSR.OmniSR(num_in_ch=3, num_out_ch=3, num_feat=16, window_size=8, up_scale=2)
    elif family == "dat":
        net = archs.DAT.DAT(in_chans=3, embed_dim=48, split_size=[8, 8], depth=[2], num_heads=[2], upscale=2)
    elif family == "dat-narrow":  # exports, but its graph fails in ONNX Runtime (a LayerNorm over 0 channels)
        net = archs.DAT.DAT(in_chans=3, embed_dim=24, split_size=[2, 4], depth=[2], num_heads=[2], upscale=2)
    elif family == "ditn":  # its UFONE reshapes by the batch and size it was traced at
        net = archs.DITN.DITN(dim=24, ITL_blocks=1, SAL_blocks=1, UFONE_blocks=1, patch_size=8, upscale=2)
    elif family == "hat":
        net = archs.HAT.HAT(
            in_chans=3, embed_dim=24, depths=[2], num_heads=[2], window_size=8, upscale=2, img_size=32,
            compress_ratio=3, squeeze_factor=6,
        )  # fmt: skip
    else:
        raise ValueError(family)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # not the initialisation: a trained-looking spread
    return net.eval()


def _save(net: torch.nn.Module, path: Path) -> Path:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    else:
        torch.save(net.state_dict(), path)
    return path


def _spandrel_output(checkpoint: Path, rgb: np.ndarray, top: float) -> np.ndarray:
    """spandrel's own torch output for RGB codes (grey models: on luma, as vsr runs them)."""
    state, _licence = read_checkpoint(checkpoint)
    descriptor = describe(state, checkpoint)
    x = torch.from_numpy(rgb.astype(np.float32) / top).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = Luma(descriptor, descriptor.scale)(x) if descriptor.input_channels == 1 else descriptor(x)
    return (y.clamp(0, 1) * top).round()[0].permute(1, 2, 0).numpy()


def _run(store: Path, name: str, rgb: np.ndarray, graph: str = "onnx") -> np.ndarray:
    import onnxruntime as ort

    entry = json.loads((store / "manifest.json").read_text())["models"][name]
    session = ort.InferenceSession(str(store / entry[graph]), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": rgb[None]})[0][0]


FAMILIES = ["compact", "compact-grey", "esrgan", "span", "dat"]  # graphs that take any size


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("family", FAMILIES)
def test_imported_graph_matches_spandrel_on_a_real_frame(
    family: str, suffix: str, store: Path, tmp_path: Path
) -> None:
    checkpoint = _save(_make(family), tmp_path / f"{family}{suffix}")
    result = vsr.import_model(checkpoint)
    assert isinstance(result, vsr.Imported) and result.ok and result.name == family
    rgb = _frame()  # 43x61: odd, so architectures with a size multiple are padded inside the graph
    got, want = _run(store, family, rgb), _spandrel_output(checkpoint, rgb, 255.0)
    assert got.shape == want.shape == (43 * result.scale, 61 * result.scale, 3)
    assert np.abs(got.astype(int) - want).max() <= 1
    # 10-bit: the uint16 graph against torch at 16-bit codes, within one 10-bit level
    deep = (rgb.astype(np.uint16) * 257 + np.arange(61, dtype=np.uint16)[None, :, None] % 200).astype(
        np.uint16
    )
    got16, want16 = _run(store, family, deep, "onnx_uint16"), _spandrel_output(checkpoint, deep, 65535.0)
    assert got16.dtype == np.uint16 and np.abs(got16.astype(int) - want16).max() <= 64


# Mean difference in levels allowed between a whole frame run tile by tile and spandrel's untiled output:
# window attention sees 16 pixels past each tile's core; OmniSR's grid attention spans the whole picture,
# so its tiles see less of it.
STITCHED = {"swinir": 0.5, "hat": 0.5, "omnisr": 1.0}


@pytest.mark.parametrize("family", sorted(STITCHED))
def test_window_attention_families_run_on_fixed_size_tiles(family: str, store: Path, tmp_path: Path) -> None:
    """Their graphs keep the size they were traced at (masks and padding sized in Python), so they are
    exported at one tile size: within a level of spandrel per tile, and stitched with overlap for frames."""
    checkpoint = _save(_make(family), tmp_path / f"{family}.pth")
    result = vsr.import_model(checkpoint)
    entry = json.loads((store / "manifest.json").read_text())["models"][family]
    assert result.ok and entry["tile"] == 128 and "tensorrt" not in entry["runtimes"]
    tile = _frame(128, 128)
    assert (
        np.abs(_run(store, family, tile).astype(int) - _spandrel_output(checkpoint, tile, 255.0)).max() <= 1
    )
    rgb = _frame(150, 171)  # two by two tiles, the last ones padded
    with vsr.load_model(family, backend="onnxruntime") as model:
        assert "128×128 tiles" in model.backend
        got = model(rgb).astype(int)
    diff = np.abs(got - _spandrel_output(checkpoint, rgb, 255.0))
    assert got.shape == (300, 342, 3) and diff.mean() < STITCHED[family], (diff.mean(), diff.max())


@pytest.mark.parametrize("family", ["ditn", "swinir", "hat"])
def test_traced_batch_and_size_never_reach_an_internal_error(
    family: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """DITN's graph keeps the batch and size it was traced at, SwinIR's and HAT's the size: imported, each
    runs batches of odd-sized frames on ONNX Runtime and OpenVINO (tiles, and one picture per call where
    the batch is fixed), close to spandrel's own output, and `vsr upscale` runs it end to end."""
    checkpoint = _save(_make(family), tmp_path / f"{family}.pth")
    assert vsr.import_model(checkpoint).ok
    entry = json.loads((store / "manifest.json").read_text())["models"][family]
    # Two pictures in one call: DITN's graph fails, HAT's runs and comes out 3 levels off.
    assert entry["tile"] == 128 and entry["batch"] == 1
    frames = np.stack([_frame(75, 93), _frame(75, 93)[::-1]])
    want = np.stack([_spandrel_output(checkpoint, f, 255.0) for f in frames])
    # fp32 on OpenVINO too: where the CPU has bf16 its default would be bf16 (SwinIR's then 0.7 levels off).
    for backend, precision in (("onnxruntime", None), ("openvino", "fp32")):
        with vsr.load_model(family, backend=backend, precision=precision) as model:
            got = model(frames).astype(int)
        assert got.shape == (2, 150, 186, 3)
        assert np.abs(got - want).mean() < STITCHED.get(family, 0.5), backend
    clip, out = mf.make_clip(tmp_path / "in.mkv", width=72, height=40, frames=4).path, tmp_path / "out.mkv"
    args = ["upscale", str(clip), str(out), "--model", family, "--backend", "openvino", "--batch", "2"]
    assert main(args) == 0, capsys.readouterr().err
    assert vsr.probe(out).video.width == 144


def test_an_architecture_whose_graph_does_not_run_is_refused_in_one_line(
    store: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """This narrow DAT exports, but its graph fails in ONNX Runtime even at the traced size (a LayerNorm
    over an empty axis): refused, naming the architecture, the store untouched."""
    checkpoint = _save(_make("dat-narrow"), tmp_path / "dat.pth")
    assert main(["import", str(checkpoint)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "DAT's exported graph does not run" in err, err
    assert not store.exists() or not any(store.iterdir())


class _Payload:
    """A pickled object that would create a file when unpickled: the attack weights_only stops."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_bad_checkpoints_are_refused_with_exit_2_and_leave_the_store_unchanged(
    store: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    good = _save(_make("compact"), tmp_path / "good.pth")
    assert main(["import", str(good)]) == 0
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    marker = tmp_path / "pwned"
    torch.save({"params": _Payload(marker)}, tmp_path / "code.pth")
    (tmp_path / "truncated.pth").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    from safetensors.torch import save_file

    save_file({"foo.weight": torch.zeros(3, 3)}, str(tmp_path / "unknown.safetensors"))
    (tmp_path / "model.bin").write_bytes(good.read_bytes())
    cases = [
        (["import", str(tmp_path / "code.pth")], "arbitrary code vsr refuses to run"),
        (["import", str(tmp_path / "truncated.pth")], "not a readable checkpoint"),
        (["import", str(tmp_path / "unknown.safetensors")], "recognises no architecture"),
        (["import", str(tmp_path / "model.bin")], "not .bin"),
        (["import", str(good), "--name", "other", "--scale", "3"], "upscales ×2, not ×3"),
        (["import", str(good)], "already imported"),
        (["import", str(good), "--name", "compact-x2"], "a shipped model's name"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("vsr: error:") and err.count("\n") == 0 and message in err, (args, err)
    assert not marker.exists()  # the payload never ran
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before


def test_a_folder_imports_what_it_can_and_reports_the_rest(store: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "models"
    folder.mkdir()
    _save(_make("compact"), folder / "a-compact.pth")
    _save(_make("span"), folder / "b-span.safetensors")
    (folder / "c-broken.pth").write_bytes(b"not a checkpoint")
    (folder / "notes.txt").write_text("ignored")
    results = vsr.import_model(folder)
    assert isinstance(results, list) and [r.name for r in results] == ["a-compact", "b-span", "c-broken"]
    assert [r.ok for r in results] == [True, True, False] and "not a readable checkpoint" in results[2].status
    assert set(json.loads((store / "manifest.json").read_text())["models"]) == {"a-compact", "b-span"}


def test_an_imported_model_runs_like_a_shipped_one(store: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import media_fixtures as mf

    checkpoint = _save(_make("compact"), tmp_path / "community-x2.pth")
    vsr.import_model(checkpoint)
    assert "community-x2" in vsr.api.models() and "community-x2" not in vsr.api.models(imported=False)
    clip = mf.make_clip(tmp_path / "in.mkv", frames=4, width=64, height=48)
    result = vsr.upscale(clip.path, tmp_path / "out.mkv", model="community-x2", backend="onnxruntime")
    assert result.frames == 4 and result.model == "community-x2"
    rgb = _frame()
    with vsr.load_model("community-x2", backend="torch") as on_torch:  # rebuilt by spandrel from the store
        assert np.abs(on_torch(rgb).astype(int) - _run(store, "community-x2", rgb)).max() <= 1
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "community-x2" in listing


def _float_onnx(path: Path) -> Path:
    from vsr.models.artefacts import shipped_model
    from vsr.models.export import export_onnx, load_model

    model = shipped_model("compact-x2")
    export_onnx(load_model(model.spec, model.weights), path, scale=2, io="float")
    return path


def test_an_onnx_file_is_wrapped_without_torch(store: Path, tmp_path: Path) -> None:
    """A float NCHW graph (here our own compact-x2's) becomes a model that computes exactly what the
    shipped compact-x2 does; the import itself never imports torch."""
    from vsr.models.artefacts import shipped_model

    graph = _float_onnx(tmp_path / "community.onnx")
    code = (
        "import sys; import vsr; r = vsr.import_model(sys.argv[1]); "
        "assert r.ok and r.scale == 2, r; assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code, str(graph)], check=True)
    rgb = _frame()
    import onnxruntime as ort

    shipped = ort.InferenceSession(str(shipped_model("compact-x2").onnx)).run(None, {"input": rgb[None]})[0][
        0
    ]
    assert np.abs(_run(store, "community", rgb).astype(int) - shipped).max() <= 1
    with pytest.raises(vsr.BackendUnavailableError, match="runs on onnxruntime and openvino only, not torch"):
        vsr.load_model("community", backend="torch")


def test_a_fixed_size_onnx_graph_is_refused(store: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import onnx

    graph = onnx.load(str(_float_onnx(tmp_path / "fixed.onnx")))
    for dim, value in zip(graph.graph.input[0].type.tensor_type.shape.dim, (1, 3, 64, 64), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    onnx.save(graph, str(tmp_path / "fixed.onnx"))
    assert main(["import", str(tmp_path / "fixed.onnx")]) == 2
    assert "takes only 64x64 pictures" in capsys.readouterr().err


def test_precisions_the_architecture_cannot_run_are_refused(store: Path, tmp_path: Path) -> None:
    vsr.import_model(_save(_make("compact"), tmp_path / "c.pth"))
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["models"]["c"]["supports_bfloat16"] = False  # as spandrel records for some architectures
    (store / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(vsr.UsageError, match="does not run in bf16"):
        vsr.load_model("c", backend="torch", precision="bf16")
    from vsr.backends.options import OpenVinoOptions
    from vsr.backends.select import _within_precision
    from vsr.models.artefacts import shipped_model

    assert _within_precision(OpenVinoOptions(), shipped_model("c")).precision == "fp32"  # auto: no bf16
