"""GuestMemory: the guest's own view of its memory (balloon driver / agent).

Fields (KiB or counts): ``mem_available, mem_unused, mem_free,
major_fault, minor_fault, swap_in, swap_out, swap_total, swap_usage``, from
the ``memory`` section of the cycle's snapshot.  ``GuestMemory`` needs all
of them except ``swap_total``/``swap_usage`` (a guest without memory stats
is left out of the cycle): those two come from VDSM's guest agent only,
libvirt's balloon driver never reports them, and requiring them would drop
every guest under the libvirt back-end.  ``GuestMemoryOptional`` takes
whatever the guest reports.
"""
from __future__ import annotations

from mom import facts
from mom.collectors._snapshot import SnapshotCollector

MEMORY_FIELDS = facts.fields("guest", "memory")


class GuestMemory(SnapshotCollector):
    section = "memory"
    fields = MEMORY_FIELDS
    optional_fields = frozenset({"swap_total", "swap_usage"})


class GuestMemoryOptional(GuestMemory):
    optional_fields = MEMORY_FIELDS
