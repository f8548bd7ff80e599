"""vsr: video super-resolution streaming pipeline.

    import vsr
    result = vsr.upscale("in.mp4", "out.mkv", model="compact-x2")

Importing vsr pulls in nothing heavy: torch and TensorRT are imported lazily by the code that needs them.
"""

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
