"""libvirt back-end: lets standalone ``momd`` manage a libvirt host's guests.

Selected by ``[main] hypervisor-interface = libvirt``; the connection URI is
``[main] libvirt-hypervisor-uri`` (default ``qemu:///system``).

Design points (see docs/development.md, "libvirt back-end"):

- Stats come from ONE bulk call per cycle, ``conn.getAllDomainStats``
  (balloon + vcpu groups, active domains): it names the guests and carries
  their stats, so ``poll()`` is that one call.  Drivers that do not fill the balloon group
  in bulk (libvirt's test driver) fall back, per domain, to ``info()`` +
  ``memoryStats()``; QEMU always fills it, so the fallback never runs there.
- The raw-record -> MOM-field translation is pure (``normalise_record`` and
  friends) and unit-tested on captured dicts.
- Per-domain work that must not repeat every cycle happens once, when a
  domain is first seen by ``poll``: turning on the balloon driver's
  stats period (otherwise the guest reports no memory stats), reading the
  vCPU scheduler parameters (cached, refreshed by our own writes), and
  noting whether the domain has a balloon device at all.
- libvirt-python is imported lazily so the rest of MOM works without it.
"""
from __future__ import annotations

import logging
import os
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mom.hypervisor.base import (IOTUNE_KEYS, KSM_TUNE_KEYS, GuestGoneError,
                                 GuestInfo, GuestStats, Hypervisor,
                                 HypervisorError, PolledGuest)

log = logging.getLogger(__name__)

DEFAULT_URI = "qemu:///system"
# Seconds between the guest balloon driver's stats updates, set on domains
# whose period is 0 (the default, under which the guest reports nothing).
DEFAULT_STATS_PERIOD = 5
# libvirt has no per-VM CPU "user limit" (a VDSM notion); 100 % means none.
DEFAULT_VCPU_USER_LIMIT = 100

T = TypeVar("T")

# --------------------------------------------------------------------------
# Pure normalisation: raw libvirt data -> MOM's GuestStats sections.
# --------------------------------------------------------------------------

# bulk-stats key -> MOM memory field (all KiB, except the fault counters).
_MEMORY_KEYS = {
    "balloon.available": "mem_available",
    "balloon.unused": "mem_unused",
    "balloon.major_fault": "major_fault",
    "balloon.minor_fault": "minor_fault",
    "balloon.swap_in": "swap_in",
    "balloon.swap_out": "swap_out",
}


def memory_section(record: Mapping[str, Any]) -> dict[str, int]:
    """MOM ``memory`` fields from a bulk-stats record; {} if the guest's
    balloon driver reports nothing.

    ``mem_free`` is the guest kernel's ``usable`` (MemAvailable: free plus
    reclaimable cache) when reported; otherwise ``unused + disk_caches``
    (the guest agent's free+buffers+cached, as VDSM computes it); otherwise
    just ``unused``.  ``usable`` is preferred because ``disk_caches``
    counts tmpfs/shmem pages the guest cannot give back.
    """
    out = {field: int(record[key]) for key, field in _MEMORY_KEYS.items()
           if key in record}
    if "balloon.usable" in record:
        out["mem_free"] = int(record["balloon.usable"])
    elif "balloon.unused" in record and "balloon.disk_caches" in record:
        out["mem_free"] = (int(record["balloon.unused"])
                           + int(record["balloon.disk_caches"]))
    elif "balloon.unused" in record:
        out["mem_free"] = int(record["balloon.unused"])
    return out


def balloon_section(record: Mapping[str, Any]) -> dict[str, int]:
    """MOM ``balloon`` fields (KiB); {} without ``balloon.current``."""
    if "balloon.current" not in record:
        return {}
    cur = int(record["balloon.current"])
    return {"balloon_cur": cur,
            "balloon_max": int(record.get("balloon.maximum", cur)),
            "balloon_min": 0}


def cputune_section(record: Mapping[str, Any],
                    sched: Mapping[str, Any] | None = None) -> dict[str, int]:
    """MOM ``cputune`` fields: vcpu_count from the bulk ``vcpu.current``,
    quota/period from the cached scheduler parameters; {} if neither."""
    out: dict[str, int] = {}
    if "vcpu.current" in record:
        out["vcpu_count"] = int(record["vcpu.current"])
    for key in ("vcpu_quota", "vcpu_period"):
        if sched and key in sched:
            out[key] = int(sched[key])
    if out:
        out["vcpu_user_limit"] = DEFAULT_VCPU_USER_LIMIT
    return out


def normalise_record(record: Mapping[str, Any],
                     sched: Mapping[str, Any] | None = None,
                     has_balloon: bool = True) -> GuestStats:
    """One domain's bulk-stats record -> GuestStats (sections only when
    non-empty).  ``has_balloon=False`` drops the memory and balloon
    sections, so no policy tries to balloon a guest without the device."""
    stats: GuestStats = {}
    sections = {"cputune": cputune_section(record, sched)}
    if has_balloon:
        sections["memory"] = memory_section(record)
        sections["balloon"] = balloon_section(record)
    for name, section in sections.items():
        if section:
            stats[name] = section
    return stats


def record_from_domain_info(info: list[int] | tuple[int, ...],
                            memory_stats: Mapping[str, int]) -> dict[str, int]:
    """Build a bulk-format record from ``dom.info()`` and
    ``dom.memoryStats()`` (the fallback for drivers without bulk balloon
    stats).  ``info`` is ``[state, maxMem, memory, nrVirtCpu, cpuTime]``."""
    record = {"balloon.current": int(memory_stats.get("actual", info[2])),
              "balloon.maximum": int(info[1]),
              "vcpu.current": int(info[3])}
    for key, value in memory_stats.items():
        if key == "actual":
            continue
        record["balloon." + key.replace("last_update", "last-update")] = int(value)
    return record


def balloon_stats_period(domain_xml: str) -> int | None:
    """The live balloon stats period in the domain XML; None when the domain
    has no usable balloon (no ``<memballoon>`` or model ``none``)."""
    root = ET.fromstring(domain_xml)
    balloon = root.find("./devices/memballoon")
    if balloon is None or balloon.get("model", "none") == "none":
        return None
    stats = balloon.find("stats")
    if stats is None:
        return 0
    try:
        return int(stats.get("period", "0"))
    except ValueError:
        return 0


def pid_file_candidates(uri: str, name: str) -> list[str]:
    """Where a local QEMU driver keeps ``<name>.pid`` for this URI.

    libvirt offers no API for a domain's process id, but its QEMU driver
    writes one pid file per running domain.  Remote URIs (with a host) and
    other drivers have none we can read.
    """
    parts = urllib.parse.urlsplit(uri)
    driver = parts.scheme.split("+", 1)[0]
    if driver != "qemu" or parts.hostname:
        return []
    filename = f"{name}.pid"
    if parts.path == "/system":
        return [os.path.join("/run/libvirt/qemu", filename)]
    if parts.path == "/session":
        runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
        return [os.path.join(runtime, "libvirt/qemu/run", filename)]
    if parts.path == "/embed":
        root = urllib.parse.parse_qs(parts.query).get("root", [""])[0]
        if root:
            return [os.path.join(root, "run/qemu", filename)]
    return []


def read_pid(paths: list[str]) -> int | None:
    """The first readable positive pid among ``paths``, else None."""
    for path in paths:
        try:
            with open(path, encoding="ascii") as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if pid > 0:
            return pid
    return None


def needs_event_loop(uri: str) -> bool:
    """Embedded drivers (``qemu:///embed``) run inside this process and
    cannot work without a libvirt event loop."""
    return urllib.parse.urlsplit(uri).path == "/embed"


def ksm_write_order(params: Mapping[str, int]) -> list[str]:
    """Keys in the order to write them.  The kernel refuses to change
    ``merge_across_nodes`` while pages are shared, so an unmerge
    (``run = 2``) goes first and a start (``run = 1``) goes last."""
    keys = [k for k in ("pages_to_scan", "sleep_millisecs") if k in params]
    tail = ["run", "merge_across_nodes"]
    if params.get("run") != 2:
        tail.reverse()
    return keys + [k for k in tail if k in params]


def iotune_params(new: Mapping[str, Any],
                  current: Mapping[str, Any]) -> dict[str, int]:
    """Parameters for ``setBlockIoTune``: the six MOM limits, plus any
    ``*_max`` burst limit that is set (non-zero) but would fall below its
    new rate, raised to it (QEMU rejects a burst limit under the rate)."""
    params = {key: int(new[key]) for key in IOTUNE_KEYS if key in new}
    for key, value in list(params.items()):
        burst = int(current.get(key + "_max", 0) or 0)
        if burst and burst < value:
            params[key + "_max"] = value
    return params


# --------------------------------------------------------------------------
# libvirt-python glue.
# --------------------------------------------------------------------------

_import_lock = threading.Lock()
_libvirt_module: Any = None
_event_loop_thread: threading.Thread | None = None


def _libvirt() -> Any:
    """Import libvirt-python once, silencing its default stderr printing
    (we log errors ourselves, with context)."""
    global _libvirt_module
    with _import_lock:
        if _libvirt_module is None:
            try:
                import libvirt  # noqa: PLC0415 - optional dependency
            except ImportError as exc:
                raise HypervisorError(
                    "the libvirt hypervisor interface needs libvirt-python: "
                    "install mom-overcommit[libvirt]") from exc

            def _quiet(_ctx: Any, err: Any) -> None:
                log.debug("libvirt: %s", err[2] if len(err) > 2 else err)

            libvirt.registerErrorHandler(_quiet, None)
            _libvirt_module = libvirt
        return _libvirt_module


def ensure_event_loop() -> None:
    """Register libvirt's default event loop once per process and run it in
    a daemon thread.  libvirt cannot unregister an event implementation, so
    the thread lives as long as the process (it only waits in poll())."""
    global _event_loop_thread
    libvirt = _libvirt()
    with _import_lock:
        if _event_loop_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()

        def _run() -> None:
            while True:
                try:
                    libvirt.virEventRunDefaultImpl()
                except Exception:  # keep the loop alive; log and go on
                    log.exception("libvirt event loop iteration failed")
                    threading.Event().wait(1.0)

        _event_loop_thread = threading.Thread(
            target=_run, name="libvirt-events", daemon=True)
        _event_loop_thread.start()


class LibvirtHypervisor(Hypervisor):
    """MOM's hypervisor interface over one libvirt connection.

    MOM's one worker makes every call; the locks keep it safe for other
    users (tests, tools) too.  A dead connection is dropped and reopened on the next
    call.  Guests are keyed by libvirt UUID.
    """

    name = "libvirt"

    def __init__(self, uri: str = DEFAULT_URI, *,
                 stats_period: int = DEFAULT_STATS_PERIOD,
                 sys_root: str = "/sys",
                 event_loop: bool | None = None) -> None:
        """Open ``uri`` (HypervisorError if that fails).

        ``stats_period``: seconds set as the balloon stats period of newly
        seen domains whose period is 0; 0 leaves domains untouched.
        ``sys_root``: where ``kernel/mm/ksm`` lives (tests use a tmp tree).
        ``event_loop``: register libvirt's event loop; None = only when the
        URI needs one (embedded drivers).
        """
        self._lv = _libvirt()
        self.uri = uri
        self.stats_period = stats_period
        self.sys_root = sys_root
        if event_loop or (event_loop is None and needs_event_loop(uri)):
            ensure_event_loop()
        self._conn_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._conn: Any = None
        # Per active domain (UUID), filled when first seen by poll.
        self._sched: dict[str, dict[str, int]] = {}
        self._no_balloon: set[str] = set()
        # UUID -> domain ID when last seen: a new ID means a new run.
        self._known: dict[str, int] = {}
        self._pids: dict[tuple[str, int], int | None] = {}
        self._connection()

    # ---- connection ------------------------------------------------------

    def _connection(self) -> Any:
        """The open connection, reopened if it died."""
        with self._conn_lock:
            conn = self._conn
            if conn is not None:
                try:
                    if conn.isAlive() == 1:
                        return conn
                except self._lv.libvirtError:
                    pass
                log.warning("libvirt connection to %s died; reconnecting",
                            self.uri)
                self._close_quietly(conn)
                self._conn = None
            try:
                self._conn = self._lv.open(self.uri)
            except self._lv.libvirtError as exc:
                raise HypervisorError(
                    f"cannot connect to libvirt at {self.uri}: "
                    f"{exc.get_error_message()}") from exc
            return self._conn

    def _close_quietly(self, conn: Any) -> None:
        try:
            conn.close()
        except self._lv.libvirtError:
            pass

    def _forget_if_dead(self) -> None:
        """After a failed call: drop the connection if it is the reason."""
        with self._conn_lock:
            conn = self._conn
            if conn is None:
                return
            try:
                alive = conn.isAlive() == 1
            except self._lv.libvirtError:
                alive = False
            if not alive:
                self._close_quietly(conn)
                self._conn = None

    def _error(self, exc: Exception, what: str, guest_id: str | None = None,
               dom: Any = None) -> HypervisorError:
        """Translate a libvirtError: a vanished (or no longer running)
        domain is GuestGoneError, anything else HypervisorError."""
        code = exc.get_error_code()
        message = f"{what}: {exc.get_error_message()}"
        gone = code == self._lv.VIR_ERR_NO_DOMAIN
        if (not gone and dom is not None
                and code == self._lv.VIR_ERR_OPERATION_INVALID):
            try:
                gone = dom.isActive() != 1
            except self._lv.libvirtError:
                gone = True
        if gone:
            return GuestGoneError(message, guest_id)
        self._forget_if_dead()
        return HypervisorError(message, guest_id)

    def _with_domain(self, guest_id: str, what: str,
                     action: Callable[[Any], T]) -> T:
        conn = self._connection()
        dom = None
        try:
            dom = conn.lookupByUUIDString(guest_id)
            return action(dom)
        except self._lv.libvirtError as exc:
            raise self._error(exc, f"{what} on guest {guest_id}",
                              guest_id, dom) from exc

    # ---- Hypervisor interface --------------------------------------------

    def ping(self) -> bool:
        try:
            self._connection().getLibVersion()
            return True
        except HypervisorError:
            return False
        except self._lv.libvirtError:
            self._forget_if_dead()
            return False

    def poll(self) -> list[PolledGuest]:
        """One ``getAllDomainStats`` call: every active domain with its
        balloon and vCPU stats.  Without ``NOWAIT``: MOM never overlaps its
        own calls any more, so a domain is only busy in a job of someone
        else's, and libvirt's own job wait (30 s) bounds that."""
        lv = self._lv
        conn = self._connection()
        groups = lv.VIR_DOMAIN_STATS_BALLOON | lv.VIR_DOMAIN_STATS_VCPU
        try:
            records = conn.getAllDomainStats(groups, lv.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE)
        except lv.libvirtError as exc:
            raise self._error(exc, "reading bulk domain stats") from exc
        polled = []
        seen: dict[str, int] = {}
        for dom, record in records:
            try:
                uuid, name, run = dom.UUIDString(), dom.name(), dom.ID()
            except lv.libvirtError:
                continue                # gone since the bulk call
            seen[uuid] = run
            if self._known.get(uuid) != run:
                self._on_new_domain(dom, uuid)
            if "balloon.current" not in record:
                try:
                    record = {**record_from_domain_info(
                        dom.info(), dom.memoryStats()), **record}
                except lv.libvirtError as exc:
                    if exc.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
                        continue        # gone since the bulk call
                    log.debug("guest %s: no memory stats: %s", uuid,
                              exc.get_error_message())
            with self._cache_lock:
                sched = dict(self._sched.get(uuid, {}))
                has_balloon = uuid not in self._no_balloon
            info = GuestInfo(id=uuid, name=name, pid=self._pid(uuid, run, name))
            polled.append(PolledGuest(info, normalise_record(record, sched, has_balloon)))
        with self._cache_lock:
            for uuid in set(self._known) - set(seen):
                self._sched.pop(uuid, None)
                self._no_balloon.discard(uuid)
            self._known = seen
            self._pids = {k: v for k, v in self._pids.items()
                          if seen.get(k[0]) == k[1]}
        return polled

    def _pid(self, uuid: str, run: int, name: str) -> int | None:
        """The domain's process id, read once per domain run."""
        key = (uuid, run)
        with self._cache_lock:
            if key in self._pids:
                return self._pids[key]
        pid = read_pid(pid_file_candidates(self.uri, name))
        with self._cache_lock:
            self._pids[key] = pid
        return pid

    def _on_new_domain(self, dom: Any, uuid: str) -> None:
        """Once per newly seen domain run: balloon stats period, balloon
        presence, vCPU scheduler parameters.  Failures are not fatal: the
        guest is still managed with whatever stats it has."""
        lv = self._lv
        with self._cache_lock:
            self._no_balloon.discard(uuid)
            self._sched.pop(uuid, None)
        try:
            period = balloon_stats_period(dom.XMLDesc(0))
        except (lv.libvirtError, ET.ParseError) as exc:
            log.debug("guest %s: cannot read domain XML: %s", uuid, exc)
            period = 0
        if period is None:
            with self._cache_lock:
                self._no_balloon.add(uuid)
        elif period == 0 and self.stats_period > 0:
            try:
                dom.setMemoryStatsPeriod(self.stats_period,
                                         lv.VIR_DOMAIN_AFFECT_LIVE)
            except lv.libvirtError as exc:
                log.info("guest %s: cannot set balloon stats period: %s",
                         uuid, exc.get_error_message())
        try:
            params = dom.schedulerParameters()
        except lv.libvirtError as exc:
            log.debug("guest %s: no scheduler parameters: %s", uuid,
                      exc.get_error_message())
            params = {}
        sched = {k: int(params[k]) for k in ("vcpu_quota", "vcpu_period")
                 if k in params}
        with self._cache_lock:
            if sched:
                self._sched[uuid] = sched

    def set_balloon_target(self, guest_id: str, target_kib: int) -> None:
        flags = self._lv.VIR_DOMAIN_AFFECT_LIVE
        self._with_domain(guest_id, f"setting balloon target {target_kib} KiB",
                          lambda dom: dom.setMemoryFlags(int(target_kib), flags))

    def set_vcpu_tune(self, guest_id: str, quota: int | None = None,
                      period: int | None = None) -> None:
        params: dict[str, int] = {}
        if quota is not None:
            params["vcpu_quota"] = int(quota)
        if period is not None:
            params["vcpu_period"] = int(period)
        if not params:
            return
        flags = self._lv.VIR_DOMAIN_AFFECT_LIVE
        self._with_domain(guest_id, f"setting vCPU tune {params}",
                          lambda dom: dom.setSchedulerParametersFlags(params, flags))
        with self._cache_lock:
            self._sched.setdefault(guest_id, {}).update(params)

    def set_io_tune(self, guest_id: str, tunables: list[dict[str, Any]]) -> None:
        """Apply each device's limits; one failing disk does not stop the
        others (all failures are reported in one HypervisorError)."""
        lv = self._lv
        flags = lv.VIR_DOMAIN_AFFECT_LIVE

        def apply(dom: Any) -> list[str]:
            failures = []
            for device in tunables:
                disk = device.get("name") or device.get("path")
                if not disk:
                    failures.append(f"device without name or path: {device}")
                    continue
                try:
                    current = dom.blockIoTune(disk, flags)
                    params = iotune_params(device.get("ioTune", {}), current)
                    if params:
                        dom.setBlockIoTune(disk, params, flags)
                except lv.libvirtError as exc:
                    if exc.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
                        raise
                    failures.append(f"{disk}: {exc.get_error_message()}")
            return failures

        failures = self._with_domain(guest_id, "setting I/O limits", apply)
        if failures:
            raise HypervisorError(
                f"setting I/O limits on guest {guest_id}: " + "; ".join(failures),
                guest_id)

    def ksm_tune(self, params: dict[str, int]) -> None:
        """Write the KSM knobs under ``<sys_root>/kernel/mm/ksm`` (momd runs
        as root when it uses this back-end)."""
        unknown = set(params) - set(KSM_TUNE_KEYS)
        if unknown:
            raise HypervisorError(f"unknown KSM parameters: {sorted(unknown)}")
        ksm_dir = os.path.join(self.sys_root, "kernel/mm/ksm")
        for key in ksm_write_order(params):
            path = os.path.join(ksm_dir, key)
            try:
                value = int(params[key])
                with open(path, "w", encoding="ascii") as f:
                    f.write(f"{value}\n")
            except (OSError, ValueError, TypeError) as exc:
                raise HypervisorError(
                    f"cannot set KSM {key}={params[key]!r} ({path}): "
                    f"{getattr(exc, 'strerror', None) or exc}") from exc

    def close(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                self._close_quietly(self._conn)
                self._conn = None


def create(settings: Any) -> LibvirtHypervisor:
    """Build the back-end from mom.conf's settings: ``[main]
    libvirt-hypervisor-uri``, and ``[host] sys-root`` so KSM is written
    where HostKSM reads it.  Raises HypervisorError when libvirt-python is
    missing or the URI cannot be opened."""
    return LibvirtHypervisor(settings.libvirt_uri or DEFAULT_URI, sys_root=settings.sys_root)
