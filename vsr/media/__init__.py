"""Media I/O: probe, decode to frames with exact pts, encode and remux. Never imports torch or models."""

from vsr.media.probe import AudioStreamInfo, MediaInfo, StreamInfo, VideoStreamInfo, probe
from vsr.media.profiles import EncodeSettings
from vsr.media.reader import Frame, PixelLayout, ReaderStats, SourceFormat, SourceStreams, VideoReader
from vsr.media.writer import EncodeOptions, VideoWriter, encoder_pix_fmt

__all__ = [
    "AudioStreamInfo",
    "EncodeOptions",
    "EncodeSettings",
    "Frame",
    "MediaInfo",
    "PixelLayout",
    "ReaderStats",
    "SourceFormat",
    "SourceStreams",
    "StreamInfo",
    "VideoReader",
    "VideoStreamInfo",
    "VideoWriter",
    "encoder_pix_fmt",
    "probe",
]
