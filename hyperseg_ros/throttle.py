"""Log lines: one per kind of event and period (rclpy's `throttle_duration_sec` throttles per call
site, so three different rejections in a row would give a single warning), and caller text
made printable."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


class PerKindThrottle:
    """`allow(kind)` is true at most once per `period_s` for each kind; `suppressed(kind)` says how
    many were held back since the last one allowed (to be said in that next line)."""

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic):
        self.period_s = float(period_s)
        self._clock = clock
        self._lock = threading.Lock()  # called from the executor and the inference worker
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, kind: str) -> int | None:
        """None when this event of `kind` is held back; else how many were held back before it."""
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.period_s:
                self._held[kind] = self._held.get(kind, 0) + 1
                return None
            self._last[kind] = now
            return self._held.pop(kind, 0)


def printable(text: str) -> str:
    """`text` with every character that is not printable (newlines, ANSI escapes, other control
    and format characters) written as its escape, so that what a caller sends can neither start a
    forged log line nor drive the operator's terminal."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
