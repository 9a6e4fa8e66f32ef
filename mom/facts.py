"""Facts MOM knows about hosts and guests, declared once and read everywhere.

The statistics (name, entity, the section that carries them, unit and
meaning), the KSM knobs (policy control, ``ksm_tune`` key, sysfs file) and
the controls (which statistics a control needs before MOM may apply it).
Collectors take their ``fields`` from here, hypervisor back-ends their
section layout, controllers their needs, the plotter and ``vdsm_plugin``
their names; nothing else keeps its own copy.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Statistic:
    name: str
    entity: str          # "host" or "guest"
    section: str         # host: collector group; guest: hypervisor snapshot section
    unit: str
    meaning: str


def _stats(entity: str, section: str, unit: str,
           rows: tuple[tuple[str, str], ...]) -> tuple[Statistic, ...]:
    return tuple(Statistic(name, entity, section, unit, meaning) for name, meaning in rows)


KIB, COUNT, PAGES = "KiB", "count", "pages"

STATISTICS: tuple[Statistic, ...] = (
    # -- host: /proc/meminfo and /proc/vmstat --------------------------------
    *_stats("host", "memory", KIB, (
        ("mem_available", "MemTotal: the host's memory"),
        ("mem_unused", "MemFree: memory nobody uses"),
        ("mem_free", "MemFree + Buffers + Cached: memory the host can hand out"),
        ("anon_pages", "AnonPages: anonymous memory in use"),
        ("swap_total", "SwapTotal"),
        ("swap_usage", "SwapTotal - SwapFree"),
    )),
    *_stats("host", "memory", PAGES, (
        ("swap_in", "pages swapped in since the previous sample"),
        ("swap_out", "pages swapped out since the previous sample"),
    )),
    # -- host: /sys/kernel/mm/ksm and ksmd --------------------------------------
    *_stats("host", "ksm", COUNT, (
        ("ksm_run", "KSM mode: 0 stopped, 1 running, 2 unmerge all"),
        ("ksm_pages_to_scan", "pages ksmd scans per wake-up"),
        ("ksm_sleep_millisecs", "ms ksmd sleeps between scans"),
        ("ksm_merge_across_nodes", "1 when KSM merges across NUMA nodes"),
    )),
    *_stats("host", "ksm", PAGES, (
        ("ksm_pages_shared", "shared pages in use"),
        ("ksm_pages_sharing", "pages sharing them (the saving)"),
        ("ksm_pages_unshared", "unique pages scanned again and again"),
        ("ksm_pages_volatile", "pages changing too fast to merge"),
        ("ksm_full_scans", "full scans of mergeable memory"),
    )),
    Statistic("ksmd_cpu_usage", "host", "ksm", "percent",
              "percent of one CPU ksmd used since the previous sample"),
    Statistic("ksm_shareable", "host", "ksm", KIB,
              "total virtual size of the qemu processes (what KSM could merge)"),
    Statistic("cpu_count", "host", "cpu", COUNT, "online CPUs"),
    Statistic("time", "host", "time", "s", "wall-clock time of the sample"),
    # -- guest: the hypervisor snapshot's sections -----------------------------
    *_stats("guest", "memory", KIB, (
        ("mem_available", "memory the guest kernel sees (MemTotal)"),
        ("mem_unused", "memory the guest does not use at all"),
        ("mem_free", "memory the guest could give back (free + reclaimable)"),
        ("swap_total", "guest swap size (guest agent only)"),
        ("swap_usage", "guest swap in use (guest agent only)"),
    )),
    *_stats("guest", "memory", COUNT, (
        ("major_fault", "major page faults (cumulative)"),
        ("minor_fault", "minor page faults (cumulative)"),
        ("swap_in", "memory swapped in (cumulative, KiB or pages)"),
        ("swap_out", "memory swapped out (cumulative, KiB or pages)"),
    )),
    *_stats("guest", "balloon", KIB, (
        ("balloon_cur", "current balloon size: memory the guest has"),
        ("balloon_max", "the most the balloon may give the guest"),
        ("balloon_min", "the least the guest must keep"),
    )),
    Statistic("vcpu_quota", "guest", "cputune", "us", "CFS quota per period, -1 none"),
    Statistic("vcpu_period", "guest", "cputune", "us", "CFS period"),
    Statistic("vcpu_user_limit", "guest", "cputune", "percent", "CPU limit set by the user"),
    Statistic("vcpu_count", "guest", "cputune", COUNT, "vCPUs"),
    Statistic("io_tune", "guest", "iotune", "devices", "per-disk I/O limits"),
    *_stats("guest", "qemu", KIB, (("rss", "resident size of the qemu process"),)),
    *_stats("guest", "qemu", COUNT, (
        ("host_minor_faults", "minor faults of the qemu process"),
        ("host_major_faults", "major faults of the qemu process"),
    )),
)


def statistic(entity: str, name: str) -> Statistic | None:
    """The declared statistic ``name`` of ``entity`` (host/guest), if any."""
    return _BY_NAME.get((entity, name))


def fields(entity: str, section: str | None = None) -> frozenset[str]:
    """Names of the declared statistics of an entity (and section)."""
    return frozenset(s.name for s in STATISTICS
                     if s.entity == entity and (section is None or s.section == section))


_BY_NAME = {(s.entity, s.name): s for s in STATISTICS}

# -- KSM ---------------------------------------------------------------------


@dataclass(frozen=True)
class KsmKnob:
    control: str     # the host control a policy sets, and the host statistic
    key: str         # the ksm_tune() key, also the file under /sys/kernel/mm/ksm


KSM_KNOBS: tuple[KsmKnob, ...] = (
    KsmKnob("ksm_run", "run"),
    KsmKnob("ksm_pages_to_scan", "pages_to_scan"),
    KsmKnob("ksm_sleep_millisecs", "sleep_millisecs"),
    KsmKnob("ksm_merge_across_nodes", "merge_across_nodes"),
)
KSM_TUNE_KEYS: tuple[str, ...] = tuple(k.key for k in KSM_KNOBS)
#: host statistic -> file under /sys/kernel/mm/ksm (knobs and counters)
KSM_FILES: dict[str, str] = {
    **{k.control: k.key for k in KSM_KNOBS},
    **{name: name.removeprefix("ksm_") for name in (
        "ksm_pages_shared", "ksm_pages_sharing", "ksm_pages_unshared",
        "ksm_pages_volatile", "ksm_full_scans")},
}
#: Only NUMA kernels have this file.
KSM_OPTIONAL = frozenset({"ksm_merge_across_nodes"})

# -- I/O limits ----------------------------------------------------------------

IOTUNE_KEYS: tuple[str, ...] = ("total_bytes_sec", "read_bytes_sec", "write_bytes_sec",
                                "total_iops_sec", "read_iops_sec", "write_iops_sec")

# -- controls ------------------------------------------------------------------

#: guest control -> the guest statistics it needs.  A guest whose data for a
#: control is missing (a required collector failed) gets no such control,
#: while its other controls still apply.
GUEST_CONTROL_NEEDS: dict[str, frozenset[str]] = {
    "balloon_target": fields("guest", "balloon") | fields("guest", "memory"),
    "vcpu_quota": fields("guest", "cputune"),
    "vcpu_period": fields("guest", "cputune"),
    "io_tune": fields("guest", "iotune"),
}
