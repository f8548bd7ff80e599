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
        # Completion is tracked with Events rather than Thread.join/is_alive: on Python < 3.13 a join that
        # Ctrl-C interrupts can leave is_alive() False while the thread still runs (CPython gh-90882).
        self._done: list[threading.Event] = []
        self._lock = threading.Lock()

    def channel(self, depth: int) -> Channel:
        """A bounded queue between two stages that gives up when the group stops."""
        return Channel(depth, self.stop)

    def spawn(self, name: str, fn: Callable[[], None]) -> None:
        """Start `fn` in a thread; an exception in it stops the whole group."""

        done = threading.Event()

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
            finally:
                done.set()

        self._done.append(done)
        threading.Thread(target=body, name=f"vsr-{name}", daemon=True).start()

    def alive(self) -> bool:
        """Whether any stage is still running."""
        return not all(d.is_set() for d in self._done)

    def join(self, timeout: float | None = None) -> None:
        """Wait for every stage (each up to `timeout` seconds)."""
        for done in self._done:
            done.wait(timeout)


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
