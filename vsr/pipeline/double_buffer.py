"""Double-buffered device staging: upload of batch k+1 overlaps the compute of batch k.

Each slot owns a pinned host input buffer, a device input buffer and a pinned host output buffer, and
three CUDA events. Three streams do the work: upload (host → device), compute (the model), download
(device → host). The slots alternate, so while the compute stream runs batch k the upload stream is
already copying batch k+1 and the download stream returns batch k-1; events order only what must be
ordered (a slot's upload after its previous compute has consumed it, a download after its compute).

On the CPU the same code runs with no streams, no pinning and events that are already complete: the
slot logic is then exercised by the tests of every machine.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
import torch
from torch import Tensor

DeviceFn = Callable[[Tensor], Tensor]  # device tensor in → device tensor out, queued on the current stream

# uint16 (10-bit) planes travel as int16: the same bits, and a dtype every torch device copies.
_TORCH_DTYPE = {
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.uint16): torch.int16,
    np.dtype(np.int16): torch.int16,
}


class _DoneEvent:
    """A stand-in for torch.cuda.Event on the CPU, where every operation has finished when it returns."""

    def record(self, stream: Any = None) -> None:
        pass

    def synchronize(self) -> None:
        pass


@dataclass
class _Slot:
    host_in: Tensor | None = None
    dev_in: Tensor | None = None
    host_out: Tensor | None = None
    out_dtype: np.dtype | None = None
    uploaded: Any = None
    computed: Any = None
    downloaded: Any = None
    used: bool = False  # the events refer to earlier work
    meta: Any = field(default=None)


class DeviceStager:
    """Runs numpy batches through `fn` on `device` with `slots` alternating buffer sets (2 = double)."""

    def __init__(self, fn: DeviceFn, device: torch.device, *, slots: int = 3) -> None:
        if slots < 2:
            raise ValueError("double buffering needs at least two slots")
        self.fn = fn
        self.device = device
        self._cuda = device.type == "cuda"
        # Blocking events: a host wait sleeps instead of spinning a core that x264 needs.
        make_event = (lambda: torch.cuda.Event(blocking=True)) if self._cuda else _DoneEvent
        self._slots = [
            _Slot(uploaded=make_event(), computed=make_event(), downloaded=make_event()) for _ in range(slots)
        ]
        if self._cuda:
            self._upload, self._compute, self._download = (torch.cuda.Stream(device) for _ in range(3))
        self._pending: deque[_Slot] = deque()
        self._next = 0

    @property
    def in_flight(self) -> int:
        """Batches submitted and not yet collected."""
        return len(self._pending)

    @property
    def full(self) -> bool:
        """Whether every slot holds a batch: collect() before the next submit()."""
        return len(self._pending) == len(self._slots)

    def _stream(self, name: str) -> contextlib.AbstractContextManager:
        return torch.cuda.stream(getattr(self, name)) if self._cuda else contextlib.nullcontext()

    def _host(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        return torch.empty(shape, dtype=dtype, pin_memory=self._cuda)

    def submit(self, batch: np.ndarray, meta: Any = None) -> None:
        """Queue upload, compute and download of `batch`; returns once the upload is enqueued."""
        if self.full:
            raise RuntimeError("all slots are busy: collect() first")
        slot = self._slots[self._next % len(self._slots)]
        self._next += 1
        dtype = _TORCH_DTYPE[batch.dtype]
        if slot.used:
            slot.uploaded.synchronize()  # the previous upload from host_in must be done before overwriting it
        if slot.host_in is None or slot.host_in.shape != batch.shape or slot.host_in.dtype != dtype:
            if slot.used:
                slot.computed.synchronize()  # the old device buffer may still be read by its compute
            slot.host_in = self._host(batch.shape, dtype)
            slot.dev_in = torch.empty(batch.shape, dtype=dtype, device=self.device)
        slot.host_in.numpy()[...] = batch.view(slot.host_in.numpy().dtype)  # one memcpy into pinned memory
        with self._stream("_upload"):
            if slot.used and self._cuda:
                self._upload.wait_event(slot.computed)  # compute of the slot's last batch has read dev_in
            assert slot.dev_in is not None
            slot.dev_in.copy_(slot.host_in, non_blocking=True)
            slot.uploaded.record()
        with self._stream("_compute"):
            if self._cuda:
                self._compute.wait_event(slot.uploaded)
            result = self.fn(slot.dev_in)
            slot.computed.record()
        with self._stream("_download"):
            if self._cuda:
                self._download.wait_event(slot.computed)
                result.record_stream(self._download)  # the allocator must not reuse it before the copy
            out = slot.host_out
            if out is None or out.shape != result.shape or out.dtype != result.dtype:
                slot.host_out = self._host(tuple(result.shape), result.dtype)
            slot.host_out.copy_(result, non_blocking=True)
            slot.downloaded.record()
        slot.used, slot.meta = True, meta
        self._pending.append(slot)

    def collect(self) -> tuple[np.ndarray, Any]:
        """The oldest submitted batch's result (a host copy) and the meta it was submitted with."""
        if not self._pending:
            raise RuntimeError("nothing submitted")
        slot = self._pending.popleft()
        slot.downloaded.synchronize()
        assert slot.host_out is not None
        out = slot.host_out.numpy().copy()  # copied: the pinned buffer serves the next batch
        # 10-bit planes travel as int16 (see _TORCH_DTYPE) and come back as the uint16 they are.
        return (out.view(np.uint16) if out.dtype == np.int16 else out), slot.meta

    def drain(self) -> list[tuple[np.ndarray, Any]]:
        """Collect everything still in flight, oldest first."""
        return [self.collect() for _ in range(self.in_flight)]

    def close(self) -> None:
        """Wait for the device and drop the buffers."""
        if self._cuda:
            torch.cuda.synchronize(self.device)
        self._pending.clear()
        for slot in self._slots:
            slot.host_in = slot.dev_in = slot.host_out = None

    def __enter__(self) -> DeviceStager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
