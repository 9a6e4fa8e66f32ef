"""VDSM's side of MOM: the object VDSM holds to talk to MOM.

VDSM calls :func:`create_mom` with its own configuration (``vdsm.conf``)
and gets a front object with the five methods it uses:

- ``getKsmStats()`` -> ``ksmState``, ``ksmPages``, ``ksmMergeAcrossNodes``,
  ``memShared`` (MiB), ``ksmCpu`` — VDSM's host statistics;
- ``setPolicy(text)`` — ``Host.setMOMPolicy``;
- ``setPolicyParameters(dict)`` — ``Host.setMOMPolicyParameters``;
- ``getStatus()`` -> ``'active'`` / ``'inactive'``;
- ``stop()`` — on VDSM's shutdown.

Two modes, chosen by ``[mom] mode`` in vdsm.conf (see docs/vdsm.md):

``process`` (the default)
    MOM runs as the ``mom-vdsm`` service; this object is an XML-RPC client
    of its unix socket.  MOM may be down or restarting: every call then
    degrades to a logged warning and an empty result, and works again once
    MOM is back (the policy parameters are sent again then).
``thread`` (the manual fallback)
    This object builds ``mom.MOM(conf)`` and runs it in a thread named
    ``MOM`` inside VDSM's process, where it calls VDSM's ``API`` module
    directly (``hypervisor-interface = vdsm``).
"""
from __future__ import annotations

import configparser
import http.client
import logging
import math
import os
import re
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Mapping
from typing import Any

from mom.reporting import Conditions

log = logging.getLogger("vdsm.mom")   # VDSM's logging tree

SECTION = "mom"
DEFAULT_MODE = "process"
MODES = ("process", "thread")
DEFAULT_CONF = "/etc/vdsm/mom.conf"
DEFAULT_TUNING_POLICY = "01-parameters"
DEFAULT_SOCKET = "/run/vdsm/mom-vdsm.sock"
DEFAULT_TIMEOUT = 10.0
#: How long stop() takes at most (thread mode), even while a VDSM call hangs.
STOP_TIMEOUT = 4.0

_MIB = 1024 * 1024
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


class PolicyParameterError(ValueError):
    """A policy parameter cannot be written into a policy."""


# ---------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------

def render_value(name: str, value: Any) -> str:
    """One parameter value in the policy language.

    Booleans become the symbols ``True``/``False`` (the defines policy
    declares them); numbers are written as numbers; strings are quoted.
    """
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PolicyParameterError(
                f"policy parameter {name!r} = {value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        # The language has no escapes: quote with the quote the text lacks.
        if '"' not in value:
            return f'"{value}"'
        if "'" not in value:
            return f"'{value}'"
        raise PolicyParameterError(
            f"policy parameter {name!r} holds both kinds of quotes; "
            "a policy string cannot express that")
    raise PolicyParameterError(
        f"policy parameter {name!r} has the type {type(value).__name__}; "
        "only booleans, numbers and strings can be set")


def render_parameters(params: Mapping[str, Any]) -> str:
    """The tuning policy: one ``(set name value)`` line per parameter."""
    lines = []
    for name, value in params.items():
        if not isinstance(name, str) or not _SYMBOL.match(name):
            raise PolicyParameterError(
                f"policy parameter name {name!r} is not a plain policy symbol")
        lines.append(f"(set {name} {render_value(name, value)})")
    return "".join(line + "\n" for line in lines)


def ksm_stats(host: Mapping[str, Any], page_size: int | None = None) -> dict[str, Any]:
    """VDSM's KSM statistics from MOM's host sample; {} when KSM is unknown."""
    needed = ("ksm_run", "ksm_pages_to_scan", "ksm_pages_sharing", "ksmd_cpu_usage")
    if any(host.get(key) is None for key in needed):
        return {}
    page_size = page_size or os.sysconf("SC_PAGE_SIZE")
    merge = host.get("ksm_merge_across_nodes")
    return {
        "ksmState": bool(host["ksm_run"]),
        "ksmPages": int(host["ksm_pages_to_scan"]),
        # Kernels without NUMA support lack the file and always merge.
        "ksmMergeAcrossNodes": True if merge is None else bool(merge),
        "memShared": int(host["ksm_pages_sharing"]) * page_size // _MIB,
        "ksmCpu": int(host["ksmd_cpu_usage"]),
    }


def _option(config: Any, key: str, default: str) -> str:
    """``[mom] key`` of VDSM's config (a ConfigParser or a dict of dicts)."""
    if config is None:
        return default
    if isinstance(config, configparser.RawConfigParser):
        value = config.get(SECTION, key, fallback=None) if config.has_section(SECTION) \
            else None
    elif isinstance(config, Mapping):
        value = (config.get(SECTION) or {}).get(key)
    else:                       # VDSM's own config object: get(section, key)
        try:
            value = config.get(SECTION, key)
        except Exception:
            value = None
    if value is None or str(value).strip() == "":
        return default
    return str(value).strip()


# ---------------------------------------------------------------------------
# Front objects
# ---------------------------------------------------------------------------

class MomFront:
    """What VDSM calls; subclasses say how MOM is reached."""

    mode = "abstract"

    def __init__(self, tuning_policy: str = DEFAULT_TUNING_POLICY) -> None:
        self.tuning_policy = tuning_policy
        self._params: dict[str, Any] = {}
        self._params_lock = threading.Lock()
        self._problems = Conditions(log)

    # -- to be provided ---------------------------------------------------
    def _host_statistics(self) -> dict[str, Any] | None:
        """MOM's latest host sample ({} before the first), None when MOM
        cannot be asked."""
        raise NotImplementedError

    def _set_named_policy(self, name: str, text: str | None) -> bool | None:
        raise NotImplementedError

    def _set_policy(self, text: str) -> bool | None:
        raise NotImplementedError

    def getStatus(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    # -- logging without flooding VDSM's log ------------------------------
    def _warn_once(self, condition: str, message: str, *args: Any) -> None:
        self._problems.fail(condition, message % args, summary=condition)

    # -- the API VDSM uses --------------------------------------------------
    def getKsmStats(self) -> dict[str, Any]:
        """KSM state for VDSM's host statistics; {} when MOM cannot say."""
        host = self._host_statistics()
        if host is None:
            return {}
        result = ksm_stats(host)
        if not host:
            log.debug("MOM has no host statistics yet")       # just started
        elif not result:
            self._warn_once("ksm-missing", "MOM's host statistics lack KSM's "
                            "(is HostKSM among the [host] collectors of MOM's config?)")
        else:
            self._problems.ok("ksm-missing")
        return result

    def setPolicy(self, text: str) -> bool:
        """Replace MOM's whole policy (``Host.setMOMPolicy``)."""
        return bool(self._set_policy(text))

    def setPolicyParameters(self, key_value_store: Mapping[str, Any]) -> bool:
        """Merge into the stored parameters and install them as the tuning
        policy.  A value of a type the policy language cannot hold is
        refused (PolicyParameterError) and nothing changes."""
        if not isinstance(key_value_store, Mapping):
            raise PolicyParameterError(
                f"policy parameters must be a dict, not {type(key_value_store).__name__}")
        with self._params_lock:
            merged = {**self._params, **key_value_store}
            text = render_parameters(merged)        # raises before anything changes
            self._params = merged
        return bool(self._set_named_policy(self.tuning_policy, text))

    def policy_parameters(self) -> dict[str, Any]:
        """The parameters stored so far (what the tuning policy says)."""
        with self._params_lock:
            return dict(self._params)

    def _parameters_text(self) -> str | None:
        with self._params_lock:
            return render_parameters(self._params) if self._params else None


class ThreadMomFront(MomFront):
    """MOM in one thread of the calling process (VDSM's), started at once.

    MOM imports VDSM's ``API`` and ``supervdsm`` modules itself; VDSM may
    hand them over instead (``api``, ``supervdsm``), or a ready
    ``hypervisor``.  ``mom_factory`` builds the MOM (``mom.MOM`` by
    default).  MOM's own start-up errors (bad mom.conf, VDSM's API module
    not importable) are raised from the constructor.
    """

    mode = "thread"

    def __init__(self, conf: str = DEFAULT_CONF,
                 tuning_policy: str = DEFAULT_TUNING_POLICY, *,
                 hypervisor: Any = None, api: Any = None, supervdsm: Any = None,
                 mom_factory: Callable[..., Any] | None = None) -> None:
        super().__init__(tuning_policy)
        if mom_factory is None:
            import mom
            mom_factory = mom.MOM
        if hypervisor is None and (api is not None or supervdsm is not None):
            from mom import config as mom_config
            from mom.hypervisor import vdsm
            hypervisor = vdsm.create(mom_config.load(conf), api, supervdsm)
        self.mom = mom_factory(conf, hypervisor=hypervisor)   # raises on a bad config
        self._stopped = False
        # This thread runs MOM's cycle itself: MOM adds no thread to VDSM.
        self.thread = threading.Thread(target=self._run, name="MOM", daemon=True)
        self.thread.start()
        log.info("MOM started in thread mode with %s", conf)

    def _run(self) -> None:
        try:
            self.mom.run()
        except Exception:
            log.exception("MOM thread ended with an error")

    def _host_statistics(self) -> dict[str, Any] | None:
        if not self.thread.is_alive():
            self._warn_once("down", "MOM is not running; no statistics")
            return None
        try:
            return self.mom.getHostStatistics()
        except Exception as err:
            self._warn_once("stats", "MOM getHostStatistics failed: %s", err)
            return None

    def _set_named_policy(self, name: str, text: str | None) -> bool:
        return bool(self.mom.setNamedPolicy(name, text))

    def _set_policy(self, text: str) -> bool:
        return bool(self.mom.setPolicy(text))

    def getStatus(self) -> str:
        return "active" if self.thread.is_alive() and not self._stopped else "inactive"

    def stop(self) -> None:
        """Shut MOM down; returns within STOP_TIMEOUT seconds.  The MOM
        thread ends with it, unless it is inside a VDSM call that hangs:
        then it ends when that call returns, and does nothing more."""
        deadline = time.monotonic() + STOP_TIMEOUT
        self._stopped = True
        self.mom.shutdown()
        self.thread.join(max(0.0, deadline - time.monotonic()))
        if self.thread.is_alive():
            log.warning("MOM thread did not stop within %.0f s", STOP_TIMEOUT)
        else:
            log.info("MOM stopped")


#: XML-RPC's fault code for an unknown method.
_NO_SUCH_METHOD = -32601

# Everything that means "MOM is not there right now".
_DOWN_ERRORS = (OSError, xmlrpc.client.Error, http.client.HTTPException)


class ProcessMomFront(MomFront):
    """A client of the ``mom-vdsm`` service over its unix socket.

    MOM may be down or restarting; every call then logs a warning (once
    until it works again) and returns an empty result.  When MOM answers
    again, the stored policy parameters are sent again first, since a
    restarted MOM starts from its policy directory.
    """

    mode = "process"

    def __init__(self, socket_path: str = DEFAULT_SOCKET,
                 tuning_policy: str = DEFAULT_TUNING_POLICY,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(tuning_policy)
        from mom import rpc
        self.socket_path = socket_path
        self._proxy = rpc.connect(socket_path, timeout)
        self._proxy_lock = threading.Lock()     # ServerProxy is not thread-safe
        self._resync = False
        # Calls an older MOM may not know, and what replaces them then.
        self._fallbacks = {"getHostStatistics"}

    def _call(self, method: str, *args: Any, default: Any = None,
              resync: bool = True) -> Any:
        try:
            with self._proxy_lock:
                result = getattr(self._proxy, method)(*args)
        except xmlrpc.client.Fault as fault:        # MOM answered: it refused the call
            if fault.faultCode == _NO_SUCH_METHOD and method in self._fallbacks:
                raise
            self._warn_once(f"fault:{method}", "MOM refused %s: %s", method, fault.faultString)
            return default
        except _DOWN_ERRORS as err:
            self._resync = True
            self._warn_once("down", "MOM (%s) is not available: %s: %s",
                            self.socket_path, type(err).__name__, err)
            return default
        self._problems.ok("down", "MOM (%s) is available again", self.socket_path)
        if self._resync and resync:
            self._resync = False
            text = self._parameters_text()
            if text is not None:
                self._call("setNamedPolicy", self.tuning_policy, text, resync=False)
        return result

    def _host_statistics(self) -> dict[str, Any] | None:
        # Only the host's sample: getStatistics would carry every guest's
        # too, which at 500 VMs costs VDSM more than MOM's whole cycle.
        if "getHostStatistics" in self._fallbacks:
            try:
                return self._call("getHostStatistics")
            except xmlrpc.client.Fault:
                log.info("MOM (%s) has no getHostStatistics; using getStatistics",
                         self.socket_path)
                self._fallbacks.discard("getHostStatistics")
        stats = self._call("getStatistics")
        return None if stats is None else (stats.get("host") or {})

    def _set_named_policy(self, name: str, text: str | None) -> bool:
        ok = self._call("setNamedPolicy", name, text, default=False, resync=False)
        if not ok:
            self._resync = True     # try again once MOM is back
        return bool(ok)

    def _set_policy(self, text: str) -> bool:
        return bool(self._call("setPolicy", text, default=False))

    def getStatus(self) -> str:
        return "active" if self._call("ping", default=False) else "inactive"

    def stop(self) -> None:
        """The service belongs to systemd; only the client is closed."""
        with self._proxy_lock:
            try:
                self._proxy("close")()
            except Exception:
                log.debug("closing the MOM client failed", exc_info=True)


def create_mom(vdsm_config: Any = None, *, api: Any = None, supervdsm: Any = None,
               hypervisor: Any = None,
               mom_factory: Callable[..., Any] | None = None) -> MomFront:
    """The front object for the mode ``[mom] mode`` of vdsm.conf names.

    Keys of ``[mom]``: ``mode`` (``process`` or ``thread``), ``conf``
    (MOM's config file, thread mode), ``tuning_policy`` (the policy
    ``setPolicyParameters`` rewrites), ``socket`` (process mode).
    Thread mode only: ``api``/``supervdsm`` are VDSM's modules if VDSM
    hands them over (else MOM imports them); ``hypervisor`` and
    ``mom_factory`` are for tests.
    """
    mode = _option(vdsm_config, "mode", DEFAULT_MODE).lower()
    tuning_policy = _option(vdsm_config, "tuning_policy", DEFAULT_TUNING_POLICY)
    if mode == "thread":
        conf = _option(vdsm_config, "conf", DEFAULT_CONF)
        return ThreadMomFront(conf, tuning_policy, hypervisor=hypervisor, api=api,
                              supervdsm=supervdsm, mom_factory=mom_factory)
    if mode == "process":
        socket_path = _option(vdsm_config, "socket", DEFAULT_SOCKET)
        return ProcessMomFront(socket_path, tuning_policy)
    raise ValueError(f"vdsm.conf [mom] mode = {mode!r} is not one of {', '.join(MODES)}")
