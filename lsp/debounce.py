"""Adaptive debounce: wait briefly while the user types fast, not at all after a pause."""

from __future__ import annotations

import time
from collections import OrderedDict

MAX_DOCUMENTS = 256
"""Documents whose typing rhythm is remembered."""
SMOOTHING = 0.3
"""Weight of the newest interval in the moving average."""


def debounce_ms(interval_ms: float | None, floor_ms: float, ceiling_ms: float) -> float:
    """Delay before asking the engine, from the smoothed interval between requests.

    Typing fast (interval under 3x the ceiling): wait about 60% of the interval, within
    [floor, ceiling], so a keystroke that is about to come supersedes this request before it
    costs engine time. After a pause: the floor.
    """
    if interval_ms is None or interval_ms >= 3 * ceiling_ms:
        return floor_ms
    return min(ceiling_ms, max(floor_ms, 0.6 * interval_ms))


class Debouncer:
    """Per-document typing rhythm (a smoothed interval between completion requests)."""

    def __init__(self, floor_ms: float = 0.0, ceiling_ms: float = 120.0) -> None:
        self.floor_ms = floor_ms
        self.ceiling_ms = ceiling_ms
        self._last: OrderedDict[str, tuple[float, float | None]] = OrderedDict()

    def delay(self, uri: str, now: float | None = None) -> float:
        """Record a request for `uri` and return how long to wait, in seconds."""
        now = time.monotonic() if now is None else now
        previous = self._last.pop(uri, None)
        smoothed: float | None = None
        if previous is not None:
            last_time, last_smoothed = previous
            interval = (now - last_time) * 1000
            smoothed = (
                interval
                if last_smoothed is None
                else SMOOTHING * interval + (1 - SMOOTHING) * last_smoothed
            )
            if interval >= 3 * self.ceiling_ms:
                smoothed = None  # a pause resets the rhythm
        self._last[uri] = (now, smoothed)
        while len(self._last) > MAX_DOCUMENTS:
            self._last.popitem(last=False)
        return debounce_ms(smoothed, self.floor_ms, self.ceiling_ms) / 1000

    def __len__(self) -> int:
        return len(self._last)
