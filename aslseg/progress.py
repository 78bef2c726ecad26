"""Progress of a long job step on the console: which step, how far, roughly how long it has left.

Jobs log to their own files; Snakemake's console says only which jobs started and finished. The long steps
(training, SAM embedding) print one plain line now and then to stderr, which Snakemake passes through:

    aslseg: ssl_train bcp: 120/300 iterations (40%), 1 min 10 s so far, about 1 min 45 s left

A line at most every 30 s on a terminal and every 120 s otherwise (a CI or SLURM log gets a few lines per
job, not a progress bar's redraws), nothing for a step that ends within its first interval, and a closing line
for a step that printed any. Lines, not a redrawn bar: two jobs running at once share the console.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def format_seconds(seconds: float) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min'."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Counts `total` units of work of step `what` and reports them as the module docstring says."""

    def __init__(self, total: int, what: str, unit: str, enabled: bool = True, interval: float | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.total, self.what, self.unit, self.enabled = total, what, unit, enabled
        self.stream = stream or sys.stderr
        if interval is None:
            interval = 30.0 if getattr(self.stream, "isatty", lambda: False)() else 120.0
        self.interval = interval
        self.clock = clock
        self.start = self.last = clock()
        self.done = 0
        self.printed = False
        self.note = ""  # appended to the next line, e.g. the latest val Dice

    def advance(self, units: int = 1) -> None:
        self.done += units
        if not self.enabled:
            return
        now = self.clock()
        if self.done >= self.total:
            if self.printed:
                self._print(f"{self.total} {self.unit} done in {format_seconds(now - self.start)}")
            return
        if now - self.last >= self.interval and self.done > 0:
            elapsed = now - self.start
            left = elapsed * (self.total - self.done) / self.done
            self._print(f"{self.done}/{self.total} {self.unit} ({100 * self.done / self.total:.0f}%), "
                        f"{format_seconds(elapsed)} so far, about {format_seconds(left)} left")
            self.last = now

    def _print(self, text: str) -> None:
        note = f" [{self.note}]" if self.note else ""
        print(f"aslseg: {self.what}: {text}{note}", file=self.stream, flush=True)
        self.printed = True
