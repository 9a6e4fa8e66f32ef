"""Scenarios: a simulated host and its guests, read from small TOML files.

A scenario names the host (memory, swap, CPUs, what the host itself uses),
the initial KSM settings and one or more groups of guests, each with a
workload.  Shipped scenarios live in ``mom/sim/scenarios/NAME.toml``;
``load(name_or_path)`` reads either.  Every key is checked: an unknown key
or a value of the wrong type is a :class:`ScenarioError` naming the key, so
a typo never silently falls back to a default.  The format is documented in
docs/simulator.md.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ScenarioError(ValueError):
    """A scenario file is missing, unreadable or holds a bad value."""


WORKLOAD_KINDS = ("idle", "steady", "periodic", "bursty", "growing")


@dataclass(frozen=True)
class WorkloadSpec:
    """What a guest does: shares are of the guest's maximum memory."""
    kind: str = "steady"
    base: float = 0.3          # anonymous working set, at rest
    peak: float = 0.8          # ... at the top of a burst, period or ramp
    cache: float = 0.15        # page cache the workload reads
    noise: float = 0.02        # slow random wander of the working set
    period: float = 1800.0     # periodic: seconds per cycle
    mean_gap: float = 900.0    # bursty: mean seconds between bursts
    mean_length: float = 180.0  # bursty: mean seconds a burst lasts
    ramp: float = 30.0         # bursty: seconds to climb to / fall from the peak
    delay: float = 0.0         # growing: seconds before the climb starts
    rise: float = 3600.0       # growing: seconds from base to peak
    hold: float = 0.0          # growing: seconds at the peak
    fall: float = 0.0          # growing: seconds back to base (0: stays at the peak)
    jitter: float = 0.1        # growing/periodic: per-guest spread of the timings
    access: float = 0.02       # share of swapped-out memory touched per second
    cpu: float = 0.2           # vCPU load at rest (share of the vCPUs)


@dataclass(frozen=True)
class GuestSpec:
    """One group of alike guests."""
    count: int = 1
    name: str = "vm"
    memory_mib: int = 2048      # maximum memory (balloon_max)
    min_mib: int = 512          # guaranteed memory (balloon_min)
    swap_mib: int = 1024        # the guest's own swap
    vcpus: int = 2
    vcpu_limit: int = 100       # percent, VDSM's vcpuUserLimit
    image: str = "linux"        # guests of one image have pages KSM can merge
    shareable: float = 0.25     # share of resident memory alike across that image
    start: float = 0.0          # seconds into the run
    start_spread: float = 0.0   # starts spread evenly over this many seconds
    boot_seconds: float = 60.0
    zero_on_boot: bool = False  # touches all its memory at boot (Windows does)
    kernel_reserved_mib: int = 42   # memory outside the guest's MemTotal
    kernel_mib: int = 0         # non-reclaimable kernel memory; 0: 24 MiB + 1/64
    disk_iops_max: int = 0      # QoS maximum of its disk (0: unlimited)
    disk_bytes_max: int = 0
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)


@dataclass(frozen=True)
class HostSpec:
    memory_mib: int = 0         # 0: derived from overcommit
    overcommit: float = 0.0     # guests' maxima / host memory (used when memory_mib is 0)
    swap_mib: int = 8192
    cpus: int = 16
    reserved_mib: int = 1024    # the host's own non-reclaimable use
    cache_mib: int = 512        # host page cache (reclaimable) it tends to keep
    min_free_mib: int = 64      # below this free memory the host reclaims, then swaps
    qemu_overhead_mib: int = 32  # per running guest, outside its RAM
    balloon_mib_per_s: int = 64  # how fast a balloon moves toward its target


@dataclass(frozen=True)
class KsmSpec:
    """KSM's settings at the start (a fresh kernel: not running)."""
    run: int = 0
    pages_to_scan: int = 100
    sleep_millisecs: int = 20
    merge_across_nodes: int = 1


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    duration: float = 3600.0    # seconds of simulated time
    interval: float = 15.0      # seconds between MOM's cycles
    seed: int = 1
    host: HostSpec = field(default_factory=HostSpec)
    ksm: KsmSpec = field(default_factory=KsmSpec)
    guests: tuple[GuestSpec, ...] = ()

    @property
    def guest_count(self) -> int:
        return sum(g.count for g in self.guests)

    def host_memory_mib(self) -> int:
        """The host's memory: as given, or the guests' maxima / overcommit."""
        if self.host.memory_mib:
            return self.host.memory_mib
        total = sum(g.count * g.memory_mib for g in self.guests)
        return round(total / self.host.overcommit)

    def with_options(self, *, guests: int | None = None, duration: float | None = None,
                     seed: int | None = None, interval: float | None = None) -> Scenario:
        """This scenario with the command-line options applied.

        ``guests`` is the total; it is shared among the groups in
        proportion to their counts (largest remainder, in file order).
        """
        changes: dict[str, Any] = {}
        if duration is not None:
            if not duration > 0:
                raise ScenarioError(f"duration {duration!r} is not a positive number of seconds")
            changes["duration"] = float(duration)
        if interval is not None:
            if not interval > 0:
                raise ScenarioError(f"interval {interval!r} is not a positive number of seconds")
            changes["interval"] = float(interval)
        if seed is not None:
            changes["seed"] = int(seed)
        if guests is not None:
            if guests < 1:
                raise ScenarioError(f"guests {guests!r} is not at least 1")
            changes["guests"] = _share_guests(self.guests, guests)
        changed = dataclasses.replace(self, **changes)
        _check(changed, f"{self.name} with these options")
        return changed


def _share_guests(groups: tuple[GuestSpec, ...], total: int) -> tuple[GuestSpec, ...]:
    old_total = sum(g.count for g in groups)
    exact = [g.count * total / old_total for g in groups]
    counts = [int(x) for x in exact]
    order = sorted(range(len(groups)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[:total - sum(counts)]:
        counts[i] += 1
    return tuple(dataclasses.replace(g, count=n) for g, n in zip(groups, counts) if n > 0)


# -- reading ---------------------------------------------------------------
def scenario_names() -> list[str]:
    """Names of the scenarios shipped in the package, sorted."""
    folder = importlib.resources.files("mom.sim") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or a scenario file by path."""
    if os.sep in name_or_path or name_or_path.endswith(".toml"):
        path = name_or_path
        name = os.path.basename(path)[:-5] if path.endswith(".toml") else os.path.basename(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ScenarioError(f"cannot read scenario {path}: {e.strerror or e}") from None
    else:
        name = name_or_path
        resource = importlib.resources.files("mom.sim") / "scenarios" / f"{name}.toml"
        if not resource.is_file():
            raise ScenarioError(f"unknown scenario {name!r}; shipped scenarios: "
                                + ", ".join(scenario_names()))
        path = f"{name}.toml"
        data = resource.read_bytes()
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{path}: not valid TOML: {e}") from None
    return parse(table, name, path)


def parse(table: Mapping[str, Any], name: str, origin: str = "scenario") -> Scenario:
    """Build a Scenario from a parsed TOML table; ScenarioError names a bad key."""
    top = dict(table)
    host = _build(HostSpec, top.pop("host", {}), f"{origin} [host]")
    ksm = _build(KsmSpec, top.pop("ksm", {}), f"{origin} [ksm]")
    raw_guests = top.pop("guests", None)
    if not isinstance(raw_guests, list) or not raw_guests:
        raise ScenarioError(f"{origin}: needs at least one [[guests]] group")
    groups = []
    for i, raw in enumerate(raw_guests, 1):
        where = f"{origin} [[guests]] #{i}"
        if not isinstance(raw, Mapping):
            raise ScenarioError(f"{where}: not a table")
        raw = dict(raw)
        workload = _build(WorkloadSpec, raw.pop("workload", {}), f"{where} workload")
        groups.append(_build(GuestSpec, raw, where, workload=workload))
    scenario = _build(Scenario, top, origin, name=name, host=host, ksm=ksm,
                      guests=tuple(groups))
    _check(scenario, origin)
    return scenario


def _build(cls: type, raw: Any, where: str, **fixed: Any) -> Any:
    """``cls`` from a TOML table; ``fixed`` fields are not read from it."""
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{where}: not a table")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in fixed}
    values: dict[str, Any] = dict(fixed)
    for key, value in raw.items():
        f = fields.get(key)
        if f is None:
            raise ScenarioError(f"{where}: unknown key {key!r}; known keys: "
                                + ", ".join(fields))
        values[key] = _convert(value, f.type, f"{where} {key}")
    return cls(**values)


def _convert(value: Any, type_name: Any, where: str) -> Any:
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ScenarioError(f"{where} = {value!r} is not true or false")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ScenarioError(f"{where} = {value!r} is not a whole number")
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ScenarioError(f"{where} = {value!r} is not a number")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise ScenarioError(f"{where} = {value!r} is not a string")
    raise ScenarioError(f"{where}: unsupported value {value!r}")


def _check(s: Scenario, origin: str) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ScenarioError(f"{origin}: {what}")

    need(s.duration > 0, f"duration = {s.duration} must be positive")
    need(s.interval > 0, f"interval = {s.interval} must be positive")
    h = s.host
    need(h.memory_mib > 0 or h.overcommit > 0,
         "[host] needs memory_mib or overcommit (guests' maxima / host memory)")
    need(h.memory_mib >= 0 and h.overcommit >= 0, "[host] memory_mib and overcommit must not be negative")
    for key in ("swap_mib", "reserved_mib", "cache_mib", "min_free_mib", "qemu_overhead_mib"):
        need(getattr(h, key) >= 0, f"[host] {key} must not be negative")
    need(h.cpus >= 1, "[host] cpus must be at least 1")
    need(h.balloon_mib_per_s >= 1, "[host] balloon_mib_per_s must be at least 1")
    if s.guests and (h.memory_mib or h.overcommit):
        own = h.reserved_mib + h.cache_mib + h.min_free_mib
        need(s.host_memory_mib() > own,
             f"[host] memory ({s.host_memory_mib()} MiB) must exceed its own use: "
             f"reserved_mib + cache_mib + min_free_mib = {own} MiB")
    k = s.ksm
    need(k.run in (0, 1, 2), "[ksm] run must be 0, 1 or 2")
    need(k.pages_to_scan >= 0 and k.sleep_millisecs >= 0, "[ksm] values must not be negative")
    need(k.merge_across_nodes in (0, 1), "[ksm] merge_across_nodes must be 0 or 1")
    names = set()
    for i, g in enumerate(s.guests, 1):
        where = f"[[guests]] #{i}"
        need(g.count >= 1, f"{where} count must be at least 1")
        need(bool(g.name) and g.name.replace("-", "").replace("_", "").isalnum(),
             f"{where} name {g.name!r} must be letters, digits, '-' or '_'")
        need(g.name not in names, f"{where} name {g.name!r} is used by another group")
        names.add(g.name)
        need(g.memory_mib >= 256, f"{where} memory_mib must be at least 256")
        need(0 <= g.min_mib <= g.memory_mib, f"{where} min_mib must be between 0 and memory_mib")
        need(g.swap_mib >= 0 and g.vcpus >= 1, f"{where} swap_mib >= 0 and vcpus >= 1 required")
        need(1 <= g.vcpu_limit <= 100, f"{where} vcpu_limit must be 1-100 (percent)")
        need(0 <= g.shareable <= 1, f"{where} shareable must be between 0 and 1")
        need(g.start >= 0 and g.start_spread >= 0 and g.boot_seconds >= 0,
             f"{where} start, start_spread and boot_seconds must not be negative")
        need(g.kernel_reserved_mib >= 0 and g.kernel_mib >= 0,
             f"{where} kernel sizes must not be negative")
        need(g.disk_iops_max >= 0 and g.disk_bytes_max >= 0,
             f"{where} disk limits must not be negative")
        w = g.workload
        need(w.kind in WORKLOAD_KINDS,
             f"{where} workload kind {w.kind!r} is not one of {', '.join(WORKLOAD_KINDS)}")
        for key in ("base", "peak", "cache"):
            need(0 <= getattr(w, key) <= 1, f"{where} workload {key} must be between 0 and 1")
        for key in ("noise", "period", "mean_gap", "mean_length", "ramp", "delay", "rise",
                    "hold", "fall", "jitter", "access", "cpu"):
            need(getattr(w, key) >= 0, f"{where} workload {key} must not be negative")
        need(w.period > 0 and w.mean_gap > 0 and w.mean_length > 0,
             f"{where} workload period, mean_gap and mean_length must be positive")
        need(w.cpu <= 1 and w.access <= 1, f"{where} workload cpu and access must be at most 1")
