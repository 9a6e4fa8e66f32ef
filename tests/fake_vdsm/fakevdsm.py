"""A controllable fake of VDSM as MOM's thread mode sees it.

``FakeVdsm`` holds the state: VMs with their statistics, the host's KSM
settings as supervdsm last set them, a call counter per verb, and injected
failures.  ``fake.api`` and ``fake.supervdsm`` behave like VDSM's ``API``
and ``supervdsm`` modules and can be handed to ``VdsmHypervisor``; the
modules ``API.py`` and ``supervdsm.py`` next to this file forward to the
instance installed with :func:`install`, for code that does ``import API``.

Replies follow the shapes of VDSM's schema (``vdsm-api.yml``): every reply
carries ``{'status': {'code': 0, 'message': 'Done'}}``; in ``VmStats`` the
numbers VDSM sends as strings are strings here too.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

DONE = {"code": 0, "message": "Done"}
NO_VM = {"code": 1, "message": "Virtual machine does not exist"}
IOTUNE_KEYS = ("total_bytes_sec", "read_bytes_sec", "write_bytes_sec",
               "total_iops_sec", "read_iops_sec", "write_iops_sec")


def ok(**payload: Any) -> dict[str, Any]:
    return {"status": dict(DONE), **payload}


def error(code: int, message: str) -> dict[str, Any]:
    return {"status": {"code": code, "message": message}}


@dataclass
class FakeVM:
    """One VM.  Memory is modelled so that ballooning behaves like a guest:
    the guest sees ``balloon_cur`` as its total memory and uses ``used`` KiB
    of it, so shrinking the balloon eats into its unused memory."""
    vm_id: str
    name: str
    pid: int = 1000
    status: str = "Up"
    used: int = 512 * 1024             # KiB in use inside the guest
    cache: int = 64 * 1024             # easily reclaimable KiB (in mem_free)
    balloon_max: int = 2048 * 1024
    balloon_min: int = 1024 * 1024
    balloon_cur: int = 2048 * 1024
    balloon_target: int = 2048 * 1024
    balloon: bool = True               # has a ready balloon device
    ballooning_enabled: bool = True
    agent: bool = True                 # guest agent reports memory stats
    majflt: int = 3
    pageflt: int = 40
    swap_in: int = 0
    swap_out: int = 0
    swap_total: int = 1024 * 1024
    swap_usage: int = 0
    vcpu_count: int = 1
    vcpu_user_limit: int = 100
    vcpu_quota: int = -1
    vcpu_period: int = 100000
    # I/O: per-disk policy (name, path, guaranteed, maximum) and limits now
    io_policy: list[dict[str, Any]] = field(default_factory=list)
    io_current: dict[str, dict[str, int]] = field(default_factory=dict)
    iotune_in_stats: bool = False      # whether VmStats carries ioTune/ioTunePolicy

    def stats(self) -> dict[str, Any]:
        """A RunningVmStats dict, strings where VDSM sends strings."""
        if self.status != "Up":
            return {"vmId": self.vm_id, "status": self.status, "vmName": self.name}
        stats: dict[str, Any] = {
            "vmId": self.vm_id, "vmName": self.name, "status": self.status,
            "pid": str(self.pid), "vmType": "kvm", "kvmEnable": "true",
            "acpiEnable": "true", "timeOffset": "0", "elapsedTime": "3600",
            "cpuUser": "1.25", "cpuSys": "0.50", "cpuUsage": "123456789",
            "monitorResponse": "0", "statusTime": "4295213840",
            "vcpuCount": str(self.vcpu_count), "vcpuQuota": str(self.vcpu_quota),
            "vcpuPeriod": self.vcpu_period, "vcpuUserLimit": self.vcpu_user_limit,
            "disks": {}, "network": {}, "guestIPs": "", "displayInfo": [],
            "hash": "1234",
        }
        if self.agent:
            unused = max(0, self.balloon_cur - self.used)
            stats["memUsage"] = str(min(100, self.used * 100 // max(1, self.balloon_cur)))
            stats["memoryStats"] = {
                "mem_total": str(self.balloon_cur),
                "mem_unused": str(unused),
                "mem_free": str(unused + self.cache),
                "mem_cached": str(self.cache), "mem_buffers": "0",
                "majflt": self.majflt, "pageflt": self.pageflt,
                "minflt": self.pageflt - self.majflt,
                "swap_in": self.swap_in, "swap_out": self.swap_out,
                "swap_total": str(self.swap_total), "swap_usage": str(self.swap_usage),
            }
        else:
            stats["memUsage"] = "0"
            stats["memoryStats"] = {}
        if self.balloon:
            stats["balloonInfo"] = {
                "balloon_max": str(self.balloon_max), "balloon_min": str(self.balloon_min),
                "balloon_cur": str(self.balloon_cur),
                "balloon_target": str(self.balloon_target),
                "ballooning_enabled": self.ballooning_enabled,
            }
        else:
            stats["balloonInfo"] = {}
        if self.iotune_in_stats and self.io_policy:
            stats["ioTunePolicy"] = self.io_tune_policy()
            stats["ioTune"] = self.io_tune()
        return stats

    def io_tune_policy(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.io_policy]

    def io_tune(self) -> list[dict[str, Any]]:
        result = []
        for p in self.io_policy:
            now = self.io_current.get(p["name"], {k: 0 for k in IOTUNE_KEYS})
            result.append({"name": p["name"], "path": p.get("path", ""),
                           "ioTune": dict(now)})
        return result


class FakeVdsm:
    """VDSM's state plus the two module fakes (``.api``, ``.supervdsm``)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.vms: dict[str, FakeVM] = {}
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[str, str | None, Any]] = []   # (verb, vm id, arg)
        self.ksm: dict[str, int] = {"run": 0, "pages_to_scan": 100,
                                    "sleep_millisecs": 20, "merge_across_nodes": 1}
        self.ksm_calls: list[dict[str, int]] = []
        # Called with each applied ksmTune dict (a fake host writes its sysfs).
        self.on_ksm_tune: Any = None
        # Injected failures: (verb, vm id or None) -> reply dict or exception
        self._failures: dict[tuple[str, str | None], Any] = {}
        self._ghosts: set[str] = set()     # listed, but gone for any action
        self._hangs: dict[str, threading.Event] = {}   # verb -> released when set
        self.api = SimpleNamespace(Global=lambda: _Global(self),
                                   VM=lambda vm_id: _VM(self, vm_id))
        self.supervdsm = SimpleNamespace(getProxy=lambda: _SuperVdsmProxy(self))

    # -- building the scene ------------------------------------------------
    def add_vm(self, vm_id: str | None = None, **kwargs: Any) -> FakeVM:
        with self.lock:
            index = len(self.vms)
            vm_id = vm_id or f"00000000-0000-0000-0000-{index:012d}"
            kwargs.setdefault("name", f"vm{index}")
            kwargs.setdefault("pid", 2000 + index)
            vm = FakeVM(vm_id=vm_id, **kwargs)
            self.vms[vm_id] = vm
            return vm

    def add_vms(self, count: int, **kwargs: Any) -> list[FakeVM]:
        return [self.add_vm(**kwargs) for _ in range(count)]

    def remove_vm(self, vm_id: str) -> None:
        with self.lock:
            self.vms.pop(vm_id, None)
            self._ghosts.discard(vm_id)

    def ghost(self, vm_id: str) -> None:
        """The VM still shows in listings but is gone for any VM verb: it
        vanished between listing and acting."""
        with self.lock:
            self._ghosts.add(vm_id)

    def fail(self, verb: str, vm_id: str | None = None, code: int = 99,
             message: str = "Injected failure") -> None:
        """Make ``verb`` (for one VM, or for all) return an error status."""
        with self.lock:
            self._failures[(verb, vm_id)] = error(code, message)

    def raise_on(self, verb: str, vm_id: str | None = None,
                 exc: BaseException | None = None) -> None:
        """Make ``verb`` (for one VM, or for all) raise ``exc``."""
        with self.lock:
            self._failures[(verb, vm_id)] = exc or RuntimeError("injected exception")

    def hang(self, verb: str) -> threading.Event:
        """Make ``verb`` block (as a stuck libvirt call does) until the
        returned event is set."""
        release = threading.Event()
        with self.lock:
            self._hangs[verb] = release
        return release

    def _hold(self, verb: str) -> None:
        release = self._hangs.get(verb)
        if release is not None:
            release.wait()

    def heal(self, verb: str | None = None, vm_id: str | None = None) -> None:
        with self.lock:
            if verb is None:
                self._failures.clear()
            else:
                self._failures.pop((verb, vm_id), None)

    def calls_for(self, verb: str, vm_id: str | None = None) -> list[Any]:
        with self.lock:
            return [arg for v, vid, arg in self.log if v == verb
                    and (vm_id is None or vid == vm_id)]

    def reset_counters(self) -> None:
        with self.lock:
            self.calls.clear()
            self.log.clear()
            self.ksm_calls.clear()

    # -- machinery used by the fakes ---------------------------------------
    def _enter(self, verb: str, vm_id: str | None, arg: Any = None) -> dict | None:
        """Count the call; return an injected error reply or raise."""
        self.calls[verb] += 1
        self.log.append((verb, vm_id, arg))
        injected = self._failures.get((verb, vm_id), self._failures.get((verb, None)))
        if isinstance(injected, BaseException):
            raise injected
        if injected is not None:
            return injected
        if vm_id is not None and (vm_id not in self.vms or vm_id in self._ghosts):
            return error(**NO_VM)
        return None


class _Global:
    """``API.Global()``."""

    def __init__(self, fake: FakeVdsm) -> None:
        self._fake = fake

    def ping(self) -> dict[str, Any]:
        with self._fake.lock:
            return self._fake._enter("ping", None) or ok()

    def getVMList(self, fullStatus: bool = False, vmList: Any = (),
                  onlyUUID: bool = False) -> dict[str, Any]:
        fake = self._fake
        with fake.lock:
            failed = fake._enter("getVMList", None)
            if failed:
                return failed
            wanted = set(vmList or ())
            vms = [vm for vm in fake.vms.values() if not wanted or vm.vm_id in wanted]
            if onlyUUID:
                return ok(vmList=[vm.vm_id for vm in vms])
            if fullStatus:
                return ok(vmList=[vm.stats() for vm in vms])
            return ok(vmList=[{"vmId": vm.vm_id, "status": vm.status,
                               "vmName": vm.name, "pid": str(vm.pid)} for vm in vms])

    def getAllVmStats(self) -> dict[str, Any]:
        fake = self._fake
        fake._hold("getAllVmStats")
        with fake.lock:
            failed = fake._enter("getAllVmStats", None)
            if failed:
                return failed
            return ok(statsList=[vm.stats() for vm in fake.vms.values()])


class _VM:
    """``API.VM(vm_id)``."""

    def __init__(self, fake: FakeVdsm, vm_id: str) -> None:
        self._fake = fake
        self._id = vm_id

    def _vm(self) -> FakeVM:
        return self._fake.vms[self._id]

    def getStats(self) -> dict[str, Any]:
        with self._fake.lock:
            return (self._fake._enter("getStats", self._id)
                    or ok(statsList=[self._vm().stats()]))

    def setBalloonTarget(self, target: Any) -> dict[str, Any]:
        self._fake._hold("setBalloonTarget")
        with self._fake.lock:
            failed = self._fake._enter("setBalloonTarget", self._id, target)
            if failed:
                return failed
            vm = self._vm()
            target = int(target)
            if target < 0:
                return error(9, "Invalid balloon target")
            vm.balloon_target = target
            vm.balloon_cur = target          # this balloon reaches its target at once
            return ok()

    def setCpuTuneQuota(self, quota: Any) -> dict[str, Any]:
        with self._fake.lock:
            failed = self._fake._enter("setCpuTuneQuota", self._id, quota)
            if failed:
                return failed
            self._vm().vcpu_quota = int(quota)
            return ok(taskStatus="Done")

    def setCpuTunePeriod(self, period: Any) -> dict[str, Any]:
        with self._fake.lock:
            failed = self._fake._enter("setCpuTunePeriod", self._id, period)
            if failed:
                return failed
            self._vm().vcpu_period = int(period)
            return ok(taskStatus="Done")

    def getIoTunePolicy(self) -> dict[str, Any]:
        with self._fake.lock:
            return (self._fake._enter("getIoTunePolicy", self._id)
                    or ok(ioTunePolicyList=self._vm().io_tune_policy()))

    def getIoTune(self) -> dict[str, Any]:
        with self._fake.lock:
            return (self._fake._enter("getIoTune", self._id)
                    or ok(ioTuneList=self._vm().io_tune()))

    def setIoTune(self, tunables: Any) -> dict[str, Any]:
        with self._fake.lock:
            failed = self._fake._enter("setIoTune", self._id, tunables)
            if failed:
                return failed
            vm = self._vm()
            for device in tunables:
                vm.io_current[device["name"]] = {
                    k: int(device["ioTune"].get(k, 0)) for k in IOTUNE_KEYS}
            return ok(taskStatus="Done")


class _SuperVdsmProxy:
    """``supervdsm.getProxy()``: ksmTune applies to the host and returns None,
    raising on failure as the real proxy does."""

    def __init__(self, fake: FakeVdsm) -> None:
        self._fake = fake

    def ksmTune(self, params: dict[str, int]) -> None:
        with self._fake.lock:
            failed = self._fake._enter("ksmTune", None, dict(params))
            if failed:
                raise RuntimeError(failed["status"]["message"])
            unknown = set(params) - set(self._fake.ksm)
            if unknown:
                raise ValueError(f"unknown KSM keys {sorted(unknown)}")
            self._fake.ksm.update({k: int(v) for k, v in params.items()})
            self._fake.ksm_calls.append(dict(params))
            if self._fake.on_ksm_tune is not None:
                self._fake.on_ksm_tune(dict(params))


_current: FakeVdsm | None = None


def install(fake: FakeVdsm | None = None) -> FakeVdsm:
    """Make ``fake`` the VDSM that the ``API``/``supervdsm`` modules serve."""
    global _current
    _current = fake or FakeVdsm()
    return _current


def current() -> FakeVdsm:
    if _current is None:
        install()
    assert _current is not None
    return _current
