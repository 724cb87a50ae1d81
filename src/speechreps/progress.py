"""Progress where nobody watches a bar: periodic log lines with the rate and the time left.

A progress bar redrawn into a log file is noise, and a log that stays silent through a 10-minute
epoch looks like a hung job. So a long loop shows a bar when its output is a terminal (see
:func:`bars_enabled`) and otherwise a :class:`Heartbeat`: one line every ``every`` seconds with
how far it got, the rate and an estimate of the time left.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def bars_enabled(progress: bool = True, stream: TextIO | None = None) -> bool:
    """Whether to draw progress bars: asked for, and the stream (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(progress) and stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``: short and unambiguous in a log line."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class Heartbeat:
    """Calls ``log`` at most every ``every`` seconds with ``what``'s progress through ``total`` steps.

    ``update(n, frames)`` after each step; a line reads e.g.
    ``cpc epoch 3/15: 120/480 batches (25%), 2,310 frames/s, 0.9 batches/s, about 6 min 40 s left``.
    ``every <= 0`` disables it. ``clock`` is injectable for tests.
    """

    def __init__(self, what: str, total: int, log: Callable[[str], None], every: float = 30.0,
                 unit: str = "batches", clock: Callable[[], float] = time.monotonic):
        self.what, self.total, self.log, self.every, self.unit, self.clock = what, int(total), log, float(every), unit, clock
        self.start = self.last = clock()
        self.done = 0
        self.frames = 0

    def update(self, n: int = 1, frames: int = 0) -> bool:
        """Count ``n`` steps (and ``frames`` frames); returns True when a line was logged."""
        self.done += n
        self.frames += frames
        if self.every <= 0:
            return False
        now = self.clock()
        if now - self.last < self.every or self.done >= self.total:
            return False
        self.last = now
        self.log(self.line(now))
        return True

    def line(self, now: float | None = None) -> str:
        elapsed = max((self.clock() if now is None else now) - self.start, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.what}: {self.done:,}/{self.total:,} {self.unit}"]
        if self.total > 0:
            parts[0] += f" ({100 * self.done / self.total:.0f}%)"
        if self.frames:
            parts.append(f"{self.frames / elapsed:,.0f} frames/s")
        parts.append(f"{rate:.2f} {self.unit}/s")
        if rate > 0 and self.total > self.done:
            parts.append(f"about {format_duration((self.total - self.done) / rate)} left")
        return ", ".join(parts)
