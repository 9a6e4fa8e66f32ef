"""The policy engine: evaluate the policy set, hand the controls to controllers.

One evaluation per policy-engine-interval, and one at once after the
policy changes.  If the evaluation fails, no control from that cycle is
applied (a half-run policy could leave guests inconsistent); the next cycle
tries again.  A controller that raises is logged; the others still run.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from mom.controllers.base import Controller
from mom.entity import Entity
from mom.policy import PolicyError, PolicySet

log = logging.getLogger(__name__)


class PolicyEngine:
    def __init__(self, policies: PolicySet, host: Callable[[], Entity | None],
                 guests: Callable[[], list[Entity]], controllers: list[Controller]) -> None:
        self.policies = policies
        self._host = host
        self._guests = guests
        self.controllers = controllers
        self.evaluations = 0
        self._last_error: str | None = None

    def step(self) -> None:
        host = self._host()
        if host is None:
            log.debug("no host statistics yet; evaluation waits")
            return
        guests = self._guests()
        try:
            self.policies.evaluate(host, guests)
        except PolicyError as err:
            message = str(err)
            if message != self._last_error:
                log.error("policy evaluation failed, no control applied this cycle: %s",
                          message)
            self._last_error = message
            return
        if self._last_error is not None:
            log.info("policy evaluation works again")
            self._last_error = None
        self.evaluations += 1
        for controller in self.controllers:
            try:
                controller.process(host, guests)
            except Exception:
                log.exception("controller %s failed", type(controller).__name__)
