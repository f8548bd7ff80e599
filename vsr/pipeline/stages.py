"""Threads joined by bounded queues, with one stop signal: the first failure in any stage stops them all."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

POLL_S = 0.1  # how often a blocked stage looks at the stop signal

_END = object()  # sent down a queue after a stage's last item


class Stopped(Exception):
    """Raised inside a stage when another stage failed or the job was aborted."""


class StageGroup:
    """Runs stage functions in daemon threads; records the first exception and stops the rest."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def channel(self, depth: int) -> Channel:
        """A bounded queue between two stages that gives up when the group stops."""
        return Channel(depth, self.stop)

    def spawn(self, name: str, fn: Callable[[], None]) -> None:
        """Start `fn` in a thread; an exception in it stops the whole group."""

        def body() -> None:
            try:
                fn()
            except Stopped:
                pass
            except BaseException as exc:
                with self._lock:
                    if self.error is None:
                        self.error = exc
                self.stop.set()

        thread = threading.Thread(target=body, name=f"vsr-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def alive(self) -> bool:
        """Whether any stage is still running."""
        return any(t.is_alive() for t in self._threads)

    def join(self, timeout: float | None = None) -> None:
        """Wait for every stage (each up to `timeout` seconds)."""
        for t in self._threads:
            t.join(timeout)


class Channel:
    """A bounded FIFO; put/get raise Stopped as soon as the group's stop signal is set."""

    def __init__(self, depth: int, stop: threading.Event) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = stop

    def put(self, item: Any) -> None:
        """Block until there is room (or the group stops)."""
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                self._queue.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        """Tell the consumer that nothing more will come."""
        self.put(_END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            if self._stop.is_set():
                raise Stopped
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item
