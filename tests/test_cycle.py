"""The ordered cycle, driven by a simulated clock: no threads, no sleeping,
exact answers."""
from __future__ import annotations

import configparser
import logging
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "fake_vdsm"))

import fakehost  # noqa: E402
from fake_hypervisor import FakeHypervisor  # noqa: E402

import mom  # noqa: E402
from mom.hypervisor.base import GuestInfo, HypervisorError  # noqa: E402

GiB = 1024 * 1024  # KiB

# Every guest is squeezed by 10% and limited to half a CPU; the host runs KSM.
POLICY = """
(with Guests guest
    (if (valid guest.balloon_cur)
        (guest.Control "balloon_target" (* guest.balloon_cur 0.9))
        0))
(with Guests guest
    (if (valid guest.vcpu_count)
        (guest.Control "vcpu_quota" 50000)
        0))
(Host.Control "ksm_run" 1)
"""


def stats(balloon=True, cputune=True, memory=True):
    result = {}
    if memory:
        result["memory"] = {"mem_available": 2 * GiB, "mem_unused": GiB // 2,
                            "mem_free": GiB // 2, "major_fault": 0, "minor_fault": 0,
                            "swap_in": 0, "swap_out": 0}
    if balloon:
        result["balloon"] = {"balloon_cur": 2 * GiB, "balloon_max": 2 * GiB,
                             "balloon_min": 0}
    if cputune:
        result["cputune"] = {"vcpu_quota": -1, "vcpu_period": 100000,
                             "vcpu_user_limit": 100, "vcpu_count": 1}
    return result


@pytest.fixture
def host(tmp_path):
    return fakehost.FakeHost(str(tmp_path / "host"), mem_total=16 * GiB, mem_free=GiB)


def make(host, guests, *, host_iv=5, guest_iv=5, manager_iv=5, policy_iv=10,
         guest_collectors="GuestMemory, GuestBalloon, GuestCpuTune"):
    hv = FakeHypervisor([GuestInfo(gid, gid) for gid in guests], guests,
                        ksm={"run": 0})
    hv.on_ksm_tune = lambda params: host.set_ksm(**params)
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str
    conf.read_dict({
        "main": {"host-monitor-interval": str(host_iv),
                 "guest-monitor-interval": str(guest_iv),
                 "guest-manager-interval": str(manager_iv),
                 "policy-engine-interval": str(policy_iv),
                 "controllers": "Balloon, KSM, CpuTune"},
        "host": {"collectors": "HostMemory, HostKSM, HostCpu",
                 **host.mom_overrides()["host"]},
        "guest": {"collectors": guest_collectors}})
    instance = mom.MOM("", conf, hypervisor=hv)
    assert instance.setPolicy(POLICY)
    return instance, hv


def test_first_control_comes_in_the_first_cycle(host):
    instance, hv = make(host, {"a": stats()})
    next_due = instance.cycle.run(1000.0)
    assert hv.calls_to("set_balloon_target") == [("a", int(2 * GiB * 0.9))]
    assert hv.calls_to("ksm_tune") == [({"run": 1},)]
    assert next_due == 1005.0
    # the steps ran in order: one poll, then the controls
    names = [call[0] for call in hv.calls]
    assert names[0] == "poll" and names.count("poll") == 1


def test_steps_run_when_due_and_one_poll_per_collection(host):
    instance, hv = make(host, {"a": stats()}, policy_iv=10)
    cycle = instance.cycle
    t = 0.0
    for _ in range(6):
        t = cycle.run(t)
    # collections at 0, 5, ..., 25; evaluations at 0, 10, 20
    assert t == 30.0
    assert len(hv.calls_to("poll")) == 6
    assert instance.policy_engine.evaluations == 3


def test_an_evaluation_between_collections_resends_nothing(host):
    # guests sampled every 20 s, policy every 5 s: three evaluations see the
    # same sample, and the balloon target goes out once.
    instance, hv = make(host, {"a": stats()}, guest_iv=20, manager_iv=20, policy_iv=5)
    cycle = instance.cycle
    for t in (0.0, 5.0, 10.0, 15.0):
        cycle.run(t)
    assert instance.policy_engine.evaluations == 4
    assert hv.calls_to("set_balloon_target") == [("a", int(2 * GiB * 0.9))]
    assert hv.calls_to("set_vcpu_tune") == [("a", 50000, None)]
    cycle.run(20.0)                     # a new sample: the balloon moved, squeeze on
    assert hv.calls_to("set_balloon_target")[-1] == ("a", int(int(2 * GiB * 0.9) * 0.9))


def test_a_failed_poll_ends_the_cycle_and_nothing_is_applied(host, caplog):
    instance, hv = make(host, {"a": stats()}, policy_iv=5)
    cycle = instance.cycle
    cycle.run(0.0)
    sent = len(hv.calls)
    hv.fail("poll", HypervisorError("VDSM busy"))
    for t in (5.0, 10.0, 15.0):
        cycle.run(t)
    assert [c[0] for c in hv.calls[sent:]] == ["poll"] * 3
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    hv.clear_failures()
    cycle.run(20.0)
    assert hv.calls_to("set_balloon_target")[-1][0] == "a"
    assert "answers again" in caplog.text


def test_stale_guest_samples_get_no_controls(host, caplog):
    # the poll keeps failing past three collection intervals, then the
    # host-only evaluation (policy due, host fresh) leaves the guest out
    instance, hv = make(host, {"a": stats()}, guest_iv=5, manager_iv=5, policy_iv=5)
    cycle = instance.cycle
    cycle.run(0.0)
    assert instance.getActiveGuests() == ["a"]
    hv.fail("poll", HypervisorError("down"))
    for t in (5.0, 10.0, 15.0, 20.0):
        cycle.run(t)
    assert instance.getActiveGuests() == []
    assert len(hv.calls_to("set_balloon_target")) == 1


def test_a_guest_without_vcpu_data_is_still_ballooned(host):
    # unprivileged libvirt (qemu:///session): no scheduler data at all
    instance, hv = make(host, {"a": stats(cputune=False), "b": stats()})
    instance.cycle.run(0.0)
    assert sorted(hv.calls_to("set_balloon_target")) == [("a", int(2 * GiB * 0.9)),
                                                         ("b", int(2 * GiB * 0.9))]
    assert hv.calls_to("set_vcpu_tune") == [("b", 50000, None)]


def test_a_guest_without_balloon_data_still_gets_its_vcpu_limit(host):
    instance, hv = make(host, {"a": stats(balloon=False, memory=False)})
    instance.cycle.run(0.0)
    assert hv.calls_to("set_vcpu_tune") == [("a", 50000, None)]
    assert hv.calls_to("set_balloon_target") == []


def test_controls_needing_missing_data_are_held_back(host):
    # The policy sets a balloon target without looking at memory data; the
    # required GuestMemory failed, so MOM does not act on it for that guest.
    instance, hv = make(host, {"a": stats(memory=False), "b": stats()})
    instance.cycle.run(0.0)
    assert hv.calls_to("set_balloon_target") == [("b", int(2 * GiB * 0.9))]
    assert sorted(c[0] for c in hv.calls_to("set_vcpu_tune")) == ["a", "b"]


def test_a_policy_failing_on_incomplete_guests_runs_without_them(host, caplog):
    instance, hv = make(host, {"a": stats(cputune=False), "b": stats()})
    # arithmetic on a missing field: the original MOM left such guests out
    assert instance.setPolicy("""
(with Guests guest (guest.Control "vcpu_quota" (* guest.vcpu_count 1000)))""")
    instance.cycle.run(0.0)
    assert hv.calls_to("set_vcpu_tune") == [("b", 1000, None)]
    assert "evaluated without them" in caplog.text


def test_incomplete_host_statistics_stop_the_evaluation(host, caplog):
    instance, hv = make(host, {"a": stats()})
    os.remove(os.path.join(host.proc_root, "meminfo"))
    instance.cycle.run(0.0)
    assert hv.calls_to("set_balloon_target") == [] and hv.calls_to("ksm_tune") == []
    assert "host statistics incomplete" in caplog.text


def test_a_policy_change_is_evaluated_at_the_next_run(host):
    instance, hv = make(host, {"a": stats()}, policy_iv=60)
    cycle = instance.cycle
    assert cycle.run(0.0) == 5.0
    assert instance.setPolicy('(Host.Control "ksm_run" 0)') is True
    assert cycle.next_due() < 5.0       # due now, not in a minute
    cycle.run(1.0)
    assert hv.calls_to("ksm_tune")[-1] == ({"run": 0},)


def test_discovery_follows_guests_that_come_and_go(host):
    instance, hv = make(host, {"a": stats()}, policy_iv=5)
    cycle = instance.cycle
    cycle.run(0.0)
    hv.add_guest(GuestInfo("b", "b"), stats())
    hv.remove_guest("a")
    cycle.run(5.0)
    assert instance.getActiveGuests() == ["b"]
    assert hv.calls_to("set_balloon_target")[-1] == ("b", int(2 * GiB * 0.9))
