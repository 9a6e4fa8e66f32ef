"""Guest discovery and guest collection, in one thread for all guests.

Discovery (every guest-manager-interval) asks the hypervisor which guests
run and keeps one Monitor per guest.  Collection (every
guest-monitor-interval) takes ONE bulk stats snapshot from the hypervisor
and lets every guest's collectors read their part of it, so the cost in
hypervisor calls does not grow with the number of guests.
"""
from __future__ import annotations

import configparser
import logging
import threading
import time
from typing import Any

from mom import collectors
from mom.collectors.base import CollectorContext
from mom.config import get_interval, split_list
from mom.entity import Entity
from mom.hypervisor.base import GuestInfo, Hypervisor, HypervisorError
from mom.monitor import Monitor
from mom.plotter import Plotter

log = logging.getLogger(__name__)


class _Guest:
    def __init__(self, info: GuestInfo, ctx: CollectorContext, monitor: Monitor) -> None:
        self.info = info
        self.ctx = ctx
        self.monitor = monitor


class GuestManager:
    def __init__(self, config: configparser.ConfigParser, hypervisor: Hypervisor,
                 plot_run_dir: str | None = None) -> None:
        self.config = config
        self.hypervisor = hypervisor
        self.plot_run_dir = plot_run_dir
        self.collector_classes = [collectors.get_collector(n)
                                  for n in split_list(config.get("guest", "collectors"))]
        self.history_length = config.getint("main", "sample-history-length")
        self.discovery_interval = get_interval(config, "guest-manager-interval")
        self.collection_interval = get_interval(config, "guest-monitor-interval")
        self.interval = min(self.discovery_interval, self.collection_interval)
        self._guests: dict[str, _Guest] = {}
        self._lock = threading.Lock()
        self._next_discovery = 0.0
        self._next_collection = 0.0
        self._outage: str | None = None       # the failing call, while the hypervisor fails

    # -- the loop --------------------------------------------------------
    def step(self) -> None:
        """Discover and/or collect, whichever is due."""
        now = time.monotonic()
        # A little slack so that a step a few ms early still counts as due.
        if now >= self._next_discovery - 0.01 * self.discovery_interval:
            self._next_discovery = now + self.discovery_interval
            self.discover()
        if now >= self._next_collection - 0.01 * self.collection_interval:
            self._next_collection = now + self.collection_interval
            self.collect()

    def discover(self) -> None:
        try:
            running = {g.id: g for g in self.hypervisor.list_guests()}
        except HypervisorError as err:
            self._trouble("list_guests", err)
            return
        self._fine()
        with self._lock:
            known = dict(self._guests)
        for guest_id in known.keys() - running.keys():
            log.info("guest %s (%s) is gone; no longer managed",
                     known[guest_id].info.name, guest_id)
        added = {}
        for gid in running.keys() - known.keys():
            info = running[gid]
            try:
                added[gid] = self._new_guest(info)
            except Exception:
                # Retried at the next discovery; the other guests go on.
                log.exception("cannot set up monitoring of guest %s (%s)", info.name, gid)
                continue
            log.info("managing guest %s (%s)", info.name, gid)
        with self._lock:
            self._guests = {gid: known.get(gid) or added[gid]
                            for gid in running if gid in known or gid in added}

    def _new_guest(self, info: GuestInfo) -> _Guest:
        ctx = CollectorContext(self.config, self.hypervisor, info,
                               proc_root=self.config.get("host", "proc-root"),
                               sys_root=self.config.get("host", "sys-root"))
        instances = [cls(ctx) for cls in self.collector_classes]
        plotter = Plotter(self.plot_run_dir, info.name) if self.plot_run_dir else None
        properties = {"id": info.id, "uuid": info.id, "name": info.name, "pid": info.pid}
        monitor = Monitor(f"guest {info.name}", properties, instances,
                          self.history_length, plotter)
        return _Guest(info, ctx, monitor)

    def collect(self) -> None:
        with self._lock:
            guests = list(self._guests.values())
        if not guests:
            return
        try:
            snapshot = self.hypervisor.guest_stats()
        except HypervisorError as err:
            # One warning for the outage, none per guest: the guests are
            # left out of evaluation until the hypervisor answers again.
            self._trouble("guest_stats", err)
            for guest in guests:
                guest.monitor.invalidate()
            return
        self._fine()
        for guest in guests:
            guest.ctx.snapshot = snapshot.get(guest.info.id)
            guest.monitor.collect()

    def _trouble(self, call: str, err: Exception) -> None:
        if self._outage is None:
            log.warning("hypervisor %s failed: %s; guests are left out of policy "
                        "evaluation until it answers (retried every cycle)", call, err)
            self._outage = call
        else:
            log.debug("hypervisor %s failed again: %s", call, err)

    def _fine(self) -> None:
        if self._outage is not None:
            log.info("hypervisor answers again")
            self._outage = None

    # -- what the policy engine and the API read --------------------------
    def entities(self) -> list[Entity]:
        """Entities of the guests whose last collection succeeded."""
        with self._lock:
            monitors = [g.monitor for g in self._guests.values()]
        return [e for e in (m.entity() for m in monitors) if e is not None]

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

    def active_guests(self) -> list[str]:
        """Names of the guests that take part in policy evaluation now."""
        with self._lock:
            return sorted(g.info.name for g in self._guests.values() if g.monitor.ready)
