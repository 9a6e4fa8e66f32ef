"""Process mode end to end, with real processes and sockets: ``momd -c
CONF`` (VDSM's shipped process-mode mom.conf, adjusted only for paths and
short intervals) talks JSON-RPC over STOMP with mutual TLS to the fake
VDSM server, and VDSM's front object (``ProcessMomFront``) talks to
momd's unix socket.

- the shipped files: the process conf has VDSM's shape and momd accepts it;
- non-regression: one fake VDSM scene and the stock policies give the same
  balloon, KSM, vCPU and I/O calls in thread mode and in process mode;
- resilience: momd SIGKILLed and restarted under VDSM's front object;
  VDSM stopped for 20 s and restarted under a running momd;
- readiness: the front never sees a host without KSM fields.
"""
from __future__ import annotations

import configparser
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fake_vdsm_server import FakeVdsmServer, fakevdsm
from waiting import wait_for

import vdsm_plugin
from mom import config as mom_config
from mom import hypervisor, rpc
from mom.hypervisor.base import HypervisorError
from vdsm_plugin import momif

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_DIR = os.path.join(ROOT, "tests", "fake_vdsm")
if FAKE_DIR not in sys.path:
    sys.path.insert(0, FAKE_DIR)

import fakehost  # the fake host's /proc and /sys (tests/fake_vdsm)

GiB = 1024 * 1024            # in KiB
MiB = 1024
#: Every interval of both shipped confs, shortened alike.
INTERVAL = 0.1
INTERVAL_KEYS = ("main-loop-interval", "host-monitor-interval", "guest-monitor-interval",
                 "guest-manager-interval", "policy-engine-interval")
KSM_STATS_KEYS = {"ksmState", "ksmPages", "ksmMergeAcrossNodes", "memShared", "ksmCpu"}
ACTIONS = ("setBalloonTarget", "setCpuTuneQuota", "setCpuTunePeriod", "setIoTune",
           "ksmTune")
IO_POLICY = [{"name": "vda", "path": "/rhev/data-center/disk/vda",
              "guaranteed": {"total_bytes_sec": 1000},
              "maximum": {"total_bytes_sec": 5000, "read_iops_sec": 300}}]


# -- configuration ------------------------------------------------------------

def shipped(name: str) -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str
    config.read(vdsm_plugin.data_path(name))
    return config


def adjusted(name: str, path: str, host: fakehost.FakeHost,
             **sections: dict[str, str]) -> str:
    """A shipped conf pointed at the fake host and the package's policies,
    with short intervals, plus ``sections`` (paths, VDSM's address)."""
    config = shipped(name)
    for key in INTERVAL_KEYS:
        config.set("main", key, str(INTERVAL))
    config.set("main", "policy-dir", vdsm_plugin.data_path(vdsm_plugin.POLICY_DIR))
    for key, value in host.mom_overrides()["host"].items():
        config.set("host", key, value)
    for section, values in sections.items():
        for key, value in values.items():
            config.set(section, key, value)
    with open(path, "w", encoding="utf-8") as handle:
        config.write(handle)
    return path


def process_conf(tmp: Any, host: fakehost.FakeHost, server: FakeVdsmServer,
                 **vdsm: str) -> str:
    """VDSM's process-mode mom.conf for this test: socket and log in tmp,
    VDSM's address and TLS files those of the fake server."""
    return adjusted(vdsm_plugin.PROCESS_CONF, str(tmp / "mom.conf"), host,
                    main={"rpc-port": str(tmp / "mom-vdsm.sock")},
                    logging={"log": str(tmp / "mom.log")},
                    vdsm={**server.vdsm_section(), **vdsm})


def test_process_conf_is_vdsms_shape() -> None:
    raw = shipped(vdsm_plugin.PROCESS_CONF)
    assert not raw.has_option("vdsm", "ssl")          # TLS follows vdsm.conf
    conf = mom_config.load(vdsm_plugin.data_path(vdsm_plugin.PROCESS_CONF))
    assert conf.hypervisor_interface == "vdsmjsonrpcclient"
    assert conf.rpc == momif.DEFAULT_SOCKET == "/run/vdsm/mom-vdsm.sock"
    assert conf.policy_dir == "/etc/vdsm/mom.d"
    assert {getattr(conf.intervals, f) for f in (
        "main_loop", "host_monitor", "guest_monitor", "guest_manager",
        "policy_engine")} == {15.0}
    assert conf.controllers == ("Balloon", "KSM", "CpuTune", "IoTune")
    assert conf.host_collectors == ("HostMemory", "HostKSM", "HostCpu")
    assert conf.guest_collectors == ("GuestMemoryOptional", "GuestBalloonOptional",
                                     "GuestCpuTune", "GuestIoTuneOptional")
    vdsm = conf.vdsm
    assert (vdsm.host, vdsm.port, vdsm.ssl, vdsm.request_timeout) == (
        "127.0.0.1", 54321, None, 10.0)
    assert [vdsm.pki_path(f) for f in (vdsm.key_file, vdsm.cert_file, vdsm.ca_cert_file)] == [
        "/etc/pki/vdsm/keys/vdsmkey.pem", "/etc/pki/vdsm/certs/vdsmcert.pem",
        "/etc/pki/vdsm/certs/cacert.pem"]


def test_momd_accepts_the_shipped_conf_as_mom_vdsm_service_runs_it() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(vdsm_plugin.data_path(vdsm_plugin.SERVICE_UNIT))
    assert unit.get("Service", "ExecStart").split() == [
        "/usr/bin/momd", "-c", "/etc/vdsm/mom.conf"]
    # Only the policy directory of this host differs from an installed one.
    out = subprocess.run(
        [sys.executable, "-m", "mom", "--check-config",
         "-c", vdsm_plugin.data_path(vdsm_plugin.PROCESS_CONF),
         "-P", vdsm_plugin.data_path(vdsm_plugin.POLICY_DIR)],
        cwd=ROOT, capture_output=True, text=True, timeout=20, check=False)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout.startswith("configuration OK")


def test_max_retry_interval_bounds_the_backoff(tmp_path: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:                  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = tmp_path / "mom.conf"
    path.write_text("[main]\nhypervisor-interface = vdsmjsonrpcclient\n"
                    f"[vdsm]\nport = {port}\nssl = false\nmax-retry-interval = 4\n")
    hv = hypervisor.create(mom_config.load(str(path)))
    try:
        with pytest.raises(HypervisorError):
            hv.poll()
    finally:
        hv.close()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
            and "backoff up to 4 s" in r.getMessage()] != []
    path.write_text("[vdsm]\nmax-retry-interval = 0\n")
    with pytest.raises(mom_config.ConfigError, match="max-retry-interval"):
        mom_config.load(str(path))


# -- momd as a process --------------------------------------------------------

class Momd:
    """``momd -c CONF``, as mom-vdsm.service runs it."""

    def __init__(self, conf: str, log: str, errors: str) -> None:
        self.conf, self.log, self.errors = conf, log, errors
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Momd:
        with open(self.errors, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "mom", "-c", self.conf],
                                         cwd=ROOT, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def threads(self) -> int:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status
                        if line.startswith("Threads:"))

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def lines(self, level: str, text: str = "") -> list[str]:
        with open(self.log, encoding="utf-8") as handle:
            return [line for line in handle if f" - {level} - " in line and text in line]


@pytest.fixture
def procs() -> Iterator[list[Any]]:
    """Things to stop at the end: Momd, FakeVdsmServer, front objects."""
    started: list[Any] = []
    yield started
    for thing in reversed(started):
        thing.stop()


def start_momd(tmp: Any, conf: str, procs: list[Any]) -> Momd:
    momd = Momd(conf, str(tmp / "mom.log"), str(tmp / "momd.stderr"))
    procs.append(momd)
    return momd.start()


def serving(sock: str) -> bool:
    try:
        return bool(rpc.connect(sock, timeout=5).ping())
    except OSError:
        return False


def front_for(sock: str, procs: list[Any]) -> momif.ProcessMomFront:
    """VDSM's front object, as VDSM builds it from vdsm.conf."""
    front = vdsm_plugin.create_mom({"mom": {"mode": "process", "socket": sock}})
    assert isinstance(front, momif.ProcessMomFront)
    procs.append(front)
    return front


def front_messages(caplog: pytest.LogCaptureFixture, text: str,
                   level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "vdsm.mom"
            and r.levelno == level and text in r.getMessage()]


# -- non-regression: thread mode and process mode act alike -------------------

def build_scene(root: str) -> tuple[fakevdsm.FakeVdsm, fakehost.FakeHost]:
    """VMs covering each policy, on a host short of memory (6% free)."""
    state = fakevdsm.FakeVdsm()
    host = fakehost.FakeHost(root, mem_total=16 * GiB, mem_free=1 * GiB, cpus=2)
    host.attach(state)
    state.add_vm(name="small", used=512 * MiB, balloon_min=1600 * MiB)   # to balloon_min
    state.add_vm(name="busy", used=1300 * MiB)              # to its floor, step by step
    state.add_vm(name="half", used=700 * MiB, vcpu_user_limit=50, vcpu_count=1)
    state.add_vm(name="no-agent", agent=False, vcpu_user_limit=50, vcpu_count=2)
    state.add_vm(name="tiny-cpu", balloon=False, vcpu_user_limit=10, vcpu_count=100)
    state.add_vm(name="disk", used=900 * MiB, io_policy=IO_POLICY,
                 io_current={"vda": {"total_bytes_sec": 4000}})
    state.add_vm(name="paused", status="Paused", vcpu_user_limit=50)
    return state, host


def action_count(state: fakevdsm.FakeVdsm) -> int:
    with state.lock:
        return sum(state.calls[verb] for verb in ACTIONS)


def settle(state: fakevdsm.FakeVdsm, polls: int = 8, timeout: float = 15.0) -> None:
    """Wait until ``polls`` cycles (getAllVmStats calls) pass without any
    balloon, vCPU, I/O or KSM call: the fixed point."""
    deadline = time.monotonic() + timeout
    actions, since = action_count(state), state.calls["getAllVmStats"]
    while True:
        time.sleep(INTERVAL / 2)
        now = action_count(state)
        if now != actions:
            actions, since = now, state.calls["getAllVmStats"]
        elif state.calls["getAllVmStats"] - since >= polls:
            return
        assert time.monotonic() < deadline, "no fixed point reached"


def outcome(state: fakevdsm.FakeVdsm, host: fakehost.FakeHost) -> dict[str, Any]:
    """Every call that changed something, per VM and for KSM, and where it ended."""
    with state.lock:
        vms = {vm.name: {
            "balloon": [int(t) for t in state.calls_for("setBalloonTarget", vm.vm_id)],
            "quota": [int(q) for q in state.calls_for("setCpuTuneQuota", vm.vm_id)],
            "period": [int(p) for p in state.calls_for("setCpuTunePeriod", vm.vm_id)],
            "io calls": len(state.calls_for("setIoTune", vm.vm_id)),
            "end": (vm.balloon_cur, vm.vcpu_quota, vm.vcpu_period, vm.io_current),
        } for vm in state.vms.values()}
        ksm_calls = [dict(call) for call in state.ksm_calls]
    return {"vms": vms, "ksm calls": ksm_calls,
            "ksm": {k: host.ksm(k) for k in ("run", "pages_to_scan", "sleep_millisecs",
                                              "merge_across_nodes")}}


def run_thread_mode(tmp: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state, host = build_scene(str(tmp / "thread-host"))
    fakevdsm.install(state)                       # what `import API` serves
    conf = adjusted(vdsm_plugin.THREAD_CONF, str(tmp / "thread.conf"), host)
    front = vdsm_plugin.create_mom({"mom": {"mode": "thread", "conf": conf}})
    try:
        assert front.setPolicyParameters({"balloonEnabled": True}) is True
        wait_for(lambda: host.ksm("pages_to_scan") == 1250, timeout=10, what="KSM at max")
        settle(state)
        stats = front.getKsmStats()
    finally:
        front.stop()
    return outcome(state, host), stats


def run_process_mode(tmp: Any, pki: Any, procs: list[Any]) -> tuple[dict[str, Any],
                                                                      dict[str, Any]]:
    state, host = build_scene(str(tmp / "process-host"))
    server = FakeVdsmServer(state, pki=pki).start()
    procs.append(server)
    momd = start_momd(tmp, process_conf(tmp, host, server), procs)
    sock = str(tmp / "mom-vdsm.sock")
    front = front_for(sock, procs)
    wait_for(lambda: serving(sock), timeout=10, what="momd serving")
    assert front.setPolicyParameters({"balloonEnabled": True}) is True
    wait_for(lambda: host.ksm("pages_to_scan") == 1250, timeout=10, what="KSM at max")
    settle(state)
    stats = front.getKsmStats()
    assert momd.stop() == 0
    assert server.count("Host.getAllVmStats") == state.calls["getAllVmStats"] > 0
    return outcome(state, host), stats


def test_thread_and_process_mode_make_the_same_calls(tmp_path: Any, pki: Any,
                                                     procs: list[Any]) -> None:
    thread, thread_stats = run_thread_mode(tmp_path)
    process, process_stats = run_process_mode(tmp_path, pki, procs)

    # The scene exercised every policy (so equality below means something).
    vms = thread["vms"]
    assert vms["small"]["balloon"][-1] == vms["small"]["end"][0] == 1600 * MiB
    assert len(vms["busy"]["balloon"]) >= 3                   # several steps down
    assert vms["half"]["quota"] == [100000] and vms["half"]["period"] == []   # in force
    assert vms["tiny-cpu"]["quota"] != [] and vms["tiny-cpu"]["balloon"] == []
    assert vms["no-agent"]["balloon"] == [] and vms["no-agent"]["quota"] == [50000]
    assert vms["disk"]["io calls"] == 1
    assert vms["disk"]["end"][3]["vda"]["total_bytes_sec"] == 5000
    assert vms["paused"] == {"balloon": [], "quota": [], "period": [], "io calls": 0,
                             "end": (2048 * MiB, -1, 100000, {})}
    assert [c.get("pages_to_scan") for c in thread["ksm calls"]] == [400, 700, 1000, 1250]
    assert thread["ksm"] == {"run": 1, "pages_to_scan": 1250, "sleep_millisecs": 10,
                             "merge_across_nodes": 1}

    # Process mode: the same calls, in the same order per VM, and the same end.
    assert process == thread
    assert set(thread_stats) == KSM_STATS_KEYS
    assert process_stats == thread_stats


# -- resilience -----------------------------------------------------------------

def test_front_survives_momd_killed_and_restarted(tmp_path: Any, pki: Any, procs: list[Any],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vdsm.mom")
    state = fakevdsm.FakeVdsm()
    host = fakehost.FakeHost(str(tmp_path / "host"), mem_total=16 * GiB, mem_free=1 * GiB)
    host.attach(state)
    state.add_vms(2)
    server = FakeVdsmServer(state, pki=pki).start()
    procs.append(server)
    momd = start_momd(tmp_path, process_conf(tmp_path, host, server), procs)
    sock = str(tmp_path / "mom-vdsm.sock")
    front = front_for(sock, procs)
    wait_for(lambda: serving(sock), timeout=10, what="momd serving")

    assert front.setPolicyParameters({"balloonEnabled": True}) is True
    assert set(front.getKsmStats()) == KSM_STATS_KEYS
    wait_for(lambda: host.ksm("run") == 1, what="KSM running under pressure")

    momd.kill()
    for _ in range(3):
        assert front.getKsmStats() == {}
        assert front.getStatus() == "inactive"
    # stored for later, not lost
    assert front.setPolicyParameters({"ksmEnabled": False}) is False
    assert len(front_messages(caplog, "is not available")) == 1

    momd.start()                                  # the stale socket is replaced
    stats = wait_for(lambda: front.getKsmStats(), timeout=10, what="KSM stats again")
    assert set(stats) == KSM_STATS_KEYS
    assert front.getStatus() == "active"
    # The front sent its stored parameters to the new momd, which acts on them.
    assert rpc.connect(sock).getNamedPolicies()["01-parameters"] == (
        "(set balloonEnabled True)\n(set ksmEnabled False)\n")
    wait_for(lambda: host.ksm("run") == 0, what="KSM stopped by the re-sent parameters")
    assert front.setPolicyParameters({"ksmEnabled": True}) is True
    wait_for(lambda: host.ksm("run") == 1, what="KSM running again")
    assert len(front_messages(caplog, "is not available")) == 1
    assert len(front_messages(caplog, "available again", logging.INFO)) == 1


OUTAGE = 20.0


def test_momd_rides_out_a_20_s_vdsm_outage(tmp_path: Any, pki: Any, procs: list[Any]) -> None:
    state = fakevdsm.FakeVdsm()
    host = fakehost.FakeHost(str(tmp_path / "host"), mem_total=16 * GiB, mem_free=12 * GiB)
    host.attach(state)
    state.add_vm(name="before", vcpu_user_limit=50)
    server = FakeVdsmServer(state, pki=pki).start()
    procs.append(server)
    # The shipped 1 s .. 60 s backoff, capped at 2 s so that the test does
    # not wait out a long pause after VDSM is back.
    momd = start_momd(tmp_path, process_conf(tmp_path, host, server,
                                             **{"max-retry-interval": "2"}), procs)
    wait_for(lambda: state.vms["00000000-0000-0000-0000-000000000000"].vcpu_quota == 50000,
             timeout=10, what="first guest managed")
    wait_for(lambda: state.calls["getAllVmStats"] >= 10, what="steady cycles")
    threads, fds = momd.threads(), momd.fds()
    port = server.port

    server.stop()
    stopped = time.monotonic()
    late = state.add_vm(name="late", vcpu_user_limit=25)      # started while VDSM was away
    while time.monotonic() - stopped < OUTAGE:
        assert momd.alive()
        time.sleep(0.5)
    # Many attempts later: the same threads, and no socket left behind
    # (the one to VDSM is closed).
    assert (momd.threads(), momd.fds()) == (threads, fds - 1)

    server.start()
    assert server.port == port
    wait_for(lambda: late.vcpu_quota == 25000, timeout=5, what="managing guests again")
    assert momd.alive()
    assert (momd.threads(), momd.fds()) == (threads, fds)
    # one warning for the whole outage (and none from the cycle besides)
    assert [line.split(" - ")[1:3] for line in momd.lines("WARNING")] == [
        ["mom.hypervisor.vdsm_rpc", "WARNING"]]
    assert "cannot connect to VDSM" in momd.lines("WARNING")[0]
    assert len(momd.lines("INFO", "VDSM at")) == 2          # connected, answers again
    assert "answers again" in momd.lines("INFO", "VDSM at")[1]


# -- readiness ------------------------------------------------------------------

def test_front_never_sees_a_host_without_ksm_fields(tmp_path: Any, pki: Any,
                                                    procs: list[Any],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="vdsm.mom")
    state = fakevdsm.FakeVdsm()
    host = fakehost.FakeHost(str(tmp_path / "host"))
    host.attach(state)
    state.add_vms(3)
    server = FakeVdsmServer(state, pki=pki).start()
    procs.append(server)
    conf = process_conf(tmp_path, host, server)
    front = front_for(str(tmp_path / "mom-vdsm.sock"), procs)
    momd = start_momd(tmp_path, conf, procs)
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15
    while len(answers) < 20:                      # from process start, no pause
        stats = front.getKsmStats()
        if stats:
            answers.append(stats)
        assert time.monotonic() < deadline and momd.alive()
    assert all(set(stats) == KSM_STATS_KEYS for stats in answers)
    assert front_messages(caplog, "no host statistics", logging.DEBUG) == []
    assert front_messages(caplog, "lack KSM") == []
