"""The guests MOM manages, and their collection from one poll per cycle.

The cycle makes ONE ``Hypervisor.poll()`` call and hands the result here:
``discover()`` (every guest-manager-interval) follows guests that started
and drops guests that are gone; ``collect()`` (every
guest-monitor-interval) lets every guest's collectors read their guest's
entry of that same poll.  The cost in hypervisor calls does not grow with
the number of guests, and collection never overlaps another hypervisor
call.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from itertools import chain
from typing import Any

from mom import collectors
from mom.collectors.base import CollectorContext
from mom.config import Settings
from mom.entity import Entity
from mom.hypervisor.base import GuestInfo, Hypervisor, PolledGuest
from mom.monitor import Monitor
from mom.plotter import Plotter
from mom.reporting import Conditions

log = logging.getLogger(__name__)


class _Guest:
    def __init__(self, info: GuestInfo, ctx: CollectorContext, monitor: Monitor) -> None:
        self.info = info
        self.ctx = ctx
        self.monitor = monitor


class GuestManager:
    def __init__(self, settings: Settings, hypervisor: Hypervisor,
                 plot_run_dir: str | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.settings = settings
        self.hypervisor = hypervisor
        self.plot_run_dir = plot_run_dir
        self.clock = clock
        self.collector_classes = [collectors.get_collector(n)
                                  for n in settings.guest_collectors]
        # Samples older than this are not acted on (a few missed collections).
        self.max_age = 3 * settings.intervals.guest_monitor
        self._guests: dict[str, _Guest] = {}
        self._lock = threading.Lock()            # the API reads from other threads
        self._problems = Conditions(log)

    def discover(self, polled: list[PolledGuest]) -> None:
        """Follow the guests of this poll: new ones are added, gone ones dropped."""
        running = {p.info.id: p.info for p in polled}
        with self._lock:
            known = dict(self._guests)
        for guest_id in known.keys() - running.keys():
            log.info("guest %s (%s) is gone; no longer managed",
                     known[guest_id].info.name, guest_id)
        added = {}
        for gid in sorted(running.keys() - known.keys()):
            info = running[gid]
            try:
                added[gid] = self._new_guest(info)
            except Exception as err:
                # Retried at the next discovery; the other guests go on.
                self._problems.fail(gid, f"cannot set up monitoring of guest "
                                    f"{info.name} ({gid}): {err}", exc_info=err)
                continue
            self._problems.ok(gid)
            log.info("managing guest %s (%s)", info.name, gid)
        with self._lock:
            self._guests = {gid: known.get(gid) or added[gid]
                            for gid in running if gid in known or gid in added}
        self._problems.prune(chain(running, (("stale", gid) for gid in running)))

    def _new_guest(self, info: GuestInfo) -> _Guest:
        settings = self.settings
        ctx = CollectorContext(settings, self.hypervisor, info,
                               proc_root=settings.proc_root, sys_root=settings.sys_root)
        if self.clock is not None:
            ctx.clock = self.clock
        instances = [cls(ctx) for cls in self.collector_classes]
        plotter = Plotter(self.plot_run_dir, info.name) if self.plot_run_dir else None
        properties = {"id": info.id, "uuid": info.id, "name": info.name, "pid": info.pid}
        monitor = Monitor(f"guest {info.name}", properties, instances,
                          settings.sample_history_length, plotter)
        return _Guest(info, ctx, monitor)

    def collect(self, polled: list[PolledGuest], now: float) -> None:
        """Every known guest's collectors read its entry of this poll."""
        entries = {p.info.id: p.stats for p in polled}
        with self._lock:
            guests = list(self._guests.values())
        for guest in guests:
            stats = entries.get(guest.info.id)
            if stats is None:        # gone since discovery; dropped at the next one
                continue
            guest.ctx.snapshot = stats
            guest.monitor.collect(now)

    # -- what the evaluation and the API read ------------------------------
    def entities(self, now: float) -> list[Entity]:
        """Entities of the guests whose latest sample is fresh; a guest whose
        data went stale is left out (logged once) and gets no controls."""
        with self._lock:
            guests = list(self._guests.values())
        result = []
        for guest in guests:
            monitor = guest.monitor
            if monitor.stamp is None:
                continue                    # not collected yet
            key = ("stale", guest.info.id)
            if not monitor.fresh(now, self.max_age):
                self._problems.fail(key, f"{monitor.name}: its latest statistics are "
                                    f"{now - monitor.stamp:.0f} s old; no controls "
                                    "until fresh ones arrive")
                continue
            self._problems.ok(key, "%s: statistics are fresh again", monitor.name)
            entity = monitor.entity()
            if entity is not None:
                result.append(entity)
        return result

    def record_controls(self, guests: list[Entity], now: float) -> None:
        """plot-dir: the controls each evaluated guest got."""
        if self.plot_run_dir is None:
            return
        with self._lock:
            monitors = {g.info.id: g.monitor for g in self._guests.values()}
        for guest in guests:
            monitor = monitors.get(guest.Prop("id"))
            if monitor is not None:
                monitor.record_controls(guest.controls, now)

    def statistics(self) -> dict[str, dict[str, Any]]:
        """Latest sample per guest name."""
        with self._lock:
            guests = list(self._guests.values())
        result = {}
        for guest in guests:
            latest = guest.monitor.latest()
            if latest is not None:
                result[guest.info.name] = latest
        return result

    def active_guests(self, now: float) -> list[str]:
        """Names of the guests whose statistics are fresh enough at ``now``
        to take part in policy evaluation."""
        with self._lock:
            guests = list(self._guests.values())
        return sorted(g.info.name for g in guests if g.monitor.fresh(now, self.max_age))
