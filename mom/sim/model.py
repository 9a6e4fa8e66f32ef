"""The simulated KVM host: memory, swap, KSM, CPUs and the guests on it.

All memory is counted in whole KiB (KSM in 4 KiB pages), so the books
balance exactly.  Where every KiB of the host is, at the end of each step
(:meth:`Simulation.check` verifies it; the tests call it every step)::

    MemTotal  = MemFree + host page cache + host's own use
                + sum(resident guest RAM) - KSM savings
    SwapTotal = SwapFree + sum(guest RAM swapped out by the host)

and for each guest::

    balloon_cur = kernel's reserve (outside MemTotal) + kernel's own use
                  + resident anonymous memory + page cache + free
    anonymous working set = resident anonymous + swapped out by the guest
    footprint (RAM the guest has touched, up to balloon_cur)
                = resident on the host + swapped out by the host

The host's own use is its reserve plus qemu's overhead per running guest.
A guest touches RAM as it uses it and keeps it touched when it frees it
(free pages inside a guest stay resident on the host); only the balloon
gives touched RAM back to the host.

One :meth:`Simulation.step` is one simulated second.  Nothing here reads a
clock or sleeps; randomness comes only from each guest's own
``random.Random``, seeded from the scenario's seed and the guest's name.
"""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from mom.facts import IOTUNE_KEYS, KSM_TUNE_KEYS
from mom.sim.scenario import GuestSpec, Scenario
from mom.sim.workload import Workload

PAGE_KIB = 4
MIB = 1024
TICK = 1                              # seconds per step

GUEST_CACHE_MIN_KIB = 16 * MIB        # page cache a guest keeps even when squeezed
GUEST_CACHE_FILL_KIB_S = 32 * MIB     # how fast a guest's page cache can grow
CACHE_REFAULT_PER_S = 0.01            # share of the missing page cache re-read per second
HOST_CACHE_FILL_KIB_S = 4 * MIB
HOST_CACHE_FLOOR_KIB = 16 * MIB
KSM_SECONDS_PER_PAGE = 4e-6           # ksmd's CPU time to scan one page
KSM_COW_BREAK_PER_S = 0.001           # share of merged pages a guest writes to per second
DEFAULT_PERIOD_US = 100000
_ID_NAMESPACE = uuid.UUID("6d6f6d2d-7369-6d75-6c61-746f72000000")
KSMD_PID = 37


class SimInvariantError(AssertionError):
    """The books do not balance: a bug in the simulator."""


@dataclass
class Disk:
    name: str
    path: str
    guaranteed: dict[str, int]
    maximum: dict[str, int]
    current: dict[str, int]


@dataclass
class BalloonLog:
    """What the balloon was asked to do (for the summary)."""
    changes: int = 0
    reversals: int = 0
    last_direction: int = 0


class SimGuest:
    """One guest: its balloon, its kernel's view of memory, its host-side pages."""

    def __init__(self, spec: GuestSpec, name: str, index: int, scenario: Scenario,
                 start: float) -> None:
        self.spec = spec
        self.name = name
        self.id = str(uuid.uuid5(_ID_NAMESPACE, f"{scenario.name}/{name}"))
        self.pid = 4000 + 17 * index
        self.start_at = start
        self.rng = random.Random(f"{scenario.seed}/{name}")
        self.workload = Workload(spec.workload, self.rng, spec.boot_seconds)
        self.max_kib = spec.memory_mib * MIB
        self.min_kib = spec.min_mib * MIB
        self.reserved_kib = spec.kernel_reserved_mib * MIB
        self.kernel_kib = (spec.kernel_mib * MIB if spec.kernel_mib
                           else 24 * MIB + self.max_kib // 64)
        self.cache_min_kib = GUEST_CACHE_MIN_KIB
        self.swap_total_kib = spec.swap_mib * MIB
        # the most anonymous memory the guest can hold with its balloon empty
        self.anon_cap_kib = max(0, self.max_kib - self.reserved_kib - self.kernel_kib
                                - self.cache_min_kib)
        self.state = "new"            # new -> running -> killed
        # inside the guest (KiB)
        self.cur = self.max_kib
        self.target = self.max_kib
        self.anon_res = 0
        self.swapped = 0
        self.cache = 0
        self.want_anon = 0            # the workload's anonymous working set now
        self.cpu_share = 0.0
        # on the host (KiB; merged in pages)
        self.footprint = 0
        self.resident = 0
        self.hswap = 0
        self.merged = 0
        # counters
        self.swap_in_kib = 0
        self.swap_out_kib = 0
        self.major_faults = 0
        self.minor_faults = 0
        self.host_major_faults = 0
        self.host_minor_faults = 0
        self.oom_deflations = 0
        self.cpu_seconds = 0.0
        self.running_seconds = 0
        self.balloon = BalloonLog()
        # tuning
        self.vcpu_quota = -1
        self.vcpu_period = DEFAULT_PERIOD_US
        limits = {k: 0 for k in IOTUNE_KEYS}
        maximum = dict(limits, total_iops_sec=spec.disk_iops_max,
                       total_bytes_sec=spec.disk_bytes_max)
        self.disks = [Disk("vda", f"/var/lib/libvirt/images/{name}.img",
                           dict(limits), maximum, dict(limits))]

    # -- the guest's view ----------------------------------------------------
    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def unused_kib(self) -> int:
        """MemFree inside the guest."""
        return self.cur - self.reserved_kib - self.kernel_kib - self.anon_res - self.cache

    @property
    def in_use_kib(self) -> int:
        return self.reserved_kib + self.kernel_kib + self.anon_res + self.cache

    @property
    def working_set_kib(self) -> int:
        """What the guest needs in its balloon not to swap: its kernel's
        share, its anonymous working set and a minimal page cache."""
        return self.reserved_kib + self.kernel_kib + self.want_anon + self.cache_min_kib

    @property
    def floor_kib(self) -> int:
        """The smallest balloon_cur the guest's kernel lets the balloon reach."""
        return (self.reserved_kib + self.kernel_kib + self.cache_min_kib
                + max(0, self.want_anon - self.swap_total_kib))

    def ksm_capacity_pages(self) -> int:
        """Pages of this guest alike with its image's other guests."""
        return int(self.footprint * self.spec.shareable) // PAGE_KIB

    def stats(self) -> dict[str, Any]:
        """The normalised sections of mom.hypervisor.base, fresh objects."""
        return {
            "memory": {
                "mem_available": self.cur - self.reserved_kib,
                "mem_unused": self.unused_kib,
                "mem_free": self.unused_kib + self.cache,
                "major_fault": self.major_faults,
                "minor_fault": self.minor_faults,
                "swap_in": self.swap_in_kib,
                "swap_out": self.swap_out_kib,
                "swap_total": self.swap_total_kib,
                "swap_usage": self.swapped,
            },
            "balloon": {"balloon_cur": self.cur, "balloon_max": self.max_kib,
                        "balloon_min": self.min_kib},
            "cputune": {"vcpu_quota": self.vcpu_quota, "vcpu_period": self.vcpu_period,
                        "vcpu_user_limit": self.spec.vcpu_limit,
                        "vcpu_count": self.spec.vcpus},
            "iotune": [{"name": d.name, "path": d.path, "guaranteed": dict(d.guaranteed),
                        "maximum": dict(d.maximum), "current": dict(d.current)}
                       for d in self.disks],
        }

    # -- one second of the guest's life ----------------------------------------
    def advance(self, t: float, dt: int, balloon_kib_s: int) -> int:
        """Follow the workload, move the balloon, settle memory inside the
        guest; returns the footprint the guest now has on the host."""
        anon_share, cache_share, cpu = self.workload.at(t - self.start_at)
        self.cpu_share = cpu
        want = min(int(anon_share * self.max_kib), self.anon_cap_kib)
        self.want_anon = want
        anon = self.anon_res + self.swapped
        if want < anon:                       # frees memory: resident and swapped alike
            freed = anon - want
            from_swap = self.swapped * freed // anon
            self.swapped -= from_swap
            self.anon_res -= freed - from_swap
        elif want > anon:
            self.anon_res += want - anon
            self.minor_faults += (want - anon) // PAGE_KIB
        self._move_balloon(dt * balloon_kib_s)
        self._fit()
        if self.swapped:                      # the workload touches what was swapped out
            back = min(self.swapped,
                       max(PAGE_KIB, int(self.swapped * self.spec.workload.access * dt)))
            self.swapped -= back
            self.anon_res += back
            self.swap_in_kib += back
            self.major_faults += -(-back // PAGE_KIB)
            self._fit()
        want_cache = int(cache_share * self.max_kib)
        if self.cache < want_cache:
            room = dt * GUEST_CACHE_FILL_KIB_S
            grow = min(want_cache - self.cache, room, self.unused_kib)
            self.cache += grow
            if grow < room and self.cache < want_cache:   # squeezed: files are re-read
                missing = want_cache - self.cache
                self.major_faults += int(missing * CACHE_REFAULT_PER_S * dt) // PAGE_KIB
        self.running_seconds += dt
        return min(self.cur, max(self.footprint, self.in_use_kib))

    def _move_balloon(self, step: int) -> None:
        if self.target < self.cur:
            self.cur = max(self.target, self.cur - step, min(self.cur, self.floor_kib))
        elif self.target > self.cur:
            self.cur = min(self.target, self.cur + step)

    def _fit(self) -> None:
        """Make anonymous memory and page cache fit in the balloon: drop page
        cache first, then swap; with swap full the balloon deflates (as a
        virtio balloon with deflate-on-oom does)."""
        over = self.anon_res + self.cache - (self.cur - self.reserved_kib - self.kernel_kib)
        if over <= 0:
            return
        drop = min(over, max(0, self.cache - self.cache_min_kib))
        self.cache -= drop
        over -= drop
        if over <= 0:
            return
        out = min(over, self.anon_res, self.swap_total_kib - self.swapped)
        self.anon_res -= out
        self.swapped += out
        self.swap_out_kib += out
        over -= out
        if over > 0:
            self.cur += over
            self.oom_deflations += 1


@dataclass
class KsmState:
    run: int = 0
    pages_to_scan: int = 100
    sleep_millisecs: int = 20
    merge_across_nodes: int = 1
    full_scans: int = 0
    scan_position: int = 0            # pages scanned in the current pass
    carry: float = 0.0                # fraction of a page left from the last step
    cpu_seconds: float = 0.0


@dataclass
class HostCounters:
    pswpin_kib: int = 0
    pswpout_kib: int = 0
    oom_kills: int = 0
    killed: list[str] = field(default_factory=list)


class Simulation:
    """A host and its guests, stepped one simulated second at a time."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        h = scenario.host
        self.now = 0
        self.total_kib = scenario.host_memory_mib() * MIB
        self.swap_total_kib = h.swap_mib * MIB
        self.swap_free_kib = self.swap_total_kib
        self.reserved_kib = h.reserved_mib * MIB
        self.overhead_kib = h.qemu_overhead_mib * MIB
        self.min_free_kib = h.min_free_mib * MIB
        self.cache_target_kib = h.cache_mib * MIB
        self.balloon_kib_s = h.balloon_mib_per_s * MIB
        self.cpus = h.cpus
        self.other_kib = self.reserved_kib
        self.cache_kib = min(self.cache_target_kib, max(0, self.total_kib - self.reserved_kib))
        self.free_kib = self.total_kib - self.other_kib - self.cache_kib
        if self.free_kib < self.min_free_kib:
            raise ValueError(f"host memory {self.total_kib} KiB does not hold its own "
                             f"reserve {self.reserved_kib} KiB")
        self.saved_kib = 0
        self.ksm = KsmState(run=scenario.ksm.run, pages_to_scan=scenario.ksm.pages_to_scan,
                            sleep_millisecs=scenario.ksm.sleep_millisecs,
                            merge_across_nodes=scenario.ksm.merge_across_nodes)
        self.counters = HostCounters()
        self.guests: list[SimGuest] = []
        index = 0
        for spec in scenario.guests:
            digits = max(2, len(str(spec.count)))
            for n in range(spec.count):
                spread = spec.start_spread * n / spec.count if spec.count > 1 else 0.0
                self.guests.append(SimGuest(spec, f"{spec.name}{n + 1:0{digits}d}", index,
                                            scenario, spec.start + spread))
                index += 1
        self._by_id = {g.id: g for g in self.guests}

    # -- what the hypervisor interface offers -----------------------------------
    def running(self) -> list[SimGuest]:
        return [g for g in self.guests if g.running]

    def guest(self, guest_id: str) -> SimGuest:
        """The running guest ``guest_id``; KeyError when unknown or not running."""
        g = self._by_id.get(guest_id)
        if g is None or not g.running:
            raise KeyError(guest_id)
        return g

    def set_balloon_target(self, guest_id: str, target_kib: int) -> None:
        g = self.guest(guest_id)
        if isinstance(target_kib, bool) or not isinstance(target_kib, int):
            raise TypeError(f"balloon target {target_kib!r} is not a whole number of KiB")
        if not 0 < target_kib <= g.max_kib:
            raise ValueError(f"balloon target {target_kib} KiB is outside 1..{g.max_kib} "
                             f"(the guest's maximum memory)")
        if target_kib == g.target:
            return
        # The direction of a change is against the previous target, so a
        # policy changing its mind while the balloon still moves counts.
        direction = (target_kib > g.target) - (target_kib < g.target)
        g.target = target_kib
        g.balloon.changes += 1
        if g.balloon.last_direction == -direction:
            g.balloon.reversals += 1
        g.balloon.last_direction = direction

    def set_vcpu_tune(self, guest_id: str, quota: int | None, period: int | None) -> None:
        g = self.guest(guest_id)
        if period is not None and not 1000 <= period <= 1000000:
            raise ValueError(f"vcpu period {period} us is outside 1000..1000000")
        if quota is not None and quota != -1 and not 1000 <= quota <= 2**44:
            raise ValueError(f"vcpu quota {quota} us is neither -1 nor at least 1000")
        if quota is not None:
            g.vcpu_quota = quota
        if period is not None:
            g.vcpu_period = period

    def set_io_tune(self, guest_id: str, tunables: list[dict[str, Any]]) -> None:
        g = self.guest(guest_id)
        by_name = {d.name: d for d in g.disks}
        changes = []
        for entry in tunables:
            disk = by_name.get(entry.get("name"))
            if disk is None:
                raise ValueError(f"guest {g.name} has no disk {entry.get('name')!r}")
            limits = entry.get("ioTune") or {}
            unknown = sorted(set(limits) - set(IOTUNE_KEYS))
            if unknown:
                raise ValueError(f"unknown I/O limits {', '.join(unknown)}")
            values = {}
            for key, value in limits.items():
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"I/O limit {key} = {value!r} is not a whole number >= 0")
                values[key] = value
            changes.append((disk, values))
        for disk, values in changes:
            disk.current.update(values)

    def ksm_tune(self, params: dict[str, int]) -> None:
        unknown = sorted(set(params) - set(KSM_TUNE_KEYS))
        if unknown:
            raise ValueError(f"unknown KSM settings {', '.join(unknown)}")
        for key, value in params.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"KSM {key} = {value!r} is not a whole number >= 0")
        if "run" in params and params["run"] not in (0, 1, 2):
            raise ValueError(f"KSM run = {params['run']} is not 0, 1 or 2")
        if "merge_across_nodes" in params:
            if params["merge_across_nodes"] not in (0, 1):
                raise ValueError("KSM merge_across_nodes must be 0 or 1")
            if (params["merge_across_nodes"] != self.ksm.merge_across_nodes
                    and self.ksm_pages()[0]):
                raise ValueError("KSM merge_across_nodes cannot change while pages are "
                                 "shared (the kernel answers EBUSY)")
        for key, value in params.items():
            setattr(self.ksm, key, value)
        if params.get("run") == 2:
            for g in self.guests:
                g.merged = 0
            self._settle_ksm()

    # -- KSM figures ------------------------------------------------------------
    def ksm_pages(self) -> tuple[int, int]:
        """``(pages_shared, pages_sharing)``: KSM pages kept, and the pages
        that point at them (what merging saves)."""
        largest: dict[str, int] = {}
        total = 0
        for g in self.guests:
            if g.merged:
                total += g.merged
                largest[g.spec.image] = max(largest.get(g.spec.image, 0), g.merged)
        shared = sum(largest.values())
        return shared, total - shared

    def _settle_ksm(self) -> None:
        saved = self.ksm_pages()[1] * PAGE_KIB
        self.free_kib += saved - self.saved_kib
        self.saved_kib = saved

    def ksmd_cpu_share(self) -> float:
        """ksmd's share of one CPU at the current settings (0 when stopped)."""
        k = self.ksm
        if k.run != 1 or k.pages_to_scan == 0:
            return 0.0
        work = k.pages_to_scan * KSM_SECONDS_PER_PAGE
        return work / (k.sleep_millisecs / 1000 + work)

    # -- host-side moves of guest RAM -------------------------------------------
    def _set_footprint(self, g: SimGuest, new: int) -> None:
        grow = new - g.footprint
        if grow > 0:
            g.resident += grow
            self.free_kib -= grow
            g.host_minor_faults += grow // PAGE_KIB
        elif grow < 0:
            # The balloon takes free guest pages; the host swapped out the
            # coldest pages, which are those, first.
            gone = -grow
            cold = max(gone, g.footprint - g.in_use_kib)
            from_swap = gone * min(g.hswap, cold) // cold
            g.hswap -= from_swap
            self.swap_free_kib += from_swap
            g.resident -= gone - from_swap
            self.free_kib += gone - from_swap
        g.footprint = new
        limit = min(g.ksm_capacity_pages(), g.resident // PAGE_KIB)
        g.merged = min(g.merged, limit)

    def _start(self, g: SimGuest) -> None:
        g.state = "running"
        self.other_kib += self.overhead_kib
        self.free_kib -= self.overhead_kib
        if g.spec.zero_on_boot:
            self._set_footprint(g, g.cur)

    def _kill(self, g: SimGuest) -> None:
        """The host's OOM killer ends the guest's qemu."""
        self.free_kib += g.resident
        self.swap_free_kib += g.hswap
        self.other_kib -= self.overhead_kib
        self.free_kib += self.overhead_kib
        g.resident = g.hswap = g.footprint = g.merged = 0
        g.state = "killed"
        self.counters.oom_kills += 1
        self.counters.killed.append(g.name)
        self._settle_ksm()

    # -- one step ---------------------------------------------------------------
    def step(self) -> None:
        """Advance the host and every guest by one simulated second."""
        dt = TICK
        t = self.now
        for g in self.guests:
            if g.state == "new" and g.start_at <= t:
                self._start(g)
        running = self.running()
        for g in running:
            self._set_footprint(g, g.advance(t, dt, self.balloon_kib_s))
        for g in running:                     # guests touch what the host swapped out
            hot = g.hswap - min(g.hswap, g.footprint - g.in_use_kib)
            if hot > 0:
                back = min(hot, max(PAGE_KIB, int(hot * g.spec.workload.access * dt)))
                g.hswap -= back
                g.resident += back
                self.swap_free_kib += back
                self.free_kib -= back
                self.counters.pswpin_kib += back
                g.host_major_faults += -(-back // PAGE_KIB)
        self._step_ksm(dt, running)
        self._settle_ksm()
        self._balance(dt)
        for g in self.running():
            per_vcpu = g.cpu_share
            if g.vcpu_quota > 0 and g.vcpu_period > 0:
                per_vcpu = min(per_vcpu, g.vcpu_quota / g.vcpu_period)
            g.cpu_seconds += per_vcpu * g.spec.vcpus * dt
        self.now += dt

    def _step_ksm(self, dt: int, running: list[SimGuest]) -> None:
        k = self.ksm
        for g in running:                     # writes break shared pages
            if g.merged:
                g.merged -= int(g.merged * KSM_COW_BREAK_PER_S * dt)
        if k.run != 1 or k.pages_to_scan == 0:
            return
        share = self.ksmd_cpu_share()
        k.cpu_seconds += share * dt
        rate = k.pages_to_scan / (k.sleep_millisecs / 1000 + k.pages_to_scan * KSM_SECONDS_PER_PAGE)
        scanned = rate * dt + k.carry
        pages = int(scanned)
        k.carry = scanned - pages
        total = sum(g.resident // PAGE_KIB for g in running)
        if not total:
            return
        k.scan_position += pages
        k.full_scans += k.scan_position // total
        k.scan_position %= total
        members: dict[str, int] = {}
        for g in running:
            members[g.spec.image] = members.get(g.spec.image, 0) + 1
        rooms = []
        for g in running:
            room = 0
            if members[g.spec.image] > 1:
                room = max(0, min(g.ksm_capacity_pages(), g.resident // PAGE_KIB) - g.merged)
            rooms.append(room)
        mergeable = sum(rooms)
        if not mergeable:
            return
        merges = min(mergeable, pages * mergeable // total)
        for g, room in zip(running, rooms):
            g.merged += merges * room // mergeable

    def _balance(self, dt: int) -> None:
        """Keep free memory above the watermark: reclaim host page cache,
        then swap guest RAM out, and as a last resort kill the biggest guest."""
        low = self.min_free_kib
        if self.free_kib < low:
            need = low + low // 2 - self.free_kib
            take = min(need, max(0, self.cache_kib - HOST_CACHE_FLOOR_KIB))
            self.cache_kib -= take
            self.free_kib += take
            need -= take
            if need > 0:
                self._swap_out(need)
        while self.free_kib < 0:
            victims = self.running()
            if not victims:
                raise SimInvariantError("host memory exhausted with no guest to kill")
            self._kill(max(victims, key=lambda g: g.resident))
        high = low + low // 2
        if self.cache_kib < self.cache_target_kib and self.free_kib > high:
            grow = min(self.cache_target_kib - self.cache_kib, HOST_CACHE_FILL_KIB_S * dt,
                       self.free_kib - high)
            self.cache_kib += grow
            self.free_kib -= grow

    def _swap_out(self, need: int) -> None:
        """Swap guest RAM out as the host's LRU would: the guests' free
        (touched, unused) pages first, then the pages they use.  Pages
        merged by KSM stay."""
        guests = self.running()
        for cold_first in (True, False):
            if need <= 0 or self.swap_free_kib <= 0:
                return
            room = []
            for g in guests:
                unmerged = g.resident - g.merged * PAGE_KIB
                if cold_first:
                    cold = g.footprint - g.in_use_kib
                    unmerged = min(unmerged, max(0, cold - g.hswap))
                room.append(max(0, unmerged))
            need -= self._swap_share(guests, room, min(need, self.swap_free_kib))

    def _swap_share(self, guests: list[SimGuest], room: list[int], want: int) -> int:
        """Swap out ``want`` KiB shared in proportion to ``room``; returns how much."""
        total = sum(room)
        amount = min(want, total)
        if amount <= 0:
            return 0
        outs = [amount * r // total for r in room]
        left = amount - sum(outs)
        for i, r in enumerate(room):
            if left <= 0:
                break
            extra = min(left, r - outs[i])
            outs[i] += extra
            left -= extra
        for g, out in zip(guests, outs):
            g.resident -= out
            g.hswap += out
        self.free_kib += amount
        self.swap_free_kib -= amount
        self.counters.pswpout_kib += amount
        return amount

    # -- the books ----------------------------------------------------------------
    def host_mem_free_kib(self) -> int:
        """What MOM calls the host's mem_free: MemFree + Buffers + Cached."""
        return self.free_kib + self.cache_kib

    def check(self) -> None:
        """Raise SimInvariantError unless every KiB is in exactly one place."""
        problems = []

        def need(ok: bool, what: str) -> None:
            if not ok:
                problems.append(what)

        resident = 0
        swapped = 0
        for g in self.guests:
            label = f"guest {g.name}"
            if not g.running:
                need(g.resident == g.hswap == g.footprint == g.merged == 0,
                     f"{label} is {g.state} but holds host memory")
                continue
            resident += g.resident
            swapped += g.hswap
            need(g.reserved_kib + g.kernel_kib + g.anon_res + g.cache + g.unused_kib == g.cur,
                 f"{label}: balloon_cur does not add up")
            need(g.unused_kib >= 0, f"{label}: free memory {g.unused_kib} < 0")
            need(g.anon_res >= 0 and g.cache >= 0 and g.swapped >= 0,
                 f"{label}: negative memory")
            need(g.anon_res + g.swapped == g.want_anon,
                 f"{label}: anonymous memory {g.anon_res} + {g.swapped} != {g.want_anon}")
            need(g.swapped <= g.swap_total_kib, f"{label}: swap overfull")
            need(0 < g.cur <= g.max_kib, f"{label}: balloon_cur {g.cur} out of range")
            need(g.in_use_kib <= g.footprint <= g.cur,
                 f"{label}: footprint {g.footprint} not within {g.in_use_kib}..{g.cur}")
            need(g.resident + g.hswap == g.footprint,
                 f"{label}: resident {g.resident} + host-swapped {g.hswap} != footprint")
            need(g.resident >= 0 and g.hswap >= 0, f"{label}: negative host memory")
            need(0 <= g.merged * PAGE_KIB <= g.resident, f"{label}: merged pages not resident")
            need(g.merged <= g.ksm_capacity_pages(), f"{label}: more merged than alike")
        saved = self.ksm_pages()[1] * PAGE_KIB
        need(saved == self.saved_kib, f"KSM savings {self.saved_kib} != {saved}")
        need(self.total_kib == self.free_kib + self.cache_kib + self.other_kib + resident - saved,
             f"host memory does not add up: total {self.total_kib} != free {self.free_kib} + "
             f"cache {self.cache_kib} + own {self.other_kib} + guests {resident} - KSM {saved}")
        need(self.swap_total_kib == self.swap_free_kib + swapped,
             f"host swap does not add up: {self.swap_total_kib} != free {self.swap_free_kib} "
             f"+ guests {swapped}")
        need(self.free_kib >= 0 and self.cache_kib >= 0 and self.swap_free_kib >= 0,
             "host free memory, cache or swap below 0")
        expected_own = self.reserved_kib + self.overhead_kib * len(self.running())
        need(self.other_kib == expected_own, "host's own use does not match running guests")
        if problems:
            raise SimInvariantError(f"t={self.now}: " + "; ".join(problems))
