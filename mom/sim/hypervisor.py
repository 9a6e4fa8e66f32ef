"""``SimHypervisor``: MOM's hypervisor interface onto a :class:`Simulation`.

MOM cannot tell it from a real back-end: one :meth:`poll` returns every
running guest with its memory, balloon, vCPU and I/O sections, and every
controller's call changes the simulated host (a balloon target takes effect
over the next simulated seconds).  Bad values are refused with
HypervisorError and change nothing, as a real hypervisor refuses them; a
guest that is not running gives GuestGoneError.
"""
from __future__ import annotations

from typing import Any

from mom.hypervisor.base import (
    GuestGoneError,
    GuestInfo,
    Hypervisor,
    HypervisorError,
    PolledGuest,
)
from mom.sim.model import Simulation


class SimHypervisor(Hypervisor):
    name = "sim"

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.polls = 0

    def _guest_call(self, guest_id: str, action: Any, *args: Any) -> None:
        try:
            action(guest_id, *args)
        except KeyError:
            raise GuestGoneError(f"guest {guest_id} is not running", guest_id) from None
        except (TypeError, ValueError) as e:
            raise HypervisorError(str(e), guest_id) from None

    def ping(self) -> bool:
        return True

    def poll(self) -> list[PolledGuest]:
        self.polls += 1
        return [PolledGuest(GuestInfo(g.id, g.name, g.pid), g.stats())
                for g in self.sim.running()]

    def set_balloon_target(self, guest_id: str, target_kib: int) -> None:
        self._guest_call(guest_id, self.sim.set_balloon_target, target_kib)

    def set_vcpu_tune(self, guest_id: str, quota: int | None = None,
                      period: int | None = None) -> None:
        self._guest_call(guest_id, self.sim.set_vcpu_tune, quota, period)

    def set_io_tune(self, guest_id: str, tunables: list[dict[str, Any]]) -> None:
        self._guest_call(guest_id, self.sim.set_io_tune, tunables)

    def ksm_tune(self, params: dict[str, int]) -> None:
        try:
            self.sim.ksm_tune(dict(params))
        except (TypeError, ValueError) as e:
            raise HypervisorError(f"KSM: {e}") from None
