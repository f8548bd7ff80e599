"""Media I/O: probe, decode to RGB frames with exact pts, encode and remux. Never imports torch or models."""

from vsr.media.probe import AudioStreamInfo, MediaInfo, StreamInfo, VideoStreamInfo, probe
from vsr.media.reader import Frame, ReaderStats, VideoFormat, VideoReader
from vsr.media.writer import EncodeOptions, VideoWriter, encoder_pix_fmt

__all__ = [
    "AudioStreamInfo",
    "EncodeOptions",
    "Frame",
    "MediaInfo",
    "ReaderStats",
    "StreamInfo",
    "VideoFormat",
    "VideoReader",
    "VideoStreamInfo",
    "VideoWriter",
    "encoder_pix_fmt",
    "probe",
]
