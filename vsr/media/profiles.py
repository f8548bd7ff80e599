"""What a user asks of the encoder (EncodeSettings), the output profiles media teams ask for, and how both
resolve into the concrete EncodeOptions the writer runs with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vsr.errors import UsageError
from vsr.media.writer import CRF_CODECS, EncodeOptions

ProfileName = Literal["web", "master", "archive", "hevc10"]
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


PROFILES: dict[str, OutputProfile] = {
    "web": OutputProfile(
        "libx264", "yuv420p", (".mp4",), "H.264 High 4:2:0 in MP4, index first (faststart) for streaming",
        codec_options={"profile": "high"}, container_options={"movflags": "+faststart"},
    ),
    "master": OutputProfile(
        "prores_ks", "yuv422p10le", (".mov",), "ProRes 422 HQ in MOV, for editing",
        codec_options={"profile": "3", "vendor": "apl0"},
    ),
    "archive": OutputProfile(
        "ffv1", None, (".mkv",), "FFV1 level 3 in MKV: lossless, intra-only, with slice CRCs",
        codec_options={"level": "3", "slicecrc": "1", "g": "1", "slices": "24"},
    ),
    "hevc10": OutputProfile(
        "libx265", "yuv420p10le", (".mp4", ".mkv", ".mov"), "HEVC Main10 (x265)",
        codec_options={"x265-params": "log-level=error"},
    ),
}  # fmt: skip


@dataclass(frozen=True)
class EncodeSettings:
    """The encoder request: a profile and/or single settings; None means the profile's or the default.

    Without a profile the video is H.264 (libx264, CRF 18, preset medium) in the input's chroma family.
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
        for name, value in (("crf", self.crf), ("preset", self.preset)):
            if value is not None and codec not in CRF_CODECS:
                raise UsageError(f"--{name} applies to {' and '.join(sorted(CRF_CODECS))}, not {codec}")
        return EncodeOptions(
            codec=codec,
            crf=18 if self.crf is None else self.crf,
            preset=self.preset or "medium",
            pix_fmt=self.pix_fmt or (p.pix_fmt if p else None),
            threads=self.threads,
            codec_options=dict(p.codec_options) if p and codec == p.codec else {},
            colorspace=MATRICES[self.colorspace] if self.colorspace else None,
            container_options=dict(p.container_options) if p else {},
        )
