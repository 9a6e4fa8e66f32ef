"""A periodic worker thread that never dies of an exception.

Every MOM loop (host monitor, guest manager, policy engine) is one of these:
a daemon thread that runs ``step()`` every ``interval`` seconds, waits on an
event rather than sleeping (so ``stop()`` and ``wake()`` take effect at
once), and logs an exception from ``step()`` with its traceback before
going on with the next round.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Loop(threading.Thread):
    def __init__(self, name: str, interval: float, step: Callable[[], None],
                 stopping: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self._step = step
        self._stopping = stopping
        self._wakeup = threading.Event()
        self.rounds = 0                 # completed steps, for tests and stats
        self.errors = 0

    def wake(self) -> None:
        """Run the next step now instead of at the end of the interval."""
        self._wakeup.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._step()
            except Exception:
                self.errors += 1
                log.exception("%s: a step failed; the loop goes on", self.name)
            self.rounds += 1
            remaining = self.interval - (time.monotonic() - started)
            if remaining > 0 and not self._stopping.is_set():
                self._wakeup.wait(remaining)
            self._wakeup.clear()

    def stop(self) -> None:
        """Ask the loop to end; ``join()`` waits for it."""
        self._stopping.set()
        self._wakeup.set()
