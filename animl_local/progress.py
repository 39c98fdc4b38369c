"""What a local run is doing, on stderr: the phase, and while ingesting n of N images with the
rate and the time left.

On a terminal one line is rewritten in place at least every second (a ticker redraws it, so
the elapsed time moves even while a phase shows no count); elsewhere (a pipe, a log file) one
plain line per phase and one per tenth of the images, so a log says the same without flooding.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

# The phases of a run, in order; one place for their words.
STARTING = "starting the local stage"
ZIPPING = "zipping the folder"
UPLOADING = "uploading"
INSPECTING = "inspecting the archive"
INGESTING = "ingesting"
AWAITING_INFERENCE = "awaiting inference"
READING_OUTCOMES = "reading the outcomes"
WRITING_REPORT = "writing the report"
COPYING = "copying the images to the output folder"
STOPPING = "stopping the local stage"
CLEANING_UP = "removing temp files"

# A plain line every tenth of the images.
PLAIN_STEPS = 10
REDRAW_SECONDS = 0.5


class Progress:
    """Told the phase and the image counts; shows them on `stream`."""

    def __init__(self, stream: TextIO, terminal: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._terminal = terminal
        self._clock = clock
        self._started = clock()
        self._phase = ""
        self._detail = ""  # what the phase has done so far, e.g. the bytes uploaded
        self._done = 0
        self._total: int | None = None
        self._ingest_started: float | None = None
        self._steps_shown = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if terminal:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    def phase(self, name: str) -> None:
        with self._lock:
            if name == self._phase:
                return
            self._phase, self._detail = name, ""
            if name == INGESTING and self._ingest_started is None:
                self._ingest_started = self._clock()
            self._show_phase()

    def uploaded(self, sent: int, size: int) -> None:
        """Bytes of the archive uploaded so far, of `size`."""
        self.phase(UPLOADING)
        with self._lock:
            self._detail = f"{sent / 1e6:.0f}/{size / 1e6:.0f} MB"
            self._show_phase()

    def images(self, done: int, total: int | None) -> None:
        """The images with an outcome so far, of `total` (None while the archive is read)."""
        if total is None:
            self.phase(INSPECTING)
            return
        with self._lock:
            self._done, self._total = done, total
        self.phase(AWAITING_INFERENCE if total and done >= total else INGESTING)
        with self._lock:
            if self._terminal:
                self._redraw()
            elif (self._phase == INGESTING and total
                  and done * PLAIN_STEPS // total > self._steps_shown):  # an empty zip has none
                self._steps_shown = done * PLAIN_STEPS // total
                self._print_line(self._line())

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            with self._lock:
                self._redraw()
                self._stream.write("\n")
                self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _show_phase(self) -> None:
        if self._terminal:
            self._redraw()
        else:
            self._print_line(self._line())

    def _tick(self) -> None:
        while not self._stop.wait(REDRAW_SECONDS):
            with self._lock:
                self._redraw()

    def _redraw(self) -> None:
        # \r and "erase to the end of the line": a shorter line leaves nothing of the last one.
        self._stream.write(f"\r\x1b[K{self._line()}")
        self._stream.flush()

    def _print_line(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def _line(self) -> str:
        now = self._clock()
        line = f"[{now - self._started:6.1f} s] {self._phase}"
        if self._detail:
            line += f" {self._detail}"
        if self._phase == INGESTING and self._total is not None:
            line += " " + self._counts(now)
        elif self._phase == AWAITING_INFERENCE and self._total is not None:
            line += f" ({self._done}/{self._total} images done)"
        return line

    def _counts(self, now: float) -> str:
        counts = f"{self._done}/{self._total} images"
        elapsed = now - (self._ingest_started or now)
        if self._done and elapsed > 0 and self._total:
            rate = self._done / elapsed
            left = (self._total - self._done) / rate
            counts += f", {rate:.1f}/s, ETA {left:.0f} s"
        return counts
