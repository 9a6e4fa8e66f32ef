"""Process mode: MOM reaches VDSM over VDSM's RPC API.

What the two bindings (:mod:`~mom.hypervisor.vdsm_jsonrpc`,
:mod:`~mom.hypervisor.vdsm_xmlrpc`) share lives here: the connection's
life (opened on demand, one at a time, retried with backoff), the error
mapping, and turning VDSM's stats into :class:`PolledGuest` with the pure
conversions of the thread-mode back-end (:mod:`mom.hypervisor.vdsm`), so
both modes see VDSM's data the same way.

Cost per cycle: :meth:`poll` makes one getAllVmStats call, whatever the
number of VMs, plus the I/O-tune policies when they are due (they change
rarely and are cached for ``iotune_refresh`` seconds, 300 like upstream).
The limits in force come from the stats' ``ioTune`` when VDSM includes it,
otherwise from the last policy fetch updated with what MOM itself set.

Failures:

* VDSM not reachable (not started, TLS refused, key unreadable, connection
  lost): one WARNING line naming VDSM's address, the TLS files and the
  reason, logged again only when the reason changes; attempts are spaced
  1 s doubling to 60 s, and a call made before the next attempt is due
  raises at once.  One INFO line when VDSM answers again.  A connection
  found dead when a call is made is reopened once at once (VDSM restarted
  between two cycles), so that call does not fail.
* VDSM answers with an error: :class:`GuestGoneError` when the VM does not
  exist (VDSM's code 1), :class:`HypervisorError` otherwise; a request
  that times out is a HypervisorError and the connection is kept (one slow
  VM must not stop calls for the others).  Callers log those once per VM.
* A reply that is not what the schema says: logged once per condition; the
  poll fails only when the reply is unusable as a whole.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mom.reporting import Conditions
from mom.hypervisor.base import (
    KSM_TUNE_KEYS, GuestGoneError, GuestInfo, Hypervisor,
    HypervisorError, PolledGuest)
from mom.hypervisor.vdsm import (
    NO_VM_CODE, guest_info, iotune_section, normalise_vm_stats)
from mom.hypervisor.vdsm_link import (
    VDSM_CONF, Backoff, CallTimeout, Endpoint, LinkError, RemoteError, vdsm_uses_ssl)

if TYPE_CHECKING:
    from mom.config import Settings

log = logging.getLogger(__name__)

#: Seconds an I/O-tune policy fetch is reused (upstream MOM's value).
IOTUNE_REFRESH = 300.0
#: After a failed policy fetch, the next try waits this long (at most).
IOTUNE_RETRY = 60.0


class VdsmUnreachable(HypervisorError):
    """No connection to VDSM (already logged once by the back-end)."""

    #: Callers need not log it again (the cycle logs it at DEBUG).
    logged = True


class RpcClient(Protocol):
    """What a binding's connection offers (see stomp_jsonrpc, xmlrpc_client)."""

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...


@dataclass
class IoTuneInfo:
    """A VM's I/O-tune policy (per disk) and the limits MOM last knew in force."""
    policy: list[Any]
    current: list[Any] | None
    next_fetch: float = 0.0     # when to fetch the policy again


def as_list(value: Any) -> list[Any]:
    """The schema types some I/O-tune fields as one object, VDSM sends lists."""
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return [value]
    return []


class VdsmRpcHypervisor(Hypervisor):
    """The shared part of the RPC back-ends; subclasses give the verbs."""

    name = "vdsm-rpc"
    protocol = "RPC"
    #: Verb names for log lines, by action (see the subclasses).
    VERBS: Mapping[str, str] = {}

    def __init__(self, endpoint: Endpoint, *, iotune: bool = True,
                 iotune_refresh: float = IOTUNE_REFRESH,
                 clock: Callable[[], float] = time.monotonic,
                 backoff_initial: float = 1.0, backoff_max: float = 60.0) -> None:
        self.endpoint = endpoint
        self.iotune = iotune
        self.iotune_refresh = iotune_refresh
        self._clock = clock
        self._backoff = Backoff(backoff_initial, backoff_max, clock)
        self._lock = threading.Lock()       # one connection at a time
        self._client: RpcClient | None = None
        self._client_used = False           # it has answered a call already
        self._ever_connected = False
        self._down_since: float | None = None
        self._down_reason: str | None = None
        self._once = Conditions(log)
        self._io: dict[str, IoTuneInfo] = {}
        self._io_lock = threading.Lock()

    # -- to be given by a binding ------------------------------------------
    def _open(self) -> RpcClient:
        """A new connection (raises LinkError)."""
        raise NotImplementedError

    def _send(self, client: Any, action: str, args: tuple[Any, ...]) -> Any:
        """Make one call on ``client``; the verb's return value.  Raises
        RemoteError, CallTimeout or LinkError."""
        raise NotImplementedError

    def _refresh_iotune(self, vm_ids: list[str]) -> None:
        """Bring ``self._io`` up to date for these VMs when due."""
        raise NotImplementedError

    # -- the connection ------------------------------------------------------
    def _unreachable(self) -> str:
        return (f"{self.endpoint.describe()} is unreachable over {self.protocol}: "
                f"{self._down_reason}")

    def _connection(self) -> RpcClient:
        with self._lock:
            client = self._client
            if client is not None and not client.closed:
                return client
            self._client = None
            if not self._backoff.due():
                raise VdsmUnreachable(self._unreachable())
            try:
                client = self._open()
            except LinkError as err:
                self._attempt_failed(str(err))
                raise VdsmUnreachable(self._unreachable()) from None
            # VDSM counts as back at its first answer on it (the XML-RPC
            # binding only connects when it sends).
            self._client, self._client_used = client, False
            return client

    def _attempt_failed(self, reason: str) -> None:
        delay = self._backoff.failed()
        if self._down_since is None:
            self._down_since = self._clock()
        if reason != self._down_reason:
            log.warning("cannot connect to %s over %s: %s; retrying in %g s, then "
                        "with backoff up to %g s", self.endpoint.describe(), self.protocol,
                        reason, delay, self._backoff.maximum)
        else:
            log.debug("still cannot connect to %s: %s; next attempt in %g s",
                      self.endpoint.address(), reason, delay)
        self._down_reason = reason

    def _connected(self) -> None:
        if self._down_since is not None:
            log.info("%s answers again over %s (after %.0f s, %d failed attempts)",
                     self.endpoint.describe(), self.protocol,
                     self._clock() - self._down_since, self._backoff.failures)
        elif not self._ever_connected:
            log.info("connected to %s over %s", self.endpoint.describe(), self.protocol)
        self._ever_connected = True
        self._down_since = None
        self._down_reason = None
        self._backoff.reset()

    def _drop(self, client: RpcClient) -> None:
        with self._lock:
            if self._client is client:
                self._client = None
        client.close()

    def _invoke(self, action: str, guest_id: str | None, *args: Any) -> Any:
        """One verb; VDSM's errors mapped to HypervisorError/GuestGoneError."""
        verb = self.VERBS.get(action, action)
        who = f" for VM {guest_id}" if guest_id else ""
        for attempt in (1, 2):
            client = self._connection()
            reused = self._client_used
            try:
                result = self._send(client, action, args)
            except LinkError as err:
                self._drop(client)
                if reused and attempt == 1:
                    # Found dead on first use after a pause: VDSM restarted
                    # in between.  Reopen once now rather than fail the call.
                    log.debug("connection to %s lost (%s); reconnecting",
                              self.endpoint.address(), err)
                    continue
                self._attempt_failed(str(err))
                raise VdsmUnreachable(self._unreachable(), guest_id) from None
            except RemoteError as err:
                self._answered()
                if err.code == NO_VM_CODE and guest_id:
                    raise GuestGoneError(
                        f"VM {guest_id} is gone ({verb}: {err.message or 'no such VM'})",
                        guest_id) from None
                raise HypervisorError(f"VDSM {verb}{who} failed with code {err.code}: "
                                      f"{err.message}", guest_id) from None
            except CallTimeout as err:
                raise HypervisorError(f"VDSM {verb}{who}: {err}", guest_id) from None
            self._answered()
            return result
        raise AssertionError("unreachable")    # pragma: no cover

    def _answered(self) -> None:
        if not self._client_used:
            self._client_used = True
            self._connected()

    # -- stats ----------------------------------------------------------------
    def _all_vm_stats(self) -> Any:
        """The raw list of VmStats (subclasses unwrap their reply)."""
        return self._invoke("all_stats", None)

    def poll(self) -> list[PolledGuest]:
        verb = self.VERBS.get("all_stats", "getAllVmStats")
        entries = self._all_vm_stats()
        if not isinstance(entries, list):
            message = (f"VDSM's {verb} reply is not a list of VM stats "
                       f"({type(entries).__name__}); this cycle is skipped")
            raise HypervisorError(message)
        bad = sum(1 for e in entries if not isinstance(e, Mapping) or not e.get("vmId"))
        if bad:
            # Which guest is which cannot be told: act on none of them this
            # cycle, and keep every guest and its history.
            message = (f"{bad} of {len(entries)} entries of VDSM's {verb} reply are not "
                       "VM stats with a vmId; this cycle is skipped")
            raise HypervisorError(message)
        managed: list[tuple[GuestInfo, Mapping[str, Any]]] = []
        for entry in entries:
            info = guest_info(entry)
            if info is not None:
                managed.append((info, entry))
        present = {info.id for info, _ in managed}
        if self.iotune and managed:
            self._refresh_iotune([info.id for info, _ in managed])
        guests = []
        for info, entry in managed:
            try:
                stats = normalise_vm_stats(entry)
                if self.iotune and "iotune" not in stats:
                    stats["iotune"] = self._iotune_section(info.id, entry)
            except Exception as err:    # one odd entry must not hide the others
                self._once.fail((info.id, "convert"),
                                f"cannot read VDSM's stats of VM {info.id} "
                                f"({type(err).__name__}: {err}); it is skipped")
                continue
            self._once.ok((info.id, "convert"))
            guests.append(PolledGuest(info, stats))
        self._forget_vanished(present)
        return guests

    def _iotune_section(self, vm_id: str, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
        with self._io_lock:
            known = self._io.get(vm_id)
            if known is None:
                return []
            current = entry.get("ioTune")
            if not isinstance(current, list) or not current:
                current = known.current
            return iotune_section(as_list(known.policy), as_list(current))

    def _forget_vanished(self, present: set[str]) -> None:
        with self._io_lock:
            for vm_id in [k for k in self._io if k not in present]:
                del self._io[vm_id]
        self._once.prune([k for k in self._once.keys() if not k[0] or k[0] in present])

    # -- the rest of the interface ------------------------------------------
    def ping(self) -> bool:
        try:
            self._invoke("ping", None)
        except HypervisorError:
            return False
        return True

    def set_balloon_target(self, guest_id: str, target_kib: int) -> None:
        self._invoke("balloon", guest_id, guest_id, int(target_kib))

    def set_vcpu_tune(self, guest_id: str, quota: int | None = None,
                      period: int | None = None) -> None:
        # The period first: a quota scaled up together with its period then
        # never meets the old, short one.
        if period is not None:
            self._invoke("period", guest_id, guest_id, int(period))
        if quota is not None:
            self._invoke("quota", guest_id, guest_id, int(quota))

    def set_io_tune(self, guest_id: str, tunables: list[dict[str, Any]]) -> None:
        payload = [{"name": t.get("name", ""), "path": t.get("path", ""),
                    "ioTune": {k: int(v) for k, v in t.get("ioTune", {}).items()}}
                   for t in tunables]
        self._invoke("io_tune", guest_id, guest_id, payload)
        self._note_io_tune(guest_id, payload)

    def _note_io_tune(self, guest_id: str, payload: list[dict[str, Any]]) -> None:
        """VDSM took these limits: they are in force until the next fetch."""
        with self._io_lock:
            known = self._io.get(guest_id)
            if known is None:
                return
            current = {(d.get("name"), d.get("path")): d for d in as_list(known.current)
                       if isinstance(d, Mapping)}
            for device in payload:
                for key, old in list(current.items()):
                    if (device["name"] and key[0] == device["name"]) or (
                            device["path"] and key[1] == device["path"]):
                        del current[key]
                current[(device["name"], device["path"])] = device
            known.current = list(current.values())

    def ksm_tune(self, params: dict[str, int]) -> None:
        unknown = set(params) - set(KSM_TUNE_KEYS)
        if unknown:
            raise HypervisorError(f"unknown KSM settings: {', '.join(sorted(unknown))}")
        clean = {k: int(v) for k, v in params.items()}
        if clean:
            self._invoke("ksm", None, clean)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


# ---------------------------------------------------------------------------
# Configuration ([vdsm] section), read in one place
# ---------------------------------------------------------------------------

def endpoint_from_settings(settings: Settings,
                           vdsm_conf: str = VDSM_CONF) -> Endpoint:
    """VDSM's address, TLS files and timeout from mom.conf's ``[vdsm]``.
    ``ssl`` not set means "as VDSM's own vdsm.conf says"."""
    vdsm = settings.vdsm
    tls = vdsm.ssl if vdsm.ssl is not None else vdsm_uses_ssl(vdsm_conf)
    return Endpoint(host=vdsm.host or "127.0.0.1", port=vdsm.port, tls=tls,
                    key_file=vdsm.pki_path(vdsm.key_file),
                    cert_file=vdsm.pki_path(vdsm.cert_file),
                    ca_file=vdsm.pki_path(vdsm.ca_cert_file),
                    timeout=vdsm.request_timeout)


def backoff(settings: Settings) -> dict[str, float]:
    """Waits between attempts to reach VDSM: 1 s doubling up to ``[vdsm]
    max-retry-interval`` (60 s by default)."""
    longest = settings.vdsm.max_retry_interval
    return {"backoff_initial": min(1.0, longest), "backoff_max": longest}


def wants_iotune(settings: Settings) -> bool:
    """I/O-tune policies are fetched only when a guest collector uses them."""
    return any("iotune" in name.lower() for name in settings.guest_collectors)
