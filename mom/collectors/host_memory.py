"""HostMemory: the host's memory and swap activity, from /proc.

Fields (KiB unless said otherwise):
``mem_available`` MemTotal, ``mem_unused`` MemFree, ``mem_free``
MemFree + Buffers + Cached, ``anon_pages`` AnonPages, ``swap_total``
SwapTotal, ``swap_usage`` SwapTotal - SwapFree, and ``swap_in`` /
``swap_out``: pages swapped in/out (``pswpin``/``pswpout`` of
/proc/vmstat) since the previous sample, 0 on the first one.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mom import facts
from mom.collectors._procfs import parse_key_values, read_text
from mom.collectors.base import CollectionError, Collector, CollectorContext

_MEMINFO_KEYS = ("MemTotal", "MemFree", "Buffers", "Cached", "AnonPages",
                 "SwapTotal", "SwapFree")


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as ``{key: int}`` (kB values without the unit)."""
    return parse_key_values(text)


def parse_vmstat(text: str) -> dict[str, int]:
    """/proc/vmstat (``name value`` lines) as ``{name: int}``."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                values[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return values


def memory_fields(meminfo: Mapping[str, int]) -> dict[str, int]:
    """MOM's host memory fields from a parsed /proc/meminfo (no swap rates)."""
    missing = [key for key in _MEMINFO_KEYS if key not in meminfo]
    if missing:
        raise CollectionError(f"/proc/meminfo lacks {', '.join(missing)}")
    return {
        "mem_available": meminfo["MemTotal"],
        "mem_unused": meminfo["MemFree"],
        "mem_free": meminfo["MemFree"] + meminfo["Buffers"] + meminfo["Cached"],
        "anon_pages": meminfo["AnonPages"],
        "swap_total": meminfo["SwapTotal"],
        "swap_usage": meminfo["SwapTotal"] - meminfo["SwapFree"],
    }


def counter_delta(previous: int | None, current: int) -> int:
    """Growth of a monotonic counter; 0 on the first sample or after a reset."""
    if previous is None or current < previous:
        return 0
    return current - previous


class HostMemory(Collector):
    """Host memory totals and swap activity."""

    kind = "host"
    fields = facts.fields("host", "memory")

    def __init__(self, ctx: CollectorContext) -> None:
        super().__init__(ctx)
        self._last_pswpin: int | None = None
        self._last_pswpout: int | None = None

    def collect(self) -> dict[str, Any]:
        root = self.ctx.proc_root
        sample: dict[str, Any] = memory_fields(
            parse_meminfo(read_text(os.path.join(root, "meminfo"))))
        vmstat = parse_vmstat(read_text(os.path.join(root, "vmstat")))
        # Both counters exist on every kernel MOM supports; a kernel without
        # swap support simply never moves them.
        pswpin = vmstat.get("pswpin", 0)
        pswpout = vmstat.get("pswpout", 0)
        sample["swap_in"] = counter_delta(self._last_pswpin, pswpin)
        sample["swap_out"] = counter_delta(self._last_pswpout, pswpout)
        self._last_pswpin, self._last_pswpout = pswpin, pswpout
        return sample
