"""Per-guest failure logging for controllers, without flooding the log.

A controller acts on every guest every policy cycle, so a guest that keeps
failing (it shut down, its agent hangs) would otherwise log the same line
every few seconds.  Each distinct failure of a guest is logged once at
WARNING (with a traceback for unexpected errors) and then at DEBUG until
the guest succeeds again; a vanished guest is logged once at INFO.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from mom.entity import Entity
from mom.hypervisor.base import GuestGoneError, HypervisorError


def guest_id(guest: Entity) -> str | None:
    """The id the hypervisor knows the guest by."""
    return guest.Prop("id") or guest.Prop("uuid")


def guest_label(guest: Entity) -> str:
    return f"guest {guest.Prop('name')} ({guest_id(guest)})"


class FailureLog:
    """Remembers the last failure reported per key (a guest id, or None
    for host-wide actions) and only logs changes loudly."""

    def __init__(self, logger: logging.Logger, action: str) -> None:
        self._log = logger
        self._action = action
        self._last: dict[str | None, str] = {}

    def failed(self, key: str | None, label: str, exc: BaseException) -> None:
        if isinstance(exc, GuestGoneError):
            summary = "gone"
        else:
            summary = f"{type(exc).__name__}: {exc}"
        repeated = self._last.get(key) == summary
        self._last[key] = summary
        if repeated:
            self._log.debug("%s: cannot %s (again): %s", label, self._action, summary)
        elif isinstance(exc, GuestGoneError):
            self._log.info("%s: cannot %s, the guest is gone: %s",
                           label, self._action, exc)
        elif isinstance(exc, (HypervisorError, ValueError)):
            self._log.warning("%s: cannot %s: %s", label, self._action, exc)
        else:
            self._log.warning("%s: cannot %s: %s", label, self._action, summary,
                              exc_info=exc)

    def succeeded(self, key: str | None) -> None:
        self._last.pop(key, None)

    def prune(self, live_keys: Iterable[str | None]) -> None:
        """Forget guests no longer managed, so the memory stays bounded."""
        live = set(live_keys)
        for key in [k for k in self._last if k is not None and k not in live]:
            del self._last[key]
