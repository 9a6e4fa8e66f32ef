"""Shared base of the guest collectors that read the cycle's bulk snapshot.

The guest manager fetches every guest's stats with one
``Hypervisor.guest_stats()`` call per cycle and hands each guest collector
its guest's entry as ``ctx.snapshot``; a collector only picks its section
out of it and never calls the hypervisor itself.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from mom.collectors.base import CollectionError, Collector


_EMPTY: Mapping[str, Any] = {}     # read only


def pick_ints(section: Mapping[str, Any] | None, names: Iterable[str]) -> dict[str, int]:
    """The ``names`` present in ``section`` as ints; None or non-numeric
    values count as absent."""
    values: dict[str, int] = {}
    if not section:
        return values
    get = section.get
    for name in names:
        value = get(name)
        if type(value) is int:      # what a hypervisor back-end normally gives
            values[name] = value
            continue
        if value is None or isinstance(value, bool):
            continue
        try:
            values[name] = int(value)
        except (TypeError, ValueError):
            continue
    return values


class SnapshotCollector(Collector):
    """Picks the int fields of one snapshot section; missing required
    fields raise CollectionError, missing optional ones are left out."""

    kind = "guest"
    section: ClassVar[str] = ""

    def guest_label(self) -> str:
        guest = self.ctx.guest
        return f"guest {guest.name} ({guest.id})" if guest else "guest"

    def snapshot_section(self) -> Any:
        """This guest's ``section`` of the snapshot, None when absent."""
        return (self.ctx.snapshot or _EMPTY).get(self.section)

    def require(self, values: Mapping[str, Any]) -> None:
        missing = self.fields - self.optional_fields - values.keys()
        if missing:
            raise CollectionError(
                f"{self.guest_label()}: no {self.section} data for "
                f"{', '.join(sorted(missing))}")

    def collect(self) -> dict[str, Any]:
        values = pick_ints((self.ctx.snapshot or _EMPTY).get(self.section), self.fields)
        if not values.keys() >= self.fields:     # else every field is there
            self.require(values)
        return values
