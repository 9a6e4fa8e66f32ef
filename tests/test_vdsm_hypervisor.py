"""The ``vdsm`` hypervisor interface against a fake of VDSM's API module."""
from __future__ import annotations

import logging
import os
import sys

import pytest
from fake_hypervisor import polled

FAKE_DIR = os.path.join(os.path.dirname(__file__), "fake_vdsm")
if FAKE_DIR not in sys.path:
    sys.path.insert(0, FAKE_DIR)

import fakevdsm  # noqa: E402

from mom.hypervisor import vdsm  # noqa: E402
from mom.hypervisor.base import GuestGoneError, GuestInfo, HypervisorError  # noqa: E402

# A RunningVmStats sample as VDSM sends it: numbers as strings.
SAMPLE = {
    "vmId": "5b1f6b3c-0000-4000-8000-000000000001",
    "vmName": "web1",
    "status": "Up",
    "pid": "4242",
    "memUsage": "37",
    "memoryStats": {
        "mem_total": "2047916", "mem_unused": "1200000", "mem_free": "1500000",
        "mem_cached": "250000", "mem_buffers": "50000",
        "majflt": 4, "pageflt": "104", "minflt": 100,
        "swap_in": 0, "swap_out": "2", "swap_total": "1048572", "swap_usage": "0",
    },
    "balloonInfo": {
        "balloon_max": "2097152", "balloon_min": "1048576",
        "balloon_cur": "2097152", "balloon_target": "2097152",
        "ballooning_enabled": True,
    },
    "vcpuQuota": "-1", "vcpuPeriod": 100000, "vcpuUserLimit": 100, "vcpuCount": "2",
    "cpuUser": "0.53",
}


# -- pure conversions -------------------------------------------------------

def test_to_int_handles_vdsm_strings() -> None:
    assert vdsm.to_int("1024") == 1024
    assert vdsm.to_int(" 7 ") == 7
    assert vdsm.to_int("0.5") == 0
    assert vdsm.to_int("12.9") == 12
    assert vdsm.to_int(5) == 5
    assert vdsm.to_int(None) is None
    assert vdsm.to_int("") is None
    assert vdsm.to_int("n/a") is None
    assert vdsm.to_int("nan") is None
    assert vdsm.to_int(True) is None


def test_normalise_full_sample() -> None:
    stats = vdsm.normalise_vm_stats(SAMPLE)
    assert stats["memory"] == {
        "mem_available": 2047916, "mem_unused": 1200000, "mem_free": 1500000,
        "major_fault": 4, "minor_fault": 100, "swap_in": 0, "swap_out": 2,
        "swap_total": 1048572, "swap_usage": 0,
    }
    assert stats["balloon"] == {"balloon_cur": 2097152, "balloon_max": 2097152,
                                "balloon_min": 1048576}
    assert stats["cputune"] == {"vcpu_quota": -1, "vcpu_period": 100000,
                                "vcpu_user_limit": 100, "vcpu_count": 2}
    assert "iotune" not in stats
    for section in stats.values():
        for value in section.values():
            assert type(value) is int


@pytest.mark.parametrize("mem_usage", ["0", 0, None])
def test_no_guest_agent_means_no_memory_section(mem_usage: object) -> None:
    sample = dict(SAMPLE)
    if mem_usage is None:
        del sample["memUsage"]
    else:
        sample["memUsage"] = mem_usage
    stats = vdsm.normalise_vm_stats(sample)
    assert "memory" not in stats
    assert "balloon" in stats


def test_partial_memory_stats_keep_what_is_there() -> None:
    sample = dict(SAMPLE, memoryStats={"mem_total": "1000", "mem_free": "300",
                                       "majflt": "1", "pageflt": "5"})
    assert vdsm.memory_section(sample) == {
        "mem_available": 1000, "mem_free": 300, "major_fault": 1, "minor_fault": 4}


def test_empty_or_disabled_balloon_is_left_out() -> None:
    assert vdsm.balloon_section(dict(SAMPLE, balloonInfo={})) is None
    assert vdsm.balloon_section({"status": "Up"}) is None
    disabled = dict(SAMPLE["balloonInfo"], ballooning_enabled=False)
    assert vdsm.balloon_section(dict(SAMPLE, balloonInfo=disabled)) is None
    broken = dict(SAMPLE["balloonInfo"], balloon_cur="")
    assert vdsm.balloon_section(dict(SAMPLE, balloonInfo=broken)) is None


def test_cputune_defaults_user_limit_to_100() -> None:
    sample = {"vcpuCount": "4", "vcpuQuota": "25000", "vcpuPeriod": "100000"}
    assert vdsm.cputune_section(sample) == {
        "vcpu_count": 4, "vcpu_user_limit": 100, "vcpu_quota": 25000,
        "vcpu_period": 100000}
    assert vdsm.cputune_section({"vcpuQuota": "1"}) is None
    assert vdsm.cputune_section({"vcpuCount": 1, "vcpuUserLimit": "50"})[
        "vcpu_user_limit"] == 50


def test_iotune_joins_policy_and_current_by_name_or_path() -> None:
    policy = [
        {"name": "vda", "path": "/rhev/a",
         "guaranteed": {"total_bytes_sec": "10"},
         "maximum": {"total_bytes_sec": "100", "read_iops_sec": 50}},
        {"name": "", "path": "/rhev/b", "maximum": {"write_bytes_sec": 7}},
    ]
    current = [
        {"name": "vda", "path": "/rhev/a", "ioTune": {"total_bytes_sec": 30}},
        {"name": "vdb", "path": "/rhev/b", "ioTune": {"write_bytes_sec": "3"}},
    ]
    devices = vdsm.iotune_section(policy, current)
    assert devices[0]["name"] == "vda"
    assert devices[0]["guaranteed"]["total_bytes_sec"] == 10
    assert devices[0]["maximum"] == {"total_bytes_sec": 100, "read_bytes_sec": 0,
                                     "write_bytes_sec": 0, "total_iops_sec": 0,
                                     "read_iops_sec": 50, "write_iops_sec": 0}
    assert devices[0]["current"]["total_bytes_sec"] == 30
    assert devices[1]["name"] == "vdb" and devices[1]["path"] == "/rhev/b"
    assert devices[1]["current"]["write_bytes_sec"] == 3
    assert vdsm.iotune_section([], current) == []      # no policy: nothing to tune
    assert vdsm.iotune_section(None, None) == []


def test_iotune_from_stats_when_vdsm_includes_it() -> None:
    sample = dict(SAMPLE, ioTunePolicy=[{"name": "vda", "path": "p",
                                         "maximum": {"total_iops_sec": "9"}}],
                  ioTune=[{"name": "vda", "path": "p", "ioTune": {"total_iops_sec": 4}}])
    stats = vdsm.normalise_vm_stats(sample)
    assert stats["iotune"][0]["maximum"]["total_iops_sec"] == 9
    assert stats["iotune"][0]["current"]["total_iops_sec"] == 4


def test_guest_info_only_for_up_vms() -> None:
    assert vdsm.guest_info(SAMPLE) == GuestInfo(
        id=SAMPLE["vmId"], name="web1", pid=4242)
    for status in ("Down", "Paused", "Migration Source", "Powering up", "WaitForLaunch"):
        assert vdsm.guest_info(dict(SAMPLE, status=status)) is None


def test_reply_helpers() -> None:
    assert vdsm.reply_status({"status": {"code": 0, "message": "Done"}}) == (0, "Done")
    assert vdsm.reply_status({"status": {"code": "1", "message": "gone"}}) == (1, "gone")
    assert vdsm.reply_status(None) == (0, "")
    reply = {"status": {"code": 0}, "ioTuneList": [1]}
    assert vdsm.reply_list(reply, "ioTuneList") == [1]
    assert vdsm.reply_list({"status": {}, "other": [2]}, "ioTuneList") == [2]
    assert vdsm.reply_list({"status": {}}, "x") == []


# -- the back-end over the fake --------------------------------------------

@pytest.fixture
def fake() -> fakevdsm.FakeVdsm:
    return fakevdsm.FakeVdsm()


def make(fake: fakevdsm.FakeVdsm, **kwargs: object) -> vdsm.VdsmHypervisor:
    return vdsm.VdsmHypervisor(api=fake.api, supervdsm=fake.supervdsm, **kwargs)


def test_default_import_uses_vdsm_modules_on_sys_path(fake: fakevdsm.FakeVdsm) -> None:
    fakevdsm.install(fake)
    fake.add_vm(name="a")
    hv = vdsm.VdsmHypervisor()   # does `import API`, `import supervdsm`
    assert [p.info.name for p in hv.poll()] == ["a"]
    hv.ksm_tune({"run": 1})
    assert fake.ksm["run"] == 1


def test_missing_vdsm_modules_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "API", None)     # makes `import API` fail
    with pytest.raises(HypervisorError, match="VDSM's 'API' module.*inside VDSM"):
        vdsm.VdsmHypervisor()


def test_only_up_vms_are_listed(fake: fakevdsm.FakeVdsm) -> None:
    up = fake.add_vm(name="up", pid=77)
    fake.add_vm(name="down", status="Down")
    fake.add_vm(name="paused", status="Paused")
    hv = make(fake)
    assert [p.info for p in hv.poll()] == [GuestInfo(id=up.vm_id, name="up", pid=77)]


def test_guest_stats_normalised(fake: fakevdsm.FakeVdsm) -> None:
    vm = fake.add_vm(used=1000, cache=10, balloon_cur=3000, balloon_max=4000,
                     balloon_min=500, vcpu_count=3, vcpu_user_limit=40)
    fake.add_vm(agent=False)
    stats = polled(make(fake))
    assert stats[vm.vm_id]["memory"]["mem_available"] == 3000
    assert stats[vm.vm_id]["memory"]["mem_unused"] == 2000
    assert stats[vm.vm_id]["memory"]["mem_free"] == 2010
    assert stats[vm.vm_id]["balloon"] == {"balloon_cur": 3000, "balloon_max": 4000,
                                          "balloon_min": 500}
    assert stats[vm.vm_id]["cputune"]["vcpu_user_limit"] == 40
    assert stats[vm.vm_id]["cputune"]["vcpu_count"] == 3
    no_agent = [s for k, s in stats.items() if k != vm.vm_id][0]
    assert "memory" not in no_agent and "balloon" in no_agent


@pytest.mark.parametrize("count", [1, 100])
def test_one_get_all_vm_stats_per_cycle(fake: fakevdsm.FakeVdsm, count: int) -> None:
    fake.add_vms(count)
    now = [0.0]
    hv = make(fake, clock=lambda: now[0], iotune=False)
    for cycle in range(3):
        assert len(hv.poll()) == count
        assert fake.calls["getAllVmStats"] == cycle + 1
        now[0] += 5.0
    assert fake.calls["getStats"] == 0
    assert set(fake.calls) == {"getAllVmStats"}


def test_iotune_policies_are_read_once_per_refresh(fake: fakevdsm.FakeVdsm) -> None:
    fake.add_vms(10)
    now = [0.0]
    hv = make(fake, clock=lambda: now[0], iotune_refresh=60.0)
    for _ in range(6):                  # 30 s of 5 s cycles
        hv.poll()
        now[0] += 5.0
    assert fake.calls["getAllVmStats"] == 6
    assert fake.calls["getIoTunePolicy"] == 10     # once per VM, then cached
    assert fake.calls["getStats"] == 0


def test_set_balloon_and_vcpu(fake: fakevdsm.FakeVdsm) -> None:
    vm = fake.add_vm()
    hv = make(fake)
    hv.set_balloon_target(vm.vm_id, 1500000)
    assert vm.balloon_target == 1500000
    assert fake.calls_for("setBalloonTarget", vm.vm_id) == [1500000]
    hv.set_vcpu_tune(vm.vm_id, quota=50000, period=100000)
    assert (vm.vcpu_quota, vm.vcpu_period) == (50000, 100000)
    hv.set_vcpu_tune(vm.vm_id, quota=7)
    assert fake.calls["setCpuTunePeriod"] == 1 and vm.vcpu_quota == 7


def test_vanished_vm_raises_guest_gone(fake: fakevdsm.FakeVdsm) -> None:
    vm = fake.add_vm()
    hv = make(fake)
    assert hv.poll()
    fake.remove_vm(vm.vm_id)
    for call in (lambda: hv.set_balloon_target(vm.vm_id, 1000),
                 lambda: hv.set_vcpu_tune(vm.vm_id, quota=1000),
                 lambda: hv.set_io_tune(vm.vm_id, [])):
        with pytest.raises(GuestGoneError) as info:
            call()
        assert info.value.guest_id == vm.vm_id
        assert info.value.condition.endswith(":gone")


def test_error_code_and_exception_become_hypervisor_errors(
        fake: fakevdsm.FakeVdsm, caplog: pytest.LogCaptureFixture) -> None:
    a, b = fake.add_vms(2)
    hv = make(fake)
    hv.poll()
    fake.fail("setBalloonTarget", a.vm_id, code=42, message="balloon busy")
    fake.raise_on("setBalloonTarget", b.vm_id, OSError("libvirt hiccup"))
    caplog.set_level(logging.INFO, logger="mom.hypervisor.vdsm")
    for _ in range(4):
        with pytest.raises(HypervisorError) as err_a:
            hv.set_balloon_target(a.vm_id, 1000)
        assert not isinstance(err_a.value, GuestGoneError)
        assert "42" in str(err_a.value) and "balloon busy" in str(err_a.value)
        assert err_a.value.guest_id == a.vm_id
        with pytest.raises(HypervisorError, match="libvirt hiccup") as err_b:
            hv.set_balloon_target(b.vm_id, 1000)
        assert err_b.value.condition == "setBalloonTarget:raised:OSError"
    # Raised failures are the caller's to log (once): nothing loud here.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_absorbed_iotune_failure_logged_once_per_vm_and_condition(
        fake: fakevdsm.FakeVdsm, caplog: pytest.LogCaptureFixture) -> None:
    vm = fake.add_vm(io_policy=[{"name": "vda", "path": "", "maximum": {}}])
    fake.fail("getIoTunePolicy", vm.vm_id, code=16, message="no policy yet")
    now = [0.0]
    hv = make(fake, clock=lambda: now[0], iotune_refresh=1.0)
    caplog.set_level(logging.WARNING, logger="mom.hypervisor.vdsm")
    for _ in range(5):
        assert polled(hv)[vm.vm_id]["iotune"] == []
        now[0] += 2.0
    assert fake.calls["getIoTunePolicy"] == 5
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "no policy yet" in warnings[0]
    fake.heal()
    assert polled(hv)[vm.vm_id]["iotune"][0]["name"] == "vda"
    now[0] += 2.0
    fake.fail("getIoTunePolicy", vm.vm_id, code=16, message="no policy yet")
    polled(hv)
    assert len(caplog.records) == 2          # news again after it worked


def test_get_all_vm_stats_failure_raises(fake: fakevdsm.FakeVdsm) -> None:
    fake.add_vm()
    hv = make(fake)
    fake.fail("getAllVmStats", code=100, message="General Exception")
    with pytest.raises(HypervisorError, match="getAllVmStats"):
        polled(hv)
    fake.heal()
    assert len(polled(hv)) == 1


def test_ping(fake: fakevdsm.FakeVdsm) -> None:
    hv = make(fake)
    assert hv.ping() is True
    fake.raise_on("ping", exc=ConnectionError("down"))
    assert hv.ping() is False


def test_ksm_tune_goes_through_supervdsm(fake: fakevdsm.FakeVdsm) -> None:
    hv = make(fake)
    hv.ksm_tune({"run": 1, "pages_to_scan": 64, "sleep_millisecs": 10,
                 "merge_across_nodes": 1})
    assert fake.ksm_calls == [{"run": 1, "pages_to_scan": 64, "sleep_millisecs": 10,
                               "merge_across_nodes": 1}]
    with pytest.raises(HypervisorError, match="unknown KSM"):
        hv.ksm_tune({"bogus": 1})
    fake.raise_on("ksmTune", exc=PermissionError("denied"))
    with pytest.raises(HypervisorError, match="denied"):
        hv.ksm_tune({"run": 0})


def test_iotune_fetched_per_vm_then_cached(fake: fakevdsm.FakeVdsm) -> None:
    policy = [{"name": "vda", "path": "/p/a",
               "guaranteed": {"total_iops_sec": 10}, "maximum": {"total_iops_sec": 100}}]
    vm = fake.add_vm(io_policy=policy)
    plain = fake.add_vm()                 # no I/O policy: nothing to tune
    now = [0.0]
    hv = make(fake, clock=lambda: now[0], iotune_refresh=60.0)
    stats = polled(hv)
    assert stats[vm.vm_id]["iotune"] == [{
        "name": "vda", "path": "/p/a",
        "guaranteed": dict.fromkeys(vdsm.IOTUNE_KEYS, 0) | {"total_iops_sec": 10},
        "maximum": dict.fromkeys(vdsm.IOTUNE_KEYS, 0) | {"total_iops_sec": 100},
        "current": dict.fromkeys(vdsm.IOTUNE_KEYS, 0)}]
    assert stats[plain.vm_id]["iotune"] == []
    assert fake.calls["getIoTunePolicy"] == 2 and fake.calls["getIoTune"] == 1
    for _ in range(5):
        now[0] += 5
        polled(hv)
    assert fake.calls["getIoTunePolicy"] == 2           # cached
    hv.set_io_tune(vm.vm_id, [{"name": "vda", "path": "/p/a",
                               "ioTune": dict.fromkeys(vdsm.IOTUNE_KEYS, 0)
                               | {"total_iops_sec": 100}}])
    assert vm.io_current["vda"]["total_iops_sec"] == 100
    now[0] += 5
    assert polled(hv)[vm.vm_id]["iotune"][0]["current"]["total_iops_sec"] == 100
    assert fake.calls["getIoTunePolicy"] == 3           # re-read after the change


def test_iotune_off_makes_no_per_vm_calls(fake: fakevdsm.FakeVdsm) -> None:
    fake.add_vm(io_policy=[{"name": "vda", "path": "", "maximum": {}}])
    hv = make(fake, iotune=False)
    assert "iotune" not in next(iter(polled(hv).values()))
    assert fake.calls["getIoTunePolicy"] == 0


def test_iotune_failure_keeps_other_stats(fake: fakevdsm.FakeVdsm) -> None:
    vm = fake.add_vm(io_policy=[{"name": "vda", "path": "", "maximum": {}}])
    fake.raise_on("getIoTunePolicy", vm.vm_id, RuntimeError("boom"))
    stats = polled(make(fake))
    assert "memory" in stats[vm.vm_id] and stats[vm.vm_id]["iotune"] == []


def test_create_reads_intervals_and_collectors(fake: fakevdsm.FakeVdsm) -> None:
    import configparser

    from mom.config import load
    fakevdsm.install(fake)
    config = configparser.ConfigParser()
    config.read_dict({"main": {"hypervisor-interface": "vdsm"},
                      "guest": {"collectors": "GuestMemory, GuestIoTune"}})
    hv = vdsm.create(load("", config))
    assert hv.iotune is True


def test_a_failed_poll_raises_and_the_next_one_calls_again(fake: fakevdsm.FakeVdsm) -> None:
    fake.add_vm()
    hv = make(fake, iotune=False)
    fake.raise_on("getAllVmStats", exc=ConnectionError("busy"))
    with pytest.raises(HypervisorError, match="busy"):
        hv.poll()
    assert fake.calls["getAllVmStats"] == 1
    fake.heal()
    assert len(hv.poll()) == 1
    assert fake.calls["getAllVmStats"] == 2
