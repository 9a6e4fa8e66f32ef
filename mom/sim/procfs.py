"""The simulated host as /proc and /sys text, in the kernel's formats.

MOM's host collectors read a real host's files; pointed at a directory
this module fills (``[host] proc-root`` / ``sys-root``), they read the
simulated host with the same parsers:

- HostMemory: ``proc/meminfo`` (MemTotal, MemFree, Buffers, Cached,
  AnonPages, SwapTotal, SwapFree) and ``proc/vmstat`` (pswpin, pswpout);
- HostKSM: ``sys/kernel/mm/ksm/*`` and every ``proc/<pid>/stat`` (ksmd's
  CPU ticks, qemu's vsize);
- HostCpu: ``sys/devices/system/cpu/online``;
- GuestQemuProc: ``proc/<pid>/stat`` and ``proc/<pid>/status`` of qemu.

``proc/stat`` is written too, as a host has it.  The text functions are
pure; :class:`ProcTree` writes only files whose text changed.
"""
from __future__ import annotations

import os
import shutil

from mom.sim.model import KSMD_PID, PAGE_KIB, SimGuest, Simulation

# Kernel threads carry PF_KTHREAD (0x00200000); ksmd also PF_FREEZER_SKIP-like bits.
_KTHREAD_FLAGS = 0x00208040
_USER_FLAGS = 0x00400100
BOOT_TIME = 1700000000            # a fixed btime: no wall clock anywhere
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _meminfo_line(key: str, kib: int) -> str:
    return f"{key + ':':<16}{kib:>8} kB\n"


def meminfo_text(sim: Simulation) -> str:
    """/proc/meminfo with the lines of a current kernel, in its order."""
    running = sim.running()
    guest_ram = sum(g.resident for g in running) - sim.saved_kib
    buffers = sim.cache_kib // 20
    cached = sim.cache_kib - buffers
    own_anon = sim.reserved_kib // 4
    anon = guest_ram + own_anon
    slab = sim.reserved_kib // 8
    unreclaim = slab // 3
    swap_free = sim.swap_free_kib
    lines = [
        ("MemTotal", sim.total_kib), ("MemFree", sim.free_kib),
        ("MemAvailable", sim.free_kib + sim.cache_kib + slab - unreclaim),
        ("Buffers", buffers), ("Cached", cached), ("SwapCached", 0),
        ("Active", anon * 2 // 3 + sim.cache_kib // 2),
        ("Inactive", anon - anon * 2 // 3 + sim.cache_kib - sim.cache_kib // 2),
        ("Active(anon)", anon * 2 // 3), ("Inactive(anon)", anon - anon * 2 // 3),
        ("Active(file)", sim.cache_kib // 2), ("Inactive(file)", sim.cache_kib - sim.cache_kib // 2),
        ("Unevictable", 0), ("Mlocked", 0),
        ("SwapTotal", sim.swap_total_kib), ("SwapFree", swap_free),
        ("Zswap", 0), ("Zswapped", 0), ("Dirty", 0), ("Writeback", 0),
        ("AnonPages", anon), ("Mapped", sim.cache_kib // 8), ("Shmem", 0),
        ("KReclaimable", slab - unreclaim), ("Slab", slab),
        ("SReclaimable", slab - unreclaim), ("SUnreclaim", unreclaim),
        ("KernelStack", 16 * 1024), ("PageTables", guest_ram // 512 + 8 * 1024),
        ("SecPageTables", 0), ("NFS_Unstable", 0), ("Bounce", 0), ("WritebackTmp", 0),
        ("CommitLimit", sim.total_kib // 2 + sim.swap_total_kib),
        ("Committed_AS", sum(g.max_kib for g in running) + sim.reserved_kib),
        ("VmallocTotal", 34359738367), ("VmallocUsed", 65536), ("VmallocChunk", 0),
        ("Percpu", 1024 * sim.cpus), ("AnonHugePages", 0), ("ShmemHugePages", 0),
        ("ShmemPmdMapped", 0), ("FileHugePages", 0), ("FilePmdMapped", 0),
    ]
    text = "".join(_meminfo_line(k, v) for k, v in lines)
    text += "".join(f"{k + ':':<16}{0:>8}\n" for k in
                    ("HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp"))
    text += _meminfo_line("Hugepagesize", 2048) + _meminfo_line("Hugetlb", 0)
    return text


def vmstat_text(sim: Simulation) -> str:
    """/proc/vmstat: ``name value`` lines; pswpin/pswpout count pages."""
    running = sim.running()
    c = sim.counters
    rows = [
        ("nr_free_pages", sim.free_kib // PAGE_KIB),
        ("nr_inactive_anon", sum(g.resident for g in running) // PAGE_KIB // 3),
        ("nr_active_anon", sum(g.resident for g in running) // PAGE_KIB * 2 // 3),
        ("nr_inactive_file", sim.cache_kib // PAGE_KIB // 2),
        ("nr_active_file", sim.cache_kib // PAGE_KIB - sim.cache_kib // PAGE_KIB // 2),
        ("nr_anon_pages", (sum(g.resident for g in running) - sim.saved_kib) // PAGE_KIB),
        ("nr_file_pages", sim.cache_kib // PAGE_KIB),
        ("pgpgin", c.pswpin_kib), ("pgpgout", c.pswpout_kib),
        ("pswpin", c.pswpin_kib // PAGE_KIB), ("pswpout", c.pswpout_kib // PAGE_KIB),
        ("pgfault", sum(g.host_minor_faults + g.host_major_faults for g in sim.guests)),
        ("pgmajfault", sum(g.host_major_faults for g in sim.guests)),
        ("oom_kill", c.oom_kills),
    ]
    return "".join(f"{k} {v}\n" for k, v in rows)


def _ticks(seconds: float) -> int:
    return int(seconds * CLK_TCK)


def _cpu_line(name: str, user: int, system: int, idle: int) -> str:
    # user nice system idle iowait irq softirq steal guest guest_nice;
    # guest time is also counted in user, as the kernel does.
    return f"{name} {user} 0 {system} {idle} 0 0 0 0 {user} 0"


def _nth_share(total: int, parts: int, n: int) -> int:
    """Part ``n`` of ``total`` split into ``parts`` whole shares."""
    return total // parts + (1 if n < total % parts else 0)


def stat_text(sim: Simulation) -> str:
    """/proc/stat: CPU time in clock ticks since the simulated boot."""
    user = _ticks(sum(g.cpu_seconds for g in sim.guests))
    system = _ticks(sim.ksm.cpu_seconds) + _ticks(sim.now * 0.01 * sim.cpus)
    idle = max(0, _ticks(sim.now * sim.cpus) - user - system)
    lines = [_cpu_line("cpu ", user, system, idle)]
    for n in range(sim.cpus):
        lines.append(_cpu_line(f"cpu{n}", _nth_share(user, sim.cpus, n),
                               _nth_share(system, sim.cpus, n), _nth_share(idle, sim.cpus, n)))
    lines += [f"intr {_ticks(sim.now) * sim.cpus * 10}",
              f"ctxt {_ticks(sim.now) * sim.cpus * 50}",
              f"btime {BOOT_TIME}", f"processes {1000 + len(sim.guests)}",
              f"procs_running {1 + sum(1 for g in sim.running() if g.cpu_share > 0.5)}",
              "procs_blocked 0", "softirq 0 0 0 0 0 0 0 0 0 0 0"]
    return "\n".join(lines) + "\n"


def _pid_stat(pid: int, comm: str, state: str, ppid: int, flags: int, minflt: int,
              majflt: int, utime: int, stime: int, threads: int, start: int,
              vsize: int, rss_pages: int) -> str:
    """One /proc/<pid>/stat line: the 52 fields of proc(5)."""
    fields = [state, ppid, pid if ppid != 2 else 0, pid if ppid != 2 else 0, 0, -1, flags,
              minflt, 0, majflt, 0, utime, stime, 0, 0,
              20 if ppid != 2 else 25, 0 if ppid != 2 else 5, threads, 0, start,
              vsize, rss_pages, 18446744073709551615]
    fields += [0] * (52 - 2 - len(fields))
    return f"{pid} ({comm}) " + " ".join(str(f) for f in fields) + "\n"


def ksmd_stat_text(sim: Simulation) -> str:
    return _pid_stat(KSMD_PID, "ksmd", "S", 2, _KTHREAD_FLAGS, 0, 0, 0,
                     _ticks(sim.ksm.cpu_seconds), 1, 26, 0, 0)


def qemu_vsize_kib(sim: Simulation, g: SimGuest) -> int:
    """qemu's virtual size: the guest's maximum RAM plus qemu's own mappings."""
    return g.max_kib + sim.overhead_kib * 8


def qemu_rss_kib(sim: Simulation, g: SimGuest) -> int:
    return g.resident + sim.overhead_kib


def qemu_stat_text(sim: Simulation, g: SimGuest) -> str:
    return _pid_stat(g.pid, "qemu-kvm", "S", 1, _USER_FLAGS, g.host_minor_faults,
                     g.host_major_faults, _ticks(g.cpu_seconds), 0, g.spec.vcpus + 4,
                     _ticks(g.start_at) + 100, qemu_vsize_kib(sim, g) * 1024,
                     qemu_rss_kib(sim, g) // PAGE_KIB)


def qemu_status_text(sim: Simulation, g: SimGuest) -> str:
    rss = qemu_rss_kib(sim, g)
    vsize = qemu_vsize_kib(sim, g)
    rows = [("Name", "qemu-kvm"), ("Umask", "0027"), ("State", "S (sleeping)"),
            ("Tgid", g.pid), ("Ngid", 0), ("Pid", g.pid), ("PPid", 1), ("TracerPid", 0),
            ("VmPeak", f"{vsize:8d} kB"), ("VmSize", f"{vsize:8d} kB"),
            ("VmHWM", f"{g.footprint + sim.overhead_kib:8d} kB"), ("VmRSS", f"{rss:8d} kB"),
            ("RssAnon", f"{rss:8d} kB"), ("RssFile", f"{0:8d} kB"),
            ("VmSwap", f"{g.hswap:8d} kB"), ("Threads", g.spec.vcpus + 4)]
    return "".join(f"{k}:\t{v}\n" for k, v in rows)


def ksm_files(sim: Simulation) -> dict[str, str]:
    """The files of /sys/kernel/mm/ksm, one number and a newline each."""
    k = sim.ksm
    shared, sharing = sim.ksm_pages()
    running = sim.running()
    total = sum(g.resident // PAGE_KIB for g in running)
    unshared = 0
    if k.full_scans and k.run == 1:
        unshared = max(0, total - sum(g.ksm_capacity_pages() for g in running))
    values = {"run": k.run, "pages_to_scan": k.pages_to_scan,
              "sleep_millisecs": k.sleep_millisecs, "pages_shared": shared,
              "pages_sharing": sharing, "pages_unshared": unshared, "pages_volatile": 0,
              "full_scans": k.full_scans, "merge_across_nodes": k.merge_across_nodes,
              "max_page_sharing": 256, "stable_node_chains": 0, "stable_node_dups": 0,
              "use_zero_pages": 0}
    return {name: f"{value}\n" for name, value in values.items()}


class ProcTree:
    """A directory with ``proc/`` and ``sys/`` that mirrors a Simulation."""

    def __init__(self, root: str, sim: Simulation) -> None:
        self.sim = sim
        self.proc_root = os.path.join(root, "proc")
        self.sys_root = os.path.join(root, "sys")
        self._written: dict[str, str] = {}
        self._pids: set[int] = set()

    def _write(self, path: str, text: str) -> None:
        if self._written.get(path) == text:
            return
        with open(path, "w", encoding="ascii") as f:
            f.write(text)
        self._written[path] = text

    def render(self) -> None:
        """Bring every file up to date with the simulation."""
        sim = self.sim
        ksm_dir = os.path.join(self.sys_root, "kernel", "mm", "ksm")
        cpu_dir = os.path.join(self.sys_root, "devices", "system", "cpu")
        for d in (self.proc_root, ksm_dir, cpu_dir):
            os.makedirs(d, exist_ok=True)
        self._write(os.path.join(self.proc_root, "meminfo"), meminfo_text(sim))
        self._write(os.path.join(self.proc_root, "vmstat"), vmstat_text(sim))
        self._write(os.path.join(self.proc_root, "stat"), stat_text(sim))
        for name, text in ksm_files(sim).items():
            self._write(os.path.join(ksm_dir, name), text)
        self._write(os.path.join(cpu_dir, "online"),
                    "0\n" if sim.cpus == 1 else f"0-{sim.cpus - 1}\n")
        live = {KSMD_PID}
        self._pid_file(KSMD_PID, "stat", ksmd_stat_text(sim))
        for g in sim.running():
            live.add(g.pid)
            self._pid_file(g.pid, "stat", qemu_stat_text(sim, g))
            self._pid_file(g.pid, "status", qemu_status_text(sim, g))
        for pid in sorted(self._pids - live):
            path = os.path.join(self.proc_root, str(pid))
            shutil.rmtree(path, ignore_errors=True)
            for name in ("stat", "status"):
                self._written.pop(os.path.join(path, name), None)
        self._pids = live

    def _pid_file(self, pid: int, name: str, text: str) -> None:
        path = os.path.join(self.proc_root, str(pid))
        if pid not in self._pids:
            os.makedirs(path, exist_ok=True)
        self._write(os.path.join(path, name), text)
