"""Report a condition once, stay quiet while it lasts, report its recovery.

MOM does the same things every few seconds for every guest, so a guest
that keeps failing (it shut down, its agent hangs, VDSM is down) would
otherwise write the same line every cycle.  Every part of MOM that can
fail repeatedly keeps one :class:`Conditions` and says ``fail(key, ...)``
or ``ok(key)`` each time; only news reaches the log: a new or changed
problem, and the end of one.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Iterable


class Conditions:
    """The problem currently reported per key (a guest id, a verb, None for
    the host...).  Thread-safe: the RPC server's workers share one."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._active: dict[Hashable, str] = {}
        self._lock = threading.Lock()

    def fail(self, key: Hashable, message: str, *, level: int = logging.WARNING,
             exc_info: BaseException | None = None, summary: str | None = None) -> bool:
        """Note a problem; log it when it is new for ``key`` or differs from
        the one reported (``summary`` compares, default the message).
        True when it was logged."""
        summary = message if summary is None else summary
        with self._lock:
            repeated = self._active.get(key) == summary
            self._active[key] = summary
        if repeated:
            self._log.debug("%s (again)", message)
            return False
        self._log.log(level, "%s", message, exc_info=exc_info)
        return True

    def ok(self, key: Hashable, message: str | None = None, *args: object) -> bool:
        """The problem of ``key`` (if any) is over; log ``message % args``
        at INFO when there was one.  True when it was.  Cheap when there
        was none: it runs for every guest every cycle."""
        if key not in self._active:
            return False
        with self._lock:
            if self._active.pop(key, None) is None:
                return False
        if message:
            self._log.info(message, *args)
        return True

    def __bool__(self) -> bool:
        """Whether any problem is reported now."""
        return bool(self._active)

    def active(self, key: Hashable) -> bool:
        return key in self._active

    def keys(self) -> list[Hashable]:
        """Keys with a problem reported now."""
        with self._lock:
            return list(self._active)

    def prune(self, live: Iterable[Hashable]) -> None:
        """Forget keys that no longer exist (vanished guests), quietly, so
        memory stays bounded; ``None`` (host-wide) is always kept."""
        if not self._active:
            return
        keep = set(live)
        with self._lock:
            for key in [k for k in self._active if k is not None and k not in keep]:
                del self._active[key]
