"""A scriptable, recording :class:`Hypervisor` for tests.

Typical use::

    hv = FakeHypervisor(
        [GuestInfo("id-1", "vm1", pid=4242)],
        {"id-1": {"memory": {...}, "balloon": {"balloon_cur": 1024, ...}}},
        ksm={"run": 0, "pages_to_scan": 100})
    ...                                   # code under test calls hv
    assert hv.calls_to("set_balloon_target") == [("id-1", 900)]
    hv.stats["id-1"]["balloon"]["balloon_cur"]   # 900: calls take effect

Scripting:

- ``hv.calls``: every call in order as ``(method, *args)`` tuples, recorded
  *before* any injected failure or block, so failed attempts are listed
  too.  ``set_vcpu_tune`` is recorded as ``(method, id, quota, period)``.
  ``calls_to(method)`` gives the argument tuples of one method.
- ``hv.fail(method, exc, guest_id=None, times=None)``: make ``method`` raise
  (for one guest, or for every guest and host-wide calls when
  ``guest_id`` is None), forever or for the next ``times`` calls.
  ``exc`` is an exception instance or class (default HypervisorError).
- ``hv.add_guest(info, stats)`` / ``hv.update_stats(id, section, **fields)``
  change what later ``poll`` calls return (a guest without a ``stats``
  entry is polled with empty stats).
- ``hv.remove_guest(id)``: the guest leaves ``poll`` and later calls for it
  raise GuestGoneError, like a VM that shut down.
- ``release = hv.block(method)``: calls of ``method`` wait until
  ``release.set()`` (or ``block_timeout`` seconds, then raise
  HypervisorError); ``hv.entered(method)`` is an Event set once a call is
  waiting.  ``hv.unblock()`` releases everything.
- ``apply_effects`` (default True): successful setters update ``stats`` /
  ``ksm`` as a real host would (balloon_cur moves to the target at once...).

It is thread-safe: loops running in threads can share one instance.
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mom.hypervisor.base import (GuestGoneError, GuestInfo, GuestStats,
                                 Hypervisor, HypervisorError, PolledGuest)

_GUEST_METHODS = {"set_balloon_target", "set_vcpu_tune", "set_io_tune"}


@dataclass
class _Failure:
    exc: BaseException | type[BaseException]
    guest_id: str | None
    times: int | None        # None: forever


class FakeHypervisor(Hypervisor):
    name = "fake"

    def __init__(self, guests: Iterable[GuestInfo] = (),
                 stats: Mapping[str, GuestStats] | None = None, *,
                 ksm: Mapping[str, int] | None = None,
                 apply_effects: bool = True,
                 block_timeout: float = 10.0) -> None:
        self.guests: dict[str, GuestInfo] = {g.id: g for g in guests}
        self.stats: dict[str, GuestStats] = copy.deepcopy(dict(stats or {}))
        self.ksm: dict[str, int] = dict(ksm or {})
        self.apply_effects = apply_effects
        self.block_timeout = block_timeout
        self.calls: list[tuple[Any, ...]] = []
        self.closed = False
        self.on_ksm_tune: Any = None
        self._failures: dict[str, list[_Failure]] = {}
        self._blocks: dict[str, threading.Event] = {}
        self._entered: dict[str, threading.Event] = {}
        self._lock = threading.RLock()

    # -- scripting ------------------------------------------------------
    def add_guest(self, info: GuestInfo, stats: GuestStats | None = None) -> None:
        with self._lock:
            self.guests[info.id] = info
            if stats is not None:
                self.stats[info.id] = copy.deepcopy(stats)

    def update_stats(self, guest_id: str, section: str, **values: Any) -> None:
        """Change some fields of one stats section (thread-safe), e.g.
        ``hv.update_stats("id-1", "memory", mem_free=1024)``."""
        with self._lock:
            self.stats.setdefault(guest_id, {}).setdefault(section, {}).update(values)

    def remove_guest(self, guest_id: str) -> None:
        with self._lock:
            self.guests.pop(guest_id, None)
            self.stats.pop(guest_id, None)

    def fail(self, method: str,
             exc: BaseException | type[BaseException] = HypervisorError,
             guest_id: str | None = None, times: int | None = None) -> None:
        with self._lock:
            self._failures.setdefault(method, []).append(_Failure(exc, guest_id, times))

    def clear_failures(self, method: str | None = None) -> None:
        with self._lock:
            if method is None:
                self._failures.clear()
            else:
                self._failures.pop(method, None)

    def block(self, method: str) -> threading.Event:
        """Make calls of ``method`` wait; set the returned Event to release."""
        with self._lock:
            release = self._blocks[method] = threading.Event()
            self._entered.setdefault(method, threading.Event()).clear()
            return release

    def entered(self, method: str) -> threading.Event:
        """Set once a call of ``method`` is waiting in a block."""
        with self._lock:
            return self._entered.setdefault(method, threading.Event())

    def unblock(self, method: str | None = None) -> None:
        with self._lock:
            names = list(self._blocks) if method is None else [method]
            for name in names:
                event = self._blocks.pop(name, None)
                if event is not None:
                    event.set()

    def calls_to(self, method: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return [call[1:] for call in self.calls if call[0] == method]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # -- the machinery every method goes through ------------------------
    def _enter(self, method: str, *args: Any, guest_id: str | None = None) -> None:
        with self._lock:
            self.calls.append((method, *copy.deepcopy(args)))
            release = self._blocks.get(method)
            if release is not None:
                self._entered.setdefault(method, threading.Event()).set()
        if release is not None and not release.wait(self.block_timeout):
            raise HypervisorError(f"{method}: fake hypervisor blocked for "
                                  f"{self.block_timeout}s", guest_id)
        with self._lock:
            self._maybe_fail(method, guest_id)
            if method in _GUEST_METHODS and guest_id not in self.guests:
                raise GuestGoneError(f"guest {guest_id} is gone", guest_id)

    def _maybe_fail(self, method: str, guest_id: str | None) -> None:
        for failure in self._failures.get(method, []):
            if failure.guest_id is not None and failure.guest_id != guest_id:
                continue
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures[method].remove(failure)
            exc = failure.exc
            if isinstance(exc, type):
                message = f"injected {method} failure"
                if issubclass(exc, HypervisorError):
                    raise exc(message, guest_id)
                raise exc(message)
            raise exc

    # -- the Hypervisor interface ---------------------------------------
    def ping(self) -> bool:
        self._enter("ping")
        return True

    def poll(self) -> list[PolledGuest]:
        self._enter("poll")
        with self._lock:
            return [PolledGuest(info, copy.deepcopy(self.stats.get(gid, {})))
                    for gid, info in self.guests.items()]

    def set_balloon_target(self, guest_id: str, target_kib: int) -> None:
        self._enter("set_balloon_target", guest_id, target_kib, guest_id=guest_id)
        if self.apply_effects:
            with self._lock:
                balloon = self.stats.setdefault(guest_id, {}).setdefault("balloon", {})
                balloon["balloon_cur"] = target_kib

    def set_vcpu_tune(self, guest_id: str, quota: int | None = None,
                      period: int | None = None) -> None:
        self._enter("set_vcpu_tune", guest_id, quota, period, guest_id=guest_id)
        if self.apply_effects:
            with self._lock:
                cputune = self.stats.setdefault(guest_id, {}).setdefault("cputune", {})
                if quota is not None:
                    cputune["vcpu_quota"] = quota
                if period is not None:
                    cputune["vcpu_period"] = period

    def set_io_tune(self, guest_id: str, tunables: list[dict[str, Any]]) -> None:
        self._enter("set_io_tune", guest_id, tunables, guest_id=guest_id)
        if self.apply_effects:
            with self._lock:
                devices = self.stats.setdefault(guest_id, {}).setdefault("iotune", [])
                by_name = {d.get("name"): d for d in devices}
                for tunable in tunables:
                    device = by_name.get(tunable["name"])
                    if device is None:
                        device = {"name": tunable["name"], "path": tunable.get("path", "")}
                        devices.append(device)
                    device["current"] = dict(tunable["ioTune"])

    def ksm_tune(self, params: dict[str, int]) -> None:
        self._enter("ksm_tune", params)
        if self.apply_effects:
            with self._lock:
                self.ksm.update(params)
            if self.on_ksm_tune is not None:        # e.g. a fake host's sysfs
                self.on_ksm_tune(params)

    def close(self) -> None:
        self._enter("close")
        self.closed = True


def polled(hypervisor: Hypervisor) -> dict[str, GuestStats]:
    """One poll as ``{guest id: stats}``, for assertions."""
    return {p.info.id: p.stats for p in hypervisor.poll()}
