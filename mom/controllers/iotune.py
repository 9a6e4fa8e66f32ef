"""IoTune: sends the per-disk limits a policy changed in ``guest.io_tune``.

One ``set_io_tune`` call per guest, with only the devices whose chosen
limits differ from the ones in force; after a successful call a device's
``current`` limits are the ones sent.
"""
from __future__ import annotations

import logging
from types import SimpleNamespace

from mom.controllers._errors import FailureLog, guest_id, guest_label
from mom.controllers.base import Controller, ControllerContext
from mom.entity import Entity

log = logging.getLogger(__name__)


class IoTune(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self._failures = FailureLog(log, "set I/O limits")

    def process(self, host: Entity, guests: list[Entity]) -> None:
        for guest in guests:
            devices = guest.io_tune
            if not devices:
                continue
            gid = guest_id(guest)
            try:
                changed = [d for d in devices if d.changed()]
                if not changed:
                    continue
                tunables = [d.as_tunable() for d in changed]
                log.debug("%s: io tune %s", guest_label(guest), tunables)
                self.ctx.hypervisor.set_io_tune(gid, tunables)
            except Exception as e:
                self._failures.failed(gid, guest_label(guest), e)
            else:
                self._failures.succeeded(gid)
                # The devices live in the guest's latest sample; if the policy
                # runs again before the next collection it must not resend.
                for device in changed:
                    device.current = SimpleNamespace(**device.tune)
        self._failures.prune(guest_id(g) for g in guests)
