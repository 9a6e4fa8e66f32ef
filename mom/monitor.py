"""Sample history for one entity (the host or one guest).

A Monitor runs its collectors once per collection cycle, merges their
results into one sample and keeps the last ``sample-history-length``
samples.  The policy engine asks it for an :class:`~mom.entity.Entity`
each evaluation.  A cycle whose required fields cannot be collected leaves
the entity out of evaluation until a later cycle succeeds; the reason is
logged when it first happens and when it clears, not on every cycle.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from mom.collectors.base import CollectionError, Collector
from mom.entity import Entity
from mom.plotter import Plotter

log = logging.getLogger(__name__)


class Monitor:
    def __init__(self, name: str, properties: dict[str, Any],
                 collectors: list[Collector], history_length: int,
                 plotter: Plotter | None = None) -> None:
        self.name = name
        self.properties = properties
        self.collectors = collectors
        self.fields = frozenset().union(*(c.fields for c in collectors))
        optional = frozenset().union(*(c.optional_fields for c in collectors))
        self.required = self.fields - optional
        self.history: deque[dict[str, Any]] = deque(maxlen=history_length)
        self.variables: dict[str, Any] = {}      # SetVar/GetVar across cycles
        self.ready = False                       # last collection succeeded
        self.plotter = plotter
        self._lock = threading.Lock()
        self._problem: str | None = None         # what was last logged

    def collect(self) -> bool:
        """One collection cycle; True when a complete sample was kept."""
        sample: dict[str, Any] = {}
        try:
            for collector in self.collectors:
                sample.update(collector.collect())
        except CollectionError as err:
            return self._fail(f"{type(collector).__name__}: {err}")
        except Exception:
            problem = f"collector {type(collector).__name__} crashed"
            if problem != self._problem:
                log.exception("%s: %s", self.name, problem)
            return self._fail(problem, quiet=True)
        missing = sorted(f for f in self.required if sample.get(f) is None)
        if missing:
            return self._fail("missing required fields " + ", ".join(missing))
        kept = {k: v for k, v in sample.items() if k in self.fields}
        with self._lock:
            self.history.append(kept)
            self.ready = True
        if self._problem is not None:
            log.info("%s: collection works again", self.name)
            self._problem = None
        if self.plotter is not None:
            self.plotter.plot(kept)
        return True

    def _fail(self, problem: str, quiet: bool = False) -> bool:
        with self._lock:
            self.ready = False
        if problem != self._problem and not quiet:
            log.warning("%s: left out of policy evaluation until collection works: %s",
                        self.name, problem)
        self._problem = problem
        return False

    def invalidate(self) -> None:
        """Leave the entity out until the next successful collection, quietly:
        the caller has logged why (e.g. the hypervisor is down)."""
        with self._lock:
            self.ready = False

    def latest(self) -> dict[str, Any] | None:
        with self._lock:
            return dict(self.history[-1]) if self.history else None

    def entity(self) -> Entity | None:
        """A snapshot for this evaluation, or None when the last cycle failed."""
        with self._lock:
            if not self.ready or not self.history:
                return None
            history = tuple(self.history)
        return Entity(self.properties, history, self.fields, self.variables)
