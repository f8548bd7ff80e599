"""Still images and evaluation clips through PyAV (PNG, BMP, JPEG, TIFF; lossless video): evaluation needs
no imaging library."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from vsr.errors import BadInputError

IMAGE_SUFFIXES = frozenset({".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"})
CLIP_SUFFIXES = frozenset({".mkv", ".mp4", ".mov", ".avi"})
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


def clip_files(folder: Path) -> list[Path]:
    """The video clips of a folder (an evaluation set such as Vid4), sorted by name; [] when none."""
    if not folder.is_dir():
        raise BadInputError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in CLIP_SUFFIXES)


def read_clip(path: Path) -> list[np.ndarray]:
    """Every frame of a clip as (H, W, 3) uint8 RGB, in presentation order."""
    try:
        with av.open(str(path)) as container:
            return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError) as exc:
        raise BadInputError(f"{path}: not a readable clip ({exc})") from None
