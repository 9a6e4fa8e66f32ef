"""GuestIoTune: ``io_tune``, the guest's disks as
:class:`~mom.iotune.IoTuneDevice` objects a policy reads and tunes.

Built fresh from the ``iotune`` section of every cycle's snapshot, so a
policy's changes to one cycle's objects never leak into the next sample.
A guest without an ``iotune`` section is left out (``GuestIoTune``) or gets
a nil ``io_tune`` (``GuestIoTuneOptional``); an empty list is valid data.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mom import facts
from mom.collectors._snapshot import SnapshotCollector
from mom.collectors.base import CollectionError
from mom.iotune import IoTuneDevice

log = logging.getLogger(__name__)


def parse_iotune(section: Any) -> list[IoTuneDevice]:
    """Devices of an ``iotune`` snapshot section (a list of dicts)."""
    if not isinstance(section, list | tuple):
        raise ValueError(f"iotune section is not a list: {type(section).__name__}")
    devices = []
    for entry in section:
        if not isinstance(entry, Mapping):
            raise ValueError(f"iotune entry is not a mapping: {entry!r}")
        devices.append(IoTuneDevice.from_dict(entry))
    return devices


class GuestIoTune(SnapshotCollector):
    section = "iotune"
    fields = facts.fields("guest", "iotune")

    def collect(self) -> dict[str, Any]:
        section = self.snapshot_section()
        if section is None:
            self.require({})
            return {}
        try:
            return {"io_tune": parse_iotune(section)}
        except (TypeError, ValueError) as e:
            if "io_tune" in self.optional_fields:
                log.debug("%s: ignoring bad iotune data: %s", self.guest_label(), e)
                return {}
            raise CollectionError(f"{self.guest_label()}: bad iotune data: {e}") from e


class GuestIoTuneOptional(GuestIoTune):
    optional_fields = frozenset({"io_tune"})
