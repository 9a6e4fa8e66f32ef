"""Balloon: moves each guest's balloon to the policy's ``balloon_target``.

The control is KiB; nothing is sent when the target equals the guest's
current balloon (``balloon_cur``) or the target already sent for the same
sample.  Changes are logged at INFO once they succeeded.
"""
from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from mom.controllers.base import ChangeController, guest_id, label
from mom.entity import Entity

log = logging.getLogger(__name__)


class Balloon(ChangeController):
    action = "set the balloon target"
    logger = log

    def wanted(self, guest: Entity) -> dict[Hashable, tuple[Any, Any]] | None:
        target = guest.GetControl("balloon_target")
        if target is None:
            return None
        target_kib = int(target)
        if target_kib <= 0:
            raise ValueError(f"balloon_target {target!r} is not positive")
        return {"balloon_target": (target_kib, guest.balloon_cur)}

    def apply(self, guest: Entity, changes: dict[Hashable, Any]) -> None:
        target_kib = changes["balloon_target"]
        self.ctx.hypervisor.set_balloon_target(guest_id(guest), target_kib)
        log.info("%s: balloon %s -> %d KiB", label(guest), guest.balloon_cur, target_kib)
