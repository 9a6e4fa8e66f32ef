"""The one interface every hypervisor back-end offers MOM.

Back-ends: ``vdsm`` (VDSM's API.py in-process), the VDSM RPC clients
(process mode), and ``libvirt``.  Collectors and controllers only ever talk
to this interface.

One call a cycle: ``poll()`` returns every active guest MOM should manage,
with its stats already normalised to MOM's field names, so a guest
collector only picks its section out of its guest's entry.  MOM never
overlaps its own calls: one worker makes them all, in order.
Sections of a :data:`GuestStats` dict (each may be absent when the
hypervisor has no such data for that guest; :mod:`mom.facts` declares the
fields of each section):

``memory``
    ``mem_available, mem_unused, mem_free, major_fault, minor_fault,
    swap_in, swap_out, swap_total, swap_usage`` (KiB or counts, ints; only
    the ones the guest reports).
``balloon``
    ``balloon_cur, balloon_max, balloon_min`` (KiB, ints).
``cputune``
    ``vcpu_quota, vcpu_period, vcpu_user_limit, vcpu_count`` (ints).
``iotune``
    list of ``{'name', 'path', 'guaranteed': {six limits}, 'maximum':
    {six limits}, 'current': {six limits}}``; the six limits are
    ``total_bytes_sec, read_bytes_sec, write_bytes_sec, total_iops_sec,
    read_iops_sec, write_iops_sec``.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

GuestStats = dict[str, Any]

from mom.facts import IOTUNE_KEYS, KSM_TUNE_KEYS  # noqa: F401  (re-exported)


class HypervisorError(Exception):
    """A hypervisor call failed; ``guest_id`` says which guest, if any."""

    def __init__(self, message: str, guest_id: str | None = None) -> None:
        super().__init__(message)
        self.guest_id = guest_id


class GuestGoneError(HypervisorError):
    """The guest vanished (shut down, migrated away) between list and act."""


@dataclass(frozen=True)
class GuestInfo:
    """Identity of a managed (running) guest."""
    id: str           # stable id: VDSM vmId, libvirt UUID
    name: str
    pid: int | None = None


@dataclass(frozen=True)
class PolledGuest:
    """One active guest as a single :meth:`Hypervisor.poll` call saw it:
    its identity and its normalised stats (sections as in the module doc)."""
    info: GuestInfo
    stats: GuestStats


class Hypervisor(abc.ABC):
    """Abstract back-end.  Implementations raise HypervisorError (or
    GuestGoneError) for failures; they never return error codes."""

    name = "abstract"

    @abc.abstractmethod
    def poll(self) -> list[PolledGuest]:
        """ONE hypervisor call per cycle: every active guest MOM should
        manage, with its normalised stats.  Raises HypervisorError when the
        call fails or its reply is unusable as a whole."""

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the hypervisor answers."""

    @abc.abstractmethod
    def set_balloon_target(self, guest_id: str, target_kib: int) -> None:
        """Ask the guest's balloon to move to ``target_kib``."""

    @abc.abstractmethod
    def set_vcpu_tune(self, guest_id: str, quota: int | None = None,
                      period: int | None = None) -> None:
        """Set the vCPU quota and/or period (None leaves a value as is)."""

    @abc.abstractmethod
    def set_io_tune(self, guest_id: str, tunables: list[dict[str, Any]]) -> None:
        """Set per-device limits: ``[{'name', 'path', 'ioTune': {six limits}}]``."""

    @abc.abstractmethod
    def ksm_tune(self, params: dict[str, int]) -> None:
        """Apply KSM settings; keys are a subset of :data:`KSM_TUNE_KEYS`."""

    def close(self) -> None:
        """Release connections; the default has none."""
