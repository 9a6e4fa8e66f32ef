"""CpuTune: applies the policy's ``vcpu_quota`` / ``vcpu_period`` per guest.

Only values that differ from the guest's current ones are sent (None for
an unchanged one), in one ``set_vcpu_tune`` call; nothing changed means no
call.
"""
from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from mom.controllers.base import ChangeController, guest_id, label
from mom.entity import Entity

log = logging.getLogger(__name__)


class CpuTune(ChangeController):
    action = "set the vCPU quota/period"
    logger = log

    def wanted(self, guest: Entity) -> dict[Hashable, tuple[Any, Any]] | None:
        wanted: dict[Hashable, tuple[Any, Any]] = {}
        for key in ("vcpu_quota", "vcpu_period"):
            value = guest.GetControl(key)
            if value is not None:
                wanted[key] = (int(value), getattr(guest, key))
        period = wanted.get("vcpu_period")
        if period is not None and period[0] <= 0:
            raise ValueError(f"vcpu_period {period[0]} is not positive")
        return wanted or None

    def apply(self, guest: Entity, changes: dict[Hashable, Any]) -> None:
        quota, period = changes.get("vcpu_quota"), changes.get("vcpu_period")
        log.debug("%s: vcpu quota %s period %s", label(guest), quota, period)
        self.ctx.hypervisor.set_vcpu_tune(guest_id(guest), quota=quota, period=period)
