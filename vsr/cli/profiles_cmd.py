"""`vsr profiles`: the output profiles, with encoder, pixel format, containers and options."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import vsr.api
from vsr.cli import app


@app.command("profiles")
def profiles_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the profiles as JSON.")] = False,
) -> None:
    """List the output profiles of `vsr upscale --profile NAME`."""
    profiles = vsr.api.profiles()
    if as_json:
        print(json.dumps({name: asdict(p) for name, p in profiles.items()}, indent=2))
        return
    table = Table(title="output profiles (--profile NAME; --codec, --pix-fmt, --crf override them)")
    for column in ("profile", "encoder", "pixels", "files", "what"):
        table.add_column(column)
    for name, p in profiles.items():
        table.add_row(name, p.codec, p.pix_fmt or "source's family", " ".join(p.suffixes), p.summary)
    Console().print(table)
