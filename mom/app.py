"""The MOM object: configuration, the three loops, and the exported API.

VDSM (thread mode) builds ``MOM(conf)`` and calls ``start()``, which returns
at once with the loops running in threads of VDSM's process; ``momd`` calls
``run()``, which blocks until ``shutdown()``.  The number of threads is
fixed: host monitor, guest manager, policy engine, and the RPC server when
``rpc-port`` is set — whatever the number of guests.
"""
from __future__ import annotations

import configparser
import logging
import os
import threading
import time
from typing import Any

from mom import config as mom_config
from mom import controllers, hypervisor as hypervisors
from mom.config import ConfigError, get_interval, split_list
from mom.controllers.base import ControllerContext
from mom.guest_manager import GuestManager
from mom.host_monitor import build_host_monitor
from mom.hypervisor.base import Hypervisor
from mom.logsetup import LogSetup
from mom.loop import Loop
from mom.plotter import new_run_dir
from mom.policy import DEFAULT_POLICY_NAME, PolicyError, PolicySet
from mom.policy_engine import PolicyEngine
from mom.rpc import RpcServer

log = logging.getLogger(__name__)

# How long shutdown() waits for the loops in all, and for the hypervisor to
# close: a hung hypervisor call must not hang the program that embeds MOM.
STOP_TIMEOUT = 3.0
CLOSE_TIMEOUT = 1.0


class MOM:
    """Memory Overcommitment Manager, embeddable.

    ``conf_file`` is a mom.conf path (``''`` for the built-in defaults);
    ``conf_overrides`` is a ConfigParser whose values win over the file's;
    ``hypervisor``, if given, is used instead of building the back-end named
    by ``hypervisor-interface`` (VDSM and tests pass one in).
    Raises ConfigError for a bad configuration, before any thread starts.
    """

    def __init__(self, conf_file: str = "",
                 conf_overrides: configparser.ConfigParser | None = None,
                 hypervisor: Hypervisor | None = None) -> None:
        self.config = mom_config.load(conf_file, conf_overrides)
        self._check_policy_paths()
        self._logging = LogSetup(self.config)
        self._lock = threading.Lock()
        self._state = "new"                      # new -> running -> stopped
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._loops: list[Loop] = []
        self._engine_loop: Loop | None = None
        self._dead_loops: set[str] = set()
        self._rpc: RpcServer | None = None

        self.policies = PolicySet()
        self._load_policies()

        self.hypervisor = hypervisor if hypervisor is not None else hypervisors.create(self.config)
        plot_dir = self.config.get("main", "plot-dir").strip()
        run_dir = new_run_dir(plot_dir) if plot_dir else None
        self.host_monitor = build_host_monitor(self.config, self.hypervisor, run_dir)
        self.guest_manager = GuestManager(self.config, self.hypervisor, run_dir)
        ctx = ControllerContext(self.config, self.hypervisor)
        self.controllers = [controllers.get_controller(name)(ctx)
                            for name in split_list(self.config.get("main", "controllers"))]
        self.policy_engine = PolicyEngine(self.policies, self.host_monitor.entity,
                                          self.guest_manager.entities, self.controllers)

    # -- life cycle -------------------------------------------------------
    def start(self) -> None:
        """Start the loops and return; harmless when already started or stopped."""
        with self._lock:
            if self._state != "new":
                log.debug("start() ignored: MOM is %s", self._state)
                return
            port = mom_config.rpc_port(self.config)
            if port is not None:        # bind first: a bind error leaves nothing started
                group = self.config.get("main", "rpc-socket-group").strip() or None
                self._rpc = RpcServer(self, port, socket_group=group)
            self._state = "running"
            interval = get_interval
            self._engine_loop = Loop(
                "PolicyEngine", interval(self.config, "policy-engine-interval"),
                self.policy_engine.step, self._stopping)
            self._loops = [
                Loop("HostMonitor", interval(self.config, "host-monitor-interval"),
                     self.host_monitor.collect, self._stopping),
                Loop("GuestManager", self.guest_manager.interval,
                     self.guest_manager.step, self._stopping),
                self._engine_loop,
            ]
            for loop in self._loops:
                loop.start()
            if self._rpc is not None:
                self._rpc.start()
        log.info("MOM started (%s, %d controllers, policies: %s)",
                 self.hypervisor.name, len(self.controllers),
                 ", ".join(sorted(self.policies.get_policies())) or "none")

    def run(self) -> None:
        """Start, then block until shutdown() (from a signal or another thread)."""
        self.start()
        interval = get_interval(self.config, "main-loop-interval")
        while not self._stopped.wait(interval):
            if self._state == "running":
                self._check_loops()

    def shutdown(self) -> None:
        """Stop every loop; returns within a few seconds even if a call hangs."""
        with self._lock:
            if self._state == "stopped":
                return
            was_running = self._state == "running"
            self._state = "stopped"
        self._stopping.set()
        for loop in self._loops:
            loop.stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        for loop in self._loops:
            loop.join(max(0.0, deadline - time.monotonic()))
            if loop.is_alive():
                log.warning("%s did not stop within %.0f s (a hypervisor call may hang); "
                            "leaving it behind as a daemon thread", loop.name, STOP_TIMEOUT)
        if self._rpc is not None:
            self._rpc.stop()
        closer = threading.Thread(target=self._close_hypervisor, name="MOMClose", daemon=True)
        closer.start()
        closer.join(CLOSE_TIMEOUT)
        if was_running:
            log.info("MOM stopped")
        self._logging.close()
        self._stopped.set()

    def _close_hypervisor(self) -> None:
        try:
            self.hypervisor.close()
        except Exception:
            log.exception("closing the hypervisor interface failed")

    def _check_loops(self) -> None:
        """Report a loop whose thread ended (only something that is not an
        Exception, such as SystemExit, can end one), once."""
        for loop in self._loops:
            if (not loop.is_alive() and not self._stopping.is_set()
                    and loop.name not in self._dead_loops):
                self._dead_loops.add(loop.name)
                log.error("%s ended unexpectedly", loop.name)

    def threads(self) -> list[threading.Thread]:
        """MOM's own threads (loops and RPC), for monitoring and tests."""
        found: list[threading.Thread] = list(self._loops)
        if self._rpc is not None:
            found.append(self._rpc.thread)
        return [t for t in found if t.is_alive()]

    # -- policies ---------------------------------------------------------
    def _check_policy_paths(self) -> None:
        # Here, not in config.validate: a shipped mom.conf naming paths of
        # the host it is installed on must still validate elsewhere.
        policy = self.config.get("main", "policy").strip()
        policy_dir = self.config.get("main", "policy-dir").strip()
        if policy and not os.path.isfile(policy):
            raise ConfigError(f"[main] policy = {policy!r}: no such file")
        if policy_dir and not os.path.isdir(policy_dir):
            raise ConfigError(f"[main] policy-dir = {policy_dir!r}: no such directory")

    def _load_policies(self) -> bool:
        """Load what policy / policy-dir name; False if something was refused."""
        policy = self.config.get("main", "policy").strip()
        policy_dir = self.config.get("main", "policy-dir").strip()
        try:
            if policy_dir:
                return not self.policies.load_directory(policy_dir)
            self.policies.replace({})
            if policy:
                self.policies.load_file(policy, DEFAULT_POLICY_NAME)
            return True
        except (PolicyError, OSError) as err:
            log.error("policy not loaded: %s", err)
            return False

    def _policy_changed(self) -> None:
        if self._engine_loop is not None:
            self._engine_loop.wake()

    # -- the exported API (also served over RPC) ----------------------------
    def ping(self) -> bool:
        return True

    def getStatistics(self) -> dict[str, Any]:
        """Latest samples: ``{'host': {...}, 'guests': {name: {...}}}``."""
        host = self.host_monitor.latest() or {}
        guests = self.guest_manager.statistics()
        return {"host": _plain(host),
                "guests": {name: _plain(sample) for name, sample in guests.items()}}

    def getActiveGuests(self) -> list[str]:
        return self.guest_manager.active_guests()

    def setPolicy(self, text: str | None) -> bool:
        """Replace the single default policy; None removes it."""
        return self.setNamedPolicy(DEFAULT_POLICY_NAME, text)

    def setNamedPolicy(self, name: str, text: str | None) -> bool:
        """Set (or with None delete) one named policy; False if it does not parse."""
        try:
            self.policies.set_policy(name, text)
        except PolicyError as err:
            log.error("policy %r refused, the previous policy stays in force: %s", name, err)
            return False
        log.info("policy %r %s", name, "removed" if text is None else "set")
        self._policy_changed()
        return True

    def getPolicy(self) -> str:
        return self.policies.get_text()

    def getNamedPolicies(self) -> dict[str, str]:
        return self.policies.get_policies()

    def resetPolicies(self) -> bool:
        """Back to what policy / policy-dir hold."""
        ok = self._load_policies()
        self._policy_changed()
        return ok

    def setVerbosity(self, level: str | int) -> bool:
        try:
            self._logging.set_verbosity(level)
        except ValueError as err:
            log.error("setVerbosity: %s", err)
            return False
        return True


def _plain(sample: dict[str, Any]) -> dict[str, Any]:
    """Statistics as plain data (io_tune devices become dicts) for RPC."""
    return {key: _plain_value(value) for key, value in sample.items()}


def _plain_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_value(v) for k, v in value.items()}
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: _plain_value(v) for k, v in vars(value).items() if not k.startswith("_")}
    return value
