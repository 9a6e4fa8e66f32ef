"""HostKSM: Kernel Samepage Merging state, ksmd's CPU use, qemu's size.

- ``ksm_*``: the files of /sys/kernel/mm/ksm (``ksm_run`` is ``run`` ...);
  ``ksm_merge_across_nodes`` only exists on NUMA kernels, so it is optional.
- ``ksmd_cpu_usage``: percent of one CPU the ``ksmd`` kernel thread used
  since the previous sample (0 on the first), as an int.
- ``ksm_shareable``: total virtual size in KiB of the qemu processes, i.e.
  how much memory KSM could possibly merge.

Processes are found by reading ``/proc/<pid>/stat`` (one read per process
per sample, no ``ps``/``pgrep``); its ``vsize`` is the same number as
``VmSize`` of /proc/<pid>/status, in bytes instead of KiB.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from mom import facts
from mom.collectors._procfs import PidStat, iter_pids, read_pid_stat
from mom.collectors.base import CollectionError, Collector, CollectorContext
from mom.reporting import Conditions

log = logging.getLogger(__name__)

KSM_FILES = facts.KSM_FILES          # MOM field -> file under /sys/kernel/mm/ksm
_OPTIONAL_KSM = facts.KSM_OPTIONAL


def parse_ksm(files: Mapping[str, str]) -> dict[str, int]:
    """MOM's ``ksm_*`` fields from ``{file name: file text}`` of the ksm dir.

    Files that are absent from ``files`` are absent from the result.
    """
    values: dict[str, int] = {}
    for field_name, file_name in KSM_FILES.items():
        text = files.get(file_name)
        if text is not None:
            values[field_name] = int(text.strip())
    return values


def cpu_percent(ticks_before: int, ticks_after: int, seconds: float,
                clk_tck: int) -> int:
    """Percent of one CPU used: ``ticks`` of utime+stime over wall ``seconds``."""
    if seconds <= 0 or ticks_after < ticks_before:
        return 0
    return round((ticks_after - ticks_before) / clk_tck / seconds * 100)


def is_qemu(stat: PidStat) -> bool:
    """A qemu process (``qemu-kvm``, ``qemu-system-x86`` ...), not a thread."""
    return stat.comm.startswith("qemu") and not stat.is_kernel_thread


def is_ksmd(stat: PidStat) -> bool:
    return stat.comm == "ksmd" and stat.is_kernel_thread


def qemu_vsize_kib(stats: Iterable[PidStat]) -> int:
    """Total virtual size of the qemu processes among ``stats``, in KiB."""
    return sum(s.vsize for s in stats if is_qemu(s)) // 1024


class HostKSM(Collector):
    """KSM settings and counters; needs /sys/kernel/mm/ksm."""

    kind = "host"
    fields = facts.fields("host", "ksm")
    optional_fields = _OPTIONAL_KSM

    def __init__(self, ctx: CollectorContext, *,
                 clock: Callable[[], float] | None = None,
                 clk_tck: int | None = None) -> None:
        super().__init__(ctx)
        self._clock = clock or ctx.clock
        self._clk_tck = clk_tck or os.sysconf("SC_CLK_TCK")
        self._ksmd_pid: int | None = None
        # (ticks, clock) of the previous sample of ksmd
        self._last_ksmd: tuple[int, float] | None = None
        self._problems = Conditions(log)

    @property
    def ksm_dir(self) -> str:
        return os.path.join(self.ctx.sys_root, "kernel", "mm", "ksm")

    def _read_ksm_files(self) -> dict[str, str]:
        ksm_dir = self.ksm_dir
        if not os.path.isdir(ksm_dir):
            raise CollectionError(
                f"KSM is not available: {ksm_dir} does not exist "
                "(kernel built without CONFIG_KSM?)")
        files: dict[str, str] = {}
        for field_name, file_name in KSM_FILES.items():
            path = os.path.join(ksm_dir, file_name)
            try:
                with open(path, encoding="ascii") as f:
                    files[file_name] = f.read()
            except OSError as e:
                if field_name not in _OPTIONAL_KSM:
                    raise CollectionError(
                        f"cannot read {path}: {e.strerror or e}") from e
        return files

    def _scan(self) -> tuple[int, PidStat | None]:
        """One pass over /proc: qemu's total vsize (KiB) and ksmd's stat."""
        proc_root = self.ctx.proc_root
        stats: list[PidStat] = []
        ksmd: PidStat | None = None
        for pid in iter_pids(proc_root):
            stat = read_pid_stat(proc_root, pid)
            if stat is None:
                continue
            stats.append(stat)
            if is_ksmd(stat) and (ksmd is None or pid == self._ksmd_pid):
                ksmd = stat
        return qemu_vsize_kib(stats), ksmd

    def _ksmd_usage(self, ksmd: PidStat | None) -> int:
        if ksmd is None:
            self._problems.fail("ksmd", f"no ksmd kernel thread found under "
                                f"{self.ctx.proc_root}; reporting ksmd_cpu_usage 0")
            self._ksmd_pid = self._last_ksmd = None
            return 0
        self._problems.ok("ksmd", "ksmd found under %s again", self.ctx.proc_root)
        now = self._clock()
        ticks = ksmd.utime + ksmd.stime
        last = self._last_ksmd if ksmd.pid == self._ksmd_pid else None
        self._ksmd_pid, self._last_ksmd = ksmd.pid, (ticks, now)
        if last is None:
            return 0
        return cpu_percent(last[0], ticks, now - last[1], self._clk_tck)

    def collect(self) -> dict[str, Any]:
        files = self._read_ksm_files()
        try:
            sample: dict[str, Any] = parse_ksm(files)
        except ValueError as e:
            raise CollectionError(f"unexpected content in {self.ksm_dir}: {e}") from e
        shareable, ksmd = self._scan()
        sample["ksm_shareable"] = shareable
        sample["ksmd_cpu_usage"] = self._ksmd_usage(ksmd)
        return sample
