"""GuestMemory: the guest's own view of its memory (balloon driver / agent).

Fields (KiB or counts): ``mem_available, mem_unused, mem_free,
major_fault, minor_fault, swap_in, swap_out, swap_total, swap_usage``, from
the ``memory`` section of the cycle's snapshot.  ``GuestMemory`` needs all
of them (a guest without memory stats is left out of the cycle);
``GuestMemoryOptional`` takes whatever the guest reports.
"""
from __future__ import annotations

from mom.collectors._snapshot import SnapshotCollector

MEMORY_FIELDS = frozenset({"mem_available", "mem_unused", "mem_free",
                           "major_fault", "minor_fault", "swap_in", "swap_out",
                           "swap_total", "swap_usage"})


class GuestMemory(SnapshotCollector):
    section = "memory"
    fields = MEMORY_FIELDS


class GuestMemoryOptional(GuestMemory):
    optional_fields = MEMORY_FIELDS
