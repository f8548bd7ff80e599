"""Files published whole or not at all: the one atomic write every manifest, status and cache file uses."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

from vsr.errors import OutputError


def temporary_beside(path: Path, suffix: str = "") -> Path:
    """A hidden, unique name in `path`'s folder: a rename from it onto `path` is atomic."""
    return path.with_name(f".{path.stem}.vsr-{secrets.token_hex(4)}{suffix or path.suffix}")


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` through a temporary file and a rename: readers see the old or the new file."""
    tmp = temporary_beside(path, ".tmp")
    try:
        if isinstance(data, str):
            tmp.write_text(data)
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
            raise OutputError(f"{path}: cannot write it ({os.strerror(exc.errno)})") from exc
        raise
    finally:
        discard(tmp)
    return path


def discard(path: Path) -> None:
    """Remove a temporary file if it is there; a folder that refuses (read-only, gone) is not an error
    here, since the failure that led to the cleanup is the one to report."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
