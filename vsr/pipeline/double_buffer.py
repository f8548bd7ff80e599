"""Multi-buffered device staging: upload of batch k+1 overlaps the compute of batch k and the download of
batch k-1.

Each slot owns a device input buffer and three CUDA events. Three streams do the work: upload (host →
device), compute (the model), download (device → host). The slots rotate, so while the compute stream runs
batch k the upload stream is already copying batch k+1 and the download stream returns batch k-1; events
order only what must be ordered (a slot's upload after its previous compute has consumed it, a download
after its compute).

Host memory is pinned and pooled, so no frame is copied on the host more than it must be: the decode thread
assembles each batch straight into a pinned buffer (host_batch), which is uploaded from where it lies and
goes back to the pool once its batch is done; each result is downloaded into a pinned buffer of its own that
the encode thread reads in place and gives back (release) when the batch is written.

On the CPU the same code runs with no streams, no pinning and events that are already complete: the
slot logic is then exercised by the tests of every machine.
"""

from __future__ import annotations

import contextlib
import threading
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


class HostPool:
    """Host buffers (pinned where a CUDA device will copy them) lent and given back from several threads;
    a new one is made when every buffer of a shape is out, so the pool grows only as far as the pipeline's
    queues let batches pile up."""

    def __init__(self, pinned: bool) -> None:
        self._pinned = pinned
        self._free: dict[tuple[tuple[int, ...], torch.dtype], list[Tensor]] = {}
        self._lent: dict[int, Tensor] = {}  # by data pointer
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        """A buffer of this shape and type (contents undefined)."""
        with self._lock:
            free = self._free.get((shape, dtype))
            buffer = free.pop() if free else None
        if buffer is None:
            buffer = torch.empty(shape, dtype=dtype, pin_memory=self._pinned)
        with self._lock:
            self._lent[buffer.data_ptr()] = buffer
        return buffer

    def lent(self, array: np.ndarray) -> Tensor | None:
        """The lent buffer `array` starts at (it may be a shorter view of it), if it is one of ours."""
        with self._lock:
            return self._lent.get(array.__array_interface__["data"][0])

    def give(self, buffer: Tensor) -> None:
        """Return a buffer taken from this pool; anything else is ignored."""
        with self._lock:
            if self._lent.pop(buffer.data_ptr(), None) is not None:
                self._free.setdefault((tuple(buffer.shape), buffer.dtype), []).append(buffer)


def as_numpy(buffer: Tensor) -> np.ndarray:
    """A host tensor as the array the pipeline expects (int16-held 10-bit codes as the uint16 they are)."""
    array = buffer.numpy()
    return array.view(np.uint16) if array.dtype == np.int16 else array


@dataclass
class _Slot:
    dev_in: Tensor | None = None
    host_in: Tensor | None = None  # the pooled buffer being uploaded, given back when the batch is done
    host_out: Tensor | None = None  # the pooled buffer the result lands in, the encode thread's to give back
    uploaded: Any = None
    computed: Any = None
    downloaded: Any = None
    used: bool = False  # the events refer to earlier work
    meta: Any = field(default=None)


class DeviceStager:
    """Runs numpy batches through `fn` on `device` with `slots` rotating buffer sets (2 = double)."""

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
        self.inputs, self.outputs = HostPool(self._cuda), HostPool(self._cuda)

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

    def host_batch(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """A pinned host array to assemble a batch in (from any thread); submit() uploads it in place.
        A batch that ends short is submitted as a leading slice of it."""
        return as_numpy(self.inputs.take(tuple(shape), _TORCH_DTYPE[np.dtype(dtype)]))

    def release(self, result: np.ndarray) -> None:
        """Give back a result collect() returned, once it has been read (from any thread)."""
        if (buffer := self.outputs.lent(result)) is not None:
            self.outputs.give(buffer)

    def submit(self, batch: np.ndarray, meta: Any = None) -> None:
        """Queue upload, compute and download of `batch`; returns once the upload is enqueued."""
        if self.full:
            raise RuntimeError("all slots are busy: collect() first")
        slot = self._slots[self._next % len(self._slots)]
        self._next += 1
        dtype = _TORCH_DTYPE[batch.dtype]
        host = self.inputs.lent(batch)
        if host is None:  # a batch from elsewhere: one memcpy into a pooled pinned buffer
            host = self.inputs.take(batch.shape, dtype)
            as_numpy(host)[...] = batch
        source = host[: batch.shape[0]]  # a short last batch is a leading slice of its buffer
        if slot.dev_in is None or slot.dev_in.shape != batch.shape or slot.dev_in.dtype != dtype:
            if slot.used:
                slot.computed.synchronize()  # the old device buffer may still be read by its compute
            slot.dev_in = torch.empty(batch.shape, dtype=dtype, device=self.device)
        slot.host_in = host
        with self._stream("_upload"):
            if slot.used and self._cuda:
                self._upload.wait_event(slot.computed)  # compute of the slot's last batch has read dev_in
            slot.dev_in.copy_(source, non_blocking=True)
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
            slot.host_out = self.outputs.take(tuple(result.shape), result.dtype)
            slot.host_out.copy_(result, non_blocking=True)
            slot.downloaded.record()
        slot.used, slot.meta = True, meta
        self._pending.append(slot)

    def collect(self) -> tuple[np.ndarray, Any]:
        """The oldest submitted batch's result and the meta it was submitted with. The result lies in a
        pooled pinned buffer, read in place: release() it once written."""
        if not self._pending:
            raise RuntimeError("nothing submitted")
        slot = self._pending.popleft()
        slot.downloaded.synchronize()  # so its compute, and the upload before it, are done too
        assert slot.host_out is not None and slot.host_in is not None
        self.inputs.give(slot.host_in)
        out, slot.host_in, slot.host_out = slot.host_out, None, None
        return as_numpy(out), slot.meta

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
        self.inputs = self.outputs = HostPool(self._cuda)

    def __enter__(self) -> DeviceStager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
