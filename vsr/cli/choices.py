"""The CLI's fixed choices as str enums, so typer validates them and `--help` lists them.

Each is built from the library's own list, so the CLI can never offer what the library does not know.
"""

from __future__ import annotations

from enum import Enum
from typing import get_args

from vsr import api
from vsr.train import LossName


def _choices(name: str, values: tuple[str, ...] | list[str]) -> type[Enum]:
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


Backend = _choices("Backend", api.BACKEND_NAMES)
Precision = _choices("Precision", api.PRECISION_NAMES)
Profile = _choices("Profile", api.PROFILE_NAMES)
Deinterlace = _choices("Deinterlace", api.DEINTERLACE_MODES)
Colorspace = _choices("Colorspace", api.COLORSPACE_NAMES)
Loss = _choices("Loss", get_args(LossName))
Task = _choices("Task", ("sr", "denoise"))
Degradation = _choices("Degradation", api.DEGRADATION_NAMES)
Fit = _choices("Fit", api.FIT_NAMES)


def value(choice: Enum | None) -> str | None:
    """The library's string for a parsed choice (None stays None)."""
    return None if choice is None else str(choice.value)
