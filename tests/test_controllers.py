"""Controllers turn policy controls into the fewest hypervisor calls."""

import logging

import pytest
from fake_hypervisor import FakeHypervisor

from mom.controllers import KSM, Balloon, CpuTune, IoTune
from mom.config import defaults
from mom.controllers.base import ControllerContext
from mom.entity import Entity
from mom.hypervisor.base import GuestGoneError, GuestInfo, HypervisorError
from mom.iotune import IoTuneDevice


def guest(gid, name=None, controls=None, stamp=None, **fields):
    e = Entity({"id": gid, "name": name or f"vm-{gid}", "uuid": gid}, [fields], stamp=stamp)
    for key, value in (controls or {}).items():
        e.Control(key, value)
    return e


def host(controls=None, stamp=None, **fields):
    e = Entity({"name": "host"}, [fields], stamp=stamp)
    for key, value in (controls or {}).items():
        e.Control(key, value)
    return e


def hv_with(*gids):
    return FakeHypervisor([GuestInfo(g, f"vm-{g}") for g in gids])


def make(cls, hv):
    return cls(ControllerContext(defaults(), hv))


# -- Balloon ---------------------------------------------------------------
def test_balloon_sets_changed_targets_only():
    hv = hv_with("a", "b", "c", "d")
    make(Balloon, hv).process(host(), [
        guest("a", controls={"balloon_target": 900.7}, balloon_cur=1000),
        guest("b", controls={"balloon_target": 1000}, balloon_cur=1000),  # same
        guest("c", balloon_cur=1000),                                     # no control
        guest("d", controls={"balloon_target": "2048"}),                  # cur unknown
    ])
    assert hv.calls == [("set_balloon_target", "a", 900),
                        ("set_balloon_target", "d", 2048)]


def test_balloon_error_for_one_guest_does_not_stop_the_others(caplog):
    hv = hv_with("a", "b", "c")
    hv.fail("set_balloon_target", HypervisorError("agent timeout", "a"), guest_id="a")
    guests = [guest(g, controls={"balloon_target": 500}, balloon_cur=1000)
              for g in ("a", "b", "c")]
    with caplog.at_level(logging.DEBUG, logger="mom.controllers"):
        make(Balloon, hv).process(host(), guests)
    assert hv.calls_to("set_balloon_target") == [("a", 500), ("b", 500), ("c", 500)]
    assert hv.stats["b"]["balloon"]["balloon_cur"] == 500     # effects applied
    assert "a" not in hv.stats
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["guest vm-a (a): cannot set the balloon target: agent timeout"]


def test_balloon_unexpected_exception_is_logged_with_traceback(caplog):
    hv = hv_with("a", "b")
    hv.fail("set_balloon_target", RuntimeError, guest_id="a")
    guests = [guest(g, controls={"balloon_target": 500}) for g in ("a", "b")]
    with caplog.at_level(logging.WARNING, logger="mom.controllers"):
        make(Balloon, hv).process(host(), guests)
    assert len(hv.calls) == 2
    (record,) = caplog.records
    assert record.getMessage() == ("guest vm-a (a): cannot set the balloon target: "
                                   "RuntimeError: injected set_balloon_target failure")
    assert record.exc_info is not None


def test_balloon_vanished_guest_logged_once(caplog):
    hv = hv_with("b")                       # "a" is not (any more) on the host
    controller = make(Balloon, hv)
    with caplog.at_level(logging.DEBUG, logger="mom.controllers"):
        for sample in range(3):             # three samples, each still at None
            controller.process(host(), [
                guest("a", controls={"balloon_target": 500}, stamp=sample),
                guest("b", controls={"balloon_target": 500}, stamp=sample)])
    assert len(hv.calls_to("set_balloon_target")) == 6
    loud = [r for r in caplog.records if r.levelno >= logging.INFO and "cannot" in r.getMessage()]
    assert [r.getMessage() for r in loud] == [
        "guest vm-a (a): cannot set the balloon target, the guest is gone: guest a is gone"]
    assert loud[0].levelno == logging.INFO
    # The guest that is there gets its change reported at INFO, every time it changes.
    changes = [r.getMessage() for r in caplog.records if "balloon None -> 500" in r.getMessage()]
    assert changes == ["guest vm-b (b): balloon None -> 500 KiB"] * 3


def test_balloon_repeated_error_logged_again_after_recovery(caplog):
    hv = hv_with("a")
    controller = make(Balloon, hv)
    with caplog.at_level(logging.WARNING, logger="mom.controllers"):
        hv.fail("set_balloon_target", HypervisorError("busy"))
        controller.process(host(), [guest("a", controls={"balloon_target": 500})])
        controller.process(host(), [guest("a", controls={"balloon_target": 500})])
        hv.clear_failures()
        controller.process(host(), [guest("a", controls={"balloon_target": 400})])
        hv.fail("set_balloon_target", HypervisorError("busy"))
        controller.process(host(), [guest("a", controls={"balloon_target": 500})])
    assert [r.getMessage() for r in caplog.records] == [
        "guest vm-a (a): cannot set the balloon target: busy"] * 2


@pytest.mark.parametrize("target", [0, -5, "lots"])
def test_balloon_invalid_target_is_not_sent(target, caplog):
    hv = hv_with("a", "b")
    with caplog.at_level(logging.WARNING, logger="mom.controllers"):
        make(Balloon, hv).process(host(), [guest("a", controls={"balloon_target": target}),
                                           guest("b", controls={"balloon_target": 64})])
    assert hv.calls == [("set_balloon_target", "b", 64)]
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith(
        "guest vm-a (a): cannot set the balloon target: ")


# -- KSM -------------------------------------------------------------------
KSM_NOW = dict(ksm_run=0, ksm_pages_to_scan=100, ksm_sleep_millisecs=20,
               ksm_merge_across_nodes=1)


def test_ksm_first_call_sends_keys_differing_from_host_state():
    hv = FakeHypervisor()
    make(KSM, hv).process(host({"ksm_run": 1, "ksm_pages_to_scan": 100.0,
                                "ksm_sleep_millisecs": 10}, **KSM_NOW), [])
    assert hv.calls == [("ksm_tune", {"run": 1, "sleep_millisecs": 10})]
    assert hv.ksm == {"run": 1, "sleep_millisecs": 10}


def test_ksm_later_calls_compare_with_what_was_applied():
    hv = FakeHypervisor()
    controller = make(KSM, hv)
    controls = {"ksm_run": 1, "ksm_pages_to_scan": 64, "ksm_sleep_millisecs": 10,
                "ksm_merge_across_nodes": 1}
    controller.process(host(controls, **KSM_NOW), [])
    # The host stats lag behind (still the old values): nothing new to send.
    controller.process(host(controls, **KSM_NOW), [])
    controller.process(host(dict(controls, ksm_pages_to_scan=364), **KSM_NOW), [])
    assert hv.calls_to("ksm_tune") == [
        ({"run": 1, "pages_to_scan": 64, "sleep_millisecs": 10},),
        ({"pages_to_scan": 364},),
    ]


def test_ksm_nothing_changed_no_call():
    hv = FakeHypervisor()
    make(KSM, hv).process(host({"ksm_run": 0, "ksm_pages_to_scan": 100}, **KSM_NOW), [])
    make(KSM, hv).process(host(**KSM_NOW), [])          # no controls at all
    assert hv.calls == []


def test_ksm_without_host_stats_sends_everything_once():
    hv = FakeHypervisor()
    controller = make(KSM, hv)
    controls = {"ksm_run": 1, "ksm_merge_across_nodes": 0}
    controller.process(host(controls), [])
    controller.process(host(controls), [])
    assert hv.calls == [("ksm_tune", {"run": 1, "merge_across_nodes": 0})]


def test_ksm_failure_is_retried_next_cycle(caplog):
    hv = FakeHypervisor()
    hv.fail("ksm_tune", HypervisorError("supervdsm down"), times=1)
    controller = make(KSM, hv)
    with caplog.at_level(logging.WARNING, logger="mom.controllers"):
        controller.process(host({"ksm_run": 1}, **KSM_NOW), [])
        controller.process(host({"ksm_run": 1}, **KSM_NOW), [])
        controller.process(host({"ksm_run": 1}, **KSM_NOW), [])
    assert hv.calls_to("ksm_tune") == [({"run": 1},), ({"run": 1},)]
    assert [r.getMessage() for r in caplog.records] == [
        "host: cannot tune KSM: supervdsm down"]


def test_ksm_bad_control_value_is_logged_not_raised(caplog):
    hv = FakeHypervisor()
    with caplog.at_level(logging.WARNING, logger="mom.controllers"):
        make(KSM, hv).process(host({"ksm_run": "on"}, **KSM_NOW), [])
    assert hv.calls == []
    assert len(caplog.records) == 1


# -- CpuTune ----------------------------------------------------------------
def test_cputune_sends_only_changed_values():
    hv = hv_with("a", "b", "c", "d")
    make(CpuTune, hv).process(host(), [
        guest("a", controls={"vcpu_quota": 50000, "vcpu_period": 100000},
              vcpu_quota=-1, vcpu_period=100000),
        guest("b", controls={"vcpu_quota": -1, "vcpu_period": 100000},
              vcpu_quota=-1, vcpu_period=100000),              # unchanged
        guest("c", controls={"vcpu_quota": 2000, "vcpu_period": 20000.0},
              vcpu_quota=1000, vcpu_period=100000),
        guest("d", controls={"vcpu_period": 50000}, vcpu_quota=-1, vcpu_period=100000),
    ])
    assert hv.calls == [("set_vcpu_tune", "a", 50000, None),
                        ("set_vcpu_tune", "c", 2000, 20000),
                        ("set_vcpu_tune", "d", None, 50000)]
    assert hv.stats["c"]["cputune"] == {"vcpu_quota": 2000, "vcpu_period": 20000}


def test_cputune_error_for_one_guest_does_not_stop_the_others():
    hv = hv_with("b")
    controls = {"vcpu_quota": 50000}
    make(CpuTune, hv).process(host(), [guest("a", controls=controls, vcpu_quota=-1),
                                       guest("b", controls=controls, vcpu_quota=-1)])
    assert hv.calls_to("set_vcpu_tune") == [("a", 50000, None), ("b", 50000, None)]
    assert hv.stats["b"]["cputune"]["vcpu_quota"] == 50000


# -- IoTune -----------------------------------------------------------------
LIMITS = {"total_bytes_sec": 0, "read_bytes_sec": 0, "write_bytes_sec": 0,
          "total_iops_sec": 0, "read_iops_sec": 0, "write_iops_sec": 0}


def devices():
    return [IoTuneDevice("vda", "/d/a", maximum={"total_bytes_sec": 100}, current=LIMITS),
            IoTuneDevice("vdb", "/d/b", current=LIMITS)]


def test_iotune_sends_changed_devices_in_one_call_per_guest():
    hv = hv_with("a", "b", "c")
    a_devs, b_devs = devices(), devices()
    a_devs[0].setTotalBytesSec(a_devs[0].maximum.total_bytes_sec)
    a_devs[1].setWriteIopsSec(30)
    b_devs[1].setReadIopsSec(0)                      # same as current: no change
    make(IoTune, hv).process(host(), [guest("a", io_tune=a_devs),
                                      guest("b", io_tune=b_devs),
                                      guest("c")])     # no io_tune field
    assert hv.calls == [("set_io_tune", "a", [
        {"name": "vda", "path": "/d/a", "ioTune": dict(LIMITS, total_bytes_sec=100)},
        {"name": "vdb", "path": "/d/b", "ioTune": dict(LIMITS, write_iops_sec=30)},
    ])]
    assert hv.stats["a"]["iotune"][0]["current"]["total_bytes_sec"] == 100


def test_iotune_same_sample_is_not_sent_twice_and_samples_stay_untouched():
    hv = hv_with("a")
    controller = make(IoTune, hv)
    devs = devices()
    devs[0].setTotalBytesSec(100)
    controller.process(host(), [guest("a", io_tune=devs, stamp=1)])
    # A second evaluation on the same sample (before the next collection)
    # sends nothing again, and the sample still says what was collected.
    controller.process(host(), [guest("a", io_tune=devs, stamp=1)])
    assert len(hv.calls_to("set_io_tune")) == 1
    assert devs[0].current.total_bytes_sec == 0
    # A new sample that still shows the old limits (changed behind MOM's
    # back, or not applied) gets them sent again.
    controller.process(host(), [guest("a", io_tune=devs, stamp=2)])
    assert len(hv.calls_to("set_io_tune")) == 2


def test_iotune_error_for_one_guest_does_not_stop_the_others():
    hv = hv_with("a", "b")
    hv.fail("set_io_tune", GuestGoneError, guest_id="a")
    guests = []
    for gid in ("a", "b"):
        devs = devices()
        devs[0].setReadBytesSec(7)
        guests.append(guest(gid, io_tune=devs))
    controller = make(IoTune, hv)
    controller.process(host(), guests)
    assert [call[0] for call in hv.calls_to("set_io_tune")] == ["a", "b"]
    assert "a" not in hv.stats and "b" in hv.stats
    # the failed guest is retried at the next evaluation, the other is not
    hv.clear_failures()
    controller.process(host(), guests)
    assert [call[0] for call in hv.calls_to("set_io_tune")] == ["a", "b", "a"]


def test_balloon_one_target_per_sample_then_resent_on_a_new_sample():
    hv = hv_with("a")
    controller = make(Balloon, hv)
    for stamp in (1, 1, 1):     # the policy ran three times on one sample
        controller.process(host(), [guest("a", controls={"balloon_target": 500},
                                          balloon_cur=1000, stamp=stamp)])
    assert hv.calls_to("set_balloon_target") == [("a", 500)]
    # The next sample shows the balloon moving, not there yet: sent again.
    controller.process(host(), [guest("a", controls={"balloon_target": 500},
                                      balloon_cur=800, stamp=2)])
    # The next one shows it arrived: nothing to do.
    controller.process(host(), [guest("a", controls={"balloon_target": 500},
                                      balloon_cur=500, stamp=3)])
    assert hv.calls_to("set_balloon_target") == [("a", 500), ("a", 500)]
