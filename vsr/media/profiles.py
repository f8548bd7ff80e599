"""Output profiles that media teams ask for; every setting can still be overridden one by one."""

from __future__ import annotations

from dataclasses import dataclass, field

from vsr.errors import UsageError
from vsr.media.writer import EncodeOptions


@dataclass(frozen=True)
class Profile:
    """An encoder, its pixel format and options, and the containers that hold it."""

    codec: str
    pix_fmt: str | None  # None: the input's chroma family
    suffixes: tuple[str, ...]
    summary: str
    codec_options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)


PROFILES: dict[str, Profile] = {
    "web": Profile(
        "libx264", "yuv420p", (".mp4",), "H.264 High 4:2:0 in MP4, index first (faststart) for streaming",
        codec_options={"profile": "high"}, container_options={"movflags": "+faststart"},
    ),
    "master": Profile(
        "prores_ks", "yuv422p10le", (".mov",), "ProRes 422 HQ in MOV, for editing",
        codec_options={"profile": "3", "vendor": "apl0"},
    ),
    "archive": Profile(
        "ffv1", None, (".mkv",), "FFV1 level 3 in MKV: lossless, intra-only, with slice CRCs",
        codec_options={"level": "3", "slicecrc": "1", "g": "1", "slices": "24"},
    ),
    "hevc10": Profile(
        "libx265", "yuv420p10le", (".mp4", ".mkv", ".mov"), "HEVC Main10 (x265)",
        codec_options={"x265-params": "log-level=error"},
    ),
}  # fmt: skip


def encode_options(
    profile: str | None,
    *,
    suffix: str,
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
    pix_fmt: str | None = None,
    threads: int = 0,
) -> EncodeOptions:
    """EncodeOptions from a profile (or the H.264 default) with the explicitly given settings on top."""
    if profile is None:
        crf = 18 if crf is None else crf
        return EncodeOptions(codec or "libx264", crf, preset or "medium", pix_fmt, threads)
    if profile not in PROFILES:
        raise UsageError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    p = PROFILES[profile]
    if suffix.lower() not in p.suffixes:
        raise UsageError(
            f"profile {profile} writes {' or '.join(p.suffixes)} files, not {suffix or 'no extension'}"
        )
    return EncodeOptions(
        codec=codec or p.codec,
        crf=18 if crf is None else crf,
        preset=preset or "medium",
        pix_fmt=pix_fmt or p.pix_fmt,
        threads=threads,
        codec_options=dict(p.codec_options) if codec in (None, p.codec) else {},
        container_options=dict(p.container_options),
    )
