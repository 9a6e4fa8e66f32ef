"""HostTime: ``time``, the host's wall clock in whole seconds (Unix time)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mom import facts
from mom.collectors.base import Collector, CollectorContext


class HostTime(Collector):
    """Lets a policy see when a sample was taken (e.g. to rate-limit)."""

    kind = "host"
    fields = facts.fields("host", "time")

    def __init__(self, ctx: CollectorContext, *,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(ctx)
        self._clock = clock

    def collect(self) -> dict[str, Any]:
        return {"time": int(self._clock())}
