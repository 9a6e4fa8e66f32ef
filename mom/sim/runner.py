"""Run a scenario: the simulated host alone, or driven by a real MOM.

With a policy, a real :class:`mom.MOM` is built around a
:class:`~mom.sim.hypervisor.SimHypervisor`; its host collectors read the
simulation's /proc and /sys rendered into a temporary directory, its guest
collectors the hypervisor's poll, and its controllers act on the
simulation.  MOM's own cycle is driven with the simulated clock: the
simulation steps one second at a time and ``m.cycle.run(t)`` is called
whenever ``t`` reaches the time it asked for.  Nothing sleeps.

Policies: ``none`` (no MOM at all), ``stock`` (VDSM's stock policies with
ballooning switched on, as oVirt's engine does with setPolicyParameters),
or a directory of ``.policy`` files.
"""
from __future__ import annotations

import configparser
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from mom.sim.hypervisor import SimHypervisor
from mom.sim.model import Simulation
from mom.sim.picture import Timeline
from mom.sim.procfs import ProcTree
from mom.sim.scenario import Scenario
from mom.sim.summary import Observer, Summary

POLICY_NONE = "none"
POLICY_STOCK = "stock"
#: VDSM's upstream balloon rules, for side-by-side runs (shipped here).
POLICY_UPSTREAM = "upstream"
UPSTREAM_DIR = os.path.join(os.path.dirname(__file__), "policies", "upstream-balloon")
NAMED_POLICIES = (POLICY_NONE, POLICY_STOCK, POLICY_UPSTREAM)
GUEST_COLLECTORS = "GuestMemoryOptional, GuestBalloonOptional, GuestCpuTune, GuestIoTune"
HOST_COLLECTORS = "HostMemory, HostKSM, HostCpu"
CONTROLLERS = "Balloon, KSM, CpuTune, IoTune"
HISTORY_LENGTH = 10                   # as VDSM's mom.conf


class SimRunError(RuntimeError):
    """The run cannot start (e.g. the policy directory does not exist)."""


@dataclass
class RunResult:
    summary: Summary
    timeline: Timeline
    simulation: Simulation


def policy_label(policy: str) -> str:
    if policy in NAMED_POLICIES:
        return policy
    return os.path.basename(os.path.normpath(policy)) or policy


def write_stock_policies(folder: str) -> str:
    """VDSM's stock policy set with ballooning on, written into ``folder``."""
    import vdsm_plugin
    from vdsm_plugin.momif import render_parameters

    source = vdsm_plugin.data_path(vdsm_plugin.POLICY_DIR)
    os.makedirs(folder, exist_ok=True)
    for name in sorted(os.listdir(source)):
        if name.endswith(".policy"):
            shutil.copyfile(os.path.join(source, name), os.path.join(folder, name))
    with open(os.path.join(folder, "01-parameters.policy"), "w", encoding="utf-8") as f:
        f.write("# Written by mom-sim, as VDSM's setPolicyParameters would.\n")
        f.write(render_parameters({"balloonEnabled": True}))
    return folder


def mom_overrides(interval: float, policy_dir: str, tree: ProcTree) -> configparser.ConfigParser:
    """MOM's settings for a simulated VDSM host (VDSM's mom.conf, every
    interval the scenario's, host files from the rendered tree)."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str            # type: ignore[assignment,method-assign]
    every = f"{interval:g}"
    conf.read_dict({
        "main": {"main-loop-interval": every, "host-monitor-interval": every,
                 "guest-monitor-interval": every, "guest-manager-interval": every,
                 "policy-engine-interval": every,
                 "sample-history-length": str(HISTORY_LENGTH),
                 "controllers": CONTROLLERS, "policy-dir": policy_dir,
                 "rpc-port": "-1", "plot-dir": ""},
        "logging": {"log": "stdio", "verbosity": "warning"},
        "host": {"collectors": HOST_COLLECTORS, "proc-root": tree.proc_root,
                 "sys-root": tree.sys_root},
        "guest": {"collectors": GUEST_COLLECTORS},
    })
    return conf


def run(scenario: Scenario, policy: str = POLICY_STOCK, *,
        on_step: Callable[[Simulation], None] | None = None,
        progress: Callable[[int], None] | None = None,
        sample_every: int = 5) -> RunResult:
    """Run ``scenario`` under ``policy``; ``on_step(sim)`` is called after
    every simulated second (the tests check the books there) and
    ``progress(seconds)`` now and then with the simulated seconds done since
    the last call."""
    if policy not in NAMED_POLICIES and not os.path.isdir(policy):
        raise SimRunError(f"policy directory {policy!r} does not exist")
    label = policy_label(policy)
    sim = Simulation(scenario)
    observer = Observer(sim, f"{scenario.name} (seed {scenario.seed}), policy: {label}",
                        sample_every)
    duration = int(scenario.duration)
    report_every = max(1, int(scenario.interval))
    with tempfile.TemporaryDirectory(prefix="mom-sim-", dir=_fast_tmp()) as workdir:
        driver = None
        if policy != POLICY_NONE:
            policy_dir = (write_stock_policies(os.path.join(workdir, "policies"))
                          if policy == POLICY_STOCK else
                          UPSTREAM_DIR if policy == POLICY_UPSTREAM else policy)
            driver = MomDriver(sim, scenario, policy_dir, workdir)
        try:
            done = 0
            while sim.now < duration:
                if driver is not None:
                    driver.maybe_run()
                sim.step()
                if on_step is not None:
                    on_step(sim)
                observer.observe()
                if progress is not None and sim.now - done >= report_every:
                    progress(sim.now - done)
                    done = sim.now
            if progress is not None and sim.now > done:
                progress(sim.now - done)
        finally:
            if driver is not None:
                driver.close()
    return RunResult(observer.summary(label), observer.timeline, sim)


def _fast_tmp() -> str | None:
    """A memory-backed temporary directory when the host has one: the host's
    /proc text is rewritten every cycle, and a disk-backed /tmp can make
    that the slowest part of a run."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


class MomDriver:
    """A real MOM on the simulated host, cycled by the simulated clock."""

    def __init__(self, sim: Simulation, scenario: Scenario, policy_dir: str,
                 workdir: str) -> None:
        import mom

        self.sim = sim
        self.tree = ProcTree(os.path.join(workdir, "host"), sim)
        self.tree.render()
        try:
            self.mom = mom.MOM("", mom_overrides(scenario.interval, policy_dir, self.tree),
                               hypervisor=SimHypervisor(sim))
        except mom.ConfigError as e:
            raise SimRunError(f"MOM refused the simulated host's settings: {e}") from e
        self.next_due = 0.0

    def maybe_run(self) -> None:
        """Run MOM's cycle when it is due at the simulated time."""
        now = float(self.sim.now)
        if now < self.next_due:
            return
        self.tree.render()
        self.next_due = self.mom.cycle.run(now)

    def close(self) -> None:
        self.mom.shutdown()
