"""KSM: applies the policy's host controls ``ksm_run``,
``ksm_pages_to_scan``, ``ksm_sleep_millisecs``, ``ksm_merge_across_nodes``.

All changed settings go in one ``ksm_tune`` call (in VDSM that is one
supervdsm round trip), and only the changed ones: a key is sent when its
value differs from the one MOM last applied or, before MOM applied it, from
the host's current value (``host.ksm_run`` ...).  Nothing changed, no call.
"""
from __future__ import annotations

import logging

from mom.controllers._errors import FailureLog
from mom.controllers.base import Controller, ControllerContext
from mom.entity import Entity

log = logging.getLogger(__name__)

# host control (and host field) -> ksm_tune key (hypervisor.base.KSM_TUNE_KEYS)
KSM_CONTROLS: dict[str, str] = {
    "ksm_run": "run",
    "ksm_pages_to_scan": "pages_to_scan",
    "ksm_sleep_millisecs": "sleep_millisecs",
    "ksm_merge_across_nodes": "merge_across_nodes",
}


class KSM(Controller):
    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self._applied: dict[str, int] = {}
        self._failures = FailureLog(log, "tune KSM")

    def changes(self, host: Entity) -> dict[str, int]:
        """The ksm_tune keys whose new value differs from the known one."""
        params: dict[str, int] = {}
        for control, key in KSM_CONTROLS.items():
            value = host.GetControl(control)
            if value is None:
                continue
            value = int(value)
            known = self._applied[key] if key in self._applied else getattr(host, control)
            if value != known:
                params[key] = value
        return params

    def process(self, host: Entity, guests: list[Entity]) -> None:
        try:
            params = self.changes(host)
            if not params:
                return
            log.debug("ksm tune %s", params)
            self.ctx.hypervisor.ksm_tune(params)
        except Exception as e:
            self._failures.failed(None, "host", e)
        else:
            self._failures.succeeded(None)
            self._applied.update(params)
