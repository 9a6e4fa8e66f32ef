"""Balloon: moves each guest's balloon to the policy's ``balloon_target``.

The control is KiB; the hypervisor is only called when the target differs
from the guest's current balloon (``balloon_cur``).
"""
from __future__ import annotations

import logging

from mom.controllers._errors import FailureLog, guest_id, guest_label
from mom.controllers.base import Controller, ControllerContext
from mom.entity import Entity

log = logging.getLogger(__name__)


class Balloon(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self._failures = FailureLog(log, "set the balloon target")

    def process(self, host: Entity, guests: list[Entity]) -> None:
        for guest in guests:
            target = guest.GetControl("balloon_target")
            if target is None:
                continue
            gid = guest_id(guest)
            try:
                target_kib = int(target)
                if target_kib <= 0:
                    raise ValueError(f"balloon_target {target!r} is not positive")
                if target_kib == guest.balloon_cur:
                    continue
                self.ctx.hypervisor.set_balloon_target(gid, target_kib)
            except Exception as e:   # one guest's failure must not stop the rest
                self._failures.failed(gid, guest_label(guest), e)
            else:
                log.info("%s: balloon %s -> %d KiB", guest_label(guest),
                         guest.balloon_cur, target_kib)
                self._failures.succeeded(gid)
        self._failures.prune(guest_id(g) for g in guests)
