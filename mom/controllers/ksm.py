"""KSM: applies the policy's host controls ``ksm_run``,
``ksm_pages_to_scan``, ``ksm_sleep_millisecs``, ``ksm_merge_across_nodes``
(:data:`mom.facts.KSM_KNOBS`).

All changed settings go in one ``ksm_tune`` call (in VDSM that is one
supervdsm round trip), and only the changed ones; nothing changed, no call.
"""
from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

from mom.controllers.base import ChangeController
from mom.entity import Entity
from mom.facts import KSM_KNOBS

log = logging.getLogger(__name__)


class KSM(ChangeController):
    action = "tune KSM"
    host_only = True
    logger = log

    def wanted(self, host: Entity) -> dict[Hashable, tuple[Any, Any]] | None:
        wanted: dict[Hashable, tuple[Any, Any]] = {}
        for knob in KSM_KNOBS:
            value = host.GetControl(knob.control)
            if value is not None:
                wanted[knob.key] = (int(value), getattr(host, knob.control))
        return wanted or None

    def apply(self, host: Entity, changes: dict[Hashable, Any]) -> None:
        log.debug("ksm tune %s", changes)
        self.ctx.hypervisor.ksm_tune(dict(changes))
