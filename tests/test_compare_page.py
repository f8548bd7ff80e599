"""`vsr compare`: the page's content, its metrics against a reference, and the page itself in Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import media_fixtures as mf
import numpy as np
import pytest

import vsr.api
from vsr.cli import main

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _data(page: Path) -> dict:
    html = page.read_text()
    blob = re.search(r'<script type="application/json" id="vsr-data">(.*?)</script>', html, re.S)
    assert blob is not None
    return json.loads(blob.group(1))


@pytest.fixture(scope="module")
def hr_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mf.make_clip(tmp_path_factory.mktemp("hr") / "hr.mkv", width=320, height=240, frames=24).path


@pytest.fixture(scope="module")
def lr_clip(hr_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hr_clip at half size, nearly lossless, with the same timestamps."""
    return mf.downscaled(hr_clip, tmp_path_factory.mktemp("lr") / "lr.mkv", 160, 120)


def test_the_page_holds_every_chain_frame_and_auto_s_reason(lr_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    result = vsr.api.compare_page(lr_clip, out, models=["auto", "espcn-x2"], frames=3, backend="onnxruntime")
    data = _data(out)
    assert [c["name"] for c in data["chains"]] == ["bicubic", "auto", "espcn-x2"]
    assert data["size"] == [160, 120] and data["scale"] == 2
    assert len(data["times"]) == 3 and data["times"] == sorted(data["times"])
    assert result.auto is not None and result.auto.startswith("auto: ") and data["auto"] == result.auto
    assert data["chains"][1]["chain"] == vsr.api.choose_model(lr_clip).chain.replace(" → ", " → ")
    for chain in data["chains"]:
        assert len(data["pictures"][chain["name"]]) == 3
        assert chain["ms_per_frame"] > 0 and len(chain["metrics"]["niqe"]) == 3
        assert "psnr" not in chain["metrics"]  # no reference
    assert data["references"] is None
    # Nothing is fetched: every picture inline, no address outside the file.
    html = out.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//|url\(["']?https?:|@import""", html)
    assert result.bytes == out.stat().st_size < 10_000_000


def test_a_reference_adds_full_reference_metrics(lr_clip: Path, hr_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    vsr.api.compare_page(
        lr_clip, out, models=["espcn-x2"], at=[0.1, 0.6], reference=hr_clip, backend="onnxruntime"
    )
    data = _data(out)
    assert data["times"][0] == pytest.approx(0.125, abs=0.05) and data["reference"] == "hr.mkv"
    assert len(data["references"]) == 2
    for chain in data["chains"]:
        m = chain["metrics"]
        assert set(m) >= {"niqe", "psnr"}
        assert all(25 < p < 60 for p in m["psnr"])
        if "vmaf" in m:  # the quality extra is installed
            assert all(0 <= v <= 100 for v in m["vmaf"]) and all(0 <= e <= 1 for e in m["erqa"])


def test_compare_refusals_are_one_line(lr_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cases = [
        ([str(tmp_path / "missing.mkv")], "no such file"),
        ([str(lr_clip), "--at", "1:2:3:4"], "--at takes seconds"),
        ([str(lr_clip), "--at", "40"], "no frame at 40.00 s"),
        ([str(lr_clip), "--models", "compact-x4"], "works at ×4, not ×2"),
        ([str(lr_clip), "--reference", str(lr_clip), "--models", "espcn-x2"], "--reference is 160×120"),
    ]
    for args, message in cases:
        assert main(["compare", *args, "--out", str(tmp_path / "p.html"), "--backend", "onnxruntime"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "p.html").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")
def test_the_page_opens_offline_and_its_slider_moves(lr_clip: Path, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    page_path = tmp_path / "page.html"
    vsr.api.compare_page(lr_clip, page_path, models=["espcn-x2"], frames=2, backend="onnxruntime")
    requests: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.on("request", lambda r: requests.append(r.url))
        page.route(
            "**/*",
            lambda route: (
                route.abort() if not route.request.url.startswith(("file:", "data:")) else route.continue_()
            ),
        )
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.as_uri())
        page.select_option("#left", "bicubic")
        page.select_option("#right", "espcn-x2")
        stage = page.locator("#stage")
        before = stage.screenshot()
        page.locator("#split").fill("80")
        assert "inset(0px 0px 0px 80%)" in page.locator("#img-right").get_attribute("style")
        after = stage.screenshot()
        # Dragging on the picture moves it too.
        box = stage.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 10)
        page.mouse.down()
        page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 10)
        page.mouse.up()
        split = float(page.locator("#split").input_value())
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        browser.close()
    assert not errors
    assert all(u.startswith(("file:", "data:")) for u in requests)
    assert 25 < split < 35
    import io

    from PIL import Image

    a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("L"), dtype=float) for x in (before, after))
    w = a.shape[1]
    # Between 50 % and 80 % the picture changed from the right chain to the left; beyond 80 % it did not
    # (the divider's own columns left out).
    changed = np.abs(a[:, int(0.55 * w) : int(0.75 * w)] - b[:, int(0.55 * w) : int(0.75 * w)]).mean()
    kept = np.abs(a[:, int(0.85 * w) :] - b[:, int(0.85 * w) :]).mean()
    assert changed > 0.2 and changed > 10 * kept, (changed, kept)
    shot = np.asarray(Image.open(tmp_path / "page.png").convert("L"))
    assert shot.std() > 20  # a rendered page, not a blank one


def test_upscale_reports_quality_against_a_reference(
    lr_clip: Path, hr_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "out.mkv"
    args = ["upscale", str(lr_clip), str(out), "--model", "espcn-x2", "--backend", "onnxruntime"]
    assert main([*args, "--reference", str(hr_clip), "--json"]) == 0
    quality = json.loads(capsys.readouterr().out)["quality"]
    assert quality["frames"] == 24 and quality["reference"] == str(hr_clip)
    assert (
        25 < quality["psnr_y"] < 60 and 50 < quality["vmaf"] <= 100 and quality["vmaf_neg"] <= quality["vmaf"]
    )
    # The same figures as FFmpeg's own libvmaf run on the two files.
    from vsr.quality import video_quality

    assert video_quality(out, hr_clip) == quality
    # A reference of another size: the job is refused before it starts, in one line.
    other = tmp_path / "other.mkv"
    assert main([*args[:2], str(other), *args[3:], "--reference", str(lr_clip)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--reference is 160×120" in err[0], err
    assert main(["upscale", str(tmp_path), str(tmp_path / "outs"), "--reference", str(hr_clip)]) == 2
    assert "one input file" in capsys.readouterr().err
