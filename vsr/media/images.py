"""Still images through PyAV (PNG, BMP, JPEG, TIFF): evaluation needs no imaging library."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from vsr.errors import BadInputError

IMAGE_SUFFIXES = frozenset({".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"})
GREY_FORMATS = frozenset({"gray", "gray16be", "gray16le", "ya8", "monob", "monow"})


def read_image(path: Path) -> np.ndarray:
    """(H, W) uint8 for greyscale files, else (H, W, 3) uint8 RGB."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (av.error.FFmpegError, StopIteration, IndexError) as exc:
        raise BadInputError(f"{path}: not a readable image ({exc})") from None
    if frame.format.name in GREY_FORMATS:
        return frame.to_ndarray(format="gray")
    return frame.to_ndarray(format="rgb24")


def image_files(folder: Path) -> list[Path]:
    """The images of a folder, sorted by name."""
    if not folder.is_dir():
        raise BadInputError(f"{folder}: not a folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise BadInputError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths
