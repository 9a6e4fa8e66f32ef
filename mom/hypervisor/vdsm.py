"""The ``vdsm`` hypervisor interface: MOM inside VDSM's own process.

In thread mode VDSM imports ``mom`` and runs it as threads of its own
process, so MOM calls VDSM's ``API`` module directly (``API.Global()``,
``API.VM(vm_id)``) with no RPC hop.  MOM is not root there, so KSM settings
go through VDSM's privileged helper: ``supervdsm.getProxy().ksmTune()``.

Cost per cycle: ``poll()`` is one ``Global().getAllVmStats()`` call,
whatever the number of guests; there are no per-VM ``getStats`` calls.
I/O-tune policies are per-VM calls in VDSM; they are fetched for a VM only
when its stats lack them, then cached for ``iotune_refresh`` seconds (and
dropped after MOM changes that VM's limits).

VDSM replies carry ``{'status': {'code': 0, 'message': 'Done'}}``; a
non-zero code becomes :class:`GuestGoneError` when it means "no such VM"
and :class:`HypervisorError` otherwise, as does an exception raised by
VDSM.  The caller (guest manager, controllers) logs a raised failure once
per VM and condition, so here it is only logged at DEBUG; failures this
module absorbs itself (an I/O-tune policy it cannot read) are logged here,
once per VM and condition until that VM's call works again.

The conversion functions (``normalise_vm_stats`` and the ``*_section``
helpers) are pure and work on VDSM's ``VmStats`` dicts, where many numbers
are strings.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mom.config import Settings
from mom.hypervisor.base import (
    IOTUNE_KEYS, KSM_TUNE_KEYS, GuestGoneError, GuestInfo, GuestStats,
    Hypervisor, HypervisorError, PolledGuest)
from mom.reporting import Conditions

log = logging.getLogger(__name__)

#: VDSM's error code for "Virtual machine does not exist" (errCode['noVM']).
NO_VM_CODE = 1

#: The only VM status MOM manages.
UP = "Up"

_MEMORY_FIELDS = (
    # (VDSM memoryStats key, MOM field)
    ("mem_total", "mem_available"),
    ("mem_unused", "mem_unused"),
    ("mem_free", "mem_free"),
    ("majflt", "major_fault"),
    ("swap_in", "swap_in"),
    ("swap_out", "swap_out"),
    ("swap_total", "swap_total"),
    ("swap_usage", "swap_usage"),
)
_BALLOON_FIELDS = ("balloon_cur", "balloon_max", "balloon_min")


# ---------------------------------------------------------------------------
# Pure conversions
# ---------------------------------------------------------------------------

def _is_mapping(value: Any) -> bool:
    """isinstance(value, Mapping), quicker for the dicts VDSM sends."""
    return type(value) is dict or isinstance(value, Mapping)


def to_int(value: Any) -> int | None:
    """VDSM sends many numbers as strings ('1024', '0.5'); None if unusable."""
    kind = type(value)
    if kind is int:                 # the common cases first: this runs
        return value                # ~20 times per VM per cycle
    if kind is str:
        try:
            return int(value)
        except ValueError:
            pass
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, AttributeError):
        return None
    if not math.isfinite(number):
        return None
    return int(number)


def memory_section(stats: Mapping[str, Any]) -> dict[str, int] | None:
    """MOM's guest memory fields, or None when there is no guest agent.

    ``memUsage`` of 0 (or missing) is VDSM's way of saying the guest agent
    reports nothing; the ``memoryStats`` then hold no real data.
    """
    if not to_int(stats.get("memUsage")):
        return None
    raw = stats.get("memoryStats")
    if not _is_mapping(raw) or not raw:
        return None
    section: dict[str, int] = {}
    for vdsm_key, field in _MEMORY_FIELDS:
        value = to_int(raw.get(vdsm_key))
        if value is not None:
            section[field] = value
    pageflt = to_int(raw.get("pageflt"))
    majflt = to_int(raw.get("majflt"))
    if pageflt is not None:
        section["minor_fault"] = max(0, pageflt - (majflt or 0))
    return section or None


def balloon_section(stats: Mapping[str, Any]) -> dict[str, int] | None:
    """balloon_cur/max/min in KiB, or None when the VM has no usable balloon.

    VDSM leaves ``balloonInfo`` empty when the balloon is not ready, and
    (since 4.4.6) sets ``ballooning_enabled`` False for VMs that keep the
    device only for memory statistics: those must not be ballooned.
    """
    raw = stats.get("balloonInfo")
    if not _is_mapping(raw) or not raw:
        return None
    enabled = raw.get("ballooning_enabled", True)
    if enabled is False or (isinstance(enabled, str) and enabled.lower() == "false"):
        return None
    section = {}
    for key in _BALLOON_FIELDS:
        value = to_int(raw.get(key))
        if value is None:
            return None
        section[key] = value
    return section


def cputune_section(stats: Mapping[str, Any]) -> dict[str, int] | None:
    """vCPU quota/period/limit/count; None when VDSM reports no vCPU count."""
    count = to_int(stats.get("vcpuCount"))
    if count is None:
        return None
    section = {"vcpu_count": count,
               "vcpu_user_limit": to_int(stats.get("vcpuUserLimit")) or 100}
    quota = to_int(stats.get("vcpuQuota"))
    period = to_int(stats.get("vcpuPeriod"))
    if quota is not None:
        section["vcpu_quota"] = quota
    if period is not None:
        section["vcpu_period"] = period
    return section


def _limits(values: Any) -> dict[str, int]:
    values = values if isinstance(values, Mapping) else {}
    return {key: to_int(values.get(key)) or 0 for key in IOTUNE_KEYS}


def _device_key(entry: Mapping[str, Any]) -> tuple[str, str]:
    return (str(entry.get("name", "") or ""), str(entry.get("path", "") or ""))


def iotune_section(policy: Iterable[Mapping[str, Any]] | None,
                   current: Iterable[Mapping[str, Any]] | None
                   ) -> list[dict[str, Any]]:
    """Join VDSM's per-disk policy (``VmDiskDeviceTuneLimits``: name, path,
    guaranteed, maximum) with the limits in force (``VmDiskDeviceTuneParams``:
    name, path, ioTune).  Only disks that have a policy are tunable, so a VM
    without an I/O policy gets an empty list (valid data: nothing to tune)."""
    if isinstance(policy, Mapping):         # the schema's single-object form
        policy = [policy]
    by_name: dict[str, Mapping[str, Any]] = {}
    by_path: dict[str, Mapping[str, Any]] = {}
    for entry in current or ():
        if isinstance(entry, Mapping):
            name, path = _device_key(entry)
            if name:
                by_name[name] = entry
            if path:
                by_path[path] = entry
    devices = []
    for entry in policy or ():
        if not isinstance(entry, Mapping):
            continue
        name, path = _device_key(entry)
        now = by_name.get(name) if name else None
        if now is None and path:
            now = by_path.get(path)
        if now is not None:
            name = name or _device_key(now)[0]
            path = path or _device_key(now)[1]
        devices.append({
            "name": name, "path": path,
            "guaranteed": _limits(entry.get("guaranteed")),
            "maximum": _limits(entry.get("maximum")),
            "current": _limits(now.get("ioTune") if now is not None else None),
        })
    return devices


def normalise_vm_stats(stats: Mapping[str, Any]) -> GuestStats:
    """One ``VmStats`` dict -> MOM's sections (absent ones left out).

    The ``iotune`` section comes from ``ioTunePolicy``/``ioTune`` when the
    stats carry both; otherwise :class:`VdsmHypervisor` fetches it.
    """
    result: GuestStats = {}
    for key, build in (("memory", memory_section), ("balloon", balloon_section),
                       ("cputune", cputune_section)):
        section = build(stats)
        if section is not None:
            result[key] = section
    if "ioTunePolicy" in stats:
        result["iotune"] = iotune_section(stats.get("ioTunePolicy"), stats.get("ioTune"))
    return result


def guest_info(stats: Mapping[str, Any]) -> GuestInfo | None:
    """The identity of a VM MOM manages; None unless its status is 'Up'."""
    if stats.get("status") != UP:
        return None
    vm_id = stats.get("vmId")
    if not vm_id:
        return None
    return GuestInfo(id=str(vm_id), name=str(stats.get("vmName") or vm_id),
                     pid=to_int(stats.get("pid")))


def reply_status(reply: Any) -> tuple[int, str]:
    """(code, message) of a VDSM reply; a reply without status counts as OK."""
    if not _is_mapping(reply):
        return 0, ""
    status = reply.get("status")
    if not _is_mapping(status):
        return 0, ""
    code = to_int(status.get("code"))
    return (code or 0), str(status.get("message", ""))


def reply_list(reply: Any, key: str) -> list[Any]:
    """The list a reply carries under ``key`` (or its only list value)."""
    if isinstance(reply, Mapping):
        value = reply.get(key)
        if isinstance(value, list):
            return value
        lists = [v for k, v in reply.items() if k != "status" and isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    elif isinstance(reply, list):
        return reply
    return []


# ---------------------------------------------------------------------------
# The back-end
# ---------------------------------------------------------------------------

class VdsmHypervisor(Hypervisor):
    """VDSM's in-process ``API`` module as a MOM hypervisor back-end."""

    name = "vdsm"

    def __init__(self, api: Any = None, supervdsm: Any = None, *,
                 iotune: bool = True,
                 iotune_refresh: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if api is None:
            api = _import_vdsm_module("API")
        if supervdsm is None:
            supervdsm = _import_vdsm_module("supervdsm")
        self._api = api
        self._supervdsm = supervdsm
        self._global: Any = None
        self.iotune = iotune
        self.iotune_refresh = iotune_refresh
        self._clock = clock
        self._iotune_cache: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        # Failures absorbed here, keyed (vm id or '', verb): logged once.
        self._problems = Conditions(log)

    # -- error handling ---------------------------------------------------
    def _report(self, guest_id: str | None, condition: str, message: str,
                level: int = logging.WARNING) -> None:
        """Log an absorbed failure once per VM and verb, until it changes."""
        verb = condition.split(":", 1)[0]
        self._problems.fail((guest_id or "", verb), message, level=level, summary=condition)

    def _recovered(self, guest_id: str | None, verb: str) -> None:
        """A call worked: the next failure of it is news again."""
        if self._problems:              # nothing to clear, the usual case
            self._problems.ok((guest_id or "", verb), "VDSM %s works again%s", verb,
                              f" for VM {guest_id}" if guest_id else "")

    def _call(self, verb: str, guest_id: str | None, func: Callable[..., Any],
              *args: Any) -> Any:
        """Call VDSM; translate status codes and exceptions into our errors.

        The error's ``condition`` attribute (``verb:gone``, ``verb:code:N``,
        ``verb:raised:Type``) lets an absorbing caller log once per condition.
        """
        try:
            reply = func(*args)
        except Exception as err:        # VDSM raised: the caller decides
            who = f" for VM {guest_id}" if guest_id else ""
            message = f"VDSM {verb}{who} raised {type(err).__name__}: {err}"
            raise _error(HypervisorError, message, guest_id,
                         f"{verb}:raised:{type(err).__name__}") from err
        code, text = reply_status(reply)
        if code:
            if code == NO_VM_CODE and guest_id:
                message = f"VM {guest_id} is gone ({verb}: {text or 'no such VM'})"
                raise _error(GuestGoneError, message, guest_id, f"{verb}:gone")
            who = f" for VM {guest_id}" if guest_id else ""
            message = f"VDSM {verb}{who} failed with code {code}: {text}"
            raise _error(HypervisorError, message, guest_id, f"{verb}:code:{code}")
        self._recovered(guest_id, verb)
        return reply

    def _vm(self, guest_id: str) -> Any:
        try:
            return self._api.VM(guest_id)
        except Exception as err:
            message = f"VDSM API.VM({guest_id}) raised {type(err).__name__}: {err}"
            raise _error(HypervisorError, message, guest_id,
                         f"VM:raised:{type(err).__name__}") from err

    def _host(self) -> Any:
        if self._global is None:
            self._global = self._api.Global()
        return self._global

    def _forget_vanished(self, present: set[str]) -> None:
        """Drop log-once and cache entries of VMs that no longer exist."""
        for vm_id in [k for k in self._iotune_cache if k not in present]:
            del self._iotune_cache[vm_id]
        self._problems.prune([k for k in self._problems.keys()
                             if not k[0] or k[0] in present])

    # -- Hypervisor interface ----------------------------------------------
    def ping(self) -> bool:
        try:
            self._call("ping", None, self._host().ping)
        except HypervisorError:
            return False
        return True

    def poll(self) -> list[PolledGuest]:
        """One ``getAllVmStats``: the VMs that are Up, with their stats."""
        reply = self._call("getAllVmStats", None, self._host().getAllVmStats)
        entries = reply.get("statsList") if isinstance(reply, Mapping) else None
        problem = None
        if not isinstance(entries, list):
            problem = f"its statsList is not a list ({type(entries).__name__})"
        else:
            for entry in entries:
                if not _is_mapping(entry) or not entry.get("vmId"):
                    problem = "an entry is not VM stats with a vmId"
                    break
        if problem is not None:
            # Which guest is which cannot be told: act on none of them this
            # cycle, and keep every guest and its history.
            raise HypervisorError(f"VDSM's getAllVmStats reply is unusable: {problem}")
        polled = []
        for stats in entries:
            info = guest_info(stats)
            if info is None:
                continue
            try:
                normalised = normalise_vm_stats(stats)
            except Exception:       # one odd entry must not hide the others
                self._report(info.id, "convert", f"cannot read VDSM stats of VM {info.id}")
                continue
            if self.iotune and "iotune" not in normalised:
                normalised["iotune"] = self._iotune_for(info.id, stats)
            polled.append(PolledGuest(info, normalised))
        self._forget_vanished({p.info.id for p in polled})
        return polled

    def _iotune_for(self, guest_id: str, stats: Mapping[str, Any]
                    ) -> list[dict[str, Any]]:
        """A VM's I/O-tune section from the cache or VDSM (per-VM verbs).

        The policy changes rarely, so it is cached; the limits in force come
        from the snapshot's ``ioTune`` when VDSM includes it there."""
        now = self._clock()
        cached = self._iotune_cache.get(guest_id)
        if cached is None or now - cached[0] >= self.iotune_refresh:
            try:
                vm = self._vm(guest_id)
                policy = reply_list(self._call("getIoTunePolicy", guest_id,
                                               vm.getIoTunePolicy), "ioTunePolicyList")
                current = None
                if policy and not stats.get("ioTune"):
                    current = reply_list(self._call("getIoTune", guest_id, vm.getIoTune),
                                         "ioTuneList")
            except HypervisorError as err:
                if isinstance(err, GuestGoneError):      # news, not trouble
                    self._report(guest_id, err.condition, str(err),  # type: ignore[attr-defined]
                                 logging.INFO)
                else:
                    self._report(guest_id, getattr(err, "condition", "iotune"),
                                 f"{err}; its disks are not I/O-tuned for now")
                # The VM stays managed (balloon, vCPU)
                # with the disks known before, or none; retried at the next
                # refresh rather than every cycle.
                stale = cached[1] if cached is not None else None
                self._iotune_cache[guest_id] = (now, stale or [])
                return stale or []
            devices = iotune_section(policy, current)
            self._iotune_cache[guest_id] = (now, devices)
            cached = self._iotune_cache[guest_id]
        devices = cached[1]
        if devices and stats.get("ioTune"):
            devices = iotune_section(
                [{"name": d["name"], "path": d["path"], "guaranteed": d["guaranteed"],
                  "maximum": d["maximum"]} for d in devices],
                stats.get("ioTune"))
        return devices

    def set_balloon_target(self, guest_id: str, target_kib: int) -> None:
        vm = self._vm(guest_id)
        self._call("setBalloonTarget", guest_id, vm.setBalloonTarget, int(target_kib))

    def set_vcpu_tune(self, guest_id: str, quota: int | None = None,
                      period: int | None = None) -> None:
        vm = self._vm(guest_id)
        # Ints, as the schema types them.  The period first: a quota scaled
        # up together with its period then never meets the old, short one.
        if period is not None:
            self._call("setCpuTunePeriod", guest_id, vm.setCpuTunePeriod, int(period))
        if quota is not None:
            self._call("setCpuTuneQuota", guest_id, vm.setCpuTuneQuota, int(quota))

    def set_io_tune(self, guest_id: str, tunables: list[dict[str, Any]]) -> None:
        vm = self._vm(guest_id)
        payload = [{"name": t.get("name", ""), "path": t.get("path", ""),
                    "ioTune": {k: int(v) for k, v in t.get("ioTune", {}).items()}}
                   for t in tunables]
        try:
            self._call("setIoTune", guest_id, vm.setIoTune, payload)
        finally:
            # The limits in force changed (or are unknown): re-read them.
            self._iotune_cache.pop(guest_id, None)

    def ksm_tune(self, params: dict[str, int]) -> None:
        unknown = set(params) - set(KSM_TUNE_KEYS)
        if unknown:
            raise HypervisorError(f"unknown KSM settings: {', '.join(sorted(unknown))}")
        clean = {k: int(v) for k, v in params.items()}
        if not clean:
            return
        try:
            proxy = self._supervdsm.getProxy()
        except Exception as err:
            raise HypervisorError(
                f"supervdsm.getProxy() raised {type(err).__name__}: {err}") from err
        self._call("ksmTune", None, proxy.ksmTune, clean)


def _error(cls: type[HypervisorError], message: str, guest_id: str | None,
           condition: str) -> HypervisorError:
    log.debug("%s", message)
    err = cls(message, guest_id)
    err.condition = condition       # type: ignore[attr-defined]
    return err


def _import_vdsm_module(name: str) -> Any:
    """Import one of VDSM's own modules, as VDSM puts them on sys.path."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise HypervisorError(
            f"hypervisor-interface 'vdsm' needs VDSM's {name!r} module, which "
            f"cannot be imported ({err}); thread mode must run inside VDSM's "
            "process (VDSM puts its modules on sys.path) - use process mode "
            "or the libvirt interface elsewhere") from err


def create(settings: Settings, api: Any = None,
           supervdsm: Any = None) -> VdsmHypervisor:
    """Build the back-end for ``hypervisor-interface = vdsm``.

    ``api``/``supervdsm`` are VDSM's modules when the embedding program
    hands them over; by default they are imported.  I/O-tune policies are
    only fetched when a guest collector needs them.
    """
    iotune = any("iotune" in name.lower() for name in settings.guest_collectors)
    return VdsmHypervisor(api, supervdsm, iotune=iotune)
