"""One progress display per build: examples done over all shards, rows/s, ETA, the current phase.

On a terminal it is a tqdm bar; otherwise (logs, CI, a cluster job) a log line every
``DSBUILD_PROGRESS_SECONDS`` seconds (default 30) replaces it. Shards finished by an earlier run
count as done from the start, so the ETA covers only the work left.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

log = logging.getLogger("dsbuild.progress")


class BuildProgress:
    """Progress over the examples of a whole build (every config and split)."""

    def __init__(self, name: str, total: int | None = None, *, enabled: bool = True) -> None:
        self.name = name
        self.total = total
        self.done = 0
        self.resumed = 0
        self.phase = ""
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last_log = self._start
        self._interval = float(os.environ.get("DSBUILD_PROGRESS_SECONDS", "30"))
        self._bar: Any = None
        if enabled and sys.stderr.isatty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=name, unit="ex", dynamic_ncols=True, leave=False)

    def skip(self, n: int) -> None:
        """``n`` examples were finished by an earlier run (resume)."""
        with self._lock:
            self.done += n
            self.resumed += n
            if self._bar is not None:
                self._bar.update(n)

    def advance(self, n: int) -> None:
        """``n`` examples finished now."""
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)
            self._maybe_log()

    def set_phase(self, text: str) -> None:
        """What is running now (``es/train shard 3: translate 500``)."""
        with self._lock:
            self.phase = text
            if self._bar is not None:
                self._bar.set_postfix_str(text, refresh=True)
            self._maybe_log()

    def rate(self) -> float:
        elapsed = max(1e-9, time.monotonic() - self._start)
        return (self.done - self.resumed) / elapsed

    def line(self) -> str:
        rate = self.rate()
        parts = [f"{self.name}: {self.done:,}" + (f"/{self.total:,}" if self.total else "") + " examples",
                 f"{rate:,.1f} ex/s"]
        if self.total and rate > 0:
            parts.append(f"ETA {_hms((self.total - self.done) / rate)}")
        if self.phase:
            parts.append(self.phase)
        return ", ".join(parts)

    def _maybe_log(self) -> None:
        if self._bar is not None:
            return
        now = time.monotonic()
        if now - self._last_log >= self._interval:
            self._last_log = now
            log.info("%s", self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
