"""What a user asks of the encoder (EncodeSettings), the output profiles media teams ask for, and how both
resolve into the concrete EncodeOptions the writer runs with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import av

from vsr.errors import UsageError
from vsr.media.writer import CRF_CODECS, EncodeOptions

ProfileName = Literal[
    "web",
    "prores",
    "master",
    "ffv1",
    "archive",
    "hevc10",
    "av1",
    "broadcast",
    "nvenc",
    "nvenc-hevc",
    "nvenc-av1",
]
MatrixName = Literal["bt709", "bt601", "bt2020"]
# AVCOL_SPC of each --colorspace choice (BT.601 as SD sources tag it, smpte170m).
MATRICES: dict[str, int] = {"bt709": 1, "bt601": 6, "bt2020": 9}


@dataclass(frozen=True)
class OutputProfile:
    """An encoder, its pixel format and options, and the containers that hold it."""

    codec: str
    pix_fmt: str | None  # None: the input's chroma family
    suffixes: tuple[str, ...]
    summary: str
    codec_options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)


_PRORES = OutputProfile(
    "prores_ks",
    "yuv422p10le",
    (".mov",),
    "ProRes 422 HQ, 10-bit 4:2:2, in MOV: the editing master",
    codec_options={"profile": "3", "vendor": "apl0"},
)
_FFV1 = OutputProfile(
    "ffv1",
    None,
    (".mkv",),
    "FFV1 version 3 in MKV: lossless preservation master, intra-only, 24 slices with CRCs, 10-bit or deeper "
    "where the source is",
    codec_options={"level": "3", "slicecrc": "1", "g": "1", "slices": "24"},
)
PROFILES: dict[str, OutputProfile] = {
    "web": OutputProfile(
        "libx264", "yuv420p", (".mp4",), "H.264 High 4:2:0 in MP4, index first (faststart) for streaming",
        codec_options={"profile": "high"}, container_options={"movflags": "+faststart"},
    ),
    "prores": _PRORES,
    "master": _PRORES,  # the name media teams asked for first; the same as prores
    "ffv1": _FFV1,
    "archive": _FFV1,  # the same as ffv1
    "hevc10": OutputProfile(
        "libx265", "yuv420p10le", (".mp4", ".mkv", ".mov"), "HEVC Main10 (x265)",
        codec_options={"x265-params": "log-level=error"},
    ),
    "av1": OutputProfile(
        "libsvtav1", "yuv420p10le", (".mkv", ".mp4", ".webm"), "AV1 (SVT-AV1 preset 8, CRF 30), 10-bit: web",
        codec_options={"preset": "8", "crf": "30"},
    ),
    "broadcast": OutputProfile(
        "mpeg2video", "yuv422p", (".mxf", ".ts", ".mkv"),
        "MPEG-2 4:2:2 at 50 Mbit/s, long GOP (12, two B-frames), XDCAM HD422-style, for playout",
        codec_options={"b": "50M", "maxrate": "50M", "bufsize": "17825792", "g": "12", "bf": "2"},
    ),
    # NVIDIA's hardware encoders, for cards that have them (not the H100/H200: Hopper has no NVENC): the
    # encode leaves the CPU, which x264 at 4K saturates. Constant quality (VBR with cq, no bitrate cap).
    "nvenc": OutputProfile(
        "h264_nvenc", "yuv420p", (".mp4", ".mkv", ".mov"), "H.264 on the GPU's NVENC (preset p5, cq 19)",
        codec_options={"preset": "p5", "tune": "hq", "rc": "vbr", "cq": "19", "b": "0"},
    ),
    "nvenc-hevc": OutputProfile(
        "hevc_nvenc", "p010le", (".mp4", ".mkv", ".mov"), "HEVC Main10 on the GPU's NVENC (preset p5, cq 21)",
        codec_options={"preset": "p5", "tune": "hq", "rc": "vbr", "cq": "21", "b": "0", "profile": "main10"},
    ),
    "nvenc-av1": OutputProfile(
        "av1_nvenc", "p010le", (".mkv", ".mp4", ".webm"), "AV1 10-bit on NVENC (Ada and newer; cq 28)",
        codec_options={"preset": "p5", "tune": "hq", "rc": "vbr", "cq": "28", "b": "0"},
    ),
}  # fmt: skip


@dataclass(frozen=True)
class EncodeSettings:
    """The encoder request: a profile and/or single settings; None means the profile's or the default.

    Without a profile the video is H.264 (libx264, CRF 18, preset faster) in the input's chroma family.
    """

    profile: ProfileName | None = None
    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    colorspace: MatrixName | None = None  # convert the output's Y'CbCr matrix (SD BT.601 → HD BT.709)
    threads: int = 0  # encoder threads; 0 lets the encoder choose

    def __post_init__(self) -> None:
        if self.profile is not None and self.profile not in PROFILES:
            raise UsageError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        if self.colorspace is not None and self.colorspace not in MATRICES:
            raise UsageError(f"unknown colorspace {self.colorspace!r}; choose {', '.join(MATRICES)}")
        if self.crf is not None and not 0 <= self.crf <= 63:
            raise UsageError(f"crf must be within 0..63, got {self.crf}")

    def resolve(self, suffix: str) -> EncodeOptions:
        """The concrete options for an output file with extension `suffix`; UsageError for a request the
        encoder would ignore (a CRF or preset for an encoder without them) or a container it cannot fill."""
        p = PROFILES[self.profile] if self.profile else None
        codec = self.codec or (p.codec if p else "libx264")
        if p is not None and suffix.lower() not in p.suffixes:
            files = " or ".join(p.suffixes)
            raise UsageError(f"profile {self.profile} writes {files} files, not {suffix or 'no extension'}")
        _check_encoder(codec, self.pix_fmt or (p.pix_fmt if p else None))
        for name, value in (("crf", self.crf), ("preset", self.preset)):
            if value is not None and codec not in CRF_CODECS:
                names = sorted(CRF_CODECS)
                raise UsageError(f"--{name} applies to {', '.join(names[:-1])} and {names[-1]}, not {codec}")
        return EncodeOptions(
            codec=codec,
            crf=18 if self.crf is None else self.crf,
            preset=self.preset or EncodeOptions().preset,
            pix_fmt=self.pix_fmt or (p.pix_fmt if p else None),
            threads=self.threads,
            codec_options=dict(p.codec_options) if p and codec == p.codec else {},
            colorspace=MATRICES[self.colorspace] if self.colorspace else None,
            container_options=dict(p.container_options) if p else {},
        )


def _check_encoder(codec: str, pix_fmt: str | None) -> None:
    """UsageError unless PyAV's FFmpeg has `codec` as a video encoder taking `pix_fmt` (when one is set),
    naming what would work."""
    import difflib

    encoders = sorted(n for n in av.codecs_available if _video_encoder(n))
    if codec not in encoders:
        near = difflib.get_close_matches(codec, encoders, n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else "; `ffmpeg -encoders` lists them"
        raise UsageError(f"unknown video encoder {codec!r}{hint}")
    if pix_fmt is None:
        return
    try:
        av.video.format.VideoFormat(pix_fmt)
    except ValueError:
        raise UsageError(f"unknown pixel format {pix_fmt!r}") from None
    accepted = [f.name for f in av.codec.Codec(codec, "w").video_formats or []]
    if accepted and pix_fmt not in accepted:
        raise UsageError(f"{codec} does not take {pix_fmt}; it takes {', '.join(accepted)}")


def _video_encoder(name: str) -> bool:
    try:
        return av.codec.Codec(name, "w").type == "video"
    except ValueError:  # a decoder only
        return False
