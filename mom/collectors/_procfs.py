"""Small /proc parsers and readers shared by several collectors.

The parsers are pure (text in, values out) so they can be tested on text
captured from real machines; the readers turn I/O failures into
:class:`CollectionError` so a collector never leaks a bare ``OSError``.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from mom.collectors.base import CollectionError

# task flag set on kernel threads (include/linux/sched.h)
PF_KTHREAD = 0x00200000


def parse_key_values(text: str) -> dict[str, int]:
    """Parse ``Key:  123 kB`` lines (/proc/meminfo, /proc/<pid>/status).

    Only lines whose value is one integer, optionally followed by a unit,
    are kept; the unit is dropped (it is always kB where present).
    """
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        parts = rest.split()
        if not parts or len(parts) > 2:
            continue
        try:
            values[key.strip()] = int(parts[0])
        except ValueError:
            continue
    return values


def parse_pid_status(text: str) -> dict[str, int | str]:
    """Parse /proc/<pid>/status: numeric fields as ints (kB dropped),
    ``Name`` as a string.  Other textual fields are left out."""
    values: dict[str, int | str] = dict(parse_key_values(text))
    for line in text.splitlines():
        if line.startswith("Name:"):
            values["Name"] = line.partition(":")[2].strip()
            break
    return values


@dataclass(frozen=True)
class PidStat:
    """The fields of /proc/<pid>/stat MOM uses (see proc(5))."""
    pid: int
    comm: str
    state: str
    ppid: int
    flags: int
    minflt: int
    majflt: int
    utime: int        # clock ticks
    stime: int        # clock ticks
    vsize: int        # bytes
    rss_pages: int

    @property
    def is_kernel_thread(self) -> bool:
        return bool(self.flags & PF_KTHREAD)


def parse_pid_stat(text: str) -> PidStat:
    """Parse one /proc/<pid>/stat line.

    ``comm`` is in parentheses and may itself contain spaces and
    parentheses, so the fields after it are found from the *last* ``)``.
    Raises ValueError on malformed text.
    """
    open_paren = text.find("(")
    close_paren = text.rfind(")")
    if open_paren < 0 or close_paren < open_paren:
        raise ValueError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    pid = int(text[:open_paren])
    comm = text[open_paren + 1:close_paren]
    rest = text[close_paren + 1:].split()
    if len(rest) < 22:
        raise ValueError(f"short /proc/<pid>/stat line: {text[:80]!r}")
    # rest[0] is field 3 (state) of proc(5); field n is rest[n - 3].
    return PidStat(pid=pid, comm=comm, state=rest[0], ppid=int(rest[1]),
                   flags=int(rest[6]), minflt=int(rest[7]), majflt=int(rest[9]),
                   utime=int(rest[11]), stime=int(rest[12]),
                   vsize=int(rest[20]), rss_pages=int(rest[21]))


def read_text(path: str) -> str:
    """Read a small text file; CollectionError (naming the path) if unreadable."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError as e:
        raise CollectionError(f"cannot read {path}: {e.strerror or e}") from e


def iter_pids(proc_root: str) -> Iterator[int]:
    """Pids of the processes (thread-group leaders) listed in ``proc_root``."""
    try:
        with os.scandir(proc_root) as entries:
            for entry in entries:
                if entry.name.isdigit():
                    yield int(entry.name)
    except OSError as e:
        raise CollectionError(f"cannot list {proc_root}: {e.strerror or e}") from e


def read_pid_stat(proc_root: str, pid: int) -> PidStat | None:
    """The parsed stat of ``pid``, or None when it is gone or unreadable
    (processes come and go while we scan)."""
    try:
        with open(os.path.join(proc_root, str(pid), "stat"),
                  encoding="ascii", errors="replace") as f:
            return parse_pid_stat(f.read())
    except (OSError, ValueError):
        return None
