"""Sample history for one entity (the host or one guest).

A Monitor runs its collectors once per collection, merges their results
into one sample stamped with the cycle's time, and keeps the last
``sample-history-length`` samples.  Each collector stands alone: when a
required one fails, its fields are nil in that sample and recorded as
``missing``, so only the controls that need them are held back (a guest
without vCPU data is still ballooned).  The evaluation asks for an
:class:`~mom.entity.Entity`, which it gets only while the latest sample is
fresh.  Problems are logged when they start and when they clear.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from mom.collectors.base import CollectionError, Collector
from mom.entity import Entity
from mom.plotter import Plotter
from mom.reporting import Conditions

log = logging.getLogger(__name__)
_NONE: frozenset[str] = frozenset()
_SETS: dict[frozenset[str], frozenset[str]] = {}


def _shared(names: frozenset[str]) -> frozenset[str]:
    """One object for equal field sets: every guest's monitor has the same
    ones, and a set read every cycle by hundreds of monitors stays in the
    CPU's cache when it is one set, not hundreds."""
    return _SETS.setdefault(names, names)


class Monitor:
    def __init__(self, name: str, properties: dict[str, Any],
                 collectors: list[Collector], history_length: int,
                 plotter: Plotter | None = None) -> None:
        self.name = name
        self.properties = properties
        self.collectors = collectors
        self.fields = _shared(frozenset().union(*(c.fields for c in collectors)))
        # (collector, its name, the fields it must provide), worked out once
        self._plan = [(c, type(c).__name__, _shared(c.fields - c.optional_fields))
                      for c in collectors]
        self.history: deque[dict[str, Any]] = deque(maxlen=history_length)
        self.variables: dict[str, Any] = {}      # SetVar/GetVar across cycles
        self.stamp: float | None = None          # cycle time of the latest sample
        self.missing: frozenset[str] = frozenset()
        self.plotter = plotter
        self._lock = threading.Lock()            # the API reads from other threads
        self._problems = Conditions(log)

    def collect(self, now: float) -> bool:
        """One collection at cycle time ``now``; True when every required
        field came in (the sample is kept either way)."""
        sample: dict[str, Any] = {}
        missing: set[str] = set()
        problems = self._problems
        reported = bool(problems)          # else no collector has a problem to clear
        for collector, cname, required in self._plan:
            try:
                values = collector.collect()
            except CollectionError as err:
                problems.fail(cname, f"{self.name}: {cname}: {err}; controls that "
                              "need its data are held back until it works")
                missing |= required
                continue
            except KeyboardInterrupt:
                raise
            except BaseException as err:       # a library's SystemExit included
                problems.fail(cname, f"{self.name}: collector {cname} crashed",
                              exc_info=err, summary=f"crash {type(err).__name__}")
                missing |= required
                continue
            lacking = None
            if required and (not values.keys() >= required or None in values.values()):
                lacking = [f for f in required if values.get(f) is None]
            if lacking:
                problems.fail(cname, f"{self.name}: {cname} gave no "
                              + ", ".join(sorted(lacking)))
                missing.update(lacking)
            elif reported:
                problems.ok(cname, "%s: %s works again", self.name, cname)
            sample.update(values)
        fields = self.fields
        kept = sample if fields.issuperset(sample) else {
            k: v for k, v in sample.items() if k in fields}
        with self._lock:
            self.history.append(kept)
            self.stamp = now
            self.missing = frozenset(missing) if missing else _NONE
        if self.plotter is not None:
            self.plotter.plot(kept, now)
        return not missing

    def record_controls(self, controls: dict[str, Any], now: float) -> None:
        """Write what one evaluation decided for this entity to plot-dir."""
        if self.plotter is not None:
            self.plotter.plot_controls(controls, now)

    def fresh(self, now: float, max_age: float) -> bool:
        """Whether the latest sample is recent enough to act on."""
        return self.stamp is not None and now - self.stamp <= max_age

    def latest(self) -> dict[str, Any] | None:
        with self._lock:
            return dict(self.history[-1]) if self.history else None

    def entity(self) -> Entity | None:
        """A snapshot of the history for one evaluation (None before the
        first sample).  Callers check freshness first."""
        with self._lock:
            if not self.history:
                return None
            history = tuple(self.history)
            stamp, missing = self.stamp, self.missing
        return Entity(self.properties, history, self.fields, self.variables,
                      stamp=stamp, missing=missing)
