"""IoTune: sends the per-disk limits a policy chose in ``guest.io_tune``.

One ``set_io_tune`` call per guest, with only the devices whose chosen
limits differ from the ones in force (or from the ones sent for the same
sample).
"""
from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from mom.controllers.base import ChangeController, guest_id, label
from mom.entity import Entity

log = logging.getLogger(__name__)


def _frozen(limits: dict[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(limits.items()))


class IoTune(ChangeController):
    action = "set I/O limits"
    logger = log

    def wanted(self, guest: Entity) -> dict[Hashable, tuple[Any, Any]] | None:
        devices = guest.io_tune
        if not devices:
            return None
        return {(d.name, d.path): (_frozen(d.tune), _frozen(vars(d.current)))
                for d in devices}

    def apply(self, guest: Entity, changes: dict[Hashable, Any]) -> None:
        tunables = [{"name": name, "path": path, "ioTune": dict(limits)}
                    for (name, path), limits in changes.items()]
        log.debug("%s: io tune %s", label(guest), tunables)
        self.ctx.hypervisor.set_io_tune(guest_id(guest), tunables)
