"""GuestCpuTune: ``vcpu_quota, vcpu_period, vcpu_user_limit, vcpu_count``
from the ``cputune`` section of the cycle's snapshot (quota/period in µs as
the scheduler takes them, user limit in percent).  ``GuestCpuTuneOptional``
accepts guests without them."""
from __future__ import annotations

from mom import facts
from mom.collectors._snapshot import SnapshotCollector

CPUTUNE_FIELDS = facts.fields("guest", "cputune")


class GuestCpuTune(SnapshotCollector):
    section = "cputune"
    fields = CPUTUNE_FIELDS


class GuestCpuTuneOptional(GuestCpuTune):
    optional_fields = CPUTUNE_FIELDS
