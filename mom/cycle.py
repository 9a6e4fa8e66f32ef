"""The ordered cycle: collect host → poll guests → collect guests →
evaluate → apply, each step when its interval is due.

One worker runs it; nothing else calls the hypervisor, so MOM never
overlaps its own calls.  ``run(now)`` takes the time instead of reading a
clock, runs every step due at ``now`` in order and returns when the next
one is due, so the real worker (monotonic clock, sleeping in between) and
the simulator (a simulated clock, no sleeping) drive the same code.

- The first evaluation follows the first complete collection: the first
  control comes within one cycle of start, not one policy interval later.
- An evaluation sees the samples of this or an earlier cycle, never a
  half-updated set, and never samples older than a few collection
  intervals.
- A hypervisor poll that fails (or raises anything but KeyboardInterrupt)
  ends that cycle: nothing is evaluated or applied on old data; the next
  cycle tries again.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from mom.config import Intervals
from mom.guest_manager import GuestManager
from mom.hypervisor.base import Hypervisor, HypervisorError, PolledGuest
from mom.monitor import Monitor
from mom.policy_engine import PolicyEngine
from mom.reporting import Conditions

log = logging.getLogger(__name__)

#: Samples this many collection intervals old are not acted on.
STALE_AFTER = 3


@dataclass
class _Due:
    host: float = -math.inf
    poll: float = -math.inf
    discover: float = -math.inf
    collect: float = -math.inf
    evaluate: float = -math.inf


class Cycle:
    def __init__(self, intervals: Intervals, hypervisor: Hypervisor, host: Monitor,
                 guests: GuestManager, engine: PolicyEngine) -> None:
        self.intervals = intervals
        self.hypervisor = hypervisor
        self.host = host
        self.guests = guests
        self.engine = engine
        self.now = 0.0                 # the running cycle's time: collectors' clock
        self.polls = 0                 # hypervisor polls made, for tests and benchmarks
        self._due = _Due()
        self._problems = Conditions(log)

    def policy_changed(self) -> None:
        """Evaluate at the next run, whatever the policy interval says."""
        self._due.evaluate = -math.inf

    def next_due(self) -> float:
        due = self._due
        return min(due.host, due.poll, due.evaluate)

    def run(self, now: float) -> float:
        """Run every step due at ``now``, in order; the time the next is due."""
        self.now = now
        due, iv = self._due, self.intervals
        if now >= due.host:
            due.host = _next(due.host, iv.host_monitor, now)
            self.host.collect(now)
        if now >= due.poll:
            polled = self._poll()
            discover, collect = now >= due.discover, now >= due.collect
            if discover:
                due.discover = _next(due.discover, iv.guest_manager, now)
            if collect:
                due.collect = _next(due.collect, iv.guest_monitor, now)
            due.poll = min(due.discover, due.collect)
            if polled is None:                 # no evaluation on old data
                due.evaluate = max(due.evaluate, min(due.host, due.poll))
                return self.next_due()
            if discover:
                self.guests.discover(polled)
            if collect:
                self.guests.collect(polled, now)
        if now >= due.evaluate:
            if self._evaluate(now):
                due.evaluate = _next(due.evaluate, iv.policy_engine, now)
            else:                              # nothing to evaluate yet
                due.evaluate = min(due.host, due.poll)
        return self.next_due()

    def _poll(self) -> list[PolledGuest] | None:
        self.polls += 1
        try:
            polled = self.hypervisor.poll()
        except KeyboardInterrupt:
            raise
        except BaseException as err:       # SystemExit from a library included
            expected = isinstance(err, HypervisorError)
            self._problems.fail("poll", (
                f"hypervisor {self.hypervisor.name} poll failed: "
                f"{type(err).__name__}: {err}; nothing is evaluated or applied until "
                "it answers (retried every cycle)"),
                exc_info=None if expected else err, summary=type(err).__name__,
                level=logging.DEBUG if getattr(err, "logged", False) else logging.WARNING)
            return None
        self._problems.ok("poll", "hypervisor %s answers again", self.hypervisor.name)
        return polled

    def _evaluate(self, now: float) -> bool:
        """Evaluate and apply; False when there was nothing to evaluate yet
        (so it is tried again at the next run)."""
        host_max_age = STALE_AFTER * self.intervals.host_monitor
        if not self.host.fresh(now, host_max_age):
            return False
        host = self.host.entity()
        if host is None:
            return False
        if host.missing:
            self._problems.fail("host", (
                "host statistics incomplete (" + ", ".join(sorted(host.missing))
                + "); no evaluation until the host collectors work"))
            return True
        self._problems.ok("host")
        guests = self.guests.entities(now)
        kept = self.engine.evaluate(host, guests)
        if kept is not None:
            self.host.record_controls(host.controls, now)
            self.guests.record_controls(kept, now)
            self.engine.apply(host, kept)
        return True


def _next(previous: float, interval: float, now: float) -> float:
    """Keep the step's phase; after an overrun (a slow call) start afresh."""
    following = previous + interval
    return following if following > now else now + interval
