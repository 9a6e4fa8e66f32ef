"""A fake host for thread-mode tests: the /proc and /sys files MOM's host
collectors read (HostMemory, HostKSM, HostCpu), under a temporary root.

MOM reads them through ``[host] proc-root`` / ``sys-root``.  KSM settings
that VDSM's supervdsm applies land in the fake sysfs (see
:meth:`FakeHost.attach`), so MOM reads back what it set, as on a real host.
"""
from __future__ import annotations

import os
import threading
from typing import Any

KSM_DEFAULTS = {"run": 0, "pages_to_scan": 100, "sleep_millisecs": 20,
                "merge_across_nodes": 1, "pages_shared": 0, "pages_sharing": 0,
                "pages_unshared": 0, "pages_volatile": 0, "full_scans": 0}


class FakeHost:
    def __init__(self, root: str, *, mem_total: int = 16 * 1024 * 1024,
                 mem_free: int = 12 * 1024 * 1024, cpus: int = 1) -> None:
        self.proc_root = os.path.join(root, "proc")
        self.sys_root = os.path.join(root, "sys")
        self.ksm_dir = os.path.join(self.sys_root, "kernel", "mm", "ksm")
        os.makedirs(self.proc_root, exist_ok=True)
        os.makedirs(self.ksm_dir, exist_ok=True)
        os.makedirs(os.path.join(self.sys_root, "devices", "system", "cpu"), exist_ok=True)
        self._lock = threading.Lock()
        self.set_memory(mem_total, mem_free)
        self.set_cpus(cpus)
        self.set_ksm(**KSM_DEFAULTS)
        self._write(os.path.join(self.proc_root, "vmstat"),
                    "nr_free_pages 1000\npswpin 0\npswpout 0\n")
        # ksmd, so that HostKSM can measure its CPU use
        os.makedirs(os.path.join(self.proc_root, "37"), exist_ok=True)
        self._write(os.path.join(self.proc_root, "37", "stat"),
                    "37 (ksmd) S 2 0 0 0 -1 2097216 0 0 0 0 0 0 0 0 25 5 1 0 26 0 0 "
                    "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 17 0 0 0 0 "
                    "0 0 0 0 0 0 0 0 0 0\n")

    @staticmethod
    def _write(path: str, text: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="ascii") as handle:
            handle.write(text)
        os.replace(tmp, path)          # readers never see a half-written file

    def set_memory(self, total_kib: int, free_kib: int) -> None:
        """MemTotal and MemFree (Buffers and Cached 0: mem_free == MemFree)."""
        self.mem_total, self.mem_free = total_kib, free_kib
        self._write(os.path.join(self.proc_root, "meminfo"), "".join(
            f"{key}: {value:>12} kB\n" for key, value in (
                ("MemTotal", total_kib), ("MemFree", free_kib), ("MemAvailable", free_kib),
                ("Buffers", 0), ("Cached", 0), ("SwapCached", 0),
                ("AnonPages", max(0, total_kib - free_kib)),
                ("SwapTotal", 0), ("SwapFree", 0))))

    def set_cpus(self, count: int) -> None:
        self.cpus = count
        online = "0" if count == 1 else f"0-{count - 1}"
        self._write(os.path.join(self.sys_root, "devices", "system", "cpu", "online"),
                    online + "\n")

    def set_ksm(self, **values: int) -> None:
        with self._lock:
            for name, value in values.items():
                self._write(os.path.join(self.ksm_dir, name), f"{int(value)}\n")

    def ksm(self, name: str) -> int:
        with open(os.path.join(self.ksm_dir, name), encoding="ascii") as handle:
            return int(handle.read())

    def attach(self, fake_vdsm: Any) -> None:
        """Make supervdsm's ksmTune write this host's KSM files."""
        fake_vdsm.on_ksm_tune = lambda params: self.set_ksm(**params)
        with fake_vdsm.lock:
            fake_vdsm.ksm.update({k: self.ksm(k) for k in fake_vdsm.ksm})

    def mom_overrides(self) -> dict[str, dict[str, str]]:
        """[host] keys that point MOM's host collectors here."""
        return {"host": {"proc-root": self.proc_root, "sys-root": self.sys_root}}
