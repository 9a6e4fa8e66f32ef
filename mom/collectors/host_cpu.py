"""HostCpu: ``cpu_count``, the number of online CPUs of the host.

Read from /sys/devices/system/cpu/online rather than from this process's
affinity: VDSM pins its own process (and so MOM in thread mode) to a few
cores, but policies (cputune) need the host's CPU count.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from mom import facts
from mom.collectors._procfs import read_text
from mom.collectors.base import CollectionError, Collector

log = logging.getLogger(__name__)


def parse_cpu_list(text: str) -> int:
    """Count the CPUs in a kernel cpu list such as ``0-3,6,8-9``."""
    count = 0
    text = text.strip()
    if not text:
        return 0
    for part in text.split(","):
        first, sep, last = part.partition("-")
        count += int(last) - int(first) + 1 if sep else 1
    return count


class HostCpu(Collector):
    """Online CPU count of the host."""

    kind = "host"
    fields = facts.fields("host", "cpu")

    def collect(self) -> dict[str, Any]:
        path = os.path.join(self.ctx.sys_root, "devices", "system", "cpu", "online")
        try:
            count = parse_cpu_list(read_text(path))
        except (CollectionError, ValueError) as e:
            count = os.cpu_count() or 0
            log.debug("%s unusable (%s); using os.cpu_count() = %d", path, e, count)
        if count <= 0:
            raise CollectionError("cannot tell the number of online CPUs")
        return {"cpu_count": count}
