"""GuestQemuProc: the host-side view of the guest's qemu process.

``rss`` (KiB, VmRSS of /proc/<pid>/status), ``host_minor_faults`` and
``host_major_faults`` (minflt/majflt of /proc/<pid>/stat) of the pid the
hypervisor reported for the guest.  ``GuestQemuProcOptional`` leaves the
fields nil when the process cannot be read.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from mom import facts
from mom.collectors._procfs import PidStat, parse_pid_stat, parse_pid_status, read_text
from mom.collectors.base import CollectionError, Collector

QEMU_PROC_FIELDS = facts.fields("guest", "qemu")


def qemu_proc_fields(stat: PidStat, status: Mapping[str, Any]) -> dict[str, int]:
    """MOM's fields from a parsed stat and status of one process."""
    rss = status.get("VmRSS")
    if not isinstance(rss, int):
        raise ValueError(f"process {stat.pid} ({stat.comm}) has no VmRSS")
    return {"rss": rss, "host_minor_faults": stat.minflt,
            "host_major_faults": stat.majflt}


class GuestQemuProc(Collector):
    kind = "guest"
    fields = QEMU_PROC_FIELDS

    def collect(self) -> dict[str, Any]:
        guest = self.ctx.guest
        if guest is None or not guest.pid:
            label = f"guest {guest.name} ({guest.id})" if guest else "guest"
            raise CollectionError(f"{label}: qemu pid unknown")
        base = os.path.join(self.ctx.proc_root, str(guest.pid))
        try:
            stat = parse_pid_stat(read_text(os.path.join(base, "stat")))
            status = parse_pid_status(read_text(os.path.join(base, "status")))
            return qemu_proc_fields(stat, status)
        except ValueError as e:
            raise CollectionError(f"guest {guest.name}: {e}") from e
        except CollectionError as e:
            raise CollectionError(f"guest {guest.name}: qemu process gone? {e}") from e


class GuestQemuProcOptional(GuestQemuProc):
    optional_fields = QEMU_PROC_FIELDS

    def collect(self) -> dict[str, Any]:
        try:
            return super().collect()
        except CollectionError:
            return {}
