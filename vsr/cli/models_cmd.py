"""`vsr models`: the shipped models with their size, cost and measured quality."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vsr.cli import app


@app.command("models")
def models_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest entries as JSON.")] = False,
) -> None:
    """List every shipped model (task, scale, parameters, GFLOPs per 1080p input frame, Set5/Set14 PSNR),
    the choices of --model auto, and the models imported with `vsr import`."""
    import vsr.api

    models = {name: m.entry for name, m in vsr.api.models().items()}
    if as_json:
        print(json.dumps(models, indent=2, ensure_ascii=False))
        return
    imported = {n: e for n, e in models.items() if e.get("imported")}
    models = {n: e for n, e in models.items() if n not in imported}
    sr = {n: e for n, e in models.items() if e["task"] == "sr"}
    denoisers = {n: e for n, e in models.items() if e["task"] == "denoise"}
    console = Console()
    if sr:
        console.print(_sr_table(sr))
        if damaged := {n: e for n, e in sr.items() if "damaged_set5" in e}:
            console.print(_damaged_table(damaged))
    if denoisers:
        console.print(_denoise_table(denoisers))
    for scale, rows in vsr.api.auto_table().items():
        console.print(_auto_table(scale, rows))
    if imported:
        console.print(_imported_table(imported))


def _imported_table(models: dict[str, dict]) -> Table:
    """The user's imported models: where each came from, what it is, and its licence when it names one."""
    table = _table(
        "imported (vsr import; not measured by vsr)",
        ["name", "architecture", "scale", "params", "GFLOPs", "licence", "source"],
    )
    for name, e in models.items():
        gflops = f"{e['gflops_1080p']:.0f}" if "gflops_1080p" in e else "–"
        grey = " (grey)" if e.get("input_channels") == 1 else ""
        table.add_row(
            name,
            f"{e['arch_name']}{grey}",
            f"×{e['scale']}",
            f"{e['params']:,}",
            gflops,
            e.get("license") or "–",
            e["source"]["file"],
        )
    return table


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title)
    for k, column in enumerate(columns):
        table.add_column(column, justify="right" if k else "left", no_wrap=True)
    return table


def _sr_table(models: dict[str, dict]) -> Table:
    table = _table(
        "super-resolution: Y-PSNR dB, gain on bicubic; GFLOPs per 1080p input",
        ["name", "scale", "params", "GFLOPs", "Set5", "Set14", "bf16"],
    )
    for name, e in models.items():
        scores = [e["metrics"][d] for d in ("Set5", "Set14")] if "metrics" in e else []
        quality = [f"{s['psnr']:.2f} +{s['psnr'] - s['baseline_psnr']:.2f}" for s in scores] or ["–", "–"]
        table.add_row(
            name,
            f"×{e['scale']}",
            f"{e['params']:,}",
            f"{e['gflops_1080p']:.0f}",
            *quality,
            _bf16(e),
        )
    table.caption = "bf16: Set5 change (dB) with OpenVINO in bf16, against ONNX Runtime fp32"
    return table


def _damaged_table(models: dict[str, dict]) -> Table:
    """Set5 with the LR coded by intra x264 first: what each upscaler gains on bicubic on the same LR."""
    levels = list(next(iter(models.values()))["damaged_set5"])
    table = _table(
        "super-resolution on compressed LR: Set5 Y-PSNR dB, gain on bicubic",
        ["name", *(lv.replace("h264:crf=", "x264 CRF ") for lv in levels)],
    )
    for name, e in models.items():
        cells = [e["damaged_set5"].get(lv) for lv in levels]
        table.add_row(name, *(f"{c['psnr']:.2f} {c['psnr'] - c['baseline_psnr']:+.2f}" for c in cells if c))
    return table


def _bf16(entry: dict) -> str:
    """What OpenVINO's bf16 changes on Set5, in dB against ONNX Runtime fp32."""
    recorded = entry.get("cpu_precisions", {})
    if "openvino bf16" not in recorded:
        return "–"
    return f"{recorded['openvino bf16']['Set5'] - recorded['onnxruntime fp32']['Set5']:+.3f}"


def _level_label(key: str) -> str:
    """The row label of a protocol level: sigma15 → σ 15, jpeg10 → JPEG q10."""
    return f"σ {key[5:]}" if key.startswith("sigma") else f"JPEG q{key[4:]}"


def _denoise_table(models: dict[str, dict]) -> Table:
    """A row per level, a column per denoiser; the noisy input and nlmeans come from the first one's run."""
    import vsr.api

    first = next(iter(models.values())).get("metrics", {})
    table = _table(
        "denoisers: PSNR dB (σ: RGB on Set5+Set14; JPEG: Y on LIVE1)",
        ["level", "input", "nlmeans (s)", *models],
    )
    for key in vsr.api.DENOISE_LEVEL_KEYS:
        ref = first.get(key)
        cells = (
            [f"{ref['input_psnr']:.2f}", f"{ref['nlmeans_psnr']:.2f} ({ref['nlmeans_s']:g})"]
            if ref
            else ["–"] * 2
        )
        for e in models.values():
            m = e.get("metrics", {}).get(key)
            cells.append(f"{m['psnr']:.2f} ({m['psnr'] - m['nlmeans_psnr']:+.2f})" if m else "–")
        table.add_row(_level_label(key), *cells)
    table.caption = "; ".join(
        f"{n}: {e['params']:,} params, {e['gflops_1080p']:.0f} GFLOPs per 1080p frame"
        for n, e in models.items()
    )
    return table


def _auto_table(scale: int, rows: list[dict]) -> Table:
    """What `--model auto` runs at each calibrated level of one scale, and the best chain there."""
    table = _table(
        f"--model auto at ×{scale}: Y-PSNR dB on Set5+Set14 or Vid4 sources coded as files, gain on bicubic",
        ["level", "QP", "noise σ", "softness", "bicubic", "auto runs", "best chain"],
    )
    for r in rows:
        pick, best = r["auto"], r["best"]
        table.add_row(
            r["level"],
            "–" if r["qp"] is None else f"{r['qp']:.1f}",
            f"{r['noise']:.2f}",
            "–" if r["softness"] is None else f"{r['softness']:.2f}",
            f"{r['bicubic']:.2f}",
            "(not matched)" if pick is None else f"{pick} {r['psnr'][pick] - r['bicubic']:+.2f}",
            "same" if best == pick else f"{best} {r['psnr'][best] - r['bicubic']:+.2f}",
        )
    table.caption = (
        "a source goes to the nearest sharp level (by its quantiser if the stream has one, else by noise); "
        "the soft (blurred) twins are measured and shown, not matched"
    )
    return table
