"""GuestBalloon: ``balloon_cur, balloon_max, balloon_min`` (KiB) from the
``balloon`` section of the cycle's snapshot.  ``GuestBalloonOptional``
accepts guests without a balloon (fields nil)."""
from __future__ import annotations

from mom import facts
from mom.collectors._snapshot import SnapshotCollector

BALLOON_FIELDS = facts.fields("guest", "balloon")


class GuestBalloon(SnapshotCollector):
    section = "balloon"
    fields = BALLOON_FIELDS


class GuestBalloonOptional(GuestBalloon):
    optional_fields = BALLOON_FIELDS
