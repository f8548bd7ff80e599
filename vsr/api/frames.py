"""A model chain for your own frames: the shipped models a name means (`_chain`), and `load_model`, which
loads them on a backend (with `auto`'s fallback) into an `Upscaler` that takes numpy frames."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from types import TracebackType

import numpy as np

from vsr.backends import Backend, DeviceBackend
from vsr.backends.options import BackendOptions
from vsr.backends.select import Choice, choose, fallback, open_backend
from vsr.errors import BackendUnavailableError, ModelError, UsageError
from vsr.models.artefacts import ShippedModel, shipped_model
from vsr.models.auto import DEFAULT_MODELS
from vsr.pipeline.tiling import FixedTiles, OnePerCall, run_tiled

AUTO = "auto"  # the model name that measures the source and picks the chain (`upscale`'s default)
Log = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


def _chain(model: str | None, scale: int | None, denoise: str | None) -> list[ShippedModel]:
    """The shipped models to run, in order: the denoiser (if any), then the upscaler or a cascade of them
    ("compact-x4+espcn-x2")."""
    if model == AUTO:
        raise UsageError("auto measures a video file before it chooses: name a model here")
    if model is None:
        scale = scale or 2
        if scale not in DEFAULT_MODELS:
            raise UsageError(f"no default model for scale {scale}; choose one of {sorted(DEFAULT_MODELS)}")
        model = DEFAULT_MODELS[scale]
    upscalers = [shipped_model(name.strip()) for name in model.split("+")]
    if len(upscalers) > 1 and (odd := [m.spec.name for m in upscalers if m.spec.task != "sr"]):
        raise UsageError(f"a cascade chains upscalers; {odd[0]} is not one (use --denoise)")
    factor = math.prod(m.spec.scale for m in upscalers)
    if scale is not None and factor != scale:
        raise UsageError(f"model {model} upscales ×{factor}, not ×{scale}")
    if denoise is None:
        return upscalers
    denoiser = shipped_model(denoise)
    if denoiser.spec.task != "denoise":
        raise UsageError(f"--denoise takes a denoiser; {denoise} is a {denoiser.spec.task} model")
    return [denoiser, *upscalers]


class Upscaler:
    """A loaded model chain: call it on numpy frames, (H, W, 3) or (N, H, W, 3), uint8 or uint16 RGB.

    A context manager that owns its runtimes; `tile` runs frames in overlapping tiles of that many input
    pixels (the output is the same; memory stays small).
    """

    def __init__(
        self, chain: Sequence[ShippedModel], choice: Choice, *, tile: int | None = None, log: Log = _quiet
    ) -> None:
        self.models = [m.spec.name for m in chain]
        self.tile = tile
        self.scale = math.prod(m.spec.scale for m in chain)
        self._chain, self._log = list(chain), log
        self._open(choice)

    def _open(self, choice: Choice) -> None:
        with contextlib.ExitStack() as stack:
            self.backends: list[Backend] = [
                stack.enter_context(_sized(open_backend(choice.options, m, log=self._log), m))
                for m in self._chain
            ]
            self._stack = stack.pop_all()
        self.choice = choice

    def reopen(self, choice: Choice) -> None:
        """Close the runtimes and load the chain again on `choice` (auto's next backend)."""
        self._stack.close()
        self._open(choice)

    @property
    def name(self) -> str:
        """The chain, "dncnn-color → espcn-x2"."""
        return " → ".join(self.models)

    @property
    def backend(self) -> str:
        """The runtimes, as they name themselves."""
        return " → ".join(b.name for b in self.backends)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Upscale RGB frames; returns the same type and layout, each side ×scale."""
        single = frames.ndim == 3
        batch = np.ascontiguousarray(frames[None] if single else frames)
        if batch.dtype not in (np.uint8, np.uint16) or batch.ndim != 4 or batch.shape[-1] != 3:
            raise UsageError(
                f"expected (H, W, 3) or (N, H, W, 3) uint8/uint16 RGB, got {frames.shape} {frames.dtype}"
            )
        for backend in self.backends:
            if batch.dtype not in backend.dtypes:
                raise UsageError(
                    f"{backend.name} takes {'/'.join(sorted(d.name for d in backend.dtypes))} frames"
                )
            if self.tile is None:
                batch = backend.run(batch)
            else:
                batch = run_tiled(backend.run, batch, scale=backend.scale, tile=self.tile, overlap=16)
        return batch[0] if single else batch

    def close(self) -> None:
        """Release every runtime."""
        self._stack.close()

    def __enter__(self) -> Upscaler:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _sized(backend: Backend, model: ShippedModel) -> Backend:
    """The backend, run one picture per call where the model's graph keeps its traced batch, and tile by
    tile where it takes one size only (imported models on ONNX Runtime or OpenVINO; torch rebuilds the
    network, which takes any batch and size)."""
    if isinstance(backend, DeviceBackend):
        return backend
    if model.entry.get("batch") == 1:
        backend = OnePerCall(backend)
    tile = model.entry.get("tile")
    return backend if tile is None else FixedTiles(backend, tile, model.entry["tile_overlap"])


def load_model(
    name: str | None = None,
    *,
    scale: int | None = None,
    denoise: str | None = None,
    backend: str | BackendOptions = "auto",
    precision: str | None = None,
    threads: int = 0,
    tile: int | None = None,
    torch_compile: bool = False,
    cuda_graphs: bool = False,
    log: Log = _quiet,
) -> Upscaler:
    """Load a shipped model (the default for `scale` when no name is given), optionally behind a denoiser,
    on a backend: "auto", "onnxruntime", "torch", "tensorrt", or an options object of vsr.backends.options."""
    chain = _chain(name, scale, denoise)
    choice = choose(
        backend, precision=precision, threads=threads, compile=torch_compile, cuda_graphs=cuda_graphs
    )
    if tile is not None and tile < 16:
        raise UsageError("a tile side must be at least 16 input pixels")
    while True:
        try:
            return Upscaler(chain, choice, tile=tile, log=log)
        except (ModelError, BackendUnavailableError) as error:
            # `auto` degrades gracefully (TensorRT → torch CUDA → ONNX Runtime); a named backend fails loudly.
            if (next_choice := fallback(choice, error)) is None:
                raise
            log(f"warning: {next_choice.reason}")
            choice = next_choice
