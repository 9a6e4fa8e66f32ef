"""Balloon: moves each guest's balloon to the policy's ``balloon_target``.

The control is KiB; nothing is sent when the target equals the guest's
current balloon (``balloon_cur``) or the target already sent for the same
sample.  Changes are logged at INFO once they succeeded.

A target the guest cannot reach (its kernel refuses to give more memory
back: "Out of puff") would otherwise be sent again every cycle: after
:data:`STUCK_AFTER` samples with the balloon standing still away from the
target it last received, the target is not sent again, and that is logged
once, until the policy asks for another target or the balloon moves.
"""
from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from mom.controllers.base import ChangeController, ControllerContext, guest_id, label
from mom.entity import Entity
from mom.reporting import Conditions

log = logging.getLogger(__name__)

#: Samples in a row with the balloon unmoved before a target is given up.
STUCK_AFTER = 3


@dataclass
class _Sent:
    target: int
    cur: Any              # balloon_cur when it was sent
    stamp: Any            # the sample it was sent on
    still: int = 0        # later samples with the balloon where it was


class Balloon(ChangeController):
    action = "set the balloon target"
    logger = log

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self._sent: dict[str | None, _Sent] = {}
        self._stuck = Conditions(log)

    def wanted(self, guest: Entity) -> dict[Hashable, tuple[Any, Any]] | None:
        target = guest.GetControl("balloon_target")
        if target is None:
            return None
        target_kib = int(target)
        if target_kib <= 0:
            raise ValueError(f"balloon_target {target!r} is not positive")
        if self._unreachable(guest, target_kib):
            return None
        return {"balloon_target": (target_kib, guest.balloon_cur)}

    def _unreachable(self, guest: Entity, target: int) -> bool:
        gid = guest_id(guest)
        sent = self._sent.get(gid)
        if (sent is None or sent.target != target or sent.cur != guest.balloon_cur
                or guest.balloon_cur == target):
            if self._stuck.ok(gid, "%s: balloon targets are sent again (a new target, "
                              "or the balloon moved)", label(guest)):
                self._sent.pop(gid, None)
            return False
        if sent.stamp != guest.stamp:      # a new sample, the balloon where it was
            sent.stamp = guest.stamp
            sent.still += 1
        if sent.still < STUCK_AFTER:
            return False
        self._stuck.fail(gid, f"{label(guest)}: the balloon stays at {guest.balloon_cur} KiB "
                         f"after {sent.still} samples, short of the target {target} KiB "
                         "(the guest cannot give that much back); not sent again until the "
                         "policy asks for another target or the balloon moves",
                         summary=f"stuck {target}")
        return True

    def apply(self, guest: Entity, changes: dict[Hashable, Any]) -> None:
        target_kib = changes["balloon_target"]
        gid = guest_id(guest)
        self.ctx.hypervisor.set_balloon_target(gid, target_kib)
        if log.isEnabledFor(logging.INFO):
            log.info("%s: balloon %s -> %d KiB", label(guest), guest.balloon_cur, target_kib)
        sent = self._sent.get(gid)
        if sent is None or (sent.target, sent.cur) != (target_kib, guest.balloon_cur):
            self._sent[gid] = _Sent(target_kib, guest.balloon_cur, guest.stamp)

    def forget(self, live: set[str | None]) -> None:
        super().forget(live)
        for gid in [k for k in self._sent if k not in live]:
            del self._sent[gid]
        self._stuck.prune(live)
