"""The controller plugin protocol, and the one rule every built-in follows.

A controller turns the controls a policy set on the entities into
hypervisor calls.  The cycle calls ``process(host, guests)`` once per
evaluation that succeeded.  A controller handles its own per-target errors
(reported once, then quiet until it works again); an exception that
escapes is logged by the cycle and does not stop the other controllers.

:class:`ChangeController` is the rule: for each target (the host or a
guest) a subclass says what the policy wants and what is in force
(``wanted``), and only values that differ from the last value MOM applied
on the same sample, or else from the value observed in the sample, reach
its ``apply``.  So the same target is never sent twice for one sample,
and a value changed behind MOM's back is put right at the next sample.
No controller writes into the samples.
"""
from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

from mom.config import Settings
from mom.entity import Entity
from mom.hypervisor.base import GuestGoneError, Hypervisor, HypervisorError
from mom.reporting import Conditions


@dataclass
class ControllerContext:
    settings: Settings
    hypervisor: Hypervisor


class Controller:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx

    def process(self, host: Entity, guests: list[Entity]) -> None:
        raise NotImplementedError


def guest_id(entity: Entity) -> str | None:
    """The id the hypervisor knows a guest by (None for the host)."""
    properties = entity.properties
    return properties.get("id") or properties.get("uuid")


def label(entity: Entity) -> str:
    gid = guest_id(entity)
    return f"guest {entity.Prop('name')} ({gid})" if gid else "host"


_NOTHING: dict[Hashable, tuple[Any, Any]] = {}     # read only


class ChangeController(Controller):
    """Applies per-target changes only; subclasses set ``action`` and
    ``host_only`` and implement ``wanted`` and ``apply``."""

    action: ClassVar[str] = "apply controls"     # "cannot <action>" in logs
    host_only: ClassVar[bool] = False
    logger: ClassVar[logging.Logger] = logging.getLogger(__name__)

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        # target -> {key: (value applied, stamp of the sample it was applied on)}
        self._applied: dict[str | None, dict[Hashable, tuple[Any, Any]]] = {}
        self._failures = Conditions(self.logger)

    # -- what a subclass says ------------------------------------------------
    def wanted(self, entity: Entity) -> dict[Hashable, tuple[Any, Any]] | None:
        """``{key: (wanted value, observed value)}`` for one target, or
        None when the policy wants nothing of it.  Raise ValueError for a
        control the policy set to something unusable."""
        raise NotImplementedError

    def apply(self, entity: Entity, changes: dict[Hashable, Any]) -> None:
        """Send ``changes`` (only keys whose value differs) in as few calls
        as the hypervisor allows."""
        raise NotImplementedError

    # -- the rule ------------------------------------------------------------
    def process(self, host: Entity, guests: list[Entity]) -> None:
        targets: list[Entity] = [host] if self.host_only else guests
        ids = [guest_id(entity) for entity in targets]
        for target, entity in zip(ids, targets):
            self._process_one(target, entity)
        if not self.host_only:
            self.forget(set(ids))

    def forget(self, live: set[str | None]) -> None:
        """Drop what is kept about guests that are no longer evaluated."""
        for key in [k for k in self._applied if k not in live]:
            del self._applied[key]
        self._failures.prune(live)

    def _process_one(self, target: str | None, entity: Entity) -> None:
        try:
            wanted = self.wanted(entity)
            if not wanted:
                return
            applied = self._applied.get(target, _NOTHING)
            changes = {}
            for key, (value, observed) in wanted.items():
                last = applied.get(key)
                known = last[0] if last is not None and last[1] == entity.stamp else observed
                if value != known:
                    changes[key] = value
            if not changes:
                return
            self.apply(entity, changes)
        except KeyboardInterrupt:
            raise
        except BaseException as err:   # one target's failure must not stop the rest
            self._report(target, entity, err)
            return
        record = self._applied.setdefault(target, {})
        for key, value in changes.items():
            record[key] = (value, entity.stamp)
        if self._failures:               # else nothing to clear (label costs)
            self._failures.ok(target, "%s: can %s again", label(entity), self.action)

    def _report(self, target: str | None, entity: Entity, err: BaseException) -> None:
        who = label(entity)
        if isinstance(err, GuestGoneError):
            self._failures.fail(target, f"{who}: cannot {self.action}, the guest is "
                                f"gone: {err}", level=logging.INFO, summary="gone")
        elif isinstance(err, (HypervisorError, ValueError)):
            self._failures.fail(target, f"{who}: cannot {self.action}: {err}",
                                summary=f"{type(err).__name__}: {err}")
        else:
            self._failures.fail(target, f"{who}: cannot {self.action}: "
                                f"{type(err).__name__}: {err}", exc_info=err,
                                summary=f"{type(err).__name__}: {err}")
