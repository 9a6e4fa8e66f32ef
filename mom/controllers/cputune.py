"""CpuTune: applies the policy's ``vcpu_quota`` / ``vcpu_period`` per guest.

Only values that differ from the guest's current ones are sent (None for
an unchanged one); nothing changed means no call.
"""
from __future__ import annotations

import logging

from mom.controllers._errors import FailureLog, guest_id, guest_label
from mom.controllers.base import Controller, ControllerContext
from mom.entity import Entity

log = logging.getLogger(__name__)


def _changed(control: object, current: object) -> int | None:
    """``int(control)`` when it is set and differs from ``current``."""
    if control is None:
        return None
    value = int(control)  # type: ignore[call-overload]
    return None if value == current else value


class CpuTune(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self._failures = FailureLog(log, "set the vCPU quota/period")

    def process(self, host: Entity, guests: list[Entity]) -> None:
        for guest in guests:
            quota = guest.GetControl("vcpu_quota")
            period = guest.GetControl("vcpu_period")
            if quota is None and period is None:
                continue
            gid = guest_id(guest)
            try:
                quota = _changed(quota, guest.vcpu_quota)
                period = _changed(period, guest.vcpu_period)
                if quota is None and period is None:
                    continue
                if period is not None and period <= 0:
                    raise ValueError(f"vcpu_period {period} is not positive")
                log.debug("%s: vcpu quota %s period %s", guest_label(guest),
                          quota, period)
                self.ctx.hypervisor.set_vcpu_tune(gid, quota=quota, period=period)
            except Exception as e:
                self._failures.failed(gid, guest_label(guest), e)
            else:
                self._failures.succeeded(gid)
        self._failures.prune(guest_id(g) for g in guests)
