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
from collections.abc import Iterable, Hashable


class Conditions:
    """The problem currently reported per key (a guest id, a verb, None for
    the host...).  Thread-safe enough for MOM's use: one worker writes."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._active: dict[Hashable, str] = {}

    def fail(self, key: Hashable, message: str, *, level: int = logging.WARNING,
             exc_info: BaseException | None = None, summary: str | None = None) -> bool:
        """Note a problem; log it when it is new for ``key`` or differs from
        the one reported (``summary`` compares, default the message).
        True when it was logged."""
        summary = message if summary is None else summary
        if self._active.get(key) == summary:
            self._log.debug("%s (again)", message)
            return False
        self._active[key] = summary
        self._log.log(level, "%s", message, exc_info=exc_info)
        return True

    def ok(self, key: Hashable, message: str | None = None) -> bool:
        """The problem of ``key`` (if any) is over; log ``message`` at INFO
        when there was one.  True when it was."""
        if self._active.pop(key, None) is None:
            return False
        if message:
            self._log.info("%s", message)
        return True

    def active(self, key: Hashable) -> bool:
        return key in self._active

    def keys(self) -> list[Hashable]:
        """Keys with a problem reported now."""
        return list(self._active)

    def prune(self, live: Iterable[Hashable]) -> None:
        """Forget keys that no longer exist (vanished guests), quietly, so
        memory stays bounded; ``None`` (host-wide) is always kept."""
        keep = set(live)
        for key in [k for k in self._active if k is not None and k not in keep]:
            del self._active[key]
