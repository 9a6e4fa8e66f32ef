"""The MOM object: configuration, the worker, and the exported API.

VDSM (thread mode) builds ``MOM(conf)`` and runs ``run()`` in its thread
named ``MOM``: that thread runs the cycle itself, so MOM adds no thread of
its own.  ``start()`` instead runs the cycle in one new worker thread and
returns; ``momd`` calls ``run()`` in its main thread.  Add one thread for
the RPC server when ``rpc-port`` is set, whatever the number of guests.
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
from mom.config import ConfigError
from mom.controllers.base import ControllerContext
from mom.cycle import Cycle
from mom.guest_manager import GuestManager
from mom.host_monitor import build_host_monitor
from mom.hypervisor.base import Hypervisor
from mom.logsetup import LogSetup
from mom.plotter import new_run_dir
from mom.policy import DEFAULT_POLICY_NAME, PolicyError, PolicySet
from mom.policy.policy_set import read_policy_file
from mom.policy_engine import PolicyEngine
from mom.reporting import Conditions
from mom.rpc import RpcServer

log = logging.getLogger(__name__)

# How long shutdown() waits for the worker, and for the hypervisor to
# close: a hung hypervisor call must not hang the program that embeds MOM
# (3 s in all at most).
STOP_TIMEOUT = 1.5
CLOSE_TIMEOUT = 1.0


class MOM:
    """Memory Overcommitment Manager, embeddable.

    ``conf_file`` is a mom.conf path (``''`` for the built-in defaults);
    ``conf_overrides`` is a ConfigParser whose values win over the file's;
    ``hypervisor``, if given, is used instead of building the back-end named
    by ``hypervisor-interface`` (VDSM, the simulator and tests pass one in).
    Raises ConfigError for a bad configuration, before any thread starts.
    """

    def __init__(self, conf_file: str = "",
                 conf_overrides: configparser.ConfigParser | None = None,
                 hypervisor: Hypervisor | None = None) -> None:
        self.settings = mom_config.load(conf_file, conf_overrides)
        self._check_policy_paths()
        self._logging = LogSetup(self.settings)
        self._lock = threading.Lock()
        self._state = "new"                      # new -> running -> stopped
        self._stopping = threading.Event()
        self._wakeup = threading.Event()
        self._stopped = threading.Event()
        self._ready = threading.Event()          # the first host sample exists
        self._worker: threading.Thread | None = None
        self._running_in: threading.Thread | None = None
        self._work_done = threading.Event()      # the cycle loop has ended
        self._rpc: RpcServer | None = None
        self._problems = Conditions(log)

        self.policies = PolicySet(max_steps=self.settings.policy_max_steps,
                                  max_seconds=self.settings.policy_max_seconds)
        self._load_policies()

        settings = self.settings
        if settings.rpc is not None:
            # Bound now, before connecting to anything: a port in use or a
            # live MOM on the socket is a start-up error.  Calls are served
            # only once the first host sample exists (wait_ready).
            self._rpc = RpcServer(self, settings.rpc, ready=self.wait_ready,
                                  socket_group=settings.rpc_socket_group or None)
        try:
            self._build(hypervisor)
        except BaseException:
            if self._rpc is not None:
                self._rpc.stop()
            raise

    def _build(self, hypervisor: Hypervisor | None) -> None:
        settings = self.settings
        self.hypervisor = hypervisor if hypervisor is not None else hypervisors.create(settings)
        run_dir = new_run_dir(settings.plot_dir) if settings.plot_dir else None
        self.cycle: Cycle  # set below; collectors read its clock
        clock = lambda: self.cycle.now  # noqa: E731  (the cycle exists before any collect)
        self.host_monitor = build_host_monitor(settings, self.hypervisor, run_dir, clock)
        self.guest_manager = GuestManager(settings, self.hypervisor, run_dir, clock)
        ctx = ControllerContext(settings, self.hypervisor)
        self.controllers = [controllers.get_controller(name)(ctx)
                            for name in settings.controllers]
        self.policy_engine = PolicyEngine(self.policies, self.controllers)
        self.cycle = Cycle(settings.intervals, self.hypervisor, self.host_monitor,
                           self.guest_manager, self.policy_engine)

    # -- life cycle -------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread and return; harmless when already
        started or stopped."""
        if not self._begin():
            return
        self._worker = threading.Thread(target=self._work, name="MOMWorker", daemon=True)
        self._worker.start()

    def run(self) -> None:
        """Run the cycle in the calling thread until shutdown() (from a
        signal or another thread).  After start(), just wait for shutdown."""
        if self._begin():
            self._running_in = threading.current_thread()
            self._work()
        self._stopped.wait()

    def _begin(self) -> bool:
        with self._lock:
            if self._state != "new":
                log.debug("MOM is %s already", self._state)
                return False
            self._state = "running"
            if self._rpc is not None:
                self._rpc.start()
        log.info("MOM started (%s, %d controllers, policies: %s)",
                 self.hypervisor.name, len(self.controllers),
                 ", ".join(sorted(self.policies.get_policies())) or "none")
        return True

    def _work(self) -> None:
        """The worker: run the cycle when due, sleep until the next step."""
        try:
            self._loop()
        finally:
            self._work_done.set()

    def _loop(self) -> None:
        cycle = self.cycle
        while not self._stopping.is_set():
            try:
                next_due = cycle.run(time.monotonic())
            except KeyboardInterrupt:
                raise
            except BaseException as err:   # never dies of a step
                self._problems.fail("cycle", f"the cycle failed: {type(err).__name__}: "
                                    f"{err}; it goes on", level=logging.ERROR,
                                    exc_info=err, summary=type(err).__name__)
                next_due = time.monotonic() + self.settings.intervals.host_monitor
            else:
                self._problems.ok("cycle", "the cycle works again")
            if self.host_monitor.stamp is not None:
                self._ready.set()
            delay = next_due - time.monotonic()
            if delay > 0:
                self._wakeup.wait(delay)
            self._wakeup.clear()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once MOM has its first host sample (what RPC callers need)."""
        return self._ready.wait(timeout)

    def shutdown(self) -> None:
        """Stop the worker; returns within a few seconds even if a call hangs."""
        with self._lock:
            if self._state == "stopped":
                return
            was_running = self._state == "running"
            self._state = "stopped"
        self._stopping.set()
        self._wakeup.set()
        worker = self._worker or self._running_in
        if worker is not None and worker is not threading.current_thread():
            if not self._work_done.wait(STOP_TIMEOUT):
                log.warning("the MOM worker did not stop within %.1f s (a hypervisor "
                            "call may hang); it ends when the call returns", STOP_TIMEOUT)
        if self._rpc is not None:
            self._rpc.stop(timeout=0.5)
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

    def threads(self) -> list[threading.Thread]:
        """Threads MOM started itself (worker and RPC), for monitoring and tests."""
        found: list[threading.Thread] = []
        if self._worker is not None:
            found.append(self._worker)
        if self._rpc is not None:
            found.extend(self._rpc.threads())
        return [t for t in found if t.is_alive()]

    # -- policies ---------------------------------------------------------
    def _check_policy_paths(self) -> None:
        # Here, not in config.validate: a shipped mom.conf naming paths of
        # the host it is installed on must still validate elsewhere.
        policy, policy_dir = self.settings.policy, self.settings.policy_dir
        if policy and not os.path.isfile(policy):
            raise ConfigError(f"[main] policy = {policy!r}: no such file")
        if policy_dir and not os.path.isdir(policy_dir):
            raise ConfigError(f"[main] policy-dir = {policy_dir!r}: no such directory")

    def _load_policies(self) -> bool:
        """Load what policy / policy-dir name; False if something was refused."""
        policy, policy_dir = self.settings.policy, self.settings.policy_dir
        try:
            if policy_dir:
                return not self.policies.load_directory(policy_dir)
            # One replace: a file that does not parse changes nothing.
            self.policies.replace(
                {DEFAULT_POLICY_NAME: read_policy_file(policy, DEFAULT_POLICY_NAME)}
                if policy else {})
            return True
        except (PolicyError, OSError) as err:
            log.error("policy not loaded: %s", err)
            return False

    def _policy_changed(self) -> None:
        self.cycle.policy_changed()
        self._wakeup.set()

    # -- the exported API (also served over RPC) ----------------------------
    def ping(self) -> bool:
        return True

    def getStatistics(self) -> dict[str, Any]:
        """Latest samples: ``{'host': {...}, 'guests': {name: {...}}}``."""
        host = self.host_monitor.latest() or {}
        guests = self.guest_manager.statistics()
        return {"host": _plain(host),
                "guests": {name: _plain(sample) for name, sample in guests.items()}}

    def getHostStatistics(self) -> dict[str, Any]:
        """The host's latest sample (VDSM's getKsmStats needs only this)."""
        return _plain(self.host_monitor.latest() or {})

    def getActiveGuests(self) -> list[str]:
        """Guests whose statistics are fresh enough to be acted on."""
        if self._state == "running":
            now = time.monotonic()
        else:
            now = self.cycle.now
        return self.guest_manager.active_guests(now)

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
