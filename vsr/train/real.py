"""The real-world degradation pipeline: what archival footage has suffered, drawn at random per sample.

A clean HR patch becomes its LR input through the steps below, each with its probability and range
(RealDegradation's fields). The order follows Real-ESRGAN's second-order model, with video damage in
place of JPEG alone: our footage went through real video codecs, so training sees them through PyAV.

    0. (pristine)  with probability `pristine_prob`, nothing but the antialiased downscale: no step below
       (or clean)  else with probability `clean_prob`, steps 1-4 are skipped: a plain antialiased downscale
    1. blur        isotropic / anisotropic Gaussian, generalised Gaussian, plateau kernels (7..21 taps);
                   or sinc ringing (a jinc low-pass, as sharpening and analogue bandwidth leave)
    2. resize      up, down or kept, with a random filter (area, bilinear, bicubic)
    3. noise       Gaussian (colour or luma) or Poisson (shot noise)
    4. (again)     a milder second pass of 1-3, with probability `second_order`
    5. to size     the LR size, with a random filter
    6. chroma      4:2:0 round trip, and chroma bleed (horizontally smeared colour, as tape leaves)
    7. codec       JPEG, x264 on a short sequence of shifted crops (real inter prediction, CRF 18..40),
                   MPEG-2 (broadcast and DVD quantisers, B-frames) or MPEG-4 Part 2 (ASP)

Everything runs on the CPU (numpy, torch's convolution, Pillow's resamplers, PyAV's codecs), one sample
at a time, so a producer thread can prepare batches while the trainer computes.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from av.video.reformatter import VideoReformatter
from PIL import Image

Rng = np.random.Generator
Range = tuple[float, float]
RESIZE_FILTERS = {
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


@dataclass(frozen=True)
class RealDegradation:
    """Probabilities and ranges of every step.

    Milder than Real-ESRGAN's (whose ranges blur clean HD into mush): archival video is mostly a decent
    picture damaged by a codec, some noise and soft optics, and the model must not lose much on clean input.
    """

    # A share of samples is a clean protocol downscale (antialiased bicubic), damaged only by the chroma
    # and codec steps: clean input must not be over-sharpened (a first run without it fell to the bicubic
    # baseline on clean Set5 within 3,000 steps).
    clean_prob: float = 0.3
    # Truly clean samples (no chroma or codec step either). Without them only ~1 % of the mix was clean
    # (0.3 clean × 0.26 no chroma step × 0.15 no codec), and a fine-tune from compact-x2 lost 2.6 dB on
    # clean Set5 (35.23 → 32.66 after 1,250 steps at lr 5e-5; the closing note of session 6).
    pristine_prob: float = 0.2
    blur_prob: float = 0.7
    sinc_prob: float = 0.1  # of a blur, the share that is ringing instead
    blur_sigma: Range = (0.2, 1.5)  # HR pixels
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    resize_probs: tuple[float, float, float] = (0.2, 0.5, 0.3)  # up, down, keep
    resize_range: Range = (0.5, 1.5)
    noise_prob: float = 0.6
    gaussian_prob: float = 0.5  # of noise, the share that is Gaussian; the rest is Poisson
    noise_sigma: Range = (1.0, 15.0)  # on 0..255
    poisson_scale: Range = (0.05, 1.0)  # 255 / photons per unit level
    gray_noise_prob: float = 0.4
    second_order: float = 0.3
    second_sigma: Range = (0.2, 1.2)
    second_noise_sigma: Range = (1.0, 10.0)
    chroma_420_prob: float = 0.7
    chroma_bleed_prob: float = 0.15
    chroma_bleed_px: Range = (1.0, 3.0)  # LR pixels, horizontal
    # Codecs by weight: JPEG, x264 (the web and broadcast case), MPEG-2, MPEG-4 ASP, or none.
    codec_weights: tuple[float, float, float, float, float] = (0.15, 0.45, 0.15, 0.1, 0.15)
    jpeg_quality: Range = (40, 95)
    x264_crf: Range = (18, 40)
    mpeg_qscale: Range = (2, 12)
    sequence: int = 4  # frames of each inter-coded sequence (the last one, a P/B-frame, is kept)
    twin_grain: Range = (1.0, 4.0)  # temporal grain σ (0..255) of each frame of a twin pair's still

    def degrade(self, hr: np.ndarray, scale: int, rng: Rng) -> tuple[np.ndarray, list[str]]:
        """(H, W, 3) uint8 HR → (H/scale, W/scale, 3) uint8 LR, and the steps taken (for previews)."""
        lr, steps, pristine = self._before_codec(hr, scale, rng)
        return (lr, steps) if pristine else self._codec(lr, rng, steps)

    def twins(self, hr: np.ndarray, scale: int, rng: Rng) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Two LR versions of one HR, as a still scene differs from one keyframe to the next in a video:
        the same damage up to the codec, then two frames of their own temporal grain (Gaussian, σ drawn
        from `twin_grain`), each coded as a keyframe by one draw of a video codec (x264, MPEG-2 or MPEG-4
        ASP by their weights). Within a GOP a still's predicted frames come out as skips, identical to the
        keyframe (measured: x264 at CRF 24 with σ 3 grain), so the pumping from keyframe to keyframe is what
        flickers. What a temporal consistency loss compares; the flicker protocol measures the same."""
        lr, steps, pristine = self._before_codec(hr, scale, rng)
        if pristine:
            return lr, lr, steps
        video = np.asarray(self.codec_weights[1:4], dtype=np.float64)
        kind = str(rng.choice(["x264", "mpeg2", "mpeg4"], p=video / video.sum()))
        codec, options, label = self._video_options(kind, rng)
        grain = rng.uniform(*self.twin_grain)
        a, b = (
            code_frames([np.clip(lr + rng.normal(0, grain, lr.shape), 0, 255).round().astype(np.uint8)],
                        codec, options)[0]
            for _ in range(2)
        )  # fmt: skip
        return a, b, [*steps, f"{label} twins, grain {grain:.1f}"]

    def _before_codec(self, hr: np.ndarray, scale: int, rng: Rng) -> tuple[np.ndarray, list[str], bool]:
        """Every step but the codec: (LR, steps, whether the sample is pristine and takes no codec)."""
        h, w = hr.shape[:2]
        out_h, out_w = h // scale, w // scale
        x, steps = hr.astype(np.float32) / 255.0, []
        pristine = rng.random() < self.pristine_prob
        if pristine:
            mode = "bicubic"
            steps.append("pristine")
        elif rng.random() < self.clean_prob:
            mode = "bicubic"
            steps.append("clean")
        else:
            x = self._order(x, rng, steps, self.blur_sigma, self.noise_sigma)
            if rng.random() < self.second_order:
                x = self._order(x, rng, steps, self.second_sigma, self.second_noise_sigma)
            mode = str(rng.choice(list(RESIZE_FILTERS)))
        x = _resize(x, out_w, out_h, mode)
        lr = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
        if pristine:  # nothing after the downscale either
            return lr, steps, True
        if rng.random() < self.chroma_bleed_prob:
            px = rng.uniform(*self.chroma_bleed_px)
            lr, steps = chroma_bleed(lr, px), [*steps, f"bleed {px:.1f}"]
        elif rng.random() < self.chroma_420_prob:
            lr, steps = yuv420_round_trip(lr), [*steps, "4:2:0"]
        return lr, steps, False

    def _order(self, x: np.ndarray, rng: Rng, steps: list[str], sigma: Range, noise: Range) -> np.ndarray:
        if rng.random() < self.blur_prob:
            kernel, name = self._kernel(rng, sigma)
            x = _convolve(x, kernel)
            steps.append(name)
        up, down, _keep = self.resize_probs
        r = rng.random()
        factor = rng.uniform(1, self.resize_range[1]) if r < up else 1.0
        if up <= r < up + down:
            factor = rng.uniform(self.resize_range[0], 1)
        if factor != 1.0:
            h, w = x.shape[:2]
            mode = str(rng.choice(list(RESIZE_FILTERS)))
            x = _resize(x, max(8, round(w * factor)), max(8, round(h * factor)), mode)
            steps.append(f"resize x{factor:.2f} {mode}")
        gray = rng.random() < self.gray_noise_prob
        if rng.random() >= self.noise_prob:
            pass
        elif rng.random() < self.gaussian_prob:
            s = rng.uniform(*noise) / 255.0
            shape = (*x.shape[:2], 1) if gray else x.shape
            x = x + rng.normal(0.0, s, shape).astype(np.float32)
            steps.append(f"gauss {s * 255:.0f}{' gray' if gray else ''}")
        else:
            photons = 255.0 / rng.uniform(*self.poisson_scale)
            base = x.mean(axis=2, keepdims=True) if gray else x
            shot = rng.poisson(np.clip(base, 0, 1) * photons) / photons - np.clip(base, 0, 1)
            x = x + shot.astype(np.float32)
            steps.append(f"poisson {photons:.0f}{' gray' if gray else ''}")
        return np.clip(x, 0.0, 1.0)

    def _kernel(self, rng: Rng, sigma: Range) -> tuple[np.ndarray, str]:
        size = int(rng.choice(self.kernel_sizes))
        if rng.random() < self.sinc_prob:
            cutoff = rng.uniform(np.pi / 3, np.pi) if size < 13 else rng.uniform(np.pi / 5, np.pi)
            return sinc_kernel(size, cutoff), f"sinc {cutoff:.2f}"
        kind = str(rng.choice(["iso", "aniso", "generalized", "plateau"], p=[0.45, 0.25, 0.15, 0.15]))
        sx = rng.uniform(*sigma)
        sy = sx if kind == "iso" else rng.uniform(*sigma)
        theta = 0.0 if kind == "iso" else rng.uniform(-np.pi, np.pi)
        beta = {"generalized": rng.uniform(0.5, 4.0), "plateau": rng.uniform(1.0, 2.0)}.get(kind, 1.0)
        return blur_kernel(size, sx, sy, theta, kind, beta), f"{kind} {sx:.1f}/{sy:.1f}"

    def _codec(self, lr: np.ndarray, rng: Rng, steps: list[str]) -> tuple[np.ndarray, list[str]]:
        kind = str(rng.choice(["jpeg", "x264", "mpeg2", "mpeg4", "none"], p=_normalised(self.codec_weights)))
        if kind == "jpeg":
            q = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
            return jpeg(lr, q), [*steps, f"jpeg q{q}"]
        if kind == "none":
            return lr, steps
        codec, options, label = self._video_options(kind, rng)
        shift = rng.integers(-2, 3, size=2)
        return inter_coded(lr, codec, options, self.sequence, (int(shift[0]), int(shift[1]))), [*steps, label]

    def _video_options(self, kind: str, rng: Rng) -> tuple[str, dict[str, str], str]:
        """The encoder, its options and a label for one draw of a video codec."""
        if kind == "x264":
            crf = int(rng.integers(self.x264_crf[0], self.x264_crf[1] + 1))
            options = {"crf": str(crf), "preset": str(rng.choice(["veryfast", "medium"])), "bf": "2"}
            label = f"x264 crf{crf}"
        else:
            q = int(rng.integers(self.mpeg_qscale[0], self.mpeg_qscale[1] + 1))
            options = {"qmin": str(q), "qmax": str(q), "bf": "2", "g": "12"}
            label = f"{kind} q{q}"
        return {"x264": "libx264", "mpeg2": "mpeg2video", "mpeg4": "mpeg4"}[kind], options, label


# The mixes a model can train on, by the name ModelSpec.degradation and `vsr train --degradation` use.
# "real": archival damage of every kind (soft optics, tape noise, chroma bleed, then a codec).
# "codec": a decent master damaged mostly by its codec, the web and broadcast case that the x264
# protocols measure; `real` draws that case (a clean downscale, then x264) for only ~12 % of its samples,
# and real-compact-x2 stayed 0.05-0.4 dB short of #24's targets there. Here 54 % are clean downscales
# then a codec (x264 for over half), 10 % stay pristine, the rest get milder blur and noise.
PRESETS: dict[str, RealDegradation] = {
    "real": RealDegradation(),
    "codec": RealDegradation(
        clean_prob=0.6,
        pristine_prob=0.1,
        blur_sigma=(0.2, 1.0),
        noise_sigma=(1.0, 8.0),
        second_order=0.1,
        chroma_bleed_prob=0.05,
        codec_weights=(0.1, 0.55, 0.15, 0.1, 0.1),
        x264_crf=(18, 38),
    ),
}


def _normalised(weights: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    return w / w.sum()


def blur_kernel(size: int, sx: float, sy: float, theta: float, kind: str, beta: float = 1.0) -> np.ndarray:
    """A normalised size×size kernel: Gaussian (kind iso/aniso), generalised Gaussian or plateau."""
    r = size // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * x + s * y, -s * x + c * y
    d2 = (u / sx) ** 2 + (v / sy) ** 2  # Mahalanobis distance² under the rotated covariance
    if kind == "generalized":
        k = np.exp(-0.5 * d2**beta)
    elif kind == "plateau":
        k = 1.0 / (1.0 + d2**beta)
    else:
        k = np.exp(-0.5 * d2)
    return (k / k.sum()).astype(np.float32)


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """A circular low-pass (jinc) of angular cutoff `cutoff` (π: Nyquist): the ringing of over-sharpening."""
    r = size // 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    d = np.hypot(x, y)
    j1 = torch.special.bessel_j1(torch.from_numpy(cutoff * d)).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        k = cutoff * j1 / (2 * np.pi * d)
    k[r, r] = cutoff**2 / (4 * np.pi)
    return (k / k.sum()).astype(np.float32)


def _convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Same-size 2-D convolution of each channel of (H, W, C) float32, borders reflected."""
    kh, kw = kernel.shape
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    t = F.pad(t, (kw // 2, kw // 2, kh // 2, kh // 2), mode="reflect")
    weight = torch.from_numpy(kernel).expand(t.shape[1], 1, kh, kw)
    return F.conv2d(t, weight, groups=t.shape[1])[0].numpy().transpose(1, 2, 0)


def _resize(x: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    """Float RGB 0..1 resized per channel in float32 (Pillow "F" images keep the precision)."""
    channels = [
        np.asarray(Image.fromarray(x[..., c], mode="F").resize((width, height), RESIZE_FILTERS[mode]))
        for c in range(x.shape[2])
    ]
    return np.stack(channels, axis=-1)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """RGB uint8 through Pillow's JPEG (4:2:0) at `quality`."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def yuv420_round_trip(rgb: np.ndarray) -> np.ndarray:
    """RGB → Y'CbCr 4:2:0 (BT.601) → RGB, as every consumer video format stores colour."""
    even = _even(rgb)
    return np.ascontiguousarray(_rgb(_frame(even, "yuv420p"))[: rgb.shape[0], : rgb.shape[1]])


def chroma_bleed(rgb: np.ndarray, px: float) -> np.ndarray:
    """Colour smeared horizontally by `px` pixels (a Gaussian on Cb and Cr only), as VHS and U-matic leave."""
    yuv = _frame(_even(rgb), "yuv444p").to_ndarray()
    yuv = yuv.astype(np.float32)  # (3, H, W) planes
    taps = np.arange(-math.ceil(3 * px), math.ceil(3 * px) + 1, dtype=np.float32)
    smear = np.exp(-0.5 * (taps / px) ** 2)[None]
    lag = round(px / 2)  # chroma lags luma on tape: shifted right, the left edge repeated
    chroma = np.concatenate(
        [np.repeat(yuv[1:, :, :1], lag, axis=2), yuv[1:, :, : yuv.shape[2] - lag]], axis=2
    )
    yuv[1:] = _convolve(chroma.transpose(1, 2, 0), smear / smear.sum()).transpose(2, 0, 1)
    planes = np.clip(np.round(yuv), 0, 255).astype(np.uint8)
    rgb_out = _rgb(av.VideoFrame.from_ndarray(planes, format="yuv444p"))
    return np.ascontiguousarray(rgb_out[: rgb.shape[0], : rgb.shape[1]])


def inter_coded(
    rgb: np.ndarray, codec: str, options: dict[str, str], frames: int, shift: tuple[int, int]
) -> np.ndarray:
    """`rgb` as the last frame of a short clip through a real video encoder and decoder.

    The clip pans towards `rgb` by `shift` pixels a frame (edge-padded), so the kept frame is predicted
    from its predecessors as in real footage, not coded alone as an intra picture.
    """
    return coded_sequence(rgb, codec, options, frames, shift)[-1]


def coded_sequence(
    rgb: np.ndarray, codec: str, options: dict[str, str], frames: int, shift: tuple[int, int]
) -> list[np.ndarray]:
    """Every decoded frame, in presentation order, of the panned clip `inter_coded` makes."""
    h, w = rgb.shape[:2]
    pad = max(abs(shift[0]), abs(shift[1])) * frames
    padded = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    pictures = []
    for i in range(frames):
        back = frames - 1 - i  # frames before the last sit `back` steps along the pan
        dy, dx = pad + back * shift[0], pad + back * shift[1]
        pictures.append(np.ascontiguousarray(padded[dy : dy + h, dx : dx + w]))
    return code_frames(pictures, codec, options)


def code_frames(pictures: list[np.ndarray], codec: str, options: dict[str, str]) -> list[np.ndarray]:
    """RGB pictures of one size through a real video encoder and decoder, as one clip at 25 fps."""
    h, w = pictures[0].shape[:2]
    eh, ew = _even(pictures[0]).shape[:2]
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = ew, eh, "yuv420p"
    ctx.time_base = Fraction(1, 25)
    ctx.framerate = Fraction(25)
    ctx.options = options
    packets = []
    for i, picture in enumerate(pictures):
        frame = _frame(_even(picture), "yuv420p")
        frame.pts = i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    decoder = av.CodecContext.create({"libx264": "h264"}.get(codec, codec), "r")
    decoded = [f for p in packets for f in decoder.decode(p)] + list(decoder.decode(None))
    decoded.sort(key=lambda f: f.pts if f.pts is not None else -1)
    return [np.ascontiguousarray(_rgb(f)[:h, :w]) for f in decoded]


_local = threading.local()


def _convert(frame: av.VideoFrame, pix_fmt: str) -> av.VideoFrame:
    """frame.reformat with a reformatter kept per thread: swscale's context is then made once per size and
    format instead of once per picture (it cost more than the codecs on these small patches)."""
    key = f"to_{pix_fmt}"
    if not hasattr(_local, key):
        setattr(_local, key, VideoReformatter())
    return getattr(_local, key).reformat(frame, format=pix_fmt)


def _frame(rgb: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    return _convert(av.VideoFrame.from_ndarray(rgb, format="rgb24"), pix_fmt)


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    return _convert(frame, "rgb24").to_ndarray()


def _even(rgb: np.ndarray) -> np.ndarray:
    """Edge-padded to even height and width (4:2:0 needs them)."""
    h, w = rgb.shape[:2]
    return np.ascontiguousarray(np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge"))


def preview(
    images: list[np.ndarray],
    scale: int,
    out: Path,
    *,
    mix: RealDegradation | None = None,
    count: int = 12,
    patch: int = 96,
    seed: int = 0,
) -> Path:
    """A PNG grid of `count` samples of `mix` (default: the "real" one): each clean HR crop beside its
    degraded LR (nearest-upscaled to the same size), captioned with the steps drawn. What `vsr train
    --preview-degradations` writes."""
    from PIL import ImageDraw

    rng, degradation = np.random.default_rng(seed), mix or RealDegradation()
    images = [i for i in images if min(i.shape[:2]) >= patch]
    cell, caption, cols = patch * 2 + 4, 36, 3
    rows = math.ceil(count / cols)
    grid = Image.new("RGB", (cols * (cell + 8), rows * (patch + caption + 8)), "white")
    draw = ImageDraw.Draw(grid)
    for k in range(count):
        img = images[int(rng.integers(len(images)))]
        y, x = (int(rng.integers(n - patch + 1)) for n in img.shape[:2])
        hr = img[y : y + patch, x : x + patch]
        lr, steps = degradation.degrade(hr, scale, rng)
        top, left = (k // cols) * (patch + caption + 8), (k % cols) * (cell + 8)
        grid.paste(Image.fromarray(hr), (left, top))
        grid.paste(
            Image.fromarray(lr).resize((patch, patch), Image.Resampling.NEAREST), (left + patch + 4, top)
        )
        text = ", ".join(steps)
        for line, part in enumerate((text[:34], text[34:68], text[68:102])):
            draw.text((left, top + patch + 2 + 11 * line), part, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    return out
