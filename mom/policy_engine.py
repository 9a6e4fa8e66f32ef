"""The policy engine: evaluate the policy set, hand the controls to controllers.

If the evaluation fails, no control from it is applied (a half-run policy
could leave guests inconsistent).  A guest with data missing (a required
collector failed) takes part with those fields nil; its controls that need
them are dropped (:data:`mom.facts.GUEST_CONTROL_NEEDS`).  Should the
policy fail on such a guest's nil fields, the evaluation is run again
without the incomplete guests, as the original MOM left them out.  A
controller that raises is logged; the others still run.
"""
from __future__ import annotations

import logging

from mom.controllers.base import Controller
from mom.entity import Entity
from mom.facts import GUEST_CONTROL_NEEDS
from mom.policy import PolicyError, PolicySet
from mom.reporting import Conditions

log = logging.getLogger(__name__)


class PolicyEngine:
    def __init__(self, policies: PolicySet, controllers: list[Controller]) -> None:
        self.policies = policies
        self.controllers = controllers
        self.evaluations = 0
        self._problems = Conditions(log)

    def evaluate(self, host: Entity, guests: list[Entity]) -> list[Entity] | None:
        """Run the policy set; the guests whose controls stand, or None
        when the evaluation failed (nothing is to be applied)."""
        try:
            self.policies.evaluate(host, guests)
        except PolicyError as err:
            complete = [g for g in guests if not g.missing]
            if len(complete) == len(guests):
                return self._failed(err)
            try:
                self.policies.evaluate(host, complete)
            except PolicyError as again:
                return self._failed(again)
            self._problems.fail("partial", (
                f"policy evaluation failed with the guests whose data is incomplete "
                f"({', '.join(sorted(str(g.Prop('name')) for g in guests if g.missing))}): "
                f"{err}; evaluated without them"))
            guests = complete
        else:
            self._problems.ok("partial")
        self._problems.ok("error", "policy evaluation works again")
        self.evaluations += 1
        for guest in guests:
            if guest.missing:
                _drop_blocked_controls(guest)
        return guests

    def _failed(self, err: PolicyError) -> None:
        self._problems.fail("error", "policy evaluation failed, no control "
                            f"applied this cycle: {err}")
        return None

    def apply(self, host: Entity, guests: list[Entity]) -> None:
        for controller in self.controllers:
            try:
                controller.process(host, guests)
            except Exception:
                log.exception("controller %s failed", type(controller).__name__)


def _drop_blocked_controls(guest: Entity) -> None:
    for control, needs in GUEST_CONTROL_NEEDS.items():
        if control in guest.controls and needs & guest.missing:
            log.debug("guest %s: %s held back, %s missing", guest.Prop("name"),
                      control, ", ".join(sorted(needs & guest.missing)))
            del guest.controls[control]
