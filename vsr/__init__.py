"""vsr: video super-resolution streaming pipeline.

    import vsr
    result = vsr.upscale("in.mp4", "out.mkv", model="compact-x2")

Importing vsr pulls in nothing heavy: torch and TensorRT are imported lazily by the code that needs them.
"""

import sys

from vsr.api import (
    AutoDecision,
    FolderResult,
    Imported,
    Upscaler,
    choose_model,
    import_model,
    load_model,
    probe,
    upscale,
    upscale_folder,
)
from vsr.backends.options import OpenVinoOptions, OrtOptions, TensorRTOptions, TorchOptions
from vsr.cluster import ClusterSpec
from vsr.errors import BackendUnavailableError, BadInputError, ModelError, StalledError, UsageError, VsrError
from vsr.media import EncodeSettings, MediaInfo
from vsr.pipeline import JobResult, Progress
from vsr.pipeline.folder import FileOutcome

# vsr never phones home. `import openvino` (2026.x) posts a Google Analytics event unless the user opted
# out in ~/intel, from a child forked by a worker thread: offline that child hangs, and a SIGTERM then left
# `vsr upscale` waiting for it at exit. Without its telemetry package OpenVINO falls back to its own no-op
# stub, so block that import (unless something imported it first).
sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]

__version__ = "0.1.0"

__all__ = [
    "AutoDecision",
    "BackendUnavailableError",
    "BadInputError",
    "ClusterSpec",
    "EncodeSettings",
    "FileOutcome",
    "FolderResult",
    "Imported",
    "JobResult",
    "MediaInfo",
    "ModelError",
    "OpenVinoOptions",
    "OrtOptions",
    "Progress",
    "StalledError",
    "TensorRTOptions",
    "TorchOptions",
    "Upscaler",
    "UsageError",
    "VsrError",
    "choose_model",
    "import_model",
    "load_model",
    "probe",
    "upscale",
    "upscale_folder",
]
