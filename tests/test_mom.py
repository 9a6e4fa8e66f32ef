"""The MOM object end to end: real loops over a fake host (/proc, /sys files)
and a recording hypervisor, with intervals of a fraction of a second."""
from __future__ import annotations

import configparser
import importlib.metadata
import logging
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fake_vdsm"))

import fakehost  # noqa: E402
from fake_hypervisor import FakeHypervisor  # noqa: E402

from waiting import wait_for  # noqa: E402
import mom  # noqa: E402
from mom.collectors.base import Collector  # noqa: E402
from mom.hypervisor.base import GuestInfo, HypervisorError  # noqa: E402

GiB = 1024 * 1024  # KiB
INTERVAL = "0.05"

# Shrinks every guest by 5% while the host has under 20% free, grows it back
# to balloon_max otherwise; KSM runs with a fixed scan rate.
BALLOON_POLICY = """
(def pressure () (< (/ Host.mem_free Host.mem_available) 0.2))
(with Guests guest
    (guest.Control "balloon_target"
        (if (pressure)
            (max guest.balloon_min (* guest.balloon_cur 0.95))
            guest.balloon_max)))
"""
KSM_POLICY = """
(Host.Control "ksm_run" 1)
(Host.Control "ksm_pages_to_scan" 64)
"""


def guest_stats(cur=2 * GiB, max_=4 * GiB, min_=GiB):
    return {"memory": {"mem_available": max_, "mem_unused": GiB // 2, "mem_free": GiB // 2,
                       "major_fault": 1, "minor_fault": 10, "swap_in": 0, "swap_out": 0,
                       "swap_total": 0, "swap_usage": 0},
            "balloon": {"balloon_cur": cur, "balloon_max": max_, "balloon_min": min_}}


def make_hypervisor(count):
    infos = [GuestInfo(f"id-{i}", f"vm{i}", pid=None) for i in range(count)]
    return FakeHypervisor(infos, {g.id: guest_stats() for g in infos},
                          ksm={"run": 0, "pages_to_scan": 100})


def overrides(host, **main):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    values = {key: INTERVAL for key in (
        "main-loop-interval", "host-monitor-interval", "guest-monitor-interval",
        "guest-manager-interval", "policy-engine-interval")}
    values.update({"controllers": "Balloon, KSM", "hypervisor-interface": "libvirt"})
    values.update({k.replace("_", "-"): v for k, v in main.items()})
    parser.read_dict({"main": values,
                      "host": {"collectors": "HostMemory, HostKSM, HostCpu",
                               **host.mom_overrides()["host"]},
                      "guest": {"collectors": "GuestMemory, GuestBalloon"},
                      "logging": {"verbosity": "debug"}})
    return parser


@pytest.fixture
def host(tmp_path):
    return fakehost.FakeHost(str(tmp_path / "host"), mem_total=16 * GiB, mem_free=GiB)


@pytest.fixture
def running(host):
    """Start a MOM; always shut it down at the end of the test."""
    started = []

    def start(hypervisor, policy=None, **main):
        instance = mom.MOM("", overrides(host, **main), hypervisor=hypervisor)
        if isinstance(hypervisor, FakeHypervisor):
            hypervisor.on_ksm_tune = lambda params: host.set_ksm(**params)
        if policy is not None:
            assert instance.setPolicy(policy)
        instance.start()
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.shutdown()


def test_balloon_policy_moves_targets_both_ways(host, running):
    hv = make_hypervisor(2)
    instance = running(hv, BALLOON_POLICY)
    # Under pressure: every guest shrinks by 5% per cycle, step by step.
    wait_for(lambda: all(len({t for g, t in hv.calls_to("set_balloon_target") if g == gid}) >= 3
                         for gid in ("id-0", "id-1")), what="shrinking")
    for guest_id in ("id-0", "id-1"):
        targets = [t for g, t in hv.calls_to("set_balloon_target") if g == guest_id]
        assert targets[0] == int(2 * GiB * 0.95)
        # Two evaluations of one sample send the same target again: never up.
        assert all(b <= a for a, b in zip(targets, targets[1:])), targets
        assert targets[-1] < targets[0]
        assert all(t >= GiB for t in targets)
    # Plenty of free memory: guests grow back to balloon_max.
    host.set_memory(16 * GiB, 12 * GiB)
    # Grown back once MOM's own samples show balloon_max (a cycle on the
    # previous sample may still re-send the last target, harmlessly).
    wait_for(lambda: all(s["balloon_cur"] == 4 * GiB
                         for s in instance.getStatistics()["guests"].values()),
             what="growing back")
    evaluations = instance.policy_engine.evaluations
    wait_for(lambda: instance.policy_engine.evaluations >= evaluations + 2)
    calls = len(hv.calls_to("set_balloon_target"))
    time.sleep(0.3)
    # At balloon_max the target equals balloon_cur: nothing more is sent.
    assert len(hv.calls_to("set_balloon_target")) == calls


def test_ksm_controls_reach_the_hypervisor_only_when_changed(host, running):
    hv = make_hypervisor(1)
    instance = running(hv, KSM_POLICY)
    wait_for(lambda: hv.calls_to("ksm_tune"), what="first ksm_tune")
    engine_rounds = instance.policy_engine.evaluations
    wait_for(lambda: instance.policy_engine.evaluations >= engine_rounds + 5)
    assert hv.calls_to("ksm_tune") == [({"run": 1, "pages_to_scan": 64},)]
    assert instance.setPolicy(KSM_POLICY.replace("64", "128"))
    wait_for(lambda: len(hv.calls_to("ksm_tune")) == 2, what="second ksm_tune")
    assert hv.calls_to("ksm_tune")[1] == ({"pages_to_scan": 128},)


def test_statistics_come_back_with_big_numbers(tmp_path, running):
    big = fakehost.FakeHost(str(tmp_path / "big"), mem_total=3 * 2 ** 31, mem_free=2 ** 31)
    hv = make_hypervisor(2)
    instance = mom.MOM("", overrides(big), hypervisor=hv)
    instance.start()
    try:
        stats = wait_for(lambda: (s := instance.getStatistics())["guests"].keys() == {
            "vm0", "vm1"} and s["host"] and s, what="statistics")
        assert stats["host"]["mem_available"] == 3 * 2 ** 31
        assert stats["host"]["mem_unused"] == 2 ** 31
        assert stats["host"]["cpu_count"] == 1
        assert instance.getHostStatistics()["mem_available"] == 3 * 2 ** 31
        assert stats["guests"]["vm0"]["balloon_cur"] == 2 * GiB
        assert instance.getActiveGuests() == ["vm0", "vm1"]
        assert instance.ping() is True
    finally:
        instance.shutdown()


def test_policy_api_semantics(tmp_path, host, caplog):
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "10-a.policy").write_text("(defvar a 1)\n")
    (policy_dir / "20-b.policy").write_text("(defvar b 2)\n")
    instance = mom.MOM("", overrides(host, policy_dir=str(policy_dir)),
                       hypervisor=make_hypervisor(0))
    try:
        assert instance.getNamedPolicies() == {"10-a": "(defvar a 1)\n",
                                               "20-b": "(defvar b 2)\n"}
        # A policy that does not parse is refused; the old set stays, the reason is logged.
        assert instance.setNamedPolicy("15-bad", "(defvar x\n  (+ 1 2)") is False
        assert "15-bad" not in instance.getNamedPolicies()
        assert "15-bad" in caplog.text and "line" in caplog.text
        # Named policies are combined in sorted-name order.
        assert instance.setNamedPolicy("15-c", "(defvar c 3)\n") is True
        text = instance.getPolicy()
        assert text.index("defvar a") < text.index("defvar c") < text.index("defvar b")
        # setPolicy is the single default policy; None removes a policy.
        assert instance.setPolicy("(defvar d 4)\n") is True
        assert instance.getNamedPolicies()["50_main_"] == "(defvar d 4)\n"
        assert instance.setPolicy(None) is True
        assert "50_main_" not in instance.getNamedPolicies()
        # resetPolicies goes back to the directory.
        assert instance.resetPolicies() is True
        assert set(instance.getNamedPolicies()) == {"10-a", "20-b"}
    finally:
        instance.shutdown()


def test_a_policy_error_applies_nothing_that_cycle(host, running, caplog):
    hv = make_hypervisor(1)
    instance = running(hv, BALLOON_POLICY + "\n(+ 1 \"a\")\n")
    wait_for(lambda: "policy evaluation failed" in caplog.text, what="the error")
    assert hv.calls_to("set_balloon_target") == []
    assert instance.setPolicy(BALLOON_POLICY)
    wait_for(lambda: hv.calls_to("set_balloon_target"), what="balloon after fix")


def test_shutdown_is_bounded_while_a_hypervisor_call_hangs(host):
    hv = make_hypervisor(1)
    release = hv.block("poll")
    instance = mom.MOM("", overrides(host), hypervisor=hv)
    instance.start()
    try:
        assert hv.entered("poll").wait(5)
        started = time.monotonic()
        instance.shutdown()
        assert time.monotonic() - started < 3.5
    finally:
        release.set()


class Crashing(Collector):
    """A guest collector that crashes for vm0 only."""
    kind = "guest"
    fields = frozenset({"crash_probe"})
    optional_fields = frozenset({"crash_probe"})

    def collect(self):
        if self.ctx.guest.name == "vm0":
            raise ZeroDivisionError("collector bug")
        return {"crash_probe": 1}


def test_a_crashing_collector_does_not_stop_mom(host, running, monkeypatch, caplog):
    # Installed as a third-party plugin would be: through an entry point.
    plugin = importlib.metadata.EntryPoint("Crashing", f"{__name__}:Crashing", "mom.collectors")
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **kw: [plugin] if kw.get("group") == "mom.collectors"
                        else real(**kw))
    hv = make_hypervisor(2)
    parser = overrides(host)
    parser.set("guest", "collectors", "GuestMemory, GuestBalloon, Crashing")
    instance = mom.MOM("", parser, hypervisor=hv)
    assert instance.setPolicy(BALLOON_POLICY)
    instance.start()
    try:
        # The crashing collector's data is optional: both guests are still
        # managed, and the crash is logged once, with its traceback.
        wait_for(lambda: all(len([c for c in hv.calls_to("set_balloon_target")
                                  if c[0] == gid]) >= 3 for gid in ("id-0", "id-1")),
                 what="both guests managed")
        crashes = [r for r in caplog.records
                   if "crashed" in r.getMessage() and r.levelno >= logging.WARNING]
        assert len(crashes) == 1 and "collector bug" in caplog.text
        assert crashes[0].exc_info is not None
        assert all(t.is_alive() for t in instance.threads())
        assert instance.getActiveGuests() == ["vm0", "vm1"]
    finally:
        instance.shutdown()


def test_thread_count_does_not_grow_with_guests(host):
    counts = {}
    for guests in (10, 200):
        hv = make_hypervisor(guests)
        before = threading.active_count()
        instance = mom.MOM("", overrides(host), hypervisor=hv)
        assert instance.setPolicy(BALLOON_POLICY)
        instance.start()
        try:
            wait_for(lambda: len(instance.getActiveGuests()) == guests, what="all guests")
            counts[guests] = threading.active_count() - before
            assert [t.name for t in instance.threads()] == ["MOMWorker"]
        finally:
            instance.shutdown()
    assert counts[10] == counts[200]


def test_rpc_server_serves_the_api(tmp_path, host, running):
    from mom import rpc

    path = str(tmp_path / "mom.sock")
    instance = running(make_hypervisor(1), BALLOON_POLICY, rpc_port=path)
    client = rpc.connect(path)
    assert client.ping() is True
    wait_for(lambda: client.getActiveGuests() == ["vm0"], what="the guest over RPC")
    assert client.setNamedPolicy("10-x", "(defvar x 1)") is True
    assert "10-x" in instance.getNamedPolicies()
    assert client.setNamedPolicy("10-y", "(oops") is False
    # the worker, and the RPC server's fixed pool (acceptor + 4 workers)
    assert [t.name for t in instance.threads()] == [
        "MOMWorker", "RPCServer", "RPCWorker-0", "RPCWorker-1", "RPCWorker-2", "RPCWorker-3"]


def test_wrong_call_order_is_harmless(host):
    instance = mom.MOM("", overrides(host), hypervisor=make_hypervisor(1))
    instance.shutdown()          # before start
    instance.start()             # after shutdown: ignored
    assert instance.threads() == []
    instance.shutdown()
    other = mom.MOM("", overrides(host), hypervisor=make_hypervisor(1))
    other.start()
    other.start()                # twice
    assert len(other.threads()) == 1
    other.shutdown()
    other.shutdown()
    assert other.threads() == []


def test_run_blocks_until_shutdown_and_adds_no_thread(host):
    hv = make_hypervisor(1)
    instance = mom.MOM("", overrides(host), hypervisor=hv)
    before = threading.active_count()
    runner = threading.Thread(target=instance.run, name="MOM")
    runner.start()
    assert instance.wait_ready(5)
    wait_for(lambda: len(hv.calls_to("poll")) >= 3, what="cycles in the caller's thread")
    assert runner.is_alive()
    assert instance.threads() == []
    assert threading.active_count() == before + 1      # the caller's own thread
    started = time.monotonic()
    instance.shutdown()
    assert time.monotonic() - started < 1.0            # nothing hangs: prompt
    runner.join(5)
    assert not runner.is_alive()


def test_bad_config_fails_before_any_thread_starts(host):
    before = threading.active_count()
    parser = overrides(host)
    parser.set("main", "controllers", "Balloon, Baloon")
    with pytest.raises(mom.ConfigError, match="Baloon"):
        mom.MOM("", parser, hypervisor=make_hypervisor(1))
    assert threading.active_count() == before


def test_missing_policy_dir_is_a_config_error(host, tmp_path):
    with pytest.raises(mom.ConfigError, match="policy-dir"):
        mom.MOM("", overrides(host, policy_dir=str(tmp_path / "nope")),
                hypervisor=make_hypervisor(0))


def test_logging_leaves_the_embedding_program_alone(host, tmp_path):
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    log_file = tmp_path / "mom.log"
    parser = overrides(host)
    parser.read_dict({"logging": {"log": str(log_file), "verbosity": "info"}})
    instance = mom.MOM("", parser, hypervisor=make_hypervisor(1))
    instance.start()
    instance.shutdown()
    assert (list(root.handlers), root.level) == before
    assert logging.getLogger("mom").handlers == []
    assert "MOM started" in log_file.read_text()


def test_set_verbosity(host):
    instance = mom.MOM("", overrides(host), hypervisor=make_hypervisor(0))
    try:
        assert instance.setVerbosity("error") is True
        assert logging.getLogger("mom").level == logging.ERROR
        assert instance.setVerbosity(5) is True
        assert logging.getLogger("mom").level == logging.DEBUG
        assert instance.setVerbosity("loud") is False
    finally:
        instance.shutdown()


def test_plot_dir_gets_one_file_per_entity(host, tmp_path, running):
    plot_dir = tmp_path / "plots"
    plot_dir.mkdir()
    instance = running(make_hypervisor(1), plot_dir=str(plot_dir))
    run_dir = plot_dir / "momplot-001"
    wait_for(lambda: (run_dir / "vm0.dat").exists() and (run_dir / "host.dat").exists()
             and len((run_dir / "host.dat").read_text().splitlines()) >= 3, what="plots")
    header = (run_dir / "host.dat").read_text().splitlines()[0].split("\t")
    assert "mem_free" in header and "ksm_run" in header
    assert "balloon_cur" in (run_dir / "vm0.dat").read_text().splitlines()[0]
    instance.shutdown()


def test_a_hypervisor_outage_is_one_warning_and_guests_come_back(host, running, caplog):
    hv = make_hypervisor(20)
    instance = running(hv, BALLOON_POLICY)
    wait_for(lambda: len(instance.getActiveGuests()) == 20, what="all guests")
    caplog.clear()
    hv.fail("poll", HypervisorError("connection refused"))
    wait_for(lambda: instance.getActiveGuests() == [], what="guests left out")
    sent = len(hv.calls_to("set_balloon_target"))
    polls = len(hv.calls_to("poll"))
    wait_for(lambda: len(hv.calls_to("poll")) >= polls + 5, what="more failing polls")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "connection refused" in warnings[0].getMessage()
    assert len(hv.calls_to("set_balloon_target")) == sent      # nothing on old data
    hv.clear_failures()
    wait_for(lambda: len(instance.getActiveGuests()) == 20, what="guests back")
    assert "hypervisor fake answers again" in caplog.text


def test_a_system_exit_from_the_hypervisor_does_not_end_mom(host, running, caplog):
    hv = make_hypervisor(2)
    instance = running(hv, BALLOON_POLICY)
    wait_for(lambda: len(instance.getActiveGuests()) == 2, what="all guests")
    hv.fail("poll", SystemExit, times=3)      # as a library might raise
    wait_for(lambda: "SystemExit" in caplog.text, what="the report")
    polls = len(hv.calls_to("poll"))
    wait_for(lambda: len(hv.calls_to("poll")) >= polls + 3, what="the worker going on")
    assert [t.name for t in instance.threads()] == ["MOMWorker"]
    assert len([r for r in caplog.records
                if "SystemExit" in r.getMessage() and r.levelno >= logging.WARNING]) == 1
    wait_for(lambda: len(instance.getActiveGuests()) == 2, what="guests back")


def test_a_failing_cycle_is_logged_once_and_the_worker_goes_on(host, running, caplog,
                                                               monkeypatch):
    hv = make_hypervisor(1)
    instance = running(hv)
    calls = {"n": 0}
    real = instance.cycle.run

    def flaky(now):
        calls["n"] += 1
        if calls["n"] <= 5:
            raise RuntimeError("a bug in a step")
        return real(now)
    monkeypatch.setattr(instance.cycle, "run", flaky)
    instance._wakeup.set()
    wait_for(lambda: calls["n"] > 6, what="the worker to go on after the failures")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "a bug in a step" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    wait_for(lambda: "the cycle works again" in caplog.text, what="recovery")
