"""The collector plugin protocol.

A collector is a class with declared ``fields`` and a ``collect() -> dict``
method.  The monitor builds one instance per entity (one for the host, one
per guest for guest collectors) with a :class:`CollectorContext`, and calls
``collect()`` once per collection cycle.

- ``fields``: every field name the collector may return.
- ``optional_fields``: the subset that may be missing from a sample without
  the sample being dropped (policy reads them as nil).
- ``kind``: ``"host"`` or ``"guest"`` -- which section of mom.conf may
  list the collector.  Declared here but not set: a (third-party) class
  without it may be listed in either section, so read it with
  ``getattr(cls, "kind", None)``.
- ``collect()`` raises :class:`CollectionError` when required data is not
  available this cycle (e.g. a guest without a guest agent).  The entity
  still takes part in evaluation with those fields nil, but gets none of the
  controls that need them (:data:`mom.facts.GUEST_CONTROL_NEEDS`): a guest
  without vCPU data is still ballooned, and the other way round.

Pure parsing lives in module-level functions (``parse_meminfo(text)``...)
so it can be tested on captured text; ``collect()`` only does the I/O.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mom.config import Settings
from mom.hypervisor.base import GuestInfo, GuestStats, Hypervisor


class CollectionError(Exception):
    """Required data is not available this cycle."""


@dataclass
class CollectorContext:
    settings: Settings
    hypervisor: Hypervisor | None = None
    guest: GuestInfo | None = None          # None for host collectors
    proc_root: str = "/proc"                # injectable for tests
    sys_root: str = "/sys"
    # For guest collectors: this guest's entry of the current cycle's poll
    # (Hypervisor.poll()); the cycle sets it before calling collect().
    snapshot: GuestStats | None = None
    # The cycle's clock (monotonic seconds; simulated under mom-sim), for
    # collectors that compute rates.
    clock: Callable[[], float] = time.monotonic
    extra: dict[str, Any] = field(default_factory=dict)


class Collector:
    """Base class; subclasses set ``fields`` and implement ``collect``."""

    kind: ClassVar[str]          # "host" or "guest"; unset means either
    fields: ClassVar[frozenset[str]] = frozenset()
    optional_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, ctx: CollectorContext) -> None:
        self.ctx = ctx

    def collect(self) -> dict[str, Any]:
        raise NotImplementedError
